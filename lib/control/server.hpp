// The control plane's transport, shared by its three files: server.cpp (the HTTP sessions,
// the worker pool, start and stop), server_listen.cpp (the Unix socket and TCP listeners, the
// token, admission at the connection cap and the TCP checks) and server_stream.cpp (the two
// streaming routes: logs?follow=1 and the /events WebSocket). Boost.Beast HTTP/1.1 and
// WebSocket over Asio, on one I/O thread (C++20 coroutines), with the blocking routes on a small
// worker pool. The only Beast code of the server; the routes are in api.cpp and goapi.cpp.
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
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <spdlog/logger.h>
#include <boost/asio.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "control/api.hpp"
#include "core/process/control.hpp"
#include "sys/file.hpp"

namespace core::process {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ctl = core::control;

using Protocol = asio::generic::stream_protocol;
using HttpStream = beast::basic_stream<Protocol, asio::any_io_executor>;
using WsStream = websocket::stream<HttpStream>;
using Channel =
    asio::experimental::concurrent_channel<void(boost::system::error_code, std::string)>;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// 64 random bits as hex (getrandom(2)): tokens and the dashboard's nonces.
std::string control_random_token();

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

}  // namespace core::process
