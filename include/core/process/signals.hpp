// Signal names and numbers for specs, configs and messages: "SIGTERM" ⇄ 15. Here rather than in
// the Supervisor's header, so a tool that only names a signal (coreproc run) includes only this.
#pragma once

#include <string>
#include <string_view>

#include "core/export.hpp"
#include "core/result.hpp"

namespace core::process {

// "SIGTERM", "TERM", "term" or "15". Errors: an unknown name, a number out of range.
CORE_API Result<int> parse_signal(std::string_view text);
// "SIGTERM", or "SIG<n>" for a number without a name.
CORE_API std::string signal_name(int sig);

}  // namespace core::process
