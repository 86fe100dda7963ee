// The control plane's transport: Boost.Beast HTTP/1.1 and WebSocket over Asio, on one I/O thread
// (C++20 coroutines), with the blocking routes on a small worker pool. The only Beast code of the
// server; the routes are in api.cpp.
//
// Descriptors: the listeners and every accepted connection come from lib/sys (CLOEXEC and
// non-blocking from birth, accept4) and are handed to Asio with assign(); Asio's own descriptors
// (epoll, eventfd, timerfd) are CLOEXEC too. Asio sends with MSG_NOSIGNAL.
//
// Bounds: at most max_connections live connections, of which max_streams follow logs or events;
// a request head and body must arrive within request_timeout; at the cap the oldest connection
// still reading a request (idle or slow: a slowloris) is closed to make room, so idle or slow
// clients can never lock /health and /ready out. A streaming client gets client_queue messages
// of backlog; one more and it is dropped (the bus thread never waits for a client).
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <future>
#include <list>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>
#include <unordered_map>

#include <spdlog/logger.h>
#include <boost/asio.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "control/api.hpp"
#include "control/dashboard.hpp"
#include "control/goapi.hpp"
#include "core/process/control.hpp"
#include "sys/file.hpp"
#include "sys/net.hpp"
#include "sys/unix_socket.hpp"

