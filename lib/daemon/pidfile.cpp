#include "core/process/pidfile.hpp"

#include <cerrno>
#include <charconv>
#include <utility>

#include "sys/fd.hpp"
#include "sys/file.hpp"

namespace core::process {

namespace file = core::sys::file;
using sys::UniqueFd;

namespace {

constexpr unsigned kFileMode = 0644;
constexpr unsigned kDirMode = 0755;
// Each retry means the file we locked was unlinked or replaced between our open and our lock
// (its owner released it); a handful suffices unless something is churning the path.
constexpr int kAttempts = 8;

std::string parent_dir(const std::string& path) {
    const std::size_t slash = path.rfind('/');
    if (slash == std::string::npos || slash == 0) return {};
    return path.substr(0, slash);
}

// "1234\n" → 1234; anything else (empty, garbage, out of range, <= 0) → 0.
int parse_pid(std::string_view s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' '))
        s.remove_suffix(1);
    int pid = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), pid);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size() || pid <= 0) return 0;
    return pid;
}

Error symlink_error(const char* op, const std::string& path) {
    return Error(op, path + ": is a symbolic link; refusing to follow it", ELOOP);
}

// The PID recorded in an open PID file (0 when unreadable or garbage).
int read_pid_from(int fd) {
    if (!file::seek_start(fd)) return 0;
    auto text = file::read_all(fd, 64);
    return text ? parse_pid(*text) : 0;
}

}  // namespace

PidFile::PidFile(std::string path) : path_(std::move(path)) {}

PidFile::~PidFile() {
    (void)release();
}

PidFile::PidFile(PidFile&& o) noexcept : path_(std::move(o.path_)), fd_(std::exchange(o.fd_, -1)) {}

PidFile& PidFile::operator=(PidFile&& o) noexcept {
    if (this != &o) {
        (void)release();
        path_ = std::move(o.path_);
        fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
}

Result<void> PidFile::acquire() {
    constexpr const char* op = "pidfile.acquire";
    if (path_.empty()) return fail(Error(op, "empty path", EINVAL));
    if (held()) return fail(Error(op, path_ + ": already acquired by this PidFile", EALREADY));
    if (const std::string dir = parent_dir(path_); !dir.empty()) {
        if (auto r = file::make_dirs(dir, kDirMode); !r) return fail(E(op, path_, r.error()));
    }
    for (int attempt = 0; attempt < kAttempts; ++attempt) {
        auto fd = file::open_rw_create(path_, kFileMode);
        if (!fd) {
            if (fd.error().code() == ELOOP) return fail(symlink_error(op, path_));
            return fail(E(op, path_, fd.error()));
        }
        auto locked = file::try_lock_exclusive(fd->get());
        if (!locked) return fail(E(op, path_, locked.error()));
        if (!*locked) {
            int holder = read_pid_from(fd->get());
            if (holder == 0) (void)file::has_exclusive_flock(fd->get(), &holder);
            const std::string who =
                holder > 0 ? "pid " + std::to_string(holder) : "another process";
            return fail(Error(op, path_ + ": held by " + who, EWOULDBLOCK));
        }
        // We hold a lock on the file we opened; make sure it is still the one at path_. Its
        // previous owner may have unlinked it between our open and our lock (release() unlinks
        // before unlocking), and a newcomer may already own a fresh file at path_.
        auto mine = file::fstat_id(fd->get());
        if (!mine) return fail(E(op, path_, mine.error()));
        auto there = file::lstat_id(path_);
        if (!there) {
            if (there.error().code() == ENOENT) continue;
            return fail(E(op, path_, there.error()));
        }
        if (!(*there == *mine)) continue;

        // The file is ours: replace whatever a stale owner left with our PID.
        const std::string text = std::to_string(file::self_pid()) + "\n";
        // 0644 whatever the umask: readers (supervisors, scripts) run as other users. Not
        // fatal: a stale file we may write but not chmod (someone else's) still works.
        (void)file::set_mode(fd->get(), kFileMode);
        Result<void> w = file::truncate(fd->get(), 0);
        if (w) w = file::seek_start(fd->get());
        if (w) w = file::write_all(fd->get(), text);
        if (w) w = file::fsync(fd->get());
        if (!w) {
            // Never leave a half-written file that looks claimed: remove it while we still
            // hold the lock (same inode, checked above), then let the lock go with the fd.
            (void)file::unlink(path_);
            return fail(E(op, path_, w.error()));
        }
        fd_ = fd->release();
        return {};
    }
    return fail(Error(op, path_ + ": the file keeps being replaced; gave up", EAGAIN));
}

Result<void> PidFile::release() {
    if (!held()) return {};
    UniqueFd fd = UniqueFd::adopt(std::exchange(fd_, -1));
    // Unlink *before* unlocking. Otherwise: we unlock; B (who opened the same inode earlier)
    // locks it and writes its PID; we unlink → B's live PID file is gone from the namespace,
    // and C creates and locks a fresh one: two owners. Unlinking first, anyone who locks the
    // old inode afterwards sees it is no longer at the path (acquire's identity check) and
    // retries on a fresh file.
    Result<void> r;
    auto mine = file::fstat_id(fd.get());
    auto there = file::lstat_id(path_);
    if (mine && there && *mine == *there) {
        r = file::unlink(path_);
        if (!r && r.error().code() == ENOENT) r = {};
    }
    fd.reset();  // drops the lock
    if (!r) return fail(E("pidfile.release", path_, r.error()));
    return {};
}

Result<PidInfo> read_pid(const std::string& path) {
    constexpr const char* op = "pidfile.read";
    if (path.empty()) return fail(Error(op, "empty path", EINVAL));
    auto fd = file::open_read(path);
    if (!fd) {
        if (fd.error().code() == ELOOP) return fail(symlink_error(op, path));
        return fail(E(op, path, fd.error()));
    }
    auto text = file::read_all(fd->get(), 64);
    PidInfo info;
    info.pid = text ? parse_pid(*text) : 0;
    int holder = 0;
    auto locked = file::has_exclusive_flock(fd->get(), &holder);
    if (locked) {
        info.alive = *locked;
        if (info.pid == 0 && *locked) info.pid = holder;
    } else {
        // /proc/locks unreadable (no procfs): fall back to "the PID exists", which a
        // recycled PID can fool; better than nothing, documented.
        info.alive = file::process_alive(info.pid);
    }
    return info;
}

}  // namespace core::process
