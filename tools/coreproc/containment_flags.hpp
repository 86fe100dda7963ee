// coreproc run's containment and identity flags (issue 13): --cgroup, --memory-max, --pids-max,
// --cpu-max, --user, --group, --umask, --rlimit, --nice, into RunOptions.
#pragma once

#include <string>
#include <vector>

#include "core/process/types.hpp"

namespace CLI {
class App;
}

namespace coreproc {

struct ContainmentArgs {
    bool cgroup = false;
    std::string memory_max;            // SIZE: 64M, 1G, max
    std::string pids_max;              // N
    std::string cpu_max;               // CORES: 1.5
    std::string user;                  // NAME|UID
    std::string group;                 // NAME|GID
    std::string umask;                 // OCTAL
    std::vector<std::string> rlimits;  // NAME=SOFT[:HARD]
    std::string nice;                  // N
};

// Adds the flags to the run subcommand.
void add_containment_flags(CLI::App& run, ContainmentArgs& a);
// Fills o from the flags. Returns an error message for bad values (usage error), else empty.
std::string apply_containment_flags(const ContainmentArgs& a, core::process::RunOptions& o);

}  // namespace coreproc
