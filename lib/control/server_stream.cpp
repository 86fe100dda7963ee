// The control plane's streaming routes: GET /daemons/NAME/logs?follow=1 (a chunked body) and
// GET /events (a WebSocket of go-process messages, events.hpp). Each client has a bounded
// queue filled from the bus thread; one message too many and the client is dropped. See
// server.hpp.
#include "control/dashboard.hpp"
#include "control/events.hpp"
#include "control/server.hpp"

namespace core::process {

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

}  // namespace core::process
