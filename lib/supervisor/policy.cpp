#include "supervisor/policy.hpp"

#include <algorithm>
#include <cmath>

namespace core::process::detail {

std::chrono::milliseconds backoff_delay(const BackoffPolicy& p, unsigned attempt, double u) {
    const double initial = static_cast<double>(p.initial.count());
    const double cap = static_cast<double>(p.max.count());
    const unsigned k = attempt == 0 ? 0 : attempt - 1;
    // pow may overflow to inf for large attempts; the min with the cap handles it (and a
    // factor of 1 keeps the delay flat).
    double d = initial * std::pow(std::max(1.0, p.factor), static_cast<double>(k));
    if (!std::isfinite(d) || d > cap) d = cap;
    const double j = std::clamp(p.jitter, 0.0, 1.0);
    d *= 1.0 - j * std::clamp(u, 0.0, 1.0);
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(std::max(0.0, d))));
}

bool StartWindow::allows(const StartLimit& limit, Clock::time_point now) {
    while (!starts_.empty() && now - starts_.front() >= limit.interval) starts_.pop_front();
    if (limit.burst == 0) return true;
    return starts_.size() < limit.burst;
}

void StartWindow::record(const StartLimit& limit, Clock::time_point now) {
    if (limit.burst == 0) return;
    starts_.push_back(now);
    while (starts_.size() > limit.burst) starts_.pop_front();
}

bool resets_backoff(std::optional<Clock::time_point> stable_since, Clock::time_point stable_until,
                    std::chrono::milliseconds reset_after) noexcept {
    return stable_since && stable_until >= *stable_since &&
           stable_until - *stable_since >= reset_after;
}

bool is_failure(const ExitInfo& e) noexcept {
    return e.spawn_failed || e.unhealthy || e.signal != 0 || e.exit_code != 0;
}

bool should_restart(RestartPolicy p, const ExitInfo& e) noexcept {
    switch (p) {
        case RestartPolicy::no:
            return false;
        case RestartPolicy::on_failure:
            return is_failure(e);
        case RestartPolicy::always:
            return true;
    }
    return false;
}

std::string describe(const ExitInfo& e) {
    if (e.spawn_failed) return "failed to start";
    std::string s;
    if (e.signal != 0)
        s = "killed by " + signal_name(e.signal);
    else
        s = "exited with code " + std::to_string(e.exit_code);
    if (e.unhealthy) s += " after failing its health check";
    return s;
}

}  // namespace core::process::detail
