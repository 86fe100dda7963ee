#!/usr/bin/env python3
"""The web dashboard in a real browser (issue 15 section 4).

Starts `coreproc supervise` with three daemons (the test helper child) and the control plane on
a loopback TCP port with a token, then drives Debian's headless chromium over the DevTools
protocol (--remote-debugging-pipe: NUL-separated JSON on fds 3 and 4, stdlib only) to load the
page, enter the token, see every daemon, restart one from its button (its pid changes), see a
log line arrive live over the WebSocket, see hostile output rendered as text (no alert, no img
element), use back and reload, see the supervisor go away and come back, and see that a page on
another origin cannot drive the API. Plain HTTP checks of the auth rules come first.

Usage: dashboard_test.py COREPROC CHILD. Exit 0 ok, 1 failure, 77 skipped (no chromium).
Every wait is on a condition with a deadline; nothing sleeps a fixed time.
"""
import base64
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

EVIL = "<img src=x onerror=alert(1)>"
WAIT = float(os.environ.get("DASHBOARD_WAIT", "20"))  # seconds per condition
# Chromium's first start with a fresh profile: on a 2-vCPU machine compiling beside the test
# (meson runs the consumer build in parallel) it took longer than WAIT once.
START = float(os.environ.get("DASHBOARD_START", "90"))


class Failure(Exception):
    pass


def log(msg):
    print(f"[dashboard {time.monotonic() - T0:6.2f}s] {msg}", flush=True)


def eventually(what, fn, timeout=WAIT, interval=0.05):
    """Polls fn() until it returns a truthy value; that value, or Failure naming `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = fn()
            if v:
                return v
            last = v
        except Failure:
            raise
        except Exception as e:  # noqa: BLE001 - a not-yet-ready condition
            last = repr(e)
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout}s waiting for {what} (last: {last})")
        time.sleep(interval)


def check(cond, what):
    if not cond:
        raise Failure(what)
    log("ok: " + what)


# --- HTTP helpers -------------------------------------------------------------------------------

def request(port, method, path, headers=None, body=None, host=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.putrequest(method, path, skip_host=True)
        c.putheader("Host", host or f"127.0.0.1:{port}")
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        data = body.encode() if isinstance(body, str) else body
        if data is not None:
            c.putheader("Content-Length", str(len(data)))
        c.endheaders(data)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode("utf-8", "replace")
    finally:
        c.close()


def ws_handshake(port, protocols, origin=None):
    """A WebSocket upgrade of /events; the status line and headers (no frames read)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            "GET /events HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if protocols:
            lines.append("Sec-WebSocket-Protocol: " + ", ".join(protocols))
        if origin:
            lines.append("Origin: " + origin)
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        head = buf.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        hdrs = {}
        for h in head[1:]:
            k, _, v = h.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        return status, hdrs
    finally:
        s.close()


# --- the supervisor -----------------------------------------------------------------------------

class Supervisor:
    def __init__(self, coreproc, work, config, port, token_file):
        self.lines = []
        self.mu = threading.Lock()
        env = dict(os.environ, HOME=work, XDG_RUNTIME_DIR=os.path.join(work, "xdg"))
        self.proc = subprocess.Popen(
            [coreproc, "supervise", config, "--json", "--registry", os.path.join(work, "reg"),
             "--log-dir", os.path.join(work, "logs"), "--socket", os.path.join(work, "ctl.sock"),
             "--control-listen", f"127.0.0.1:{port}", "--token-file", token_file],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, close_fds=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            with self.mu:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def output(self):
        with self.mu:
            return "\n".join(self.lines)

    def listening(self):
        def find():
            if self.proc.poll() is not None:
                raise Failure("coreproc supervise exited early:\n" + self.output())
            with self.mu:
                for line in self.lines:
                    if line.startswith("{"):
                        try:
                            j = json.loads(line)
                        except ValueError:
                            continue
                        if j.get("event") == "listening" and j.get("control_listen"):
                            return j["control_listen"]
            return None
        return eventually("the supervisor's listening line", find)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=5)
        self.proc.stdout.close()
        return self.proc.returncode


