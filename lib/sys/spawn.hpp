// Starting a child: the child sees exactly fds 0, 1, 2, default signal dispositions and an empty
// signal mask, and runs nothing of ours but those set-up syscalls before exec. Two ways:
//  - clone3(CLONE_PIDFD | CLONE_VM | CLONE_VFORK) on a private stack (x86-64, not under ASan or
//    TSan): the pidfd exists from birth, so no pidfd_open race, and nothing is mapped or
//    unmapped per spawn (glibc's posix_spawn maps a stack each time, whose munmap costs a TLB
//    shoot-down on every CPU running one of our threads);
//  - posix_spawn, where clone3 is refused (ENOSYS under old kernels or seccomp profiles, EPERM)
//    or not built.
// Also PATH resolution and environment merging. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "sys/fd.hpp"

namespace core::sys {

// One resource limit for the child: resource is an RLIMIT_* number; values as rlim_t
// (RLIM_INFINITY: unlimited).
struct SpawnRlimit {
    int resource = 0;
    std::uint64_t soft = 0;
    std::uint64_t hard = 0;
};

struct SpawnSpec {
    const char* path = nullptr;   // the executable, already resolved (see find_executable)
    char* const* argv = nullptr;  // null-terminated; argv[0] is the command as given
    char* const* envp = nullptr;  // null-terminated; null: the parent's environ
    const char* dir = nullptr;    // chdir in the child (after the dup2s); null: inherit
    int stdin_fd = -1;            // dup2'd onto 0; -1: inherit ours
    int stdout_fd = -1;           // dup2'd onto 1; -1: inherit ours
    int stderr_fd = -1;           // dup2'd onto 2; -1: inherit ours
    bool new_group = false;       // setpgid(0, 0): the child leads a new process group
    bool new_session = false;     // setsid(): new session (and group)
    // Extra descriptors (Python's pass_fds): pass_dst[i] in the child <- pass_src[i]. Every
    // dst is >= 3 and distinct, every src is above the largest dst (the caller dup's them up),
    // so no dup2 can clobber another's source. Everything else >= 3 is still closed.
    const int* pass_src = nullptr;
    const int* pass_dst = nullptr;
    int pass_count = 0;
    // With new_session: stdin (a pty slave) becomes the controlling terminal (TIOCSCTTY; on the
    // posix_spawn path the slave at ctty_path is opened after setsid instead).
    bool controlling_tty = false;
    const char* ctty_path = nullptr;

    // --- containment and identity (clone3 path only: on the posix_spawn path each one set is
    // an Error naming it, ENOTSUP; see spawn_unsupported) ---
    int cgroup_fd = -1;  // CLONE_INTO_CGROUP: born in this cgroup (an O_DIRECTORY fd; 5.7+)
    // Credentials, changed in this order: groups, gid, uid (setgroups, setresgid, setresuid:
    // raw syscalls, only in the child, not glibc's all-threads broadcast).
    bool set_groups = false;
    const std::uint32_t* groups = nullptr;  // supplementary groups (ngroups of them; 0: none)
    std::size_t ngroups = 0;
    long gid = -1;                         // real, effective and saved gid; -1: unchanged
    long uid = -1;                         // real, effective and saved uid; -1: unchanged
    int umask = -1;                        // the child's umask; -1: inherited
    const SpawnRlimit* rlimits = nullptr;  // prlimit64 on the child itself, in order
    std::size_t nrlimits = 0;
    bool set_nice = false;  // setpriority(PRIO_PROCESS, 0, nice)
    int nice = 0;
    bool no_new_privs = false;    // prctl(PR_SET_NO_NEW_PRIVS, 1)
    int parent_death_signal = 0;  // prctl(PR_SET_PDEATHSIG) after the uid change; 0: none
};

struct Spawned {
    int pid = -1;
    // Its pidfd (CLOEXEC): from birth with clone3, from pidfd_open before spawn() returns on
    // the posix_spawn path (invalid only where pidfd_open fails: ENOSYS, EMFILE).
    UniqueFd pidfd;
};

// Starts the child with the hygiene above. The exec's errno (ENOENT, EACCES, ENOEXEC: no
// /bin/sh retry) comes back as the Error's code, the failed child already reaped. Errors: EAGAIN,
// ENOMEM, EMFILE from the kernel; the exec's errno; a failed identity step names the step and
// its argument (`setuid 65534: Operation not permitted`, the step's errno as the code, no
// child left); an identity or cgroup option on the posix_spawn path (ENOTSUP, naming it).
Result<Spawned> spawn(const SpawnSpec& spec);

// The first containment or identity option spec sets that the posix_spawn path cannot apply
// ("user", "group", "groups", "umask", "rlimits", "nice", "noNewPrivs", "parentDeathSignal",
// "cgroup"), or null when it sets none. glibc's posix_spawn has no step for them, and running
// them in the parent around the spawn would change the whole process; placing the child in a
// cgroup after it started leaves a window in which a fork escapes.
const char* spawn_unsupported(const SpawnSpec& spec) noexcept;

// How spawn starts children, process-wide. automatic: clone3 where built and allowed, else
// posix_spawn (the first refusal switches for good); clone3: clone3 only, its refusal is the
// Error; posix_spawn: posix_spawn only. The initial value comes from the environment variable
// CORE_PROCESS_SPAWN (automatic | clone3 | posix_spawn), read once; unset: automatic.
enum class SpawnMethod { automatic, clone3, posix_spawn };
void set_spawn_method(SpawnMethod m) noexcept;
// What the next spawn uses: clone3 or posix_spawn (automatic resolved).
SpawnMethod spawn_method() noexcept;
// Whether this build has the clone3 path (x86-64, not under ASan/TSan).
bool clone3_built() noexcept;

// Resolves command as execvp would, but against path_var (the PATH of the child's environment
// when it sets one, else ours) and, for a relative command containing '/', against dir. A
// command containing '/' is not searched. Errors: ENOENT (not found anywhere), EACCES (found but
// not executable), naming the command.
Result<std::string> find_executable(const std::string& command, std::string_view path_var,
                                    const std::string& dir);

// The parent's environment: the value of name, or null.
const char* parent_getenv(const char* name) noexcept;
// The parent's environ (for envp when no variable is overridden).
char* const* parent_environ() noexcept;
// The parent's environment with overrides ("K=V") applied, last wins, order kept.
std::vector<std::string> merge_env(const std::vector<std::string>& overrides);

}  // namespace core::sys
