// Event sources and waits, the one vocabulary for every event loop in the library (the reaper,
// the health server, Daemon::run, the signal waiters): an epoll set with its event type and
// bits, an eventfd for cross-thread wake-ups, a timerfd on CLOCK_MONOTONIC, and a poll() for one
// descriptor. Every descriptor is CLOEXEC and non-blocking from birth, and numbered above 2.
// Each object is owned by one thread, except EventFd::signal() and Epoll::add/modify/remove,
// which any thread may call. Fault-seamed as "epoll_create1", "epoll_ctl", "epoll_wait",
// "eventfd", "timerfd_create", "poll".
#pragma once

#include <chrono>
#include <cstdint>

#include "core/result.hpp"
#include "sys/fd.hpp"

namespace core::sys {

// Event bits, as epoll's (EPOLLIN, …), for code that may not include <sys/epoll.h>.
extern const std::uint32_t ev_in;
extern const std::uint32_t ev_out;
extern const std::uint32_t ev_err;
extern const std::uint32_t ev_hup;
extern const std::uint32_t ev_rdhup;  // the peer shut down its writing side (sockets)
extern const std::uint32_t ev_et;     // edge-triggered: the owner drains to EAGAIN each time

// One ready descriptor, as epoll_wait reports it: the bits that fired and the caller's tag.
struct PollEvent {
    std::uint32_t events = 0;
    std::uint64_t data = 0;
};

class Epoll {
  public:
    static Result<Epoll> create();
    Result<void> add(int fd, std::uint32_t events, std::uint64_t data);
    Result<void> modify(int fd, std::uint32_t events, std::uint64_t data);
    Result<void> remove(int fd);
    // Waits up to timeout_ms (-1: forever); returns how many of out[0..max) were filled.
    // EINTR returns 0 (the caller loops anyway).
    Result<int> wait(PollEvent* out, int max, int timeout_ms);
    int fd() const noexcept { return fd_.get(); }

  private:
    UniqueFd fd_;
};

// A wait without a deadline, for wait_readable/wait_writable.
inline constexpr std::chrono::milliseconds forever{-1};
// poll(fd, POLLIN) until readable (or hung up): true when it is, false once timeout has passed.
// A negative timeout (forever) or one too large for the clock waits without a deadline; EINTR is
// waited out with the time that is left.
Result<bool> wait_readable(int fd, std::chrono::milliseconds timeout);
// As wait_readable, for POLLOUT (a non-blocking connect or a full socket buffer).
Result<bool> wait_writable(int fd, std::chrono::milliseconds timeout);

// poll() of fds[0..n) (n at most 4) for POLLIN without a timeout, EINTR waited out: bit i of
// the result is set when fds[i] is readable, hung up or in error.
Result<unsigned> wait_any_readable(const int* fds, int n);

// poll(fd, POLLOUT) together with wake_fd (POLLIN), without a timeout: what happened first. A
// writer blocked on a full pipe uses it so that another thread can wake it (wake_fd's eventfd).
enum class WriteWait { writable, hung_up, woken };
Result<WriteWait> wait_writable_or_woken(int fd, int wake_fd);

class EventFd {
  public:
    static Result<EventFd> create();
    // Wakes the poller. Never fails in practice (the counter saturates only after 2^64-2 adds
    // without a read, and then would_block is ignored: the fd is still readable).
    void signal() noexcept;
    // Resets the counter.
    void drain() noexcept;
    int fd() const noexcept { return fd_.get(); }

  private:
    UniqueFd fd_;
};

class TimerFd {
  public:
    static Result<TimerFd> create();
    // Fires once at the absolute steady_clock time t (CLOCK_MONOTONIC, as steady_clock on Linux).
    Result<void> arm_at(std::chrono::steady_clock::time_point t);
    Result<void> disarm();
    void drain() noexcept;
    int fd() const noexcept { return fd_.get(); }

  private:
    UniqueFd fd_;
};

}  // namespace core::sys
