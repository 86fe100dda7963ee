#include "sys/term.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

namespace core::sys::term {

bool is_terminal(int fd) noexcept {
    return ::isatty(fd) == 1;
}

std::size_t columns(int fd) noexcept {
    struct winsize ws {};
    // EINTR cannot happen: TIOCGWINSZ does not block.
    if (::ioctl(fd, TIOCGWINSZ, &ws) != 0) return 0;
    return ws.ws_col;
}

}  // namespace core::sys::term
