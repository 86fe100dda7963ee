#include "control/events.hpp"

#include <nlohmann/json.hpp>

#include "control/api.hpp"

namespace core::control {

using nlohmann::json;

namespace {

long long ns(std::chrono::nanoseconds d) {
    return static_cast<long long>(d.count());
}

bool up(cp::DaemonState s) {
    return s == cp::DaemonState::running || s == cp::DaemonState::healthy ||
           s == cp::DaemonState::unhealthy;
}

json event(const std::string& channel, const json& data, const std::string& process_id = {}) {
    json m{{"type", "event"}, {"channel", channel}};
    if (!process_id.empty()) m["processId"] = process_id;
    m["data"] = data;
    m["timestamp"] = rfc3339(std::chrono::system_clock::now());
    return m;
}

}  // namespace

std::vector<std::string> event_messages(const core::Value& v, const std::string& code) {
    std::vector<std::string> out;
    if (const auto* e = v.get<cp::DaemonStateChanged>()) {
        out.push_back(dump(event("daemon.state",
                                 json{{"name", e->name},
                                      {"from", cp::to_string(e->from)},
                                      {"to", cp::to_string(e->to)},
                                      {"pid", e->pid},
                                      {"restarts", e->restarts},
                                      {"reason", e->reason},
                                      {"delay_ms", e->delay.count()}},
                                 e->name)));
        const auto now = rfc3339(std::chrono::system_clock::now());
        if (e->to == cp::DaemonState::running && !up(e->from)) {
            out.push_back(dump(event("process.daemon.started", json{{"code", code},
                                                                    {"daemon", e->name},
                                                                    {"pid", e->pid},
                                                                    {"health", ""},
                                                                    {"project", ""},
                                                                    {"binary", ""},
                                                                    {"started", now},
                                                                    {"startedAt", now}})));
        } else if ((up(e->from) || e->from == cp::DaemonState::stopping) && !up(e->to) &&
                   e->to != cp::DaemonState::stopping) {
            // Its process is gone: stopped, failed, waiting to restart, or restarting at once.
            out.push_back(dump(event("process.daemon.stopped",
                                     json{{"code", code}, {"daemon", e->name}, {"pid", e->pid}})));
        } else if (e->to == cp::DaemonState::healthy || e->to == cp::DaemonState::unhealthy) {
            const bool healthy = e->to == cp::DaemonState::healthy;
            out.push_back(dump(event("process.daemon.health",
                                     json{{"code", code},
                                          {"daemon", e->name},
                                          {"healthy", healthy},
                                          {"reason", healthy ? std::string() : e->reason}})));
        }
    } else if (const auto* e = v.get<cp::ProcessStarted>()) {
        out.push_back(dump(event("process.started",
                                 json{{"id", e->id},
                                      {"command", e->command},
                                      {"args", e->args},
                                      {"dir", e->dir},
                                      {"pid", e->pid},
                                      {"startedAt", rfc3339(std::chrono::system_clock::now())},
                                      {"running", true},
                                      {"status", "running"},
                                      {"exitCode", 0},
                                      {"duration", 0}},
                                 e->id)));
    } else if (const auto* e = v.get<cp::ProcessOutput>()) {
        out.push_back(
            dump(event("process.output",
                       json{{"id", e->id},
                            {"line", e->line},
                            {"stream", e->stream == cp::Stream::stderr_ ? "stderr" : "stdout"}},
                       e->id)));
    } else if (const auto* e = v.get<cp::ProcessExited>()) {
        json d{{"id", e->id}, {"exitCode", e->exit_code}, {"duration", ns(e->duration)}};
        if (!e->error.empty()) d["error"] = e->error;
        out.push_back(dump(event("process.exited", d, e->id)));
    } else if (const auto* e = v.get<cp::ProcessKilled>()) {
        out.push_back(dump(event(
            "process.killed",
            json{{"id", e->id}, {"signal", cp::signal_name(e->signal)}, {"exitCode", -1}}, e->id)));
    }
    return out;
}

std::optional<std::string> event_message(const core::Value& v) {
    auto all = event_messages(v, "");
    if (all.empty()) return std::nullopt;
    return std::move(all.front());
}

}  // namespace core::control
