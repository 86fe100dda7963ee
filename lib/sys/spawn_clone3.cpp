// The clone3 path of sys::spawn (spawn_paths.hpp): clone3(CLONE_PIDFD | CLONE_VM | CLONE_VFORK)
// on a private stack through a trampoline, the child's set-up in raw syscalls (clone_child,
// identity_steps), and the low slots that let the child share our descriptor table and copy
// only its low end (issue 16). Built on x86-64 without ASan/TSan (CORE_SPAWN_CLONE3).
#include "sys/spawn_paths.hpp"

#if CORE_SPAWN_CLONE3

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
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
#include <mutex>

#include "sys/fault.hpp"

extern char** environ;

namespace core::sys::detail {

namespace {

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
constexpr unsigned kCloseRangeUnshare = 1U << 1;  // CLOSE_RANGE_UNSHARE (linux/close_range.h)
#ifndef CLONE_FILES
#define CLONE_FILES 0x00000400
#endif

// struct clone_args, version 0 (64 bytes, Linux 5.3): Debian 12's glibc headers lack it.
struct CloneArgs {
    std::uint64_t flags;
    std::uint64_t pidfd;
    std::uint64_t child_tid;
    std::uint64_t parent_tid;
    std::uint64_t exit_signal;
    std::uint64_t stack;
    std::uint64_t stack_size;
    std::uint64_t tls;
    // Version 2 (88 bytes, Linux 5.7): passed only when cgroup is used, so that older kernels
    // still take the 64-byte form.
    std::uint64_t set_tid;
    std::uint64_t set_tid_size;
    std::uint64_t cgroup;
};
static_assert(sizeof(CloneArgs) == 88);
constexpr std::size_t kCloneArgsV0 = 64;
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif

// clone3 cannot be called through syscall(): the child comes back on a different stack, inside
// a C function whose frame is not there. This trampoline makes the syscall and, in the child
// (rax == 0, rsp at the top of the private stack), calls fn(arg) and exits with its result; it
// never returns in the child. rdi = args, rsi = size, rdx = fn, rcx = arg: fn and arg move to
// r8/r9, which the syscall preserves (it clobbers rcx and r11). The new stack's top is 16-byte
// aligned, so fn starts with the ABI's alignment after the call.
extern "C" long core_sys_clone3(CloneArgs* args, std::size_t size, int (*fn)(void*), void* arg);
asm(R"(
    .pushsection .text
    .p2align 4
    .globl core_sys_clone3
    .hidden core_sys_clone3
    .type core_sys_clone3, @function
core_sys_clone3:
    .cfi_startproc
    endbr64
    movq %rdx, %r8
    movq %rcx, %r9
    movl $435, %eax
    syscall
    testq %rax, %rax
    jz 1f
    ret
1:
    .cfi_undefined %rip
    xorl %ebp, %ebp
    movq %r9, %rdi
    call *%r8
    movl %eax, %edi
    movl $60, %eax
    syscall
    hlt
    .cfi_endproc
    .size core_sys_clone3, .-core_sys_clone3
    .popsection
)");

// What the child needs, on the parent's (suspended) stack. err: the errno of the step that
// failed, written by the child before it exits 127; 0 when exec succeeded. step (and index, for
// rlimits) says which identity step failed; Step::none: the hygiene steps or exec.
struct ChildCtx {
    const SpawnSpec* spec;
    char* const* envp;
    const sigset_t* mask;  // the child's mask for exec: empty
    volatile int err;
    volatile int step;
    volatile int index;
    long parent_pid;  // for the getppid() re-check after PR_SET_PDEATHSIG
    // Errnos the fault seam chose for each step, decided in the parent (the child must not take
    // the seam's lock: it may be held by a thread of ours that the child does not have).
    int fault[8];
    // With CLONE_FILES (the low-slot path, see LowSlots): the child's first act is
    // close_range(unshare_below, ~0U, CLOSE_RANGE_UNSHARE), which gives it a table of its own
    // holding only the descriptors below unshare_below. 0: the table was copied by clone3.
    unsigned unshare_below = 0;
    // With CLONE_CLEAR_SIGHAND (Linux 5.5) the kernel gave the child SIG_DFL for every signal
    // the parent catches, atomically at clone: no handler of the host can run in it, whatever
    // another thread installs meanwhile. What is left is SIG_IGN, which would survive exec:
    // `ignored` (bit sig-1) lists the signals the parent ignored just before the clone, read
    // from /proc/self/status. Without both, the child reads every disposition itself.
    bool handlers_cleared = false;
    bool ignored_known = false;
    std::uint64_t ignored = 0;
};

// Whether clone3 takes CLONE_CLEAR_SIGHAND: 1 yes, 0 unknown, -1 no (EINVAL once: older kernel).
std::atomic<int> clear_sighand{0};

// The parent's ignored signals, from SigIgn in /proc/self/status (one pread of a descriptor kept
// open; the kernel writes the whole mask, real-time signals included). The descriptor is checked
// to still describe this process (Pid: is getpid(), so a fork of the host or a host that closed
// it and reused the number is seen) and reopened when not. False: unknown.
std::atomic<int> status_fd{-1};

bool parse_sig_ign(const char* buf, long self, std::uint64_t& out) {
    const char* pid = std::strstr(buf, "\nPid:\t");
    if (!pid || std::strtol(pid + 6, nullptr, 10) != self) return false;
    const char* ign = std::strstr(buf, "\nSigIgn:\t");
    if (!ign) return false;
    char* end = nullptr;
    errno = 0;
    out = std::strtoull(ign + 9, &end, 16);
    return errno == 0 && end != ign + 9 && *end == '\n';
}

bool read_ignored(long self, std::uint64_t& out) {
    char buf[4096];
    for (int attempt = 0; attempt < 2; ++attempt) {
        int fd = status_fd.load(std::memory_order_acquire);
        if (fd >= 0) {
            const long n = ::pread(fd, buf, sizeof buf - 1, 0);
            if (n > 0) {
                buf[n] = '\0';
                if (parse_sig_ign(buf, self, out)) return true;
            }
        }
        // Not ours any more (or never opened): open a fresh one. The old number is not closed:
        // if it is not ours now, it belongs to the host.
        const int fresh = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        if (fresh < 0) return false;
        if (!status_fd.compare_exchange_strong(fd, fresh, std::memory_order_acq_rel)) {
            ::close(fresh);  // another thread replaced it first: use theirs
        }
    }
    return false;
}

// One raw syscall: its -errno-free result, or the errno (glibc's syscall() sets errno, which in
// this child is the suspended parent thread's TLS slot: harmless, that thread rewrites it).
int raw_errno(long rc) noexcept {
    return rc < 0 ? (errno ? errno : EINVAL) : 0;
}

// The identity steps of the child, in the order that lets each one still be allowed: limits
// and priority while still privileged (raising a hard limit or lowering nice needs
// CAP_SYS_RESOURCE / CAP_SYS_NICE), then umask, then groups, gid, uid (groups and gid need
// CAP_SETGID, which the uid change drops), then no_new_privs, then the parent-death signal
// (the uid change clears it, so it must come after). Raw syscalls only: glibc's setuid and
// setgroups signal every thread of the process (SIGSETXID), and ours are the parent's.
// 0, or the errno with c.step / c.index naming the step.
int identity_steps(ChildCtx& c) noexcept {
    const SpawnSpec& s = *c.spec;
    auto fail = [&c](Step step, int err, int index = 0) {
        c.step = static_cast<int>(step);
        c.index = index;
        return err;
    };
    for (std::size_t i = 0; i < s.nrlimits; ++i) {
        const std::uint64_t lim[2] = {s.rlimits[i].soft, s.rlimits[i].hard};
        int e = c.fault[static_cast<int>(Step::rlimit)];
        if (e == 0) e = raw_errno(::syscall(SYS_prlimit64, 0, s.rlimits[i].resource, lim, nullptr));
        if (e != 0) return fail(Step::rlimit, e, static_cast<int>(i));
    }
    if (s.set_nice) {
        int e = c.fault[static_cast<int>(Step::nice)];
        if (e == 0) e = raw_errno(::syscall(SYS_setpriority, PRIO_PROCESS, 0, s.nice));
        if (e != 0) return fail(Step::nice, e);
    }
    if (s.umask >= 0) ::syscall(SYS_umask, s.umask & 0777);  // cannot fail
    if (s.set_groups) {
        int e = c.fault[static_cast<int>(Step::groups)];
        if (e == 0) e = raw_errno(::syscall(SYS_setgroups, s.ngroups, s.groups));
        if (e != 0) return fail(Step::groups, e);
    }
    if (s.gid >= 0) {
        int e = c.fault[static_cast<int>(Step::gid)];
        if (e == 0) e = raw_errno(::syscall(SYS_setresgid, s.gid, s.gid, s.gid));
        if (e != 0) return fail(Step::gid, e);
    }
    if (s.uid >= 0) {
        int e = c.fault[static_cast<int>(Step::uid)];
        if (e == 0) e = raw_errno(::syscall(SYS_setresuid, s.uid, s.uid, s.uid));
        if (e != 0) return fail(Step::uid, e);
    }
    if (s.no_new_privs) {
        int e = c.fault[static_cast<int>(Step::no_new_privs)];
        if (e == 0) e = raw_errno(::syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L));
        if (e != 0) return fail(Step::no_new_privs, e);
    }
    if (s.parent_death_signal > 0) {
        int e = c.fault[static_cast<int>(Step::pdeathsig)];
        if (e == 0)
            e = raw_errno(
                ::syscall(SYS_prctl, PR_SET_PDEATHSIG, static_cast<long>(s.parent_death_signal)));
        if (e != 0) return fail(Step::pdeathsig, e);
        // The parent may have died before the prctl (then nothing would ever fire): getppid()
        // no longer names it (bst PR #74). Deliver the signal ourselves, as the kernel would.
        if (::syscall(SYS_getppid) != c.parent_pid)
            ::syscall(SYS_kill, ::syscall(SYS_getpid), s.parent_death_signal);
    }
    return 0;
}

// Runs in the child, on the private stack, sharing our memory and our thread's TLS while the
// calling thread is suspended (CLONE_VFORK). Raw syscalls only: no allocation, no lock, no
// errno of our own until exec. Every signal is blocked on entry (inherited from the parent).
int clone_child(void* p) {
    auto* c = static_cast<ChildCtx*>(p);
    const SpawnSpec& s = *c->spec;
    // First of all, before anything could touch the table we share with the parent's threads:
    // a private table of the descriptors below unshare_below (0-2, the low slots holding our
    // sources, whatever the host keeps that low). The copy costs that many, not the table's size.
    if (c->unshare_below != 0 &&
        ::syscall(SYS_close_range, c->unshare_below, ~0U, kCloseRangeUnshare) != 0)
        goto failed;
    // Dispositions: anything not SIG_DFL becomes SIG_DFL. A handler must not run here (it would
    // run the parent's code on shared memory), and SIG_IGN would survive exec. 32 and 33 are
    // glibc's own (cancellation, setxid): only sent to our threads by tid, never to this child,
    // and exec resets their handlers. With CLONE_CLEAR_SIGHAND the kernel already reset every
    // handler, so only the ignored signals are left (a handful of syscalls, not 60 reads).
    {
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        if (c->handlers_cleared && c->ignored_known) {
            for (int sig = 1; sig < NSIG && sig <= 64; ++sig) {
                if (!(c->ignored & (std::uint64_t{1} << (sig - 1)))) continue;
                if (sig == SIGKILL || sig == SIGSTOP || sig == 32 || sig == 33) continue;
                ::sigaction(sig, &dfl, nullptr);
            }
        } else {
            for (int sig = 1; sig < NSIG; ++sig) {
                if (sig == SIGKILL || sig == SIGSTOP || sig == 32 || sig == 33) continue;
                struct sigaction cur {};
                if (::sigaction(sig, nullptr, &cur) != 0) continue;
                if (!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL) continue;
                ::sigaction(sig, &dfl, nullptr);
            }
        }
    }
    if (s.new_session) {
        if (::setsid() < 0) goto failed;
    } else if (s.new_group) {
        if (::setpgid(0, 0) != 0) goto failed;
    }
    {
        // As in the posix_spawn path: dup2 first (sources are >= 3), then close everything >= 3
        // but the passed descriptors (their sources sit above every target: no clobbering).
        const int srcs[3] = {s.stdin_fd, s.stdout_fd, s.stderr_fd};
        for (int target = 0; target < 3; ++target) {
            if (srcs[target] < 0) continue;
            if (::dup2(srcs[target], target) < 0) goto failed;
        }
        if (s.controlling_tty && ::ioctl(0, TIOCSCTTY, 0) != 0) goto failed;
        unsigned next = 3;  // the lowest descriptor not yet known to be kept or closed
        for (int i = 0; i < s.pass_count; ++i) {
            if (::dup2(s.pass_src[i], s.pass_dst[i]) < 0) goto failed;
        }
        // Close the gaps between the passed targets, in ascending order without sorting
        // (pass_count is small): repeatedly take the smallest target >= next.
        for (;;) {
            unsigned lo = ~0U;
            for (int i = 0; i < s.pass_count; ++i) {
                const auto d = static_cast<unsigned>(s.pass_dst[i]);
                if (d >= next && d < lo) lo = d;
            }
            if (lo == ~0U) break;
            if (lo > next && ::syscall(SYS_close_range, next, lo - 1, 0U) != 0) goto failed;
            next = lo + 1;
        }
        if (::syscall(SYS_close_range, next, ~0U, 0U) != 0) goto failed;
    }
    if (s.dir && *s.dir && ::chdir(s.dir) != 0) goto failed;
    if (int e = identity_steps(*c); e != 0) {
        c->err = e;
        return 127;
    }
    if (::syscall(SYS_rt_sigprocmask, SIG_SETMASK, c->mask, nullptr, _NSIG / 8) != 0) goto failed;
    ::execve(s.path, s.argv, c->envp);
failed:
    c->err = errno ? errno : ECHILD;
    return 127;
}

}  // namespace

