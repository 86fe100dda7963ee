#include "control/dashboard.hpp"

namespace core::control {

namespace {

// The page. Everything the server or a daemon says goes in with textContent (or a property such
// as title/dataset), never as markup: daemon names, errors and log lines are untrusted. State is
// in the hash (#/ or #/daemons/NAME), so back, forward and reload work; the token is in
// sessionStorage (this tab only, gone when it closes), never in a URL.
constexpr std::string_view kPage = R"coreproc_page(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>coreproc dashboard</title>
<style nonce="@NONCE@">
:root { --bg:#f6f7f9; --fg:#1d2330; --mute:#667085; --line:#dde1e8; --card:#fff;
        --ok:#137333; --warn:#b26a00; --bad:#c5221f; --acc:#1a56db; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
       background:var(--bg); color:var(--fg); }
header { display:flex; align-items:center; gap:16px; padding:10px 20px; background:#111827;
         color:#f9fafb; }
header h1 { font-size:16px; margin:0; font-weight:600; letter-spacing:.02em; }
header a { color:inherit; text-decoration:none; }
#conn { font-size:12px; padding:2px 10px; border-radius:10px; background:#374151; }
#conn.live { background:var(--ok); } #conn.down { background:var(--bad); }
#conn.wait { background:var(--warn); }
header .sp { flex:1; }
header button { background:transparent; color:#d1d5db; border:1px solid #4b5563; }
main { padding:20px; max-width:1200px; margin:0 auto; }
#banner { display:none; margin-bottom:14px; padding:10px 14px; border-radius:6px;
          background:#fdecea; color:var(--bad); border:1px solid #f5c2c0; }
#banner.show { display:block; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px;
        padding:16px; margin-bottom:18px; }
table { width:100%; border-collapse:collapse; }
th, td { text-align:left; padding:7px 10px; border-bottom:1px solid var(--line);
         white-space:nowrap; }
th { font-size:12px; color:var(--mute); font-weight:600; text-transform:uppercase; }
td.err { white-space:normal; max-width:320px; overflow-wrap:anywhere; color:var(--mute); }
tr.sel { background:#eef4ff; }
td a { color:var(--acc); text-decoration:none; font-weight:600; }
.st { display:inline-block; padding:1px 8px; border-radius:9px; font-size:12px;
      background:#e5e7eb; }
.st.running, .st.healthy { background:#e6f4ea; color:var(--ok); }
.st.starting, .st.backoff, .st.stopping, .st.unhealthy { background:#fef3e0; color:var(--warn); }
.st.failed { background:#fdecea; color:var(--bad); }
button { font:inherit; font-size:12px; padding:3px 10px; border-radius:5px; cursor:pointer;
         border:1px solid var(--line); background:#fff; color:var(--fg); margin-right:4px; }
button:hover { border-color:var(--acc); }
button:disabled { opacity:.5; cursor:default; }
.num { font-variant-numeric: tabular-nums; }
#login form { display:flex; gap:8px; align-items:center; flex-wrap:wrap; }
#login input { font:inherit; padding:6px 10px; width:340px; border:1px solid var(--line);
               border-radius:5px; }
#login button { font-size:14px; padding:6px 14px; background:var(--acc); color:#fff;
                border-color:var(--acc); }
.hint { color:var(--mute); font-size:12px; }
h2 { font-size:15px; margin:0 0 10px; }
#logs { background:#0b1020; color:#d6deeb; font:12px/1.5 ui-monospace, Menlo, monospace;
        padding:10px 12px; border-radius:6px; height:320px; overflow:auto; margin:0;
        white-space:pre-wrap; overflow-wrap:anywhere; }
#logs .line.stderr { color:#ff9e9e; }
#detail-meta { display:flex; gap:24px; flex-wrap:wrap; margin-bottom:10px; color:var(--mute); }
#detail-meta b { color:var(--fg); font-weight:600; }
.hidden { display:none !important; }
</style>
</head>
<body>
<header>
  <h1><a href="#/">coreproc</a></h1>
  <span id="conn">offline</span>
  <span class="sp"></span>
  <button id="logout" class="hidden" type="button">Forget token</button>
</header>
<main>
  <div id="banner" role="alert"></div>
  <section id="login" class="card hidden">
    <h2>Sign in</h2>
    <form id="login-form" autocomplete="off">
      <input id="token" type="password" placeholder="Bearer token" aria-label="Bearer token">
      <button type="submit">Connect</button>
    </form>
    <p class="hint">The token is in the supervisor's token file (<code>--token-file</code>, or
      <code>NAME.token</code> beside its control socket). It stays in this tab only.</p>
    <p id="login-error" class="hint"></p>
  </section>
  <section id="list" class="card hidden">
    <h2>Daemons <span id="count" class="hint"></span></h2>
    <table>
      <thead><tr><th>Name</th><th>State</th><th>PID</th><th>Restarts</th><th>Uptime</th>
        <th>Memory</th><th>CPU</th><th>Last exit</th><th></th></tr></thead>
      <tbody id="rows"></tbody>
    </table>
  </section>
  <section id="detail" class="card hidden">
    <h2 id="detail-title"></h2>
    <div id="detail-meta"></div>
    <pre id="logs" aria-live="polite"></pre>
  </section>
</main>
<script nonce="@NONCE@">
"use strict";
(function () {
  const KEY = "coreproc.token";
  const $ = (id) => document.getElementById(id);
  let token = sessionStorage.getItem(KEY) || "";
  let daemons = [];           // the last GET /daemons
  let cpuPrev = new Map();    // pid -> [cpu_seconds, ms]
  let ws = null, wsRetry = 0, wsTimer = null, pollTimer = null, refreshQueued = false;
  let online = false;
  const pending = new Map();  // process id -> lines seen before we knew whose it is
  const MAX_LINES = 500;

  // Elements from data: text only, never markup.
  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    if (props) for (const k of Object.keys(props)) {
      if (k === "class") e.className = props[k];
      else if (k === "data") Object.assign(e.dataset, props[k]);
      else e[k] = props[k];
    }
    for (const c of kids) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }

  function route() {
    const h = location.hash || "#/";
    const m = /^#\/daemons\/([^/]+)$/.exec(h);
    if (!m) return { name: null };
    try { return { name: decodeURIComponent(m[1]) }; } catch (_) { return { name: null }; }
  }

  function setConn(kind, text) { const c = $("conn"); c.className = kind; c.textContent = text; }
  function banner(text) {
    const b = $("banner"); b.textContent = text || ""; b.classList.toggle("show", !!text);
  }

  async function api(method, path) {
    const headers = {};
    if (token) headers["Authorization"] = "Bearer " + token;
    const r = await fetch(path, { method, headers, cache: "no-store", credentials: "omit" });
    if (r.status === 401) { throw Object.assign(new Error("unauthorized"), { auth: true }); }
    const type = r.headers.get("Content-Type") || "";
    const body = type.startsWith("application/json") ? await r.json() : await r.text();
    if (!r.ok) throw Object.assign(new Error((body && body.error) || ("HTTP " + r.status)),
                                   { status: r.status });
    return body;
  }

  function showLogin(message) {
    stopLive();
    $("login").classList.remove("hidden");
    $("list").classList.add("hidden");
    $("detail").classList.add("hidden");
    $("logout").classList.add("hidden");
    $("login-error").textContent = message || "";
    setConn("", "signed out");
    $("token").focus();
  }

  function fmtDur(s) {
    if (!(s > 0)) return "-";
    s = Math.floor(s);
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600),
          m = Math.floor(s % 3600 / 60), x = s % 60;
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    if (m) return m + "m " + x + "s";
    return x + "s";
  }
  function fmtBytes(b) {
    if (b === null || b === undefined) return "-";
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; ++i; }
    return (i ? b.toFixed(1) : String(b)) + " " + u[i];
  }
  function lastExit(d) {
    if (!d.exited) return "-";
    return d.last_signal ? "signal " + d.last_signal : "code " + d.last_exit_code;
  }
  function up(state) { return state === "running" || state === "healthy" || state === "unhealthy"; }

  function cpuPercent(d, now) {
    if (!d.pid || d.cpu_seconds === undefined || d.cpu_seconds === null) return "-";
    const prev = cpuPrev.get(d.pid);
    cpuPrev.set(d.pid, [d.cpu_seconds, now]);
    if (!prev || now <= prev[1]) return d.cpu_seconds.toFixed(2) + " s";
    const pct = 100 * (d.cpu_seconds - prev[0]) / ((now - prev[1]) / 1000);
    return Math.max(0, pct).toFixed(1) + "%";
  }

  async function act(name, verb, button) {
    button.disabled = true;
    try {
      await api("POST", "/daemons/" + encodeURIComponent(name) + "/" + verb);
      banner("");
    } catch (e) {
      if (e.auth) return showLogin("The token was refused.");
      banner(verb + " " + name + ": " + e.message);
    } finally {
      button.disabled = false;
      refresh();
    }
  }

  function render() {
    const sel = route().name;
    const now = Date.now();
    const rows = $("rows");
    rows.replaceChildren();
    for (const d of daemons) {
      const link = el("a", { href: "#/daemons/" + encodeURIComponent(d.name) }, d.name);
      const buttons = el("td", null);
      for (const verb of ["start", "stop", "restart"]) {
        const b = el("button", { type: "button", data: { action: verb } }, verb);
        b.addEventListener("click", () => act(d.name, verb, b));
        buttons.append(b);
      }
      const exit = el("td", { class: "err", title: d.last_error || "" }, lastExit(d),
                      d.last_error ? " - " + d.last_error : "");
      const memTitle = d.memory_source ? "from " + d.memory_source : "not accounted";
      const cpuTitle = d.cpu_source ? "from " + d.cpu_source : "not accounted";
      rows.append(el("tr", { class: d.name === sel ? "sel" : "", data: { daemon: d.name } },
        el("td", null, link),
        el("td", null, el("span", { class: "st " + d.state, data: { field: "state" } }, d.state)),
        el("td", { class: "num", data: { field: "pid" } }, d.pid ? d.pid : "-"),
        el("td", { class: "num", data: { field: "restarts" } }, d.restarts),
        el("td", { class: "num" }, up(d.state) ? fmtDur(d.uptime_seconds) : "-"),
        el("td", { class: "num", title: memTitle }, fmtBytes(d.memory_bytes)),
        el("td", { class: "num", title: cpuTitle }, cpuPercent(d, now)),
        exit, buttons));
    }
    $("count").textContent = "(" + daemons.length + ")";
    renderDetail();
  }

  let shownLogsFor = null;    // "name|process_id" whose tail the log pane shows
  function renderDetail() {
    const name = route().name;
    const d = daemons.find((x) => x.name === name);
    if (!name) { $("detail").classList.add("hidden"); shownLogsFor = null; return; }
    $("detail").classList.remove("hidden");
    $("detail-title").textContent = name + (d ? "" : " (unknown daemon)");
    const meta = $("detail-meta");
    meta.replaceChildren();
    if (d) {
      const kv = (k, v) => el("span", null, k + " ", el("b", null, v));
      meta.append(kv("state", d.state), kv("pid", d.pid || "-"), kv("restarts", d.restarts),
                  kv("since", d.since || "-"), kv("process", d.process_id || "-"));
    }
    const key = name + "|" + (d ? d.process_id : "");
    if (key !== shownLogsFor) { shownLogsFor = key; loadLogs(name, d); }
  }

  // live: the line came over the WebSocket (class "ws"), not from the tail read at selection.
  function appendLine(text, stream, live) {
    const pre = $("logs");
    const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.append(el("div", { class: "line " + (stream || "") + (live ? " ws" : "") }, text));
    while (pre.childNodes.length > MAX_LINES) pre.firstChild.remove();
    if (stick) pre.scrollTop = pre.scrollHeight;
  }

  async function loadLogs(name, d) {
    const pre = $("logs");
    pre.replaceChildren();
    try {
      const text = await api("GET", "/daemons/" + encodeURIComponent(name) + "/logs?tail=200");
      if (route().name !== name) return;
      pre.replaceChildren();
      for (const line of String(text).split("\n")) if (line !== "") appendLine(line, "");
    } catch (e) {
      if (e.auth) return showLogin("The token was refused.");
      appendLine("(no log: " + e.message + ")", "stderr");
    }
    if (d && d.process_id && pending.has(d.process_id)) {
      for (const [line, stream] of pending.get(d.process_id)) appendLine(line, stream, true);
      pending.delete(d.process_id);
    }
  }

  async function refresh() {
    try {
      daemons = await api("GET", "/daemons");
      if (!online) { online = true; banner(""); }
      render();
    } catch (e) {
      if (e.auth) return showLogin("The token was refused.");
      online = false;
      setConn("down", "supervisor unreachable");
      banner("The supervisor does not answer (" + e.message + "); retrying…");
    }
  }
  function queueRefresh() {
    if (refreshQueued) return;
    refreshQueued = true;
    setTimeout(() => { refreshQueued = false; refresh(); }, 100);
  }

  function hex(s) {
    return Array.from(new TextEncoder().encode(s), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function onEvent(m) {
    if (!m || m.type !== "event") return;
    if (m.channel === "daemon.state" || m.channel === "process.started" ||
        m.channel === "process.exited") { queueRefresh(); return; }
    if (m.channel !== "process.output" || !m.data) return;
    const name = route().name;
    const d = daemons.find((x) => x.name === name);
    if (d && d.process_id === m.processId) { appendLine(m.data.line, m.data.stream, true); return; }
    if (daemons.some((x) => x.process_id === m.processId)) return;  // another daemon's
    // A process we do not know yet (a restart just happened): keep its first lines.
    if (!pending.has(m.processId)) {
      if (pending.size > 50) pending.delete(pending.keys().next().value);
      pending.set(m.processId, []);
    }
    const buf = pending.get(m.processId);
    buf.push([m.data.line, m.data.stream]);
    if (buf.length > 200) buf.shift();
    queueRefresh();
  }

  function connectEvents() {
    clearTimeout(wsTimer);
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/events";
    const protocols = ["coreproc.v1"];
    if (token) protocols.push("coreproc.auth." + hex(token));
    setConn("wait", "connecting…");
    let s;
    try { s = new WebSocket(url, protocols); } catch (e) { return scheduleEvents(); }
    ws = s;
    s.onopen = () => {
      wsRetry = 0;
      setConn("live", "live");
      banner("");
      refresh();  // what changed while we were away
    };
    s.onmessage = (ev) => {
      let m = null;
      try { m = JSON.parse(ev.data); } catch (_) { return; }
      onEvent(m);
    };
    s.onclose = () => {
      if (ws !== s) return;
      ws = null;
      setConn("down", "disconnected");
      banner("Lost the connection to the supervisor; reconnecting…");
      scheduleEvents();
    };
  }
  function scheduleEvents() {
    const delay = Math.min(5000, 500 * Math.pow(2, wsRetry++));
    wsTimer = setTimeout(async () => {
      // A refused token ends in a plain 401 on /daemons; anything else: try the socket again.
      try { await api("GET", "/daemons"); } catch (e) {
        if (e.auth) return showLogin("The token was refused.");
      }
      connectEvents();
    }, delay);
  }

  function stopLive() {
    clearTimeout(wsTimer); clearInterval(pollTimer); pollTimer = null;
    if (ws) { const s = ws; ws = null; s.close(); }
  }

  async function startLive() {
    $("login").classList.add("hidden");
    $("list").classList.remove("hidden");
    $("logout").classList.toggle("hidden", !token);
    await refresh();
    if ($("login").classList.contains("hidden")) {
      connectEvents();
      clearInterval(pollTimer);
      pollTimer = setInterval(refresh, 2000);
    }
  }

  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = $("token").value.trim();
    $("token").value = "";
    sessionStorage.setItem(KEY, token);
    startLive();
  });
  $("logout").addEventListener("click", () => {
    token = ""; sessionStorage.removeItem(KEY); showLogin("");
  });
  window.addEventListener("hashchange", render);

  // A token from this tab's earlier visit, or none at all (a Unix-socket proxy needs none):
  // try it; a 401 asks for one.
  (async () => {
    try { await api("GET", "/daemons"); startLive(); }
    catch (e) {
      if (e.auth) showLogin(token ? "The token was refused." : "");
      else { startLive(); }
    }
  })();
})();
</script>
</body>
</html>
)coreproc_page";

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// The comma-separated entries of a Sec-WebSocket-Protocol header, spaces trimmed.
template <class F>
void each_protocol(std::string_view header, F&& f) {
    while (!header.empty()) {
        const auto comma = header.find(',');
        std::string_view p = header.substr(0, comma);
        while (!p.empty() && (p.front() == ' ' || p.front() == '\t')) p.remove_prefix(1);
        while (!p.empty() && (p.back() == ' ' || p.back() == '\t')) p.remove_suffix(1);
        if (!p.empty() && f(p)) return;
        header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    }
}

}  // namespace

