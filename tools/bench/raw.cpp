#include "raw.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace bench::raw {

namespace {

using core::E;
using core::E_errno;
using core::fail;

// P_PIDFD is in glibc's idtype_t since 2.35; the kernel value is 3.
#ifdef P_PIDFD
constexpr idtype_t kPidfd = P_PIDFD;
#else
constexpr idtype_t kPidfd = static_cast<idtype_t>(3);
#endif

// Closes fds on scope exit (never retried on EINTR: Linux has freed the descriptor already).
struct Fds {
    int fd[4] = {-1, -1, -1, -1};
    ~Fds() {
        for (int f : fd)
            if (f >= 0) ::close(f);
    }
    void close(int i) {
        if (fd[i] >= 0) ::close(fd[i]);
        fd[i] = -1;
    }
};

struct FileActions {
    posix_spawn_file_actions_t fa;
    FileActions() { posix_spawn_file_actions_init(&fa); }
    ~FileActions() { posix_spawn_file_actions_destroy(&fa); }
};

core::Result<void> check_status(const char* op, int status) {
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
    char buf[64];
    if (WIFEXITED(status))
        std::snprintf(buf, sizeof buf, "child exited with code %d", WEXITSTATUS(status));
    else
        std::snprintf(buf, sizeof buf, "child killed by signal %d", WTERMSIG(status));
    return fail(E(op, buf));
}

core::Result<void> wait_exit(const char* op, pid_t pid) {
    int status = 0;
    for (;;) {
        if (::waitpid(pid, &status, 0) == pid) break;
        // EINTR: no handler is installed, but a debugger or profiler may interrupt us.
        if (errno != EINTR) return fail(E_errno(op, "waitpid", errno));
    }
    return check_status(op, status);
}

core::Result<void> waitid_pidfd(const char* op, int pidfd) {
    siginfo_t si{};
    for (;;) {
        if (::waitid(kPidfd, static_cast<id_t>(pidfd), &si, WEXITED) == 0) break;
        if (errno != EINTR) return fail(E_errno(op, "waitid(P_PIDFD)", errno));
    }
    if (si.si_code == CLD_EXITED && si.si_status == 0) return {};
    return fail(E(op, "child did not exit 0 (si_code " + std::to_string(si.si_code) + ")"));
}

int pidfd_open(pid_t pid) {
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

char read_buf[1 << 16];

// Reads fd to EOF; returns the byte count.
core::Result<std::size_t> drain(const char* op, int fd) {
    std::size_t total = 0;
    for (;;) {
        ssize_t r = ::read(fd, read_buf, sizeof read_buf);
        if (r > 0) {
            total += static_cast<std::size_t>(r);
            continue;
        }
        if (r == 0) return total;
        if (errno != EINTR) return fail(E_errno(op, "read", errno));
    }
}

}  // namespace

Argv::Argv(std::vector<std::string> args) : args_(std::move(args)) {
    for (auto& s : args_) ptrs_.push_back(s.data());
    ptrs_.push_back(nullptr);
}

core::Result<void> spawn_wait(const Argv& a) {
    pid_t pid = 0;
    if (int rc = ::posix_spawn(&pid, a.path(), nullptr, nullptr, a.argv(), environ); rc != 0)
        return fail(E_errno("raw.posix_spawn", a.path(), rc));
    return wait_exit("raw.posix_spawn", pid);
}

core::Result<void> vfork_wait(const Argv& a) {
    const char* path = a.path();
    char* const* argv = a.argv();
    pid_t pid = ::vfork();
    if (pid == 0) {
        ::execve(path, argv, environ);
        ::_exit(127);
    }
    if (pid < 0) return fail(E_errno("raw.vfork", path, errno));
    return wait_exit("raw.vfork", pid);
}

core::Result<void> fork_wait(const Argv& a) {
    pid_t pid = ::fork();
    if (pid == 0) {
        ::execve(a.path(), a.argv(), environ);
        ::_exit(127);
    }
    if (pid < 0) return fail(E_errno("raw.fork", a.path(), errno));
    return wait_exit("raw.fork", pid);
}

namespace {

struct CloneArg {
    const char* path;
    char* const* argv;
};

int clone_child(void* p) {
    auto* a = static_cast<CloneArg*>(p);
    ::execve(a->path, a->argv, environ);
    ::_exit(127);
}

// One private stack for the clone child, reused: with CLONE_VFORK the parent is suspended until
// the child has exec'd, so two children never share it. The bench installs no signal handler,
// so nothing can run on it in the child but clone_child (a library would block signals).
void* clone_stack_top() {
    static constexpr std::size_t size = 64 * 1024;
    static void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (base == MAP_FAILED) return nullptr;
    return static_cast<char*>(base) + size;
}

}  // namespace

core::Result<void> clone_pidfd_wait(const Argv& a) {
    void* stack = clone_stack_top();
    if (!stack) return fail(E_errno("raw.clone", "mmap stack", errno));
    CloneArg arg{a.path(), a.argv()};
    int pidfd = -1;
    pid_t pid =
        ::clone(clone_child, stack, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &arg, &pidfd);
    if (pid < 0) return fail(E_errno("raw.clone", a.path(), errno));
    Fds f;
    f.fd[0] = pidfd;
    return waitid_pidfd("raw.clone", pidfd);
}

namespace {
int clone_files_child(void* p) {
    auto* a = static_cast<CloneArg*>(p);
    // CLOSE_RANGE_UNSHARE (linux/close_range.h): a private table of the descriptors below 3.
    if (::syscall(SYS_close_range, 3U, ~0U, 1U << 1) != 0) ::_exit(126);
    ::execve(a->path, a->argv, environ);
    ::_exit(127);
}
}  // namespace

core::Result<void> clone_files_wait(const Argv& a) {
    void* stack = clone_stack_top();
    if (!stack) return fail(E_errno("raw.clone_files", "mmap stack", errno));
    CloneArg arg{a.path(), a.argv()};
    int pidfd = -1;
    pid_t pid = ::clone(clone_files_child, stack,
                        CLONE_VM | CLONE_VFORK | CLONE_FILES | CLONE_PIDFD | SIGCHLD, &arg, &pidfd);
    if (pid < 0) return fail(E_errno("raw.clone_files", a.path(), errno));
    Fds f;
    f.fd[0] = pidfd;
    return waitid_pidfd("raw.clone_files", pidfd);
}

core::Result<std::unique_ptr<OpenFds>> OpenFds::open(std::size_t n) {
    std::unique_ptr<OpenFds> o(new OpenFds());
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0) return fail(E_errno("raw.open_fds", "/dev/null", errno));
    o->fds_.reserve(n);
    int err = 0;
    for (std::size_t i = 0; i < n && err == 0; ++i) {
        const int fd = ::fcntl(null, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
            err = errno;
        else
            o->fds_.push_back(fd);
    }
    ::close(null);
    if (err != 0) return fail(E_errno("raw.open_fds", std::to_string(n) + " descriptors", err));
    return o;
}

OpenFds::~OpenFds() {
    for (int fd : fds_) ::close(fd);
}

core::Result<std::size_t> spawn_read(const Argv& a) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return fail(E_errno("raw.spawn_read", "pipe2", errno));
    Fds f;
    f.fd[0] = p[0];
    f.fd[1] = p[1];
    FileActions fa;
    posix_spawn_file_actions_adddup2(&fa.fa, p[1], 1);
    pid_t pid = 0;
    if (int rc = ::posix_spawn(&pid, a.path(), &fa.fa, nullptr, a.argv(), environ); rc != 0)
        return fail(E_errno("raw.spawn_read", a.path(), rc));
    f.close(1);
    auto n = drain("raw.spawn_read", p[0]);
    auto w = wait_exit("raw.spawn_read", pid);
    if (!n) return n;
    if (!w) return fail(w.error());
    return n;
}

