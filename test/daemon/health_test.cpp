#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch_test_macros.hpp>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/process/health.hpp"
#include "guard.hpp"
#include "http/parser.hpp"
#include "sys/fault.hpp"

namespace cp = core::process;
using namespace std::chrono_literals;

namespace {

int port_of(const std::string& addr) {
    return std::stoi(addr.substr(addr.rfind(':') + 1));
}

// A raw TCP client for the cases a well-behaved client cannot produce.
class RawClient {
  public:
    explicit RawClient(const std::string& addr) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(static_cast<uint16_t>(port_of(addr)));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    }
    ~RawClient() {
        if (fd_ >= 0) ::close(fd_);
    }
    bool connected() const { return connected_; }
    bool send(const std::string& s) {
        return ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
    }
    // Everything until the server closes (or a reset, or timeout): the bytes received.
    std::string read_to_close(std::chrono::milliseconds timeout = 10s, bool* closed = nullptr) {
        std::string out;
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) break;
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
            char buf[4096];
            ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) {
                if (closed) *closed = true;
                return out;
            }
            out.append(buf, static_cast<std::size_t>(n));
        }
        if (closed) *closed = false;
        return out;
    }

  private:
    int fd_ = -1;
    bool connected_ = false;
};

std::string status_line(const std::string& raw) {
    return raw.substr(0, raw.find("\r\n"));
}

}  // namespace

TEST_CASE("HealthServer_Start_Good", "[daemon][health]") {
    CORE_LEAK_GUARD();
    cp::HealthServer s;
    REQUIRE(s.start());
    const std::string addr = s.addr();
    CHECK(addr.rfind("127.0.0.1:", 0) == 0);  // loopback by default
    CHECK(port_of(addr) > 0);
    CHECK(s.running());
    auto r = cp::http_get(addr, "/health", 5s);
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "ok\n");
    SECTION("stop then start again") {
        s.stop();
        CHECK_FALSE(s.running());
        auto gone = cp::http_get(addr, "/health", 2s);
        REQUIRE_FALSE(gone);
        REQUIRE(s.start());
        REQUIRE(cp::probe_health(s.addr(), 5s));
    }
    SECTION("stop is idempotent") {
        s.stop();
        s.stop();
    }
}

TEST_CASE("HealthServer_Start_Bad", "[daemon][health]") {
    CORE_LEAK_GUARD();
    SECTION("port in use") {
        cp::HealthServer a;
        REQUIRE(a.start());
        cp::HealthOptions o;
        o.addr = a.addr();
        cp::HealthServer b(o);
        auto r = b.start();
        REQUIRE_FALSE(r);
        CHECK(r.error().what() == "health: listen " + a.addr() + ": Address already in use");
        CHECK(r.error().code() == EADDRINUSE);
    }
    SECTION("bad addresses name the address") {
        for (const std::string bad : {"nonsense", "127.0.0.1:99999", "example.com:80", ":x"}) {
            cp::HealthOptions o;
            o.addr = bad;
            cp::HealthServer s(o);
            auto r = s.start();
            REQUIRE_FALSE(r);
            INFO(r.error().what());
            CHECK(r.error().what().find("health: listen \"" + bad + "\": bad address") == 0);
        }
    }
    SECTION("already started") {
        cp::HealthServer s;
        REQUIRE(s.start());
        REQUIRE_FALSE(s.start());
    }
    SECTION("socket failure through the fault seam: clear error, nothing leaked") {
        core::sys::fault::Scoped g("socket", EMFILE);
        cp::HealthServer s;
        auto r = s.start();
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == EMFILE);
        CHECK_FALSE(s.running());
    }
    SECTION("epoll failure after bind: the listening socket is closed again") {
        core::sys::fault::Scoped g("epoll_create1", ENOMEM);
        cp::HealthServer s;
        REQUIRE_FALSE(s.start());
    }
}

