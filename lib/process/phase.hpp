// detail::Phase: where one process is in its life, as one value instead of a set of booleans
// (reaped, drain_armed, done, finished), with the transitions allowed between phases in one
// place. Pure: no state, no locks; ProcessState::advance applies it.
#pragma once

#include <cstdint>

namespace core::process::detail {

// In order; each is entered only from the one before it, except that a reaped process whose
// pipes are already closed goes straight to done.
enum class Phase : std::uint8_t {
    starting,  // spawned (or being spawned), not yet watched by the reaper
    running,   // watched: its pidfd (or the poll) and its pipes are in the reaper's loop
    reaped,    // its exit is taken (never signalled again); its pipes are being read
    draining,  // reaped while something else (a grandchild) holds its pipes: the drain timer runs
    done,      // finished: output drained, hooks queued, wait() returns. Final.
};

// Whether from → to is a legal step. Staying put is not a step.
constexpr bool phase_allowed(Phase from, Phase to) noexcept {
    switch (from) {
        case Phase::starting:
            return to == Phase::running;
        case Phase::running:
            return to == Phase::reaped;
        case Phase::reaped:
            return to == Phase::draining || to == Phase::done;
        case Phase::draining:
            return to == Phase::done;
        case Phase::done:
            return false;
    }
    return false;
}

constexpr const char* phase_name(Phase p) noexcept {
    switch (p) {
        case Phase::starting:
            return "starting";
        case Phase::running:
            return "running";
        case Phase::reaped:
            return "reaped";
        case Phase::draining:
            return "draining";
        case Phase::done:
            return "done";
    }
    return "?";
}

// Applies from → to to phase when legal. An illegal step is a bug of the caller: it asserts in
// debug builds, and in release builds is refused (the phase stays) and reported as false.
bool advance_phase(Phase& phase, Phase to) noexcept;

}  // namespace core::process::detail
