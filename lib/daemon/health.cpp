#include "core/process/health.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/log.hpp"
#include "daemon/http.hpp"
#include "sys/fd.hpp"
#include "sys/net.hpp"
#include "sys/poll.hpp"

namespace core::process {

namespace net = core::sys::net;
using sys::UniqueFd;
using Clock = std::chrono::steady_clock;

namespace detail {

// "host:port" → Endpoint; host is an IPv4 literal, "localhost" or empty (127.0.0.1).
Result<net::Endpoint> parse_endpoint(const std::string& op, const std::string& addr) {
    std::string_view s = addr;
    if (s.substr(0, 7) == "http://") s.remove_prefix(7);
    const std::size_t colon = s.rfind(':');
    if (colon == std::string_view::npos)
        return fail(Error(op, "\"" + addr + "\": bad address (want host:port)", EINVAL));
    std::string host(s.substr(0, colon));
    const std::string_view port_s = s.substr(colon + 1);
    unsigned port = 0;
    auto [p, ec] = std::from_chars(port_s.data(), port_s.data() + port_s.size(), port);
    if (port_s.empty() || ec != std::errc() || p != port_s.data() + port_s.size() || port > 65535)
        return fail(Error(op, "\"" + addr + "\": bad address (port must be 0-65535)", EINVAL));
    if (host.empty() || host == "localhost") host = "127.0.0.1";
    net::Endpoint ep;
    if (!net::parse_ipv4(host, &ep.addr_be))
        return fail(
            Error(op, "\"" + addr + "\": bad address (host must be an IPv4 address or localhost)",
                  EINVAL));
    ep.port = static_cast<std::uint16_t>(port);
    return ep;
}

// The strerror part of a sys error ("bind: 1.2.3.4:5: Permission denied" → "Permission
// denied"), so callers can say the address once.
std::string errno_text(const Error& e) {
    const std::string& msg = e.message();
    const std::size_t at = msg.rfind(": ");
    return at == std::string::npos ? msg : msg.substr(at + 2);
}

}  // namespace detail

namespace {

constexpr std::uint64_t kListenTag = 0;
constexpr std::uint64_t kWakeTag = 1;
constexpr std::size_t kDrainCap = 64 * 1024;  // bytes discarded after a reply before closing
constexpr std::chrono::milliseconds kAcceptPause{100};  // after accept fails (EMFILE…)

struct Conn {
    UniqueFd fd;
    std::uint64_t tag = 0;
    bool want_out = false;  // EPOLLOUT registered (only while a reply is blocked)
    std::string in;
    std::string out;
    std::size_t out_off = 0;
    Clock::time_point deadline;
    // waiting: a /health request whose checks run on the checks thread.
    enum class Phase { reading, waiting, writing, draining } phase = Phase::reading;
    bool head_only = false;
    std::size_t drained = 0;
};

}  // namespace

struct HealthServer::Impl {
    HealthOptions opts;
    std::shared_ptr<spdlog::logger> log;

    mutable std::mutex mu;  // guards checks, handlers, bound, running, thread
    std::vector<std::pair<std::string, HealthCheck>> checks;
    std::map<std::string, HttpHandler> handlers;
    std::string bound;
    bool running = false;
    std::thread thread;
    std::atomic<bool> ready{true};
    std::atomic<bool> stopping{false};

    // Server thread only: accepting is paused after an accept error until resume_accept_at.
    bool accept_paused = false;
    Clock::time_point resume_accept_at{};

    // Owned by the server thread while it runs (created by start, closed by stop after join).
    UniqueFd listen_fd;
    sys::Epoll epoll;
    sys::EventFd wake;

    // GET /health runs the checks on their own thread, one run at a time whose result answers
    // every request waiting when it ends (single flight): a slow check never holds up /ready,
    // the other routes or accepting, and the number of check runs in flight is one.
    std::mutex check_mu;  // guards the four below
    std::condition_variable check_cv;
    bool check_wanted = false;
    bool check_quit = false;
    std::optional<Result<void>> check_result;  // a finished run, for the server thread
    std::thread check_thread;
    // Server thread only.
    std::vector<std::uint64_t> waiting;  // connections waiting for the run in flight
    bool check_in_flight = false;

