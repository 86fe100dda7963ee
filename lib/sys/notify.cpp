#include "sys/notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <vector>

#include "sys/fault.hpp"

namespace core::sys::notify {

namespace {

struct Address {
    sockaddr_un sa{};
    socklen_t len = 0;
};

Result<Address> address(const std::string& text, const char* op) {
    Address a;
    a.sa.sun_family = AF_UNIX;
    if (text.size() < 2 && (text.empty() || text[0] == '@'))
        return fail(E_errno(op, "\"" + text + "\": not a socket address", EINVAL));
    if (text.size() >= sizeof a.sa.sun_path)
        return fail(E_errno(op,
                            "\"" + text + "\": address must be at most " +
                                std::to_string(sizeof a.sa.sun_path - 1) + " bytes",
                            ENAMETOOLONG));
    std::memcpy(a.sa.sun_path, text.data(), text.size());
    if (text[0] == '@') a.sa.sun_path[0] = '\0';  // abstract: no file, no trailing NUL
    a.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + text.size() +
                                   (text[0] == '@' ? 0 : 1));
    return a;
}

Result<UniqueFd> dgram_socket(const std::string& where) {
    if (int err = fault::hit("socket")) return fail(E_errno("socket", where, err));
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return fail(E_errno("socket", where, errno));
    return adopt_above_stdio(fd);
}

}  // namespace

Result<UniqueFd> bind(const std::string& text) {
    auto a = address(text, "bind");
    if (!a) return fail(a.error());
    const std::string where = "\"" + text + "\"";
    auto fd = dgram_socket(where);
    if (!fd) return fail(fd.error());
    if (int err = fault::hit("bind")) return fail(E_errno("bind", where, err));
    if (::bind(fd->get(), reinterpret_cast<const sockaddr*>(&a->sa), a->len) != 0)
        return fail(E_errno("bind", where, errno));
    const int one = 1;
    int err = fault::hit("setsockopt");
    if (err == 0 && ::setsockopt(fd->get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0)
        err = errno;
    if (err != 0) {
        if (text[0] != '@') ::unlink(text.c_str());
        return fail(E_errno("setsockopt", where + ": SO_PASSCRED", err));
    }
    return fd;
}

Result<std::optional<Datagram>> receive(int fd, std::size_t max) {
    std::vector<char> buf(max + 1);
    // Room for the credentials and a handful of descriptors someone may have sent along.
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int) * 16)];
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    if (int err = fault::hit("recvmsg")) return fail(E_errno("recvmsg", "notify socket", err));
    ssize_t n;
    do {
        n = ::recvmsg(fd, &msg, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return std::optional<Datagram>{};
        return fail(E_errno("recvmsg", "notify socket", errno));
    }
    Datagram d;
    // MSG_TRUNC: n is the datagram's real length. One byte more than max was asked for, so a
    // datagram of exactly max+1 bytes shows as too long too.
    d.truncated = static_cast<std::size_t>(n) > max;
    d.text.assign(buf.data(), d.truncated ? max : static_cast<std::size_t>(n));
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET) continue;
        if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(ucred))) {
            ucred cred{};
            std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
            d.pid = cred.pid;
            d.uid = cred.uid;
        } else if (c->cmsg_type == SCM_RIGHTS) {
            const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (std::size_t i = 0; i < count; ++i) {
                int passed = -1;
                std::memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
                (void)UniqueFd::adopt(passed);  // closed here: nothing of ours
                ++d.fds;
            }
        }
    }
    if (msg.msg_flags & MSG_CTRUNC) ++d.fds;  // more descriptors than room: the kernel closed them
    return std::optional<Datagram>(std::move(d));
}

Result<void> send(const std::string& text, std::string_view payload) {
    auto a = address(text, "sendmsg");
    if (!a) return fail(a.error());
    const std::string where = "\"" + text + "\"";
    auto fd = dgram_socket(where);
    if (!fd) return fail(fd.error());
    iovec iov{const_cast<char*>(payload.data()), payload.size()};
    msghdr msg{};
    msg.msg_name = &a->sa;
    msg.msg_namelen = a->len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (int err = fault::hit("sendmsg")) return fail(E_errno("sendmsg", where, err));
    ssize_t n;
    do {
        n = ::sendmsg(fd->get(), &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return fail(E_errno("sendmsg", where, errno));
    return {};
}

std::optional<std::string> take_env(const char* name) {
    const char* v = std::getenv(name);
    if (!v) return std::nullopt;
    std::string out = v;
    ::unsetenv(name);
    return out;
}

std::optional<int> parent_of(int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(f, line)) return std::nullopt;
    // "pid (comm) S ppid …": comm may hold spaces and parentheses; the last ')' ends it.
    const auto close = line.rfind(')');
    if (close == std::string::npos || close + 4 >= line.size()) return std::nullopt;
    const auto rest = line.substr(close + 4);  // after ") S "
    try {
        return std::stoi(rest);
    } catch (...) {
        return std::nullopt;
    }
}

bool in_tree(int pid, int root) {
    if (pid <= 0 || root <= 0) return false;
    for (int step = 0; step < 4096 && pid > 1; ++step) {
        if (pid == root) return true;
        auto parent = parent_of(pid);
        if (!parent) return false;
        pid = *parent;
    }
    return pid == root;
}

}  // namespace core::sys::notify
