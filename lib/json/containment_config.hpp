// The supervise file's containment and identity keys of one daemon (issue 13): "cgroup",
// "limits" {"memory", "memory_swap", "pids", "cpu", "io_weight"}, "user", "group", "groups",
// "umask", "rlimits" {"nofile": 4096, "core": "unlimited", "nproc": "100:200"}, "nice",
// "no_new_privs", "parent_death_signal". The supervise file's reader calls it for each daemon
// object, the pipeline file's for each step and for "defaults" (one reader, the same messages).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/process/containment.hpp"
#include "core/result.hpp"

namespace core::process::detail {

// The keys parse_containment_keys reads, for the reader's unknown-key check.
inline constexpr const char* containment_config_keys[] = {
    "cgroup", "limits",  "user", "group",        "groups",
    "umask",  "rlimits", "nice", "no_new_privs", "parent_death_signal"};

// Reads those keys of daemon (an object) into the three outputs. Errors: a message naming the
// key (`key "limits.memory": …`), code EINVAL; the caller prefixes the file and daemon.
Result<void> parse_containment_keys(const nlohmann::json& daemon, bool& cgroup, Limits& limits,
                                    Identity& identity);

}  // namespace core::process::detail
