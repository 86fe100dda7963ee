#include "process/pidref.hpp"

#include <cerrno>

namespace core::process::detail {

namespace {
Error reaped_error(int pid) {
    return Error("process.pidref", "pid " + std::to_string(pid) + " is reaped", ESRCH);
}
}  // namespace

PidRef PidRef::take(int pid, sys::UniqueFd pidfd) noexcept {
    return PidRef(pid, std::move(pidfd));
}

Result<PidRef> PidRef::open(int pid) {
    auto fd = sys::pidfd_open(pid);
    if (!fd) return fail(fd.error());
    return PidRef(pid, std::move(*fd));
}

Result<sys::UniqueFd> PidRef::dup_pidfd() const {
    if (reaped_ || !pidfd_)
        return fail(Error("process.pidref", "pid " + std::to_string(pid_) + ": no pidfd", EBADF));
    return pidfd_.dup();
}

Result<void> PidRef::signal(int sig, bool group) const {
    if (reaped_ || pid_ <= 0) return fail(reaped_error(pid_));
    // The child is not reaped, so its pid (= its group id, as group leader) cannot have been
    // reused: kill(2) is as safe as the pidfd here.
    if (group) return sys::kill_group(pid_, sig);
    if (pidfd_) return sys::pidfd_send_signal(pidfd_.get(), sig);
    return sys::kill_pid(pid_, sig);
}

Result<std::optional<sys::ExitStatus>> PidRef::reap() {
    if (reaped_)
        return fail(Error("process.pidref", "pid " + std::to_string(pid_) + " is reaped", ECHILD));
    auto w = pidfd_ ? sys::wait_pidfd(pidfd_.get()) : sys::wait_pid(pid_);
    if (!w || *w) reaped_ = true;
    return w;
}

Result<bool> PidRef::exited() const {
    if (reaped_) return false;
    return sys::exited_pid(pid_);
}

void PidRef::mark_reaped() noexcept {
    reaped_ = true;
    pidfd_.reset();
}

}  // namespace core::process::detail
