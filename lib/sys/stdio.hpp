// What a child's standard streams can be connected to besides pipes: files opened for it, the
// caller's descriptors, pseudo-terminals; and the working directory a child's PWD names.
// Every descriptor is CLOEXEC from birth. Thread-safe.
#pragma once

#include <string>

#include "core/result.hpp"
#include "sys/fd.hpp"

namespace core::sys {

// Opens path for a child's stdin (read) or stdout/stderr (write: created 0666 & ~umask,
// truncated or appended). Symlinks are followed, as a shell's redirection does. Errors name the
// path: ENOENT, EACCES, EISDIR (also for reading a directory), ELOOP, …
Result<UniqueFd> open_stdio_file(const std::string& path, bool for_write, bool append);

// getcwd(): the host's working directory. Errors: ENOENT (removed), ERANGE, EACCES.
Result<std::string> current_dir();

// A new pseudo-terminal: the master (ours: O_RDWR, CLOEXEC, non-blocking) and the path of its
// slave, unlocked and sized rows x cols.
struct Pty {
    UniqueFd master;
    std::string slave_path;
};
Result<Pty> open_pty(unsigned short rows, unsigned short cols);
// Opens the slave side (O_RDWR | O_NOCTTY, CLOEXEC): the child's end, dup2'd onto 0, 1, 2.
Result<UniqueFd> open_pty_slave(const std::string& path);
// TIOCSWINSZ on the master: the child gets SIGWINCH.
Result<void> resize_pty(int master, unsigned short rows, unsigned short cols);

}  // namespace core::sys