TEST_CASE("HealthServer_Start_Ugly", "[daemon][health]") {
    CORE_LEAK_GUARD();
    SECTION("localhost is 127.0.0.1") {
        cp::HealthOptions o;
        o.addr = "localhost:0";
        cp::HealthServer s(o);
        REQUIRE(s.start());
        CHECK(s.addr().rfind("127.0.0.1:", 0) == 0);
    }
    SECTION("destroyed while running: joins cleanly") {
        auto s = std::make_unique<cp::HealthServer>();
        REQUIRE(s->start());
        RawClient idle(s->addr());  // a connection in flight
        REQUIRE(idle.connected());
        s.reset();
    }
}

TEST_CASE("HealthServer_Health_Good", "[daemon][health]") {
    CORE_LEAK_GUARD();
    cp::HealthServer s;
    std::atomic<int> calls{0};
    s.add_check("db", [&]() -> core::Result<void> {
        ++calls;
        return {};
    });
    REQUIRE(s.start());
    auto r = cp::http_get(s.addr(), "/health", 5s);
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "ok\n");
    CHECK(calls == 1);
    REQUIRE(cp::probe_health(s.addr(), 5s));
    CHECK(calls == 2);
    SECTION("query strings are ignored for routing") {
        auto q = cp::http_get(s.addr(), "/health?verbose=1", 5s);
        REQUIRE(q);
        CHECK(q->status == 200);
    }
    SECTION("through a raw socket: the exact wire format") {
        RawClient c(s.addr());
        REQUIRE(c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
        const std::string raw = c.read_to_close();
        CHECK(raw ==
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: 3\r\nConnection: close\r\n\r\nok\n");
    }
    SECTION("HEAD: headers only") {
        RawClient c(s.addr());
        REQUIRE(c.send("HEAD /health HTTP/1.0\r\n\r\n"));
        const std::string raw = c.read_to_close();
        CHECK(status_line(raw) == "HTTP/1.1 200 OK");
        CHECK(raw.substr(raw.size() - 4) == "\r\n\r\n");
    }
}

TEST_CASE("HealthServer_Health_Bad", "[daemon][health]") {
    CORE_LEAK_GUARD();
    cp::HealthServer s;
    std::atomic<bool> db_ok{true};
    s.add_check("cache", []() -> core::Result<void> { return {}; });
    s.add_check("db", [&]() -> core::Result<void> {
        if (db_ok) return {};
        return core::fail(core::E("ping", "connection refused"));
    });
    s.add_check("never-reached",
                []() -> core::Result<void> { return core::fail(core::E("x", "second failure")); });
    REQUIRE(s.start());
    auto r = cp::http_get(s.addr(), "/health", 5s);
    REQUIRE(r);
    CHECK(r->status == 503);
    CHECK(r->body == "unhealthy: never-reached: x: second failure\n");
    db_ok = false;
    r = cp::http_get(s.addr(), "/health", 5s);
    REQUIRE(r);
    CHECK(r->status == 503);
    CHECK(r->body == "unhealthy: db: ping: connection refused\n");  // the first failure
    auto p = cp::probe_health(s.addr(), 5s);
    REQUIRE_FALSE(p);
    CHECK(p.error().what() ==
          "probe.health: " + s.addr() + ": status 503: unhealthy: db: ping: connection refused");
    auto c = s.check();
    REQUIRE_FALSE(c);
    CHECK(c.error().what() == "db: ping: connection refused");
}

TEST_CASE("HealthServer_Health_Ugly", "[daemon][health]") {
    CORE_LEAK_GUARD();
    cp::HealthServer s;
    s.add_check("thrower", []() -> core::Result<void> { throw std::runtime_error("boom"); });
    REQUIRE(s.start());
    auto r = cp::http_get(s.addr(), "/health", 5s);
    REQUIRE(r);
    CHECK(r->status == 503);
    CHECK(r->body == "unhealthy: thrower: exception: boom\n");
    SECTION("replacing a check by name") {
        s.add_check("thrower", []() -> core::Result<void> { return {}; });
        REQUIRE(cp::probe_health(s.addr(), 5s));
    }
    SECTION("custom handlers, 404 and 405") {
        s.add_handler("/status", [] {
            return cp::HttpResponse{200, "{\"up\":true}\n", "application/json"};
        });
        auto st = cp::http_get(s.addr(), "/status", 5s);
        REQUIRE(st);
        CHECK(st->status == 200);
        CHECK(st->body == "{\"up\":true}\n");
        auto nf = cp::http_get(s.addr(), "/nope", 5s);
        REQUIRE(nf);
        CHECK(nf->status == 404);
        RawClient c(s.addr());
        REQUIRE(c.send("POST /health HTTP/1.1\r\nContent-Length: 0\r\n\r\n"));
        CHECK(status_line(c.read_to_close()) == "HTTP/1.1 405 Method Not Allowed");
    }
}

TEST_CASE("HealthServer_Ready_Good", "[daemon][health]") {
    CORE_LEAK_GUARD();
    cp::HealthServer s;
    REQUIRE(s.start());
    CHECK(s.ready());
    auto r = cp::http_get(s.addr(), "/ready", 5s);
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "ready\n");
    REQUIRE(cp::probe_ready(s.addr(), 5s));
}

