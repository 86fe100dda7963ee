// The control plane's sockets: the Unix socket (0600 in a 0700 directory, a stale one
// replaced, a live one refused), the optional TCP listener and its bearer token, the record that
// `coreproc ctl` finds, accepting and admitting connections (peer credentials, the connection
// cap), and the TCP checks (Host, Origin, the token). See server.hpp.
#include <algorithm>
#include <random>

#include "control/dashboard.hpp"
#include "control/server.hpp"
#include "sys/net.hpp"
#include "sys/unix_socket.hpp"

namespace core::process {

namespace us = core::sys::unix_socket;

std::string control_random_token() {
    std::random_device rd;  // getrandom(2) in libstdc++
    static const char* hex = "0123456789abcdef";
    std::string t;
    for (int i = 0; i < 8; ++i) {
        const unsigned v = rd();
        for (int b = 0; b < 8; ++b) t.push_back(hex[(v >> (b * 4)) & 0xf]);
    }
    return t;
}

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
        token = control_random_token();
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

}  // namespace core::process
