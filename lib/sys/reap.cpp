#include "sys/reap.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "sys/fault.hpp"

namespace core::sys::reap {

namespace {

std::shared_mutex& gate() {
    static std::shared_mutex g;
    return g;
}

}  // namespace

SpawnGate::SpawnGate() {
    gate().lock_shared();
}
SpawnGate::~SpawnGate() {
    gate().unlock_shared();
}

int sig_chld() noexcept {
    return SIGCHLD;
}

Result<void> become_subreaper() {
    if (int err = fault::hit("prctl")) return fail(E_errno("prctl", "PR_SET_CHILD_SUBREAPER", err));
    if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
        return fail(E_errno("prctl", "PR_SET_CHILD_SUBREAPER", errno));
    return {};
}

bool pidfds_work() noexcept {
#ifdef SYS_pidfd_open
    const long fd = ::syscall(SYS_pidfd_open, ::getpid(), 0);
    if (fd < 0) return false;
    ::close(static_cast<int>(fd));
    return true;
#else
    return false;
#endif
}

bool pidfd_held_for(int pid) {
    DIR* dir = ::opendir("/proc/self/fd");
    if (!dir) return true;  // cannot tell: treat it as someone's (never steal)
    const std::string want = std::to_string(pid);
    bool found = false;
    char link[64];
    while (!found) {
        const dirent* e = ::readdir(dir);
        if (!e) break;
        if (e->d_name[0] == '.') continue;
        const ssize_t n = ::readlinkat(::dirfd(dir), e->d_name, link, sizeof link - 1);
        if (n <= 0) continue;
        link[n] = '\0';
        if (std::strcmp(link, "anon_inode:[pidfd]") != 0) continue;
        std::ifstream info(std::string("/proc/self/fdinfo/") + e->d_name);
        for (std::string line; std::getline(info, line);) {
            if (line.rfind("Pid:", 0) != 0) continue;
            const auto v = line.find_first_not_of(" \t", 4);
            found = v != std::string::npos && line.substr(v) == want;
            break;
        }
    }
    ::closedir(dir);
    return found;
}

Result<ReapPass> reap_orphans() {
    ReapPass pass;
    for (int guard = 0; guard < 4096; ++guard) {
        siginfo_t si{};
        if (int err = fault::hit("waitid")) return fail(E_errno("waitid", "P_ALL", err));
        if (::waitid(P_ALL, 0, &si, WEXITED | WNOWAIT | WNOHANG) != 0) {
            if (errno == EINTR) continue;
            if (errno == ECHILD) return pass;
            return fail(E_errno("waitid", "P_ALL, WNOWAIT", errno));
        }
        const pid_t pid = si.si_pid;
        if (pid == 0) return pass;  // children, none exited
        std::unique_lock lk(gate());
        if (pidfd_held_for(pid)) {
            // A managed child's exit: its owner reaps it through its pidfd. waitid(P_ALL)
            // would show it first again, so this pass ends; the caller tries again shortly.
            pass.managed = true;
            return pass;
        }
        siginfo_t got{};
        int rc;
        do {
            rc = ::waitid(P_PID, static_cast<id_t>(pid), &got, WEXITED | WNOHANG);
        } while (rc != 0 && errno == EINTR);
        if (rc == 0 && got.si_pid == pid) ++pass.reaped;
        // ECHILD: its owner had it already. Either way, on to the next one.
    }
    return pass;
}

}  // namespace core::sys::reap