// Whether the running kernel lets us use the clone3 path (clone3 itself is probed by the first
// spawn): close_range (5.9) is needed in the child, which cannot fall back by itself.
bool close_range_works() noexcept {
    static const bool ok = ::syscall(SYS_close_range, ~0U, ~0U, 0U) == 0;
    return ok;
}

namespace {

// The child's stack, in the spawning thread's frame (as musl's posix_spawn does): that thread
// is suspended until the child has exec'd or exited, so nothing else touches it, and nothing
// is mapped or unmapped per spawn. The child uses well under 2 KiB.
constexpr std::size_t kChildStack = 16 * 1024;

// ---------------------------------------------------------------- low slots (issue 16)
//
// A CLONE_VM|CLONE_VFORK child copies the parent's whole descriptor table at clone (~90 ns per
// open descriptor) and its close_range drops every reference again: with 10 000 live children
// (one to four descriptors each in our table) or a host holding 10 000 sockets a spawn cost
// 1-3 ms instead of ~100 us. Designs weighed (issue 16, item 1):
//  (a) a spawn helper process forked early with an almost empty table, fed the child's fds over
//      SCM_RIGHTS, cloning with CLONE_PARENT|CLONE_PIDFD and sending the pidfd back. Flat in
//      every host, but the child then inherits the helper's state as of its fork, not ours:
//      credentials after the host drops privileges (children would start as root), cwd, umask,
//      rlimits, setns'd namespaces, cgroup of "inherit" children, capabilities, seccomp, nice;
//      pdeathsig follows the thread that forked the helper; and every spawn adds a round trip
//      between two processes (two wake-ups, likely a migration: what item 2 wants fewer of),
//      with one helper serializing the spawns of every thread.
//  (b) CLONE_FILES (share the table: nothing copied at clone) and, as the child's first act,
//      close_range(first, ~0U, CLOSE_RANGE_UNSHARE), which copies only the descriptors below
//      `first`. The child's sources must already sit below `first`, since the child must not
//      change the shared table (the parent's other threads use it) before it unshares.
//  (c) fewer descriptors per child: helps only the library's share, not the host's sockets.
// Chosen: (b), with the sources placed in slots reserved once, low in the table: kSlotSets
// sets of three descriptors (stdin, stdout, stderr sources) on a private pipe, taken when this file
// is loaded (a static initializer: before main in a program linking us, so the slots are
// among the lowest numbers; dlopen'd late, they sit wherever the table's lowest holes were).
// A spawn takes a free set, dup3()s its sources into it (atomic replacement of a descriptor
// we own: no other thread can be handed that number meanwhile), clones with CLONE_FILES and
// unshare_below = the set's highest slot + 1, and afterwards points the slots back at the
// private pipe (else our copy of the pipe's write end would hold the reader's EOF off). Before
// each dup3 the slot is checked to still be ours (still_ours: a host that closed everything
// after we loaded must not lose the file it reopened at that number).
// What lives below `first`: 0-2, the slots, and whatever the host opened before we loaded
// (typically nothing: the slots are 3..15). Those few are copied and closed by the child's
// close_range(3, ~0U) like today; nothing of another thread's is ever changed. The cost is
// flat in the live children and in the host's descriptors opened after load. Not covered (they
// keep today's copying cost): pass_fds (their sources and targets may be anywhere), the
// posix_spawn path (glibc clones without CLONE_FILES), and a library loaded after the host
// filled its low numbers (the slots then sit above those).
constexpr int kSlotSets = 4;

struct SlotSet {
    int fd[3] = {-1, -1, -1};
    unsigned first = 0;  // the highest slot + 1: unshare_below
    std::mutex busy;
};

struct LowSlots {
    int rest = -1;  // what an idle slot holds: the read end of a pipe of ours (writer closed)
    std::uint64_t rest_ino = 0;  // that pipe's inode: a slot is ours while it shows this one
    std::atomic<bool> ok{false};
    SlotSet sets[kSlotSets];

