#include "sys/file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "sys/fault.hpp"

namespace core::sys::file {

namespace {

Result<UniqueFd> open_impl(const std::string& path, int flags, unsigned mode) {
    if (int err = fault::hit("open")) return fail(E_errno("open", path, err));
    int fd;
    // EINTR: open can be interrupted on slow devices/FIFOs; retrying is safe (nothing opened).
    do {
        fd = ::open(path.c_str(), flags | O_CLOEXEC, static_cast<mode_t>(mode));
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return fail(E_errno("open", path, errno));
    return adopt_above_stdio(fd);
}

}  // namespace

Result<UniqueFd> open_rw_create(const std::string& path, unsigned mode) {
    return open_impl(path, O_RDWR | O_CREAT | O_NOFOLLOW, mode);
}

Result<UniqueFd> open_read(const std::string& path) {
    return open_impl(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0);
}

Result<UniqueFd> create_exclusive(const std::string& path, unsigned mode) {
    auto fd = open_impl(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
    if (!fd) return fd;
    if (int err = fault::hit("fchmod")) return fail(E_errno("fchmod", path, err));
    if (::fchmod(fd->get(), static_cast<mode_t>(mode)) != 0)
        return fail(E_errno("fchmod", path, errno));
    return fd;
}

Result<UniqueFd> open_dir(const std::string& path) {
    return open_impl(path, O_RDONLY | O_DIRECTORY, 0);
}

Result<bool> try_lock_exclusive(int fd) {
    if (int err = fault::hit("flock")) return fail(E_errno("flock", "LOCK_EX", err));
    int rc;
    do {
        rc = ::flock(fd, LOCK_EX | LOCK_NB);
    } while (rc != 0 && errno == EINTR);
    if (rc == 0) return true;
    if (errno == EWOULDBLOCK) return false;
    return fail(E_errno("flock", "LOCK_EX", errno));
}

Result<void> unlock(int fd) {
    if (::flock(fd, LOCK_UN) != 0) return fail(E_errno("flock", "LOCK_UN", errno));
    return {};
}

Result<bool> has_exclusive_flock(int fd, int* holder) {
    if (holder) *holder = 0;
    struct stat st {};
    if (::fstat(fd, &st) != 0) return fail(E_errno("fstat", "", errno));
    if (int err = fault::hit("open")) return fail(E_errno("open", "/proc/locks", err));
    // /proc/locks lines: "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; blocked waiters
    // carry "->" before FLOCK (we never block, others might) and are not holders.
    std::FILE* f = std::fopen("/proc/locks", "re");
    if (!f) return fail(E_errno("open", "/proc/locks", errno));
    const unsigned want_major = major(st.st_dev);
    const unsigned want_minor = minor(st.st_dev);
    char line[256];
    bool found = false;
    bool dev_seen = false;  // did any FLOCK line carry our device number?
    int ino_only_pid = -1;  // a WRITE lock on our inode number under another device number
    while (!found && std::fgets(line, sizeof line, f)) {
        char kind[16] = {}, adv[16] = {}, rw[16] = {};
        int pid = 0;
        unsigned maj = 0, min = 0;
        unsigned long long ino = 0;
        // Waiter lines ("1: -> FLOCK ...") do not parse to 7 fields and are skipped.
        if (std::sscanf(line, "%*d: %15s %15s %15s %d %x:%x:%llu", kind, adv, rw, &pid, &maj, &min,
                        &ino) != 7)
            continue;
        if (std::string_view(kind) != "FLOCK") continue;
        const bool same_dev = maj == want_major && min == want_minor;
        dev_seen = dev_seen || same_dev;
        if (std::string_view(rw) != "WRITE" || ino != st.st_ino) continue;
        if (same_dev) {
            found = true;
            if (holder) *holder = pid;
        } else {
            ino_only_pid = pid;
        }
    }
    // On overlayfs the lock is recorded on the underlying file system's device, which fstat
    // does not show; then the inode number alone has to do.
    if (!found && !dev_seen && ino_only_pid >= 0) {
        found = true;
        if (holder) *holder = ino_only_pid;
    }
    std::fclose(f);
    return found;
}

Result<FileId> fstat_id(int fd) {
    if (int err = fault::hit("fstat")) return fail(E_errno("fstat", "", err));
    struct stat st {};
    if (::fstat(fd, &st) != 0) return fail(E_errno("fstat", "", errno));
    return FileId{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
}

Result<FileId> lstat_id(const std::string& path) {
    if (int err = fault::hit("lstat")) return fail(E_errno("lstat", path, err));
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return fail(E_errno("lstat", path, errno));
    return FileId{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
}

bool is_symlink(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

Result<void> write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        if (int err = fault::hit("write")) return fail(E_errno("write", "", err));
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;  // nothing was written; retry is exact
            return fail(E_errno("write", "", errno));
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
}

Result<std::string> read_all(int fd, std::size_t max) {
    std::string out;
    char buf[4096];
    for (;;) {
        if (int err = fault::hit("read")) return fail(E_errno("read", "", err));
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail(E_errno("read", "", errno));
        }
        if (n == 0) return out;
        if (out.size() + static_cast<std::size_t>(n) > max)
            return fail(E_errno("read", "more than " + std::to_string(max) + " bytes", EFBIG));
        out.append(buf, static_cast<std::size_t>(n));
    }
}

Result<std::string> read_file(const std::string& path, std::size_t max) {
    auto fd = open_impl(path, O_RDONLY, 0);
    if (!fd) return fail(fd.error());
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0) return fail(E_errno("fstat", path, errno));
    // A directory opens, then fails to read with EISDIR anyway: say so before reading.
    if (S_ISDIR(st.st_mode)) return fail(E_errno("open", path, EISDIR));
    return read_all(fd->get(), max);
}

Result<void> truncate(int fd, std::uint64_t size) {
    if (int err = fault::hit("ftruncate")) return fail(E_errno("ftruncate", "", err));
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0)
        return fail(E_errno("ftruncate", "", errno));
    return {};
}

Result<void> set_mode(int fd, unsigned mode) {
    if (int err = fault::hit("fchmod")) return fail(E_errno("fchmod", "", err));
    if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) return fail(E_errno("fchmod", "", errno));
    return {};
}

Result<void> seek_start(int fd) {
    if (::lseek(fd, 0, SEEK_SET) < 0) return fail(E_errno("lseek", "", errno));
    return {};
}

Result<void> fsync(int fd) {
    if (int err = fault::hit("fsync")) return fail(E_errno("fsync", "", err));
    // fsync is not interrupted by signals on Linux (it sleeps uninterruptibly); EINTR would be
    // a filesystem quirk, and retrying is harmless.
    int rc;
    do {
        rc = ::fsync(fd);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) return fail(E_errno("fsync", "", errno));
    return {};
}

Result<void> rename(const std::string& from, const std::string& to) {
    if (int err = fault::hit("rename")) return fail(E_errno("rename", from + " -> " + to, err));
    if (::rename(from.c_str(), to.c_str()) != 0)
        return fail(E_errno("rename", from + " -> " + to, errno));
    return {};
}

Result<void> unlink(const std::string& path) {
    if (int err = fault::hit("unlink")) return fail(E_errno("unlink", path, err));
    if (::unlink(path.c_str()) != 0) return fail(E_errno("unlink", path, errno));
    return {};
}

Result<void> make_dirs(const std::string& path, unsigned mode) {
    if (path.empty()) return fail(E_errno("mkdir", "empty path", EINVAL));
    // Walk the prefixes: each existing one is left alone (its mode is not ours to change).
    std::size_t pos = 0;
    while (pos != std::string::npos) {
        pos = path.find('/', pos + 1);
        const std::string part = path.substr(0, pos);
        if (part.empty() || part == "/") continue;
        struct stat st {};
        if (::stat(part.c_str(), &st) == 0) {
            if (!S_ISDIR(st.st_mode)) return fail(E_errno("mkdir", part, ENOTDIR));
            continue;
        }
        if (int err = fault::hit("mkdir")) return fail(E_errno("mkdir", part, err));
        if (::mkdir(part.c_str(), static_cast<mode_t>(mode)) != 0 && errno != EEXIST)
            return fail(E_errno("mkdir", part, errno));
    }
    return {};
}

Result<std::vector<std::string>> list_dir(const std::string& path) {
    if (int err = fault::hit("opendir")) return fail(E_errno("opendir", path, err));
    auto fd = open_impl(path, O_RDONLY | O_DIRECTORY, 0);
    if (!fd) return fail(E_errno("opendir", path, fd.error().code()));
    DIR* d = ::fdopendir(fd->get());
    if (!d) return fail(E_errno("opendir", path, errno));
    (void)fd->release();  // owned by d now
    std::vector<std::string> out;
    errno = 0;
    while (dirent* e = ::readdir(d)) {
        std::string_view name(e->d_name);
        if (name != "." && name != "..") out.emplace_back(name);
    }
    const int err = errno;
    ::closedir(d);
    if (err != 0) return fail(E_errno("readdir", path, err));
    return out;
}

Result<unsigned> mode_of(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return fail(E_errno("lstat", path, errno));
    return static_cast<unsigned>(st.st_mode & 07777);
}

Result<void> check_private_dir(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return fail(E_errno("lstat", path, errno));
    if (S_ISLNK(st.st_mode)) return fail(Error("lstat", path + ": is a symbolic link", EPERM));
    if (!S_ISDIR(st.st_mode)) return fail(Error("lstat", path + ": not a directory", ENOTDIR));
    if (st.st_uid != ::geteuid())
        return fail(Error(
            "lstat", path + ": owned by uid " + std::to_string(st.st_uid) + ", not by us", EPERM));
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        return fail(Error("lstat", path + ": writable by group or others", EPERM));
    return {};
}

bool process_alive(int pid) noexcept {
    if (pid <= 0) return false;
    return ::kill(pid, 0) == 0 || errno == EPERM;
}

int self_pid() noexcept {
    return static_cast<int>(::getpid());
}

}  // namespace core::sys::file