TEST_CASE("HealthServer_Ready_Bad", "[daemon][health]") {
    CORE_LEAK_GUARD();
    cp::HealthServer s;
    REQUIRE(s.start());
    s.set_ready(false);
    auto r = cp::http_get(s.addr(), "/ready", 5s);
    REQUIRE(r);
    CHECK(r->status == 503);
    CHECK(r->body == "not ready\n");
    auto p = cp::probe_ready(s.addr(), 5s);
    REQUIRE_FALSE(p);
    CHECK(p.error().what() == "probe.ready: " + s.addr() + ": status 503: not ready");
    // Readiness is independent of health.
    REQUIRE(cp::probe_health(s.addr(), 5s));
}

TEST_CASE("HealthServer_Ready_Ugly", "[daemon][health]") {
    CORE_LEAK_GUARD();
    cp::HealthOptions o;
    o.ready = false;  // start not ready; flip while serving
    cp::HealthServer s(o);
    REQUIRE(s.start());
    REQUIRE_FALSE(cp::probe_ready(s.addr(), 5s));
    s.set_ready(true);
    REQUIRE(cp::probe_ready(s.addr(), 5s));
}

TEST_CASE("HealthServer_Request_Bad", "[daemon][health]") {
    CORE_LEAK_GUARD();
    cp::HealthServer s;
    REQUIRE(s.start());
    for (const std::string& req :
         {std::string("GARBAGE\r\n\r\n"), std::string("GET /health HTTP/2.0\r\n\r\n"),
          std::string("GET health HTTP/1.1\r\n\r\n"),
          std::string("GET /health HTTP/1.1\r\nBad Header: x\r\n\r\n"),
          std::string("GET /health HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"),
          std::string("GET /he alth HTTP/1.1\r\n\r\n"),
          std::string("GET /health HTTP/1.1\r\nX: a\x01b\r\n\r\n"),
          std::string("\x00\xff\xfe GET / HTTP/1.1\r\n\r\n", 22)}) {
        INFO(req);
        RawClient c(s.addr());
        REQUIRE(c.send(req));
        CHECK(status_line(c.read_to_close()) == "HTTP/1.1 400 Bad Request");
    }
    // The server is still fine.
    REQUIRE(cp::probe_health(s.addr(), 5s));
}

