#include "sys/poll.hpp"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>

#include "sys/fault.hpp"

namespace core::sys {

const std::uint32_t ev_in = EPOLLIN;
const std::uint32_t ev_out = EPOLLOUT;
const std::uint32_t ev_err = EPOLLERR;
const std::uint32_t ev_hup = EPOLLHUP;
const std::uint32_t ev_rdhup = EPOLLRDHUP;
const std::uint32_t ev_et = EPOLLET;

Result<Epoll> Epoll::create() {
    if (int err = fault::hit("epoll_create1")) return fail(E_errno("epoll_create1", "", err));
    const int fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0) return fail(E_errno("epoll_create1", "", errno));
    auto owned = adopt_above_stdio(fd);
    if (!owned) return fail(owned.error());
    Epoll e;
    e.fd_ = std::move(*owned);
    return e;
}

Result<void> Epoll::add(int fd, std::uint32_t events, std::uint64_t data) {
    if (int err = fault::hit("epoll_ctl"))
        return fail(E_errno("epoll_ctl", "add fd " + std::to_string(fd), err));
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = data;
    if (::epoll_ctl(fd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
        return fail(E_errno("epoll_ctl", "add fd " + std::to_string(fd), errno));
    return {};
}

Result<void> Epoll::modify(int fd, std::uint32_t events, std::uint64_t data) {
    if (int err = fault::hit("epoll_ctl"))
        return fail(E_errno("epoll_ctl", "mod fd " + std::to_string(fd), err));
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = data;
    if (::epoll_ctl(fd_.get(), EPOLL_CTL_MOD, fd, &ev) != 0)
        return fail(E_errno("epoll_ctl", "mod fd " + std::to_string(fd), errno));
    return {};
}

Result<void> Epoll::remove(int fd) {
    if (::epoll_ctl(fd_.get(), EPOLL_CTL_DEL, fd, nullptr) != 0)
        return fail(E_errno("epoll_ctl", "del fd " + std::to_string(fd), errno));
    return {};
}

Result<int> Epoll::wait(PollEvent* out, int max, int timeout_ms) {
    if (int err = fault::hit("epoll_wait")) {
        if (err == EINTR) return 0;
        return fail(E_errno("epoll_wait", "", err));
    }
    epoll_event evs[64];
    if (max > 64) max = 64;
    const int n = ::epoll_wait(fd_.get(), evs, max, timeout_ms);
    if (n < 0) {
        // EINTR: no event was consumed; the caller's loop simply waits again.
        if (errno == EINTR) return 0;
        return fail(E_errno("epoll_wait", "", errno));
    }
    for (int i = 0; i < n; ++i) {
        out[i].events = evs[i].events;
        out[i].data = evs[i].data.u64;
    }
    return n;
}

Result<EventFd> EventFd::create() {
    if (int err = fault::hit("eventfd")) return fail(E_errno("eventfd", "", err));
    const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) return fail(E_errno("eventfd", "", errno));
    auto owned = adopt_above_stdio(fd);
    if (!owned) return fail(owned.error());
    EventFd e;
    e.fd_ = std::move(*owned);
    return e;
}

void EventFd::signal() noexcept {
    const std::uint64_t one = 1;
    // EINTR cannot happen on a non-blocking eventfd write; EAGAIN means already readable.
    ssize_t r = ::write(fd_.get(), &one, sizeof one);
    (void)r;
}

void EventFd::drain() noexcept {
    std::uint64_t v;
    ssize_t r = ::read(fd_.get(), &v, sizeof v);
    (void)r;
}

Result<TimerFd> TimerFd::create() {
    if (int err = fault::hit("timerfd_create")) return fail(E_errno("timerfd_create", "", err));
    const int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (fd < 0) return fail(E_errno("timerfd_create", "", errno));
    auto owned = adopt_above_stdio(fd);
    if (!owned) return fail(owned.error());
    TimerFd t;
    t.fd_ = std::move(*owned);
    return t;
}

Result<void> TimerFd::arm_at(std::chrono::steady_clock::time_point t) {
    using namespace std::chrono;
    auto ns = duration_cast<nanoseconds>(t.time_since_epoch()).count();
    if (ns <= 0) ns = 1;  // 0 would disarm: fire as soon as possible instead
    itimerspec its{};
    its.it_value.tv_sec = static_cast<time_t>(ns / 1000000000);
    its.it_value.tv_nsec = static_cast<long>(ns % 1000000000);
    if (::timerfd_settime(fd_.get(), TFD_TIMER_ABSTIME, &its, nullptr) != 0)
        return fail(E_errno("timerfd_settime", "", errno));
    return {};
}

Result<void> TimerFd::disarm() {
    itimerspec its{};
    if (::timerfd_settime(fd_.get(), 0, &its, nullptr) != 0)
        return fail(E_errno("timerfd_settime", "", errno));
    return {};
}

void TimerFd::drain() noexcept {
    std::uint64_t v;
    ssize_t r = ::read(fd_.get(), &v, sizeof v);
    (void)r;
}

namespace {

// One poll() loop for both directions. Without a deadline it is one poll(-1) per wake-up (the
// waiters' hot path: no clock read); with one, the remaining time is recomputed after EINTR.
Result<bool> wait_one(int fd, short events, std::chrono::milliseconds timeout) {
    using Clock = std::chrono::steady_clock;
    const bool no_deadline =
        timeout.count() < 0 || timeout >= std::chrono::duration_cast<std::chrono::milliseconds>(
                                              Clock::time_point::max() - Clock::now());
    const auto deadline = no_deadline ? Clock::time_point::max() : Clock::now() + timeout;
    for (;;) {
        if (int err = fault::hit("poll"))
            return fail(E_errno("poll", "fd " + std::to_string(fd), err));
        int wait_ms = -1;
        if (!no_deadline) {
            // Rounded up, so a wake-up never comes just before the deadline and spins; poll
            // takes an int, so a longer wait is cut to ~24 days and the loop waits again.
            auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
            if (left.count() < 0) left = std::chrono::milliseconds(0);
            constexpr auto kMaxPoll = std::chrono::milliseconds(std::numeric_limits<int>::max());
            wait_ms = static_cast<int>(std::min(left, kMaxPoll).count());
        }
        ::pollfd p{fd, events, 0};
        const int n = ::poll(&p, 1, wait_ms);
        if (n > 0) return true;
        if (n == 0 && Clock::now() >= deadline) return false;
        if (n == 0 || errno == EINTR) continue;  // recompute the remaining time and wait again
        return fail(E_errno("poll", "fd " + std::to_string(fd), errno));
    }
}

}  // namespace

Result<bool> wait_readable(int fd, std::chrono::milliseconds timeout) {
    return wait_one(fd, POLLIN, timeout);
}

Result<bool> wait_writable(int fd, std::chrono::milliseconds timeout) {
    return wait_one(fd, POLLOUT, timeout);
}

Result<unsigned> wait_any_readable(const int* fds, int n) {
    if (n < 1 || n > 4) return fail(E_errno("poll", std::to_string(n) + " descriptors", EINVAL));
    if (int err = fault::hit("poll"))
        return fail(E_errno("poll", "fd " + std::to_string(fds[0]), err));
    ::pollfd p[4];
    for (int i = 0; i < n; ++i) p[i] = ::pollfd{fds[i], POLLIN, 0};
    for (;;) {
        const int r = ::poll(p, static_cast<nfds_t>(n), -1);
        if (r < 0) {
            if (errno == EINTR) continue;
            return fail(E_errno("poll", "fd " + std::to_string(fds[0]), errno));
        }
        unsigned ready = 0;
        for (int i = 0; i < n; ++i)
            if (p[i].revents) ready |= 1u << i;
        if (ready) return ready;
    }
}

Result<WriteWait> wait_writable_or_woken(int fd, int wake_fd) {
    if (int err = fault::hit("poll")) return fail(E_errno("poll", "fd " + std::to_string(fd), err));
    ::pollfd p[2] = {{fd, POLLOUT, 0}, {wake_fd, POLLIN, 0}};
    for (;;) {
        const int n = ::poll(p, 2, -1);
        if (n < 0) {
            if (errno == EINTR) continue;  // nothing happened; the wait is exact to redo
            return fail(E_errno("poll", "fd " + std::to_string(fd), errno));
        }
        if (p[1].revents) return WriteWait::woken;
        if (p[0].revents & (POLLERR | POLLHUP)) return WriteWait::hung_up;
        if (p[0].revents) return WriteWait::writable;
    }
}

}  // namespace core::sys
