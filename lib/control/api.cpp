#include "control/api.hpp"

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <sstream>

#include "control/goapi.hpp"
#include "core/process/managed_process.hpp"
#include "sys/procstat.hpp"

namespace core::control {

using nlohmann::json;

namespace {

// Daemon name rules are the spec's ([A-Za-z0-9._-]+); anything else cannot name one.
bool plausible_name(const std::string& n) {
    return !n.empty() && n.size() <= 256 && std::all_of(n.begin(), n.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
    });
}

Reply json_reply(int status, const json& j) {
    Reply r;
    r.status = status;
    r.body = dump(j);
    return r;
}

Reply ok_reply(const json& j = json{{"ok", true}}) {
    return json_reply(200, j);
}

double seconds(std::chrono::nanoseconds d) {
    return std::chrono::duration<double>(d).count();
}

bool up(cp::DaemonState s) {
    return s == cp::DaemonState::running || s == cp::DaemonState::healthy ||
           s == cp::DaemonState::unhealthy;
}

}  // namespace

std::string rfc3339(std::chrono::system_clock::time_point t) {
    using namespace std::chrono;
    const auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    long frac = static_cast<long>(ms % 1000);
    if (frac < 0) {
        frac += 1000;
        secs -= 1;
    }
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[80];  // enough for any int fields (-Wformat-truncation)
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    return buf;
}

json daemon_json(const cp::DaemonStatus& s) {
    json j{{"name", s.name},
           {"state", cp::to_string(s.state)},
           {"pid", s.pid},
           {"process_id", s.process_id},
           {"restarts", s.restarts},
           {"exited", s.exited},
           {"last_exit_code", s.last_exit_code},
           {"last_signal", s.last_signal},
           {"last_error", s.last_error},
           {"health_failures", s.health_failures},
           {"since", s.since == std::chrono::system_clock::time_point{} ? "" : rfc3339(s.since)}};
    // Where its log files are ("" without), for `coreproc ctl logs -f` (issue 14, helper J).
    j["log_path"] = s.log_path;
    j["err_log_path"] = s.err_log_path;
    // Resource use of the current process (the dashboard's columns): null where not accounted.
    // memory_source/cpu_source say where each came from: "cgroup" (the daemon's own cgroup)
    // or "proc" (the main process alone, from /proc/PID).
    j["memory_bytes"] = nullptr;
    j["memory_source"] = "";
    j["cpu_seconds"] = nullptr;
    j["cpu_source"] = "";
    j["uptime_seconds"] = nullptr;
    if (s.pid > 0) {
        if (auto u = core::sys::procstat::of_pid(s.pid)) {
            if (!u->memory_source.empty()) {
                j["memory_bytes"] = u->memory_bytes;
                j["memory_source"] = u->memory_source;
            }
            if (!u->cpu_source.empty()) {
                j["cpu_seconds"] = u->cpu_seconds;
                j["cpu_source"] = u->cpu_source;
            }
            if (u->uptime_seconds > 0) j["uptime_seconds"] = u->uptime_seconds;
        }
    }
    // Dependencies and the readiness protocol (issue 15).
    j["ready"] = s.ready;
    j["waiting_for"] = s.waiting_for;
    j["status_text"] = s.status_text;
    return j;
}

json process_json(const cp::ProcessInfo& p) {
    return json{{"id", p.id},
                {"pid", p.pid},
                {"command", p.command},
                {"args", p.args},
                {"dir", p.dir},
                {"running", p.running},
                {"status", cp::to_string(p.status)},
                {"exitCode", p.exit_code},
                {"signal", p.signal},
                {"startedAt", rfc3339(p.started_at)},
                {"duration", seconds(p.duration)},
                {"error", p.error}};
}

std::string last_lines(const std::string& text, std::size_t max_lines) {
    if (max_lines == 0 || text.empty()) return text;
    std::size_t end = text.size();
    if (text.back() == '\n') --end;  // the final newline ends the last line, not a new one
    std::size_t pos = end;
    std::size_t lines = 0;
    while (pos > 0) {
        if (text[pos - 1] == '\n' && ++lines == max_lines) break;
        --pos;
    }
    return text.substr(pos);
}