TEST_CASE("HealthServer_Request_Ugly", "[daemon][health]") {
    CORE_LEAK_GUARD();
    cp::HealthOptions o;
    o.read_timeout = 300ms;
    o.max_connections = 4;
    cp::HealthServer s(o);
    REQUIRE(s.start());

    SECTION("oversized head: 431 and closed") {
        RawClient c(s.addr());
        std::string req = "GET /health HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n";
        c.send(req);  // the server may close before it has all of it
        bool closed = false;
        const std::string raw = c.read_to_close(10s, &closed);
        CHECK(closed);
        CHECK(status_line(raw) == "HTTP/1.1 431 Request Header Fields Too Large");
    }
    SECTION("head just under the limit is fine") {
        RawClient c(s.addr());
        const std::string start = "GET /health HTTP/1.1\r\nX-Pad: ";
        const std::string req = start + std::string(8192 - start.size() - 4, 'p') + "\r\n\r\n";
        REQUIRE(req.size() == 8192);
        REQUIRE(c.send(req));
        CHECK(status_line(c.read_to_close()) == "HTTP/1.1 200 OK");
    }
    SECTION("slow client: cut off by the read timeout") {
        RawClient c(s.addr());
        REQUIRE(c.send("GET /health HTTP/1.1\r\n"));  // never finishes its head
        bool closed = false;
        const std::string raw = c.read_to_close(10s, &closed);
        CHECK(closed);  // the server closed it; no response for an incomplete request
        CHECK(raw.empty());
        // Others are served meanwhile and after.
        REQUIRE(cp::probe_health(s.addr(), 5s));
    }
    SECTION("connection cap: extra connections get 503 and are closed") {
        // A long read timeout here, so the idle connections stay for the whole check.
        cp::HealthOptions capped;
        capped.max_connections = 4;
        capped.read_timeout = 60s;
        cp::HealthServer s2(capped);
        REQUIRE(s2.start());
        std::vector<std::unique_ptr<RawClient>> idle;
        for (int i = 0; i < 4; ++i) {
            idle.push_back(std::make_unique<RawClient>(s2.addr()));
            REQUIRE(idle.back()->connected());
        }
        // The server counts a connection once it has accepted it; wait until all four are in by
        // checking that the fifth is refused (it arrives after them on the same listen queue).
        RawClient extra(s2.addr());
        bool closed = false;
        const std::string raw = extra.read_to_close(10s, &closed);
        CHECK(closed);
        CHECK(status_line(raw) == "HTTP/1.1 503 Service Unavailable");
        idle.clear();
        // Once the idle ones are gone (closed by us), new clients are served again.
        CHECK(core::test::eventually([&] { return bool(cp::probe_health(s2.addr(), 2s)); }));
    }
    SECTION("client closes early: server unaffected") {
        {
            RawClient c(s.addr());
            REQUIRE(c.send("GET /hea"));
        }
        REQUIRE(cp::probe_health(s.addr(), 5s));
    }
    SECTION("fault: accept4 failing (EMFILE) pauses accepting instead of spinning, then recovers") {
        {
            core::sys::fault::Scoped g("accept4", EMFILE, -1);  // until disarmed
            RawClient c(s.addr());
            REQUIRE(c.connected());  // the kernel completed the handshake; accept keeps failing
            REQUIRE(core::test::eventually([] { return core::sys::fault::fired("accept4") >= 2; }));
            // A level-triggered spin would have retried thousands of times by now; the pause
            // allows one retry per 100 ms (20: slack for a loaded machine).
            CHECK(core::sys::fault::fired("accept4") <= 20);
        }
        CHECK(core::test::eventually([&] { return bool(cp::probe_health(s.addr(), 2s)); }));
    }
}

TEST_CASE("Probe_Health_Good", "[daemon][health]") {
    CORE_LEAK_GUARD();
    cp::HealthServer s;
    REQUIRE(s.start());
    SECTION("concurrent probes") {
        std::atomic<int> ok{0};
        std::mutex mu;
        std::vector<std::string> errors;
        std::vector<std::thread> ts;
        for (int t = 0; t < 8; ++t)
            ts.emplace_back([&] {
                for (int i = 0; i < 25; ++i) {
                    auto h = cp::probe_health(s.addr(), 5s);
                    auto r = cp::probe_ready(s.addr(), 5s);
                    if (h && r) {
                        ++ok;
                    } else {
                        std::lock_guard lk(mu);
                        errors.push_back(h ? r.error().what() : h.error().what());
                    }
                }
            });
        for (auto& t : ts) t.join();
        for (const auto& e : errors) UNSCOPED_INFO(e);
        CHECK(ok == 200);
    }
    SECTION("URL form") {
        auto r = cp::http_get_url("http://" + s.addr() + "/ready", 5s);
        REQUIRE(r);
        CHECK(r->body == "ready\n");
    }
}

