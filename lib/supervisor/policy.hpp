// The pure parts of supervision, kept apart so they are tested without processes: the backoff
// delay, the start-limit window and the restart decision. Not synchronised (the supervisor
// thread owns them).
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <string>

#include "core/process/supervisor.hpp"

namespace core::process::detail {

using Clock = std::chrono::steady_clock;

// The delay before restart attempt `attempt` (1 for the first restart after a reset), for a
// uniform random u in [0, 1): min(max, initial * factor^(attempt-1)) * (1 - jitter * u).
std::chrono::milliseconds backoff_delay(const BackoffPolicy& p, unsigned attempt, double u);

// Start times within the window of a StartLimit (systemd's StartLimitBurst/IntervalSec).
class StartWindow {
  public:
    // Would a start at `now` be allowed (fewer than burst starts in (now - interval, now])?
    bool allows(const StartLimit& limit, Clock::time_point now);
    // Keeps at most burst entries (none without a limit): only those decide.
    void record(const StartLimit& limit, Clock::time_point now);
    void clear() { starts_.clear(); }
    std::size_t count() const noexcept { return starts_.size(); }

  private:
    std::deque<Clock::time_point> starts_;
};

struct ExitInfo {
    int exit_code = 0;  // -1 when killed by a signal
    int signal = 0;
    bool spawn_failed = false;  // the process never ran
    bool unhealthy = false;     // we stopped it because its health check failed
};

// Does a run reset the backoff? It was stable (running without a health check, or healthy)
// from stable_since until stable_until (when it turned unhealthy, or ended) for at least
// reset_after. No stable period: no.
bool resets_backoff(std::optional<Clock::time_point> stable_since, Clock::time_point stable_until,
                    std::chrono::milliseconds reset_after) noexcept;

// A clean end: exit code 0, no signal, no spawn failure, not unhealthy.
bool is_failure(const ExitInfo& e) noexcept;
// Should the policy start the daemon again after this end?
bool should_restart(RestartPolicy p, const ExitInfo& e) noexcept;
// "exited with code 3", "killed by SIGKILL", …
std::string describe(const ExitInfo& e);

}  // namespace core::process::detail
