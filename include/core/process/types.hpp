// Value types of the process service: status, options, info and the IPC events.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "core/export.hpp"

namespace core::process {

enum class Status { pending, running, exited, killed, failed };
CORE_API const char* to_string(Status s) noexcept;

enum class Stream { stdout_, stderr_ };
CORE_API const char* to_string(Stream s) noexcept;

struct ProcessInfo {
    std::string id;
    int pid = 0;
    std::string command;
    std::vector<std::string> args;
    std::string dir;
    bool running = false;
    Status status = Status::pending;
    int exit_code = 0;  // -1 when killed by a signal
    int signal = 0;     // the signal that killed it, else 0
    std::chrono::system_clock::time_point started_at{};
    std::chrono::nanoseconds duration{0};  // so far, while running
    std::size_t output_dropped = 0;        // bytes dropped from the front of the output
    // Set once finished, unless it exited with code 0: "exited with code N", "killed by
    // signal N (SIGX)", "timed out after D", the cancelled context's reason, or why the
    // process failed (status failed). Empty while running.
    std::string error;
};

struct RunOptions {
    std::string command;            // a name looked up in PATH, or a path
    std::vector<std::string> args;  // argv[1…]; passed verbatim, no shell ever
    std::string dir;                // working directory; empty: inherit
    std::vector<std::string> env;   // "K=V", merged over the inherited environment, last wins
    std::chrono::milliseconds timeout{0};         // 0: none; on expiry, kill
    std::chrono::milliseconds grace_period{5000};  // SIGTERM→SIGKILL delay; 0: SIGKILL at once
    bool kill_group = false;  // start in a new process group and signal the whole group
    // start: not tied to the caller's context and in a new session (setsid: terminal signals
    // do not reach it; kill() signals its group); still stopped at shutdown. run ignores it.
    bool detach = false;
    bool capture = true;      // keep combined stdout+stderr; false: children inherit ours
    // Newest bytes kept; older ones dropped (counted in ProcessInfo::output_dropped). Also the
    // piece size in which a longer line reaches ProcessOutput events.
    std::size_t max_output = std::size_t{1} << 20;
    // Written to stdin by the reaper without blocking, then stdin is closed. Without input or
    // keep_stdin, stdin is /dev/null.
    std::optional<std::string> input;
    bool keep_stdin = false;  // stdin stays a pipe for write_input()/close_input(); not with input
};

// IPC events broadcast on the Core bus (as Values holding these types).
struct ProcessStarted {
    std::string id;
    std::string command;
    std::vector<std::string> args;
    std::string dir;
    int pid = 0;
};
struct ProcessOutput {
    std::string id;
    std::string line;  // without its newline
    Stream stream = Stream::stdout_;
};
struct ProcessKilled {
    std::string id;
    int signal = 0;
};
struct ProcessExited {
    std::string id;
    int exit_code = 0;
    std::chrono::nanoseconds duration{0};
    std::string error;  // empty on a clean exit
};

}  // namespace core::process
