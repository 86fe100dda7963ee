// File-system wrappers for PID files and the daemon registry: every descriptor CLOEXEC from
// birth, symlinks never followed where a file is opened for writing, every fallible call
// fault-seamed (fault names are the syscalls': "open", "flock", "write", "fsync", …).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "sys/fd.hpp"

namespace core::sys::file {

// Identity of a file (st_dev, st_ino).
struct FileId {
    std::uint64_t dev = 0;
    std::uint64_t ino = 0;
    bool operator==(const FileId&) const = default;
};

// open(path, O_RDWR|O_CREAT|O_NOFOLLOW|O_CLOEXEC, mode). A symlink fails with ELOOP.
Result<UniqueFd> open_rw_create(const std::string& path, unsigned mode);
// open(path, O_RDONLY|O_NOFOLLOW|O_CLOEXEC).
Result<UniqueFd> open_read(const std::string& path);
// open(path, O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, mode) then fchmod(mode) (the umask
// must not decide the mode of a file whose mode we document).
Result<UniqueFd> create_exclusive(const std::string& path, unsigned mode);
// open(path, O_RDONLY|O_DIRECTORY|O_CLOEXEC), for fsync of a directory.
Result<UniqueFd> open_dir(const std::string& path);

// flock(fd, LOCK_EX|LOCK_NB): true when taken, false when another open file description holds
// a lock (EWOULDBLOCK). EINTR is retried (a non-blocking flock cannot hang).
Result<bool> try_lock_exclusive(int fd);
// flock(fd, LOCK_UN).
Result<void> unlock(int fd);
// Whether some open file description holds an exclusive flock on the file fd refers to, without
// taking any lock ourselves (a probing LOCK_SH would make a concurrent acquirer fail): scans
// /proc/locks for a FLOCK WRITE entry on the file's device and inode. *holder gets the pid the
// kernel recorded (0 if unknown).
Result<bool> has_exclusive_flock(int fd, int* holder = nullptr);

Result<FileId> fstat_id(int fd);
// lstat(path): the identity of the path itself (a symlink is not followed). ENOENT → code.
Result<FileId> lstat_id(const std::string& path);
// True when path is a symlink; false when it is anything else or missing.
bool is_symlink(const std::string& path);

// Writes all of data at the current offset (EINTR retried: write on a regular file is restartable).
Result<void> write_all(int fd, std::string_view data);
// Reads to EOF, at most max bytes (more: EFBIG).
Result<std::string> read_all(int fd, std::size_t max);
// A user's file whole (symlinks followed, as for any config file), at most max bytes.
// Errors carry the errno: the open's, EISDIR for a directory, EFBIG when larger than max.
Result<std::string> read_file(const std::string& path, std::size_t max);
Result<void> truncate(int fd, std::uint64_t size);
// fchmod(fd, mode): the documented mode, whatever the umask.
Result<void> set_mode(int fd, unsigned mode);
Result<void> seek_start(int fd);
Result<void> fsync(int fd);
Result<void> rename(const std::string& from, const std::string& to);
// unlink(path). ENOENT is reported (code ENOENT); callers decide whether it matters.
Result<void> unlink(const std::string& path);
// mkdir -p: creates the missing directories of path with mode (existing ones are left as
// they are). An existing non-directory fails with ENOTDIR.
Result<void> make_dirs(const std::string& path, unsigned mode);
// The names in a directory (without "." and ".."). ENOENT → code.
Result<std::vector<std::string>> list_dir(const std::string& path);
// The file's permission bits (st_mode & 07777), following nothing (lstat).
Result<unsigned> mode_of(const std::string& path);

// Refuses a directory another user could tamper with: path must be a real directory (not a
// symlink), owned by our effective uid, and not writable by group or others. Errors: EPERM
// (with what is wrong), lstat errors.
Result<void> check_private_dir(const std::string& path);

// Whether a process with this pid exists (kill(pid, 0): 0 or EPERM). pid <= 0 → false.
bool process_alive(int pid) noexcept;
// getpid().
int self_pid() noexcept;

}  // namespace core::sys::file
