// Shared plumbing of the coreproc subcommands: the stderr logger, the Core they run on, JSON
// and table output, and the SIGTERM/SIGINT wait that turns a signal into a cancelled Context.
#pragma once

#include <chrono>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/core.hpp"

namespace spdlog {
class logger;
}

namespace coreproc {

// Exit codes shared by every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // pipeline: a step failed
inline constexpr int kExitUsage = 2;   // bad flags, unreadable or invalid files
inline constexpr int kExitTimeout = 124;
inline constexpr int kExitCannotStart = 127;
inline constexpr int kExitSignalBase = 128;

// What every subcommand gets from main().
struct Globals {
    std::shared_ptr<spdlog::logger> log;  // to stderr; never registered with spdlog
    bool json = false;
};

// A logger writing to stderr at level warn (verbose 1: info, 2: debug), unregistered.
std::shared_ptr<spdlog::logger> make_logger(int verbose);

// A started Core with the process service (and, with daemons, the supervisor's "daemon"
// service), logging through log. Errors: a failing startup.
core::Result<std::shared_ptr<core::Core>> start_core(const std::shared_ptr<spdlog::logger>& log);

// The signals that stop a command (SIGTERM, SIGINT, SIGHUP; `supervise` reads SIGHUP as reload).
extern const std::vector<int> kStopSignals;
// Called by main() before any thread starts: SIGPIPE ignored process-wide, and (block) the
// kStopSignals blocked so that a signalfd reads them. Errors: sigaction, pthread_sigmask.
core::Result<void> prepare_signals(bool block);

// Runs work(ctx) on a worker thread while this thread waits for SIGTERM, SIGINT or SIGHUP
// (main() blocked them before any thread existed); a signal cancels ctx, and work is expected
// to return soon after. Returns the signal received, 0 when work ended on its own.
int run_interruptible(const std::shared_ptr<spdlog::logger>& log,
                      const std::function<void(const core::Context&)>& work);

// JSON text that never throws: invalid UTF-8 in command output is replaced (U+FFFD).
std::string dump(const nlohmann::json& j, int indent = 2);

// "850ms", "1.25s", "2m03s".
std::string human_duration(std::chrono::nanoseconds d);
// Milliseconds as a JSON number with microsecond precision.
double millis(std::chrono::nanoseconds d);

// Left-aligned columns separated by two spaces; the header row first.
void print_table(std::ostream& out, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows);

// The last max_lines lines of text, each prefixed with prefix.
std::string tail_lines(const std::string& text, std::size_t max_lines, const std::string& prefix);

// The path of this executable (/proc/self/exe), empty when unknown.
std::string self_path();

}  // namespace coreproc