TEST_CASE("Probe_Health_Bad", "[daemon][health]") {
    CORE_LEAK_GUARD();
    std::string addr;
    {
        cp::HealthServer s;
        REQUIRE(s.start());
        addr = s.addr();
    }
    auto r = cp::probe_health(addr, 2s);
    REQUIRE_FALSE(r);
    CHECK(r.error().what() == "probe.health: http.get: " + addr + ": connect: Connection refused");
    CHECK(r.error().code() == ECONNREFUSED);
    auto u = cp::http_get_url("https://" + addr + "/", 1s);
    REQUIRE_FALSE(u);
    CHECK(u.error().what().find("only http:// URLs") != std::string::npos);
    auto bad = cp::http_get("localhost", "/", 1s);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().what().find("bad address") != std::string::npos);
}

TEST_CASE("Probe_Health_Ugly", "[daemon][health]") {
    CORE_LEAK_GUARD();
    SECTION("a server that accepts and never answers: timeout") {
        int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
        REQUIRE(::listen(lfd, 4) == 0);
        socklen_t len = sizeof sa;
        ::getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &len);
        const std::string addr = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
        auto r = cp::probe_health(addr, 200ms);
        ::close(lfd);
        REQUIRE_FALSE(r);
        CHECK(r.error().what() ==
              "probe.health: http.get: " + addr + ": read: timed out after 200ms");
        CHECK(r.error().code() == ETIMEDOUT);
    }
    SECTION("a server answering garbage") {
        int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
        REQUIRE(::listen(lfd, 4) == 0);
        socklen_t len = sizeof sa;
        ::getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &len);
        const std::string addr = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
        std::thread srv([lfd] {
            int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
            char buf[1024];
            (void)!::recv(c, buf, sizeof buf, 0);
            const char junk[] = "SSH-2.0-OpenSSH\r\n";
            (void)!::send(c, junk, sizeof junk - 1, MSG_NOSIGNAL);
            ::close(c);
        });
        auto r = cp::http_get(addr, "/health", 5s);
        srv.join();
        ::close(lfd);
        REQUIRE_FALSE(r);
        CHECK(r.error().what().find("malformed response") != std::string::npos);
    }
}

TEST_CASE("Http_ParseRequest_Good", "[daemon][health]") {
    CORE_LEAK_GUARD();
    auto r =
        core::http::parse_request("\r\nGET /health?x=1 HTTP/1.0\r\nHost: a\r\nX-Y:  v v \r\n\r\n");
    REQUIRE(r);
    CHECK(r->method == "GET");
    CHECK(r->target == "/health?x=1");
    CHECK(r->path == "/health");
    CHECK(r->minor_version == 0);
    REQUIRE(r->headers.size() == 2);
    CHECK(r->headers[1].first == "x-y");
    CHECK(r->headers[1].second == "v v");
    auto lf = core::http::parse_request("GET / HTTP/1.1\nA: b\n\n");
    REQUIRE(lf);
    CHECK(core::http::find_head_end("GET / HTTP/1.1\r\n\r\nrest") == 18);
    CHECK(core::http::find_head_end("GET / HTTP/1.1\r\n") == std::string::npos);
}

