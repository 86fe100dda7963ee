// Terminal facts: is a descriptor a terminal, and how wide is it. Neither call can fail in a
// way a caller acts on, so both answer a plain value.
#pragma once

#include <cstddef>

namespace core::sys::term {

// isatty(fd) == 1.
bool is_terminal(int fd) noexcept;
// The terminal's columns (ioctl TIOCGWINSZ), 0 when fd is not a terminal or does not say.
std::size_t columns(int fd) noexcept;

}  // namespace core::sys::term