    LowSlots() {
        // Raw syscalls: this runs from a static initializer (no Result to return; a failure
        // leaves ok false and every spawn takes the copying path).
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) return;
        ::close(p[1]);
        rest = ::fcntl(p[0], F_DUPFD_CLOEXEC, 3);
        ::close(p[0]);
        struct stat st {};
        if (rest < 0 || ::fstat(rest, &st) != 0) return;
        rest_ino = st.st_ino;
        for (auto& set : sets) {
            for (int& slot : set.fd) {
                slot = ::fcntl(rest, F_DUPFD_CLOEXEC, 3);
                if (slot < 0) return;  // ok stays false; the descriptors stay reserved
                if (static_cast<unsigned>(slot) + 1 > set.first)
                    set.first = static_cast<unsigned>(slot) + 1;
            }
        }
        ok.store(true, std::memory_order_release);
    }

    // Whether fd still is one of our slots. A host that closed every descriptor after we
    // loaded (a daemonizing routine) may have reopened files at those numbers: a dup3 there
    // would silently replace the host's file. A pipe's inode is unique to it, and nobody but
    // us holds this pipe, so the inode is proof; on a mismatch the slots are given up for good.
    bool still_ours(int fd) {
        struct stat st {};
        if (::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode) && st.st_ino == rest_ino) return true;
        ok.store(false, std::memory_order_relaxed);
        return false;
    }
};

