// OS calls for the supervisor's log and state files: append-only log files, atomic replacement
// and a process's group and start time (its signals are in sys/signals.hpp). Every descriptor
// CLOEXEC from birth; every fallible call fault-seamed under its syscall's name ("open",
// "write", "fstat").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "sys/fd.hpp"

namespace core::sys::sup {

// open(path, O_WRONLY|O_APPEND|O_CREAT|O_NOFOLLOW|O_CLOEXEC, mode).
Result<UniqueFd> open_append(const std::string& path, unsigned mode);
// fstat's st_size.
Result<std::uint64_t> file_size(int fd);
// write() once: the bytes written (EINTR retried). Errors carry the errno (ENOSPC, EIO, …).
Result<std::size_t> write_once(int fd, std::string_view data);

// Replaces path's contents: writes path + ".tmp" (O_CREAT|O_TRUNC|O_NOFOLLOW|O_CLOEXEC, mode),
// then renames it over path, so a reader sees the old or the new file, never half of one.
Result<void> replace_file(const std::string& path, std::string_view data, unsigned mode);

// Field 5 of /proc/<pid>/stat (the process group), nullopt when the process is gone.
std::optional<int> process_group(int pid);

// Field 22 of /proc/<pid>/stat (clock ticks since boot when the process started): with the pid,
// an identity that survives pid reuse. nullopt when the process is gone (or unreadable).
std::optional<std::uint64_t> process_start_time(int pid);

}  // namespace core::sys::sup
