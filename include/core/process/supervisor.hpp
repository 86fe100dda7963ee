// core::process::Supervisor: keeps child daemons running through the process Service, with
// restart policies, exponential backoff with jitter, a start limit, health checks and
// terminate-then-kill stops. One supervisor thread owns every state change; every public method
// is thread-safe, and the Supervisor must not outlive the Core and the process Service it uses.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/export.hpp"
#include "core/process/service.hpp"
#include "core/process/signals.hpp"  // parse_signal, signal_name (were declared here)
#include "core/result.hpp"
#include "core/runtime.hpp"

namespace core::process {

// When a daemon that ended is started again. on_failure: after a non-zero exit, a signal, a
// failed spawn or an unhealthy verdict; always: also after exit 0; no: never.
enum class RestartPolicy { no, on_failure, always };
CORE_API const char* to_string(RestartPolicy p) noexcept;
// "no", "on-failure" (or "on_failure"), "always". Errors: anything else.
CORE_API Result<RestartPolicy> parse_restart_policy(std::string_view text);

// starting → running → healthy ⇄ unhealthy; → stopping → stopped; → backoff → starting;
// → failed (start limit hit, or policy `no` after a failure). Diagram: docs/design.md,
// "Daemon states".
enum class DaemonState {
    starting,
    running,
    healthy,
    unhealthy,
    backoff,
    stopping,
    stopped,
    failed
};
CORE_API const char* to_string(DaemonState s) noexcept;

// Restart delay: attempt k (consecutive failures since the last reset, from 1) waits
// min(max, initial * factor^(k-1)), then jitter shortens it by a random part of up to
// jitter × delay (so max is never exceeded).
struct BackoffPolicy {
    std::chrono::milliseconds initial{100};
    double factor = 2.0;  // >= 1
    std::chrono::milliseconds max{30000};
    double jitter = 0.1;  // in [0, 1]
    bool operator==(const BackoffPolicy&) const = default;
};

// systemd's StartLimitBurst/IntervalSec: a start that would be the (burst+1)-th within interval
// is refused and the daemon goes to `failed`. Manual start()/restart() clear the window.
struct StartLimit {
    unsigned burst = 5;  // 0: no limit
    std::chrono::milliseconds interval{10000};
    bool operator==(const StartLimit&) const = default;
};

// An HTTP URL that must answer 2xx, or a command (argv) that must exit 0, within timeout.
// Neither set: no health check (the daemon is `running` and never `healthy`).
struct HealthSpec {
    std::string url;                   // "http://127.0.0.1:8080/health"
    std::vector<std::string> command;  // argv[0] looked up in PATH
    std::chrono::milliseconds interval{5000};
    std::chrono::milliseconds timeout{2000};
    unsigned failures = 3;                     // consecutive failures that make it unhealthy
    std::chrono::milliseconds start_grace{0};  // delay of the first check (0: one interval)

