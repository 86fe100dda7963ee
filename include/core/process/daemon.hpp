// The current process as a daemon (go-process's Daemon): PID file, health endpoint, registry
// entry, and a run loop that ends on context cancellation or SIGTERM/SIGINT.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/context.hpp"
#include "core/export.hpp"
#include "core/process/daemon_registry.hpp"
#include "core/process/health.hpp"
#include "core/process/pidfile.hpp"
#include "core/result.hpp"

namespace spdlog {
class logger;
}

namespace core::process {

struct DaemonOptions {
    std::string pid_file;      // empty: no PID file
    std::string health_addr;   // empty: no health server; "127.0.0.1:0" picks a port
    std::string code;          // registry code; code and daemon both empty: not registered
    std::string daemon;        // registry daemon name
    std::string project;       // registry: optional
    std::string binary;        // registry: optional
    std::string registry_dir;  // empty: DaemonRegistry::default_dir()
    std::vector<std::pair<std::string, HealthCheck>> checks;  // added to the health server
    std::chrono::milliseconds health_read_timeout{5000};
    bool handle_signals = true;              // run() also ends on SIGTERM/SIGINT (see run())
    std::shared_ptr<spdlog::logger> logger;  // null: core::default_logger()
};

// Daemon runs the current process as a daemon. start()/stop() are all-or-nothing and
// idempotent; run() blocks one thread. notify_stop() may be called from any thread or a signal
// handler; other methods are thread-safe.
class CORE_API Daemon {
  public:
    explicit Daemon(DaemonOptions opts);
    ~Daemon();  // stop(), errors ignored
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Acquires the PID file, starts the health server, registers the entry; when a step fails,
    // undoes the earlier ones and returns its Error ("daemon.start: ...").
    [[nodiscard]] Result<void> start();
    // Marks not ready, unregisters, releases the PID file, stops the health server. Every step
    // runs; the first Error is returned. No-op when not started.
    [[nodiscard]] Result<void> stop();
    // Blocks until ctx is cancelled, notify_stop() is called, or (handle_signals) SIGTERM or
    // SIGINT arrives, then stop()s. Signals are read with a signalfd: run() blocks SIGTERM and
    // SIGINT in the calling thread for its duration, which is only reliable when every other
    // thread blocks them too — call block_stop_signals() in main() before starting threads.
    // Without that, a signal delivered to another thread keeps its default action (the process
    // dies). No process-wide handler is installed. Errors: not started, signalfd failure.
    [[nodiscard]] Result<void> run(const Context& ctx);
    // Makes run() return (async-signal-safe: one write to an eventfd).
    void notify_stop() noexcept;
    // The signal that ended the last run() (15, 2), or 0.
    int stop_signal() const noexcept;

    void set_ready(bool ready);
    bool running() const;
    // The health server's bound address ("" without one).
    std::string health_addr() const;
    // The health server (null when health_addr is empty), e.g. to add checks or handlers.
    HealthServer* health() noexcept;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Blocks SIGTERM and SIGINT in the calling thread (threads created afterwards inherit the
// mask). Call it first thing in main() of a daemon that uses Daemon::run(). Errors: the
// pthread_sigmask failure.
[[nodiscard]] CORE_API Result<void> block_stop_signals();

}  // namespace core::process
