// detail::ProcessState: everything about one child, shared by its ManagedProcess, the Service's
// registry and the reaper. Fields are grouped by who may touch them: immutable after start; under
// mu; under input_mu; under the reaper's work lock (its thread, or a waiter helping it).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "core/context.hpp"
#include "core/process/types.hpp"
#include "process/output.hpp"
#include "process/phase.hpp"
#include "process/pidref.hpp"
#include "sys/fd.hpp"
#include "sys/poll.hpp"

namespace core::process::detail {

class Reaper;
class Cgroup;

// Why a kill was requested (the first request wins; it decides run()'s Error). none: no kill
// was requested.
enum class EndReason { none, killed, timeout, cancelled, shutdown };

// The stop_callback's function: queues a kill on the reaper. Holds only weak references, so a
// state that owns its callback is no cycle.
struct CancelFn {
    std::weak_ptr<Reaper> reaper;
    std::weak_ptr<struct ProcessState> state;
    Context ctx;  // for its reason() at cancellation time (the Context does not own us)
    void operator()() noexcept;
};

struct ProcessState;
// The public snapshot of a process. Caller holds s.mu.
ProcessInfo info_of(const ProcessState& s);

struct ProcessState {
    // --- immutable after start ---
    std::string id;
    std::string command;
    std::vector<std::string> args;
    std::string dir;
    bool kill_group = false;
    bool transient = false;  // run(): its entry is removed when run returns, not retained
    std::chrono::milliseconds grace{5000};
    std::chrono::milliseconds timeout{0};
    std::size_t max_output = 0;
    // Captured streams: stdout (or both, merged) into `output`; stderr apart into err_output
    // when separate_err. Neither: nothing is kept.
    bool capture_out = false;
    bool separate_err = false;
    std::function<void(const OutputChunk&)> on_output;  // RunOptions::on_output
    std::chrono::system_clock::time_point started_at{};
    std::chrono::steady_clock::time_point started_steady{};
    std::weak_ptr<Reaper> reaper;

    // --- under mu ---
    mutable std::mutex mu;
    mutable std::condition_variable cv;
    Status status = Status::pending;
    int exit_code = 0;
    int signal = 0;
    std::string error;
    // Where the process is in its life (phase.hpp). Changed only by advance(), which the reaper
    // calls holding both mu and its work lock: read it under either.
    Phase phase = Phase::starting;
    std::chrono::steady_clock::time_point ended_steady{};
    OutputRing output;
    OutputRing err_output;
    ExitStatus exit;  // complete once done
    Usage usage;
    bool output_cut = false;             // the drain timer ended the wait for the pipes
    std::uint64_t callback_dropped = 0;  // on_output bytes dropped (queue full)
    std::vector<std::function<void(const ProcessInfo&)>> exit_hooks;  // until done
    sys::EventFd exit_event;  // ManagedProcess::exit_fd(): created on demand, signalled once done
    sys::UniqueFd pty_ctl;    // Stdio::pty: our descriptor for resize(); closed at finish
    // The kill request is not a phase: any thread may ask (under mu only) while the process is
    // running, and it stays running until reaped. The first request sets the reason.
    EndReason reason = EndReason::none;
    std::string reason_text;  // ctx.reason() for cancelled
    // The child: pid, pidfd and whether it is reaped (never signalled after). Its pid is set
    // before the state is shared and never changes, so ref.pid() may be read without mu; the
    // rest changes under mu and the reaper's work lock together, so either lock suffices to
    // read it. The reaper closes the pidfd after reaping.
    PidRef ref;
    std::optional<std::stop_callback<CancelFn>> on_cancel;

    // --- under input_mu (std_in = pipe) ---
    std::mutex input_mu;
    bool keep_stdin = false;
    sys::UniqueFd input_fd;  // non-blocking; write_input polls it together with input_wake
    // Signalled when the process finished or close_input() was called, so that a writer blocked
    // on a full pipe (a grandchild holding stdin) returns. Created with input_fd, never reset
    // before the state goes.
    sys::EventFd input_wake;
    std::atomic<bool> input_closing{false};

    // --- under the reaper's work lock (Reaper::work_mu_) only ---
    sys::UniqueFd out_fd;
    sys::UniqueFd err_fd;
    sys::UniqueFd in_fd;  // the `input` option's pipe, written non-blockingly
    std::string input;
    std::size_t input_off = 0;
    LineSplitter out_lines;
    LineSplitter err_lines;
    std::uint32_t slot = UINT32_MAX;
    // How the exit is learned, not a phase: by polling waitid (no pidfd, or a pidfd that was
    // readable but not reapable) instead of the pidfd in epoll. Can switch while running.
    bool polled = false;
    std::uint32_t timers_queued = 0;  // entries for this child in the reaper's timer heap
    // The pidfd is not in the epoll set yet (Reaper's defer_window): a waiter reaps it, or the
    // reaper enrolls it later. Written under the work lock; read without it by help_reap.
    std::atomic<bool> deferred{false};
    // Someone learns of the exit without waiting (exit_fd, on_exit): never deferred. Any thread.
    std::atomic<bool> expedite{false};
    // A run() child (transient, output pipes, no `input`, no pty) is deferred with its pipes:
    // they stay out of the epoll set too (pipes_held), and the run() caller reads them and
    // reaps on its own thread (Reaper::drive), so the reaper thread never wakes for it. While
    // driver_active, nothing else reads its pipes, closes them or reaps it: the driver polls
    // them without a lock. Both under the work lock.
    bool pipes_held = false;
    bool driver_active = false;

    // --- containment (issue 13) ---
    std::shared_ptr<Cgroup> cgroup;  // immutable after start; null without one
    Accounting accounting;           // under mu: the cgroup's final figures, set at exit

    // Finished: output drained, wait() returns. Under mu or the reaper's work lock.
    bool is_done() const noexcept { return phase == Phase::done; }
    // Reaped (its output may still be drained) but not done.
    bool is_draining() const noexcept { return phase == Phase::reaped || phase == Phase::draining; }
    bool kill_requested() const noexcept { return reason != EndReason::none; }  // under mu
    // The one way the phase changes. Caller holds mu and the reaper's work lock.
    bool advance(Phase to) noexcept { return advance_phase(phase, to); }
};

}  // namespace core::process::detail
