// Resource use of one running process for the control plane's dashboard and /daemons: memory
// and CPU from the process's own cgroup v2 (memory.current, cpu.stat usage_usec) when it has
// one of its own, else from /proc/PID/status VmRSS and /proc/PID/stat utime+stime (the main
// process alone, not its children), and how long it has run (/proc/PID/stat starttime against
// /proc/uptime). Reads procfs and cgroupfs only; no policy. Thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "core/result.hpp"

namespace core::sys::procstat {

struct Usage {
    std::uint64_t memory_bytes = 0;
    std::string memory_source{};  // "cgroup" (memory.current) or "proc" (VmRSS)
    double cpu_seconds = 0;
    std::string cpu_source{};   // "cgroup" (cpu.stat usage_usec) or "proc" (utime+stime)
    double uptime_seconds = 0;  // since the process started (0 when unknown)
    std::string cgroup{};       // the process's v2 cgroup ("/…"), empty without one
};

// A cgroup counts as the process's own when it differs from this process's (the supervisor's):
// a daemon that shares our cgroup would otherwise be charged for the supervisor and every
// other daemon in it. Errors: ESRCH (or the open's errno) when /proc/PID is gone; EINVAL for
// pid <= 0.
Result<Usage> of_pid(int pid);

}  // namespace core::sys::procstat
