// The Supervisor's insides, shared by its source files: the daemon record, the inbox messages,
// and SupervisorImpl, whose members are defined by concern:
//   supervisor_loop.cpp     the thread: inbox, deadlines, events out, the state file, output
//   supervisor_command.cpp  start/stop/restart/remove/update commands and health results
//   supervisor_start.cpp    dependencies, held starts and the spawn of a daemon's process
//   supervisor_end.cpp      a process's end (through the pure decide_end) and stopping
//   supervisor_notify.cpp   the readiness protocol (NOTIFY_SOCKET datagrams)
//   supervisor.cpp          the public Supervisor over it
// The transitions that need no thread or process are pure functions in transitions.hpp.
#pragma once

// The Supervisor: one thread owns every daemon's state machine and waits on a condition
// variable until the next deadline (a backoff expiry, a health check, a stop timeout) or until
// something arrives in its inbox (a command, a process exit from the process's on_exit hook, a
// health-check result, a notify datagram). No polling, no thread per daemon; health checks
// run on one checker thread because a check may block up to its timeout.
//
// Exits and output come from each process itself (ManagedProcess::on_exit and the start's
// RunOptions::on_output, on the Service's notifier thread), never from the bus: the Supervisor
// works with ServiceOptions::events off, and a child that exits before Service::start returns
// needs no race buffer (its hook is registered before its exit is read).
//
// Locking: mu_ guards the daemon map, every DaemonRec field and the inbox. Only the supervisor
// thread writes DaemonRec fields (always under mu_), so it may read them without the lock. It
// never holds mu_ while calling the process Service or broadcasting: the Service calls our
// output hook on its own thread and the hook takes mu_, so holding it across a Service call
// could deadlock.
#include <algorithm>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <variant>

#include <spdlog/logger.h>

#include "core/process/supervisor.hpp"
#include "process/output.hpp"
#include "supervisor/checker.hpp"
#include "supervisor/logfile.hpp"
#include "supervisor/notify_hub.hpp"
#include "supervisor/policy.hpp"
#include "supervisor/probe.hpp"
#include "supervisor/state.hpp"
#include "supervisor/transitions.hpp"
#include "sys/file.hpp"
#include "sys/procstat.hpp"
#include "sys/signals.hpp"

namespace core::process::detail {

// A one-shot result a caller waits for.
struct Completion {
    std::mutex mu;
    std::condition_variable cv;
    bool ready = false;
    Result<void> result;

    void set(Result<void> r) {
        std::lock_guard lk(mu);
        if (ready) return;
        result = std::move(r);
        ready = true;
        cv.notify_all();
    }
    // nullopt on timeout.
    std::optional<Result<void>> wait_for(std::chrono::milliseconds d) {
        std::unique_lock lk(mu);
        if (!cv.wait_for(lk, d, [&] { return ready; })) return std::nullopt;
        return result;
    }
};
using CompletionPtr = std::shared_ptr<Completion>;

struct DaemonRec {
    DaemonSpec spec;
    DaemonState state = DaemonState::stopped;
    std::chrono::system_clock::time_point since = std::chrono::system_clock::now();

    std::shared_ptr<ManagedProcess> proc;
    std::string proc_id;
    int pid = 0;
    std::uint64_t generation = 0;  // bumped at each start: late health results are dropped

    unsigned restarts = 0;
    bool ever_started = false;
    unsigned attempt = 0;  // consecutive failures since the last backoff reset
    StartWindow window;
    std::optional<Clock::time_point> stable_since;  // running (no check) or healthy since
    std::optional<Clock::time_point> stable_until;  // when it then turned unhealthy

    bool exited = false;
    int last_exit_code = 0;
    int last_signal = 0;
    std::string last_error;

    unsigned health_failures = 0;
    std::optional<Clock::time_point> next_check;
    bool check_in_flight = false;

    After after = After::policy;
    // restart() (or a reload) of a daemon that others require: it stops once they are down
    // (they go first, and wait for it to be ready again); set on them too (wait_deps).
    std::optional<After> stop_pending;
    std::string stop_pending_why;
    std::optional<Clock::time_point> kill_at;     // SIGKILL deadline while stopping
    std::optional<Clock::time_point> restart_at;  // backoff deadline
    std::vector<CompletionPtr> waiters;           // completed when the stop/restart ends

    std::optional<DaemonSpec> next_spec;  // apply(): the spec to use once the process ended
    std::shared_ptr<LogSink> sink;        // its log files, null without
    std::uint64_t start_time = 0;         // of the current process (/proc/<pid>/stat field 22)
    std::deque<std::string> last_lines;   // newest output lines (written by the bus handler)