Reply error_reply(int status, const std::string& message) {
    return json_reply(status, json{{"error", message}});
}

int status_of(const Error& e) {
    const std::string w = e.what();
    if (w.find("unknown daemon") != std::string::npos || w.find("not found") != std::string::npos ||
        e.code() == ESRCH)
        return 404;
    if (w.find("already exists") != std::string::npos || e.code() == EEXIST) return 409;
    if (e.code() == EINVAL || w.find("invalid spec") != std::string::npos) return 400;
    return 500;
}

// The Core is part of the signature for routes that need it; none does since the go-process
// routes moved to goapi.cpp (their pipelines run on the Service).
Api::Api([[maybe_unused]] core::Core& core, cp::Supervisor& sup, cp::Service& svc,
         const cp::ControlOptions& opts)
    : sup_(sup), svc_(svc), opts_(opts) {}

bool Api::has_daemon(const std::string& name) const {
    return static_cast<bool>(sup_.get(name));
}

Result<std::string> Api::process_id(const std::string& name) {
    auto st = sup_.get(name);
    if (!st) return fail(st.error());
    return st->process_id;
}

Result<std::string> Api::logs(const std::string& name, std::size_t tail, bool stderr_only) {
    if (opts_.read_logs) return opts_.read_logs(name, tail, stderr_only);
    auto st = sup_.get(name);
    if (!st) return fail(st.error());
    if (st->process_id.empty()) return std::string();
    auto mp = svc_.get(st->process_id);
    if (!mp) return std::string();  // reaped and evicted meanwhile: nothing kept
    // Without a log reader only the merged capture exists: stderr alone cannot be told apart.
    return last_lines((*mp)->output(), tail);
}

Reply Api::handle(const Request& r, const std::string& server_metrics) {
    const auto& s = r.target.segments;
    if (s.size() == 1 && s[0] == "health") return health();
    if (s.size() == 1 && s[0] == "ready") return ready();
    if (s.size() == 1 && s[0] == "metrics") return metrics(server_metrics);
    if (!s.empty() && s[0] == "daemons") return daemons(r);
    if (s.size() == 1 && s[0] == "reload") {
        if (r.method != "POST") return error_reply(405, "POST /reload");
        if (!opts_.reload) return error_reply(501, "reload is not available in this supervisor");
        auto out = opts_.reload();
        if (!out)
            return error_reply(status_of(out.error()) == 500 ? 400 : status_of(out.error()),
                               out.error().what());
        Reply rep;
        rep.body = out->empty() ? dump(json{{"ok", true}}) : *out;
        return rep;
    }
    if (s.size() >= 2 && s[0] == "api" && s[1] == "process") return go_api(r);
    return error_reply(404, "no route for " + r.method + " " + r.target.path);
}

Reply Api::health() {
    return ok_reply(json{{"status", "ok"}});
}

Reply Api::ready() {
    json not_ready = json::array();
    for (const auto& st : sup_.list()) {
        auto spec = sup_.spec(st.name);
        if (!spec || spec->restart == cp::RestartPolicy::no) continue;
        if (st.state != cp::DaemonState::running && st.state != cp::DaemonState::healthy)
            not_ready.push_back(json{{"name", st.name}, {"state", cp::to_string(st.state)}});
    }
    const bool ready = not_ready.empty();
    return json_reply(ready ? 200 : 503, json{{"ready", ready}, {"not_ready", not_ready}});
}