LowSlots& low_slots() {
    static LowSlots slots;
    return slots;
}
// Taken at load time (see above), not at the first spawn: low numbers are likelier then, and
// a test's leak guard does not see the reservation as a leak of that test.
[[maybe_unused]] const bool g_low_slots_taken = low_slots().ok.load();
// The /proc/self/status descriptor too (read_ignored), above the slots, so no child copies it.
[[maybe_unused]] const bool g_status_open = [] {
    const int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) status_fd.store(fd);
    return fd >= 0;
}();

// A set held for one spawn; its slots point at /dev/null again when released.
class SlotLease {
  public:
    SlotLease() {
        LowSlots& ls = low_slots();
        if (!ls.ok.load(std::memory_order_acquire)) return;
        for (auto& s : ls.sets) {
            if (s.busy.try_lock()) {
                set_ = &s;
                return;
            }
        }
        // Every set in use (more threads spawning than sets): wait for one, picked by thread,
        // rather than pay the copy. A set is held only from before clone to the child's exec.
        static std::atomic<unsigned> next{0};
        SlotSet& s = ls.sets[next.fetch_add(1, std::memory_order_relaxed) % kSlotSets];
        s.busy.lock();
        set_ = &s;
    }
    ~SlotLease() {
        if (!set_) return;
        for (int k = 0; k < 3; ++k)
            if (used_[k]) ::dup3(low_slots().rest, set_->fd[k], O_CLOEXEC);
        set_->busy.unlock();
    }
    SlotLease(const SlotLease&) = delete;
    SlotLease& operator=(const SlotLease&) = delete;

