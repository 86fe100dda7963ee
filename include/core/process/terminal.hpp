// Terminal facts for tools that show live progress (coreproc pipeline's live view): whether a
// descriptor is a terminal and its width. Thread-safe; no Result: neither answer can fail in a
// way a caller could act on.
#pragma once

#include <cstddef>

#include "core/export.hpp"

namespace core::process {

// True when fd is a terminal.
CORE_API bool is_terminal(int fd) noexcept;
// The terminal's width in columns; fallback when fd is not a terminal or reports 0.
CORE_API std::size_t terminal_columns(int fd, std::size_t fallback = 80) noexcept;

}  // namespace core::process