Reply Api::metrics(const std::string& server_metrics) {
    static constexpr cp::DaemonState kStates[] = {
        cp::DaemonState::starting,  cp::DaemonState::running, cp::DaemonState::healthy,
        cp::DaemonState::unhealthy, cp::DaemonState::backoff, cp::DaemonState::stopping,
        cp::DaemonState::stopped,   cp::DaemonState::failed};
    const auto list = sup_.list();
    const auto now = std::chrono::system_clock::now();
    std::ostringstream o;
    o << "# HELP coreproc_daemon_state 1 for the daemon's current state, 0 for the others.\n"
         "# TYPE coreproc_daemon_state gauge\n";
    for (const auto& st : list)
        for (auto s : kStates)
            o << "coreproc_daemon_state{daemon=\"" << st.name << "\",state=\"" << cp::to_string(s)
              << "\"} " << (st.state == s ? 1 : 0) << "\n";
    o << "# HELP coreproc_daemon_restarts_total Starts after the first one.\n"
         "# TYPE coreproc_daemon_restarts_total counter\n";
    for (const auto& st : list)
        o << "coreproc_daemon_restarts_total{daemon=\"" << st.name << "\"} " << st.restarts << "\n";
    o << "# HELP coreproc_daemon_uptime_seconds How long the current process has run (0: none).\n"
         "# TYPE coreproc_daemon_uptime_seconds gauge\n";
    for (const auto& st : list) {
        double upt = 0;
        if (up(st.state) && !st.process_id.empty()) {
            if (auto mp = svc_.get(st.process_id))
                upt = std::max(
                    0.0, std::chrono::duration<double>(now - (*mp)->info().started_at).count());
        }
        o << "coreproc_daemon_uptime_seconds{daemon=\"" << st.name << "\"} " << upt << "\n";
    }
    o << "# HELP coreproc_daemon_pid The current process id (0: none).\n"
         "# TYPE coreproc_daemon_pid gauge\n";
    for (const auto& st : list)
        o << "coreproc_daemon_pid{daemon=\"" << st.name << "\"} " << st.pid << "\n";
    o << "# HELP coreproc_daemon_last_exit_code Exit code of the last process (-1: a signal).\n"
         "# TYPE coreproc_daemon_last_exit_code gauge\n";
    for (const auto& st : list)
        if (st.exited)
            o << "coreproc_daemon_last_exit_code{daemon=\"" << st.name << "\"} "
              << st.last_exit_code << "\n";
    o << "# HELP coreproc_daemon_last_signal Signal that ended the last process (0: none).\n"
         "# TYPE coreproc_daemon_last_signal gauge\n";
    for (const auto& st : list)
        if (st.exited)
            o << "coreproc_daemon_last_signal{daemon=\"" << st.name << "\"} " << st.last_signal
              << "\n";
    o << "# HELP coreproc_daemon_health_failures Consecutive failed health checks.\n"
         "# TYPE coreproc_daemon_health_failures gauge\n";
    for (const auto& st : list)
        o << "coreproc_daemon_health_failures{daemon=\"" << st.name << "\"} " << st.health_failures
          << "\n";
    // What was lost on the way to the log files (issue 14): lines the bounded log queue
    // dropped (a slow disk), and lines lost to open/write errors (disk full, a bad directory).
    std::uint64_t log_dropped = 0, log_errors = 0;
    o << "# HELP coreproc_daemon_log_dropped_lines_total Lines dropped because the log writer's "
         "queue was full.\n"
         "# TYPE coreproc_daemon_log_dropped_lines_total counter\n";
    for (const auto& st : list) {
        o << "coreproc_daemon_log_dropped_lines_total{daemon=\"" << st.name << "\"} "
          << st.log_dropped << "\n";
        log_dropped += st.log_dropped;
    }
    o << "# HELP coreproc_daemon_log_write_errors_total Lines lost to log open/write errors "
         "(disk full, unwritable directory).\n"
         "# TYPE coreproc_daemon_log_write_errors_total counter\n";
    for (const auto& st : list) {
        o << "coreproc_daemon_log_write_errors_total{daemon=\"" << st.name << "\"} "
          << st.log_errors << "\n";
        log_errors += st.log_errors;
    }
    o << "# HELP coreproc_log_dropped_lines_total Log lines dropped (queue full), daemons "
         "present.\n"
         "# TYPE coreproc_log_dropped_lines_total counter\n"
      << "coreproc_log_dropped_lines_total " << log_dropped << "\n"
      << "# HELP coreproc_log_write_errors_total Log lines lost to write errors, daemons present.\n"
         "# TYPE coreproc_log_write_errors_total counter\n"
      << "coreproc_log_write_errors_total " << log_errors << "\n";
    o << "# HELP coreproc_events_dropped_lines_total Output lines the event bus dropped for "
         "subscribers that fell behind (the WebSocket, ctl events, logs -f without a file).\n"
         "# TYPE coreproc_events_dropped_lines_total counter\n"
      << "coreproc_events_dropped_lines_total " << svc_.dropped_event_lines() << "\n";
    o << server_metrics;
    if (opts_.extra_metrics) o << opts_.extra_metrics();
    Reply r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = o.str();
    return r;
}

