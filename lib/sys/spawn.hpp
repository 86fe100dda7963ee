// Starting a child with posix_spawn: no user code runs in the child between fork and exec, the
// child sees exactly fds 0, 1, 2, default signal dispositions and an empty signal mask.
// Also PATH resolution and environment merging. Stateless; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace core::sys {

struct SpawnSpec {
    const char* path = nullptr;   // the executable, already resolved (see find_executable)
    char* const* argv = nullptr;  // null-terminated; argv[0] is the command as given
    char* const* envp = nullptr;  // null-terminated; null: the parent's environ
    const char* dir = nullptr;    // chdir in the child (after the dup2s); null: inherit
    int stdin_fd = -1;            // dup2'd onto 0; -1: inherit ours
    int stdout_fd = -1;           // dup2'd onto 1; -1: inherit ours
    int stderr_fd = -1;           // dup2'd onto 2; -1: inherit ours
    bool new_group = false;       // setpgid(0, 0): the child leads a new process group
    bool new_session = false;     // setsid(): new session (and group)
};

// posix_spawn with the hygiene above; returns the child's pid. The exec's errno (ENOENT,
// EACCES, ENOEXEC: no /bin/sh retry) comes back as the Error's code. Errors: EAGAIN, ENOMEM,
// EMFILE from the kernel; the exec's errno.
Result<int> spawn(const SpawnSpec& spec);

// Resolves command as execvp would, but against path_var (the PATH of the child's environment
// when it sets one, else ours) and, for a relative command containing '/', against dir. A
// command containing '/' is not searched. Errors: ENOENT (not found anywhere), EACCES (found but
// not executable), naming the command.
Result<std::string> find_executable(const std::string& command, std::string_view path_var,
                                    const std::string& dir);

// The parent's environment: the value of name, or null.
const char* parent_getenv(const char* name) noexcept;
// The parent's environ (for envp when no variable is overridden).
char* const* parent_environ() noexcept;
// The parent's environment with overrides ("K=V") applied, last wins, order kept.
std::vector<std::string> merge_env(const std::vector<std::string>& overrides);

}  // namespace core::sys
