#include "sys/net.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "core/deadline.hpp"
#include "sys/fault.hpp"
#include "sys/signals.hpp"

namespace core::sys::net {

const std::uint32_t ev_in = EPOLLIN;
const std::uint32_t ev_out = EPOLLOUT;
const std::uint32_t ev_err = EPOLLERR;
const std::uint32_t ev_hup = EPOLLHUP;
const std::uint32_t ev_rdhup = EPOLLRDHUP;
const std::uint32_t ev_et = EPOLLET;

bool parse_ipv4(const std::string& host, std::uint32_t* addr_be) {
    in_addr a{};
    if (::inet_pton(AF_INET, host.c_str(), &a) != 1) return false;
    *addr_be = a.s_addr;
    return true;
}

std::string to_string(const Endpoint& ep) {
    char buf[INET_ADDRSTRLEN] = {};
    in_addr a{};
    a.s_addr = ep.addr_be;
    ::inet_ntop(AF_INET, &a, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ep.port);
}

namespace {
sockaddr_in to_sockaddr(const Endpoint& ep) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = ep.addr_be;
    sa.sin_port = htons(ep.port);
    return sa;
}
}  // namespace

Result<UniqueFd> tcp_listen(const Endpoint& ep, int backlog) {
    const std::string where = to_string(ep);
    if (int err = fault::hit("socket")) return fail(E_errno("socket", where, err));
    const int raw = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (raw < 0) return fail(E_errno("socket", where, errno));
    auto owned = adopt_above_stdio(raw);
    if (!owned) return fail(owned.error());
    UniqueFd fd = std::move(*owned);
    int one = 1;
    // SO_REUSEADDR: a restarted daemon can bind its port while old connections sit in TIME_WAIT.
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
        return fail(E_errno("setsockopt", where, errno));
    sockaddr_in sa = to_sockaddr(ep);
    if (int err = fault::hit("bind")) return fail(E_errno("bind", where, err));
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
        return fail(E_errno("bind", where, errno));
    if (int err = fault::hit("listen")) return fail(E_errno("listen", where, err));
    if (::listen(fd.get(), backlog) != 0) return fail(E_errno("listen", where, errno));
    return fd;
}

Result<std::uint16_t> local_port(int fd) {
    sockaddr_in sa{};
    socklen_t len = sizeof sa;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
        return fail(E_errno("getsockname", "", errno));
    return ntohs(sa.sin_port);
}

Result<UniqueFd> accept(int listen_fd) {
    if (int err = fault::hit("accept4")) return fail(E_errno("accept4", "", err));
    for (;;) {
        int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) return adopt_above_stdio(fd);
        if (errno == EINTR) continue;
        // Nothing pending, or the client gave up between the event and our accept: not errors.
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED) return UniqueFd{};
        return fail(E_errno("accept4", "", errno));
    }
}

Result<UniqueFd> tcp_connect_start(const Endpoint& ep, bool* in_progress) {
    const std::string where = to_string(ep);
    *in_progress = false;
    if (int err = fault::hit("socket")) return fail(E_errno("socket", where, err));
    const int raw = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (raw < 0) return fail(E_errno("socket", where, errno));
    auto owned = adopt_above_stdio(raw);
    if (!owned) return fail(owned.error());
    UniqueFd fd = std::move(*owned);
    sockaddr_in sa = to_sockaddr(ep);
    if (int err = fault::hit("connect")) return fail(E_errno("connect", where, err));
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) return fd;
    // EINTR on a non-blocking connect: the attempt continues in the background like
    // EINPROGRESS (POSIX); wait for writability either way.
    if (errno == EINPROGRESS || errno == EINTR) {
        *in_progress = true;
        return fd;
    }
    return fail(E_errno("connect", where, errno));
}

Result<void> connect_result(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        return fail(E_errno("getsockopt", "SO_ERROR", errno));
    if (err != 0) return fail(E_errno("connect", "", err));
    return {};
}

Result<Io> recv_some(int fd, char* buf, std::size_t len) {
    if (int err = fault::hit("recv")) return fail(E_errno("recv", "", err));
    for (;;) {
        ssize_t n = ::recv(fd, buf, len, 0);
        if (n > 0) return Io{static_cast<std::size_t>(n), false, false};
        if (n == 0) return Io{0, false, true};
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return Io{0, true, false};
        return fail(E_errno("recv", "", errno));
    }
}

Result<Io> send_some(int fd, std::string_view data) {
    if (int err = fault::hit("send")) return fail(E_errno("send", "", err));
    for (;;) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n >= 0) return Io{static_cast<std::size_t>(n), false, false};
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return Io{0, true, false};
        return fail(E_errno("send", "", errno));
    }
}

void shutdown_write(int fd) noexcept {
    ::shutdown(fd, SHUT_WR);
}

Result<bool> wait_fd(int fd, bool want_write, std::chrono::milliseconds timeout) {
    using Clock = std::chrono::steady_clock;
    const auto deadline = saturating_add(Clock::now(), timeout);  // huge: never, not the past
    for (;;) {
        if (int err = fault::hit("poll")) return fail(E_errno("poll", "", err));
        // Rounded up, so a wake-up never comes just before the deadline and spins.
        auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() < 0) left = std::chrono::milliseconds(0);
        // poll takes an int: a longer wait is cut to ~24 days and the loop waits again.
        constexpr auto kMaxPoll = std::chrono::milliseconds(std::numeric_limits<int>::max());
        if (left > kMaxPoll) left = kMaxPoll;
        pollfd p{fd, static_cast<short>(want_write ? POLLOUT : POLLIN), 0};
        int rc = ::poll(&p, 1, static_cast<int>(left.count()));
        if (rc > 0) return true;
        if (rc == 0 && Clock::now() >= deadline) return false;
        if (rc == 0 || errno == EINTR) continue;  // recompute the remaining time and wait again
        return fail(E_errno("poll", "", errno));
    }
}

