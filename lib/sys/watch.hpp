// Following a file that grows and rotates (`tail -F`): an inotify watch on its directory, and
// reads from where the last one stopped. Every descriptor is CLOEXEC from birth. Not
// synchronised: one thread owns each object.
#pragma once

#include <cstdint>
#include <string>

#include "core/result.hpp"
#include "sys/fd.hpp"

namespace core::sys {

// inotify on one directory: any file in it written, created, renamed, removed or truncated.
class DirWatch {
  public:
    // Errors: inotify_init1 (EMFILE), inotify_add_watch (ENOENT, EACCES), naming the directory.
    static Result<DirWatch> create(const std::string& dir);
    // Waits up to timeout_ms (-1: forever) for a change and consumes the pending events: true
    // when something changed, false on timeout or EINTR (the caller re-checks anyway).
    Result<bool> wait(int timeout_ms);
    int fd() const noexcept { return fd_.get(); }

  private:
    UniqueFd fd_;
};

// Reads from fd's current offset until EOF, at most max bytes (a short result then means
// "more to come": call again). EINTR retried (nothing was read).
Result<std::string> read_upto(int fd, std::size_t max);
// lseek(fd, offset, SEEK_SET).
Result<void> seek_to(int fd, std::uint64_t offset);

}  // namespace core::sys
