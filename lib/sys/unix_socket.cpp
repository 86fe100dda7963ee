#include "sys/unix_socket.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sys/fault.hpp"
#include "sys/net.hpp"

namespace core::sys::unix_socket {

namespace {

Result<sockaddr_un> address(const std::string& path) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof sa.sun_path)
        return fail(E_errno("socket",
                            "\"" + path + "\": path must be 1 to " +
                                std::to_string(sizeof sa.sun_path - 1) + " bytes",
                            ENAMETOOLONG));
    std::memcpy(sa.sun_path, path.data(), path.size());
    return sa;
}

}  // namespace

Result<UniqueFd> listen(const std::string& path, unsigned mode, int backlog) {
    auto sa = address(path);
    if (!sa) return fail(sa.error());
    const std::string where = "\"" + path + "\"";
    if (int err = fault::hit("socket")) return fail(E_errno("socket", where, err));
    UniqueFd fd = UniqueFd::adopt(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return fail(E_errno("socket", where, errno));
    if (int err = fault::hit("bind")) return fail(E_errno("bind", where, err));
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&*sa), sizeof *sa) != 0)
        return fail(E_errno("bind", where, errno));
    // fchmod on a socket does not change the file bind() created (Linux): chmod the path. The
    // directory around it is private, so nobody else can reach the file in between.
    int err = fault::hit("chmod");
    if (err == 0 && ::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) err = errno;
    if (err != 0) {
        ::unlink(path.c_str());
        return fail(E_errno("chmod", where, err));
    }
    err = fault::hit("listen");
    if (err == 0 && ::listen(fd.get(), backlog) != 0) err = errno;
    if (err != 0) {
        ::unlink(path.c_str());
        return fail(E_errno("listen", where, err));
    }
    return fd;
}

Result<UniqueFd> connect(const std::string& path) {
    auto sa = address(path);
    if (!sa) return fail(sa.error());
    const std::string where = "\"" + path + "\"";
    if (int err = fault::hit("socket")) return fail(E_errno("socket", where, err));
    UniqueFd fd = UniqueFd::adopt(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return fail(E_errno("socket", where, errno));
    if (int err = fault::hit("connect")) return fail(E_errno("connect", where, err));
    // EINTR on a blocking connect of a Unix socket: the connection may be established later;
    // report it rather than retry (a second connect() would fail with EISCONN or EALREADY).
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*sa), sizeof *sa) != 0)
        return fail(E_errno("connect", where, errno));
    return fd;
}

Result<UniqueFd> tcp_connect(const std::string& host, unsigned port) {
    std::uint32_t addr = 0;
    const std::string where = host + ":" + std::to_string(port);
    if (!net::parse_ipv4(host, &addr) || port == 0 || port > 65535)
        return fail(E_errno("connect", where + ": not an IPv4 address and port", EINVAL));
    if (int err = fault::hit("socket")) return fail(E_errno("socket", where, err));
    UniqueFd fd = UniqueFd::adopt(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return fail(E_errno("socket", where, errno));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = addr;
    sa.sin_port = htons(static_cast<std::uint16_t>(port));
    if (int err = fault::hit("connect")) return fail(E_errno("connect", where, err));
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0)
        return fail(E_errno("connect", where, errno));
    return fd;
}

Result<PeerCred> peer_cred(int fd) {
    if (int err = fault::hit("getsockopt")) return fail(E_errno("getsockopt", "SO_PEERCRED", err));
    ucred c{};
    socklen_t len = sizeof c;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) != 0)
        return fail(E_errno("getsockopt", "SO_PEERCRED", errno));
    return PeerCred{static_cast<int>(c.pid), static_cast<unsigned>(c.uid),
                    static_cast<unsigned>(c.gid)};
}

Result<PathKind> path_kind(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) return PathKind::missing;
        return fail(E_errno("lstat", "\"" + path + "\"", errno));
    }
    return S_ISSOCK(st.st_mode) ? PathKind::socket : PathKind::other;
}

unsigned effective_uid() noexcept {
    return static_cast<unsigned>(::geteuid());
}

}  // namespace core::sys::unix_socket
