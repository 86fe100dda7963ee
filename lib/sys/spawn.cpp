#include "sys/spawn.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <unordered_map>

#include "core_config.h"
#include "sys/fault.hpp"

extern char** environ;

namespace core::sys {

namespace {

// Every signal but glibc's internal 32 and 33 (SIGCANCEL, SIGSETXID: sigaddset refuses them,
// corefx PR #33289). A SIG_IGN inherited from the host (SIGPIPE!) survives exec otherwise.
const sigset_t& default_signals() {
    static const sigset_t set = [] {
        sigset_t s;
        sigemptyset(&s);
        for (int sig = 1; sig < NSIG; ++sig) {
            if (sig == 32 || sig == 33) continue;
            if (sig == SIGKILL || sig == SIGSTOP) continue;  // cannot be caught or ignored
            sigaddset(&s, sig);
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

Result<int> spawn(const SpawnSpec& spec) {
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
    for (int target = 0; target < 3; ++target) {
        if (srcs[target] < 0) continue;
        if (srcs[target] < 3)
            return fail(E_errno("posix_spawn", "stdio source fd below 3", EINVAL));
        rc = posix_spawn_file_actions_adddup2(&a.fa, srcs[target], target);
        if (rc != 0) return fail(E_errno("posix_spawn_file_actions_adddup2", "", rc));
    }
#if CORE_HAVE_ADDCLOSEFROM
    rc = posix_spawn_file_actions_addclosefrom_np(&a.fa, 3);
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

namespace {
// 0 when path is an executable regular file, else the errno that exec would report.
int executable(const std::string& path) {
    if (::access(path.c_str(), X_OK) != 0) return errno;  // one syscall for each miss
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return errno;
    if (!S_ISREG(st.st_mode)) return EACCES;
    return 0;
}
}  // namespace

Result<std::string> find_executable(const std::string& command, std::string_view path_var,
                                    const std::string& dir) {
    if (command.empty()) return fail(E_errno("exec", "\"\"", ENOENT));
    // A command containing '/' is not searched and not checked here: exec reports ENOENT or
    // EACCES for it exactly (the dir was checked before), and the hot path saves two syscalls.
    // exec runs after the chdir in the child, so a relative path is relative to dir.
    if (command.find('/') != std::string::npos) return command;
    int first_err = 0;
    std::size_t start = 0;
    for (;;) {
        const std::size_t end = path_var.find(':', start);
        std::string_view elem = path_var.substr(
            start, end == std::string_view::npos ? std::string_view::npos : end - start);
        // An empty element means the current directory (POSIX). A relative element is
        // relative to the child's working directory (exec runs after its chdir): check it
        // there, but return it as the child will resolve it.
        std::string cand = (elem.empty() ? std::string(".") : std::string(elem)) + "/" + command;
        const bool relative = cand[0] != '/';
        const int err = executable(relative && !dir.empty() ? dir + "/" + cand : cand);
        if (err == 0) return cand;
        // execvp reports EACCES if some candidate existed but was not executable.
        if (err == EACCES && first_err == 0) first_err = EACCES;
        if (end == std::string_view::npos) break;
        start = end + 1;
    }
    return fail(E_errno("exec", "\"" + command + "\"", first_err ? first_err : ENOENT));
}

const char* parent_getenv(const char* name) noexcept {
    return ::getenv(name);
}

char* const* parent_environ() noexcept {
    return environ;
}

std::vector<std::string> merge_env(const std::vector<std::string>& overrides) {
    std::vector<std::string> out;
    std::unordered_map<std::string, std::size_t> index;
    for (char** e = environ; e && *e; ++e) {
        std::string_view sv = *e;
        index.emplace(std::string(sv.substr(0, sv.find('='))), out.size());
        out.emplace_back(sv);
    }
    for (const auto& kv : overrides) {
        auto [it, added] = index.emplace(kv.substr(0, kv.find('=')), out.size());
        if (added) {
            out.push_back(kv);
        } else {
            out[it->second] = kv;
        }
    }
    return out;
}

}  // namespace core::sys
