#include "core/process/terminal.hpp"

#include "sys/term.hpp"

namespace core::process {

bool is_terminal(int fd) noexcept {
    return sys::term::is_terminal(fd);
}

std::size_t terminal_columns(int fd, std::size_t fallback) noexcept {
    const std::size_t n = sys::term::columns(fd);
    return n == 0 ? fallback : n;
}

}  // namespace core::process