namespace core::process {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ctl = core::control;
namespace us = core::sys::unix_socket;

using Protocol = asio::generic::stream_protocol;
using HttpStream = beast::basic_stream<Protocol, asio::any_io_executor>;
using WsStream = websocket::stream<HttpStream>;
using Channel =
    asio::experimental::concurrent_channel<void(boost::system::error_code, std::string)>;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {

std::string dir_of(const std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

std::string stem_of(const std::string& socket_path) {
    const std::string suffix = ".sock";
    if (socket_path.size() > suffix.size() &&
        socket_path.compare(socket_path.size() - suffix.size(), suffix.size(), suffix) == 0)
        return socket_path.substr(0, socket_path.size() - suffix.size());
    return socket_path;
}

// Constant-time comparison: the time taken does not depend on where the strings differ.
bool same_secret(std::string_view a, std::string_view b) {
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    const std::size_t n = std::max(a.size(), b.size());
    for (std::size_t i = 0; i < n; ++i) {
        const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
        const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
        diff |= static_cast<unsigned char>(x ^ y);
    }
    return diff == 0;
}

std::string random_token() {
    std::random_device rd;  // getrandom(2) in libstdc++
    static const char* hex = "0123456789abcdef";
    std::string t;
    for (int i = 0; i < 8; ++i) {
        const unsigned v = rd();
        for (int b = 0; b < 8; ++b) t.push_back(hex[(v >> (b * 4)) & 0xf]);
    }
    return t;
}

// A fixed reply for a connection we refuse before any parsing (wrong uid, no room).
void refuse(int fd, int status, const std::string& message) {
    const std::string body = ctl::dump(nlohmann::json{{"error", message}});
    const std::string reason = status == 403 ? "Forbidden" : "Service Unavailable";
    const std::string text =
        "HTTP/1.1 " + std::to_string(status) + " " + reason +
        "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\nConnection: close\r\n\r\n" + body;
    // One non-blocking send: a refused peer gets what fits in its socket buffer, no more.
    (void)core::sys::net::send_some(fd, text);
    core::sys::net::shutdown_write(fd);
}

// "host:port" or "[v6]:port" → host, port text.
std::pair<std::string, std::string> split_host(std::string_view h) {
    if (!h.empty() && h.front() == '[') {
        const auto close = h.find(']');
        if (close == std::string_view::npos) return {std::string(h), ""};
        std::string host(h.substr(0, close + 1));
        std::string port = close + 1 < h.size() && h[close + 1] == ':'
                               ? std::string(h.substr(close + 2))
                               : std::string();
        return {host, port};
    }
    const auto colon = h.rfind(':');
    if (colon == std::string_view::npos) return {std::string(h), ""};
    return {std::string(h.substr(0, colon)), std::string(h.substr(colon + 1))};
}

bool loopback_name(const std::string& host) {
    return host == "localhost" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

}  // namespace

struct Conn {
    explicit Conn(Protocol::socket s, bool tcp_) : stream(std::move(s)), tcp(tcp_) {}
    void close() {
        beast::error_code ec;
        auto& sock = ws ? beast::get_lowest_layer(*ws).socket() : stream.socket();
        sock.shutdown(Protocol::socket::shutdown_both, ec);
        sock.close(ec);
    }
    HttpStream stream;
    std::optional<WsStream> ws;  // after an upgrade the stream lives here
    bool tcp = false;
    bool reading = true;     // between requests or reading one: may be evicted at the cap
    bool streaming = false;  // following logs or events
    bool live = true;        // counted in Impl::live (false once closed to make room)
    bool forbidden = false;  // a Unix peer of another uid: its request gets 403, then close
};

// What a streaming route shares with its bus handler (which runs on the broadcasting thread).
struct StreamState {
    StreamState(asio::any_io_executor ex, std::size_t cap) : ch(ex, cap), io(ex) {}
    Channel ch;
    asio::any_io_executor io;
    std::weak_ptr<Conn> conn;
    std::atomic<bool> dropped{false};
    std::atomic<std::uint64_t>* dropped_total = nullptr;

    // Never blocks: a full queue drops the client (closed on the I/O thread).
    void push(std::string msg) {
        if (dropped.load(std::memory_order_relaxed)) return;
        if (ch.try_send(boost::system::error_code{}, std::move(msg))) return;
        if (dropped.exchange(true)) return;
        if (dropped_total) dropped_total->fetch_add(1, std::memory_order_relaxed);
        ch.close();
        asio::post(io, [w = conn] {
            if (auto c = w.lock()) c->close();
        });
    }
};

struct ControlServer::Impl {
    Impl(core::Core& c, Supervisor& s, Service& v, ControlOptions o)
        : core(c), sup(s), svc(v), opts(std::move(o)), api(c, s, v, opts) {}

    core::Core& core;
    Supervisor& sup;
    Service& svc;
    ControlOptions opts;
    ctl::Api api;

    bool started = false;
    std::string tcp_addr;
    std::string tcp_host;
    std::uint16_t tcp_port = 0;
    std::string token;
    std::string token_path;
    bool token_generated = false;
    std::string record_path;
    unsigned owner_uid = 0;

    std::atomic<std::uint64_t> dropped_clients{0};
    std::atomic<std::uint64_t> refused_peers{0};
    std::atomic<std::uint64_t> evicted{0};
    std::atomic<std::uint64_t> requests{0};

    // Declared last: destroyed first, with every suspended coroutine frame (which refer to the
    // members above).
    std::unique_ptr<asio::thread_pool> pool;
    asio::io_context io{1};
    std::optional<asio::posix::stream_descriptor> unix_listener;
    std::optional<asio::posix::stream_descriptor> tcp_listener;
    std::list<std::shared_ptr<Conn>> conns;  // I/O thread only, oldest first
    std::size_t live = 0;                    // I/O thread only: conns not being closed
    std::size_t streams = 0;                 // I/O thread only
    std::thread thread;

    void log_warn(const std::string& msg) {
        if (opts.logger) opts.logger->warn("{}", msg);
    }
    void log_debug(const std::string& msg) {
        if (opts.logger) opts.logger->debug("{}", msg);
    }

    Result<void> open_unix();
    Result<void> open_tcp();
    Result<void> write_record();
    asio::awaitable<void> accept_loop(asio::posix::stream_descriptor& l, bool tcp);
    void admit(core::sys::UniqueFd fd, bool tcp);
    asio::awaitable<void> session(std::shared_ptr<Conn> c);
    // Coroutine parameters are references to the caller's named locals, and no co_await
    // expression here holds a temporary with a destructor: GCC 12 can destroy such a
    // temporary twice (GCC PR 99576, fixed in 13).
    asio::awaitable<ctl::Reply> offload(const std::function<ctl::Reply()>& f);
    asio::awaitable<void> follow_logs(const std::shared_ptr<Conn>& c,
                                      const http::request<http::string_body>& req,
                                      const ctl::Request& r);
    asio::awaitable<void> events(const std::shared_ptr<Conn>& c,
                                 const http::request<http::string_body>& req);
    // Host and Origin (DNS rebinding, cross-site requests), then the bearer token (not for
    // probes and the dashboard page); /events also takes the token as the page's WebSocket
    // subprotocol (a browser cannot set Authorization on a WebSocket).
    std::optional<ctl::Reply> check_tcp(const http::request<http::string_body>& req,
                                        ctl::RouteKind kind, bool public_page);
    std::string server_metrics() const;
    void close_all();
};

Result<void> ControlServer::Impl::open_unix() {
    const std::string& path = opts.socket_path;
    const std::string dir = dir_of(path);
    if (auto ok = core::sys::file::make_dirs(dir, 0700); !ok)
        return fail(E("control", "socket directory \"" + dir + "\"", ok.error()));
    if (auto ok = core::sys::file::check_private_dir(dir); !ok)
        return fail(E("control", "socket directory \"" + dir + "\"", ok.error()));
    auto kind = us::path_kind(path);
    if (!kind) return fail(E("control", "socket", kind.error()));
    if (*kind == us::PathKind::other)
        return fail(Error("control", "\"" + path + "\" exists and is not a socket", EEXIST));
    if (*kind == us::PathKind::socket) {
        // Somebody listening: a live supervisor of this name. Refused: a dead one's leftover.
        auto probe = us::connect(path);
        if (probe)
            return fail(Error("control",
                              "another supervisor is running as " +
                                  (opts.name.empty() ? path : opts.name) + " (socket " + path + ")",
                              EADDRINUSE));
        if (probe.error().code() != ECONNREFUSED)
            return fail(E("control", "probing the existing socket", probe.error()));
        if (auto ok = core::sys::file::unlink(path); !ok && ok.error().code() != ENOENT)
            return fail(E("control", "replacing the stale socket", ok.error()));
        log_debug("control: replaced the stale socket " + path);
    }
    auto fd = us::listen(path, 0600, 128);
    if (!fd) return fail(E("control", "listen", fd.error()));
    unix_listener.emplace(io, fd->release());
    return {};
}

Result<void> ControlServer::Impl::open_tcp() {
    const auto [host, port_text] = split_host(opts.listen);
    std::uint32_t addr = 0;
    unsigned long port = 0;
    try {
        port = port_text.empty() ? 0 : std::stoul(port_text);
    } catch (...) {
        port = 70000;
    }
    if (!core::sys::net::parse_ipv4(host, &addr) || port > 65535)
        return fail(Error("control", "--listen \"" + opts.listen + "\": want IPv4:PORT", EINVAL));
    const bool loopback = host.rfind("127.", 0) == 0;
    if (!loopback && !opts.allow_remote)
        return fail(Error("control",
                          "--listen " + opts.listen +
                              ": not a loopback address (needs the explicit allow-remote flag)",
                          EINVAL));
    if (!loopback)
        log_warn("control: listening on " + opts.listen +
                 ", reachable from other hosts; only the bearer token protects it, over plain "
                 "HTTP");
    core::sys::net::Endpoint ep{addr, static_cast<std::uint16_t>(port)};
    auto fd = core::sys::net::tcp_listen(ep, 128);
    if (!fd) return fail(E("control", "--listen " + opts.listen, fd.error()));
    auto bound = core::sys::net::local_port(fd->get());
    if (!bound) return fail(E("control", "--listen " + opts.listen, bound.error()));
    tcp_port = *bound;
    tcp_host = host;
    tcp_addr = host + ":" + std::to_string(tcp_port);

    token_path = opts.token_file.empty() ? stem_of(opts.socket_path) + ".token" : opts.token_file;
    auto existing = core::sys::file::read_file(token_path, 4096);
    if (existing) {
        token = existing->substr(0, existing->find_first_of("\r\n"));
        if (token.empty())
            return fail(Error("control", "token file \"" + token_path + "\" is empty", EINVAL));
    } else if (existing.error().code() == ENOENT) {
        token = random_token();
        auto f = core::sys::file::create_exclusive(token_path, 0600);
        if (!f) return fail(E("control", "token file", f.error()));
        if (auto ok = core::sys::file::write_all(f->get(), token + "\n"); !ok)
            return fail(E("control", "token file", ok.error()));
        token_generated = true;
    } else {
        return fail(E("control", "token file", existing.error()));
    }
    tcp_listener.emplace(io, fd->release());
    return {};
}

Result<void> ControlServer::Impl::write_record() {
    record_path = stem_of(opts.socket_path) + ".json";
    nlohmann::json j{{"name", opts.name},
                     {"socket", opts.socket_path},
                     {"listen", tcp_addr},
                     {"token_file", token_path},
                     {"pid", core::sys::file::self_pid()}};
    const std::string tmp = record_path + ".tmp";
    (void)core::sys::file::unlink(tmp);
    auto f = core::sys::file::create_exclusive(tmp, 0600);
    if (!f) return fail(E("control", "record", f.error()));
    if (auto ok = core::sys::file::write_all(f->get(), ctl::dump(j) + "\n"); !ok)
        return fail(E("control", "record", ok.error()));
    if (auto ok = core::sys::file::rename(tmp, record_path); !ok)
        return fail(E("control", "record", ok.error()));
    return {};
}

asio::awaitable<void> ControlServer::Impl::accept_loop(asio::posix::stream_descriptor& l,
                                                       bool tcp) {
    asio::steady_timer pause(io);
    for (;;) {
        auto [ec] = co_await l.async_wait(asio::posix::descriptor_base::wait_read, kTuple);
        if (ec) co_return;
        for (int i = 0; i < 64; ++i) {
            auto fd = core::sys::net::accept(l.native_handle());
            if (!fd) {
                // EMFILE and the like: the listener stays readable; pause instead of spinning.
                log_debug("control: accept: " + fd.error().what());
                pause.expires_after(std::chrono::milliseconds(50));
                co_await pause.async_wait(kTuple);
                break;
            }
            if (!fd->valid()) break;
            admit(std::move(*fd), tcp);
        }
    }
}

void ControlServer::Impl::admit(core::sys::UniqueFd fd, bool tcp) {
    bool forbidden = false;
    if (!tcp) {
        // A foreign peer's request is still read (within request_timeout, in a slot like any
        // other) so that it gets a readable 403 rather than a reset in the middle of sending.
        auto cred = us::peer_cred(fd.get());
        if (!cred || (cred->uid != owner_uid && cred->uid != 0)) {
            refused_peers.fetch_add(1, std::memory_order_relaxed);
            log_debug("control: refused a connection from uid " +
                      (cred ? std::to_string(cred->uid) : std::string("?")));
            forbidden = true;
        }
    }
    if (live >= opts.max_connections) {
        // Make room: the oldest connection that is between requests or still sending one.
        auto victim = std::find_if(conns.begin(), conns.end(),
                                   [](const auto& c) { return c->reading && !c->streaming; });
        if (victim == conns.end()) {
            refuse(fd.get(), 503, "too many connections");
            return;
        }
        evicted.fetch_add(1, std::memory_order_relaxed);
        (*victim)->close();
        // It leaves the list when its coroutine ends; it stops counting now (a connection
        // that is closing holds no slot).
        (*victim)->reading = false;
        (*victim)->live = false;
        --live;
        conns.splice(conns.end(), conns, victim);  // not chosen again before it is gone
    }
    Protocol proto = tcp ? Protocol(asio::ip::tcp::v4()) : Protocol(asio::local::stream_protocol());
    Protocol::socket sock(io);
    boost::system::error_code ec;
    sock.assign(proto, fd.get(), ec);
    if (ec) return;
    (void)fd.release();  // owned by the socket now
    auto c = std::make_shared<Conn>(std::move(sock), tcp);
    c->forbidden = forbidden;
    conns.push_back(c);
    ++live;
    auto it = std::prev(conns.end());
    asio::co_spawn(io, session(c), [this, it](std::exception_ptr) {
        if ((*it)->live) --live;
        conns.erase(it);
    });
}

asio::awaitable<ctl::Reply> ControlServer::Impl::offload(const std::function<ctl::Reply()>& f) {
    auto job = [&f]() -> asio::awaitable<ctl::Reply> {
        try {
            co_return f();
        } catch (const std::exception& e) {
            co_return ctl::error_reply(500, std::string("internal error: ") + e.what());
        }
    };
    auto op = asio::co_spawn(pool->get_executor(), std::move(job), asio::use_awaitable);
    ctl::Reply reply = co_await std::move(op);
    co_return reply;
}

std::optional<ctl::Reply> ControlServer::Impl::check_tcp(
    const http::request<http::string_body>& req, ctl::RouteKind kind, bool public_page) {
    const bool probe = kind == ctl::RouteKind::probe;
    // Probes answer anyone who reaches the port (they say nothing secret): a load balancer's
    // Host is the pod's address.
    if (probe) return std::nullopt;
    const auto host_hdr = req[http::field::host];
    const auto [host, port] = split_host(std::string_view(host_hdr.data(), host_hdr.size()));
    const bool host_ok = (loopback_name(host) || host == tcp_host) &&
                         (port.empty() || port == std::to_string(tcp_port));
    if (!host_ok)
        return ctl::error_reply(403, "forbidden: Host \"" + std::string(host_hdr) +
                                         "\" is not this server (DNS rebinding?)");
    const auto origin = req[http::field::origin];
    if (!origin.empty()) {
        std::string_view o(origin.data(), origin.size());
        const std::string_view scheme = "http://";
        bool ok = o.substr(0, scheme.size()) == scheme;
        if (ok) {
            const auto [oh, op] = split_host(o.substr(scheme.size()));
            ok = (loopback_name(oh) || oh == tcp_host) && op == std::to_string(tcp_port);
        }
        if (!ok)
            return ctl::error_reply(
                403, "forbidden: cross-site request from Origin " + std::string(origin));
    }
    // The page itself holds no data and no secret: it asks for the token.
    if (public_page) return std::nullopt;
    const auto auth = req[http::field::authorization];
    const std::string_view bearer = "Bearer ";
    std::string_view a(auth.data(), auth.size());
    bool authorized =
        a.substr(0, bearer.size()) == bearer && same_secret(a.substr(bearer.size()), token);
    if (!authorized && kind == ctl::RouteKind::events && websocket::is_upgrade(req)) {
        const auto proto = req[http::field::sec_websocket_protocol];
        const std::string offered =
            ctl::ws_protocol_token(std::string_view(proto.data(), proto.size()));
        authorized = !offered.empty() && same_secret(offered, token);
    }
    if (!authorized) {
        ctl::Reply r = ctl::error_reply(
            401, "unauthorized: a bearer token is required (see " + token_path + ")");
        return r;
    }
    return std::nullopt;
}

std::string ControlServer::Impl::server_metrics() const {
    std::ostringstream o;
    o << "# HELP coreproc_control_connections Live control-plane connections.\n"
         "# TYPE coreproc_control_connections gauge\n"
      << "coreproc_control_connections " << live << "\n"
      << "# HELP coreproc_control_streams Connections following logs or events.\n"
         "# TYPE coreproc_control_streams gauge\n"
      << "coreproc_control_streams " << streams << "\n"
      << "# HELP coreproc_control_dropped_clients_total Streaming clients dropped for not "
         "reading.\n"
         "# TYPE coreproc_control_dropped_clients_total counter\n"
      << "coreproc_control_dropped_clients_total " << dropped_clients.load() << "\n"
      << "# HELP coreproc_control_refused_total Unix-socket peers refused by uid.\n"
         "# TYPE coreproc_control_refused_total counter\n"
      << "coreproc_control_refused_total " << refused_peers.load() << "\n"
      << "# HELP coreproc_control_evicted_total Idle or slow connections closed at the cap.\n"
         "# TYPE coreproc_control_evicted_total counter\n"
      << "coreproc_control_evicted_total " << evicted.load() << "\n"
      << "# HELP coreproc_control_requests_total Requests read.\n"
         "# TYPE coreproc_control_requests_total counter\n"
      << "coreproc_control_requests_total " << requests.load() << "\n";
    return o.str();
}

asio::awaitable<void> ControlServer::Impl::session(std::shared_ptr<Conn> c) {
    beast::flat_buffer buf;
    for (;;) {
        c->reading = true;
        http::request_parser<http::string_body> parser;
        parser.header_limit(16 * 1024);
        parser.body_limit(opts.max_body);
        c->stream.expires_after(opts.request_timeout);
        auto [ec, n] = co_await http::async_read(c->stream, buf, parser, kTuple);
        (void)n;
        if (ec) {
            // A malformed request gets a 400; a timeout, a reset or our own close gets nothing.
            if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
                ec != http::error::end_of_stream && ec != http::error::partial_message) {
                http::response<http::string_body> res{http::status::bad_request, 11};
                res.set(http::field::content_type, "application/json");
                res.set(http::field::connection, "close");
                res.body() = ctl::dump(nlohmann::json{{"error", "bad request: " + ec.message()}});
                res.prepare_payload();
                c->stream.expires_after(std::chrono::seconds(5));
                (void)co_await http::async_write(c->stream, res, kTuple);
            }
            co_return;
        }
        c->reading = false;
        requests.fetch_add(1, std::memory_order_relaxed);
        auto req = parser.release();

        ctl::Request r;
        r.method = std::string(req.method_string());
        std::optional<ctl::Reply> reply;
        if (auto t = ctl::parse_target(std::string_view(req.target().data(), req.target().size()));
            t)
            r.target = std::move(*t);
        else
            reply = ctl::error_reply(400, t.error().what());
        r.body = std::move(req.body());
        if (c->forbidden) {
            reply =
                ctl::error_reply(403, "forbidden: only the supervisor's user or root may connect");
            req.keep_alive(false);
        }
        const auto kind = reply ? ctl::RouteKind::plain : ctl::classify(r);
        const bool page = !reply && ctl::is_dashboard(r);
        if (!reply && c->tcp) reply = check_tcp(req, kind, page);
        std::string nonce;
        if (!reply && page) {
            nonce = random_token();
            reply.emplace();
            reply->content_type = "text/html; charset=utf-8";
            reply->body = ctl::dashboard_html(nonce);
        }
        if (!reply && (kind == ctl::RouteKind::follow_logs || kind == ctl::RouteKind::events)) {
            if (streams >= opts.max_streams) {
                reply = ctl::error_reply(503, "too many streaming clients");
            } else {
                c->stream.expires_never();
                ++streams;
                c->streaming = true;
                if (kind == ctl::RouteKind::events)
                    co_await events(c, req);
                else
                    co_await follow_logs(c, req, r);
                --streams;
                co_return;
            }
        }
        if (!reply) {
            if (kind == ctl::RouteKind::probe) {
                reply = api.handle(r, server_metrics());
            } else {
                const std::function<ctl::Reply()> job = [this, &r] { return api.handle(r); };
                reply = co_await offload(job);
            }
        }

        http::response<http::string_body> res{static_cast<http::status>(reply->status),
                                              req.version()};
        res.set(http::field::server, "coreproc");
        res.set(http::field::content_type, reply->content_type);
        if (reply->status == 401) res.set(http::field::www_authenticate, "Bearer");
        if (!nonce.empty()) {
            res.set("Content-Security-Policy", ctl::dashboard_csp(nonce));
            res.set(http::field::cache_control, "no-store");
            res.set("X-Content-Type-Options", "nosniff");
            res.set("X-Frame-Options", "DENY");
            res.set("Referrer-Policy", "no-referrer");
        }
        res.keep_alive(req.keep_alive());
        res.body() = std::move(reply->body);
        res.prepare_payload();
        c->stream.expires_after(opts.request_timeout);
        auto [wec, wn] = co_await http::async_write(c->stream, res, kTuple);
        (void)wn;
        if (wec) co_return;
        if (!res.keep_alive()) {
            beast::error_code sec;
            c->stream.socket().shutdown(Protocol::socket::shutdown_send, sec);
            co_return;
        }
    }
}

asio::awaitable<void> ControlServer::Impl::follow_logs(const std::shared_ptr<Conn>& c,
                                                       const http::request<http::string_body>& req,
                                                       const ctl::Request& r) {
    const std::string name = r.target.segments[1];
    auto tail = ctl::parse_tail(r.target.query, 10);
    std::optional<ctl::Reply> err;
    if (!tail)
        err = ctl::error_reply(400, tail.error().what());
    else if (!api.has_daemon(name))
        err = ctl::error_reply(404, "unknown daemon: " + name);
    if (err) {
        http::response<http::string_body> res{static_cast<http::status>(err->status),
                                              req.version()};
        res.set(http::field::content_type, err->content_type);
        res.keep_alive(false);
        res.body() = err->body;
        res.prepare_payload();
        c->stream.expires_after(opts.request_timeout);
        (void)co_await http::async_write(c->stream, res, kTuple);
        co_return;
    }
    const bool err_only = r.target.query.count("stream") && r.target.query.at("stream") == "stderr";

    auto st = std::make_shared<StreamState>(io.get_executor(), opts.client_queue);
    st->conn = c;
    st->dropped_total = &dropped_clients;
    // Which process ids belong to the daemon: its current one, learned again when a line comes
    // from an id not seen before (a restart), remembered both ways so a busy unrelated process
    // costs one lookup.
    struct Ids {
        std::mutex mu;
        std::unordered_map<std::string, bool> mine;
    };
    auto ids = std::make_shared<Ids>();
    // Subscribed before the tail is read: a line may then come twice, but none falls between.
    core::Subscription sub = core.subscribe([this, st, ids, name, err_only](const core::Value& v) {
        const auto* out = v.get<ProcessOutput>();
        if (!out || (err_only && out->stream != Stream::stderr_)) return;
        bool mine = false;
        {
            std::lock_guard<std::mutex> lk(ids->mu);
            auto it = ids->mine.find(out->id);
            if (it != ids->mine.end()) {
                mine = it->second;
            } else {
                auto cur = api.process_id(name);
                mine = cur && *cur == out->id;
                if (ids->mine.size() > 4096) ids->mine.clear();
                ids->mine.emplace(out->id, mine);
            }
        }
        if (mine) st->push(out->line + "\n");
    });

    const std::size_t n = *tail;
    const std::function<ctl::Reply()> job = [this, &name, n, err_only] {
        auto text = api.logs(name, n, err_only);
        ctl::Reply rep;
        rep.body = text ? *text : std::string();
        return rep;
    };
    ctl::Reply first = co_await offload(job);

    http::response<http::empty_body> res{http::status::ok, req.version()};
    res.set(http::field::server, "coreproc");
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.set(http::field::cache_control, "no-cache");
    res.chunked(true);
    res.keep_alive(false);
    http::response_serializer<http::empty_body> sr{res};
    auto [hec, hn] = co_await http::async_write_header(c->stream, sr, kTuple);
    (void)hn;
    if (hec) co_return;
    if (!first.body.empty()) {
        const auto chunk = http::make_chunk(asio::buffer(first.body));
        auto [wec, wn] = co_await asio::async_write(c->stream, chunk, kTuple);
        (void)wn;
        if (wec) co_return;
    }
    // A client that hangs up ends the stream at once, not at the next line.
    asio::co_spawn(
        io,
        [c, st]() -> asio::awaitable<void> {
            char b[256];
            for (;;) {
                auto [ec, n2] =
                    co_await c->stream.socket().async_read_some(asio::buffer(b), kTuple);
                (void)n2;
                if (ec) break;
            }
            st->ch.close();
        },
        asio::detached);
    for (;;) {
        auto [ec, msg] = co_await st->ch.async_receive(kTuple);
        if (ec) break;
        const auto chunk = http::make_chunk(asio::buffer(msg));
        auto [wec, wn] = co_await asio::async_write(c->stream, chunk, kTuple);
        (void)wn;
        if (wec) break;
    }
    sub.reset();
    if (!st->dropped) {
        const auto last = http::make_chunk_last();
        (void)co_await asio::async_write(c->stream, last, kTuple);
    }
    c->close();
}

asio::awaitable<void> ControlServer::Impl::events(const std::shared_ptr<Conn>& c,
                                                  const http::request<http::string_body>& req) {
    if (!websocket::is_upgrade(req)) {
        http::response<http::string_body> res{http::status::upgrade_required, req.version()};
        res.set(http::field::content_type, "application/json");
        res.set(http::field::upgrade, "websocket");
        res.keep_alive(false);
        res.body() = ctl::dump(nlohmann::json{{"error", "GET /events is a WebSocket"}});
        res.prepare_payload();
        c->stream.expires_after(opts.request_timeout);
        (void)co_await http::async_write(c->stream, res, kTuple);
        co_return;
    }
    c->ws.emplace(std::move(c->stream));
    auto& ws = *c->ws;
    beast::get_lowest_layer(ws).expires_never();
    ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws.read_message_max(64 * 1024);
    auto st = std::make_shared<StreamState>(io.get_executor(), opts.client_queue);
    st->conn = c;
    st->dropped_total = &dropped_clients;
    core::Subscription sub = core.subscribe([st, code = opts.name](const core::Value& v) {
        for (auto& m : ctl::event_messages(v, code)) st->push(std::move(m));
    });
    // A client that offers the dashboard's subprotocol must see it chosen, or the browser
    // fails the handshake; the auth entry beside it is never echoed.
    const auto proto = req[http::field::sec_websocket_protocol];
    if (ctl::ws_offers_protocol(std::string_view(proto.data(), proto.size())))
        ws.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
            res.set(http::field::sec_websocket_protocol, std::string(ctl::kWsProtocol));
        }));
    auto [aec] = co_await ws.async_accept(req, kTuple);
    if (aec) co_return;
    // Reads what the client sends (pings, close) so that a hang-up ends the stream.
    asio::co_spawn(
        io,
        [c, st]() -> asio::awaitable<void> {
            beast::flat_buffer b;
            for (;;) {
                auto [ec, n2] = co_await c->ws->async_read(b, kTuple);
                (void)n2;
                if (ec) break;
                b.consume(b.size());
            }
            st->ch.close();
        },
        asio::detached);
    ws.text(true);
    for (;;) {
        auto [ec, msg] = co_await st->ch.async_receive(kTuple);
        if (ec) break;
        auto [wec, wn] = co_await ws.async_write(asio::buffer(msg), kTuple);
        (void)wn;
        if (wec) break;
    }
    sub.reset();
    if (st->dropped) {
        c->close();
    } else {
        (void)co_await ws.async_close(websocket::close_code::going_away, kTuple);
        c->close();
    }
}