core::Result<std::size_t> spawn_read_hygienic(const Argv& a) {
    const char* op = "raw.spawn_hygienic";
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return fail(E_errno(op, "pipe2", errno));
    Fds f;
    f.fd[0] = p[0];
    f.fd[1] = p[1];
    FileActions fa;
    posix_spawn_file_actions_addopen(&fa.fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa.fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa.fa, p[1], 2);
    // After the dup2s: closefrom(3) would otherwise close the pipe end they copy.
    posix_spawn_file_actions_addclosefrom_np(&fa.fa, 3);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = 0;
    int rc = ::posix_spawn(&pid, a.path(), &fa.fa, &attr, a.argv(), environ);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) return fail(E_errno(op, a.path(), rc));
    f.close(1);
    f.fd[2] = pidfd_open(pid);
    if (f.fd[2] < 0) {
        int err = errno;
        (void)wait_exit(op, pid);
        return fail(E_errno(op, "pidfd_open", err));
    }
    auto n = drain(op, p[0]);
    auto w = waitid_pidfd(op, f.fd[2]);
    if (!n) return n;
    if (!w) return fail(w.error());
    return n;
}

namespace {

// A sleeper (`sleeper stdin`) on two pipes with its pidfd, once it has printed "ready".
struct ReadySleeper {
    Fds f;  // 0: pidfd, 1: its stdin (write end), 2: its stdout (read end)
    pid_t pid = 0;
};

core::Result<void> start_ready_sleeper(const char* op, const Argv& a, ReadySleeper& s) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0) return fail(E_errno(op, "pipe2", errno));
    Fds child_ends;  // closed in the parent once the child has its copies
    child_ends.fd[0] = in[0];
    s.f.fd[1] = in[1];
    if (::pipe2(out, O_CLOEXEC) != 0) return fail(E_errno(op, "pipe2", errno));
    child_ends.fd[1] = out[1];
    s.f.fd[2] = out[0];
    FileActions fa;
    posix_spawn_file_actions_adddup2(&fa.fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa.fa, out[1], 1);
    if (int rc = ::posix_spawn(&s.pid, a.path(), &fa.fa, nullptr, a.argv(), environ); rc != 0)
        return fail(E_errno(op, a.path(), rc));
    child_ends.close(0);
    child_ends.close(1);
    s.f.fd[0] = pidfd_open(s.pid);
    if (s.f.fd[0] < 0) {
        int err = errno;
        s.f.close(1);
        (void)wait_exit(op, s.pid);
        return fail(E_errno(op, "pidfd_open", err));
    }
    char c = 0;
    while (c != '\n') {
        ssize_t r = ::read(s.f.fd[2], &c, 1);
        if (r == 1) continue;
        if (r < 0 && errno == EINTR) continue;
        s.f.close(1);
        (void)waitid_pidfd(op, s.f.fd[0]);
        return fail(E(op, "sleeper did not print ready"));
    }
    return {};
}

}  // namespace

