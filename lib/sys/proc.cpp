#include "sys/proc.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "sys/fault.hpp"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace core::sys {

Result<UniqueFd> pidfd_open(int pid) {
    if (int err = fault::hit("pidfd_open"))
        return fail(E_errno("pidfd_open", "pid " + std::to_string(pid), err));
    // glibc 2.36 has a wrapper in <sys/pidfd.h> but Debian's headers lack it; the raw syscall
    // is the same. The descriptor is always O_CLOEXEC.
    const long fd = ::syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0) return fail(E_errno("pidfd_open", "pid " + std::to_string(pid), errno));
    return adopt_above_stdio(static_cast<int>(fd));
}

Result<void> pidfd_send_signal(int pidfd, int sig) {
    if (int err = fault::hit("pidfd_send_signal"))
        return fail(E_errno("pidfd_send_signal", "signal " + std::to_string(sig), err));
    if (::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) != 0)
        return fail(E_errno("pidfd_send_signal", "signal " + std::to_string(sig), errno));
    return {};
}

Result<void> kill_pid(int pid, int sig) {
    if (int err = fault::hit("kill"))
        return fail(E_errno("kill", "pid " + std::to_string(pid), err));
    if (::kill(pid, sig) != 0) return fail(E_errno("kill", "pid " + std::to_string(pid), errno));
    return {};
}

Result<void> kill_group(int pgid, int sig) {
    if (int err = fault::hit("kill"))
        return fail(E_errno("kill", "group " + std::to_string(pgid), err));
    if (pgid <= 1) return fail(E_errno("kill", "group " + std::to_string(pgid), EINVAL));
    if (::kill(-pgid, sig) != 0)
        return fail(E_errno("kill", "group " + std::to_string(pgid), errno));
    return {};
}

namespace {
Result<std::optional<ExitStatus>> do_wait(idtype_t type, id_t id, const char* what, int extra = 0) {
    for (;;) {
        if (int err = fault::hit("waitid")) {
            // An injected EINTR is retried like a real one.
            if (err == EINTR) continue;
            return fail(E_errno("waitid", std::string(what) + " " + std::to_string(id), err));
        }
        siginfo_t si{};
        struct rusage ru {};
        // WNOHANG: never blocks, so EINTR is unlikely; if it happens nothing was reaped and the
        // retry is exact. The raw syscall, because only it takes the fifth argument: the
        // child's own resource use, from the reap itself (glibc's waitid has no rusage).
        if (::syscall(SYS_waitid, type, id, &si, WEXITED | WNOHANG | extra, &ru) != 0) {
            if (errno == EINTR) continue;
            return fail(E_errno("waitid", std::string(what) + " " + std::to_string(id), errno));
        }
        if (si.si_pid == 0) return std::optional<ExitStatus>{};  // not yet: not an error
        ExitStatus st;
        if (si.si_code == CLD_EXITED) {
            st.exited = true;
            st.code = si.si_status;
        } else {
            st.exited = false;
            st.code = -1;
            st.signal = si.si_status;
            st.core_dumped = si.si_code == CLD_DUMPED;
        }
        st.user_cpu_us =
            static_cast<std::int64_t>(ru.ru_utime.tv_sec) * 1000000 + ru.ru_utime.tv_usec;
        st.system_cpu_us =
            static_cast<std::int64_t>(ru.ru_stime.tv_sec) * 1000000 + ru.ru_stime.tv_usec;
        st.max_rss_bytes = static_cast<std::uint64_t>(ru.ru_maxrss) * 1024;  // KiB on Linux
        return std::optional<ExitStatus>{st};
    }
}
}  // namespace

Result<std::optional<ExitStatus>> wait_pidfd(int pidfd) {
    return do_wait(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), "pidfd");
}

Result<std::optional<ExitStatus>> wait_pid(int pid) {
    return do_wait(P_PID, static_cast<id_t>(pid), "pid");
}

Result<bool> exited_pid(int pid) {
    auto w = do_wait(P_PID, static_cast<id_t>(pid), "pid", WNOWAIT);
    if (!w) return fail(w.error());
    return w->has_value();
}

}  // namespace core::sys