void ControlServer::Impl::close_all() {
    beast::error_code ec;
    if (unix_listener) unix_listener->close(ec);
    if (tcp_listener) tcp_listener->close(ec);
    for (auto& c : conns) c->close();
}

ControlServer::ControlServer(core::Core& core, Supervisor& sup, Service& svc, ControlOptions opts)
    : impl_(std::make_unique<Impl>(core, sup, svc, std::move(opts))) {}

ControlServer::~ControlServer() {
    stop();
}

Result<void> ControlServer::start() {
    auto& d = *impl_;
    if (d.started) return fail(Error("control", "already started", EALREADY));
    if (d.opts.socket_path.empty())
        return fail(Error("control", "a socket path is required", EINVAL));
    d.owner_uid = us::effective_uid();
    if (auto ok = d.open_unix(); !ok) return ok;
    auto cleanup = [&] {
        d.unix_listener.reset();
        (void)core::sys::file::unlink(d.opts.socket_path);
        if (d.token_generated) (void)core::sys::file::unlink(d.token_path);
        d.tcp_listener.reset();
    };
    if (!d.opts.listen.empty()) {
        if (auto ok = d.open_tcp(); !ok) {
            cleanup();
            return ok;
        }
    }
    if (auto ok = d.write_record(); !ok) {
        cleanup();
        return ok;
    }
    d.pool = std::make_unique<asio::thread_pool>(4);
    asio::co_spawn(d.io, d.accept_loop(*d.unix_listener, false), asio::detached);
    if (d.tcp_listener) asio::co_spawn(d.io, d.accept_loop(*d.tcp_listener, true), asio::detached);
    d.thread = std::thread([&d] { d.io.run(); });
    d.started = true;
    return {};
}

void ControlServer::stop() {
    auto& d = *impl_;
    if (!d.started) return;
    d.started = false;
    // Close everything on the I/O thread (the connection list is its own), then wait for the
    // blocking routes in flight, then stop the loop; suspended coroutines are destroyed with
    // the io_context.
    std::promise<void> closed;
    asio::post(d.io, [&] {
        d.close_all();
        closed.set_value();
    });
    closed.get_future().wait();
    d.pool->join();
    d.io.stop();
    if (d.thread.joinable()) d.thread.join();
    (void)core::sys::file::unlink(d.opts.socket_path);
    if (!d.record_path.empty()) (void)core::sys::file::unlink(d.record_path);
    if (d.token_generated) (void)core::sys::file::unlink(d.token_path);
}

const std::string& ControlServer::socket_path() const noexcept {
    return impl_->opts.socket_path;
}

std::string ControlServer::tcp_address() const {
    return impl_->tcp_addr;
}

std::string ControlServer::token_file() const {
    return impl_->token_path;
}

}  // namespace core::process
