// Non-blocking and blocking reads and writes on descriptors, with EINTR handled here once and
// SIGPIPE never delivered to the host (a write to a pipe whose reader is gone is an EPIPE Error).
// Stateless; thread-safe as the underlying calls are.
#pragma once

#include <cstddef>
#include <string_view>

#include "core/result.hpp"
#include "sys/fd.hpp"

namespace core::sys {

// The value read_some/write_some return when the descriptor would block (no Error is built:
// this is the normal end of every drain loop).
inline constexpr std::ptrdiff_t would_block = -1;

// Reads up to n bytes: bytes read (0 = end of file), or would_block. EINTR is retried.
Result<std::ptrdiff_t> read_some(int fd, char* buf, std::size_t n);
// Writes up to n bytes: bytes written, or would_block. EINTR is retried. EPIPE is an Error with
// code EPIPE; the SIGPIPE it raises is consumed when the calling thread blocks SIGPIPE.
Result<std::ptrdiff_t> write_some(int fd, const char* buf, std::size_t n);
// Writes every byte, blocking while the pipe is full. SIGPIPE is blocked around the call and a
// SIGPIPE raised by it consumed, so a closed reader is an EPIPE Error, never a signal.
Result<void> write_all(int fd, std::string_view bytes);
// write_some from any thread: SIGPIPE is blocked around the write (EPIPE instead of the
// signal), as write_all does; would_block on a full non-blocking descriptor.
Result<std::ptrdiff_t> write_some_nosigpipe(int fd, const char* buf, std::size_t n);

// /dev/null opened read-write, CLOEXEC.
Result<UniqueFd> open_devnull();

// Checks dir is an existing, searchable directory. Errors name the dir: ENOENT, ENOTDIR, EACCES.
Result<void> check_dir(const std::string& dir);

}  // namespace core::sys

namespace core::sys {
// A CLOEXEC duplicate numbered >= min (for pipe ends that landed on 0, 1 or 2 because the host
// closed its stdio).
Result<UniqueFd> dup_at_least(int fd, int min);
}  // namespace core::sys
