// core::http::Server's public calls (server.hpp); the server thread and the connections are in
// server_listener.cpp and server_connection.cpp, around Server::Impl (server_impl.hpp).
#include "http/server.hpp"

#include <spdlog/spdlog.h>

#include <cstring>
#include <system_error>

#include "core/log.hpp"
#include "http/endpoint.hpp"
#include "http/server_impl.hpp"

namespace core::http {

using detail::kBacklog;
using detail::kListenTag;
using detail::kWakeTag;

Server::Server(ServerOptions opts, Handler handler) : impl_(std::make_unique<Impl>()) {
    impl_->opts = std::move(opts);
    impl_->handler = std::move(handler);
    impl_->log = impl_->opts.logger ? impl_->opts.logger : core::default_logger();
    if (impl_->opts.max_connections == 0) impl_->opts.max_connections = 1;
    if (impl_->opts.max_head < 64) impl_->opts.max_head = 64;
    if (impl_->opts.head_timeout <= std::chrono::milliseconds(0))
        impl_->opts.head_timeout = std::chrono::milliseconds(5000);
}

Server::~Server() {
    stop();
}

Result<void> Server::start() {
    Impl& m = *impl_;
    const std::string& op = m.opts.name;
    std::lock_guard lk(m.mu);
    if (m.running) return fail(E(op, "already started on " + m.bound));
    const std::string want = m.opts.addr.empty() ? "127.0.0.1:0" : m.opts.addr;
    auto ep = parse_endpoint(op, want);
    if (!ep) return fail(Error(op, "listen " + ep.error().message(), EINVAL));
    auto listen = net::tcp_listen(*ep, kBacklog);
    if (!listen)
        return fail(Error(op, "listen " + net::to_string(*ep) + ": " + errno_text(listen.error()),
                          listen.error().code()));
    auto port = net::local_port(listen->get());
    if (!port) return fail(E(op, "listen " + want, port.error()));
    auto epoll = sys::Epoll::create();
    if (!epoll) return fail(E(op, "start", epoll.error()));
    auto wake = sys::EventFd::create();
    if (!wake) return fail(E(op, "start", wake.error()));
    if (auto r = epoll->add(listen->get(), sys::ev_in, kListenTag); !r)
        return fail(E(op, "start", r.error()));
    if (auto r = epoll->add(wake->fd(), sys::ev_in, kWakeTag); !r)
        return fail(E(op, "start", r.error()));
    net::Endpoint bound = *ep;
    bound.port = *port;
    m.bound = net::to_string(bound);
    m.listen_fd = std::move(*listen);
    m.epoll = std::move(*epoll);
    m.wake = std::move(*wake);
    m.stopping.store(false);
    m.accept_paused = false;
    m.generation.store((m.generation.load() + 1) & 0xffff);
    {
        std::lock_guard rlk(m.reply_mu);
        m.replies.clear();
    }
    try {
        m.thread = std::thread([&m] { m.loop(); });
    } catch (const std::system_error& e) {
        m.listen_fd.reset();
        m.epoll = {};
        m.wake = {};
        return fail(Error(op, std::string("start thread: ") + e.what(), e.code().value()));
    }
    m.running = true;
    SPDLOG_LOGGER_DEBUG(m.log, "{}: listening on {}", op, m.bound);
    unsigned char octets[4];
    std::memcpy(octets, &bound.addr_be, sizeof octets);  // network order: first octet first
    if (octets[0] != 127)
        m.log->warn(
            "{}: listening on {}, which is not a loopback address: every route can be reached "
            "from other hosts",
            op, m.bound);
    return {};
}

void Server::stop() {
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
    // The loop's connections closed when it returned; now the shared descriptors.
    m.listen_fd.reset();
    m.epoll = {};
    m.wake = {};
}

bool Server::running() const {
    std::lock_guard lk(impl_->mu);
    return impl_->running;
}

std::string Server::addr() const {
    std::lock_guard lk(impl_->mu);
    return impl_->running ? impl_->bound : impl_->opts.addr;
}

void Server::reply(std::uint64_t ticket, Response resp) {
    Impl& m = *impl_;
    std::lock_guard lk(m.mu);  // the wake fd lives while running, and only under mu it is sure
    if (!m.running) return;
    {
        std::lock_guard rlk(m.reply_mu);
        m.replies.emplace_back(ticket, std::move(resp));
    }
    m.wake.signal();
}

}  // namespace core::http
