// core::process::ManagedProcess: one child started by the Service. Shared (std::shared_ptr);
// its state is updated by the Service's reaper thread only; every method is thread-safe.
// After the child is reaped it is never signalled again (signals go through its pidfd).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/export.hpp"
#include "core/process/types.hpp"
#include "core/result.hpp"

namespace core::process {

namespace detail {
struct ProcessState;
}

class CORE_API ManagedProcess {
public:
    explicit ManagedProcess(std::shared_ptr<detail::ProcessState> state);
    ~ManagedProcess();
    ManagedProcess(const ManagedProcess&) = delete;
    ManagedProcess& operator=(const ManagedProcess&) = delete;

    const std::string& id() const noexcept;
    int pid() const noexcept;
    const std::string& command() const noexcept;
    Status status() const;
    int exit_code() const;  // -1 when killed by a signal
    bool is_running() const;
    ProcessInfo info() const;
    // The captured combined output so far (newest max_output bytes).
    std::string output() const;

    // SIGTERM (to the group with kill_group), then SIGKILL after grace_period. Returns at once;
    // wait() to see the end. A finished process: succeeds and does nothing.
    Result<void> kill();
    // Sends sig now (to the group with kill_group). Finished: succeeds and does nothing.
    Result<void> signal(int sig);

    // Blocks until the child has been reaped and its output drained.
    ProcessInfo wait() const;
    // As wait, with a timeout; true when finished.
    bool wait_for(std::chrono::nanoseconds timeout) const;

    // With keep_stdin: writes bytes to the child's stdin (blocking while the pipe is full).
    // Errors: stdin not kept or already closed; the child closed its end (EPIPE).
    Result<void> write_input(std::string_view bytes);
    Result<void> close_input();

    std::shared_ptr<detail::ProcessState> state() const noexcept { return s_; }

private:
    std::shared_ptr<detail::ProcessState> s_;
};

}  // namespace core::process
