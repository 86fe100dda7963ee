#include "supervisor/transitions.hpp"

namespace core::process::detail {

namespace {

std::string limit_text(const StartWindow& w, const StartLimit& limit) {
    return "start limit hit: " + std::to_string(w.count()) + " starts within " +
           std::to_string(limit.interval.count()) + "ms";
}

}  // namespace

EndDecision decide_end(const EndInput& in) {
    EndDecision out;
    ExitInfo e = in.exit;
    const After after = in.after;
    if (after == After::unhealthy) e.unhealthy = true;
    std::string what = e.spawn_failed ? in.detail : describe(e);
    if (after == After::unhealthy && !in.unhealthy_why.empty())
        what =
            describe(ExitInfo{e.exit_code, e.signal, false, false}) + " after " + in.unhealthy_why;
    const bool by_policy = after == After::policy || after == After::unhealthy;
    // A failure's reason quotes its last line of output ("exited with code 1: OSError: [Errno
    // 98] Address already in use"): what an operator needs first.
    if (by_policy && is_failure(e) && !e.spawn_failed && !in.last_line.empty()) {
        std::string last = in.last_line;
        if (last.size() > kLastLineChars) last = last.substr(0, kLastLineChars) + "…";
        what += ": " + last;
    }
    // A stop we asked for is not a failure; anything else that failed is recorded.
    if (by_policy && is_failure(e)) out.last_error = what;
    // The stable period ended when the daemon turned unhealthy, if it did, else now: either
    // way a long enough one resets the backoff.
    out.attempt = resets_backoff(in.stable_since, in.stable_until.value_or(in.now), in.reset_after)
                      ? 0
                      : in.attempt;
    switch (after) {
        case After::stop:
            out.state = DaemonState::stopped;
            out.reason = "stopped: " + what;
            break;
        case After::remove:
            out.state = DaemonState::stopped;
            out.reason = "removed: " + what;
            out.erase = true;
            break;
        case After::restart:
        case After::wait_deps:
            out.start_again = true;
            out.coming_back = true;
            break;
        case After::policy:
        case After::unhealthy:
            out.reason = what;
            if (!should_restart(in.restart, e)) {
                out.state = is_failure(e) ? DaemonState::failed : DaemonState::stopped;
                break;
            }
            ++out.attempt;
            {
                const auto delay = backoff_delay(in.backoff, out.attempt, in.jitter_u);
                // Every recorded start is <= now, so the window at the end of the delay is
                // known already: fail now rather than after a useless wait.
                StartWindow w = in.window;
                if (!w.allows(in.start_limit, in.now + delay)) {
                    out.last_error = limit_text(w, in.start_limit);
                    out.state = DaemonState::failed;
                    out.reason = what + "; " + *out.last_error;
                } else {
                    out.state = DaemonState::backoff;
                    out.delay = delay;
                    out.restart_at = in.now + delay;
                    out.coming_back = true;
                }
            }
            break;
    }
    return out;
}

HealthDecision decide_health(const HealthInput& in) {
    HealthDecision out;
    if (in.ok) {
        out.failures = 0;
        if (in.state != DaemonState::healthy) {
            out.state = DaemonState::healthy;
            out.reason = "health check passed";
            out.stable_begins = true;
        }
        return out;
    }
    out.failures = in.failures + 1;
    out.last_error = "health: " + in.error;
    if (out.failures < in.failures_to_trip || in.state == DaemonState::unhealthy) return out;
    // The stable period is not reset here: the exit compares it with reset_after.
    out.stable_ends = true;
    out.state = DaemonState::unhealthy;
    out.reason = *out.last_error + " (" + std::to_string(out.failures) + " in a row)";
    out.restart = in.restart != RestartPolicy::no;
    return out;
}

}  // namespace core::process::detail