    void check_loop() {
        std::unique_lock lk(check_mu);
        for (;;) {
            check_cv.wait(lk, [&] { return check_quit || check_wanted; });
            if (check_quit) return;
            check_wanted = false;
            lk.unlock();
            Result<void> r = run_checks();
            lk.lock();
            check_result = std::move(r);
            wake.signal();
        }
    }

    void want_check() {
        if (check_in_flight) return;
        check_in_flight = true;
        {
            std::lock_guard lk(check_mu);
            check_wanted = true;
        }
        check_cv.notify_one();
    }

    static HttpResponse health_response(const Result<void>& r) {
        if (r) return {200, "ok\n"};
        return {503, "unhealthy: " + r.error().what() + "\n"};
    }

    // Answers a waiting connection; false when it is finished and must be closed.
    bool answer(Conn& c, const HttpResponse& resp) {
        respond(c, resp, c.head_only);
        if (!epoll.modify(c.fd.get(), sys::ev_in, c.tag)) return false;
        return service(c);
    }

    // The run in flight ended: every waiting request gets its result.
    void deliver_checks(std::unordered_map<std::uint64_t, Conn>& conns) {
        std::optional<Result<void>> r;
        {
            std::lock_guard lk(check_mu);
            r.swap(check_result);
        }
        if (!r) return;
        check_in_flight = false;
        const HttpResponse resp = health_response(*r);
        auto tags = std::move(waiting);
        waiting.clear();
        for (auto tag : tags) {
            auto it = conns.find(tag);
            if (it == conns.end() || it->second.phase != Conn::Phase::waiting) continue;
            if (!answer(it->second, resp)) conns.erase(it);
        }
    }

    Result<void> run_checks() const {
        std::vector<std::pair<std::string, HealthCheck>> snap;
        {
            std::lock_guard lk(mu);
            snap = checks;
        }
        for (const auto& [name, fn] : snap) {
            Result<void> r;
            // A check is user code: an exception from it is a failed check, never a dead
            // server thread (std::terminate).
            try {
                if (fn) r = fn();
            } catch (const std::exception& e) {
                r = fail(E("exception", e.what()));
            } catch (...) {
                r = fail(E("exception", "unknown"));
            }
            if (!r) return fail(E(name, r.error().what()));
        }
        return {};
    }

    HttpResponse route(const detail::HttpRequest& req) const {
        if (req.method != "GET" && req.method != "HEAD") return {405, "method not allowed\n"};
        if (req.path == "/health") {
            auto r = run_checks();
            if (r) return {200, "ok\n"};
            return {503, "unhealthy: " + r.error().what() + "\n"};
        }
        if (req.path == "/ready") {
            if (ready.load()) return {200, "ready\n"};
            return {503, "not ready\n"};
        }
        HttpHandler h;
        {
            std::lock_guard lk(mu);
            auto it = handlers.find(req.path);
            if (it != handlers.end()) h = it->second;
        }
        if (!h) return {404, "not found\n"};
        try {
            return h();
        } catch (...) {
            return {500, "internal error\n"};
        }
    }

    // Turns conn into a writer of resp; the connection closes after it.
    void respond(Conn& c, const HttpResponse& resp, bool head_only = false) {
        c.out = detail::format_response(resp, head_only);
        c.out_off = 0;
        c.phase = Conn::Phase::writing;
        c.deadline = Clock::now() + opts.read_timeout;
    }

