// Containment and identity of a child: a cgroup v2 of its own with limits, and the credentials,
// umask, resource limits, nice value and parent-death signal it starts with. Plain values,
// appended to RunOptions (RunOptions::cgroup, ::limits, ::identity); applied only on the clone3
// spawn path (on the posix_spawn path each set option is an Error naming it).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/export.hpp"
#include "core/result.hpp"

namespace core::process {

// Limits of the child's cgroup (any set one implies RunOptions::cgroup). Each needs its
// controller delegated to the parent cgroup: asking for one that is not is an Error naming the
// controller and the cgroup, never silently ignored.
struct Limits {
    std::optional<std::uint64_t> memory_max;       // bytes: memory.max (memory controller)
    std::optional<std::uint64_t> memory_swap_max;  // bytes: memory.swap.max (memory)
    std::optional<std::uint64_t> pids_max;         // tasks: pids.max (pids)
    std::optional<double> cpu_max;                 // cores: cpu.max = cores × 100 ms per 100 ms
    std::optional<std::uint32_t> io_weight;        // 1…10000: io.weight (io)
    bool any() const noexcept {
        return memory_max || memory_swap_max || pids_max || cpu_max || io_weight;
    }
    bool operator==(const Limits&) const = default;
};

// One resource limit: resource is an RLIMIT_* number (see parse_rlimit for names); values as
// rlim_t, UINT64_MAX (RLIM_INFINITY) meaning unlimited.
struct Rlimit {
    int resource = 0;
    std::uint64_t soft = 0;
    std::uint64_t hard = 0;
    bool operator==(const Rlimit&) const = default;
};

// Who the child runs as and with what, set in the child before exec (raw syscalls).
struct Identity {
    std::optional<std::uint32_t> uid;  // setresuid; with a uid and no groups: no supplementary
    std::optional<std::uint32_t> gid;  // setresgid                         groups at all
    std::optional<std::vector<std::uint32_t>> groups;  // setgroups, by number
    std::optional<std::uint32_t> umask;                // e.g. 022
    std::vector<Rlimit> rlimits;                       // applied in order, before the uid change
    std::optional<int> nice;                           // setpriority, -20…19
    bool no_new_privs = false;                         // PR_SET_NO_NEW_PRIVS
    // PR_SET_PDEATHSIG, after the uid change, with the getppid() re-check. It fires when the
    // spawning THREAD exits (not the process): spawn from a long-lived thread. 0: none.
    int parent_death_signal = 0;
    bool any() const noexcept {
        return uid || gid || groups || umask || !rlimits.empty() || nice || no_new_privs ||
               parent_death_signal != 0;
    }
    bool operator==(const Identity&) const = default;
};

// What the cgroup counted for a finished child (ProcessInfo). Fields are 0 when not accounted
// (no cgroup, or the controller is not enabled there).
struct Accounting {
    bool accounted = false;                  // the child had a cgroup
    std::uint64_t memory_peak = 0;           // bytes: memory.peak (memory controller, 5.19+)
    std::uint64_t memory_current = 0;        // bytes: memory.current (while running)
    std::chrono::microseconds cpu_usage{0};  // cpu.stat usage_usec (always available)
    std::uint64_t oom_kills = 0;             // memory.events oom_kill
};

// "64M", "1.5G", "512k", "4096" (bytes; K/M/G/T are powers of 1024, an optional trailing
// "B"/"iB"), or "max" (UINT64_MAX). Errors: EINVAL naming what is wrong.
CORE_API Result<std::uint64_t> parse_size(std::string_view text);
// The inverse, for messages: 67108864 → "64M".
CORE_API std::string format_size(std::uint64_t bytes);
// "nofile=64", "nofile=64:128", "core=unlimited", "RLIMIT_NPROC=100:max".
CORE_API Result<Rlimit> parse_rlimit(std::string_view text);
// An RLIMIT_* by name ("nofile", "NOFILE", "RLIMIT_NOFILE").
CORE_API Result<int> parse_rlimit_resource(std::string_view name);
// A user by name or number: its uid; *primary_gid gets its passwd group (the number itself for
// an unknown number), *groups its supplementary groups (getgrouplist) when given.
CORE_API Result<std::uint32_t> resolve_user(std::string_view name_or_uid,
                                            std::uint32_t* primary_gid = nullptr,
                                            std::vector<std::uint32_t>* groups = nullptr);
// A group by name or number.
CORE_API Result<std::uint32_t> resolve_group(std::string_view name_or_gid);
// An octal umask ("022", "0027"). Errors: EINVAL.
CORE_API Result<std::uint32_t> parse_umask(std::string_view text);

}  // namespace core::process
