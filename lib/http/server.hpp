// core::http::Server: a small HTTP/1.1 server on one epoll thread, one request per connection
// (every response closes it), for the daemon's health endpoints (lib/daemon/health.cpp) and any
// other loopback service. The handler runs on the server thread and either answers at once or
// defers: it keeps the request's ticket and calls reply(ticket, …) later from any thread.
//
// Bounded at every step, so that neither many clients nor slow ones can stall it:
//  - live connections (reading a head, waiting for a deferred reply, writing a reply) are capped
//    by max_connections; connections already answered and only closing do not count (they end
//    on their own, and are bounded apart, at 4 × max_connections, oldest closed first);
//  - a request head must arrive whole within head_timeout of the accept (slowloris), and the
//    connections still sending theirs ("partial") are capped by max_partial, oldest closed first;
//  - a newcomer that finds every live slot taken is on probation (not live; at most 4 ×
//    max_connections of them, else the kernel's accept queue holds the rest): when its head is
//    complete it takes the slot of the oldest half-sent connection (one that has sent part of
//    a head; one that has sent nothing yet is a client about to send, and is left alone), or
//    waits, unread, for a slot to free up; so a prober that sends its request at once is
//    answered even while slow clients hold every slot, and plain overload queues instead of
//    failing. No head within 1 s, or no slot within head_timeout: 503 "too many connections";
//  - every event costs O(1) (deadlines and partial connections are kept in arrival order, the
//    live count is kept, not counted), so the throughput does not fall with the connections.
// start/stop/reply/running/addr are thread-safe; the handler must not call stop().
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/process/http.hpp"
#include "core/result.hpp"
#include "http/parser.hpp"

namespace spdlog {
class logger;
}

namespace core::http {

struct ServerOptions {
    std::string addr = "127.0.0.1:0";  // "IPv4:port" or "localhost:port"; port 0 picks one
    std::string name = "http";         // prefix of errors and log lines ("health: …")
    std::chrono::milliseconds head_timeout{5000};  // head complete within this of the accept;
                                                   // also the bound of a deferred reply and of
                                                   // writing the reply
    std::size_t max_connections = 64;              // live connections (see above)
    std::size_t max_partial = 0;  // connections still sending their head; 0: max_connections
    std::size_t max_head = 8192;  // request head limit; beyond it 431 and close
    std::shared_ptr<spdlog::logger> logger;  // null: core::default_logger()
};

// What the handler returns: the response now, or deferred (the answer comes through reply();
// `response` is then what the client gets if it does not come within head_timeout).
struct Reply {
    Response response;
    bool deferred = false;
};
// Called on the server thread for each complete, well-formed request (malformed ones get 400,
// oversized heads 431, without a call). ticket identifies the request for reply().
using Handler = std::function<Reply(const Request& req, std::uint64_t ticket)>;

class Server {
  public:
    Server(ServerOptions opts, Handler handler);
    ~Server();  // stop()
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds, listens and starts the thread. Errors: "<name>: listen "x": bad address …",
    // bind/listen failures ("<name>: listen 127.0.0.1:80: Permission denied"), already started.
    [[nodiscard]] Result<void> start();
    // Stops the thread and closes every connection. Idempotent; start() may be called again.
    void stop();
    bool running() const;
    // "127.0.0.1:PORT" once started (the configured address before).
    std::string addr() const;
    // Answers a deferred request; a ticket whose connection is gone (closed, timed out, or of an
    // earlier start) is ignored. Any thread.
    void reply(std::uint64_t ticket, Response resp);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace core::http
