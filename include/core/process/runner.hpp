// core::process::Runner: runs a set of commands (RunSpecs) through the process Service, in
// dependency order with independent specs in parallel (run_all), one after another
// (run_sequential) or all at once (run_parallel), always bounded by max_parallel. A Runner holds
// a reference to the Service (which must outlive it) and no other state: every method is
// thread-safe and several runs may proceed at once.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/context.hpp"
#include "core/export.hpp"
#include "core/result.hpp"

namespace core {
class Core;
}

namespace core::process {

class Service;

// One command of a pipeline.
struct RunSpec {
    std::string name;                // unique within a run; what `after` refers to
    std::string command;             // a name looked up in PATH, or a path (no shell)
    std::vector<std::string> args;   // argv[1…], verbatim
    std::string dir;                 // working directory; empty: inherit
    std::vector<std::string> env;    // "K=V", merged over the inherited environment
    std::vector<std::string> after;  // names that must finish first (run_all only)
    bool allow_failure = false;      // its failure neither skips its dependents nor fails the run
    std::chrono::milliseconds timeout{0};  // 0: none; on expiry the process group is killed
};

enum class RunStatus { passed, failed, skipped };
CORE_API const char* to_string(RunStatus s) noexcept;

// What became of one spec.
struct RunResult {
    std::string name;
    RunStatus status = RunStatus::skipped;
    bool allowed_failure = false;  // failed, but its spec allowed failure
    int exit_code = -1;            // the exit code; -1 when killed, timed out or never started
    int signal = 0;                // the signal that killed it, else 0
    bool timed_out = false;        // killed because its timeout expired
    std::string output;            // combined stdout+stderr (newest 1 MiB)
    std::chrono::nanoseconds duration{0};
    std::string error;  // why it failed or was skipped; empty when passed
};

struct RunAllResult {
    std::vector<RunResult> results;  // in input order
    std::size_t passed = 0;
    std::size_t failed = 0;  // including allowed failures
    std::size_t allowed_failures = 0;
    std::size_t skipped = 0;
    std::chrono::nanoseconds duration{0};

    // True when nothing failed except specs that allow failure, and nothing was skipped.
    bool ok() const noexcept { return failed == allowed_failures && skipped == 0; }
};

// A progress notification: a spec started (before its process is spawned) or finished (result
// set; also sent, without a started event, for a spec that is skipped).
struct RunProgress {
    enum class Kind { started, finished };
    Kind kind = Kind::started;
    std::size_t index = 0;  // position in the input
    const RunSpec* spec = nullptr;
    const RunResult* result = nullptr;  // finished only
};

struct RunnerOptions {
    // Most specs running at once; 0: the number of hardware threads (at least 1).
    std::size_t max_parallel = 0;
    // Called from the Runner's worker threads, possibly concurrently: must be thread-safe. The
    // pointers are valid during the call only. Blocking here delays that spec, nothing else.
    std::function<void(const RunProgress&)> on_progress;
};

class CORE_API Runner {
  public:
    explicit Runner(Service& service, RunnerOptions opts = {});
    // A Runner over the Core's registered process service. Errors: no "process" service.
    static Result<Runner> create(core::Core& core, RunnerOptions opts = {});

    // Runs specs in dependency order, independent ones in parallel. A spec whose dependency
    // failed (and does not allow failure) or was skipped is skipped. A cancelled ctx kills what
    // runs and skips what has not started. Errors, before anything runs: an empty name or
    // command, a duplicate name, an unknown dependency, a dependency cycle (naming the path).
    Result<RunAllResult> run_all(const Context& ctx, const std::vector<RunSpec>& specs) const;
    // Runs specs one by one in input order (`after` ignored); after the first failure that is
    // not allowed, the rest are skipped. Errors: empty name or command, duplicate name.
    Result<RunAllResult> run_sequential(const Context& ctx,
                                        const std::vector<RunSpec>& specs) const;
    // Runs every spec at once (bounded by max_parallel; `after` ignored). Errors: as
    // run_sequential.
    Result<RunAllResult> run_parallel(const Context& ctx, const std::vector<RunSpec>& specs) const;

    // The checks run_all makes before running (names, commands, dependencies, cycles).
    static Result<void> validate(const std::vector<RunSpec>& specs);

    std::size_t max_parallel() const noexcept { return max_parallel_; }

  private:
    Service* service_;
    RunnerOptions opts_;
    std::size_t max_parallel_;
};

// Reads a pipeline file: {"steps":[{"name","command","args","dir","env","after",
// "allow_failure","timeout"}]} (timeout: "500ms", "2s", "1m" or a number of milliseconds; env:
// ["K=V"] or {"K":"V"}). Unknown keys are rejected. The result passes Runner::validate. Errors
// name the source (the file), the step index and name, and the key.
CORE_API Result<std::vector<RunSpec>> parse_pipeline(std::string_view json_text,
                                                     std::string_view source = "pipeline");
// As parse_pipeline on the file's contents. Errors: also the file cannot be read.
CORE_API Result<std::vector<RunSpec>> load_pipeline(const std::string& path);

}  // namespace core::process
