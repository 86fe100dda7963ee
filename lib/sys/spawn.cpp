// sys::spawn (spawn.hpp): the choice between the clone3 and posix_spawn paths (spawn_paths.hpp),
// their errors, PATH resolution and environment merging.
#include "sys/spawn.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>

#include "sys/fault.hpp"
#include "sys/ident.hpp"
#include "sys/proc.hpp"
#include "sys/reap.hpp"
#include "sys/spawn_paths.hpp"

extern char** environ;

namespace core::sys {

namespace {

using detail::Step;
#if CORE_SPAWN_CLONE3
using detail::close_range_works;
using detail::spawn_clone3;
#endif
using detail::spawn_posix;

// The method asked for (SpawnMethod as int) and whether clone3 was refused under automatic.
std::atomic<int> g_method{-1};
std::atomic<bool> g_clone3_refused{false};

SpawnMethod requested_method() noexcept {
    int m = g_method.load(std::memory_order_relaxed);
    if (m >= 0) return static_cast<SpawnMethod>(m);
    // Read once. Racing first readers compute the same value.
    SpawnMethod from_env = SpawnMethod::automatic;
    if (const char* v = ::getenv("CORE_PROCESS_SPAWN")) {
        if (std::strcmp(v, "posix_spawn") == 0) from_env = SpawnMethod::posix_spawn;
        if (std::strcmp(v, "clone3") == 0) from_env = SpawnMethod::clone3;
    }
    int expected = -1;
    g_method.compare_exchange_strong(expected, static_cast<int>(from_env));
    return static_cast<SpawnMethod>(g_method.load(std::memory_order_relaxed));
}

}  // namespace

bool clone3_built() noexcept {
    return CORE_SPAWN_CLONE3 != 0;
}

void set_spawn_method(SpawnMethod m) noexcept {
    g_method.store(static_cast<int>(m), std::memory_order_relaxed);
    g_clone3_refused.store(false, std::memory_order_relaxed);
}

SpawnMethod spawn_method() noexcept {
    const SpawnMethod m = requested_method();
    if (m != SpawnMethod::automatic) return m;
#if CORE_SPAWN_CLONE3
    if (!g_clone3_refused.load(std::memory_order_relaxed) && close_range_works())
        return SpawnMethod::clone3;
#endif
    return SpawnMethod::posix_spawn;
}

const char* spawn_unsupported(const SpawnSpec& spec) noexcept {
    if (spec.uid >= 0) return "user";
    if (spec.gid >= 0) return "group";
    if (spec.set_groups) return "groups";
    if (spec.umask >= 0) return "umask";
    if (spec.nrlimits > 0) return "rlimits";
    if (spec.set_nice) return "nice";
    if (spec.no_new_privs) return "noNewPrivs";
    if (spec.parent_death_signal > 0) return "parentDeathSignal";
    if (spec.cgroup_fd >= 0) return "cgroup";
    return nullptr;
}

namespace {
[[maybe_unused]] std::string step_text(const SpawnSpec& s, Step step, int index) {
    switch (step) {
        case Step::rlimit: {
            const auto& r = s.rlimits[index];
            auto num = [](std::uint64_t v) {
                return v == RLIM_INFINITY ? std::string("unlimited") : std::to_string(v);
            };
            return "setrlimit " + ident::rlimit_name(r.resource) + " " + num(r.soft) + ":" +
                   num(r.hard);
        }
        case Step::nice:
            return "setpriority " + std::to_string(s.nice);
        case Step::groups:
            return "setgroups (" + std::to_string(s.ngroups) + " groups)";
        case Step::gid:
            return "setgid " + std::to_string(s.gid);
        case Step::uid:
            return "setuid " + std::to_string(s.uid);
        case Step::no_new_privs:
            return "prctl PR_SET_NO_NEW_PRIVS";
        case Step::pdeathsig:
            return "prctl PR_SET_PDEATHSIG " + std::to_string(s.parent_death_signal);
        case Step::none:
            break;
    }
    return "exec";
}
}  // namespace

Result<Spawned> spawn(const SpawnSpec& spec) {
    // No orphan reaper looks while a child is between birth and its pidfd (sys/reap.hpp).
    reap::SpawnGate gate;
    // "spawn" fails a start whichever way it goes; "clone3" and "posix_spawn" fail one way.
    if (int err = fault::hit("spawn"))
        return fail(E_errno("spawn", spec.path ? spec.path : "", err));
    // Both paths dup2 the sources onto 0, 1 and 2 first: a source below 3 would be clobbered.
    for (int src : {spec.stdin_fd, spec.stdout_fd, spec.stderr_fd})
        if (src >= 0 && src < 3) return fail(E_errno("spawn", "stdio source fd below 3", EINVAL));
    const SpawnMethod want = requested_method();
    const char* clone3_only = spawn_unsupported(spec);
#if CORE_SPAWN_CLONE3
    if (want == SpawnMethod::clone3 ||
        (want == SpawnMethod::automatic && !g_clone3_refused.load(std::memory_order_relaxed) &&
         close_range_works())) {
        Spawned out;
        int exec_err = 0, step = 0, index = 0;
        const long rc = spawn_clone3(spec, out, exec_err, step, index);
        if (rc == 0) {
            if (exec_err != 0 && step != 0)
                return fail(
                    E_errno("child", step_text(spec, static_cast<Step>(step), index), exec_err));
            if (exec_err != 0) return fail(E_errno("clone3", spec.path, exec_err));
            // The kernel numbers the pidfd from 0 up like any descriptor: keep it above stdio
            // (adopt_above_stdio). Without a slot above 2 (EMFILE) the child cannot be watched:
            // end it and reap it here, so the caller owns no child on failure.
            if (auto lifted = lift_above_stdio(out.pidfd); !lifted) {
                ::syscall(SYS_pidfd_send_signal, out.pidfd.get(), SIGKILL, nullptr, 0);
                siginfo_t si{};
                while (::waitid(static_cast<idtype_t>(3) /* P_PIDFD */,
                                static_cast<id_t>(out.pidfd.get()), &si, WEXITED) != 0 &&
                       errno == EINTR) {
                }
                return fail(E_errno("spawn", spec.path, lifted.error().code()));
            }
            return out;
        }
        const int err = static_cast<int>(-rc);
        // With a cgroup or identity option the posix_spawn path is no way out, and clone3's
        // refusal may be about the cgroup (EPERM, EBUSY, EOPNOTSUPP on its fd): say so, and do
        // not switch every later spawn over for it.
        if (clone3_only)
            return fail(
                E_errno("child", spec.cgroup_fd >= 0 ? "clone3 into the cgroup" : "clone3", err));
        // Refused by the kernel or a seccomp profile (container runtimes answer ENOSYS or EPERM
        // for clone3): posix_spawn from now on. Resource errors are the caller's to see.
        const bool refused = err == ENOSYS || err == EPERM || err == EINVAL || err == E2BIG;
        if (want == SpawnMethod::clone3 || !refused) return fail(E_errno("clone3", spec.path, err));
        g_clone3_refused.store(true, std::memory_order_relaxed);
    }
#else
    if (want == SpawnMethod::clone3)
        return fail(E_errno("clone3", "not built in (x86-64 only, not under ASan/TSan)", ENOSYS));
#endif
    if (clone3_only)
        return fail(Error("child",
                          std::string(clone3_only) + ": not supported on the posix_spawn path" +
                              (spec.cgroup_fd >= 0 && std::strcmp(clone3_only, "cgroup") == 0
                                   ? " (no race-free placement: a child moved after it started "
                                     "could fork outside first)"
                                   : ""),
                          ENOTSUP));
    auto pid = spawn_posix(spec);
    if (!pid) return fail(pid.error());
    Spawned out;
    out.pid = *pid;
    // Still under the gate: the child has its pidfd before an orphan reaper may look at it.
    // Without pidfd_open (ENOSYS) the caller polls, and reap_orphans refuses to run.
    if (auto pfd = pidfd_open(out.pid)) out.pidfd = std::move(*pfd);
    return out;
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
