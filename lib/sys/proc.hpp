// Child handles: pidfd_open, pidfd_send_signal, waitid (P_PIDFD and, for kernels without pidfd,
// P_PID) and kill. Only the Service's reaper thread calls the wait functions. Thread-safe.
//
// Gotcha: pidfd_open(pid) right after spawn names our child only while nobody else can reap it.
// The library never reaps anyone else's children and no one else may reap ours: a host that
// calls waitpid(-1) or sets SIGCHLD to SIG_IGN breaks that (the exit status is lost and the
// pidfd_open of an already reaped child fails with ESRCH/EINVAL, systemd PR #36982).
#pragma once

#include <cstdint>
#include <optional>

#include "core/result.hpp"
#include "sys/fd.hpp"

namespace core::sys {

struct ExitStatus {
    bool exited = false;  // true: exit code in code; false: killed by signal
    int code = 0;         // exit code, or -1 when killed by a signal
    int signal = 0;       // the terminating signal, else 0
    bool core_dumped = false;
    // The child's own resource use (rusage of the reap): zero with WNOWAIT.
    std::int64_t user_cpu_us = 0;
    std::int64_t system_cpu_us = 0;
    std::uint64_t max_rss_bytes = 0;
};

// pidfd_open(pid, 0): a CLOEXEC descriptor that becomes readable when the child exits.
// Errors: ENOSYS (kernel < 5.3), ESRCH/EINVAL (already reaped), EMFILE.
Result<UniqueFd> pidfd_open(int pid);
// Sends sig through the pidfd. Errors: ESRCH once the process is gone, EPERM, EINVAL.
Result<void> pidfd_send_signal(int pidfd, int sig);
// kill(pid, sig) / kill(-pgid, sig): only while the child is not yet reaped (its pid, and so its
// group id, cannot be reused before), which the caller guarantees.
Result<void> kill_pid(int pid, int sig);
Result<void> kill_group(int pgid, int sig);

// waitid(P_PIDFD, pidfd, WEXITED | WNOHANG). nullopt: not reapable yet (a pidfd may report
// readiness early under ptrace, tokio #7144), which is not an error.
Result<std::optional<ExitStatus>> wait_pidfd(int pidfd);
// waitid(P_PID, pid, WEXITED | WNOHANG), for the no-pidfd fallback.
Result<std::optional<ExitStatus>> wait_pid(int pid);
// As wait_pid with WNOWAIT: tells whether the child has exited without reaping it (the zombie
// keeps its pid, and so its group id, reserved).
Result<bool> exited_pid(int pid);

}  // namespace core::sys
