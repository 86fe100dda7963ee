#include "sys/fd.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>

#include "sys/fault.hpp"

namespace core::sys {

void UniqueFd::reset() noexcept {
    if (fd_ >= 0) {
        // Never retry close on EINTR: on Linux the descriptor is released whatever close
        // returns, and a retry could close a descriptor another thread just opened.
        ::close(fd_);
        fd_ = -1;
    }
}

Result<UniqueFd> UniqueFd::dup() const {
    if (int err = fault::hit("dup")) return fail(E_errno("dup", "", err));
    // From 3 up: a copy must not take a slot of the host's closed stdio (adopt_above_stdio).
    int fd = ::fcntl(fd_, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) return fail(E_errno("dup", "fd " + std::to_string(fd_), errno));
    return UniqueFd::adopt(fd);
}

Result<UniqueFd> adopt_above_stdio(int fd) {
    UniqueFd owned = UniqueFd::adopt(fd);
    if (auto r = lift_above_stdio(owned); !r) return fail(r.error());  // owned closes fd
    return owned;
}

Result<void> lift_above_stdio(UniqueFd& fd) {
    if (!fd || fd.get() > 2) return {};
    // The copy shares the open file description, so O_NONBLOCK and the other status flags come
    // along; FD_CLOEXEC is set on it by F_DUPFD_CLOEXEC (every descriptor of ours has it).
    const int high = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
    if (high < 0)
        return fail(E_errno("fcntl", "F_DUPFD_CLOEXEC fd " + std::to_string(fd.get()), errno));
    fd = UniqueFd::adopt(high);  // closes the low one
    return {};
}

Result<Pipe> make_pipe(int flags) {
    if (int err = fault::hit("pipe2")) return fail(E_errno("pipe2", "", err));
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | flags) != 0) return fail(E_errno("pipe2", "", errno));
    Pipe p{UniqueFd::adopt(fds[0]), UniqueFd::adopt(fds[1])};
    if (auto r = lift_above_stdio(p.read); !r) return fail(r.error());
    if (auto r = lift_above_stdio(p.write); !r) return fail(r.error());
    return p;
}

Result<void> set_nonblocking(int fd, bool on) {
    int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0) return fail(E_errno("fcntl", "F_GETFL fd " + std::to_string(fd), errno));
    const int want = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    if (want == fl) return {};
    if (::fcntl(fd, F_SETFL, want) < 0)
        return fail(E_errno("fcntl", "F_SETFL O_NONBLOCK fd " + std::to_string(fd), errno));
    return {};
}

Result<std::uint64_t> raise_open_files_limit(std::uint64_t want) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return fail(E_errno("getrlimit", "NOFILE", errno));
    if (rl.rlim_cur >= want) return static_cast<std::uint64_t>(rl.rlim_cur);
    rl.rlim_cur = want < rl.rlim_max ? static_cast<rlim_t>(want) : rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) return fail(E_errno("setrlimit", "NOFILE", errno));
    return static_cast<std::uint64_t>(rl.rlim_cur);
}

Result<int> count_open_fds() {
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) return fail(E_errno("opendir", "/proc/self/fd", errno));
    int n = 0;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] != '.') ++n;
    }
    ::closedir(d);
    return n - 1;  // the directory stream's own descriptor
}

}  // namespace core::sys