    bool enabled() const noexcept { return !url.empty() || !command.empty(); }
    bool operator==(const HealthSpec&) const = default;
};

// Where a daemon's stdout and stderr are written. Files are <dir>/<name>.log (both streams,
// merged) or, with separate, <name>.log (stdout) and <name>.err.log (stderr); `file` names the
// first one directly (its stderr twin is the name with ".err" before a ".log" suffix, else
// appended). Neither dir nor file: SupervisorOptions::log_dir, and no files when that is empty
// too. A file reaching max_size is renamed to <file>.1 (.1 to .2, …, keeping `backups`).
struct LogSpec {
    std::string dir;
    std::string file;
    std::uint64_t max_size = 10u << 20;  // bytes; 0: never rotate
    unsigned backups = 5;                // 0: the file is emptied when it reaches max_size
    bool timestamps = false;             // prefix each line with an RFC 3339 UTC time
    bool separate = false;               // stderr to its own file
    bool operator==(const LogSpec&) const = default;
};

// What to run is the Command (command, args, dir, env, env_mode, unset_env), as RunOptions
// has it; the rest is how to keep it running.
struct DaemonSpec : Command {
    std::string name;  // [A-Za-z0-9._-]+, unique per Supervisor
    // The PID file the daemon itself writes (optional). The supervisor refuses to start while
    // the file names a live process, and removes it when stale after the daemon ended.
    std::string pid_file;
    HealthSpec health;
    RestartPolicy restart = RestartPolicy::on_failure;
    BackoffPolicy backoff;
    // A daemon that stays running (no health check) or healthy this long resets the backoff.
    std::chrono::milliseconds reset_after{10000};
    StartLimit start_limit;
    int stop_signal = 15;                           // SIGTERM; sent to the daemon's process group
    std::chrono::milliseconds stop_timeout{10000};  // then SIGKILL to the group
    // Containment and identity (issue 13), as RunOptions: with cgroup the daemon runs in a
    // cgroup of its own, the stop signal reaches every member and the SIGKILL after
    // stop_timeout is cgroup.kill, so double-forked children die with it.
    bool cgroup = false;
    Limits limits;
    Identity identity;
    LogSpec log;
    // Dependencies (issue 15), by daemon name. `after`: started only once each of these is
    // ready (running; healthy with a health check; READY=1 received with notify) and stopped
    // before them at shutdown. `requires_` (the key "requires"): as `after`, and also stopped
    // with the dependency (restarted once it is ready again when it comes back by itself or is
    // restarted), and not started while it is failed. Unknown names and cycles are refused.
    std::vector<std::string> after{};
    std::vector<std::string> requires_{};
    // The readiness protocol (issue 15, systemd's Type=notify): the daemon gets NOTIFY_SOCKET, a
    // private datagram socket, and is `starting` until it sends READY=1 (then `running`;
    // dependents and /ready count it only then). Only datagrams whose SCM_CREDENTIALS pid is
    // the daemon's process (or the pid it named with MAINPID=) are heard. STATUS= shows in
    // DaemonStatus::status_text; WATCHDOG=1 must come every `watchdog` (0: no watchdog), or the
    // daemon turns unhealthy and its policy applies; RELOADING=1 and STOPPING=1 make it not
    // ready (READY=1 again ends a reload); EXTEND_TIMEOUT_USEC= pushes back the start (or stop)
    // deadline. start_timeout bounds the wait for READY=1 (0: none): then it is unhealthy.
    bool notify = false;
    std::chrono::milliseconds watchdog{0};
    std::chrono::milliseconds start_timeout{0};
    // Every field equal (reload restarts a daemon whose spec is not).
    bool operator==(const DaemonSpec&) const = default;
};

// Checks a spec as add() does. Errors name the daemon and the key (`backoff.factor: …`).
CORE_API Result<void> validate(const DaemonSpec& spec);

// A snapshot of one daemon.
struct DaemonStatus {
    std::string name;
    DaemonState state = DaemonState::stopped;
    int pid = 0;             // 0 when no process is running
    std::string process_id;  // the process Service's id of the current process, else empty
    unsigned restarts = 0;   // starts after the first one (automatic and manual)
    bool exited = false;     // true once a process of this daemon has ended
    int last_exit_code = 0;  // -1 when killed by a signal
    int last_signal = 0;
    std::string last_error;        // why it last failed (spawn error, exit, health), else empty
    unsigned health_failures = 0;  // consecutive failed checks
    std::chrono::system_clock::time_point since{};  // when it entered `state`
    // The newest lines of output (both streams) of the current or last process, oldest first;
    // kept for failures (SupervisorOptions::last_lines of them).
    std::vector<std::string> last_lines;
    std::string log_path;           // the stdout (or merged) log file; empty without log files
    std::string err_log_path;       // the stderr log file when separate, else empty
    std::uint64_t log_dropped = 0;  // lines dropped because the log queue was full
    std::uint64_t log_errors = 0;   // lines lost to open/write errors (disk full, bad dir)
    std::string log_error;          // the last such error, else empty
    // Dependencies (issue 15): ready as dependents see it; the dependencies it waits for
    // (state `starting` without a pid), else empty.
    bool ready = false;
    std::vector<std::string> waiting_for{};
    // The readiness protocol: the last STATUS= text, the pid named by MAINPID= (0: none), and
    // how many datagrams were dropped (from another pid, malformed, oversized, with fds).
    std::string status_text{};
    int main_pid = 0;
    std::uint64_t notify_dropped = 0;
};

// What the current process of a daemon uses now (Supervisor::usage): memory and CPU from its own
// cgroup v2 when it has one (memory.current, cpu.stat usage_usec; source "cgroup"), else from
// /proc of the main process alone (VmRSS, utime+stime; source "proc"); unset where unknown.
struct DaemonUsage {
    int pid = 0;
    std::optional<std::uint64_t> memory_bytes{};
    std::string memory_source{};
    std::optional<double> cpu_seconds{};
    std::string cpu_source{};
    std::optional<double> uptime_seconds{};  // since the process started
};

// What Supervisor::apply() did, by daemon name.
struct ReloadResult {
    std::vector<std::string> added, removed, changed, unchanged;
    // "name: error" for each start or stop that failed (the daemon then follows its policy).
    std::vector<std::string> errors;
};

// Broadcast on the Core bus (as a Value) and passed to SupervisorOptions::on_state_change for
// every state change, in order, from the supervisor thread.
struct DaemonStateChanged {
    std::string name;
    DaemonState from = DaemonState::stopped;
    DaemonState to = DaemonState::stopped;
    int pid = 0;
    unsigned restarts = 0;
    std::string reason;  // e.g. "exited with code 3", "health: …", "start limit hit"
    std::chrono::milliseconds delay{0};  // the chosen delay when `to` is backoff
};

struct SupervisorOptions {
    // Called on the supervisor thread for each change, after the bus broadcast. It may call
    // get()/list(), but not the blocking calls (they fail with "called from the supervisor
    // thread").
    std::function<void(const DaemonStateChanged&)> on_state_change;
    bool broadcast = true;                      // also broadcast DaemonStateChanged on the Core bus
    std::size_t max_output = 64 * 1024;         // output kept per daemon process (newest bytes)
    std::chrono::milliseconds kill_wait{5000};  // how long stop() waits for a reap after SIGKILL
    // The default directory of the daemons' log files (a LogSpec without dir or file); empty:
    // only daemons whose LogSpec names a dir or file get log files.
    std::string log_dir{};
    std::size_t last_lines = 10;             // lines kept for DaemonStatus::last_lines
    std::size_t log_queue_bytes = 4u << 20;  // bound of the log writer's queue (then drop)
    // Called on the log writer thread when log lines are lost (a full queue, an open or write
    // error), at most about once a second per daemon and kind; e.g. to log a warning.
    std::function<void(const std::string& daemon, const std::string& problem)> on_log_problem{};
    // When set, the name, pid and start time of every running daemon are kept in this file
    // (replaced atomically on each change, removed when the Supervisor ends), so that the next
    // supervisor after a crash finds them (find_survivors).
    std::string state_file{};
};

namespace detail {
struct SupervisorImpl;
}

class CORE_API Supervisor {
  public:
    // Starts the supervisor thread. core and service must outlive the Supervisor.
    Supervisor(core::Core& core, Service& service, SupervisorOptions opts = {});
    // Stops every daemon (as stop_all) and joins the supervisor thread.
    ~Supervisor();
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;

