// Reaping orphans as PID 1 or a child subreaper (issue 15 §3) without ever taking an exit that
// belongs to a managed child.
//
// The rule. A managed child is reaped only by its owner, through its pidfd (waitid P_PIDFD).
// Every child this process starts through lib/sys (spawn()) has a pidfd from the moment spawn()
// returns: clone3 makes it at birth, the posix_spawn path opens it before returning. spawn()
// holds the spawn gate shared for its whole run, so while the gate is held exclusively no
// child is between "born" and "has a pidfd". The orphan reaper therefore:
//   1. peeks at any exited child without reaping it: waitid(P_ALL, WEXITED|WNOWAIT|WNOHANG);
//   2. takes the gate exclusively, and with it held looks for a pidfd in this process that
//      names that pid (/proc/self/fdinfo "Pid:");
//   3. none: the zombie is nobody's, and it reaps exactly that pid (waitid P_PID, WNOHANG)
//      before letting go of the gate; one: it leaves it to its owner.
// The race: a managed child that exits between 1 and 2 has a pidfd during 2 (its owner closes
// the pidfd only after reaping through it), so it is left alone; if the owner reaped it in the
// meantime, step 3's waitid finds nothing (ECHILD) — and no new child can have taken the pid
// meanwhile without holding a pidfd, because spawning needs the gate. A pid that is neither
// a zombie nor ours any more is never waited for.
#pragma once

#include <optional>

#include "core/result.hpp"

namespace core::sys::reap {

// Held shared by spawn() from before the child exists until its pidfd does.
class SpawnGate {
  public:
    SpawnGate();
    ~SpawnGate();
    SpawnGate(const SpawnGate&) = delete;
    SpawnGate& operator=(const SpawnGate&) = delete;
};

// SIGCHLD's number.
int sig_chld() noexcept;

// prctl(PR_SET_CHILD_SUBREAPER, 1): orphans of our descendants come to us, not to init.
Result<void> become_subreaper();

// Whether pidfds work here (pidfd_open on ourselves): without them orphans cannot be told from
// managed children, and reap_orphans refuses to run.
bool pidfds_work() noexcept;

// What one pass did.
struct ReapPass {
    int reaped = 0;        // orphans reaped
    bool managed = false;  // an exited managed child is still waiting for its owner
};
// Reaps every exited child that no pidfd in this process names, by the rule above; returns at
// once (WNOHANG). Errors: waitid's errno other than ECHILD (no children: nothing to do).
Result<ReapPass> reap_orphans();

// True when a pidfd open in this process names pid (its /proc/self/fdinfo "Pid:" line).
bool pidfd_held_for(int pid);

}  // namespace core::sys::reap