core::Result<double> reap_latency(const Argv& a) {
    const char* op = "raw.reap";
    ReadySleeper s;
    if (auto r = start_ready_sleeper(op, a, s); !r) return fail(r.error());
    auto t0 = std::chrono::steady_clock::now();
    s.f.close(1);
    pollfd pfd{s.f.fd[0], POLLIN, 0};
    while (::poll(&pfd, 1, -1) < 0) {
        if (errno != EINTR) return fail(E_errno(op, "poll", errno));
    }
    auto t1 = std::chrono::steady_clock::now();
    if (auto w = waitid_pidfd(op, s.f.fd[0]); !w) return fail(w.error());
    return std::chrono::duration<double, std::micro>(t1 - t0).count();
}

core::Result<std::unique_ptr<ThreadReaper>> ThreadReaper::create() {
    std::unique_ptr<ThreadReaper> r(new ThreadReaper());
    r->ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (r->ep_ < 0) return fail(E_errno("raw.reaper", "epoll_create1", errno));
    r->stop_ = ::eventfd(0, EFD_CLOEXEC);
    if (r->stop_ < 0) return fail(E_errno("raw.reaper", "eventfd", errno));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = r->stop_;
    if (::epoll_ctl(r->ep_, EPOLL_CTL_ADD, r->stop_, &ev) != 0)
        return fail(E_errno("raw.reaper", "epoll_ctl", errno));
    r->th_ = std::thread([p = r.get()] { p->loop(); });
    return r;
}

ThreadReaper::~ThreadReaper() {
    if (th_.joinable()) {
        std::uint64_t one = 1;
        (void)!::write(stop_, &one, sizeof one);
        th_.join();
    }
    if (stop_ >= 0) ::close(stop_);
    if (ep_ >= 0) ::close(ep_);
}

