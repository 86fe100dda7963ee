// core::process::ControlServer: the supervisor's control plane. HTTP/1.1 with JSON bodies (and a
// WebSocket for events) on a Unix domain socket, optionally also on a loopback TCP port, over one
// Supervisor and the process Service: list/get/start/stop/restart/add/remove daemons, reload,
// logs (tail and follow), events, /health, /ready, /metrics and go-process's REST routes under
// /api/process/. One I/O thread serves every connection; calls that block (stop, restart, wait)
// run on a small worker pool so that the probes stay answerable. start() and stop() are not
// thread-safe against each other; everything else is. The Core, the Supervisor and the Service
// must outlive the ControlServer.
//
// ControlClient: the other end (coreproc ctl, tests): one connection per call.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/export.hpp"
#include "core/process/service.hpp"
#include "core/process/supervisor.hpp"
#include "core/result.hpp"
#include "core/runtime.hpp"

namespace spdlog {
class logger;
}

namespace core::process {

struct ControlOptions {
    std::string name;         // the supervisor's name, for messages ("another supervisor …")
    std::string socket_path;  // required; see control_socket_path()
    // Optional TCP listener "HOST:PORT" (IPv4 literal; port 0 picks one). Loopback only unless
    // allow_remote. Everything but /health, /ready and /metrics needs the bearer token there.
    std::string listen;
    bool allow_remote = false;
    // The bearer token's file (0600). Empty: "<socket path without .sock>.token", generated
    // when missing. An existing file's first line is the token.
    std::string token_file;

    // POST /reload: re-read the supervisor's file and apply it; the returned text is a JSON
    // document sent as the reply body (empty: {"ok":true}). Null: 501.
    std::function<Result<std::string>()> reload;
    // GET /daemons/NAME/logs: the last `tail` lines of the daemon's log (stderr's alone when
    // stderr_only). Null: the current process's captured output (stdout and stderr merged).
    std::function<Result<std::string>(const std::string& name, std::size_t tail, bool stderr_only)>
        read_logs;
    // POST /daemons: add and start a daemon. Null: Supervisor::add then Supervisor::start.
    std::function<Result<void>(const DaemonSpec&)> add;
    // DELETE /daemons/NAME. Null: Supervisor::remove.
    std::function<Result<void>(const std::string&)> remove;
    // POST /api/process/pipelines/run with the request's body (a pipeline file's JSON); the
    // returned text is the envelope's Value (JSON). Null: 501.
    std::function<Result<std::string>(const std::string& body)> run_pipeline;
    // Appended to /metrics (Prometheus text lines, e.g. the log writer's drop counters).
    std::function<std::string()> extra_metrics;

    std::shared_ptr<spdlog::logger> logger;  // warnings (remote bind) and debug; null: none
    std::size_t max_connections = 256;       // live connections; at the cap the idlest goes
    std::size_t max_streams = 64;            // of which following logs or events
    std::chrono::milliseconds request_timeout{10000};  // to read one request head and body
    std::size_t max_body = std::size_t{1} << 20;
    std::size_t client_queue = 1024;  // messages queued per streaming client, then it is dropped
};

class CORE_API ControlServer {
  public:
    ControlServer(core::Core& core, Supervisor& sup, Service& svc, ControlOptions opts);
    // As stop().
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    // Creates the socket's directory (0700) if missing, replaces a stale socket, listens (0600),
    // starts the I/O thread; with listen, binds TCP, writes the token file and the record
    // "<socket path without .sock>.json" ({"socket","listen","token_file","pid"}).
    // Errors: a live socket ("another supervisor is running as NAME"); a path that is not a
    // socket; a directory another user can write; a remote address without allow_remote;
    // bind/listen errors.
    [[nodiscard]] Result<void> start();
    // Closes the listeners and every connection, joins the threads, removes the socket, the
    // record and a generated token file. Idempotent.
    void stop();

    const std::string& socket_path() const noexcept;
    // The bound TCP address "HOST:PORT", empty without a TCP listener.
    std::string tcp_address() const;
    // The token file in use (empty without a TCP listener).
    std::string token_file() const;

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

// $XDG_RUNTIME_DIR/coreproc when set, /run/coreproc as root, else /tmp/coreproc-UID.
CORE_API std::string default_control_dir();
// "<dir>/<name>.sock" (dir empty: default_control_dir()).
CORE_API std::string control_socket_path(const std::string& name, const std::string& dir = {});
// The name a supervise file gives its supervisor: the base name without its extension.
CORE_API std::string control_name_from_file(const std::string& path);
// The names of the sockets in dir (default_control_dir() when empty), sorted, without ".sock".
CORE_API std::vector<std::string> control_names(const std::string& dir = {});

// Follows a log file as `tail -n TAIL -F` does: on_data gets the file's last `tail` lines, then
// every byte appended to it, until on_data returns false. Across a rotation (the file renamed
// away and a new one created at path) the old file is read to its end before the new one from
// its start, so no line is lost or repeated; a truncated file is read again from its start; a
// file not there yet is waited for. Waits on inotify (re-checking at least every second), never
// spins. Errors: the directory cannot be watched; a read error (naming the path).
CORE_API Result<void> follow_log_file(const std::string& path, std::size_t tail,
                                      const std::function<bool(std::string_view)>& on_data);

struct ControlResponse {
    int status = 0;
    std::string content_type;
    std::string body;
};

class CORE_API ControlClient {
  public:
    // Over a Unix socket.
    static ControlClient unix_socket(std::string path);
    // Over TCP (IPv4 literal), with a bearer token (empty: none).
    static ControlClient tcp(std::string host, unsigned port, std::string token = {});

    // One request (Connection: close). headers are sent as given (e.g. Origin, Host).
    // Errors: connect (code ENOENT/ECONNREFUSED: no supervisor), I/O, a malformed response.
    [[nodiscard]] Result<ControlResponse> request(
        const std::string& method, const std::string& target, const std::string& body = {},
        const std::vector<std::pair<std::string, std::string>>& headers = {}) const;
    // A GET whose response streams (logs?follow=1): with a 2xx status, on_data gets each piece
    // of the body as it arrives, until the server ends it or on_data returns false, and the
    // returned body is empty; any other status: on_data is never called and the body is the
    // server's error reply. Errors: as request.
    [[nodiscard]] Result<ControlResponse> stream(
        const std::string& target, const std::function<bool(std::string_view)>& on_data) const;
    // GET /events as a WebSocket: on_message gets each text message until it returns false or
    // the server closes. Errors: the handshake refused (status in the message), I/O.
    [[nodiscard]] Result<void> events(
        const std::function<bool(std::string_view)>& on_message) const;

  private:
    ControlClient() = default;
    std::string path_;
    std::string host_;
    unsigned port_ = 0;
    std::string token_;
};

}  // namespace core::process
