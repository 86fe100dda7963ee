#include "term.hpp"

#include <cstdlib>
#include <cstring>

#include "core/process/terminal.hpp"

namespace coreproc {

bool is_terminal(int fd) noexcept {
    return core::process::is_terminal(fd);
}

std::size_t terminal_width(int fd, std::size_t fallback) noexcept {
    return core::process::terminal_columns(fd, fallback);
}

bool want_colour(int fd) noexcept {
    if (!is_terminal(fd)) return false;
    const char* no = std::getenv("NO_COLOR");
    if (no != nullptr && no[0] != '\0') return false;
    const char* term = std::getenv("TERM");
    return term == nullptr || std::strcmp(term, "dumb") != 0;
}

}  // namespace coreproc