TEST_CASE("Http_ParseResponse_Ugly", "[daemon][health]") {
    CORE_LEAK_GUARD();
    auto chunked = core::http::parse_response(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nok\n\r\n0\r\n\r\n");
    REQUIRE(chunked);
    CHECK(chunked->body == "ok\n");
    CHECK_FALSE(core::http::parse_response("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"));
    CHECK_FALSE(core::http::parse_response("HTTP/1.1 2x0 OK\r\n\r\n"));
    CHECK_FALSE(core::http::parse_response(
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"));
    auto eof = core::http::parse_response("HTTP/1.0 503 Service Unavailable\r\n\r\nbusy");
    REQUIRE(eof);
    CHECK(eof->status == 503);
    CHECK(eof->body == "busy");
}

// ---------------------------------------------------------------- issue 14 (helper B): checks off
// the server thread, closing connections outside the cap

TEST_CASE("HealthServer_Checks_Ugly", "[daemon][health]") {
    CORE_LEAK_GUARD();
    std::mutex mu;
    std::condition_variable cv;
    bool release = false;
    std::atomic<int> runs{0};
    auto slow = [&]() -> core::Result<void> {
        ++runs;
        std::unique_lock lk(mu);
        cv.wait_for(lk, 10s, [&] { return release; });  // bounded: never hangs the test
        return {};
    };
    auto open_gate = [&] {
        {
            std::lock_guard lk(mu);
            release = true;
        }
        cv.notify_all();
    };
    SECTION("a slow check holds up neither /ready nor other routes; waiters share one run") {
        cp::HealthOptions o;
        o.read_timeout = 20s;
        cp::HealthServer s(o);
        s.add_check("slow", slow);
        s.add_handler("/status", [] { return cp::HttpResponse{200, "fine\n"}; });
        REQUIRE(s.start());
        RawClient a(s.addr()), b(s.addr());
        REQUIRE(a.send("GET /health HTTP/1.1\r\n\r\n"));
        REQUIRE(b.send("GET /health HTTP/1.1\r\n\r\n"));
        REQUIRE(core::test::eventually([&] { return runs.load() >= 1; }));
        // While the check blocks, the server thread answers everything else.
        CHECK(cp::probe_ready(s.addr(), 2s));
        auto st = cp::http_get(s.addr(), "/status", 2s);
        REQUIRE(st);
        CHECK(st->body == "fine\n");
        open_gate();
        CHECK(status_line(a.read_to_close()) == "HTTP/1.1 200 OK");
        CHECK(status_line(b.read_to_close()) == "HTTP/1.1 200 OK");
        CHECK(runs.load() <= 2);  // b joined a's run, or had one of its own: never one each more
        s.stop();
    }
    SECTION("a check that outlives the read timeout: 503, not a hang") {
        cp::HealthOptions o;
        o.read_timeout = 300ms;
        cp::HealthServer s(o);
        s.add_check("slow", slow);
        REQUIRE(s.start());
        RawClient c(s.addr());
        REQUIRE(c.send("GET /health HTTP/1.1\r\n\r\n"));
        const std::string raw = c.read_to_close(10s);
        CHECK(status_line(raw) == "HTTP/1.1 503 Service Unavailable");
        CHECK(raw.find("checks still running") != std::string::npos);
        open_gate();
        s.stop();
    }
    SECTION("answered connections the client keeps open do not count against the cap") {
        cp::HealthOptions o;
        o.max_connections = 4;
        o.read_timeout = 60s;
        cp::HealthServer s(o);
        REQUIRE(s.start());
        std::vector<std::unique_ptr<RawClient>> lingering;
        for (int i = 0; i < 8; ++i) {
            lingering.push_back(std::make_unique<RawClient>(s.addr()));
            REQUIRE(lingering.back()->send("GET /ready HTTP/1.1\r\n\r\n"));
            bool closed = false;  // the server's half-close; our side stays open
            CHECK(status_line(lingering.back()->read_to_close(10s, &closed)) == "HTTP/1.1 200 OK");
        }
        CHECK(cp::probe_health(s.addr(), 2s));
        open_gate();
        s.stop();
    }
    open_gate();
}

// Issue 16 item 5: the cap counts only live connections (reading a head, waiting for the
// checks, writing a reply). Answered connections the client keeps open are closing and do not
// count; requests waiting for a check do.
TEST_CASE("HealthServer_Cap_Good", "[daemon][health]") {
    CORE_LEAK_GUARD();
    std::mutex mu;
    std::condition_variable cv;
    bool release = false;
    std::atomic<int> runs{0};
    cp::HealthOptions o;
    o.max_connections = 4;
    o.read_timeout = 60s;
    cp::HealthServer s(o);
    s.add_check("gate", [&]() -> core::Result<void> {
        ++runs;
        std::unique_lock lk(mu);
        cv.wait_for(lk, 20s, [&] { return release; });  // bounded: never hangs the test
        return {};
    });
    REQUIRE(s.start());
    auto open_gate = [&] {
        {
            std::lock_guard lk(mu);
            release = true;
        }
        cv.notify_all();
    };
    // Twice the cap of answered connections, left open by their clients: closing, not live.
    std::vector<std::unique_ptr<RawClient>> lingering;
    for (int i = 0; i < 8; ++i) {
        lingering.push_back(std::make_unique<RawClient>(s.addr()));
        REQUIRE(lingering.back()->send("GET /ready HTTP/1.1\r\n\r\n"));
        CHECK(status_line(lingering.back()->read_to_close()) == "HTTP/1.1 200 OK");
    }
    SECTION("requests waiting for the checks fill the cap; a newcomer waits for a slot") {
        std::vector<std::unique_ptr<RawClient>> waiting;
        for (int i = 0; i < 4; ++i) {
            waiting.push_back(std::make_unique<RawClient>(s.addr()));
            REQUIRE(waiting.back()->send("GET /health HTTP/1.1\r\n\r\n"));
        }
        REQUIRE(core::test::eventually([&] { return runs.load() >= 1; }));
        // Every live slot answers a request, none half-sent to make room: the newcomer's
        // complete request is held (not read, not refused) until one is free.
        RawClient extra(s.addr());
        REQUIRE(extra.send("GET /ready HTTP/1.1\r\n\r\n"));
        bool closed = false;
        CHECK(extra.read_to_close(300ms, &closed).empty());
        CHECK_FALSE(closed);
        open_gate();
        for (auto& w : waiting) CHECK(status_line(w->read_to_close()) == "HTTP/1.1 200 OK");
        CHECK(status_line(extra.read_to_close()) == "HTTP/1.1 200 OK");
        // The eight lingering ones are still open, and the server serves again.
        CHECK(cp::probe_ready(s.addr(), 5s));
    }
    SECTION("closing connections beyond the cap never refuse a newcomer") {
        for (int i = 0; i < 32; ++i) {
            lingering.push_back(std::make_unique<RawClient>(s.addr()));
            REQUIRE(lingering.back()->send("GET /ready HTTP/1.1\r\n\r\n"));
            CHECK(status_line(lingering.back()->read_to_close()) == "HTTP/1.1 200 OK");
        }
        open_gate();
        CHECK(cp::probe_health(s.addr(), 5s));
    }
    open_gate();
    s.stop();
}

// Issue 16 item 5: 1000 connections, most of them slowloris clients that send half a head and
// hold it (a long read timeout, so none expires during the test): /health is still answered,
// because a prober with a complete head takes the slot of the oldest half-sent one.
TEST_CASE("HealthServer_Slowloris_Ugly", "[daemon][health]") {
    constexpr int kConns = 1000;
    // Both ends live in this process: the clients' 1000, and the server's (at most its cap
    // plus the bounded closing ones).
    rlimit rl{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &rl) == 0);
    const rlim_t want = 2 * kConns + 512;
    if (rl.rlim_cur < want) {
        if (rl.rlim_max < want) SKIP("RLIMIT_NOFILE hard limit below " << want);
        rl.rlim_cur = want;
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &rl) == 0);
    }
    CORE_LEAK_GUARD();
    cp::HealthOptions o;
    o.read_timeout = 60s;
    cp::HealthServer s(o);  // the default cap (64)
    REQUIRE(s.start());
    std::vector<std::unique_ptr<RawClient>> clients;
    clients.reserve(kConns);
    int slow = 0, normal = 0;
    for (int i = 0; i < kConns; ++i) {
        clients.push_back(std::make_unique<RawClient>(s.addr()));
        REQUIRE(clients.back()->connected());
        if (i % 10 == 9) {
            // One in ten sends a whole request and keeps its end open after the reply.
            REQUIRE(clients.back()->send("GET /health HTTP/1.1\r\n\r\n"));
            ++normal;
        } else {
            REQUIRE(clients.back()->send("GET /health HTTP/1.1\r\nX-Slow: "));
            ++slow;
        }
    }
    CHECK(slow == 900);
    CHECK(normal == 100);
    SECTION("a probe is answered while slow clients hold every slot") {
        for (int i = 0; i < 3; ++i) CHECK(cp::probe_health(s.addr(), 5s));
        CHECK(cp::probe_ready(s.addr(), 5s));
    }
    SECTION("a slow client's connection is closed, never answered as if complete") {
        REQUIRE(cp::probe_health(s.addr(), 5s));
        // The oldest slow clients made room: closed without a response.
        bool closed = false;
        const std::string raw = clients.front()->read_to_close(10s, &closed);
        CHECK(closed);
        CHECK(raw.empty());
    }
    clients.clear();
    s.stop();
}
