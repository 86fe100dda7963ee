// go-process's REST routes under /api/process/ (its pkg/api/provider.go) over one Supervisor and
// the process Service, so that go-process's clients work against coreproc: its paths, bodies,
// status codes and envelope, {"Value":…,"OK":true} and on failure
// {"Value":{"code":"not_found","message":…[,"details":…]},"OK":false}. Durations are Go's
// time.Duration in JSON: integer nanoseconds. No Boost here, as api.hpp. GoApi is thread-safe as
// Api is; handle() may block (wait, run, pipelines).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/api.hpp"
#include "core/process/runner.hpp"

namespace core::control {

// Body parsers (fuzzed). Errors name the key; every one is go-process's "invalid_request" (400).
// TaskProcessStart / TaskProcessRun: {"command","args","dir","env","disableCapture","detach",
// "timeout","gracePeriod" (ns),"killGroup"}, and ours: "keepStdin" (default true for start: a
// go-process child always has a stdin pipe). Errors: not an object, a key of the wrong type, a
// blank command ("command is required"), a negative duration.
Result<cp::RunOptions> parse_go_run_body(std::string_view body, bool keep_stdin_default);
// POST /process/kill: {"id": "…", "pid": N}. Errors: neither ("id or pid is required").
struct GoKillBody {
    std::string id;
    int pid = 0;
};
Result<GoKillBody> parse_go_kill_body(std::string_view body);
// POST /pipelines/run: {"mode": "all"|"sequential"|"parallel" (default all, any case),
// "specs": [{"name","command","args","dir","env","after","allowFailure"}]}. Errors: as above;
// another mode is reported apart (go-process's "invalid_mode").
struct GoPipelineBody {
    std::string mode = "all";
    bool bad_mode = false;  // mode is none of the three
    std::vector<cp::RunSpec> specs;
};
Result<GoPipelineBody> parse_go_pipeline_body(std::string_view body);
// {"signal": "SIGTERM" | "term" | "15"} (go-process takes a string; a JSON number is accepted
// too). Errors: missing or blank ("signal is required"), an unknown name.
Result<int> parse_go_signal_body(std::string_view body);

// go-process's process.Info: id, command, args, dir, startedAt, running, status, exitCode,
// duration (ns), pid; and ours beside them: signal, error.
nlohmann::json go_info_json(const cp::ProcessInfo& p);
// go-process's envelope around a value, and its failure {"code","message"[,"details"]}.
nlohmann::json go_ok(const nlohmann::json& value);
nlohmann::json go_fail(const std::string& code, const std::string& message,
                       const nlohmann::json& details = nullptr);

class GoApi {
  public:
    GoApi(cp::Supervisor& sup, cp::Service& svc, const cp::ControlOptions& opts);

    // A request whose target starts /api/process/.
    Reply handle(const Request& r);

  private:
    Reply daemons(const Request& r);
    Reply processes(const Request& r);
    Reply process_verb(const Request& r, const std::string& id, const std::string& verb);
    Reply start(const Request& r, bool id_only);
    Reply run(const Request& r);
    Reply kill_json(const Request& r);
    Reply pipeline(const Request& r);
    Reply list(const Request& r, bool ids_only);
    nlohmann::json daemon_entry(const cp::DaemonStatus& st);

    cp::Supervisor& sup_;
    cp::Service& svc_;
    const cp::ControlOptions& opts_;
};

}  // namespace core::control