# --- a DevTools client over --remote-debugging-pipe ---------------------------------------------

class Browser:
    def __init__(self, chromium, profile):
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # The protocol wants the pipe on fds 3 (commands in) and 4 (replies out): a tiny exec
        # trampoline moves them there in the child (no preexec_fn in a threaded parent).
        tramp = ("import os,sys; os.dup2(int(sys.argv[1]),3); os.dup2(int(sys.argv[2]),4); "
                 "os.execvp(sys.argv[3], sys.argv[3:])")
        args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--disable-sync",
                "--disable-background-networking", "--disable-component-update",
                "--disable-dev-shm-usage",  # containers' /dev/shm is often 64 MiB
                "--remote-debugging-pipe", "--window-size=1280,800",
                f"--user-data-dir={profile}", "about:blank"]
        home = os.path.join(profile, "home")  # nothing of the user's own profile is touched
        os.makedirs(home, exist_ok=True)
        env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=home, XDG_CACHE_HOME=home)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", tramp, str(to_chrome_r), str(from_chrome_w)] + args,
            pass_fds=(to_chrome_r, from_chrome_w), stdin=subprocess.DEVNULL, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.wfd = to_chrome_w
        self.rfd = from_chrome_r
        self.next_id = 0
        self.replies = {}
        self.events = []
        self.cv = threading.Condition()
        self.session = None
        self.closed = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self.rfd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                with self.cv:
                    self.closed = True
                    self.cv.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                msg, buf = buf.split(b"\0", 1)
                m = json.loads(msg)
                with self.cv:
                    if "id" in m:
                        self.replies[m["id"]] = m
                    else:
                        self.events.append(m)
                    self.cv.notify_all()

    def send(self, method, params=None, session=True, timeout=WAIT):
        with self.cv:
            self.next_id += 1
            mid = self.next_id
        m = {"id": mid, "method": method, "params": params or {}}
        if session and self.session:
            m["sessionId"] = self.session
        os.write(self.wfd, json.dumps(m).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self.cv:
            while mid not in self.replies:
                left = deadline - time.monotonic()
                if self.closed:
                    raise Failure(f"chromium exited (status {self.proc.poll()}) before it "
                                  f"replied to {method}")
                if left <= 0:
                    raise Failure(f"no DevTools reply to {method} within {timeout:g}s")
                self.cv.wait(left)
            r = self.replies.pop(mid)
        if "error" in r:
            raise Failure(f"DevTools {method}: {r['error']}")
        return r.get("result", {})

    def attach(self):
        # The first reply also waits for chromium to start.
        self.send("Browser.getVersion", session=False, timeout=START)
        targets = eventually("a page target", lambda: [
            t for t in self.send("Target.getTargets", session=False)["targetInfos"]
            if t["type"] == "page"])
        self.session = self.send("Target.attachToTarget",
                                 {"targetId": targets[0]["targetId"], "flatten": True},
                                 session=False)["sessionId"]
        self.send("Page.enable")
        self.send("Runtime.enable")

    def eval(self, expr):
        r = self.send("Runtime.evaluate",
                      {"expression": expr, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise Failure(f"page script failed: {expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def events_of(self, method):
        with self.cv:
            return [e for e in self.events if e.get("method") == method]

    def close(self):
        try:
            self.send("Browser.close", session=False, timeout=5)
        except Failure:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.wfd)
        self.reader.join(timeout=5)
        os.close(self.rfd)


# --- the page as the test reads it -------------------------------------------------------------

ROWS = """[...document.querySelectorAll('#rows tr')].map(tr => ({
  name: tr.dataset.daemon,
  state: tr.querySelector('[data-field=state]').textContent,
  pid: tr.querySelector('[data-field=pid]').textContent,
  text: tr.textContent }))"""


def rows(b):
    return {r["name"]: r for r in b.eval(ROWS) or []}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0): look at its state.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    coreproc, child = sys.argv[1], sys.argv[2]
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("SKIP: chromium is not installed (tools/dev deps installs it)")
        return 77

    work = tempfile.mkdtemp(prefix="coreproc-dashboard-")
    sup = browser = evil_server = None
    daemon_pids = set()
    rc = 1
    try:
        token = base64.b16encode(os.urandom(16)).decode().lower()
        token_file = os.path.join(work, "token")
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, (token + "\n").encode())
        os.close(fd)

        def daemon(name, args, **kw):
            d = {"name": name, "command": child, "args": args, "stop_timeout": "2s"}
            d.update(kw)
            return d
        config = os.path.join(work, "dash.json")
        with open(config, "w") as f:
            json.dump({"daemons": [
                daemon("web", ["c-tick", "1000000", "200"]),
                daemon("db", ["sleep", "600000"]),
                # Hostile output: the page must show it as text, in the log and the last exit.
                daemon("evil", ["print-fail", EVIL], restart="no"),
            ]}, f)

        port = free_port()
        sup = Supervisor(coreproc, work, config, port, token_file)
        addr = sup.listening()
        check(addr == f"127.0.0.1:{port}", f"control API on {addr}")
        auth = {"Authorization": "Bearer " + token}

        def api_daemons():
            st, _, body = request(port, "GET", "/daemons", auth)
            return {d["name"]: d for d in json.loads(body)} if st == 200 else None

        eventually("web and db running", lambda: (lambda d: d and d["web"]["state"] == "running"
                                                  and d["db"]["state"] == "running"
                                                  and d["evil"]["exited"])(api_daemons()))
        first = api_daemons()
        daemon_pids.update(d["pid"] for d in first.values() if d["pid"])
        check("memory_bytes" in first["web"] and "cpu_seconds" in first["web"],
              f"/daemons has memory/CPU: web {first['web']['memory_bytes']} bytes "
              f"({first['web']['memory_source']}), {first['web']['cpu_seconds']} s CPU "
              f"({first['web']['cpu_source']})")

        # --- the auth rules, over plain HTTP ---
        st, hdr, page = request(port, "GET", "/")
        check(st == 200 and hdr.get("Content-Type", "").startswith("text/html"),
              "GET / without a token serves the page")
        check(token not in page and "evil" not in page and "print-fail" not in page,
              "the page holds no secret and no data")
        csp = hdr.get("Content-Security-Policy", "")
        check("script-src 'nonce-" in csp and "frame-ancestors 'none'" in csp,
              "the page has a nonce CSP and no framing")
        st, _, _ = request(port, "GET", "/dashboard")
        check(st == 200, "GET /dashboard serves the page")
        st, _, _ = request(port, "GET", "/daemons")
        check(st == 401, "GET /daemons without a token: 401")
        st, _, _ = request(port, "GET", "/daemons", {"Authorization": "Bearer nope"})
        check(st == 401, "GET /daemons with a wrong token: 401")
        st, _, _ = request(port, "POST", "/daemons/db/restart",
                           dict(auth, Origin="http://evil.example"))
        check(st == 403, "a foreign Origin is refused even with the token (CSRF)")
        st, _, _ = request(port, "GET", "/", host=f"evil.example:{port}")
        check(st == 403, "a foreign Host is refused, page included (DNS rebinding)")
        st, _, _ = request(port, "GET", "/daemons", auth, host=f"evil.example:{port}")
        check(st == 403, "a foreign Host is refused with the token (DNS rebinding)")
        hex_token = token.encode().hex()
        st, _ = ws_handshake(port, ["coreproc.v1", "coreproc.auth." + "00" * 8])
        check(st == 401, "WebSocket with a wrong subprotocol token: 401")
        st, _ = ws_handshake(port, ["coreproc.v1"])
        check(st == 401, "WebSocket without a token: 401")
        st, h = ws_handshake(port, ["coreproc.v1", "coreproc.auth." + hex_token])
        check(st == 101 and h.get("sec-websocket-protocol") == "coreproc.v1"
              and hex_token not in json.dumps(h),
              "WebSocket with the subprotocol token: 101, coreproc.v1 chosen, token not echoed")
        st, _ = ws_handshake(port, ["coreproc.v1", "coreproc.auth." + hex_token],
                             origin="http://evil.example")
        check(st == 403, "WebSocket from a foreign Origin with the token: 403")
        st, _, body = request(port, "POST", "/daemons", dict(auth, **{
            "Content-Type": "application/json"}), json.dumps(daemon(EVIL, ["sleep", "1000"])))
        check(st == 400, "a daemon named like markup is refused (names are [A-Za-z0-9._-]+)")

        # --- the browser ---
        browser = Browser(chromium, os.path.join(work, "profile"))
        browser.attach()
        base = f"http://127.0.0.1:{port}/"
        browser.send("Page.navigate", {"url": base + "#/"})
        eventually("the sign-in form", lambda: browser.eval(
            "!!document.getElementById('login') && "
            "!document.getElementById('login').classList.contains('hidden')"))
        check(not rows(browser), "no daemon shown before the token")
        browser.eval("document.getElementById('token').focus()")
        browser.send("Input.insertText", {"text": token})
        browser.eval("document.querySelector('#login-form button[type=submit]').click()")
        shown = eventually("every daemon in the table", lambda: (
            lambda r: r if {"web", "db", "evil"} <= set(r) and r["web"]["state"] == "running"
            else None)(rows(browser)))
        check(shown["web"]["pid"] == str(first["web"]["pid"]),
              f"web's pid {shown['web']['pid']} as the API says")
        eventually("the live indicator", lambda: browser.eval(
            "document.getElementById('conn').textContent === 'live'"))
        check(EVIL in shown["evil"]["text"], "evil's last exit shows its output as text")

        # Restart web by its button: the pid changes (and only web's).
        old_pid = shown["web"]["pid"]
        browser.eval("document.querySelector('tr[data-daemon=\"web\"] "
                     "button[data-action=\"restart\"]').click()")
        new = eventually("web's new pid", lambda: (
            lambda r: r if r["web"]["pid"] not in (old_pid, "-") and
            r["web"]["state"] == "running" else None)(rows(browser)))
        after = api_daemons()
        daemon_pids.update(d["pid"] for d in after.values() if d["pid"])
        check(new["web"]["pid"] == str(after["web"]["pid"]) and after["web"]["restarts"] >= 1,
              f"restart button: web pid {old_pid} -> {new['web']['pid']}")
        check(new["db"]["pid"] == shown["db"]["pid"], "db kept its pid")

        # A log line arrives live (over the WebSocket, not from the tail read at selection).
        browser.eval("location.hash = '#/daemons/web'")
        eventually("the detail pane", lambda: browser.eval(
            "!document.getElementById('detail').classList.contains('hidden') && "
            "document.getElementById('detail-title').textContent === 'web'"))
        live = eventually("a live log line", lambda: browser.eval(
            "[...document.querySelectorAll('#logs .line.ws')].map(e => e.textContent)"))
        check(any(l.startswith("tick ") for l in live), f"live log line {live[-1]!r}")

        # Back and reload: the hash is the state; the token survives a reload of the tab.
        browser.eval("history.back()")
        eventually("the list again after back", lambda: browser.eval(
            "location.hash === '#/' && "
            "document.getElementById('detail').classList.contains('hidden')"))
        browser.eval("history.forward()")
        eventually("web's detail after forward", lambda: browser.eval(
            "document.getElementById('detail-title').textContent === 'web'"))
        browser.send("Page.reload")
        eventually("web's detail after reload, no sign-in", lambda: browser.eval(
            "document.readyState === 'complete' && "
            "document.getElementById('login').classList.contains('hidden') && "
            "document.getElementById('detail-title').textContent === 'web' && "
            "document.querySelectorAll('#rows tr').length === 3"))
        log("ok: back, forward and reload keep the view")

        # Hostile output is text: in the log pane and the table, no img, no dialog.
        browser.eval("location.hash = '#/daemons/evil'")
        eventually("evil's log shows the markup as text", lambda: browser.eval(
            f"[...document.querySelectorAll('#logs .line')].some(e => e.textContent === "
            f"{json.dumps(EVIL)})"))
        check(browser.eval("document.querySelectorAll('img').length") == 0,
              "no img element anywhere")
        check(not browser.events_of("Page.javascriptDialogOpening"), "no alert")

        if os.environ.get("DASHBOARD_SCREENSHOT"):
            browser.eval("location.hash = '#/daemons/web'")
            eventually("web's log for the screenshot", lambda: browser.eval(
                "document.querySelectorAll('#logs .line').length > 3"))
            shot = browser.send("Page.captureScreenshot", {"format": "png"})
            with open(os.environ["DASHBOARD_SCREENSHOT"], "wb") as f:
                f.write(base64.b64decode(shot["data"]))
            log("screenshot in " + os.environ["DASHBOARD_SCREENSHOT"])

        # The supervisor goes away: the page says so; a new one on the same port: it is back.
        rc = sup.stop()
        check(rc == 0, "the supervisor stopped on SIGTERM")
        eventually("the page showing the supervisor gone", lambda: browser.eval(
            "document.getElementById('banner').classList.contains('show') && "
            "document.getElementById('conn').className === 'down'"))
        log("ok: banner: " + browser.eval("document.getElementById('banner').textContent"))
        sup = Supervisor(coreproc, work, config, port, token_file)
        sup.listening()
        eventually("the page reconnected", lambda: browser.eval(
            "document.getElementById('conn').textContent === 'live' && "
            "!document.getElementById('banner').classList.contains('show')"), timeout=WAIT + 10)
        back = eventually("daemons again after the reconnect", lambda: (
            lambda r: r if r.get("web", {}).get("state") == "running" and
            r["web"]["pid"] != new["web"]["pid"] else None)(rows(browser)))
        check(True, f"reconnected: web pid now {back['web']['pid']}")
        now = api_daemons()
        daemon_pids.update(d["pid"] for d in now.values() if d["pid"])

        # A page on another origin that knows the token still cannot drive the API.
        evil_page = ("<!doctype html><script>window.result = (async () => { const r = {};"
                     f"const api = 'http://127.0.0.1:{port}';"
                     "try { const x = await fetch(api + '/daemons/db/restart', {method: 'POST',"
                     f"headers: {{Authorization: 'Bearer {token}'}}}}); r.fetch = x.status; }}"
                     " catch (e) { r.fetch = 'blocked'; }"
                     "try { await fetch(api + '/daemons/db/restart', {method: 'POST', "
                     "mode: 'no-cors'}); r.simple = 'sent'; } catch (e) { r.simple = 'blocked'; }"
                     "r.ws = await new Promise(res => { const s = new WebSocket("
                     f"'ws://127.0.0.1:{port}/events', ['coreproc.v1', 'coreproc.auth.{hex_token}']);"
                     "s.onopen = () => res('open'); s.onerror = () => res('refused'); });"
                     "return r; })();</script>")

        class Evil(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                body = evil_page.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass
        evil_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
        threading.Thread(target=evil_server.serve_forever, daemon=True).start()
        db_pid = now["db"]["pid"]
        browser.send("Page.navigate",
                     {"url": f"http://localhost:{evil_server.server_address[1]}/"})
        res = eventually("the foreign page's attempts", lambda: browser.eval(
            "window.result ? window.result : null"))
        check(res["fetch"] == "blocked" and res["ws"] == "refused",
              f"a foreign origin with the token is refused: {res}")
        check(api_daemons()["db"]["pid"] == db_pid, "db was not restarted by the foreign page")
        check(not browser.events_of("Page.javascriptDialogOpening"), "still no alert")
        rc = 0
    except Failure as e:
        log("FAIL: " + str(e))
        if sup:
            log("supervisor output:\n" + sup.output())
    finally:
        if browser:
            browser.close()
        if evil_server:
            evil_server.shutdown()
            evil_server.server_close()
        if sup:
            sup.stop()
        left = [p for p in daemon_pids if pid_alive(p)]
        if left:
            log(f"FAIL: daemons left running: {left}")
            rc = 1
            for p in left:
                os.kill(p, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)
    if rc == 0:
        log("all dashboard checks passed")
    return rc


if __name__ == "__main__":
    T0 = time.monotonic()
    sys.exit(main())