Result<UniqueFd> epoll_create() {
    if (int err = fault::hit("epoll_create1")) return fail(E_errno("epoll_create1", "", err));
    int fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0) return fail(E_errno("epoll_create1", "", errno));
    return adopt_above_stdio(fd);
}

Result<void> epoll_add(int ep, int fd, std::uint32_t events, std::uint64_t data) {
    if (int err = fault::hit("epoll_ctl")) return fail(E_errno("epoll_ctl", "ADD", err));
    epoll_event e{};
    e.events = events;
    e.data.u64 = data;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) != 0)
        return fail(E_errno("epoll_ctl", "ADD", errno));
    return {};
}

Result<void> epoll_mod(int ep, int fd, std::uint32_t events, std::uint64_t data) {
    if (int err = fault::hit("epoll_ctl")) return fail(E_errno("epoll_ctl", "MOD", err));
    epoll_event e{};
    e.events = events;
    e.data.u64 = data;
    if (::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e) != 0)
        return fail(E_errno("epoll_ctl", "MOD", errno));
    return {};
}

Result<void> epoll_del(int ep, int fd) {
    if (::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr) != 0)
        return fail(E_errno("epoll_ctl", "DEL", errno));
    return {};
}

Result<int> epoll_wait(int ep, Event* out, int max, int timeout_ms) {
    if (int err = fault::hit("epoll_wait")) return fail(E_errno("epoll_wait", "", err));
    epoll_event evs[64];
    if (max > 64) max = 64;
    int n = ::epoll_wait(ep, evs, max, timeout_ms);
    if (n < 0) {
        if (errno == EINTR) return 0;
        return fail(E_errno("epoll_wait", "", errno));
    }
    for (int i = 0; i < n; ++i) out[i] = Event{evs[i].events, evs[i].data.u64};
    return n;
}

Result<UniqueFd> make_eventfd() {
    if (int err = fault::hit("eventfd")) return fail(E_errno("eventfd", "", err));
    int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) return fail(E_errno("eventfd", "", errno));
    return adopt_above_stdio(fd);
}

void eventfd_notify(int fd) noexcept {
    const std::uint64_t one = 1;
    // EAGAIN only when the counter would overflow: it is then already signalled.
    ssize_t rc = ::write(fd, &one, sizeof one);
    (void)rc;
}

void eventfd_drain(int fd) noexcept {
    std::uint64_t v;
    ssize_t rc = ::read(fd, &v, sizeof v);
    (void)rc;
}

}  // namespace core::sys::net

namespace core::sys::sig {

int sig_term() noexcept {
    return SIGTERM;
}
int sig_int() noexcept {
    return SIGINT;
}
int sig_kill() noexcept {
    return SIGKILL;
}

Result<void> block_stop_signals() {
    return core::sys::block_signals({SIGTERM, SIGINT});
}

Result<StopSignals> StopSignals::open() {
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (int err = fault::hit("signalfd")) return fail(E_errno("signalfd", "SIGTERM, SIGINT", err));
    if (int rc = ::pthread_sigmask(SIG_BLOCK, &set, &old); rc != 0)
        return fail(E_errno("pthread_sigmask", "SIG_BLOCK", rc));
    StopSignals s;
    s.restore_term_ = sigismember(&old, SIGTERM) == 0;
    s.restore_int_ = sigismember(&old, SIGINT) == 0;
    int fd = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0) {
        const int err = errno;
        return fail(E_errno("signalfd", "SIGTERM, SIGINT", err));  // s's destructor restores
    }
    auto owned = adopt_above_stdio(fd);
    if (!owned) return fail(owned.error());  // s's destructor restores
    s.fd_ = std::move(*owned);
    return s;
}

StopSignals::StopSignals(StopSignals&& o) noexcept
    : fd_(std::move(o.fd_)),
      restore_term_(std::exchange(o.restore_term_, false)),
      restore_int_(std::exchange(o.restore_int_, false)) {}

StopSignals::~StopSignals() {
    if (!restore_term_ && !restore_int_) return;
    // Consume what is pending for us before unblocking: a SIGTERM that arrived after run()
    // decided to return would otherwise be delivered with its default action and kill the host.
    // Only signals pending for this thread or the process and readable here are consumed.
    if (fd_) {
        while (read() != 0) {
        }
    }
    sigset_t set;
    sigemptyset(&set);
    if (restore_term_) sigaddset(&set, SIGTERM);
    if (restore_int_) sigaddset(&set, SIGINT);
    ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

int StopSignals::read() noexcept {
    if (!fd_) return 0;
    signalfd_siginfo si{};
    for (;;) {
        ssize_t n = ::read(fd_.get(), &si, sizeof si);
        if (n == static_cast<ssize_t>(sizeof si)) return static_cast<int>(si.ssi_signo);
        if (n < 0 && errno == EINTR) continue;
        return 0;
    }
}

}  // namespace core::sys::sig