    // Advances one connection; false when it is finished and must be closed.
    bool service(Conn& c) {
        if (c.phase == Conn::Phase::waiting) return false;  // an error or hang-up: it is gone
        if (c.phase == Conn::Phase::reading) {
            char buf[4096];
            // Level-triggered, so stopping early is safe; but read what is there, so a head
            // sent in pieces is parsed as soon as it is complete.
            for (;;) {
                auto io = net::recv_some(c.fd.get(), buf, sizeof buf);
                if (!io) return false;
                if (*io == sys::would_block) return true;
                if (*io == 0) return false;  // client gave up before a full head
                c.in.append(buf, static_cast<std::size_t>(*io));
                const std::size_t end = detail::find_head_end(c.in);
                if (end != std::string::npos && end <= opts.max_head) {
                    auto req = detail::parse_request(std::string_view(c.in).substr(0, end));
                    if (!req) {
                        SPDLOG_LOGGER_DEBUG(log, "health: bad request: {}", req.error().what());
                        respond(c, {400, "bad request\n"});
                    } else if (req->path == "/health" &&
                               (req->method == "GET" || req->method == "HEAD")) {
                        // Nothing more is read from it: no events but errors while waiting.
                        if (!epoll.modify(c.fd.get(), 0, c.tag)) return false;
                        c.phase = Conn::Phase::waiting;
                        c.head_only = req->method == "HEAD";
                        waiting.push_back(c.tag);
                        want_check();
                        return true;
                    } else {
                        respond(c, route(*req), req->method == "HEAD");
                    }
                    break;
                }
                if (c.in.size() > opts.max_head) {
                    respond(c, {431, "request header too large\n"});
                    break;
                }
            }
        }
        if (c.phase == Conn::Phase::writing) {
            while (c.out_off < c.out.size()) {
                auto io = net::send_some(c.fd.get(), std::string_view(c.out).substr(c.out_off));
                if (!io) return false;
                if (*io == sys::would_block) {
                    // Level-triggered: ask for writability only while we have bytes to send,
                    // or the loop would spin on an always-writable socket.
                    if (!c.want_out) {
                        if (!epoll.modify(c.fd.get(), sys::ev_in | sys::ev_out, c.tag))
                            return false;
                        c.want_out = true;
                    }
                    return true;
                }
                c.out_off += static_cast<std::size_t>(*io);
            }
            if (c.want_out) {
                if (!epoll.modify(c.fd.get(), sys::ev_in, c.tag)) return false;
                c.want_out = false;
            }
            // Half-close and drain what the client still sends: closing a socket with unread
            // input makes the kernel send RST, which can destroy our reply in flight.
            net::shutdown_write(c.fd.get());
            c.phase = Conn::Phase::draining;
            c.in.clear();
            c.in.shrink_to_fit();
        }
        // draining (level-triggered: one read per event is enough; EOF stays readable)
        char buf[4096];
        auto io = net::recv_some(c.fd.get(), buf, sizeof buf);
        if (!io || *io == 0) return false;
        if (*io > 0) c.drained += static_cast<std::size_t>(*io);
        return c.drained <= kDrainCap;
    }

    void loop() {
        std::unordered_map<std::uint64_t, Conn> conns;
        std::uint64_t next_tag = 2;
        sys::PollEvent evs[64];
        while (!stopping.load()) {
            int timeout_ms = -1;
            const auto now = Clock::now();
            auto consider = [&](Clock::time_point deadline) {
                auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
                if (left < 0) left = 0;
                if (timeout_ms < 0 || left < timeout_ms) timeout_ms = static_cast<int>(left);
            };
            for (const auto& [tag, c] : conns) consider(c.deadline);
            if (accept_paused) {
                if (now >= resume_accept_at) {
                    if (epoll.add(listen_fd.get(), sys::ev_in, kListenTag))
                        accept_paused = false;
                    else
                        resume_accept_at = now + kAcceptPause;
                }
                if (accept_paused) consider(resume_accept_at);
            }
            auto n = epoll.wait(evs, 64, timeout_ms);
            if (!n) {
                SPDLOG_LOGGER_DEBUG(log, "health: {}", n.error().what());
                break;  // epoll itself broke: nothing sensible left to do but stop serving
            }
            for (int i = 0; i < *n; ++i) {
                const std::uint64_t tag = evs[i].data;
                if (tag == kWakeTag) {
                    wake.drain();
                    deliver_checks(conns);
                    continue;
                }
                if (tag == kListenTag) {
                    accept_all(conns, next_tag);
                    continue;
                }
                auto it = conns.find(tag);
                if (it == conns.end()) continue;
                if (!service(it->second)) conns.erase(it);  // closes the fd (epoll forgets it)
            }
            // Slow clients: a connection past its deadline is closed, whatever its phase.
            const auto after = Clock::now();
            for (auto it = conns.begin(); it != conns.end();) {
                if (it->second.deadline > after) {
                    ++it;
                } else if (it->second.phase == Conn::Phase::waiting) {
                    // The checks outlived the request's time: say so rather than hang up.
                    const bool keep = answer(
                        it->second, {503, "unhealthy: checks still running after " +
                                              std::to_string(opts.read_timeout.count()) + "ms\n"});
                    it = keep ? std::next(it) : conns.erase(it);
                } else {
                    SPDLOG_LOGGER_DEBUG(log, "health: closing a connection after the read timeout");
                    it = conns.erase(it);
                }
            }
        }
    }

