// The containment and identity options between the public RunOptions and lib/sys: parsing the
// action keys, checking the values, and filling a SpawnSpec. Internal.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/options.hpp"
#include "core/process/types.hpp"
#include "core/result.hpp"
#include "sys/spawn.hpp"

namespace core::process::detail {

class Cgroup;

// Storage behind the pointers a SpawnSpec gets; must outlive the spawn call.
struct IdentitySpec {
    std::vector<std::uint32_t> groups;
    std::vector<sys::SpawnRlimit> rlimits;
};

// Checks o.identity and o.limits (ranges), naming the option on an Error.
Result<void> check_containment(const std::string& op, const RunOptions& o);
// Fills spec's identity fields from id, with store behind its pointers. A uid without groups
// drops every supplementary group (setgroups 0), so that a child of root does not keep root's.
void apply_identity(const Identity& id, IdentitySpec& store, sys::SpawnSpec& spec);
// Whether a cgroup is wanted (cgroup or any limit).
inline bool wants_cgroup(const RunOptions& o) {
    return o.cgroup || o.limits.any();
}
// The cgroup for a start: found under configured_parent, created with o.limits.
Result<std::shared_ptr<Cgroup>> make_cgroup(const std::string& op, const std::string& parent,
                                            const RunOptions& o);

// The action keys cgroup, memoryMax, memorySwapMax, pidsMax, cpuMax, ioWeight, user, group,
// groups, umask, rlimits, nice, noNewPrivs, parentDeathSignal into o (Service::parse_options
// calls it). Errors name the key.
Result<void> parse_containment_options(const std::string& op, const Options& opts, RunOptions& o);

}  // namespace core::process::detail