void ThreadReaper::loop() {
    epoll_event evs[16];
    for (;;) {
        int n = ::epoll_wait(ep_, evs, 16, -1);
        for (int i = 0; i < n; ++i) {
            const int fd = evs[i].data.fd;
            if (fd == stop_) return;
            siginfo_t si{};
            if (::waitid(kPidfd, static_cast<id_t>(fd), &si, WEXITED | WNOHANG) != 0) continue;
            if (si.si_pid == 0) continue;  // not yet reapable
            ::epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
            {
                std::lock_guard lk(mu_);
                ++reaped_;
            }
            cv_.notify_all();
        }
    }
}

core::Result<double> ThreadReaper::reap_latency(const Argv& a) {
    const char* op = "raw.thread_reap";
    ReadySleeper s;
    if (auto r = start_ready_sleeper(op, a, s); !r) return fail(r.error());
    std::uint64_t seen;
    {
        std::lock_guard lk(mu_);
        seen = reaped_;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = s.f.fd[0];
    if (::epoll_ctl(ep_, EPOLL_CTL_ADD, s.f.fd[0], &ev) != 0) {
        int err = errno;
        s.f.close(1);
        (void)waitid_pidfd(op, s.f.fd[0]);
        return fail(E_errno(op, "epoll_ctl", err));
    }
    auto t0 = std::chrono::steady_clock::now();
    s.f.close(1);
    {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return reaped_ > seen; });
    }
    auto t1 = std::chrono::steady_clock::now();
    return std::chrono::duration<double, std::micro>(t1 - t0).count();
}

core::Result<int> spawn_idle(const Argv& a) {
    pid_t pid = 0;
    if (int rc = ::posix_spawn(&pid, a.path(), nullptr, nullptr, a.argv(), environ); rc != 0)
        return fail(E_errno("raw.spawn_idle", a.path(), rc));
    return pid;
}

core::Result<void> kill_reap(int pid) {
    if (::kill(pid, SIGKILL) != 0) return fail(E_errno("raw.kill", std::to_string(pid), errno));
    int status = 0;
    for (;;) {
        if (::waitpid(pid, &status, 0) == pid) return {};
        if (errno != EINTR) return fail(E_errno("raw.kill", "waitpid", errno));
    }
}

core::Result<std::string> capture(const std::vector<std::string>& args) {
    Argv a(args);
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return fail(E_errno("raw.capture", "pipe2", errno));
    Fds f;
    f.fd[0] = p[0];
    f.fd[1] = p[1];
    FileActions fa;
    posix_spawn_file_actions_adddup2(&fa.fa, p[1], 1);
    pid_t pid = 0;
    if (int rc = ::posix_spawnp(&pid, a.path(), &fa.fa, nullptr, a.argv(), environ); rc != 0)
        return fail(E_errno("raw.capture", a.path(), rc));
    f.close(1);
    std::string out;
    for (;;) {
        ssize_t r = ::read(p[0], read_buf, sizeof read_buf);
        if (r > 0) {
            out.append(read_buf, static_cast<std::size_t>(r));
            continue;
        }
        if (r == 0) break;
        if (errno != EINTR) break;
    }
    if (auto w = wait_exit(a.path(), pid); !w) return fail(w.error());
    return out;
}

std::string find_in_path(const std::string& name) {
    const char* path = std::getenv("PATH");
    if (!path) return {};
    std::string all = path;
    std::size_t start = 0;
    while (start <= all.size()) {
        std::size_t end = all.find(':', start);
        if (end == std::string::npos) end = all.size();
        std::string dir = all.substr(start, end - start);
        if (!dir.empty()) {
            std::string full = dir + "/" + name;
            if (::access(full.c_str(), X_OK) == 0) return full;
        }
        start = end + 1;
    }
    return {};
}

std::size_t rss_bytes() {
    std::FILE* f = std::fopen("/proc/self/statm", "re");
    if (!f) return 0;
    unsigned long size = 0, resident = 0;
    int got = std::fscanf(f, "%lu %lu", &size, &resident);
    std::fclose(f);
    return got == 2 ? resident * page_size() : 0;
}

std::size_t heap_bytes() {
    struct mallinfo2 m = ::mallinfo2();
    return m.uordblks + m.hblkhd;
}

std::size_t raise_nofile() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)::setrlimit(RLIMIT_NOFILE, &rl);
        (void)::getrlimit(RLIMIT_NOFILE, &rl);
    }
    return static_cast<std::size_t>(rl.rlim_cur);
}

std::size_t page_size() {
    return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace bench::raw
