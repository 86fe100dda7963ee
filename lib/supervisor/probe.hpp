// The supervisor's view of the daemon helpers' PID files and HTTP probes, behind one seam so
// that the supervisor builds (with these reporting "unavailable") before lib/daemon exists.
#pragma once

#include <chrono>
#include <string>

#include "core/process/pidfile.hpp"
#include "core/result.hpp"

namespace core::process::detail {

// read_pid(path). Errors: as read_pid (missing file: ENOENT).
Result<PidInfo> probe_pid_file(const std::string& path);
// GET url within timeout; ok on a 2xx status. Errors: connection, timeout, "status 503: …".
Result<void> probe_url(const std::string& url, std::chrono::milliseconds timeout);

}  // namespace core::process::detail
