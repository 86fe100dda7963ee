// The control plane's requests as the routes see them: the target split into segments and
// query, the body parsers (fuzzed: test/fuzz/fuzz_control.cpp), the reply, and which of the
// transport's paths a request takes. No Boost, no Supervisor: pure functions of their text.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/process/supervisor.hpp"
#include "core/result.hpp"

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
}  // namespace core::control
