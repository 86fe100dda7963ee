// PID files that cannot lie: the file is locked (flock, exclusive) for the owner's whole
// lifetime, so a reader trusts the PID in it only while the lock is held (PITFALLS: recycled
// PIDs in stale files).
#pragma once

#include <string>

#include "core/export.hpp"
#include "core/result.hpp"

namespace core::process {

// What read_pid() found. alive means "the file is locked by a live holder": a PID written in an
// unlocked file is never reported alive, even if some process now has that number.
struct PidInfo {
    int pid = 0;  // 0 when the file holds no valid PID
    bool alive = false;
};

// PidFile owns one PID file: acquire() creates/locks/writes it, release() (or the destructor)
// removes it while still holding the lock. Move-only; one object is used by one thread at a
// time. The lock is per open file description, so a second PidFile on the same path conflicts
// even inside the same process.
class CORE_API PidFile {
  public:
    explicit PidFile(std::string path);
    ~PidFile();  // release(), errors ignored
    PidFile(PidFile&& o) noexcept;
    PidFile& operator=(PidFile&& o) noexcept;
    PidFile(const PidFile&) = delete;
    PidFile& operator=(const PidFile&) = delete;

    // Creates the parent directory (0755) if missing, opens the file (0644, O_NOFOLLOW:
    // a symlink is refused), takes a non-blocking exclusive flock, truncates it and writes
    // "<pid>\n" (fsync'd). A stale file (unlocked: dead PID, garbage, empty) is taken over.
    // Errors: held by another owner ("pidfile.acquire: <path>: held by pid <N>"), symlink,
    // empty path, already acquired by this object, I/O errors (ENOSPC…) — on a failed write the
    // file is removed and the lock dropped, so no half-written file stays claimed.
    [[nodiscard]] Result<void> acquire();
    // Removes the file (while still holding the lock) and unlocks. No-op when not held.
    [[nodiscard]] Result<void> release();

    bool held() const noexcept { return fd_ >= 0; }
    const std::string& path() const noexcept { return path_; }

  private:
    std::string path_;
    int fd_ = -1;  // the locked file; owned (closed in release)
};

// Reads the PID from path and whether a live holder has it locked.
// Errors: missing file (code ENOENT), symlink, unreadable. Garbage content is not an error:
// pid 0, alive = whether someone holds the lock anyway.
[[nodiscard]] CORE_API Result<PidInfo> read_pid(const std::string& path);

}  // namespace core::process
