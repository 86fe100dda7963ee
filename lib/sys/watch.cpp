#include "sys/watch.hpp"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "sys/fault.hpp"

namespace core::sys {

Result<DirWatch> DirWatch::create(const std::string& dir) {
    if (int err = fault::hit("inotify_init1")) return fail(E_errno("inotify_init1", dir, err));
    const int raw = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (raw < 0) return fail(E_errno("inotify_init1", dir, errno));
    auto fd = adopt_above_stdio(raw);
    if (!fd) return fail(fd.error());
    // IN_MODIFY: appended to; IN_CREATE/IN_MOVED_*/IN_DELETE: rotated; IN_ATTRIB: truncated
    // by some tools (and unlinked while open).
    const std::uint32_t mask =
        IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB;
    if (int err = fault::hit("inotify_add_watch"))
        return fail(E_errno("inotify_add_watch", dir, err));
    if (::inotify_add_watch(fd->get(), dir.c_str(), mask) < 0)
        return fail(E_errno("inotify_add_watch", dir, errno));
    DirWatch w;
    w.fd_ = std::move(*fd);
    return w;
}

Result<bool> DirWatch::wait(int timeout_ms) {
    pollfd p{fd_.get(), POLLIN, 0};
    const int n = ::poll(&p, 1, timeout_ms);
    if (n < 0) {
        if (errno == EINTR) return false;  // the caller re-checks the file anyway
        return fail(E_errno("poll", "inotify", errno));
    }
    if (n == 0) return false;
    // Consume every queued event: what changed is re-read from the file itself.
    alignas(inotify_event) char buf[4096];
    for (;;) {
        const ssize_t r = ::read(fd_.get(), buf, sizeof buf);
        if (r > 0) continue;
        if (r < 0 && errno == EINTR) continue;
        break;  // EAGAIN: drained
    }
    return true;
}

Result<std::string> read_upto(int fd, std::size_t max) {
    std::string out;
    char buf[65536];
    while (out.size() < max) {
        if (int err = fault::hit("read")) return fail(E_errno("read", "", err));
        const std::size_t want = std::min(sizeof buf, max - out.size());
        const ssize_t n = ::read(fd, buf, want);
        if (n < 0) {
            if (errno == EINTR) continue;  // nothing was read: retrying is exact
            if (errno == EAGAIN) break;
            return fail(E_errno("read", "", errno));
        }
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

Result<void> seek_to(int fd, std::uint64_t offset) {
    if (int err = fault::hit("lseek")) return fail(E_errno("lseek", "", err));
    if (::lseek(fd, static_cast<off_t>(offset), SEEK_SET) < 0)
        return fail(E_errno("lseek", "", errno));
    return {};
}

}  // namespace core::sys