Reply Api::daemons(const Request& r) {
    const auto& s = r.target.segments;
    const std::string& m = r.method;
    if (s.size() == 1) {
        if (m == "GET") {
            json arr = json::array();
            for (const auto& st : sup_.list()) arr.push_back(daemon_json(st));
            return ok_reply(arr);
        }
        if (m == "POST") {
            auto spec = parse_daemon_body(r.body);
            if (!spec) return error_reply(400, spec.error().what());
            const std::string name = spec->name;
            Result<void> ok;
            if (opts_.add) {
                ok = opts_.add(*spec);
            } else {
                ok = sup_.add(*spec);
                if (ok) ok = sup_.start(name);
            }
            if (!ok) {
                // A spawn error after a successful add: the daemon exists and follows its policy.
                if (has_daemon(name) && status_of(ok.error()) == 500) {
                    auto st = sup_.get(name);
                    Reply rep = json_reply(201, st ? daemon_json(*st) : json{{"name", name}});
                    return rep;
                }
                return error_reply(status_of(ok.error()), ok.error().what());
            }
            auto st = sup_.get(name);
            return json_reply(201, st ? daemon_json(*st) : json{{"name", name}});
        }
        return error_reply(405, m + " /daemons");
    }
    const std::string& name = s[1];
    if (!plausible_name(name) || !has_daemon(name))
        return error_reply(404, "unknown daemon: " + name);
    if (s.size() == 2) {
        if (m == "GET") {
            auto st = sup_.get(name);
            if (!st) return error_reply(404, st.error().what());
            return ok_reply(daemon_json(*st));
        }
        if (m == "DELETE") {
            auto ok = opts_.remove ? opts_.remove(name) : sup_.remove(name);
            if (!ok) return error_reply(status_of(ok.error()), ok.error().what());
            return ok_reply(json{{"ok", true}, {"removed", name}});
        }
        return error_reply(405, m + " /daemons/" + name);
    }
    if (s.size() != 3) return error_reply(404, "no route for " + m + " " + r.target.path);
    const std::string& verb = s[2];
    if (verb == "logs") {
        if (m != "GET") return error_reply(405, m + " /daemons/" + name + "/logs");
        auto tail = parse_tail(r.target.query, 100);
        if (!tail) return error_reply(400, tail.error().what());
        const bool err_only =
            r.target.query.count("stream") && r.target.query.at("stream") == "stderr";
        auto text = logs(name, *tail, err_only);
        if (!text) return error_reply(status_of(text.error()), text.error().what());
        Reply rep;
        rep.content_type = "text/plain; charset=utf-8";
        rep.body = std::move(*text);
        return rep;
    }
    if (verb != "start" && verb != "stop" && verb != "restart")
        return error_reply(404, "no route for " + m + " " + r.target.path);
    if (m != "POST") return error_reply(405, m + " /daemons/" + name + "/" + verb);
    Result<void> ok = verb == "start"  ? sup_.start(name)
                      : verb == "stop" ? sup_.stop(name)
                                       : sup_.restart(name);
    auto st = sup_.get(name);
    if (!ok) {
        // A failed spawn on start leaves the daemon to its restart policy: the client still
        // learns why, as a conflict with what it asked for.
        const int code = status_of(ok.error());
        return error_reply(code == 500 ? 409 : code, ok.error().what());
    }
    return ok_reply(st ? daemon_json(*st) : json{{"name", name}});
}

// go-process's REST routes (goapi.cpp).
Reply Api::go_api(const Request& r) {
    return GoApi(sup_, svc_, opts_).handle(r);
}

}  // namespace core::control
