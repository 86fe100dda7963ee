// TCP sockets, epoll, eventfd and stop signals for the health server, the HTTP client and
// Daemon::run. Every descriptor is CLOEXEC (and non-blocking where an event loop uses it) from
// birth; every fallible call is fault-seamed under its syscall's name ("socket", "bind",
// "listen", "accept4", "connect", "recv", "send", "poll", "epoll_create1", "epoll_ctl",
// "epoll_wait", "eventfd", "signalfd").
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "sys/fd.hpp"

namespace core::sys::net {

// An IPv4 endpoint, address in network byte order.
struct Endpoint {
    std::uint32_t addr_be = 0;
    std::uint16_t port = 0;
};
// Parses an IPv4 literal ("127.0.0.1"); false when it is not one.
bool parse_ipv4(const std::string& host, std::uint32_t* addr_be);
// "a.b.c.d:port".
std::string to_string(const Endpoint& ep);

// socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK) + SO_REUSEADDR + bind + listen.
Result<UniqueFd> tcp_listen(const Endpoint& ep, int backlog);
// The port a socket is bound to (getsockname).
Result<std::uint16_t> local_port(int fd);
// accept4(SOCK_CLOEXEC|SOCK_NONBLOCK). An invalid UniqueFd when nothing is pending (EAGAIN) or
// the connection was aborted before we took it (ECONNABORTED), EINTR retried.
Result<UniqueFd> accept(int listen_fd);
// A non-blocking socket with connect() started; *in_progress tells whether to wait for
// writability and then call connect_result().
Result<UniqueFd> tcp_connect_start(const Endpoint& ep, bool* in_progress);
// The outcome of a non-blocking connect (SO_ERROR).
Result<void> connect_result(int fd);

// Outcome of one non-blocking read or write.
struct Io {
    std::size_t n = 0;
    bool would_block = false;
    bool eof = false;  // read only: the peer closed its side
};
// recv once; EINTR retried.
Result<Io> recv_some(int fd, char* buf, std::size_t len);
// send once with MSG_NOSIGNAL (a vanished peer must not raise SIGPIPE in the host); EINTR
// retried.
Result<Io> send_some(int fd, std::string_view data);
// shutdown(SHUT_WR): tells the peer we are done writing.
void shutdown_write(int fd) noexcept;

// poll() for one fd. want_write false: readable (or hang-up); true: writable. Returns true when
// ready, false on timeout; EINTR retried with the remaining time.
Result<bool> wait_fd(int fd, bool want_write, std::chrono::milliseconds timeout);

// epoll, with named event bits so callers need no <sys/epoll.h>.
extern const std::uint32_t ev_in;
extern const std::uint32_t ev_out;
extern const std::uint32_t ev_err;
extern const std::uint32_t ev_hup;
extern const std::uint32_t ev_rdhup;
extern const std::uint32_t ev_et;  // edge-triggered: the owner drains to EAGAIN each time
struct Event {
    std::uint32_t events = 0;
    std::uint64_t data = 0;
};
Result<UniqueFd> epoll_create();
Result<void> epoll_add(int ep, int fd, std::uint32_t events, std::uint64_t data);
Result<void> epoll_mod(int ep, int fd, std::uint32_t events, std::uint64_t data);
Result<void> epoll_del(int ep, int fd);
// Waits up to timeout_ms (-1: forever); returns how many events were written to out. EINTR
// gives 0 (the caller's loop recomputes its deadlines).
Result<int> epoll_wait(int ep, Event* out, int max, int timeout_ms);

// eventfd(0, EFD_CLOEXEC|EFD_NONBLOCK): a wake-up source.
Result<UniqueFd> make_eventfd();
// Adds 1 to the counter; async-signal-safe; never fails in a way the caller could act on.
void eventfd_notify(int fd) noexcept;
// Resets the counter to 0.
void eventfd_drain(int fd) noexcept;

}  // namespace core::sys::net

namespace core::sys::sig {

// Signal numbers for public APIs that must not include <csignal>.
int sig_term() noexcept;
int sig_int() noexcept;
int sig_kill() noexcept;

// Blocks SIGTERM and SIGINT in the calling thread (pthread_sigmask).
Result<void> block_stop_signals();

// A signalfd for SIGTERM and SIGINT, with both blocked in the calling thread while it lives.
// The destructor drains what is pending on it (so unblocking cannot deliver a signal the
// signalfd was meant to consume) and restores the thread's previous mask.
class StopSignals {
  public:
    static Result<StopSignals> open();
    StopSignals() = default;
    StopSignals(StopSignals&& o) noexcept;
    StopSignals& operator=(StopSignals&& o) = delete;
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;
    ~StopSignals();

    int fd() const noexcept { return fd_.get(); }
    // The next pending signal number, 0 when none (non-blocking read).
    int read() noexcept;

  private:
    UniqueFd fd_;
    bool restore_term_ = false;  // unblock SIGTERM on destruction (it was not blocked before)
    bool restore_int_ = false;
};

}  // namespace core::sys::sig