    // Adds a daemon in state `stopped`. Errors: invalid spec (names the key); duplicate name.
    Result<void> add(DaemonSpec spec);
    // Stops (if needed) and forgets a daemon. Errors: unknown name.
    Result<void> remove(const std::string& name);
    // Starts a stopped or failed daemon (no-op when already up or in backoff; while stopping,
    // starts it again once reaped); returns once the spawn was tried. Clears the start-limit
    // window and the backoff. Errors: unknown name; the spawn error (the daemon then follows
    // its restart policy); PID file held by a live process.
    Result<void> start(const std::string& name);
    // stop_signal to the group, SIGKILL after stop_timeout; returns once reaped (`stopped`).
    // Errors: unknown name; not reaped within stop_timeout + kill_wait.
    Result<void> stop(const std::string& name);
    // Stops (as stop) then starts again at once, without backoff. Errors: as stop and start.
    Result<void> restart(const std::string& name);
    // start() for every daemon in add order; returns the first error (the others still start).
    Result<void> start_all();
    // Stops every daemon at once and waits for all of them; returns the first error.
    Result<void> stop_all();
    // Makes the set of daemons `next`, by name (SIGHUP's reload): adds and starts the new
    // ones, stops and removes those missing, restarts those whose spec changed (a stopped one
    // keeps its new spec and stays stopped), leaves the equal ones running (same pid). Every
    // spec is validated first: an invalid one or a duplicate name changes nothing and is the
    // Error. A start or stop that fails after that undoes nothing: it is listed in
    // ReloadResult::errors. Not from the supervisor thread (a state-change callback).
    Result<ReloadResult> apply(std::vector<DaemonSpec> next);

