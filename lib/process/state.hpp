// detail::ProcessState: everything about one child, shared by its ManagedProcess, the Service's
// registry and the reaper. Fields are grouped by who may touch them: immutable after start; under
// mu; under input_mu; under the reaper's work lock (its thread, or a waiter helping it).
#pragma once

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
#include "sys/fd.hpp"

namespace core::process::detail {

class Reaper;
class Cgroup;

// Why a kill was requested (the first request wins; it decides run()'s Error).
enum class EndReason { none, killed, timeout, cancelled, shutdown };

// The stop_callback's function: queues a kill on the reaper. Holds only weak references, so a
// state that owns its callback is no cycle.
struct CancelFn {
    std::weak_ptr<Reaper> reaper;
    std::weak_ptr<struct ProcessState> state;
    Context ctx;  // for its reason() at cancellation time (the Context does not own us)
    void operator()() noexcept;
};

struct ProcessState {
    // --- immutable after start ---
    std::string id;
    std::string command;
    std::vector<std::string> args;
    std::string dir;
    int pid = 0;
    bool kill_group = false;
    bool transient = false;  // run(): its entry is removed when run returns, not retained
    std::chrono::milliseconds grace{5000};
    std::chrono::milliseconds timeout{0};
    std::size_t max_output = 0;
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
    bool reaped = false;  // waited for: never signal again
    bool done = false;    // reaped and output drained: wait() returns
    std::chrono::steady_clock::time_point ended_steady{};
    OutputRing output;
    bool kill_requested = false;
    EndReason reason = EndReason::none;
    std::string reason_text;  // ctx.reason() for cancelled
    sys::UniqueFd pidfd;      // closed by the reaper after reaping (under mu)
    std::optional<std::stop_callback<CancelFn>> on_cancel;

    // --- under input_mu (keep_stdin) ---
    std::mutex input_mu;
    bool keep_stdin = false;
    sys::UniqueFd input_fd;

    // --- under the reaper's work lock (Reaper::work_mu_) only ---
    sys::UniqueFd out_fd;
    sys::UniqueFd err_fd;
    sys::UniqueFd in_fd;  // the `input` option's pipe, written non-blockingly
    std::string input;
    std::size_t input_off = 0;
    LineSplitter out_lines;
    LineSplitter err_lines;
    std::uint32_t slot = UINT32_MAX;
    bool polled = false;  // waited for by polling (no pidfd)
    bool drain_armed = false;
    bool finished = false;            // finish() ran
    std::uint32_t timers_queued = 0;  // entries for this child in the reaper's timer heap

    // --- containment (issue 13) ---
    std::shared_ptr<Cgroup> cgroup;  // immutable after start; null without one
    Accounting accounting;           // under mu: the cgroup's final figures, set at exit
};

}  // namespace core::process::detail