    // Places the three sources (or -1) in the slots and rewrites them in spec. False when a dup3
    // failed (spec untouched for that source; the caller takes the copying path).
    bool place(SpawnSpec& spec) {
        if (!set_) return false;
        int* srcs[3] = {&spec.stdin_fd, &spec.stdout_fd, &spec.stderr_fd};
        for (int k = 0; k < 3; ++k) {
            if (*srcs[k] < 0) continue;
            // The same source twice (merge: stderr is stdout's pipe) needs one slot.
            int prior = -1;
            for (int j = 0; j < k; ++j)
                if (used_[j] && orig_[j] == *srcs[k]) prior = set_->fd[j];
            if (prior >= 0) {
                orig_[k] = *srcs[k];
                *srcs[k] = prior;
                continue;
            }
            if (!low_slots().still_ours(set_->fd[k])) return false;
            if (::dup3(*srcs[k], set_->fd[k], O_CLOEXEC) < 0) return false;
            used_[k] = true;
            orig_[k] = *srcs[k];
            *srcs[k] = set_->fd[k];
        }
        return true;
    }
    unsigned first() const { return set_ ? set_->first : 0; }

  private:
    SlotSet* set_ = nullptr;
    bool used_[3] = {false, false, false};
    int orig_[3] = {-1, -1, -1};
};

}  // namespace

