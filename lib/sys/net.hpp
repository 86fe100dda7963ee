// TCP sockets for the HTTP server and client (lib/http) and the control plane: sockets only;
// their event loops use sys/poll.hpp, reads and writes follow sys/io.hpp's convention. Every
// descriptor is CLOEXEC (and non-blocking where an event loop uses it) from birth, and above 2;
// every fallible call is fault-seamed under its syscall's name ("socket", "bind", "listen",
// "accept4", "connect", "recv", "send").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "sys/fd.hpp"
#include "sys/io.hpp"

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

// recv once: bytes read (0 = the peer closed its side), or would_block (sys/io.hpp: the one
// convention of every non-blocking read and write in lib/sys). EINTR retried.
Result<std::ptrdiff_t> recv_some(int fd, char* buf, std::size_t len);
// send once with MSG_NOSIGNAL (a vanished peer must not raise SIGPIPE in the host): bytes
// written, or would_block. EINTR retried.
Result<std::ptrdiff_t> send_some(int fd, std::string_view data);
// shutdown(SHUT_WR): tells the peer we are done writing.
void shutdown_write(int fd) noexcept;

}  // namespace core::sys::net
