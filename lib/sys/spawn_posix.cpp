// The posix_spawn path of sys::spawn (spawn_paths.hpp): the fallback where clone3 is refused or
// not built. glibc runs the child's set-up (dispositions, mask, session, file actions, chdir).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>

#include "core_config.h"
#include "sys/fault.hpp"
#include "sys/spawn_paths.hpp"

extern char** environ;

namespace core::sys::detail {

namespace {

// Sets sig's bit in s directly. glibc's sigaddset refuses its internal signals 32 and 33
// (SIGCANCEL, SIGSETXID) with EINVAL (corefx PR #33289); the layout is the kernel's: bit sig-1
// of an array of unsigned long (glibc's __sigset_t, sysdeps/unix/sysv/linux/sigsetops.h).
void set_signal_bit(sigset_t& s, int sig) noexcept {
    constexpr unsigned kBits = 8 * sizeof(unsigned long);
    auto* words = reinterpret_cast<unsigned long*>(&s);
    const unsigned bit = static_cast<unsigned>(sig - 1);
    words[bit / kBits] |= 1UL << (bit % kBits);
}

// Every signal that can be caught, glibc's internal 32 and 33 included. A SIG_IGN inherited from
// the host (SIGPIPE!) survives exec otherwise. 32 and 33 must be in the set although the host
// never sees them: glibc's __spawni_child (posix/spawni.c, sysdeps/unix/sysv/linux/spawni.c,
// glibc 2.24 to at least 2.40) walks every signal with all of them blocked and, for one not in
// the SETSIGDEF set, sets an internal signal to SIG_IGN (the others keep SIG_IGN or SIG_DFL),
// so a child that is not glibc (musl, Go, Rust runtimes use 32 and 33) started ignoring them:
// "SigIgn: 0000000180000000" in /proc/<child>/status (issue 18).
const sigset_t& default_signals() {
    static const sigset_t set = [] {
        sigset_t s;
        sigemptyset(&s);
        for (int sig = 1; sig < NSIG; ++sig) {
            if (sig == SIGKILL || sig == SIGSTOP) continue;  // cannot be caught or ignored
            set_signal_bit(s, sig);
        }
        return s;
    }();
    return set;
}

// RAII for the posix_spawn attribute objects, so every early return destroys them.
struct Attrs {
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t fa;
    bool attr_ok = false;
    bool fa_ok = false;
    ~Attrs() {
        if (fa_ok) posix_spawn_file_actions_destroy(&fa);
        if (attr_ok) posix_spawnattr_destroy(&attr);
    }
};

}  // namespace

Result<int> spawn_posix(const SpawnSpec& spec) {
    if (int err = fault::hit("posix_spawn"))
        return fail(E_errno("posix_spawn", spec.path ? spec.path : "", err));
    Attrs a;
    int rc = posix_spawnattr_init(&a.attr);
    if (rc != 0) return fail(E_errno("posix_spawnattr_init", "", rc));
    a.attr_ok = true;
    rc = posix_spawn_file_actions_init(&a.fa);
    if (rc != 0) return fail(E_errno("posix_spawn_file_actions_init", "", rc));
    a.fa_ok = true;

    short flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
    if (spec.new_session) {
        flags |= POSIX_SPAWN_SETSID;
    } else if (spec.new_group) {
        flags |= POSIX_SPAWN_SETPGROUP;
        posix_spawnattr_setpgroup(&a.attr, 0);
    }
    sigset_t empty;
    sigemptyset(&empty);
    posix_spawnattr_setsigmask(&a.attr, &empty);
    posix_spawnattr_setsigdefault(&a.attr, &default_signals());
    posix_spawnattr_setflags(&a.attr, flags);

    // File actions run in order in the child. The dup2 sources are our pipe ends (>= 3, see
    // the caller), so the dup2s come FIRST and closefrom(3) LAST: closing first would close the
    // sources and make the dup2s fail with EBADF. dup2 clears CLOEXEC on 0/1/2; closefrom then
    // drops every other descriptor, including non-CLOEXEC ones the host leaked (close_range in
    // glibc 2.34+, one syscall whatever RLIMIT_NOFILE is).
    const int srcs[3] = {spec.stdin_fd, spec.stdout_fd, spec.stderr_fd};
    if (spec.controlling_tty && spec.ctty_path) {
        // Opened after glibc's setsid (which comes before the file actions), without
        // O_NOCTTY: the pty becomes the new session's controlling terminal.
        rc = posix_spawn_file_actions_addopen(&a.fa, 0, spec.ctty_path, O_RDWR, 0);
        if (rc != 0) return fail(E_errno("posix_spawn_file_actions_addopen", spec.ctty_path, rc));
    }
    for (int target = 0; target < 3; ++target) {
        if (srcs[target] < 0) continue;
        if (spec.controlling_tty && spec.ctty_path) {
            if (target == 0) continue;
            rc = posix_spawn_file_actions_adddup2(&a.fa, 0, target);
        } else {
            rc = posix_spawn_file_actions_adddup2(&a.fa, srcs[target], target);
        }
        if (rc != 0) return fail(E_errno("posix_spawn_file_actions_adddup2", "", rc));
    }
    int max_dst = 2;
    for (int i = 0; i < spec.pass_count; ++i) {
        rc = posix_spawn_file_actions_adddup2(&a.fa, spec.pass_src[i], spec.pass_dst[i]);
        if (rc != 0) return fail(E_errno("posix_spawn_file_actions_adddup2", "", rc));
        if (spec.pass_dst[i] > max_dst) max_dst = spec.pass_dst[i];
    }
    // The gaps below the largest passed descriptor: glibc ignores a close of a descriptor that
    // is not open (spawni.c: errors only for descriptors out of range).
    for (int fd = 3; fd < max_dst; ++fd) {
        bool passed = false;
        for (int i = 0; i < spec.pass_count; ++i) passed = passed || spec.pass_dst[i] == fd;
        if (passed) continue;
        rc = posix_spawn_file_actions_addclose(&a.fa, fd);
        if (rc != 0) return fail(E_errno("posix_spawn_file_actions_addclose", "", rc));
    }
#if CORE_HAVE_ADDCLOSEFROM
    rc = posix_spawn_file_actions_addclosefrom_np(&a.fa, max_dst + 1);
    if (rc != 0) return fail(E_errno("posix_spawn_file_actions_addclosefrom_np", "", rc));
#else
#error "core-process needs glibc >= 2.34 (posix_spawn_file_actions_addclosefrom_np)"
#endif
    if (spec.dir && *spec.dir) {
        rc = posix_spawn_file_actions_addchdir_np(&a.fa, spec.dir);
        if (rc != 0) return fail(E_errno("posix_spawn_file_actions_addchdir_np", spec.dir, rc));
    }

    pid_t pid = -1;
    // posix_spawn returns the error number (it does not set errno) and never EINTR: glibc
    // waits for the exec result on a CLONE_VFORK child, which cannot be interrupted.
    rc = ::posix_spawn(&pid, spec.path, &a.fa, &a.attr, spec.argv, spec.envp ? spec.envp : environ);
    if (rc != 0) return fail(E_errno("posix_spawn", spec.path, rc));
    return static_cast<int>(pid);
}

}  // namespace core::sys::detail
