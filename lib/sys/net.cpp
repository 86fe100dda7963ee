#include "sys/net.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "sys/fault.hpp"

namespace core::sys::net {

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
// A non-blocking CLOEXEC TCP socket, above fds 0-2. Errors name `where`.
Result<UniqueFd> tcp_socket(const std::string& where) {
    if (int err = fault::hit("socket")) return fail(E_errno("socket", where, err));
    const int raw = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (raw < 0) return fail(E_errno("socket", where, errno));
    return adopt_above_stdio(raw);
}
}  // namespace

Result<UniqueFd> tcp_listen(const Endpoint& ep, int backlog) {
    const std::string where = to_string(ep);
    auto owned = tcp_socket(where);
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
    auto owned = tcp_socket(where);
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

Result<std::ptrdiff_t> recv_some(int fd, char* buf, std::size_t len) {
    if (int err = fault::hit("recv")) return fail(E_errno("recv", "", err));
    for (;;) {
        const ssize_t n = ::recv(fd, buf, len, 0);
        if (n >= 0) return static_cast<std::ptrdiff_t>(n);
        if (errno == EINTR) continue;  // nothing was received: retrying is exact
        if (errno == EAGAIN || errno == EWOULDBLOCK) return would_block;
        return fail(E_errno("recv", "", errno));
    }
}

Result<std::ptrdiff_t> send_some(int fd, std::string_view data) {
    if (int err = fault::hit("send")) return fail(E_errno("send", "", err));
    for (;;) {
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n >= 0) return static_cast<std::ptrdiff_t>(n);
        if (errno == EINTR) continue;  // nothing was sent: retrying is exact
        if (errno == EAGAIN || errno == EWOULDBLOCK) return would_block;
        return fail(E_errno("send", "", errno));
    }
}

void shutdown_write(int fd) noexcept {
    ::shutdown(fd, SHUT_WR);
}

}  // namespace core::sys::net
