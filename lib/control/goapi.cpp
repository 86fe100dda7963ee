#include "control/goapi.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>

#include "core/process/managed_process.hpp"

namespace core::control {

using nlohmann::json;

namespace {

Reply reply(int status, const json& j) {
    Reply r;
    r.status = status;
    r.body = dump(j);
    return r;
}
Reply ok(const json& value) {
    return reply(200, go_ok(value));
}
Reply failed(int status, const std::string& code, const std::string& message,
             const json& details = nullptr) {
    return reply(status, go_fail(code, message, details));
}
// gin answers a route it does not have (or a method it does not serve there) 404.
Reply no_route(const Request& r) {
    return failed(404, "not_found", "404 page not found: " + r.method + " " + r.target.path);
}

Error bad(const std::string& message) {
    return Error("control", "body: " + message, EINVAL);
}

// Typed reads of optional keys; a present key of another type is an Error naming it.
Result<void> read_string(const json& j, const char* key, std::string& out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return {};
    if (!it->is_string()) return fail(bad(std::string("\"") + key + "\" wants a string"));
    out = it->get<std::string>();
    return {};
}
Result<void> read_strings(const json& j, const char* key, std::vector<std::string>& out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return {};
    if (!it->is_array()) return fail(bad(std::string("\"") + key + "\" wants an array"));
    for (const auto& e : *it) {
        if (!e.is_string())
            return fail(bad(std::string("\"") + key + "\" wants an array of strings"));
        out.push_back(e.get<std::string>());
    }
    return {};
}
Result<void> read_bool(const json& j, const char* key, bool& out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return {};
    if (!it->is_boolean()) return fail(bad(std::string("\"") + key + "\" wants a boolean"));
    out = it->get<bool>();
    return {};
}
// A time.Duration: integer nanoseconds, rounded up to our milliseconds (a positive timeout never
// becomes "none").
Result<void> read_duration(const json& j, const char* key, std::chrono::milliseconds& out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return {};
    if (!it->is_number_integer() || (it->is_number_integer() && it->get<long long>() < 0))
        return fail(bad(std::string("\"") + key + "\" wants nanoseconds (a whole number >= 0)"));
    const auto ns = it->is_number_unsigned()
                        ? it->get<unsigned long long>()
                        : static_cast<unsigned long long>(it->get<long long>());
    out = std::chrono::milliseconds(static_cast<long long>(ns / 1000000 + (ns % 1000000 ? 1 : 0)));
    return {};
}

std::string trim(std::string s) {
    auto sp = [](unsigned char c) { return std::isspace(c) != 0; };
    s.erase(s.begin(), std::find_if_not(s.begin(), s.end(), sp));
    s.erase(std::find_if_not(s.rbegin(), s.rend(), sp).base(), s.end());
    return s;
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// pidFromString: a positive decimal.
int pid_of(const std::string& s) {
    const std::string t = trim(s);
    int n = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
    return ec == std::errc{} && p == t.data() + t.size() && n > 0 ? n : 0;
}

long long ns(std::chrono::nanoseconds d) {
    return static_cast<long long>(d.count());
}

}  // namespace

Result<cp::RunOptions> parse_go_run_body(std::string_view body, bool keep_stdin_default) {
    auto j = parse_json_object(body);
    if (!j) return fail(j.error());
    cp::RunOptions o;
    bool disable_capture = false, keep_stdin = keep_stdin_default;
    std::chrono::milliseconds grace{0};  // go-process's default: SIGKILL at once
    for (auto r :
         {read_string(*j, "command", o.command), read_strings(*j, "args", o.args),
          read_string(*j, "dir", o.dir), read_strings(*j, "env", o.env),
          read_bool(*j, "disableCapture", disable_capture), read_bool(*j, "detach", o.detach),
          read_duration(*j, "timeout", o.timeout), read_duration(*j, "gracePeriod", grace),
          read_bool(*j, "killGroup", o.kill_group), read_bool(*j, "keepStdin", keep_stdin)})
        if (!r) return fail(r.error());
    if (trim(o.command).empty()) return fail(bad("command is required"));
    o.grace_period = grace;
    if (keep_stdin) o.std_in = cp::Stdio::pipe();
    if (disable_capture) {
        o.std_out = cp::Stdio::null();
        o.std_err = cp::Stdio::null();
    }
    return o;
}

Result<GoKillBody> parse_go_kill_body(std::string_view body) {
    auto j = parse_json_object(body);
    if (!j) return fail(j.error());
    GoKillBody k;
    if (auto r = read_string(*j, "id", k.id); !r) return fail(r.error());
    if (auto it = j->find("pid"); it != j->end() && !it->is_null()) {
        if (!it->is_number_integer()) return fail(bad("\"pid\" wants a number"));
        const auto n = it->get<long long>();
        k.pid = n > 0 && n <= 0x7fffffff ? static_cast<int>(n) : 0;
    }
    if (k.id.empty() && k.pid <= 0) return fail(bad("id or pid is required"));
    if (k.pid <= 0) k.pid = pid_of(k.id);
    return k;
}

Result<GoPipelineBody> parse_go_pipeline_body(std::string_view body) {
    auto j = parse_json_object(body);
    if (!j) return fail(j.error());
    GoPipelineBody p;
    std::string mode;
    if (auto r = read_string(*j, "mode", mode); !r) return fail(r.error());
    mode = lower(trim(mode));
    if (!mode.empty()) p.mode = mode;
    p.bad_mode = p.mode != "all" && p.mode != "sequential" && p.mode != "parallel";
    auto it = j->find("specs");
    if (it != j->end() && !it->is_null()) {
        if (!it->is_array()) return fail(bad("\"specs\" wants an array"));
        if (it->size() > 1000) return fail(bad("\"specs\": more than 1000"));
        for (const auto& e : *it) {
            if (!e.is_object()) return fail(bad("\"specs\" wants objects"));
            cp::RunSpec s;
            for (auto r : {read_string(e, "name", s.name), read_string(e, "command", s.command),
                           read_strings(e, "args", s.args), read_string(e, "dir", s.dir),
                           read_strings(e, "env", s.env), read_strings(e, "after", s.after),
                           read_bool(e, "allowFailure", s.allow_failure)})
                if (!r) return fail(r.error());
            p.specs.push_back(std::move(s));
        }
    }
    return p;
}

Result<int> parse_go_signal_body(std::string_view body) {
    auto j = parse_json_object(body);
    if (!j) return fail(j.error());
    auto it = j->find("signal");
    if (it != j->end() && it->is_number_integer()) return parse_signal_body(body);
    std::string name;
    if (auto r = read_string(*j, "signal", name); !r) return fail(r.error());
    name = trim(name);
    if (name.empty()) return fail(Error("control", "signal is required", EINVAL));
    for (auto& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    auto sig = cp::parse_signal(name);
    if (!sig) return fail(sig.error().with_code(EINVAL));
    return *sig;
}

json go_info_json(const cp::ProcessInfo& p) {
    return json{{"id", p.id},
                {"command", p.command},
                {"args", p.args},
                {"dir", p.dir},
                {"startedAt", rfc3339(p.started_at)},
                {"running", p.running},
                {"status", cp::to_string(p.status)},
                {"exitCode", p.exit_code},
                {"duration", ns(p.duration)},
                {"pid", p.pid},
                {"signal", p.signal},
                {"error", p.error}};
}

json go_ok(const json& value) {
    return json{{"Value", value}, {"OK", true}};
}

json go_fail(const std::string& code, const std::string& message, const json& details) {
    json v{{"code", code}, {"message", message}};
    if (!details.is_null()) v["details"] = details;
    return json{{"Value", v}, {"OK", false}};
}

GoApi::GoApi(cp::Supervisor& sup, cp::Service& svc, const cp::ControlOptions& opts)
    : sup_(sup), svc_(svc), opts_(opts) {}

// provider.go's RegisterRoutes: the plural routes, the RFC's singular aliases, pipelines.
Reply GoApi::handle(const Request& r) {
    const auto& s = r.target.segments;
    const std::string& m = r.method;
    if (s.size() < 3) return no_route(r);
    const std::string& group = s[2];
    if (group == "daemons") return daemons(r);
    if (group == "pipelines" && s.size() == 4 && s[3] == "run" && m == "POST") return pipeline(r);
    if (group == "processes") {
        if (s.size() == 3 && m == "GET") return list(r, false);
        if (s.size() == 3 && m == "POST") return start(r, false);
        if (s.size() == 4 && s[3] == "run" && m == "POST") return run(r);
        if (s.size() == 4 && m == "GET") return process_verb(r, s[3], "");
        if (s.size() == 5) return process_verb(r, s[3], s[4]);
        return no_route(r);
    }
    if (group == "process") {
        if (s.size() == 4 && s[3] == "list" && m == "GET") return list(r, true);
        if (s.size() == 4 && s[3] == "start" && m == "POST") return start(r, true);
        if (s.size() == 4 && s[3] == "run" && m == "POST") return run(r);
        if (s.size() == 4 && s[3] == "kill" && m == "POST") return kill_json(r);
        if (s.size() == 4 && m == "GET") return process_verb(r, s[3], "");
        if (s.size() == 5 && s[4] != "kill") return process_verb(r, s[3], s[4]);
        return no_route(r);
    }
    return no_route(r);
}

json GoApi::daemon_entry(const cp::DaemonStatus& st) {
    json e{{"code", opts_.name}, {"daemon", st.name}, {"pid", st.pid}};
    if (auto spec = sup_.spec(st.name)) {
        if (!spec->health.url.empty()) e["health"] = spec->health.url;
        if (!spec->command.empty()) e["binary"] = spec->command;
    }
    e["started"] = st.since == std::chrono::system_clock::time_point{} ? "" : rfc3339(st.since);
    e["state"] = cp::to_string(st.state);  // ours, beside go-process's DaemonEntry
    return e;
}

// go-process's daemons are registry entries of live processes, keyed by code (here: the
// supervisor's name) and daemon (the daemon's name); one without a process is "not running".
Reply GoApi::daemons(const Request& r) {
    const auto& s = r.target.segments;
    const std::string& m = r.method;
    if (s.size() == 3) {
        if (m != "GET") return no_route(r);
        json arr = json::array();
        for (const auto& st : sup_.list())
            if (st.pid > 0) arr.push_back(daemon_entry(st));
        return ok(arr);
    }
    if (s.size() < 5 || s.size() > 6) return no_route(r);
    const bool get = s.size() == 5 && m == "GET";
    const bool stop = s.size() == 6 && s[5] == "stop" && m == "POST";
    const bool health = s.size() == 6 && s[5] == "health" && m == "GET";
    if (!get && !stop && !health) return no_route(r);
    auto st = sup_.get(s[4]);
    if ((!opts_.name.empty() && s[3] != opts_.name) || !st || st->pid <= 0)
        return failed(404, "not_found", "daemon not found or not running");
    if (get) return ok(daemon_entry(*st));
    if (stop) {
        if (auto done = sup_.stop(st->name); !done)
            return failed(500, "signal_failed", done.error().what());
        return ok(json{{"stopped", true}});
    }
    // The supervisor's own verdict (its checks run on their interval), not a probe per request.
    auto spec = sup_.spec(st->name);
    if (!spec || !spec->health.enabled())
        return ok(
            json{{"healthy", false}, {"address", ""}, {"reason", "no health endpoint configured"}});
    std::string address = spec->health.url;
    if (address.empty())
        for (const auto& a : spec->health.command) address += (address.empty() ? "" : " ") + a;
    const bool healthy = st->state == cp::DaemonState::healthy;
    json v{{"healthy", healthy}, {"address", address}};
    if (!healthy)
        v["reason"] = st->last_error.empty() ? std::string("state ") + cp::to_string(st->state)
                                             : st->last_error;
    return reply(healthy ? 200 : 503, go_ok(v));
}

Reply GoApi::list(const Request& r, bool ids_only) {
    // go-process reads ?runningOnly= with strconv.ParseBool; ?running= is ours.
    bool running = query_flag(r.target.query, "running");
    if (auto it = r.target.query.find("runningOnly"); it != r.target.query.end()) {
        const auto& v = it->second;
        running = v == "1" || v == "t" || v == "T" || v == "true" || v == "TRUE" || v == "True";
    }
    json arr = json::array();
    for (const auto& id : svc_.list(running)) {
        if (ids_only) {
            arr.push_back(id);
        } else if (auto mp = svc_.get(id)) {
            arr.push_back(go_info_json((*mp)->info()));
        }
    }
    return ok(arr);
}

Reply GoApi::start(const Request& r, bool id_only) {
    auto o = parse_go_run_body(r.body, true);
    if (!o) return failed(400, "invalid_request", o.error().what());
    o->detach = true;  // the RFC's process.start: background, not tied to this request
    auto mp = svc_.start(core::Context::background(), *o);
    if (!mp) return failed(500, "start_failed", mp.error().what());
    if (id_only) return ok((*mp)->id());
    return ok(go_info_json((*mp)->info()));
}

Reply GoApi::run(const Request& r) {
    auto o = parse_go_run_body(r.body, false);
    if (!o) return failed(400, "invalid_request", o.error().what());
    auto out = svc_.run(core::Context::background(), *o);
    if (!out) return failed(500, "run_failed", out.error().what(), json{{"output", ""}});
    return ok(*out);
}

Reply GoApi::kill_json(const Request& r) {
    auto k = parse_go_kill_body(r.body);
    if (!k) return failed(400, "invalid_request", k.error().what());
    // killProcessByTarget: the id first, then the pid.
    Result<void> done = fail(Error("control", "process not found", ESRCH));
    if (!k->id.empty()) done = svc_.kill(k->id);
    if (!done && k->pid > 0) done = svc_.kill_pid(k->pid);
    if (!done)
        return failed(status_of(done.error()) == 404 ? 404 : 500, "kill_failed",
                      done.error().what());
    return ok(json{{"killed", true}});
}

Reply GoApi::process_verb(const Request& r, const std::string& id, const std::string& verb) {
    const std::string& m = r.method;
    auto mp = svc_.get(id);
    const int pid = pid_of(id);
    // kill and signal also take a pid where the id names none (go-process's KillPID/SignalPID).
    if (!mp && pid > 0 && (verb == "kill" || verb == "signal")) {
        for (const auto& other : svc_.list(true))
            if (auto cand = svc_.get(other); cand && (*cand)->pid() == pid) mp = cand;
    }
    const std::string not_found = "process not found: " + id;
    if (verb.empty()) {
        if (m != "GET") return no_route(r);
        if (!mp) return failed(404, "not_found", not_found);
        return ok(go_info_json((*mp)->info()));
    }
    if (verb == "output") {
        if (m != "GET") return no_route(r);
        if (!mp) return failed(404, "not_found", not_found);
        return ok((*mp)->output());
    }
    if (m != "POST") return no_route(r);
    if (verb == "wait") {
        if (!mp) return failed(404, "not_found", not_found);
        // go-process waits without a bound; ours is ?timeout=SECONDS (default 60, up to 3600),
        // so that a request never holds a worker for ever.
        std::size_t secs = 60;
        if (auto it = r.target.query.find("timeout"); it != r.target.query.end()) {
            auto n = parse_tail({{"tail", it->second}}, 60);
            if (!n || *n > 3600)
                return failed(400, "invalid_request", "timeout: want seconds up to 3600");
            secs = *n;
        }
        auto& p = **mp;
        if (!p.wait_for(std::chrono::seconds(secs)))
            return failed(
                504, "wait_failed",
                "process " + p.id() + " still running after " + std::to_string(secs) + "s",
                go_info_json(p.info()));
        const auto info = p.info();
        if (info.status == cp::Status::exited && info.exit_code == 0) return ok(go_info_json(info));
        if (info.status == cp::Status::killed)
            return failed(409, "wait_failed", "process was killed: " + info.id, go_info_json(info));
        if (info.status == cp::Status::exited)
            return failed(409, "wait_failed",
                          "process exited with code " + std::to_string(info.exit_code),
                          go_info_json(info));
        return failed(500, "wait_failed", info.error, go_info_json(info));
    }
    if (verb == "input") {
        auto in = parse_input_body(r.body);
        if (!in) return failed(400, "invalid_request", in.error().what());
        if (!mp) return failed(404, "input_failed", not_found);
        auto& p = **mp;
        if (!p.is_running()) return failed(404, "input_failed", "process is not running");
        if (!in->input.empty())
            if (auto done = p.write_input(in->input); !done)
                return failed(500, "input_failed", done.error().what());
        if (in->close)  // ours: input and EOF in one call
            if (auto done = p.close_input(); !done)
                return failed(500, "input_failed", done.error().what());
        return ok(json{{"written", true}});
    }
    if (verb == "close-stdin") {
        if (!mp) return failed(404, "close_stdin_failed", not_found);
        if (auto done = (*mp)->close_input(); !done)
            return failed(500, "close_stdin_failed", done.error().what());
        return ok(json{{"closed", true}});
    }
    if (verb == "kill") {
        if (!mp) return failed(404, "kill_failed", not_found);
        if (auto done = (*mp)->kill(); !done)
            return failed(500, "kill_failed", done.error().what());
        return ok(json{{"killed", true}});
    }
    if (verb == "signal") {
        auto sig = parse_go_signal_body(r.body);
        if (!sig) {
            const bool json_error = !parse_json_object(r.body);
            return failed(400, json_error ? "invalid_request" : "invalid_signal",
                          sig.error().what());
        }
        if (!mp) return failed(404, "signal_failed", not_found);
        if (!(*mp)->is_running()) return failed(404, "signal_failed", "process is not running");
        if (auto done = (*mp)->signal(*sig); !done)
            return failed(500, "signal_failed", done.error().what());
        return ok(json{{"signalled", true}});
    }
    return no_route(r);
}

Reply GoApi::pipeline(const Request& r) {
    if (opts_.run_pipeline) {  // the host's own pipeline runner (our pipeline file's format)
        auto out = opts_.run_pipeline(r.body);
        if (!out) return failed(400, "pipeline_failed", out.error().what());
        json v = json::parse(*out, nullptr, false);
        return ok(v.is_discarded() ? json(*out) : v);
    }
    auto p = parse_go_pipeline_body(r.body);
    if (!p) return failed(400, "invalid_request", p.error().what());
    if (p->bad_mode)
        return failed(400, "invalid_mode", "mode must be one of: all, sequential, parallel");
    cp::Runner runner(svc_);
    const auto ctx = core::Context::background();
    auto res = p->mode == "sequential" ? runner.run_sequential(ctx, p->specs)
               : p->mode == "parallel" ? runner.run_parallel(ctx, p->specs)
                                       : runner.run_all(ctx, p->specs);
    if (!res) return failed(400, "pipeline_failed", res.error().what());
    // RunAllResult as go-process encodes it; its RunResult.Error reports only start-time and
    // orchestration failures (a process that exited non-zero says so by its exitCode).
    json results = json::array();
    for (std::size_t i = 0; i < res->results.size(); ++i) {
        const auto& x = res->results[i];
        const auto& sp = p->specs[i];
        json j{{"name", x.name},
               {"spec", json{{"name", sp.name},
                             {"command", sp.command},
                             {"args", sp.args},
                             {"dir", sp.dir},
                             {"env", sp.env},
                             {"after", sp.after},
                             {"allowFailure", sp.allow_failure}}},
               {"exitCode", x.exit_code},
               {"duration", ns(x.duration)},
               {"output", x.output},
               {"skipped", x.status == cp::RunStatus::skipped}};
        if (!x.error.empty() && (x.status == cp::RunStatus::skipped || x.exit_code < 0))
            j["error"] = x.error;
        results.push_back(std::move(j));
    }
    return ok(json{{"results", results},
                   {"duration", ns(res->duration)},
                   {"passed", res->passed},
                   {"failed", res->failed},
                   {"skipped", res->skipped}});
}

}  // namespace core::control
