// The terminal facts coreproc's output depends on: whether a descriptor is a terminal, its
// width (through the library: syscalls live in lib/sys), and whether colour is wanted.
#pragma once

#include <cstddef>

namespace coreproc {

// True when fd is a terminal (isatty).
bool is_terminal(int fd) noexcept;
// The terminal's width in columns, or fallback when fd is not a terminal or says 0.
std::size_t terminal_width(int fd, std::size_t fallback = 80) noexcept;
// Colour on fd: a terminal, NO_COLOR unset (https://no-color.org) and TERM not "dumb".
bool want_colour(int fd) noexcept;

}  // namespace coreproc
