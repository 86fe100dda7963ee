// core::process::Service: the process service ("process"). Registers process.run, start, kill,
// list and get on startup; one reaper thread (epoll over pidfds, pipes, an eventfd and timerfds)
// waits for every child, and nothing else waits. Every method is thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/export.hpp"
#include "core/process/managed_process.hpp"
#include "core/process/spawn_method.hpp"  // SpawnMethod, set_spawn_method (were declared here)
#include "core/process/types.hpp"
#include "core/runtime.hpp"

namespace core::process {

struct ServiceOptions {
    std::size_t retention = 1024;     // finished processes kept for get/list; oldest evicted
    bool allow_foreign_pids = false;  // kill/kill_pid may signal PIDs this Service did not start
    // Broadcast ProcessStarted/Output/Killed/Exited on the Core bus (from a dispatcher thread).
    // Off: no line splitting, no event thread: the leanest spawn path.
    bool events = true;
    // Output lines queued for slow subscribers before further lines are dropped (counted).
    std::size_t max_queued_lines = 65536;
    // Output reaches the bus as one ProcessOutputBatch per read (a batch of lines) instead of
    // one ProcessOutput per line: one queue entry, one wake-up and one broadcast per read. Off by
    // default: the bus's existing subscribers (supervisor logs, control WebSocket, runner) read
    // ProcessOutput.
    bool output_batches = false;
    // Bytes of RunOptions::on_output chunks queued for slow callbacks before further chunks are
    // dropped (counted per process in ProcessInfo::callback_dropped).
    std::size_t max_queued_output_bytes = std::size_t{16} << 20;
    // go-process ignores option keys it does not know; we refuse them (a "timout" typo would
    // otherwise mean no timeout). true restores the lenient behaviour for callers that need it.
    bool lenient_options = false;
    // Where per-process cgroups (RunOptions::cgroup) are created: an absolute path inside the
    // cgroup2 mount, or a path relative to that mount. Empty: our own v2 cgroup when it is
    // writable (delegated), else the v2 mount's root on a hybrid (v1 + v2) host.
    std::string cgroup_parent{};
};

// A pipeline started by Service::start_pipeline: each member's stdout feeds the next one's
// stdin (a | b | c). wait() returns the pipeline's status, pipefail-style: the last member that
// did not succeed decides it, else the last member's.
struct PipelineProcesses {
    std::vector<std::shared_ptr<ManagedProcess>> processes;
    // Waits for every member; the pipefail status.
    ExitStatus wait() const;
    // Each member's status (after wait), in order.
    std::vector<ExitStatus> statuses() const;
};

class CORE_API Service : public core::Service {
  public:
    Service(core::Core& core, ServiceOptions opts = {});
    ~Service() override;

    // Registers the five actions and starts the reaper.
    Result<void> on_startup(const Context& ctx) override;
    // Stops every managed process (SIGTERM to its group, SIGKILL after its grace period) and
    // waits until all are reaped; then stops the reaper.
    Result<void> on_shutdown(const Context& ctx) override;

    // Starts a process. Errors: empty command; not found / not executable (errno, with the
    // command); bad dir (errno, naming the dir); resource limits (EMFILE, EAGAIN, …).
    Result<std::shared_ptr<ManagedProcess>> start(const Context& ctx, const RunOptions& opts);
    // Starts, waits, returns the combined output; removes its own entry. Errors: as start; a
    // non-zero exit (`exited with code N`, with the output's last 4 KiB); killed by a signal;
    // timeout; cancelled context.
    Result<std::string> run(const Context& ctx, const RunOptions& opts);
    // Starts, waits, and returns how it ended with each stream apart. Fails only when the
    // process could not be started (as start); a non-zero exit, a signal or a timeout is a
    // status, as Python's run() without check. Removes its own entry.
    Result<Completed> exec(const Context& ctx, const RunOptions& opts);
    // Starts a | b | c: stages[i]'s stdout is connected to stages[i+1]'s stdin (their std_out
    // and std_in are overridden, except the first's stdin and the last's stdout). Errors: fewer
    // than one stage; a stage that fails to start (those already started are killed and
    // reaped before this returns).
    Result<PipelineProcesses> start_pipeline(const Context& ctx, std::vector<RunOptions> stages);

    Result<std::shared_ptr<ManagedProcess>> get(const std::string& id) const;
    // Ids in start order (only running ones with running_only).
    std::vector<std::string> list(bool running_only = false) const;
    Result<void> kill(const std::string& id);
    // Kills a managed process by pid (a foreign pid only with allow_foreign_pids).
    Result<void> kill_pid(int pid);
    Result<void> signal(const std::string& id, int sig);
    // Forgets a finished process. Errors: unknown id; still running.
    Result<void> remove(const std::string& id);
    // Forgets every finished process.
    void clear();
    // Output lines the event bus dropped since the start because subscribers fell behind by
    // more than ServiceOptions::max_queued_lines (0 with events off). Thread-safe.
    std::uint64_t dropped_event_lines() const;

    // Parses action Options into RunOptions, naming the key on a wrong type, and refusing keys
    // it does not know (listing the known ones).
    static Result<RunOptions> parse_options(const std::string& op, const Options& opts);
    // As parse_options; lenient: unknown keys are ignored, as go-process does.
    static Result<RunOptions> parse_options(const std::string& op, const Options& opts,
                                            bool lenient);

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

// The WithService factory: core::Core::create({core::process::register_service}).
CORE_API Result<std::shared_ptr<core::Service>> register_service(core::Core& core);
// A factory with options.
CORE_API ServiceFactory service_factory(ServiceOptions opts);

}  // namespace core::process
