// The raw baselines: the same work as the library, written straight against the kernel and
// glibc, so that the bench shows the physical limit of this machine next to the library's
// figures. tools/bench is exempt from the layering rule for exactly this file.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/result.hpp"

namespace bench::raw {

// An argv for a child: argv[0] is the path executed. Owns its strings; neither copied nor moved
// (the pointer array points into them).
class Argv {
  public:
    explicit Argv(std::vector<std::string> args);
    Argv(const Argv&) = delete;
    Argv& operator=(const Argv&) = delete;
    const char* path() const noexcept { return args_.front().c_str(); }
    char* const* argv() const noexcept { return ptrs_.data(); }

  private:
    std::vector<std::string> args_;
    std::vector<char*> ptrs_;
};

// posix_spawn + waitpid; Error unless the child exits 0.
core::Result<void> spawn_wait(const Argv& a);
// vfork + execve + waitpid.
core::Result<void> vfork_wait(const Argv& a);
// fork + execve + waitpid.
core::Result<void> fork_wait(const Argv& a);
// clone(CLONE_VM|CLONE_VFORK|CLONE_PIDFD) on a private stack + execve, then waitid(P_PIDFD):
// the pidfd exists from birth (issue 6's stretch path).
core::Result<void> clone_pidfd_wait(const Argv& a);
// clone(CLONE_VM|CLONE_VFORK|CLONE_FILES|CLONE_PIDFD): the child shares our descriptor table
// and its first act is close_range(3, ~0U, CLOSE_RANGE_UNSHARE), which copies only 0-2 into a
// table of its own, then execve; waitid(P_PIDFD). The floor of a spawn whose cost does not grow
// with our open descriptors (issue 16, design (b)).
core::Result<void> clone_files_wait(const Argv& a);
// Opens n descriptors (dups of /dev/null, CLOEXEC) that nothing uses, as a host's sockets would
// sit in its table; closes them when destroyed.
class OpenFds {
  public:
    static core::Result<std::unique_ptr<OpenFds>> open(std::size_t n);
    ~OpenFds();
    OpenFds(const OpenFds&) = delete;
    OpenFds& operator=(const OpenFds&) = delete;

  private:
    OpenFds() = default;
    std::vector<int> fds_;
};
// posix_spawn with stdout on a pipe, read to EOF (64 KiB reads), waitpid. Returns the bytes read.
core::Result<std::size_t> spawn_read(const Argv& a);
// As spawn_read with what a careful library must add: stdin from /dev/null, stdout and stderr
// on the pipe, every other fd closed (closefrom), default signal dispositions and an empty mask,
// a pidfd (pidfd_open) and waitid(P_PIDFD). The floor of what the library can reach.
core::Result<std::size_t> spawn_read_hygienic(const Argv& a);

// Reaping latency of a raw waiter: a (`sleeper stdin`) child is spawned with stdin and stdout on
// pipes and a pidfd; once it printed "ready", t0 is taken and its stdin closed (it exits on
// EOF); poll() on the pidfd returns at t1. Returns t1 - t0 in µs; the child is reaped.
core::Result<double> reap_latency(const Argv& sleeper_stdin);

// The floor of the "one thread waits" design: a minimal reaper thread (epoll over pidfds,
// waitid, a condition variable) and a waiter that is not that thread. Its reaping latency is
// reap_latency's plus one thread hand-off; the library cannot go below it by design.
class ThreadReaper {
  public:
    static core::Result<std::unique_ptr<ThreadReaper>> create();
    ~ThreadReaper();
    ThreadReaper(const ThreadReaper&) = delete;
    ThreadReaper& operator=(const ThreadReaper&) = delete;
    // As reap_latency, with the reaper thread waiting and this thread woken by it.
    core::Result<double> reap_latency(const Argv& sleeper_stdin);

  private:
    ThreadReaper() = default;
    void loop();
    int ep_ = -1;
    int stop_ = -1;  // eventfd
    std::thread th_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::uint64_t reaped_ = 0;
};

// Idle children for the scale and reaping sections (`sleeper pause`), stdio inherited.
core::Result<int> spawn_idle(const Argv& a);
// SIGKILL then waitpid.
core::Result<void> kill_reap(int pid);

// Runs argv[0] looked up in PATH with stdout on a pipe (stderr inherited); returns stdout.
// Error when it does not exit 0.
core::Result<std::string> capture(const std::vector<std::string>& args);
// The full path of an executable found in PATH, or empty.
std::string find_in_path(const std::string& name);

// Resident set size of this process (/proc/self/statm), bytes.
std::size_t rss_bytes();
// Bytes held by malloc, every arena (mallinfo2: in use + mmapped).
std::size_t heap_bytes();
// Raises RLIMIT_NOFILE's soft limit to its hard limit; returns the soft limit now in force.
std::size_t raise_nofile();
std::size_t page_size();

}  // namespace bench::raw
