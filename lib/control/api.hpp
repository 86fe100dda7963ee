// The control plane's routes without the transport: a parsed Request in, a Reply out. No
// Boost here (server.cpp holds the HTTP and WebSocket code), so the routes and the body parsers
// build fast, are tested without sockets and are fuzzed alone. Api is thread-safe (it calls only
// thread-safe Supervisor and Service methods); handle() may block (stop, restart, wait).
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/events.hpp"  // event_message, which lived here
#include "core/process/control.hpp"
#include "core/value.hpp"

namespace core::control {

namespace cp = core::process;

// A request target split: percent-decoded path segments and query parameters.
struct Target {
    std::string path;                   // as sent, without the query
    std::vector<std::string> segments;  // "/daemons/web/logs" → {"daemons","web","logs"}
    std::map<std::string, std::string> query;
};
// Errors: a target not starting with '/', a bad percent escape, a NUL or '/' inside a decoded
// segment, more than 32 segments.
Result<Target> parse_target(std::string_view target);

struct Request {
    std::string method;  // "GET", "POST", …
    Target target;
    std::string body;
};

struct Reply {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
};

// What the transport must do with a request.
enum class RouteKind {
    probe,        // /health, /ready, /metrics: answered on the I/O thread, never queued
    plain,        // everything else that fits one reply: on the worker pool
    follow_logs,  // GET /daemons/NAME/logs?follow=1: a chunked stream
    events,       // GET /events: a WebSocket
};
RouteKind classify(const Request& r);

// The body as a JSON object. Errors: not JSON, not an object.
Result<nlohmann::json> parse_json_object(std::string_view body);
// Body parsers (fuzzed). A daemon object as in the supervise file, parsed by the config
// reader as {"daemons":[body]}. Errors name the key.
Result<cp::DaemonSpec> parse_daemon_body(std::string_view body);
// {"signal": "SIGTERM" | "TERM" | 15}.
Result<int> parse_signal_body(std::string_view body);
// {"input": "text"} (and optional "close": true).
struct InputBody {
    std::string input;
    bool close = false;
};
Result<InputBody> parse_input_body(std::string_view body);
// ?tail=N: a line count (default fallback when missing). Errors: not a number, > 1000000.
Result<std::size_t> parse_tail(const std::map<std::string, std::string>& query,
                               std::size_t fallback);
// "1", "true", "yes" → true; missing, "0", "false", "no" → false.
bool query_flag(const std::map<std::string, std::string>& query, const std::string& key);

// JSON text that never throws (invalid UTF-8 replaced).
std::string dump(const nlohmann::json& j);
// RFC 3339 UTC with milliseconds: "2026-12-01T19:31:14.123Z".
std::string rfc3339(std::chrono::system_clock::time_point t);
nlohmann::json daemon_json(const cp::DaemonStatus& s);
nlohmann::json process_json(const cp::ProcessInfo& p);
// The last max_lines lines of text (all of it when max_lines is 0).
std::string last_lines(const std::string& text, std::size_t max_lines);

class Api {
  public:
    Api(core::Core& core, cp::Supervisor& sup, cp::Service& svc, const cp::ControlOptions& opts);

    // A plain or probe route. server_metrics: lines the transport adds to /metrics.
    Reply handle(const Request& r, const std::string& server_metrics = {});

    // The tail of a daemon's log (read_logs, or the current process's output).
    Result<std::string> logs(const std::string& name, std::size_t tail, bool stderr_only);
    // The daemon's current process id (empty when none). Errors: unknown daemon.
    Result<std::string> process_id(const std::string& name);
    // Does the daemon exist?
    bool has_daemon(const std::string& name) const;

  private:
    Reply health();
    Reply ready();
    Reply metrics(const std::string& server_metrics);
    Reply daemons(const Request& r);
    Reply go_api(const Request& r);

    core::Core& core_;
    cp::Supervisor& sup_;
    cp::Service& svc_;
    const cp::ControlOptions& opts_;
};

// {"error": message} with status.
Reply error_reply(int status, const std::string& message);
// The HTTP status an Error maps to: unknown daemon / not found → 404, already exists → 409,
// invalid spec / option / EINVAL → 400, else 500.
int status_of(const Error& e);

}  // namespace core::control
