// detail::PidRef: one child as one value, as systemd's PidRef: its pid, its pidfd (owned) and
// whether it has been reaped, with the rule "never signal after reap" inside it. Once reap()
// has taken the exit (or mark_reaped() says someone else did), signal() refuses and the pid is
// only a number for the record: the kernel may already have given it to another process.
// Not thread-safe: its owner's lock guards it (ProcessState::mu). Move-only.
#pragma once

#include <optional>

#include "core/result.hpp"
#include "sys/fd.hpp"
#include "sys/proc.hpp"

namespace core::process::detail {

class PidRef {
  public:
    PidRef() = default;
    // Takes ownership of pidfd (which may be invalid: the no-pidfd fallback waits by pid).
    static PidRef take(int pid, sys::UniqueFd pidfd) noexcept;
    // pidfd_open(pid): valid only while nobody else can reap pid (right after our own spawn).
    // Errors: pidfd_open's (ENOSYS before Linux 5.3, ESRCH/EINVAL for a reaped pid, EMFILE).
    static Result<PidRef> open(int pid);

    int pid() const noexcept { return pid_; }
    bool has_pidfd() const noexcept { return pidfd_.valid(); }
    // The pidfd, borrowed (for epoll), or -1. Closed by mark_reaped().
    int pidfd() const noexcept { return pidfd_.get(); }
    bool reaped() const noexcept { return reaped_; }

    // A new owned descriptor for the same pidfd (a waiter's copy). Errors: EBADF without one.
    Result<sys::UniqueFd> dup_pidfd() const;

    // Sends sig through the pidfd, or with kill(2) on the pid (group: on its process group,
    // whose id is the pid). Errors: ESRCH once reaped (nothing is sent: the pid may be reused);
    // ESRCH from the kernel for an exited, not yet reaped child; EPERM; EINVAL.
    Result<void> signal(int sig, bool group = false) const;

    // waitid(WEXITED | WNOHANG) through the pidfd (or the pid without one). nullopt: not
    // reapable yet (not an error, tokio #7144). Any other answer, an Error included (ECHILD:
    // someone else reaped it), marks it reaped. Errors: ECHILD once reaped.
    Result<std::optional<sys::ExitStatus>> reap();
    // Whether the child has exited, without reaping it (WNOWAIT): the zombie keeps its pid,
    // and its group id, reserved. False once reaped.
    Result<bool> exited() const;
    // Records that the child is reaped (by reap(), or lost to someone else) and closes the
    // pidfd; the caller has taken it out of any epoll set first. Idempotent.
    void mark_reaped() noexcept;

  private:
    PidRef(int pid, sys::UniqueFd pidfd) noexcept : pid_(pid), pidfd_(std::move(pidfd)) {}
    int pid_ = 0;
    sys::UniqueFd pidfd_;
    bool reaped_ = false;
};

}  // namespace core::process::detail
