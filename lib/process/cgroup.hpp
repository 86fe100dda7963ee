// detail::Cgroup: the cgroup v2 of one child. Created (mkdir, controllers, limits) before the
// spawn, which places the child in it at birth (CLONE_INTO_CGROUP on its fd); the whole tree is
// signalled through it (cgroup.procs, cgroup.kill); it is removed (rmdir) once empty, by
// end_tree() or at the latest by the destructor. Member functions only read and write cgroup
// files: thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "core/process/containment.hpp"
#include "core/result.hpp"
#include "sys/fd.hpp"

namespace core::process {
struct ProcessInfo;
}

namespace core::process::detail {

struct ProcessState;

// How long the end of a tree (cgroup.kill, then the wait for cgroup.events to say populated 0)
// may hold up the finish of its process, as the pipe drain does: SIGKILLed tasks leave within
// milliseconds; one stuck in the kernel (D state) is left behind, with its cgroup.
inline constexpr std::chrono::milliseconds cgroup_empty_timeout{250};

// The parent cgroup new cgroups go into: configured (absolute, or relative to the v2 mount),
// else our own v2 cgroup when writable, else the v2 mount's root on a hybrid host. Errors:
// ENOENT without a cgroup2 mount; EACCES when nothing usable is writable (naming what was
// tried); the configured path missing.
Result<std::string> find_cgroup_parent(const std::string& configured);

class Cgroup {
  public:
    // mkdir <parent>/core-process-<pid>-<n>, then the limits. A limit whose controller the
    // parent does not offer (cgroup.controllers) or cannot enable (cgroup.subtree_control) is
    // an Error naming both, and nothing is left behind.
    static Result<std::shared_ptr<Cgroup>> create(const std::string& parent, const Limits& limits);
    ~Cgroup();
    Cgroup(const Cgroup&) = delete;
    Cgroup& operator=(const Cgroup&) = delete;

    int fd() const noexcept { return dir_.get(); }
    const std::string& path() const noexcept { return path_; }
    // "memory.max 64M" (the memory limit, for the OOM message), or empty.
    const std::string& memory_text() const noexcept { return memory_text_; }

    // Sends sig to every member (read cgroup.procs, pidfd_open each, read it again, signal
    // those still listed: a PID that left and was reused in between is not signalled).
    Result<void> signal_members(int sig) const;
    // cgroup.kill: SIGKILL to the whole tree, atomically with forks (5.14+; older kernels:
    // SIGKILL to every member, repeated while any is left, within the bound).
    Result<void> kill() const;
    // Whether any task is in it.
    Result<bool> populated() const;
    // What it counted so far.
    Accounting account() const;
    // Kills what is left, waits (bounded) for it to be empty, takes the final accounting and
    // removes the directory. Idempotent. False when the tree did not empty in time (the
    // directory is then left for the destructor to retry).
    bool end_tree(Accounting& out);

  private:
    Cgroup() = default;
    Result<void> signal_members_locked(int sig) const;
    Result<void> kill_locked() const;
    Result<bool> populated_locked() const;
    Accounting account_locked() const;

    // Guards dir_ and events_, which end_tree closes once the directory is removed (a retained
    // finished process then holds no descriptor).
    mutable std::mutex mu_;
    std::string path_;
    std::string memory_text_;
    sys::UniqueFd dir_;
    sys::UniqueFd events_;
    bool removed_ = false;
};

// Kill-path hook for the reaper: the stop signals (SIGTERM, SIGINT, SIGQUIT), SIGCONT and
// SIGKILL of a process with a cgroup go to the whole tree too (members; cgroup.kill for
// SIGKILL); other signals only to the leader.
void cgroup_signal(const Cgroup& cg, int sig) noexcept;
// Reaper hook at the leader's exit (before it is reaped): Cgroup::end_tree, its accounting into
// st.accounting. Takes st.mu.
void end_cgroup_tree(ProcessState& st);
// In finish(), under st.mu: a leader SIGKILLed while the cgroup counted an OOM kill ended by the
// OOM killer: st.error says so, with the limit ("killed by the OOM killer: memory.max 64M").
void oom_reason_locked(ProcessState& st);
// ProcessInfo's cgroup and accounting (live figures while running). Under st.mu.
void fill_containment_locked(const ProcessState& st, ProcessInfo& info);

}  // namespace core::process::detail
