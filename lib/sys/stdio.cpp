#include "sys/stdio.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#include "sys/fault.hpp"

namespace core::sys {

Result<UniqueFd> open_stdio_file(const std::string& path, bool for_write, bool append) {
    if (int err = fault::hit("open")) return fail(E_errno("open", "\"" + path + "\"", err));
    int flags = O_CLOEXEC;
    if (for_write) {
        flags |= O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC);
    } else {
        flags |= O_RDONLY;
    }
    int fd;
    do {
        fd = ::open(path.c_str(), flags, 0666);
    } while (fd < 0 && errno == EINTR);  // a FIFO's open may be interrupted; nothing done yet
    if (fd < 0) return fail(E_errno("open", "\"" + path + "\"", errno));
    // Above 2, as every descriptor lib/sys creates (a host may have closed its stdio).
    auto lifted = adopt_above_stdio(fd);
    if (!lifted) return fail(E("open", "\"" + path + "\"", lifted.error()));
    auto owned = std::move(*lifted);
    fd = owned.get();
    if (!for_write) {
        // open(O_RDONLY) of a directory succeeds; the child's read would then fail with EISDIR.
        struct stat st {};
        if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
            return fail(E_errno("open", "\"" + path + "\"", EISDIR));
    }
    return owned;
}

Result<std::string> current_dir() {
    char buf[PATH_MAX];
    if (::getcwd(buf, sizeof buf) == nullptr) return fail(E_errno("getcwd", "", errno));
    return std::string(buf);
}

Result<Pty> open_pty(unsigned short rows, unsigned short cols) {
    if (int err = fault::hit("posix_openpt")) return fail(E_errno("posix_openpt", "", err));
    int m = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (m < 0) return fail(E_errno("posix_openpt", "", errno));
    Pty p;
    auto master = adopt_above_stdio(m);
    if (!master) return fail(master.error());
    p.master = std::move(*master);
    m = p.master.get();
    if (::grantpt(m) != 0) return fail(E_errno("grantpt", "", errno));
    if (::unlockpt(m) != 0) return fail(E_errno("unlockpt", "", errno));
    char name[128];
    if (int rc = ::ptsname_r(m, name, sizeof name); rc != 0)
        return fail(E_errno("ptsname_r", "", rc));
    p.slave_path = name;
    if (auto r = resize_pty(m, rows, cols); !r) return fail(r.error());
    return p;
}

Result<UniqueFd> open_pty_slave(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return fail(E_errno("open", "\"" + path + "\"", errno));
    return adopt_above_stdio(fd);
}

Result<void> resize_pty(int master, unsigned short rows, unsigned short cols) {
    struct winsize ws {};
    ws.ws_row = rows;
    ws.ws_col = cols;
    if (::ioctl(master, TIOCSWINSZ, &ws) != 0) return fail(E_errno("ioctl", "TIOCSWINSZ", errno));
    return {};
}

}  // namespace core::sys
