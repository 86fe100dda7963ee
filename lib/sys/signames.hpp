// Signal numbers and names for code above lib/sys (which may not include <csignal>): the stop
// signal of a daemon spec, config files that say "SIGTERM". Pure functions, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace core::sys::signames {

int term() noexcept;  // SIGTERM
int kill() noexcept;  // SIGKILL
// The highest valid signal number (SIGRTMAX).
int max() noexcept;
// "SIGTERM", "TERM", "term", "SIGRTMIN+2" or a decimal number in [1, max()]; nullopt otherwise.
std::optional<int> parse(std::string_view text) noexcept;
// "SIGTERM"; "SIG<n>" for a number without a name.
std::string name(int sig);

}  // namespace core::sys::signames
