// The health endpoint of a daemon (HealthServer) and the probes of one (probe_health,
// probe_ready), built on lib/http's HTTP/1.1 server and client (core/process/http.hpp: the
// response type and http_get). One epoll thread: bounded request heads, a header deadline, a
// cap on live connections and on half-sent requests; one request per connection.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "core/export.hpp"
#include "core/process/http.hpp"
#include "core/result.hpp"

namespace spdlog {
class logger;
}

namespace core::process {

// A health check: ok, or an Error whose what() is reported in the 503 body.
using HealthCheck = std::function<Result<void>()>;

// A custom GET route: called on the server thread; must not block for long.
using HttpHandler = std::function<HttpResponse()>;

struct HealthOptions {
    std::string addr = "127.0.0.1:0";  // "IPv4:port" or "localhost:port"; port 0 picks one
    // The whole request head must arrive within this of the accept (a slowloris client is
    // closed then); also the bound of a /health whose checks are still running (503).
    std::chrono::milliseconds read_timeout{5000};
    // Live connections (reading a head, waiting for the checks, writing a reply); connections
    // already answered and closing do not count. A newcomer finding them all taken waits (up
    // to 1 s for its head, then up to read_timeout for a slot, else 503 "too many
    // connections"); a complete head takes the slot of the oldest half-sent request.
    std::size_t max_connections = 64;
    // Connections still sending their head; past it the oldest is closed. 0: max_connections.
    std::size_t max_partial = 0;
    std::size_t max_head = 8192;             // request head limit; beyond it 431 and close
    bool ready = true;                       // initial readiness (as go-process: ready until told)
    std::shared_ptr<spdlog::logger> logger;  // null: core::default_logger()
};

// HealthServer answers GET /health (200 "ok\n" when every check passes, else
// 503 "unhealthy: <first error>\n"), GET /ready (200 "ready\n" / 503 "not ready\n"), routes
// added with add_handler, 404 for other paths, 405 for other methods, 400 for malformed
// requests. Every response closes the connection. All methods are thread-safe. Handlers run
// on the server thread, so they should be quick; the checks of GET /health run on a thread of
// their own, one run at a time shared by the requests waiting for it (a slow check delays only
// /health; past read_timeout it answers 503). Neither may call stop() (of this server, or of a
// Daemon owning it): that would join the thread itself. Connections already answered and
// closing do not count against max_connections, and slow clients cannot hold every slot: /health
// stays answerable under a slowloris. A non-loopback address logs a warning.
class CORE_API HealthServer {
  public:
    explicit HealthServer(HealthOptions opts = {});
    ~HealthServer();  // stop()
    HealthServer(const HealthServer&) = delete;
    HealthServer& operator=(const HealthServer&) = delete;

    // Binds, listens and starts the server thread. Errors: bad address ("health: listen
    // "x": bad address"), bind/listen failures ("health: listen 127.0.0.1:80: Permission
    // denied"), already started.
    [[nodiscard]] Result<void> start();
    // Stops the thread and closes every connection. Idempotent; start() may be called again.
    void stop();
    bool running() const;

    // The bound address "127.0.0.1:PORT" once started (the configured one before).
    std::string addr() const;
    // Adds (or replaces, by name) a check run by GET /health, in insertion order.
    void add_check(const std::string& name, HealthCheck check);
    // Serves GET path with handler (path must start with '/'; /health and /ready are built in).
    void add_handler(const std::string& path, HttpHandler handler);
    void set_ready(bool ready);
    bool ready() const;
    // Runs the checks now (as GET /health does): ok, or the first failure as
    // "<name>: <error>".
    [[nodiscard]] Result<void> check() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// GET /health (resp. /ready) on addr: ok on 200; otherwise an Error with the reason
// ("probe.health: 127.0.0.1:PORT: status 503: unhealthy: db: down", connection refused,
// timeout).
[[nodiscard]] CORE_API Result<void> probe_health(const std::string& addr,
                                                 std::chrono::milliseconds timeout);
[[nodiscard]] CORE_API Result<void> probe_ready(const std::string& addr,
                                                std::chrono::milliseconds timeout);

}  // namespace core::process
