// core::process::ManagedProcess: one child started by the Service. Shared (std::shared_ptr);
// its state is updated by the Service's reaper thread only; every method is thread-safe.
// After the child is reaped it is never signalled again (signals go through its pidfd).
#pragma once

#include <chrono>
#include <functional>
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
    // The captured output so far (newest max_output bytes): stdout and stderr combined with the
    // default std_err = merge; stdout alone when stderr goes elsewhere.
    std::string output() const;
    // One stream: stdout_ as output(); stderr_ the separately captured stderr (std_err =
    // Stdio::pipe()), empty when it was merged or not captured.
    std::string output(Stream s) const;
    // How it ended, once finished (see ProcessInfo::exit); the defaults while running.
    ExitStatus exit_status() const;

    // Calls fn exactly once, after the process was reaped and its output drained: on the
    // Service's notifier thread (never the reaper's), after every on_output chunk of this
    // process; or, if it has already finished, at once on this thread (on the notifier thread,
    // behind its chunks, when the process has an on_output callback). fn must not block for
    // long (it delays the other hooks); it may call any method of this process or Service.
    void on_exit(std::function<void(const ProcessInfo&)> fn);
    // A descriptor that becomes readable (POLLIN/EPOLLIN) once the process has finished, for
    // event-loop hosts (asio, libuv, epoll). Owned by this ManagedProcess: valid while it lives;
    // do not close it or read from it. Errors: EMFILE/ENFILE creating it.
    Result<int> exit_fd() const;

    // SIGTERM (to the group with kill_group), then SIGKILL after grace_period. Returns at once;
    // wait() to see the end. A finished process: succeeds and does nothing.
    Result<void> kill();
    // Sends sig now (to the group with kill_group). Finished: succeeds and does nothing.
    // sig 0 sends nothing and succeeds (a liveness probe; is_running() says which).
    Result<void> signal(int sig);

    // Blocks until the child has been reaped and its output drained.
    ProcessInfo wait() const;
    // As wait, with a timeout; true when finished.
    bool wait_for(std::chrono::nanoseconds timeout) const;

    // With std_in = Stdio::pipe(): writes bytes to the child's stdin, blocking while the pipe
    // is full, until the process finishes or close_input() is called. Errors: stdin not a pipe
    // or already closed; the child closed its end, the process finished or stdin was closed
    // meanwhile (EPIPE).
    Result<void> write_input(std::string_view bytes);
    // Closes stdin (the child sees EOF); wakes a blocked write_input. Errors: stdin not a pipe.
    Result<void> close_input();
    // Stdio::pty: the terminal's new size (the child gets SIGWINCH). Errors: not a pty child.
    Result<void> resize(unsigned short rows, unsigned short cols);

    std::shared_ptr<detail::ProcessState> state() const noexcept { return s_; }

  private:
    std::shared_ptr<detail::ProcessState> s_;
};

}  // namespace core::process
