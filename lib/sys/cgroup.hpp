// cgroup v2 file-system calls: finding the v2 mount and our own cgroup, creating, opening and
// removing cgroup directories, reading and writing their interface files, waiting for a
// cgroup.events change (the kernel signals it as POLLPRI on that file). No policy here. Every
// descriptor CLOEXEC from birth; every call fault-seamed (names: "mkdir", "rmdir", "openat",
// "cgroup_read", "cgroup_write", "poll"). Thread-safe.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "sys/fd.hpp"

namespace core::sys::cgroup {

// The mount point of the cgroup2 file system, from /proc/self/mountinfo (the first one).
// Errors: ENOENT when none is mounted.
Result<std::string> mount_point();
// Whether v1 hierarchies are mounted too (a "hybrid" host).
bool hybrid();
// Our own v2 cgroup relative to the v2 mount ("/" or "/user.slice/…"), from the "0::" line of
// /proc/self/cgroup. Errors: ENOENT without a v2 line.
Result<std::string> self_path();

// mkdir(path, 0755). EEXIST is an error (our names are unique).
Result<void> make(const std::string& path);
// rmdir(path): EBUSY while populated; ENOENT is success (already gone).
Result<void> remove(const std::string& path);
// open(path, O_RDONLY|O_DIRECTORY|O_CLOEXEC): for CLONE_INTO_CGROUP and the *at calls.
Result<UniqueFd> open_dir(const std::string& path);
// 0 when path exists, else the errno of access(path, F_OK).
int missing(const std::string& path) noexcept;
// Whether we may create cgroups in path (access W_OK on it and on its cgroup.procs).
bool writable(const std::string& path);

// The interface file name in the cgroup dirfd refers to, whole (they are small). ENOENT: the
// file does not exist (controller not enabled there).
Result<std::string> read(int dirfd, const char* name);
// Writes value to the file in one write(2), as the kernel wants it (one value per write).
Result<void> write(int dirfd, const char* name, std::string_view value);
// Opens the file for polling (cgroup.events).
Result<UniqueFd> open_file(int dirfd, const char* name);
// The value of key in a flat-keyed file's text ("populated 0\nfrozen 0\n"); -1 when absent.
long long keyed(std::string_view text, std::string_view key);
// The pids listed in cgroup.procs.
Result<std::vector<int>> procs(int dirfd);
// Waits until cgroup.events (fd from open_file) says populated 0, or the timeout passes.
// True: empty. Sleeps in poll(POLLPRI), re-reading the file after each wake-up.
Result<bool> wait_unpopulated(int events_fd, std::chrono::milliseconds timeout);

}  // namespace core::sys::cgroup