    // Dependencies: a start is held (state `starting`, no process) until these are ready.
    bool waiting = false;
    std::vector<std::string> waiting_for;

    // The readiness protocol (spec.notify), for the current process.
    bool notified = false;       // READY=1 received
    bool reloading = false;      // RELOADING=1 without a READY=1 since
    bool stopping_said = false;  // STOPPING=1
    int main_pid = 0;            // MAINPID=, checked to be in the daemon's tree
    std::string status_text;     // STATUS=
    std::uint64_t notify_dropped = 0;
    std::optional<Clock::time_point> ready_deadline;  // start_timeout, while starting
    std::optional<Clock::time_point> watchdog_at;     // the next WATCHDOG=1 is due by then
    std::string unhealthy_why;  // why we stopped it as unhealthy when no health check said so
};

struct CommandMsg {
    enum Kind { start, stop, restart, remove, update } kind;
    std::string name;
    CompletionPtr done;
    std::optional<DaemonSpec> spec;  // update: the new spec
};
struct ExitMsg {
    std::string name;
    std::string proc_id;
    ProcessInfo info;
};
struct HealthMsg {
    std::string name;
    std::uint64_t generation = 0;
    Result<void> result;
};
struct NotifyMsg {
    std::string name;
    sys::notify::Datagram datagram;
};
using Msg = std::variant<CommandMsg, ExitMsg, HealthMsg, NotifyMsg>;

// The output state of one process of a daemon, shared by its on_output and on_exit hooks.
// Its splitters are used under SupervisorImpl::mu.
struct Tap {
    std::string name;
    std::uint64_t generation = 0;
    LineSplitter out, err;
    Tap(std::string n, std::uint64_t g, std::size_t max_piece)
        : name(std::move(n)), generation(g), out(max_piece), err(max_piece) {}
};

struct SupervisorImpl;

// How a process's hooks reach the Supervisor: they may run after it is gone (a daemon that
// outlived its stop), so they go through this, which the destructor empties.
struct Link {
    std::mutex mu;
    SupervisorImpl* impl = nullptr;
    template <class Fn>
    void with(Fn&& fn) {
        std::lock_guard lk(mu);
        if (impl) fn(*impl);
    }
};

struct SupervisorImpl {
    core::Core& core;
    Service& service;
    SupervisorOptions opts;
    mutable std::mutex mu;
    std::condition_variable cv;
    std::map<std::string, std::unique_ptr<DaemonRec>> daemons;
    std::vector<std::string> order;  // add order
    std::deque<Msg> inbox;
    bool quit = false;

    // Supervisor-thread only.
    std::vector<DaemonStateChanged> events;
    std::vector<std::pair<CompletionPtr, Result<void>>> completions;
    std::mt19937_64 rng{std::random_device{}()};
    std::vector<Survivor> state_written;  // what the state file says now
    bool state_known = false;             // state_written reflects the file

    std::unique_ptr<Checker> checker;
    std::unique_ptr<NotifyHub> notify;  // made on the first notify daemon's start
    std::unique_ptr<LogWriter> logs;
    std::shared_ptr<Link> link;  // what the processes' hooks reach us through
    std::thread thread;
    std::thread::id thread_id;
    SupervisorImpl(core::Core& c, Service& s, SupervisorOptions o)
        : core(c), service(s), opts(std::move(o)) {}
    std::shared_ptr<spdlog::logger> log() const { return core.logger(); }

    // ------------------------------------------------------------ inbox

    void post(Msg m);

    // Caller holds mu.
    void keep_line_locked(DaemonRec& d, const std::string& line);
    std::shared_ptr<LogSink> make_sink(const DaemonSpec& spec);

    // A chunk of the current process's output (on the Service's notifier thread, in order):
    // split into lines, kept for the failure report and queued for the log file; never blocks
    // beyond mu and the log queue's lock. `last` flushes an unterminated last line (the exit).
    void on_chunk(Tap& tap, Stream stream, std::string_view bytes, bool last);
    Result<void> call(CommandMsg::Kind kind, const std::string& name,
                      std::chrono::milliseconds bound,
                      std::optional<DaemonSpec> spec = std::nullopt);

    // How long a caller waits for a stop: the stop timeout, then kill_wait for the reap.
    std::chrono::milliseconds stop_bound(const std::string& name) const;

    // ------------------------------------------------------------ state changes

    // Caller holds mu.
    void set_state_locked(DaemonRec& d, DaemonState to, std::string reason,
                          std::chrono::milliseconds delay = {});
    void set_state(DaemonRec& d, DaemonState to, std::string reason,
                   std::chrono::milliseconds delay = {});
    void complete(DaemonRec& d, const Result<void>& r);
    void add_waiter(DaemonRec& d, CompletionPtr c);