    void accept_all(std::unordered_map<std::uint64_t, Conn>& conns, std::uint64_t& next_tag) {
        // A bounded batch: clients that reconnect as fast as we answer would otherwise keep
        // this loop from ever returning to epoll_wait, and the closes of finished connections
        // (and stop()) would never be seen. The listen fd is level-triggered: the rest waits.
        for (int batch = 0; batch < 16; ++batch) {
            auto fd = net::accept(listen_fd.get());
            if (!fd) {
                // EMFILE, ENFILE, ENOMEM…: the pending connection stays queued and the
                // level-triggered listen fd would make epoll_wait return at once, forever. Stop
                // watching it for a moment (a deadline in the loop, not a sleep), then retry.
                SPDLOG_LOGGER_DEBUG(log, "health: {}; pausing accepts", fd.error().what());
                if (epoll.remove(listen_fd.get())) {
                    accept_paused = true;
                    resume_accept_at = Clock::now() + kAcceptPause;
                }
                return;
            }
            if (!fd->valid()) return;
            // Connections already answered and only draining before their close do not count:
            // they end on their own, and counting them let fast clients lock everyone out.
            // They still hold descriptors, so past a hard bound the draining ones are closed.
            std::size_t active = 0;
            for (const auto& [t, c] : conns) active += c.phase != Conn::Phase::draining;
            if (conns.size() >= 4 * opts.max_connections) {
                for (auto it = conns.begin(); it != conns.end();)
                    it =
                        it->second.phase == Conn::Phase::draining ? conns.erase(it) : std::next(it);
            }
            if (active >= opts.max_connections) {
                // Best effort: one non-blocking send of a tiny reply, then close.
                (void)net::send_some(fd->get(),
                                     detail::format_response({503, "too many connections\n"}));
                continue;
            }
            const std::uint64_t tag = next_tag++;
            if (!epoll.add(fd->get(), sys::ev_in, tag)) {
                continue;  // fd closes here; the client sees the connection drop
            }
            Conn c;
            c.fd = std::move(*fd);
            c.tag = tag;
            c.deadline = Clock::now() + opts.read_timeout;
            auto [it, ok] = conns.emplace(tag, std::move(c));
            (void)ok;
            if (!service(it->second)) conns.erase(it);
        }
    }
};

HealthServer::HealthServer(HealthOptions opts) : impl_(std::make_unique<Impl>()) {
    impl_->opts = std::move(opts);
    impl_->log = impl_->opts.logger ? impl_->opts.logger : core::default_logger();
    impl_->ready.store(impl_->opts.ready);
    if (impl_->opts.max_connections == 0) impl_->opts.max_connections = 1;
    if (impl_->opts.max_head < 64) impl_->opts.max_head = 64;
    if (impl_->opts.read_timeout <= std::chrono::milliseconds(0))
        impl_->opts.read_timeout = std::chrono::milliseconds(5000);
}

HealthServer::~HealthServer() {
    stop();
}

Result<void> HealthServer::start() {
    Impl& m = *impl_;
    std::lock_guard lk(m.mu);
    if (m.running) return fail(E("health", "already started on " + m.bound));
    const std::string want = m.opts.addr.empty() ? "127.0.0.1:0" : m.opts.addr;
    auto ep = detail::parse_endpoint("health", want);
    if (!ep) return fail(Error("health", "listen " + ep.error().message(), EINVAL));
    auto listen = net::tcp_listen(*ep, 128);
    if (!listen)
        return fail(Error(
            "health", "listen " + net::to_string(*ep) + ": " + detail::errno_text(listen.error()),
            listen.error().code()));
    auto port = net::local_port(listen->get());
    if (!port) return fail(E("health", "listen " + want, port.error()));
    auto epfd = sys::Epoll::create();
    if (!epfd) return fail(E("health", "start", epfd.error()));
    auto wake = sys::EventFd::create();
    if (!wake) return fail(E("health", "start", wake.error()));
    if (auto r = epfd->add(listen->get(), sys::ev_in, kListenTag); !r)
        return fail(E("health", "start", r.error()));
    if (auto r = epfd->add(wake->fd(), sys::ev_in, kWakeTag); !r)
        return fail(E("health", "start", r.error()));
    net::Endpoint bound = *ep;
    bound.port = *port;
    m.bound = net::to_string(bound);
    m.listen_fd = std::move(*listen);
    m.epoll = std::move(*epfd);
    m.wake = std::move(*wake);
    m.stopping.store(false);
    m.accept_paused = false;
    m.waiting.clear();
    m.check_in_flight = false;
    {
        std::lock_guard clk(m.check_mu);
        m.check_wanted = false;
        m.check_quit = false;
        m.check_result.reset();
    }
    try {
        m.check_thread = std::thread([&m] { m.check_loop(); });
        m.thread = std::thread([&m] { m.loop(); });
    } catch (const std::system_error& e) {
        {
            std::lock_guard clk(m.check_mu);
            m.check_quit = true;
        }
        m.check_cv.notify_one();
        if (m.check_thread.joinable()) m.check_thread.join();
        m.listen_fd.reset();
        m.epoll = {};
        m.wake = {};
        return fail(Error("health", std::string("start thread: ") + e.what(), e.code().value()));
    }
    m.running = true;
    SPDLOG_LOGGER_DEBUG(m.log, "health: listening on {}", m.bound);
    unsigned char octets[4];
    std::memcpy(octets, &bound.addr_be, sizeof octets);  // network order: first octet first
    if (octets[0] != 127)
        m.log->warn(
            "health: listening on {}, which is not a loopback address: /health, /ready and every "
            "added route (e.g. /status) can be reached from other hosts",
            m.bound);
    return {};
}

void HealthServer::stop() {
    Impl& m = *impl_;
    std::thread t;
    {
        std::lock_guard lk(m.mu);
        if (!m.running) return;
        m.running = false;
        t = std::move(m.thread);
    }
    m.stopping.store(true);
    m.wake.signal();
    if (t.joinable()) t.join();
    std::thread ct;
    {
        std::lock_guard clk(m.check_mu);
        m.check_quit = true;
        ct = std::move(m.check_thread);
    }
    m.check_cv.notify_one();
    if (ct.joinable()) ct.join();  // after a check that is running returns
    // The loop's connections closed when it returned; now the shared descriptors.
    m.listen_fd.reset();
    m.epoll = {};
    m.wake = {};
}

bool HealthServer::running() const {
    std::lock_guard lk(impl_->mu);
    return impl_->running;
}

std::string HealthServer::addr() const {
    std::lock_guard lk(impl_->mu);
    return impl_->running ? impl_->bound : impl_->opts.addr;
}

void HealthServer::add_check(const std::string& name, HealthCheck check) {
    std::lock_guard lk(impl_->mu);
    for (auto& [n, fn] : impl_->checks) {
        if (n == name) {
            fn = std::move(check);
            return;
        }
    }
    impl_->checks.emplace_back(name, std::move(check));
}

void HealthServer::add_handler(const std::string& path, HttpHandler handler) {
    std::lock_guard lk(impl_->mu);
    impl_->handlers[path] = std::move(handler);
}

void HealthServer::set_ready(bool ready) {
    impl_->ready.store(ready);
}
bool HealthServer::ready() const {
    return impl_->ready.load();
}
Result<void> HealthServer::check() const {
    return impl_->run_checks();
}

// --- client ---

namespace {

std::string ms_text(std::chrono::milliseconds t) {
    return std::to_string(t.count()) + "ms";
}

Error step_error(const std::string& addr, const char* step, const Error& e) {
    return Error("http.get", addr + ": " + step + ": " + detail::errno_text(e), e.code());
}

}  // namespace

Result<HttpResponse> http_get(const std::string& addr, const std::string& path,
                              std::chrono::milliseconds timeout) {
    constexpr std::size_t kMaxResponse = (std::size_t{1} << 20) + 16 * 1024;
    auto ep = detail::parse_endpoint("http.get", addr);
    if (!ep) return tl::unexpected(ep.error());
    if (path.empty() || path.front() != '/')
        return fail(
            Error("http.get", addr + ": path must start with '/': \"" + path + "\"", EINVAL));
    for (char c : path)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
            return fail(Error("http.get", addr + ": bad byte in path", EINVAL));
    const std::string where = net::to_string(*ep);
    const auto deadline = Clock::now() + timeout;
    auto left = [&] {
        auto l = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        return l.count() < 0 ? std::chrono::milliseconds(0) : l;
    };
    auto timed_out = [&](const char* step) {
        return Error("http.get", where + ": " + step + ": timed out after " + ms_text(timeout),
                     ETIMEDOUT);
    };

    bool in_progress = false;
    auto fd = net::tcp_connect_start(*ep, &in_progress);
    if (!fd) return fail(step_error(where, "connect", fd.error()));
    if (in_progress) {
        auto ok = sys::wait_writable(fd->get(), left());
        if (!ok) return fail(step_error(where, "connect", ok.error()));
        if (!*ok) return fail(timed_out("connect"));
        if (auto r = net::connect_result(fd->get()); !r)
            return fail(step_error(where, "connect", r.error()));
    }
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + where +
                            "\r\nUser-Agent: core-process\r\nAccept: */*\r\n"
                            "Connection: close\r\n\r\n";
    std::string_view out = req;
    while (!out.empty()) {
        auto io = net::send_some(fd->get(), out);
        if (!io) return fail(step_error(where, "write", io.error()));
        if (*io == sys::would_block) {
            auto ok = sys::wait_writable(fd->get(), left());
            if (!ok) return fail(step_error(where, "write", ok.error()));
            if (!*ok) return fail(timed_out("write"));
            continue;
        }
        out.remove_prefix(static_cast<std::size_t>(*io));
    }
    std::string raw;
    char buf[8192];
    for (;;) {
        auto io = net::recv_some(fd->get(), buf, sizeof buf);
        if (!io) {
            // A reset after a complete reply (a server closing with our bytes unread) still
            // leaves us a usable answer.
            if (detail::response_complete(raw)) break;
            return fail(step_error(where, "read", io.error()));
        }
        if (*io == 0) break;
        if (*io == sys::would_block) {
            auto ok = sys::wait_readable(fd->get(), left());
            if (!ok) return fail(step_error(where, "read", ok.error()));
            if (!*ok) return fail(timed_out("read"));
            continue;
        }
        raw.append(buf, static_cast<std::size_t>(*io));
        if (raw.size() > kMaxResponse)
            return fail(Error("http.get", where + ": response larger than 1 MiB", EFBIG));
        if (detail::response_complete(raw)) break;
    }
    auto resp = detail::parse_response(raw);
    if (!resp) {
        if (raw.empty())
            return fail(
                Error("http.get", where + ": connection closed without a response", ECONNRESET));
        return fail(Error("http.get", where + ": " + resp.error().message(), EPROTO));
    }
    return resp;
}

Result<HttpResponse> http_get_url(const std::string& url, std::chrono::milliseconds timeout) {
    std::string_view s = url;
    if (s.substr(0, 7) != "http://")
        return fail(Error("http.get", "\"" + url + "\": only http:// URLs are supported", EINVAL));
    s.remove_prefix(7);
    const std::size_t slash = s.find('/');
    const std::string hostport(s.substr(0, slash));
    const std::string path = slash == std::string_view::npos ? "/" : std::string(s.substr(slash));
    return http_get(hostport, path, timeout);
}

namespace {

Result<void> probe(const char* op, const std::string& addr, const char* path,
                   std::chrono::milliseconds timeout) {
    auto r = http_get(addr, path, timeout);
    if (!r) return fail(Error(op, "", r.error()));
    if (r->status == 200) return {};
    std::string body = r->body;
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
    if (body.size() > 512) body.resize(512);
    return fail(
        E(op, addr + ": status " + std::to_string(r->status) + (body.empty() ? "" : ": " + body)));
}

}  // namespace

Result<void> probe_health(const std::string& addr, std::chrono::milliseconds timeout) {
    return probe("probe.health", addr, "/health", timeout);
}

Result<void> probe_ready(const std::string& addr, std::chrono::milliseconds timeout) {
    return probe("probe.ready", addr, "/ready", timeout);
}

}  // namespace core::process
