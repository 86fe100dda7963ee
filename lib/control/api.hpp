// The control plane's routes without the transport: a parsed Request in, a Reply out (the
// supervisor's routes here, go-process's in goapi.hpp, the parsers in request.hpp). No Boost
// here (server.hpp holds the HTTP and WebSocket code), so the routes and the body parsers build
// fast, are tested without sockets and are fuzzed alone. Api is thread-safe (it calls only
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

#include "control/events.hpp"   // event_message, which lived here
#include "control/request.hpp"  // Request, Reply, the target and body parsers, which lived here
#include "core/process/control.hpp"
#include "core/value.hpp"

namespace core::control {

namespace cp = core::process;

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
