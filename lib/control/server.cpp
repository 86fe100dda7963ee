// The control plane's HTTP sessions (read a request, route it: probes on the I/O thread, the
// rest on the worker pool, the streams to server_stream.cpp), the server's own metrics, start
// and stop. See server.hpp for the threads, descriptors and bounds.
#include <future>
#include <sstream>

#include "control/dashboard.hpp"
#include "control/server.hpp"
#include "sys/unix_socket.hpp"

namespace core::process {

namespace us = core::sys::unix_socket;

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
            nonce = control_random_token();
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