bool is_dashboard(const Request& r) {
    if (r.method != "GET") return false;
    const auto& s = r.target.segments;
    return s.empty() || (s.size() == 1 && s[0] == "dashboard");
}

std::string dashboard_html(std::string_view nonce) {
    std::string page(kPage);
    const std::string_view mark = "@NONCE@";
    for (auto at = page.find(mark); at != std::string::npos; at = page.find(mark, at))
        page.replace(at, mark.size(), nonce);
    return page;
}

std::string dashboard_csp(std::string_view nonce) {
    const std::string n(nonce);
    return "default-src 'none'; script-src 'nonce-" + n + "'; style-src 'nonce-" + n +
           "'; connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; "
           "frame-ancestors 'none'";
}

std::string ws_protocol_token(std::string_view header) {
    std::string token;
    each_protocol(header, [&](std::string_view p) {
        if (p.substr(0, kWsAuthPrefix.size()) != kWsAuthPrefix) return false;
        const std::string_view h = p.substr(kWsAuthPrefix.size());
        if (h.empty() || h.size() % 2 != 0 || h.size() > 1024) return true;
        std::string out;
        for (std::size_t i = 0; i < h.size(); i += 2) {
            const int hi = hex_digit(h[i]);
            const int lo = hex_digit(h[i + 1]);
            if (hi < 0 || lo < 0) return true;
            out.push_back(static_cast<char>(hi * 16 + lo));
        }
        token = std::move(out);
        return true;
    });
    return token;
}

bool ws_offers_protocol(std::string_view header) {
    bool found = false;
    each_protocol(header, [&](std::string_view p) { return found = (p == kWsProtocol); });
    return found;
}

}  // namespace core::control
