// The supervisor's state file (SupervisorOptions::state_file): written by the supervisor
// thread, read by find_survivors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/process/supervisor.hpp"

namespace core::process::detail {

// Replaces the file with these running daemons (JSON: {"supervisor_pid", "daemons":[{"name",
// "pid", "start_time"}]}), mode 0600. Errors: the open, write or rename failure.
Result<void> write_state_file(const std::string& path, const std::vector<Survivor>& running);
// Field 22 of /proc/<pid>/stat, 0 when unknown.
std::uint64_t start_time_of(int pid);

}  // namespace core::process::detail
