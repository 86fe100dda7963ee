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
#include "core/process/types.hpp"
#include "core/result.hpp"

namespace core {
class Core;
}

namespace core::process {

class Service;

// One command of a pipeline: what to run (the Command: command, args, dir, env, env_mode,
// unset_env, as RunOptions has them) and how it sits in the run.
struct RunSpec : Command {
    std::string name;                // unique within a run; what `after` refers to
    std::vector<std::string> after;  // names that must finish first (run_all only)
    bool allow_failure = false;      // its failure neither skips its dependents nor fails the run
    std::chrono::milliseconds timeout{0};  // 0: none; on expiry the process group is killed
    std::string description;               // for people (shown by `coreproc pipeline --dry-run`)
    // Containment and identity (issue 13), as RunOptions: a cgroup of its own, its limits
    // (any set one implies cgroup), and uid/gid/groups/umask/rlimits/nice/no_new_privs/
    // parent-death signal. Applied on the clone3 spawn path only; see containment.hpp.
    bool cgroup = false;
    Limits limits{};
    Identity identity{};
};

enum class RunStatus { passed, failed, skipped };
CORE_API const char* to_string(RunStatus s) noexcept;

// What became of one spec.
struct RunResult {
    std::string name;
    RunStatus status = RunStatus::skipped;
    bool allowed_failure = false;     // failed, but its spec allowed failure
    int exit_code = -1;               // the exit code; -1 when killed, timed out or never started
    int signal = 0;                   // the signal that killed it, else 0
    bool timed_out = false;           // killed because its timeout expired
    std::string output;               // combined stdout+stderr in arrival order (newest 1 MiB)
    std::string std_out;              // stdout alone (newest 1 MiB)
    std::string std_err;              // stderr alone (newest 1 MiB)
    std::size_t std_out_dropped = 0;  // bytes dropped from the front of std_out
    std::size_t std_err_dropped = 0;  // bytes dropped from the front of std_err
    // How the process ended (the typed completion): set when it was started, and for a start
    // that failed (kind failed_to_start, detail the Error). A skipped spec keeps the defaults
    // (see status).
    ExitStatus exit;
    Usage usage;  // the process's CPU times and peak RSS, once it ran
    std::chrono::nanoseconds duration{0};
    std::string error;  // why it failed or was skipped; empty when passed
    // Wall-clock start (before the spawn) and end; started_at stays the epoch for a spec that
    // never started (skipped), finished_at is when it was skipped then.
    std::chrono::system_clock::time_point started_at{};
    std::chrono::system_clock::time_point finished_at{};
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

// One line of a running spec's output (stdout or stderr), without its newline.
struct RunOutput {
    std::size_t index = 0;  // position in the input
    const RunSpec* spec = nullptr;
    std::string_view line;
    Stream stream = Stream::stdout_;
};

struct RunnerOptions {
    // Most specs running at once; 0: the number of hardware threads (at least 1).
    std::size_t max_parallel = 0;
    // Called from the Runner's worker threads, possibly concurrently: must be thread-safe. The
    // pointers are valid during the call only. Blocking here delays that spec, nothing else.
    std::function<void(const RunProgress&)> on_progress;
    // Each output line of a running spec, as it arrives; every line of a spec comes before its
    // finished progress event. Called from one thread at a time (the Service's notifier
    // thread); the line is valid during the call only. Lines come from each process's own
    // output callback (RunOptions::on_output), so they arrive with ServiceOptions::events off
    // too. A line longer than 1 MiB arrives in pieces of that size; a last line without a
    // newline arrives when the process has ended.
    std::function<void(const RunOutput&)> on_output{};
    // run_all and run_parallel: after the first failure that is not allowed, start nothing
    // more (the rest are skipped, naming that step) and stop the running specs (their group
    // gets SIGTERM, then SIGKILL after 5 s; they fail, naming that step). run_sequential
    // always stops at the first failure.
    bool fail_fast = false;
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
    // The order in which run_all starts specs with max_parallel 1: each after its
    // dependencies, ready ones in input order. Errors: as validate.
    static Result<std::vector<std::size_t>> order(const std::vector<RunSpec>& specs);

    std::size_t max_parallel() const noexcept { return max_parallel_; }

  private:
    Service* service_;
    RunnerOptions opts_;
    std::size_t max_parallel_;
};

// The specs named in targets and every spec they depend on (transitively), in input order.
// Errors: an unknown target (named, with the known names), or what validate finds.
CORE_API Result<std::vector<RunSpec>> select_steps(const std::vector<RunSpec>& specs,
                                                   const std::vector<std::string>& targets);

// Reads a pipeline file: {"description", "defaults": {"dir","env","timeout", containment…},
// "steps":[{"name","command","args" | "shell","dir","env","after","allow_failure","timeout",
// "description", containment…}]} (timeout: "500ms", "2s", "1m" or a number of milliseconds;
// env: ["K=V"] or {"K":"V"}; shell: a command line run as /bin/sh -c LINE). The containment
// keys are the supervise file's: "cgroup", "limits" {"memory","memory_swap","pids","cpu",
// "io_weight"}, "user", "group", "groups", "umask", "rlimits" {"nofile": 4096, …}, "nice",
// "no_new_privs", "parent_death_signal". A step's env goes over the defaults' env, its dir and
// timeout replace the defaults'; a step's containment key replaces the defaults' one, except
// "limits" and "rlimits", whose entries are merged (the step's win). A relative dir is
// resolved against base_dir when base_dir is not empty. Unknown keys are rejected; a pipeline
// needs at least one step. The result passes Runner::validate. Errors name the source (the
// file), the step index and name (or "defaults"), and the key.
CORE_API Result<std::vector<RunSpec>> parse_pipeline(std::string_view json_text,
                                                     std::string_view source = "pipeline",
                                                     std::string_view base_dir = {});
// As parse_pipeline on the file's contents, with relative dirs resolved against the file's own
// directory (so the file means the same from any working directory). Errors: also the file
// cannot be read.
CORE_API Result<std::vector<RunSpec>> load_pipeline(const std::string& path);

}  // namespace core::process
