// The reaper's event sources: an epoll set, an eventfd for cross-thread wake-ups and a timerfd
// on CLOCK_MONOTONIC. Every descriptor is CLOEXEC and non-blocking from birth. Each object is
// owned by one thread, except EventFd::signal() and Epoll::add/del, which any thread may call.
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

// poll(fd, POLLIN) for up to timeout_ms (-1: forever): true when readable (or hung up), false
// on timeout or EINTR (the caller has a slower way to wait anyway).
Result<bool> wait_readable(int fd, int timeout_ms);

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
