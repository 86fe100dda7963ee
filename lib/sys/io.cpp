#include "sys/io.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "sys/fault.hpp"
#include "sys/signals.hpp"

namespace core::sys {

Result<std::ptrdiff_t> read_some(int fd, char* buf, std::size_t n) {
    for (;;) {
        // EINTR (real, or injected by a test) is retried here and nowhere else: read(2) on a
        // pipe returns EINTR only before any byte was transferred, so a retry loses nothing.
        if (int err = fault::hit("read")) {
            if (err == EINTR) continue;
            return fail(E_errno("read", "fd " + std::to_string(fd), err));
        }
        const ssize_t r = ::read(fd, buf, n);
        if (r >= 0) return static_cast<std::ptrdiff_t>(r);
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return would_block;
        return fail(E_errno("read", "fd " + std::to_string(fd), errno));
    }
}

Result<std::ptrdiff_t> write_some(int fd, const char* buf, std::size_t n) {
    for (;;) {
        // EINTR: write(2) returns it only when nothing was written, so retrying is exact.
        if (int err = fault::hit("write")) {
            if (err == EINTR) continue;
            return fail(E_errno("write", "fd " + std::to_string(fd), err));
        }
        const ssize_t r = ::write(fd, buf, n);
        if (r >= 0) return static_cast<std::ptrdiff_t>(r);
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return would_block;
        const int err = errno;
        if (err == EPIPE) consume_pending_sigpipe();
        return fail(E_errno("write", "fd " + std::to_string(fd), err));
    }
}

Result<void> write_all(int fd, std::string_view bytes) {
    // Block SIGPIPE in this thread for the duration, so a vanished reader gives EPIPE; restore
    // the caller's mask afterwards (the pending SIGPIPE we caused is consumed first).
    sigset_t pipe_only, old;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
    Result<void> out;
    const char* p = bytes.data();
    std::size_t left = bytes.size();
    while (left > 0) {
        if (int err = fault::hit("write")) {
            if (err == EINTR) continue;
            out = fail(E_errno("write", "fd " + std::to_string(fd), err));
            break;
        }
        const ssize_t r = ::write(fd, p, left);
        if (r < 0) {
            if (errno == EINTR) continue;  // nothing written: retry is exact
            const int err = errno;
            if (err == EPIPE && !was_pending) consume_pending_sigpipe();
            out = fail(E_errno("write", "fd " + std::to_string(fd), err));
            break;
        }
        p += r;
        left -= static_cast<std::size_t>(r);
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return out;
}

Result<std::ptrdiff_t> write_some_nosigpipe(int fd, const char* buf, std::size_t n) {
    // As write_all: SIGPIPE blocked in this thread for the write, so a vanished reader gives
    // EPIPE instead of killing the host; the SIGPIPE we caused is consumed, the mask restored.
    sigset_t pipe_only, old, pending;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
    Result<std::ptrdiff_t> out = 0;
    for (;;) {
        if (int err = fault::hit("write")) {
            if (err == EINTR) continue;
            out = fail(E_errno("write", "fd " + std::to_string(fd), err));
            break;
        }
        const ssize_t r = ::write(fd, buf, n);
        if (r >= 0) {
            out = static_cast<std::ptrdiff_t>(r);
            break;
        }
        if (errno == EINTR) continue;  // nothing written: retry is exact
        if (errno == EAGAIN) {
            out = would_block;
            break;
        }
        const int err = errno;
        if (err == EPIPE && !was_pending) consume_pending_sigpipe();
        out = fail(E_errno("write", "fd " + std::to_string(fd), err));
        break;
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return out;
}

Result<UniqueFd> open_devnull() {
    if (int err = fault::hit("open")) return fail(E_errno("open", "/dev/null", err));
    for (;;) {
        const int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        if (fd >= 0) return adopt_above_stdio(fd);
        if (errno == EINTR) continue;  // open(2) of a device may be interrupted; nothing done yet
        return fail(E_errno("open", "/dev/null", errno));
    }
}

Result<void> check_dir(const std::string& dir) {
    if (int err = fault::hit("stat")) return fail(E_errno("stat", "dir \"" + dir + "\"", err));
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) return fail(E_errno("stat", "dir \"" + dir + "\"", errno));
    if (!S_ISDIR(st.st_mode)) return fail(E_errno("stat", "dir \"" + dir + "\"", ENOTDIR));
    if (::access(dir.c_str(), X_OK) != 0)
        return fail(E_errno("access", "dir \"" + dir + "\"", errno));
    return {};
}

}  // namespace core::sys

namespace core::sys {
Result<UniqueFd> dup_at_least(int fd, int min) {
    if (int err = fault::hit("dup")) return fail(E_errno("dup", "", err));
    const int nfd = ::fcntl(fd, F_DUPFD_CLOEXEC, min);
    if (nfd < 0) return fail(E_errno("dup", "fd " + std::to_string(fd), errno));
    return UniqueFd::adopt(nfd);
}
}  // namespace core::sys
