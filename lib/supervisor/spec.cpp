// Names, parsing and validation of daemon specs.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>

#include "core/graph.hpp"
#include "core/process/supervisor.hpp"
#include "sys/signals.hpp"

namespace core::process {

namespace {

// Durations are bounded so that deadline arithmetic (steady_clock + d) can never overflow.
constexpr std::chrono::milliseconds kMaxDuration = std::chrono::hours(24 * 365);

std::string ms_text(std::chrono::milliseconds d) {
    return std::to_string(d.count()) + "ms";
}

}  // namespace

const char* to_string(RestartPolicy p) noexcept {
    switch (p) {
        case RestartPolicy::no:
            return "no";
        case RestartPolicy::on_failure:
            return "on-failure";
        case RestartPolicy::always:
            return "always";
    }
    return "?";
}

Result<RestartPolicy> parse_restart_policy(std::string_view text) {
    if (text == "no") return RestartPolicy::no;
    if (text == "on-failure" || text == "on_failure") return RestartPolicy::on_failure;
    if (text == "always") return RestartPolicy::always;
    return fail(
        E("restart", "want one of no, on-failure, always; got \"" + std::string(text) + "\""));
}

const char* to_string(DaemonState s) noexcept {
    switch (s) {
        case DaemonState::starting:
            return "starting";
        case DaemonState::running:
            return "running";
        case DaemonState::healthy:
            return "healthy";
        case DaemonState::unhealthy:
            return "unhealthy";
        case DaemonState::backoff:
            return "backoff";
        case DaemonState::stopping:
            return "stopping";
        case DaemonState::stopped:
            return "stopped";
        case DaemonState::failed:
            return "failed";
    }
    return "?";
}

Result<void> validate(const DaemonSpec& s) {
    const std::string who = "daemon \"" + s.name + "\"";
    auto bad = [&](const std::string& key, const std::string& why) {
        return fail(E("supervisor", who + ": " + key + ": " + why));
    };
    auto duration = [&](const std::string& key, std::chrono::milliseconds d,
                        bool positive) -> Result<void> {
        if (d.count() < 0 || (positive && d.count() == 0))
            return bad(
                key, std::string("must be ") + (positive ? "> 0" : ">= 0") + ", got " + ms_text(d));
        if (d > kMaxDuration) return bad(key, "must be at most 365 days, got " + ms_text(d));
        return {};
    };

    if (s.name.empty()) return fail(E("supervisor", "daemon: name: must not be empty"));
    if (s.name.size() > 128) return bad("name", "longer than 128 characters");
    for (char c : s.name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok) return bad("name", "only letters, digits, '.', '_' and '-' are allowed");
    }
    if (s.command.empty()) return bad("command", "must not be empty");
    for (const auto& e : s.env) {
        const auto eq = e.find('=');
        if (eq == std::string::npos || eq == 0)
            return bad("env", "want \"KEY=VALUE\", got \"" + e + "\"");
    }

    const auto& h = s.health;
    if (!h.url.empty() && !h.command.empty())
        return bad("health", "set either url or command, not both");
    if (!h.url.empty() && h.url.rfind("http://", 0) != 0)
        return bad("health.url", "want http://host:port/path, got \"" + h.url + "\"");
    if (!h.command.empty() && h.command[0].empty())
        return bad("health.command", "the program (first element) must not be empty");
    if (auto r = duration("health.interval", h.interval, true); !r) return r;
    if (auto r = duration("health.timeout", h.timeout, true); !r) return r;
    if (auto r = duration("health.start_grace", h.start_grace, false); !r) return r;
    if (h.failures == 0) return bad("health.failures", "must be >= 1");

    const auto& b = s.backoff;
    if (auto r = duration("backoff.initial", b.initial, false); !r) return r;
    if (auto r = duration("backoff.max", b.max, false); !r) return r;
    if (b.max < b.initial)
        return bad("backoff.max", "must be >= backoff.initial (" + ms_text(b.initial) + "), got " +
                                      ms_text(b.max));
    if (!std::isfinite(b.factor) || b.factor < 1.0 || b.factor > 1000.0)
        return bad("backoff.factor", "must be from 1 to 1000, got " + std::to_string(b.factor));
    if (!std::isfinite(b.jitter) || b.jitter < 0.0 || b.jitter > 1.0)
        return bad("backoff.jitter", "must be from 0 to 1, got " + std::to_string(b.jitter));

    if (auto r = duration("reset_after", s.reset_after, false); !r) return r;
    if (auto r = duration("start_limit.interval", s.start_limit.interval, s.start_limit.burst > 0);
        !r)
        return r;
    if (s.stop_signal < 1 || s.stop_signal > sys::sig_max())
        return bad("stop_signal", "not a signal number: " + std::to_string(s.stop_signal));
    if (auto r = duration("stop_timeout", s.stop_timeout, false); !r) return r;
    if (!s.log.dir.empty() && !s.log.file.empty())
        return bad("log", "set either dir or file, not both");
    if (s.log.backups > 1000) return bad("log.backups", "must be at most 1000");
    if (s.log.max_size != 0 && s.log.max_size < 1024)
        return bad("log.max_size", "must be 0 (never rotate) or at least 1024 bytes");
    if (auto r = duration("watchdog", s.watchdog, false); !r) return r;
    if (auto r = duration("start_timeout", s.start_timeout, false); !r) return r;
    if (!s.notify && s.watchdog.count() > 0)
        return bad("watchdog", "needs \"notify\": true (the daemon pings with WATCHDOG=1)");
    if (!s.notify && s.start_timeout.count() > 0)
        return bad("start_timeout", "needs \"notify\": true (it bounds the wait for READY=1)");
    for (const auto* list : {&s.after, &s.requires_}) {
        const char* key = list == &s.after ? "after" : "requires";
        for (const auto& dep : *list) {
            if (dep.empty()) return bad(key, "a daemon name must not be empty");
            if (dep == s.name) return bad(key, "dependency cycle: " + s.name + " → " + s.name);
        }
    }
    return {};
}

Result<void> validate_dependencies(const std::vector<DaemonSpec>& specs, bool allow_unknown) {
    std::map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < specs.size(); ++i) index.emplace(specs[i].name, i);
    // deps[i]: the indices daemon i waits for (after and requires, deduplicated).
    std::vector<std::vector<std::size_t>> deps(specs.size());
    for (std::size_t i = 0; i < specs.size(); ++i) {
        for (const auto* list : {&specs[i].after, &specs[i].requires_}) {
            for (const auto& name : *list) {
                auto it = index.find(name);
                if (it == index.end()) {
                    if (allow_unknown) continue;
                    return fail(E("supervisor",
                                  "daemon \"" + specs[i].name + "\": unknown dependency \"" + name +
                                      "\" (in " + (list == &specs[i].after ? "after" : "requires") +
                                      ")"));
                }
                if (std::find(deps[i].begin(), deps[i].end(), it->second) == deps[i].end())
                    deps[i].push_back(it->second);
            }
        }
    }
    const auto cycle = core::find_cycle(deps);
    if (cycle.empty()) return {};
    std::string text;
    for (std::size_t k = 0; k + 1 < cycle.size(); ++k) text += specs[cycle[k]].name + " → ";
    text += specs[cycle.back()].name;
    return fail(E("supervisor", "dependency cycle: " + text + " (each waits for the next)"));
}

}  // namespace core::process
