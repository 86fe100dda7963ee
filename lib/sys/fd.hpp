// core::sys::UniqueFd: the one owner of a file descriptor (as {fmt}'s `file`). Move-only;
// closes on destruction. Ownership transfer shows in the name: adopt(), release(), dup().
#pragma once

#include <cstdint>
#include <utility>

#include "core/result.hpp"

namespace core::sys {

class UniqueFd {
  public:
    UniqueFd() = default;
    // Takes ownership of fd (which may be -1).
    static UniqueFd adopt(int fd) noexcept { return UniqueFd(fd); }
    ~UniqueFd() { reset(); }
    UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;

    int get() const noexcept { return fd_; }
    bool valid() const noexcept { return fd_ >= 0; }
    explicit operator bool() const noexcept { return valid(); }
    // Gives up ownership without closing.
    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
    // Closes the fd now (never retried on EINTR: Linux has already freed the descriptor).
    void reset() noexcept;
    // A new owned descriptor for the same file, CLOEXEC (F_DUPFD_CLOEXEC), numbered 3 or more.
    Result<UniqueFd> dup() const;

  private:
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    int fd_ = -1;
};

// Takes ownership of fd, a descriptor the kernel has just created for us, and makes sure it is
// numbered 3 or more: a host that closed its stdio gets new descriptors at 0, 1 or 2, and when
// it later restores its stdio with dup2(…, 0) the library's descriptor would silently be
// replaced (libuv keeps every descriptor above 2 for this reason). Below 3 the descriptor is
// moved up with F_DUPFD_CLOEXEC and the low one closed. Every creator in lib/sys returns its
// descriptor through here, so no caller has to think of it. Errors: EMFILE (fd is closed then).
Result<UniqueFd> adopt_above_stdio(int fd);
// As adopt_above_stdio, for a descriptor already owned: moved up in place when below 3; left as
// it is (and still owned) on failure.
Result<void> lift_above_stdio(UniqueFd& fd);

// A pipe, both ends CLOEXEC from birth (pipe2 O_CLOEXEC); flags may add O_NONBLOCK, O_DIRECT.
struct Pipe {
    UniqueFd read;
    UniqueFd write;
};
Result<Pipe> make_pipe(int flags = 0);

// Sets or clears O_NONBLOCK (the one non-blocking setter; F_GETFL, then F_SETFL only when the
// flag changes, so the other status flags are kept).
Result<void> set_nonblocking(int fd, bool on = true);

// Raises this process's soft RLIMIT_NOFILE towards want (never above the hard limit, never
// lowering it): the soft limit in force afterwards. For hosts and tests that hold many sockets.
Result<std::uint64_t> raise_open_files_limit(std::uint64_t want);

// Number of open descriptors of this process (counts /proc/self/fd), for leak checks.
Result<int> count_open_fds();

}  // namespace core::sys