// clone3 or the errno it was refused with (-errno), in which case no child exists.
long spawn_clone3(const SpawnSpec& spec, Spawned& out, int& exec_err, int& step, int& index) {
    alignas(64) unsigned char stack[kChildStack];
    sigset_t empty;
    sigemptyset(&empty);
    // The low-slot path (see LowSlots) unless pass_fds are given: a copy of spec whose sources
    // are the slots, a table shared at clone and unshared below the slots by the child.
    SpawnSpec placed = spec;
    SlotLease lease;
    const bool shared_table = spec.pass_count == 0 && lease.place(placed);
    const SpawnSpec& use = shared_table ? placed : spec;
    ChildCtx ctx{&use, spec.envp ? spec.envp : environ, &empty, 0, 0, 0, ::getpid(), {}};
    if (shared_table) ctx.unshare_below = lease.first();
    // The fault seam, consulted here for each step the spec asks for.
    if (spec.nrlimits) ctx.fault[static_cast<int>(Step::rlimit)] = fault::hit("setrlimit");
    if (spec.set_nice) ctx.fault[static_cast<int>(Step::nice)] = fault::hit("setpriority");
    if (spec.set_groups) ctx.fault[static_cast<int>(Step::groups)] = fault::hit("setgroups");
    if (spec.gid >= 0) ctx.fault[static_cast<int>(Step::gid)] = fault::hit("setgid");
    if (spec.uid >= 0) ctx.fault[static_cast<int>(Step::uid)] = fault::hit("setuid");
    if (spec.no_new_privs) ctx.fault[static_cast<int>(Step::no_new_privs)] = fault::hit("prctl");
    if (spec.parent_death_signal > 0)
        ctx.fault[static_cast<int>(Step::pdeathsig)] = fault::hit("prctl");
    int pidfd = -1;
    CloneArgs args{};
    args.flags = CLONE_PIDFD | CLONE_VM | CLONE_VFORK | (shared_table ? CLONE_FILES : 0);
    args.pidfd = reinterpret_cast<std::uintptr_t>(&pidfd);
    args.exit_signal = SIGCHLD;
    args.stack = reinterpret_cast<std::uintptr_t>(stack);
    args.stack_size = sizeof stack;
    std::size_t args_size = kCloneArgsV0;
    if (spec.cgroup_fd >= 0) {
        // Born in the cgroup: no window in which the child (or a fork of it) lives outside.
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = static_cast<std::uint64_t>(spec.cgroup_fd);
        args_size = sizeof args;
    }

    // Every signal blocked, glibc's internal ones too (the raw syscall; sigfillset leaves them
    // out), so that no handler runs in the child before it has reset them.
    sigset_t all, old;
    std::memset(&all, 0xff, sizeof all);
    ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, _NSIG / 8);
    long rc;
    if (int err = fault::hit("clone3")) {
        rc = -err;
    } else {
        if (clear_sighand.load(std::memory_order_relaxed) >= 0) {
            args.flags |= CLONE_CLEAR_SIGHAND;
            ctx.handlers_cleared = true;
            // Read with every signal blocked in this thread, as close to the clone as it gets.
            ctx.ignored_known = read_ignored(ctx.parent_pid, ctx.ignored);
        }
        rc = core_sys_clone3(&args, args_size, clone_child, &ctx);
        if (rc == -EINVAL && ctx.handlers_cleared) {
            // A kernel before 5.5? Without the flag; if that works, the child reads every
            // disposition itself from now on.
            args.flags &= ~static_cast<std::uint64_t>(CLONE_CLEAR_SIGHAND);
            ctx.handlers_cleared = false;
            rc = core_sys_clone3(&args, args_size, clone_child, &ctx);
            if (rc != -EINVAL) clear_sighand.store(-1, std::memory_order_relaxed);
        }
    }
    ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, nullptr, _NSIG / 8);
    if (rc < 0) return rc;  // raw syscall: -errno

    out.pid = static_cast<int>(rc);
    out.pidfd = UniqueFd::adopt(pidfd);
    exec_err = ctx.err;
    step = ctx.step;
    index = ctx.index;
    if (exec_err != 0) {
        // The child exits 127 without exec: reap it here, as posix_spawn does, so the caller
        // owns no child on failure. It has already run _exit (CLONE_VFORK), so this is short.
        siginfo_t si{};
        while (::waitid(static_cast<idtype_t>(3) /* P_PIDFD */, static_cast<id_t>(pidfd), &si,
                        WEXITED) != 0 &&
               errno == EINTR) {
        }
        out.pidfd.reset();
        out.pid = -1;
    }
    return 0;
}

}  // namespace core::sys::detail

#endif  // CORE_SPAWN_CLONE3