    // Publishes the queued events, then the completions (so that a caller whose stop() returned
    // has already seen `stopped`). Called without mu.
    void flush();

    // Keeps the state file in step with the running daemons (supervisor thread; after the
    // destructor's join, the calling thread). Removed once nothing runs.
    void sync_state();

    // ------------------------------------------------------------ starting

    // Refuses a start while the PID file names a live holder; removes a stale one.
    Result<void> check_pid_file(const DaemonRec& d);
    void remove_stale_pid_file(const DaemonRec& d);

    // ------------------------------------------------------------ dependencies

    // Ready as a dependent sees it: up, and healthy when checked.
    static bool is_ready(const DaemonRec& d);
    static std::string names_text(const std::vector<std::string>& names);

    // The dependencies of d that are not ready yet. Errors: an unknown one; with `manual`, a
    // `requires` dependency that is failed (a dependent is not started while it is).
    Result<std::vector<std::string>> blockers(const DaemonRec& d, bool manual);

    // Every start goes through here: at once when the dependencies are ready, else held in
    // `starting` (no process) until release_waiting() finds them ready. `manual`: a start(),
    // restart() or reload, whose caller gets the refusal of a failed `requires` dependency.
    Result<void> request_start(DaemonRec& d, const std::string& why, bool manual);

    // Starts every held daemon whose dependencies became ready (a start can make others ready:
    // a daemon without a check is ready once running).
    void release_waiting();
    // Calls step(name, record) for every daemon in add order, again from the start after each
    // call that returns true (it changed something: flushed), until a whole pass changes nothing.
    template <class Step>
    void until_settled(Step step);

    // `dep` ended: its `requires` dependents stop too; when it comes back by itself (backoff,
    // restart) they wait for it to be ready again, else they stay stopped.
    void stop_dependents(const std::string& dep, bool coming_back);

    // Stops `root` (with `after`) once every daemon that requires it, directly or through
    // others, is down: those stop first, in reverse dependency order, and then wait for it to
    // be ready again. Without such dependents that are up, root stops at once.
    void stop_after_dependents(DaemonRec& root, After after, const std::string& why);

    // Begins the pending stops whose dependents are all down.
    void begin_pending_stops();

    // Starts the daemon's process now. `why` is the event reason.
    Result<void> do_start(DaemonRec& d, const std::string& why);

    // Caller holds mu. The process is up (spawned; with notify, READY=1 came): `running`, and
    // health checks and the stable period start.
    void mark_running_locked(DaemonRec& d, Clock::time_point now, const std::string& why);

    // The NOTIFY_SOCKET of a notify daemon (empty for the others).
    Result<std::string> notify_socket(const DaemonRec& d);

    // ------------------------------------------------------------ readiness protocol

    // One datagram from a notify socket. Only the daemon's own process (or the pid it named by
    // MAINPID=) is heard; anything else, or anything malformed, is dropped and counted.
    void on_notify(const NotifyMsg& m);

    // The watchdog or start_timeout of a notify daemon ran out: unhealthy, then its policy.
    void notify_expired(DaemonRec& d, const std::string& why);
    RunOptions run_options(const DaemonSpec& s) const;

    // ------------------------------------------------------------ ending

    static std::string limit_text(const DaemonRec& d);

    // The daemon's process ended (or never started): decide what comes next.
    void ended(DaemonRec& d, ExitInfo e, const std::string& detail);
    void on_exit(const ExitMsg& m);

    // ------------------------------------------------------------ stopping

    // Sends the stop signal (SIGKILL at once with a zero timeout) and arms the kill deadline.
    void begin_stop(DaemonRec& d, After after, const std::string& why);
    void on_kill_deadline(DaemonRec& d);

    // ------------------------------------------------------------ commands

    void on_command(CommandMsg& c);

    // ------------------------------------------------------------ health

    void on_health(const HealthMsg& m);
    void start_check(DaemonRec& d);

    // ------------------------------------------------------------ the loop

    DaemonRec* find(const std::string& name);
    static bool checkable(const DaemonRec& d);

    // Caller holds mu.
    std::optional<Clock::time_point> next_deadline_locked() const;
    void fire_due();
    void run();

    // Stops `names` in reverse dependency order: a daemon stops once nothing in the set that
    // depends on it (after or requires) is still to stop. The stops of one round are posted
    // before any is waited for, so independent daemons stop together.
    Result<void> stop_ordered(std::vector<std::string> names);
    DaemonStatus status_locked(const DaemonRec& d) const;
};

}  // namespace core::process::detail
