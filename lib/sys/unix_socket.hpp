// Unix domain sockets and peer credentials for the control plane (lib/control): listen, connect,
// SO_PEERCRED, and the file checks a socket path needs. Every descriptor is CLOEXEC from birth;
// fallible calls are fault-seamed under their syscall's name ("socket", "bind", "listen",
// "connect", "getsockopt", "chmod").
#pragma once

#include <string>

#include "core/result.hpp"
#include "sys/fd.hpp"

namespace core::sys::unix_socket {

// socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK) + bind(path) + chmod(path, mode) +
// listen. The socket is chmod-ed before listen(), so no connection is accepted while it has the
// umask's mode. Errors: a path longer than sun_path (ENAMETOOLONG), bind's errno (EADDRINUSE:
// the path exists).
Result<UniqueFd> listen(const std::string& path, unsigned mode, int backlog);
// A blocking, CLOEXEC socket connected to path. Errors: connect's errno (ECONNREFUSED: nobody
// listens; ENOENT: no such socket).
Result<UniqueFd> connect(const std::string& path);
// A TCP socket (IPv4 literal host) connected, blocking, CLOEXEC.
Result<UniqueFd> tcp_connect(const std::string& host, unsigned port);

// The peer of a connected Unix socket, from SO_PEERCRED.
struct PeerCred {
    int pid = 0;
    unsigned uid = 0;
    unsigned gid = 0;
};
Result<PeerCred> peer_cred(int fd);

// What lstat says a path is.
enum class PathKind { missing, socket, other };
Result<PathKind> path_kind(const std::string& path);
// geteuid().
unsigned effective_uid() noexcept;

}  // namespace core::sys::unix_socket
