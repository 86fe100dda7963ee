// The Supervisor's state transitions as pure functions (event + state → new state + effects),
// so that they are tested like policy.hpp: without threads, processes or clocks. The supervisor
// thread gathers the inputs from a daemon's record under its lock, calls these, and applies the
// decision (the state change, the deadlines, then the effects: a start, a stop, completions).
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "core/process/supervisor.hpp"
#include "supervisor/policy.hpp"

namespace core::process::detail {

// What happens when the current process of a daemon ends.
enum class After {
    policy,     // an unexpected end: the restart policy decides
    unhealthy,  // we stopped it for failing its health check: a failure for the policy
    stop,       // stop(): go to stopped
    restart,    // restart() (or start() while stopping): start again at once
    remove,     // remove(): forget it
    wait_deps,  // a `requires` dependency restarts: wait until it is ready, then start again
};

// The reason of a failure quotes this much of the daemon's last line of output.
inline constexpr std::size_t kLastLineChars = 300;

// A daemon's process ended (or never started).
struct EndInput {
    After after = After::policy;
    ExitInfo exit;
    std::string detail;         // the spawn error when exit.spawn_failed
    std::string unhealthy_why;  // why we stopped it as unhealthy (watchdog, start_timeout)
    std::string last_line;      // its newest line of output, empty if none
    RestartPolicy restart = RestartPolicy::on_failure;
    BackoffPolicy backoff;
    StartLimit start_limit;
    std::chrono::milliseconds reset_after{0};
    unsigned attempt = 0;  // consecutive failures before this end
    StartWindow window;    // its recent starts (a copy: deciding does not change the record)
    std::optional<Clock::time_point> stable_since;  // running (no check) or healthy since
    std::optional<Clock::time_point> stable_until;  // when it then turned unhealthy
    Clock::time_point now{};
    double jitter_u = 0;  // uniform in [0, 1): the backoff's jitter
};

struct EndDecision {
    // The state to enter and the event's reason; none when it starts again (restart,
    // wait_deps: the start decides its own state).
    std::optional<DaemonState> state;
    std::string reason;
    std::chrono::milliseconds delay{0};           // backoff: how long
    std::optional<Clock::time_point> restart_at;  // backoff: when
    unsigned attempt = 0;                         // the new count of consecutive failures
    std::optional<std::string> last_error;        // set: the new DaemonStatus::last_error
    bool start_again = false;                     // restart/wait_deps: request a start now
    bool erase = false;                           // remove(): forget the daemon
    bool coming_back = false;  // it will run again (its `requires` dependents wait for it)
};

// The one place that decides what a daemon does after its process ended: the restart policy,
// the backoff (reset after a long enough stable period, whatever ended it), the start limit,
// and the reason ("exited with code 1: <last line>", "stopped: …", "…; start limit hit: …").
EndDecision decide_end(const EndInput& in);

// A health-check result for a daemon that is running, healthy or unhealthy.
struct HealthInput {
    DaemonState state = DaemonState::running;
    unsigned failures = 0;          // consecutive failed checks so far
    unsigned failures_to_trip = 1;  // HealthSpec::failures
    RestartPolicy restart = RestartPolicy::on_failure;
    bool ok = false;
    std::string error;  // the check's error when !ok
};

struct HealthDecision {
    unsigned failures = 0;
    std::optional<DaemonState> state;  // set: enter it with `reason`
    std::string reason;
    std::optional<std::string> last_error;
    bool stable_begins = false;  // healthy now: the stable period starts
    bool stable_ends = false;    // unhealthy now: the stable period ends (the exit compares it)
    bool restart = false;        // stop it (After::unhealthy) so its policy restarts it
};

HealthDecision decide_health(const HealthInput& in);

}  // namespace core::process::detail