    Result<DaemonStatus> get(const std::string& name) const;
    std::vector<DaemonStatus> list() const;
    std::vector<std::string> names() const;
    Result<DaemonSpec> spec(const std::string& name) const;
    // Reads procfs/cgroupfs now (not under the Supervisor's lock). Errors: an unknown daemon;
    // ESRCH when it has no process running (or it ended while being read).
    Result<DaemonUsage> usage(const std::string& name) const;

  private:
    std::unique_ptr<detail::SupervisorImpl> impl_;
};

// Reads the `coreproc supervise` file: {"daemons":[{"name", "command", "args", "dir", "env",
// "pidfile", "restart", "backoff":{"initial","factor","max","jitter"}, "reset_after",
// "start_limit":{"burst","interval"}, "health":{"url"|"command","interval","timeout",
// "failures","start_grace"}, "stop_signal", "stop_timeout", "log":{"dir"|"file","max_size",
// "backups","timestamps","separate"}, "after":[names], "requires":[names], "notify",
// "watchdog", "start_timeout"}]}. Sizes: a number of bytes or "512K", "10M", "1G".
// Durations: "500ms", "2s", "1m" or a number of milliseconds; signals: "SIGTERM", "TERM" or a
// number. Every key but name and command has a default; unknown keys are rejected, except those
// starting with '_' (comments). Errors name the source, the daemon (index and name) and the key.
CORE_API Result<std::vector<DaemonSpec>> parse_supervise_config(std::string_view json_text,
                                                                std::string_view source = "config");
// As parse_supervise_config on the file's contents. Errors: as parse; unreadable file.
CORE_API Result<std::vector<DaemonSpec>> load_supervise_config(const std::string& path);

// The "daemon" service: creates a Supervisor over the "process" service on startup, registers
// daemon.start, daemon.stop, daemon.restart, daemon.list and daemon.get, and stops every daemon
// on shutdown. Register it after the process service.
class CORE_API SupervisorService : public core::Service {
  public:
    SupervisorService(core::Core& core, SupervisorOptions opts = {},
                      std::vector<DaemonSpec> specs = {});
    ~SupervisorService() override;

    // Errors: no "process" service registered; a preloaded spec is invalid.
    Result<void> on_startup(const Context& ctx) override;
    Result<void> on_shutdown(const Context& ctx) override;

    // The Supervisor, or null before startup / after shutdown.
    std::shared_ptr<Supervisor> supervisor() const;

    // Parses daemon.start's Options into a spec: name, command, args, dir, env, pid_file,
    // restart, backoff_initial, backoff_factor, backoff_max, backoff_jitter, reset_after,
    // start_limit_burst, start_limit_interval, health_url, health_command, health_interval,
    // health_timeout, health_failures, health_start_grace, stop_signal, stop_timeout, after,
    // requires (lists of names), notify (bool), watchdog, start_timeout; or "spec" holding a
    // DaemonSpec. Errors: a wrong type or unknown key, naming it.
    static Result<DaemonSpec> parse_options(const std::string& op, const Options& opts);

