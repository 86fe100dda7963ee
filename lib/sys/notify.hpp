// The sd_notify readiness protocol's datagram sockets (issue 15): the Supervisor's receiving
// end per daemon (SOCK_DGRAM, SO_PASSCRED, so every datagram carries the sender's pid as the
// kernel saw it), and the sending end `coreproc supervise` uses towards its own parent. Every
// descriptor is CLOEXEC and non-blocking from birth; fallible calls are fault-seamed under
// their syscall's name ("socket", "bind", "setsockopt", "recvmsg", "sendmsg").
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "sys/fd.hpp"

namespace core::sys::notify {

// A socket bound to `address`: a path, or an abstract name written "@name" (as NOTIFY_SOCKET
// spells it). SO_PASSCRED is on. Errors: an address longer than sun_path (ENAMETOOLONG); bind's
// errno (EADDRINUSE).
Result<UniqueFd> bind(const std::string& address);

struct Datagram {
    std::string text;        // at most `max` bytes of it
    bool truncated = false;  // it was longer than `max` (the rest is gone)
    int pid = 0;             // SCM_CREDENTIALS: 0 when the datagram carried none
    unsigned uid = 0;
    int fds = 0;  // descriptors passed with it (SCM_RIGHTS): closed at once, counted here
};
// One datagram, without blocking: nullopt when none is queued. Errors: recvmsg's errno.
Result<std::optional<Datagram>> receive(int fd, std::size_t max);

// Sends one datagram to `address` ("@name" or a path) from a fresh socket, as sd_notify(3)
// does. Errors: the address; socket's or sendmsg's errno (ECONNREFUSED: nobody bound it).
Result<void> send(const std::string& address, std::string_view text);

// The variable's value, removed from this process's environment (so children do not inherit
// it); nullopt when unset. Not thread-safe (setenv/unsetenv): call it before threads start.
std::optional<std::string> take_env(const char* name);

// The parent pid of pid (from /proc/<pid>/stat), or nullopt when pid is gone.
std::optional<int> parent_of(int pid);
// True when pid is root or a descendant of root (following parent pids, at most 4096 steps).
bool in_tree(int pid, int root);

}  // namespace core::sys::notify