  private:
    SupervisorOptions opts_;
    std::vector<DaemonSpec> specs_;
    mutable std::mutex mu_;
    std::shared_ptr<Supervisor> sup_;
};

// The factory: core::Core::create({process::register_service, process::register_daemon_service}).
CORE_API Result<std::shared_ptr<core::Service>> register_daemon_service(core::Core& core);
// A factory with options and daemons added (not started) at startup.
CORE_API ServiceFactory daemon_service_factory(SupervisorOptions opts,
                                               std::vector<DaemonSpec> specs = {});

// Checks the dependency graph of a set of daemons: every `after`/`requires` name is one of
// them (unless allow_unknown) and there is no cycle. Errors: "daemon \"web\": unknown
// dependency \"db\""; "dependency cycle: a → b → a".
CORE_API Result<void> validate_dependencies(const std::vector<DaemonSpec>& specs,
                                            bool allow_unknown = false);

// A daemon process an earlier supervisor left running (from its SupervisorOptions::state_file).
struct Survivor {
    std::string name;
    int pid = 0;
    std::uint64_t start_time = 0;  // field 22 of /proc/<pid>/stat: with the pid, its identity
};
// The entries of a state file whose process still runs with the same pid AND start time (a
// reused pid is never taken for a daemon). A missing file: none. Errors: unreadable or
// malformed file.
CORE_API Result<std::vector<Survivor>> find_survivors(const std::string& state_file);
// Stops a survivor, which is not our child (its exit status cannot be had): stop_signal to its
// process group and SIGCONT, SIGKILL after timeout; returns once it is gone. Does nothing when
// the pid no longer names that process. Errors: still there 5 s after SIGKILL; EPERM.
CORE_API Result<void> stop_survivor(const Survivor& s, int stop_signal,
                                    std::chrono::milliseconds timeout);

// The readiness protocol towards this process's own manager (sd_notify(3); systemd's
// Type=notify): what `coreproc supervise` says to its parent.
class CORE_API ManagerNotifier {
  public:
    // Takes NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID out of the environment (children must
    // not inherit them). Inactive when NOTIFY_SOCKET is unset. The watchdog is kept only when
    // WATCHDOG_PID is unset or names this process. Call before threads start.
    static ManagerNotifier from_environment();
    ManagerNotifier() = default;
    explicit ManagerNotifier(std::string socket, std::chrono::microseconds watchdog = {})
        : socket_(std::move(socket)), watchdog_(watchdog) {}

    bool active() const noexcept { return !socket_.empty(); }
    const std::string& socket() const noexcept { return socket_; }
    // The manager's watchdog interval (0: none): send WATCHDOG=1 at least every half of it.
    std::chrono::microseconds watchdog() const noexcept { return watchdog_; }
    // Sends one datagram ("READY=1\nSTATUS=…"). Inactive: does nothing. Errors: the send's.
    Result<void> send(std::string_view text) const;

  private:
    std::string socket_;
    std::chrono::microseconds watchdog_{0};
};

// PID 1 and subreaper duties (issue 15): a thread that reaps orphans re-parented to this
// process, never an exit that belongs to a managed child (those have pidfds and are reaped by
// their owners; the rule is explained in lib/sys/reap.hpp). It wakes on SIGCHLD through a
// signalfd, so SIGCHLD should be blocked in every thread (block_signals before threads start),
// and sweeps once a second anyway. Children started outside lib/sys (a host's own fork and
// waitpid) are not safe from it.
class CORE_API OrphanReaper {
  public:
    // With subreaper, PR_SET_CHILD_SUBREAPER first (PID 1 needs none). Errors: prctl; a kernel
    // without pidfds (orphans cannot be told from managed children).
    static Result<std::unique_ptr<OrphanReaper>> start(bool subreaper);
    ~OrphanReaper();  // stops and joins the thread
    OrphanReaper(const OrphanReaper&) = delete;
    OrphanReaper& operator=(const OrphanReaper&) = delete;
    // Orphans reaped so far.
    std::uint64_t reaped() const noexcept;
    // One pass now, on the calling thread (the thread's body): how many it reaped.
    static Result<int> reap_now();

    struct Impl;

  private:
    explicit OrphanReaper(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};
// SIGCHLD's number (for block_signals).
CORE_API int signal_chld() noexcept;
// Whether this process is PID 1 (of its pid namespace).
CORE_API bool running_as_pid1() noexcept;

}  // namespace core::process
