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
#include "sys/file.hpp"
#include "sys/procstat.hpp"
#include "sys/signals.hpp"

namespace core::process::detail {

namespace {

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

// What happens when the current process of a daemon ends.
enum class After {
    policy,     // an unexpected end: the restart policy decides
    unhealthy,  // we stopped it for failing its health check: a failure for the policy
    stop,       // stop(): go to stopped
    restart,    // restart() (or start() while stopping): start again at once
    remove,     // remove(): forget it
    wait_deps,  // a `requires` dependency restarts: wait until it is ready, then start again
};

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

constexpr std::size_t kLastLineChars = 300;  // of the line quoted in a failure's reason

// The output state of one process of a daemon, shared by its on_output and on_exit hooks.
// Its splitters are used under SupervisorImpl::mu.
struct Tap {
    std::string name;
    std::uint64_t generation = 0;
    LineSplitter out, err;
    Tap(std::string n, std::uint64_t g, std::size_t max_piece)
        : name(std::move(n)), generation(g), out(max_piece), err(max_piece) {}
};

}  // namespace

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

    void post(Msg m) {
        {
            std::lock_guard lk(mu);
            inbox.push_back(std::move(m));
        }
        cv.notify_one();
    }

    // Caller holds mu.
    void keep_line_locked(DaemonRec& d, const std::string& line) {
        if (opts.last_lines == 0) return;
        d.last_lines.push_back(line);
        while (d.last_lines.size() > opts.last_lines) d.last_lines.pop_front();
    }

    std::shared_ptr<LogSink> make_sink(const DaemonSpec& spec) {
        return logs->sink(spec.name, spec.log, opts.log_dir);
    }

    // A chunk of the current process's output (on the Service's notifier thread, in order):
    // split into lines, kept for the failure report and queued for the log file; never blocks
    // beyond mu and the log queue's lock. `last` flushes an unterminated last line (the exit).
    void on_chunk(Tap& tap, Stream stream, std::string_view bytes, bool last) {
        std::vector<std::pair<bool, std::string>> lines;
        std::shared_ptr<LogSink> sink;
        {
            std::lock_guard lk(mu);
            auto it = daemons.find(tap.name);
            // A late chunk of a daemon removed (and perhaps added anew) since: not its output.
            if (it == daemons.end() || it->second->generation != tap.generation) return;
            DaemonRec& d = *it->second;
            auto keep = [&](bool err) {
                return [&, err](std::string line) {
                    keep_line_locked(d, line);
                    lines.emplace_back(err, std::move(line));
                };
            };
            if (last) {
                tap.out.flush(keep(false));
                tap.err.flush(keep(true));
            } else {
                const bool err = stream == Stream::stderr_;
                (err ? tap.err : tap.out).feed(bytes.data(), bytes.size(), keep(err));
            }
            sink = d.sink;
        }
        if (!sink) return;
        const auto now = std::chrono::system_clock::now();
        for (auto& [err, line] : lines) (void)logs->push(sink, err, std::move(line), now);
    }

    Result<void> call(CommandMsg::Kind kind, const std::string& name,
                      std::chrono::milliseconds bound,
                      std::optional<DaemonSpec> spec = std::nullopt) {
        if (std::this_thread::get_id() == thread_id)
            return fail(E("supervisor",
                          "called from the supervisor thread (a state-change "
                          "callback must not call start/stop/restart/remove)"));
        auto done = std::make_shared<Completion>();
        {
            std::lock_guard lk(mu);
            if (!daemons.count(name)) return fail(E("supervisor", "unknown daemon: " + name));
        }
        post(CommandMsg{kind, name, done, std::move(spec)});
        auto r = done->wait_for(bound);
        if (!r)
            return fail(E("supervisor", "daemon \"" + name + "\": no result within " +
                                            std::to_string(bound.count()) + "ms"));
        return *r;
    }

    // How long a caller waits for a stop: the stop timeout, then kill_wait for the reap.
    std::chrono::milliseconds stop_bound(const std::string& name) const {
        std::lock_guard lk(mu);
        auto it = daemons.find(name);
        const auto t =
            it == daemons.end() ? std::chrono::milliseconds(0) : it->second->spec.stop_timeout;
        return t + opts.kill_wait + std::chrono::seconds(1);
    }

    // ------------------------------------------------------------ state changes

    // Caller holds mu.
    void set_state_locked(DaemonRec& d, DaemonState to, std::string reason,
                          std::chrono::milliseconds delay = {}) {
        if (d.state == to && to != DaemonState::starting) return;
        DaemonStateChanged ev{d.spec.name, d.state,           to,   d.pid,
                              d.restarts,  std::move(reason), delay};
        d.state = to;
        d.since = std::chrono::system_clock::now();
        events.push_back(std::move(ev));
    }
    void set_state(DaemonRec& d, DaemonState to, std::string reason,
                   std::chrono::milliseconds delay = {}) {
        std::lock_guard lk(mu);
        set_state_locked(d, to, std::move(reason), delay);
    }

    void complete(DaemonRec& d, const Result<void>& r) {
        std::lock_guard lk(mu);  // waiters is a DaemonRec field: written under mu
        for (auto& w : d.waiters) completions.emplace_back(std::move(w), r);
        d.waiters.clear();
    }
    void add_waiter(DaemonRec& d, CompletionPtr c) {
        std::lock_guard lk(mu);
        d.waiters.push_back(std::move(c));
    }

    // Publishes the queued events, then the completions (so that a caller whose stop() returned
    // has already seen `stopped`). Called without mu.
    void flush() {
        auto evs = std::move(events);
        events.clear();
        for (const auto& ev : evs) {
            log()->debug("supervisor: {}: {} -> {} ({})", ev.name, to_string(ev.from),
                         to_string(ev.to), ev.reason);
            if (opts.broadcast) core.broadcast(Value(ev));
            if (opts.on_state_change) {
                try {
                    opts.on_state_change(ev);
                } catch (const std::exception& ex) {
                    log()->debug("supervisor: on_state_change threw: {}", ex.what());
                } catch (...) {
                    log()->debug("supervisor: on_state_change threw");
                }
            }
        }
        sync_state();
        auto cs = std::move(completions);
        completions.clear();
        for (auto& [c, r] : cs) c->set(r);
    }

    // Keeps the state file in step with the running daemons (supervisor thread; after the
    // destructor's join, the calling thread). Removed once nothing runs.
    void sync_state() {
        if (opts.state_file.empty()) return;
        std::vector<Survivor> now;
        {
            std::lock_guard lk(mu);
            for (const auto& name : order) {
                const auto& d = *daemons.at(name);
                if (d.pid > 0) now.push_back(Survivor{name, d.pid, d.start_time});
            }
        }
        auto same = [](const std::vector<Survivor>& a, const std::vector<Survivor>& b) {
            if (a.size() != b.size()) return false;
            for (std::size_t i = 0; i < a.size(); ++i)
                if (a[i].name != b[i].name || a[i].pid != b[i].pid) return false;
            return true;
        };
        if (state_known && same(now, state_written)) return;
        Result<void> r;
        if (now.empty()) {
            r = sys::file::unlink(opts.state_file);
            if (!r && r.error().code() == ENOENT) r = {};
        } else {
            r = write_state_file(opts.state_file, now);
        }
        if (!r) {
            log()->debug("supervisor: state file: {}", r.error().what());
            state_known = false;
            return;
        }
        state_written = std::move(now);
        state_known = true;
    }

    // ------------------------------------------------------------ starting

    // Refuses a start while the PID file names a live holder; removes a stale one.
    Result<void> check_pid_file(const DaemonRec& d) {
        if (d.spec.pid_file.empty()) return {};
        auto info = probe_pid_file(d.spec.pid_file);
        if (!info) return {};  // missing or unreadable: nothing to protect
        if (info->alive)
            return fail(E("supervisor", "daemon \"" + d.spec.name + "\": pid file \"" +
                                            d.spec.pid_file + "\" is held by live pid " +
                                            std::to_string(info->pid)));
        remove_stale_pid_file(d);
        return {};
    }

    void remove_stale_pid_file(const DaemonRec& d) {
        if (d.spec.pid_file.empty()) return;
        auto info = probe_pid_file(d.spec.pid_file);
        if (!info || info->alive) return;
        std::error_code ec;
        std::filesystem::remove(d.spec.pid_file, ec);
        if (ec)
            log()->debug("supervisor: {}: removing stale pid file {}: {}", d.spec.name,
                         d.spec.pid_file, ec.message());
    }

    // ------------------------------------------------------------ dependencies

    // Ready as a dependent sees it: up, and healthy when checked.
    static bool is_ready(const DaemonRec& d) {
        if (!d.proc || d.stop_pending) return false;
        if (d.spec.notify && (!d.notified || d.reloading || d.stopping_said)) return false;
        if (d.spec.health.enabled()) return d.state == DaemonState::healthy;
        return d.state == DaemonState::running || d.state == DaemonState::healthy;
    }

    static std::string names_text(const std::vector<std::string>& names) {
        std::string out;
        for (const auto& n : names) out += (out.empty() ? "\"" : ", \"") + n + "\"";
        return out;
    }

    // The dependencies of d that are not ready yet. Errors: an unknown one; with `manual`, a
    // `requires` dependency that is failed (a dependent is not started while it is).
    Result<std::vector<std::string>> blockers(const DaemonRec& d, bool manual) {
        std::vector<std::string> out;
        std::lock_guard lk(mu);
        for (const auto* list : {&d.spec.requires_, &d.spec.after}) {
            for (const auto& name : *list) {
                auto it = daemons.find(name);
                if (it == daemons.end())
                    return fail(E("supervisor", "daemon \"" + d.spec.name +
                                                    "\": unknown dependency \"" + name + "\""));
                if (manual && list == &d.spec.requires_ && it->second->state == DaemonState::failed)
                    return fail(E("supervisor", "daemon \"" + d.spec.name + "\": requires \"" +
                                                    name + "\", which is failed"));
                if (!is_ready(*it->second) && std::find(out.begin(), out.end(), name) == out.end())
                    out.push_back(name);
            }
        }
        return out;
    }

    // Every start goes through here: at once when the dependencies are ready, else held in
    // `starting` (no process) until release_waiting() finds them ready. `manual`: a start(),
    // restart() or reload, whose caller gets the refusal of a failed `requires` dependency.
    Result<void> request_start(DaemonRec& d, const std::string& why, bool manual) {
        auto wait = blockers(d, manual);
        if (!wait) {
            std::lock_guard lk(mu);
            d.waiting = false;
            d.waiting_for.clear();
            d.restart_at.reset();
            // A start() refused for a failed dependency leaves a stopped daemon stopped.
            if (d.state != DaemonState::stopped || !manual) {
                d.last_error = wait.error().what();
                set_state_locked(d, DaemonState::failed, d.last_error);
            }
            return fail(wait.error());
        }
        if (wait->empty()) {
            {
                std::lock_guard lk(mu);
                d.waiting = false;
                d.waiting_for.clear();
            }
            return do_start(d, why);
        }
        std::lock_guard lk(mu);
        const bool fresh = !d.waiting || d.waiting_for != *wait;
        d.waiting = true;
        d.waiting_for = *wait;
        d.restart_at.reset();
        if (fresh || d.state != DaemonState::starting)
            set_state_locked(d, DaemonState::starting, why + ": waiting for " + names_text(*wait));
        return {};
    }

    // Starts every held daemon whose dependencies became ready (a start can make others ready:
    // a daemon without a check is ready once running).
    void release_waiting() {
        for (bool again = true; again;) {
            again = false;
            std::vector<std::string> names;
            {
                std::lock_guard lk(mu);
                names = order;
            }
            for (const auto& name : names) {
                DaemonRec* d = find(name);
                if (!d || !d->waiting) continue;
                auto wait = blockers(*d, false);
                if (wait && !wait->empty()) {
                    std::lock_guard lk(mu);
                    d->waiting_for = *wait;
                    continue;
                }
                (void)request_start(*d, "dependencies ready", false);
                flush();
                again = true;
            }
        }
    }

    // `dep` ended: its `requires` dependents stop too; when it comes back by itself (backoff,
    // restart) they wait for it to be ready again, else they stay stopped.
    void stop_dependents(const std::string& dep, bool coming_back) {
        std::vector<std::string> names;
        {
            std::lock_guard lk(mu);
            names = order;
        }
        const std::string why =
            "required \"" + dep + "\" " + (coming_back ? "is restarting" : "went down");
        for (const auto& name : names) {
            DaemonRec* d = find(name);
            if (!d || std::find(d->spec.requires_.begin(), d->spec.requires_.end(), dep) ==
                          d->spec.requires_.end())
                continue;
            if (d->proc) {
                if (d->state == DaemonState::stopping &&
                    (d->after == After::stop || d->after == After::remove))
                    continue;  // already going down for good
                begin_stop(*d, coming_back ? After::wait_deps : After::stop, why);
            } else if (d->state == DaemonState::backoff || d->waiting) {
                if (coming_back) {
                    (void)request_start(*d, why, false);
                } else {
                    std::lock_guard lk(mu);
                    d->waiting = false;
                    d->waiting_for.clear();
                    d->restart_at.reset();
                    set_state_locked(*d, DaemonState::stopped, why);
                }
            }
        }
    }

    // Stops `root` (with `after`) once every daemon that requires it, directly or through
    // others, is down: those stop first, in reverse dependency order, and then wait for it to
    // be ready again. Without such dependents that are up, root stops at once.
    void stop_after_dependents(DaemonRec& root, After after, const std::string& why) {
        const std::string name = root.spec.name;
        {
            std::lock_guard lk(mu);
            std::set<std::string> set{name};
            for (bool grew = true; grew;) {
                grew = false;
                for (const auto& [n, d] : daemons) {
                    if (set.count(n) || !d->proc || d->state == DaemonState::stopping) continue;
                    for (const auto& dep : d->spec.requires_)
                        if (set.count(dep)) {
                            set.insert(n);
                            grew = true;
                            break;
                        }
                }
            }
            for (const auto& n : set) {
                DaemonRec& d = *daemons.at(n);
                d.stop_pending = n == name ? after : After::wait_deps;
                d.stop_pending_why = n == name ? why : "required \"" + name + "\" is restarting";
            }
        }
        begin_pending_stops();
    }

    // Begins the pending stops whose dependents are all down.
    void begin_pending_stops() {
        for (bool again = true; again;) {
            again = false;
            std::vector<std::string> names;
            {
                std::lock_guard lk(mu);
                names = order;
            }
            for (const auto& name : names) {
                DaemonRec* d = find(name);
                if (!d || !d->stop_pending) continue;
                After after;
                std::string why;
                {
                    std::lock_guard lk(mu);
                    bool blocked = false;
                    for (const auto& [n, o] : daemons)
                        blocked = blocked || (o->proc && std::find(o->spec.requires_.begin(),
                                                                   o->spec.requires_.end(), name) !=
                                                             o->spec.requires_.end());
                    if (blocked) continue;
                    after = *d->stop_pending;
                    why = std::move(d->stop_pending_why);
                    d->stop_pending.reset();
                }
                if (d->proc) begin_stop(*d, after, why);
                flush();
                again = true;
            }
        }
    }

    // Starts the daemon's process now. `why` is the event reason.
    Result<void> do_start(DaemonRec& d, const std::string& why) {
        const auto now = Clock::now();
        {
            std::lock_guard lk(mu);
            d.window.record(d.spec.start_limit, now);
            if (d.ever_started) ++d.restarts;
            d.ever_started = true;
            ++d.generation;
            d.after = After::policy;
            d.restart_at.reset();
            d.kill_at.reset();
            d.health_failures = 0;
            d.next_check.reset();
            d.check_in_flight = false;
            d.stable_since.reset();
            d.stable_until.reset();
            d.last_lines.clear();
            d.notified = d.reloading = d.stopping_said = false;
            d.main_pid = 0;
            d.status_text.clear();
            d.watchdog_at.reset();
            d.ready_deadline.reset();
            d.unhealthy_why.clear();
            if (d.spec.notify && d.spec.start_timeout.count() > 0)
                d.ready_deadline = now + d.spec.start_timeout;
            set_state_locked(d, DaemonState::starting, why);
        }
        auto tap = std::make_shared<Tap>(d.spec.name, d.generation, opts.max_output);
        Result<std::shared_ptr<ManagedProcess>> proc = check_pid_file(d).and_then([&]() {
            return notify_socket(d).and_then([&](std::string address) {
                RunOptions o = run_options(d.spec);
                if (!address.empty()) o.env.push_back("NOTIFY_SOCKET=" + address);
                o.on_output = [link = link, tap](const OutputChunk& c) {
                    link->with([&](SupervisorImpl& self) {
                        self.on_chunk(*tap, c.stream, c.bytes, false);
                    });
                };
                return service.start(Context::background(), o);
            });
        });
        if (!proc) {
            const Error err = proc.error();
            ExitInfo e;
            e.spawn_failed = true;
            ended(d, e, err.what());
            return fail(err);
        }
        {
            std::lock_guard lk(mu);
            d.proc = *proc;
            d.proc_id = (*proc)->id();
            d.pid = (*proc)->pid();
            d.start_time = start_time_of(d.pid);  // our unreaped child: the pid is still its
            if (d.spec.notify)
                set_state_locked(d, DaemonState::starting,
                                 "pid " + std::to_string(d.pid) + ": waiting for READY=1");
            else
                mark_running_locked(d, now, "pid " + std::to_string(d.pid));
        }
        // The state file names the new process at once: a supervisor killed right after this
        // spawn leaves it findable by the next one.
        sync_state();
        // After every chunk of its output (so the last lines are kept when the exit is
        // handled); at once, on the notifier thread, if it has finished already.
        (*proc)->on_exit([link = link, tap](const ProcessInfo& info) {
            link->with([&](SupervisorImpl& self) {
                self.on_chunk(*tap, Stream::stdout_, {}, true);
                self.post(ExitMsg{tap->name, info.id, info});
            });
        });
        return {};
    }

    // Caller holds mu. The process is up (spawned; with notify, READY=1 came): `running`, and
    // health checks and the stable period start.
    void mark_running_locked(DaemonRec& d, Clock::time_point now, const std::string& why) {
        set_state_locked(d, DaemonState::running, why);
        if (d.spec.health.enabled()) {
            const auto& h = d.spec.health;
            d.next_check = now + (h.start_grace.count() > 0 ? h.start_grace : h.interval);
        } else {
            d.stable_since = now;
        }
    }

    // The NOTIFY_SOCKET of a notify daemon (empty for the others).
    Result<std::string> notify_socket(const DaemonRec& d) {
        if (!d.spec.notify) return std::string();
        if (!notify) {
            auto hub = NotifyHub::create([this](const std::string& name, sys::notify::Datagram g) {
                post(NotifyMsg{name, std::move(g)});
            });
            if (!hub) return fail(E("supervisor", "notify socket", hub.error()));
            notify = std::move(*hub);
        }
        auto address = notify->open(d.spec.name);
        if (!address) return fail(E("supervisor", "notify socket", address.error()));
        return *address;
    }

    // ------------------------------------------------------------ readiness protocol

    // One datagram from a notify socket. Only the daemon's own process (or the pid it named by
    // MAINPID=) is heard; anything else, or anything malformed, is dropped and counted.
    void on_notify(const NotifyMsg& m) {
        DaemonRec* d = find(m.name);
        if (!d) return;
        {
            std::lock_guard lk(mu);
            const auto& g = m.datagram;
            auto drop = [&](const std::string& why) {
                ++d->notify_dropped;
                log()->debug("supervisor: {}: notify datagram dropped: {}", d->spec.name, why);
            };
            if (!d->proc || !d->spec.notify) return drop("no process");
            if (g.pid <= 0 || (g.pid != d->pid && g.pid != d->main_pid))
                return drop("from pid " + std::to_string(g.pid) + ", not the daemon's " +
                            std::to_string(d->pid));
            if (g.truncated) return drop("longer than " + std::to_string(kNotifyMax) + " bytes");
            if (g.fds > 0) return drop("carried descriptors");
            auto fields = parse_notify(g.text);
            if (!fields) return drop("malformed");
            const auto now = Clock::now();
            for (const auto& f : *fields) {
                if (f.key == "READY" && f.value == "1") {
                    d->notified = true;
                    d->reloading = false;
                    d->ready_deadline.reset();
                    if (d->spec.watchdog.count() > 0) d->watchdog_at = now + d->spec.watchdog;
                    if (d->state == DaemonState::starting) mark_running_locked(*d, now, "READY=1");
                } else if (f.key == "STATUS") {
                    d->status_text = f.value.substr(0, 1024);
                } else if (f.key == "WATCHDOG" && f.value == "1") {
                    if (d->spec.watchdog.count() > 0 && d->watchdog_at)
                        d->watchdog_at = now + d->spec.watchdog;
                } else if (f.key == "STOPPING" && f.value == "1") {
                    d->stopping_said = true;
                    d->watchdog_at.reset();
                } else if (f.key == "RELOADING" && f.value == "1") {
                    d->reloading = true;
                } else if (f.key == "MAINPID") {
                    int pid = 0;
                    try {
                        pid = std::stoi(f.value);
                    } catch (...) {
                    }
                    if (pid > 0 && sys::notify::in_tree(pid, d->pid))
                        d->main_pid = pid;
                    else
                        drop("MAINPID=" + f.value + " is not in the daemon's process tree");
                } else if (f.key == "EXTEND_TIMEOUT_USEC") {
                    std::uint64_t us = 0;
                    try {
                        us = std::stoull(f.value);
                    } catch (...) {
                    }
                    // Bounded like every duration (a year), so the deadline cannot overflow.
                    us = std::min<std::uint64_t>(us, 365ull * 24 * 3600 * 1000000);
                    const auto until = now + std::chrono::microseconds(us);
                    for (auto* t : {&d->ready_deadline, &d->kill_at, &d->watchdog_at})
                        if (*t && **t < until) *t = until;
                }
                // Other keys (ERRNO=, BUSERROR=, FDSTORE=, …) are not ours: ignored.
            }
        }
    }

    // The watchdog or start_timeout of a notify daemon ran out: unhealthy, then its policy.
    void notify_expired(DaemonRec& d, const std::string& why) {
        bool restart = false;
        {
            std::lock_guard lk(mu);
            d.watchdog_at.reset();
            d.ready_deadline.reset();
            d.last_error = why;
            d.unhealthy_why = why;
            if (d.stable_since && !d.stable_until) d.stable_until = Clock::now();
            set_state_locked(d, DaemonState::unhealthy, why);
            // A start that never became ready is a failed start whatever the policy.
            restart = d.spec.restart != RestartPolicy::no || !d.notified;
        }
        if (restart) begin_stop(d, After::unhealthy, "restarting: " + why);
    }

    RunOptions run_options(const DaemonSpec& s) const {
        RunOptions o;
        o.command = s.command;
        o.args = s.args;
        o.dir = s.dir;
        o.env = s.env;
        o.kill_group = true;  // stop signals reach the daemon's own children too
        o.detach = true;
        o.max_output = opts.max_output;
        o.grace_period = s.stop_timeout;  // for the Service's own shutdown of our children
        o.cgroup = s.cgroup;              // containment and identity (issue 13)
        o.limits = s.limits;
        o.identity = s.identity;
        return o;
    }

    // ------------------------------------------------------------ ending

    static std::string limit_text(const DaemonRec& d) {
        return "start limit hit: " + std::to_string(d.window.count()) + " starts within " +
               std::to_string(d.spec.start_limit.interval.count()) + "ms";
    }

    // The daemon's process ended (or never started): decide what comes next.
    void ended(DaemonRec& d, ExitInfo e, const std::string& detail) {
        const auto now = Clock::now();
        if (d.stop_pending) {
            // It ended by itself while its dependents were going down for its restart.
            std::lock_guard lk(mu);
            d.after = *d.stop_pending;
            d.stop_pending.reset();
            d.stop_pending_why.clear();
        }
        const After after = d.after;
        if (after == After::unhealthy) e.unhealthy = true;
        std::string what = e.spawn_failed ? detail : describe(e);
        if (after == After::unhealthy && !d.unhealthy_why.empty())
            what = describe(ExitInfo{e.exit_code, e.signal, false, false}) + " after " +
                   d.unhealthy_why;
        bool erase = false;
        {
            std::lock_guard lk(mu);
            // A failure's reason quotes its last line of output ("exited with code 1: OSError:
            // [Errno 98] Address already in use"): what an operator needs first.
            if ((after == After::policy || after == After::unhealthy) && is_failure(e) &&
                !e.spawn_failed && !d.last_lines.empty()) {
                std::string last = d.last_lines.back();
                if (last.size() > kLastLineChars) last = last.substr(0, kLastLineChars) + "…";
                what += ": " + last;
            }
            d.proc.reset();
            d.proc_id.clear();
            d.pid = 0;
            d.kill_at.reset();
            d.next_check.reset();
            d.check_in_flight = false;
            d.watchdog_at.reset();
            d.ready_deadline.reset();
            d.notified = false;
            d.main_pid = 0;
            d.exited = d.exited || !e.spawn_failed;
            if (!e.spawn_failed) {
                d.last_exit_code = e.exit_code;
                d.last_signal = e.signal;
            }
            // A stop we asked for is not a failure; anything else that failed is recorded.
            if (after == After::policy || after == After::unhealthy) {
                if (is_failure(e)) d.last_error = what;
            }
            // The stable period ended when the daemon turned unhealthy, if it did, else now:
            // either way a long enough one resets the backoff.
            if (resets_backoff(d.stable_since, d.stable_until.value_or(now), d.spec.reset_after))
                d.attempt = 0;
            d.stable_since.reset();
            d.stable_until.reset();
            if (d.next_spec && after != After::remove) {
                // apply() changed the spec while this process ran: the next one uses it.
                if (d.next_spec->log != d.spec.log) d.sink = make_sink(*d.next_spec);
                d.spec = std::move(*d.next_spec);
                d.next_spec.reset();
            }
            d.after = After::policy;

            switch (after) {
                case After::stop:
                    set_state_locked(d, DaemonState::stopped, "stopped: " + what);
                    break;
                case After::remove:
                    set_state_locked(d, DaemonState::stopped, "removed: " + what);
                    erase = true;
                    break;
                case After::restart:
                case After::wait_deps:
                    break;  // below, unlocked
                case After::policy:
                case After::unhealthy:
                    if (should_restart(d.spec.restart, e)) {
                        ++d.attempt;
                        const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
                        const auto delay = backoff_delay(d.spec.backoff, d.attempt, u);
                        // Every recorded start is <= now, so the window at the end of the
                        // delay is known already: fail now rather than after a useless wait.
                        if (!d.window.allows(d.spec.start_limit, now + delay)) {
                            d.last_error = limit_text(d);
                            set_state_locked(d, DaemonState::failed, what + "; " + d.last_error);
                        } else {
                            d.restart_at = now + delay;
                            set_state_locked(d, DaemonState::backoff, what, delay);
                        }
                    } else {
                        set_state_locked(
                            d, is_failure(e) ? DaemonState::failed : DaemonState::stopped, what);
                    }
                    break;
            }
        }
        if (!e.spawn_failed) remove_stale_pid_file(d);
        const std::string name = d.spec.name;
        // Its `requires` dependents go down with it; they come back with it when it does.
        const bool coming_back =
            after == After::restart || after == After::wait_deps || d.state == DaemonState::backoff;
        if (after == After::restart || after == After::wait_deps) {
            auto r = request_start(d, after == After::restart ? "restart" : "dependency ready",
                                   after == After::restart);
            complete(d, r);
        }
        if (after == After::stop) complete(d, {});
        if (erase) {
            complete(d, {});
            std::lock_guard lk(mu);
            order.erase(std::remove(order.begin(), order.end(), name), order.end());
            daemons.erase(name);  // d is gone from here on
            if (notify) notify->close(name);
        }
        if (!e.spawn_failed) stop_dependents(name, coming_back);
    }

    void on_exit(const ExitMsg& m) {
        DaemonRec* d = find(m.name);
        if (!d || d->proc_id != m.proc_id || !d->proc) return;  // stale: an earlier process
        ExitInfo e;
        e.exit_code = m.info.exit_code;
        e.signal = m.info.signal;
        if (e.signal != 0) e.exit_code = -1;
        ended(*d, e, m.info.error);
    }

    // ------------------------------------------------------------ stopping

    // Sends the stop signal (SIGKILL at once with a zero timeout) and arms the kill deadline.
    void begin_stop(DaemonRec& d, After after, const std::string& why) {
        std::shared_ptr<ManagedProcess> proc;
        {
            std::lock_guard lk(mu);
            d.after = after;
            d.stop_pending.reset();
            if (d.state == DaemonState::stopping) return;  // already signalled; keep deadline
            proc = d.proc;
            d.next_check.reset();
            d.restart_at.reset();
            set_state_locked(d, DaemonState::stopping, why);
            if (d.spec.stop_timeout.count() > 0) d.kill_at = Clock::now() + d.spec.stop_timeout;
        }
        const int sig = d.spec.stop_timeout.count() > 0 ? d.spec.stop_signal : sys::sig_kill();
        if (auto r = proc->signal(sig); !r)
            log()->debug("supervisor: {}: signal: {}", d.spec.name, r.error().what());
        // A SIGSTOPped daemon would hold the stop signal pending until the kill deadline:
        // SIGCONT right after it, as systemd does, lets it act on it now.
        if (sig != sys::sig_kill() && sig != sys::sig_cont())
            if (auto r = proc->signal(sys::sig_cont()); !r)
                log()->debug("supervisor: {}: SIGCONT: {}", d.spec.name, r.error().what());
    }

    void on_kill_deadline(DaemonRec& d) {
        std::shared_ptr<ManagedProcess> proc;
        {
            std::lock_guard lk(mu);
            d.kill_at.reset();
            proc = d.proc;
        }
        if (!proc) return;
        log()->debug("supervisor: {}: no exit {}ms after {}, sending SIGKILL", d.spec.name,
                     d.spec.stop_timeout.count(), signal_name(d.spec.stop_signal));
        if (auto r = proc->signal(sys::sig_kill()); !r)
            log()->debug("supervisor: {}: SIGKILL: {}", d.spec.name, r.error().what());
    }

    // ------------------------------------------------------------ commands

    void on_command(CommandMsg& c) {
        DaemonRec* d = find(c.name);
        if (!d) {
            completions.emplace_back(c.done, fail(E("supervisor", "unknown daemon: " + c.name)));
            return;
        }
        switch (c.kind) {
            case CommandMsg::start:
                switch (d->state) {
                    case DaemonState::stopped:
                    case DaemonState::failed: {
                        {
                            std::lock_guard lk(mu);
                            d->window.clear();
                            d->attempt = 0;
                        }
                        auto r = request_start(*d, "start", true);
                        completions.emplace_back(c.done, r);
                        break;
                    }
                    case DaemonState::stopping: {
                        std::lock_guard lk(mu);
                        d->after = After::restart;
                        d->waiters.push_back(c.done);
                        break;
                    }
                    default:  // up, or in backoff: already on its way
                        completions.emplace_back(c.done, Result<void>{});
                }
                break;
            case CommandMsg::restart: {
                std::lock_guard lk(mu);
                d->window.clear();
                d->attempt = 0;
            }
                if (d->proc) {
                    add_waiter(*d, c.done);
                    stop_after_dependents(*d, After::restart, "restart requested");
                } else {
                    completions.emplace_back(c.done, request_start(*d, "restart", true));
                }
                break;
            case CommandMsg::update: {
                DaemonSpec next = std::move(*c.spec);
                if (d->state == DaemonState::stopping &&
                    (d->after == After::stop || d->after == After::remove)) {
                    // Being stopped on request: it takes the spec when it ends, and stays down.
                    std::lock_guard lk(mu);
                    d->next_spec = std::move(next);
                    d->waiters.push_back(c.done);
                    break;
                }
                if (d->proc) {
                    {
                        std::lock_guard lk(mu);
                        d->next_spec = std::move(next);
                        d->window.clear();
                        d->attempt = 0;
                    }
                    add_waiter(*d, c.done);
                    stop_after_dependents(*d, After::restart, "restarting: spec changed");
                    break;
                }
                const bool was_down =
                    d->state == DaemonState::backoff || d->state == DaemonState::failed;
                {
                    std::lock_guard lk(mu);
                    if (next.log != d->spec.log) d->sink = make_sink(next);
                    d->spec = std::move(next);
                    d->window.clear();
                    d->attempt = 0;
                    d->restart_at.reset();
                }
                // A stopped daemon stays stopped; one waiting or given up is started anew.
                completions.emplace_back(
                    c.done, was_down ? request_start(*d, "spec changed", true) : Result<void>{});
                break;
            }
            case CommandMsg::stop:
            case CommandMsg::remove: {
                const After after = c.kind == CommandMsg::stop ? After::stop : After::remove;
                if (d->proc) {
                    add_waiter(*d, c.done);
                    begin_stop(*d, after,
                               after == After::stop ? "stop requested" : "remove requested");
                    break;
                }
                {
                    std::lock_guard lk(mu);
                    d->restart_at.reset();
                    d->waiting = false;
                    d->waiting_for.clear();
                    set_state_locked(*d, DaemonState::stopped, "stop requested");
                }
                completions.emplace_back(c.done, Result<void>{});
                if (after == After::remove) {
                    std::lock_guard lk(mu);
                    order.erase(std::remove(order.begin(), order.end(), c.name), order.end());
                    daemons.erase(c.name);
                    if (notify) notify->close(c.name);
                }
                break;
            }
        }
    }

    // ------------------------------------------------------------ health

    void on_health(const HealthMsg& m) {
        DaemonRec* d = find(m.name);
        if (!d || d->generation != m.generation || !d->proc) return;
        bool restart = false;
        {
            std::lock_guard lk(mu);
            d->check_in_flight = false;
            if (d->state != DaemonState::running && d->state != DaemonState::healthy &&
                d->state != DaemonState::unhealthy)
                return;
            d->next_check = Clock::now() + d->spec.health.interval;
            if (m.result) {
                d->health_failures = 0;
                if (d->state != DaemonState::healthy) {
                    d->stable_since = Clock::now();
                    d->stable_until.reset();
                    set_state_locked(*d, DaemonState::healthy, "health check passed");
                }
                return;
            }
            ++d->health_failures;
            d->last_error = "health: " + m.result.error().what();
            if (d->health_failures < d->spec.health.failures || d->state == DaemonState::unhealthy)
                return;
            // Not reset here: the exit compares the stable period with reset_after.
            if (d->stable_since && !d->stable_until) d->stable_until = Clock::now();
            set_state_locked(
                *d, DaemonState::unhealthy,
                d->last_error + " (" + std::to_string(d->health_failures) + " in a row)");
            restart = d->spec.restart != RestartPolicy::no;
        }
        if (restart) begin_stop(*d, After::unhealthy, "restarting: unhealthy");
    }

    void start_check(DaemonRec& d) {
        {
            std::lock_guard lk(mu);
            d.next_check.reset();
            d.check_in_flight = true;
        }
        checker->submit(d.spec.name, d.generation, d.spec.health);
    }

    // ------------------------------------------------------------ the loop

    DaemonRec* find(const std::string& name) {
        std::lock_guard lk(mu);
        auto it = daemons.find(name);
        return it == daemons.end() ? nullptr : it->second.get();
    }

    static bool checkable(const DaemonRec& d) {
        return d.proc && !d.check_in_flight &&
               (d.state == DaemonState::running || d.state == DaemonState::healthy ||
                d.state == DaemonState::unhealthy);
    }

    // Caller holds mu.
    std::optional<Clock::time_point> next_deadline_locked() const {
        std::optional<Clock::time_point> next;
        auto consider = [&](const std::optional<Clock::time_point>& t) {
            if (t && (!next || *t < *next)) next = t;
        };
        for (const auto& [name, d] : daemons) {
            if (d->state == DaemonState::backoff) consider(d->restart_at);
            if (d->state == DaemonState::stopping) consider(d->kill_at);
            if (checkable(*d)) consider(d->next_check);
            if (d->proc && d->state != DaemonState::stopping) {
                consider(d->ready_deadline);
                consider(d->watchdog_at);
            }
        }
        return next;
    }

    void fire_due() {
        const auto now = Clock::now();
        std::vector<std::string> names;
        {
            std::lock_guard lk(mu);
            names = order;
        }
        for (const auto& name : names) {
            DaemonRec* d = find(name);
            if (!d) continue;
            if (d->state == DaemonState::backoff && d->restart_at && *d->restart_at <= now) {
                if (!d->window.allows(d->spec.start_limit, now)) {
                    std::lock_guard lk(mu);
                    d->restart_at.reset();
                    d->last_error = limit_text(*d);
                    set_state_locked(*d, DaemonState::failed, d->last_error);
                } else {
                    (void)request_start(
                        *d, "restart after backoff (attempt " + std::to_string(d->attempt) + ")",
                        false);
                }
            } else if (d->state == DaemonState::stopping && d->kill_at && *d->kill_at <= now) {
                on_kill_deadline(*d);
            } else if (d->proc && d->state != DaemonState::stopping && d->ready_deadline &&
                       *d->ready_deadline <= now) {
                notify_expired(*d, "no READY=1 within start_timeout (" +
                                       std::to_string(d->spec.start_timeout.count()) + "ms)");
            } else if (d->proc && d->state != DaemonState::stopping && d->watchdog_at &&
                       *d->watchdog_at <= now) {
                notify_expired(*d, "watchdog: no WATCHDOG=1 within " +
                                       std::to_string(d->spec.watchdog.count()) + "ms");
            } else if (checkable(*d) && d->next_check && *d->next_check <= now) {
                start_check(*d);
            }
            flush();
        }
    }

    void run() {
        std::unique_lock lk(mu);
        for (;;) {
            if (inbox.empty() && !quit) {
                const auto next = next_deadline_locked();
                auto ready = [&] { return !inbox.empty() || quit; };
                if (next)
                    cv.wait_until(lk, *next, ready);
                else
                    cv.wait(lk, ready);
            }
            if (quit && inbox.empty()) return;
            std::deque<Msg> batch;
            batch.swap(inbox);
            lk.unlock();
            for (auto& m : batch) {
                if (auto* c = std::get_if<CommandMsg>(&m)) on_command(*c);
                if (auto* e = std::get_if<ExitMsg>(&m)) on_exit(*e);
                if (auto* h = std::get_if<HealthMsg>(&m)) on_health(*h);
                if (auto* n = std::get_if<NotifyMsg>(&m)) on_notify(*n);
                flush();
            }
            fire_due();
            begin_pending_stops();
            release_waiting();
            flush();
            lk.lock();
        }
    }

    // Stops `names` in reverse dependency order: a daemon stops once nothing in the set that
    // depends on it (after or requires) is still to stop. The stops of one round are posted
    // before any is waited for, so independent daemons stop together.
    Result<void> stop_ordered(std::vector<std::string> names) {
        if (std::this_thread::get_id() == thread_id)
            return fail(E("supervisor", "called from the supervisor thread"));
        Result<void> first;
        std::set<std::string> left(names.begin(), names.end());
        while (!left.empty()) {
            std::vector<std::string> round;
            {
                std::lock_guard lk(mu);
                for (const auto& name : names) {
                    if (!left.count(name)) continue;
                    bool blocked = false;
                    for (const auto& other : left) {
                        auto it = daemons.find(other);
                        if (other == name || it == daemons.end()) continue;
                        const auto& sp = it->second->spec;
                        for (const auto* list : {&sp.after, &sp.requires_})
                            blocked = blocked ||
                                      std::find(list->begin(), list->end(), name) != list->end();
                    }
                    if (!blocked) round.push_back(name);
                }
                // A cycle cannot be added; should one exist anyway, stop the rest together.
                if (round.empty()) round.assign(left.begin(), left.end());
            }
            std::vector<std::pair<std::string, CompletionPtr>> pending;
            for (const auto& name : round) {
                left.erase(name);
                auto done = std::make_shared<Completion>();
                post(CommandMsg{CommandMsg::stop, name, done, std::nullopt});
                pending.emplace_back(name, done);
            }
            for (auto& [name, done] : pending) {
                auto r = done->wait_for(stop_bound(name));
                if (!r) {
                    if (first)
                        first = fail(
                            E("supervisor.stop_all", "daemon \"" + name + "\" not reaped in time"));
                } else if (!*r && first) {
                    first = fail(r->error());
                }
            }
        }
        return first;
    }

    DaemonStatus status_locked(const DaemonRec& d) const {
        DaemonStatus s;
        s.name = d.spec.name;
        s.state = d.state;
        s.pid = d.pid;
        s.process_id = d.proc_id;
        s.restarts = d.restarts;
        s.exited = d.exited;
        s.last_exit_code = d.last_exit_code;
        s.last_signal = d.last_signal;
        s.last_error = d.last_error;
        s.health_failures = d.health_failures;
        s.since = d.since;
        s.last_lines.assign(d.last_lines.begin(), d.last_lines.end());
        s.ready = is_ready(d);
        s.waiting_for = d.waiting_for;
        s.status_text = d.status_text;
        s.main_pid = d.main_pid;
        s.notify_dropped = d.notify_dropped;
        if (d.sink) {
            s.log_path = d.sink->paths.out;
            s.err_log_path = d.sink->paths.err;
            s.log_dropped = d.sink->dropped.load(std::memory_order_relaxed);
            s.log_errors = d.sink->errors.load(std::memory_order_relaxed);
            s.log_error = logs->last_error(*d.sink);
        }
        return s;
    }
};

}  // namespace core::process::detail

namespace core::process {

using detail::CommandMsg;

Supervisor::Supervisor(core::Core& core, Service& service, SupervisorOptions opts)
    : impl_(std::make_unique<detail::SupervisorImpl>(core, service, std::move(opts))) {
    auto* impl = impl_.get();
    impl->logs = std::make_unique<detail::LogWriter>(
        impl->opts.log_queue_bytes, [impl](const std::string& daemon, const std::string& what) {
            impl->log()->debug("supervisor: {}: log: {}", daemon, what);
            if (impl->opts.on_log_problem) {
                try {
                    impl->opts.on_log_problem(daemon, what);
                } catch (...) {
                    impl->log()->debug("supervisor: on_log_problem threw");
                }
            }
        });
    impl->checker = std::make_unique<detail::Checker>(
        service, [impl](const std::string& name, std::uint64_t gen, Result<void> r) {
            impl->post(detail::HealthMsg{name, gen, std::move(r)});
        });
    impl->link = std::make_shared<detail::Link>();
    impl->link->impl = impl;
    impl->thread = std::thread([impl] { impl->run(); });
    impl->thread_id = impl->thread.get_id();
}

Supervisor::~Supervisor() {
    (void)stop_all();
    impl_->checker.reset();  // cancels a running check and joins

    {
        std::lock_guard lk(impl_->mu);
        impl_->quit = true;
    }
    impl_->cv.notify_one();
    impl_->thread.join();
    {
        // A process that outlived its stop finds nobody: its hooks do nothing from here on.
        std::lock_guard lk(impl_->link->mu);
        impl_->link->impl = nullptr;
    }
    // Only the supervisor thread made and used the hub; a datagram its thread still posts
    // lands in an inbox nobody reads.
    impl_->notify.reset();
    impl_->sync_state();  // nothing runs any more: the state file goes
    impl_->logs.reset();  // writes what is queued, then joins the writer
}

Result<void> Supervisor::add(DaemonSpec spec) {
    if (auto r = validate(spec); !r) return fail(E("supervisor.add", "invalid spec", r.error()));
    std::lock_guard lk(impl_->mu);
    if (impl_->daemons.count(spec.name))
        return fail(E("supervisor.add", "daemon \"" + spec.name + "\" already exists"));
    {
        // A cycle through the daemons known so far is refused now; a name not added yet is
        // checked when the dependent starts (a file adds its daemons in any order).
        std::vector<DaemonSpec> all;
        for (const auto& name : impl_->order) all.push_back(impl_->daemons.at(name)->spec);
        all.push_back(spec);
        if (auto r = validate_dependencies(all, true); !r)
            return fail(E("supervisor.add", "daemon \"" + spec.name + "\"", r.error()));
    }
    auto rec = std::make_unique<detail::DaemonRec>();
    const std::string name = spec.name;
    rec->sink = impl_->make_sink(spec);
    rec->spec = std::move(spec);
    impl_->daemons.emplace(name, std::move(rec));
    impl_->order.push_back(name);
    return {};
}

Result<void> Supervisor::remove(const std::string& name) {
    return impl_->call(CommandMsg::remove, name, impl_->stop_bound(name));
}

Result<void> Supervisor::start(const std::string& name) {
    // A start waits for the spawn only (or for a stop in progress to end).
    return impl_->call(CommandMsg::start, name, impl_->stop_bound(name) + std::chrono::seconds(30));
}

Result<void> Supervisor::stop(const std::string& name) {
    // Its `requires` dependents (and theirs) that are up stop first, in reverse dependency
    // order; then it.
    std::set<std::string> set{name};
    for (bool grew = true; grew;) {
        grew = false;
        std::lock_guard lk(impl_->mu);
        for (const auto& [n, d] : impl_->daemons) {
            if (set.count(n)) continue;
            for (const auto& dep : d->spec.requires_)
                if (set.count(dep) && d->state != DaemonState::stopped &&
                    d->state != DaemonState::failed) {
                    set.insert(n);
                    grew = true;
                    break;
                }
        }
    }
    if (set.size() == 1) return impl_->call(CommandMsg::stop, name, impl_->stop_bound(name));
    set.erase(name);
    if (auto r = impl_->stop_ordered({set.begin(), set.end()}); !r) return r;
    return impl_->call(CommandMsg::stop, name, impl_->stop_bound(name));
}

Result<void> Supervisor::restart(const std::string& name) {
    return impl_->call(CommandMsg::restart, name,
                       impl_->stop_bound(name) + std::chrono::seconds(30));
}

Result<void> Supervisor::start_all() {
    // Unknown dependencies and cycles are refused before anything starts.
    {
        std::vector<DaemonSpec> all;
        for (const auto& name : names())
            if (auto s = spec(name)) all.push_back(std::move(*s));
        if (auto r = validate_dependencies(all); !r)
            return fail(E("supervisor.start_all", "refused", r.error()));
    }
    Result<void> first;
    for (const auto& name : names()) {
        auto r = start(name);
        if (!r && first) first = fail(r.error());
    }
    return first;
}

Result<void> Supervisor::stop_all() {
    return impl_->stop_ordered(names());
}

Result<ReloadResult> Supervisor::apply(std::vector<DaemonSpec> next) {
    constexpr const char* op = "supervisor.apply";
    if (std::this_thread::get_id() == impl_->thread_id)
        return fail(E(op, "called from the supervisor thread"));
    // Everything is checked before anything changes.
    std::set<std::string> wanted;
    for (const auto& s : next) {
        if (auto r = validate(s); !r) return fail(E(op, "invalid spec", r.error()));
        if (!wanted.insert(s.name).second)
            return fail(E(op, "duplicate daemon name \"" + s.name + "\""));
    }
    if (auto r = validate_dependencies(next); !r) return fail(E(op, "refused", r.error()));
    ReloadResult rr;
    for (const auto& name : names())
        if (!wanted.count(name)) rr.removed.push_back(name);
    std::vector<DaemonSpec> added, changed;
    for (auto& s : next) {
        auto cur = spec(s.name);
        if (!cur) {
            rr.added.push_back(s.name);
            added.push_back(std::move(s));
        } else if (*cur == s) {
            rr.unchanged.push_back(s.name);
        } else {
            rr.changed.push_back(s.name);
            changed.push_back(std::move(s));
        }
    }
    auto keep = [&rr](const std::string& name, const Result<void>& r) {
        if (!r) rr.errors.push_back(name + ": " + r.error().what());
    };
    // The removed ones stop in reverse dependency order, then go.
    if (!rr.removed.empty()) (void)impl_->stop_ordered(rr.removed);
    for (const auto& name : rr.removed) keep(name, remove(name));
    for (auto& s : changed) {
        const std::string name = s.name;
        keep(name, impl_->call(CommandMsg::update, name,
                               impl_->stop_bound(name) + std::chrono::seconds(30), std::move(s)));
    }
    // Every new daemon exists before any starts: a dependent waits for a dependency that is
    // new too.
    std::vector<std::string> fresh;
    for (auto& s : added) {
        const std::string name = s.name;
        auto r = add(std::move(s));
        keep(name, r);
        if (r) fresh.push_back(name);
    }
    for (const auto& name : fresh) keep(name, start(name));
    return rr;
}

Result<DaemonStatus> Supervisor::get(const std::string& name) const {
    std::lock_guard lk(impl_->mu);
    auto it = impl_->daemons.find(name);
    if (it == impl_->daemons.end()) return fail(E("supervisor.get", "unknown daemon: " + name));
    return impl_->status_locked(*it->second);
}

std::vector<DaemonStatus> Supervisor::list() const {
    std::lock_guard lk(impl_->mu);
    std::vector<DaemonStatus> out;
    for (const auto& name : impl_->order)
        out.push_back(impl_->status_locked(*impl_->daemons.at(name)));
    return out;
}

std::vector<std::string> Supervisor::names() const {
    std::lock_guard lk(impl_->mu);
    return impl_->order;
}

Result<DaemonSpec> Supervisor::spec(const std::string& name) const {
    std::lock_guard lk(impl_->mu);
    auto it = impl_->daemons.find(name);
    if (it == impl_->daemons.end()) return fail(E("supervisor.spec", "unknown daemon: " + name));
    return it->second->spec;
}

Result<DaemonUsage> Supervisor::usage(const std::string& name) const {
    int pid = 0;
    {
        std::lock_guard lk(impl_->mu);
        auto it = impl_->daemons.find(name);
        if (it == impl_->daemons.end())
            return fail(E("supervisor.usage", "unknown daemon: " + name));
        pid = it->second->pid;
    }
    if (pid <= 0)
        return fail(
            Error("supervisor.usage", "daemon \"" + name + "\": no process running", ESRCH));
    auto u = sys::procstat::of_pid(pid);
    if (!u) return fail(E("supervisor.usage", "daemon \"" + name + "\"", u.error()));
    DaemonUsage out;
    out.pid = pid;
    if (!u->memory_source.empty()) {
        out.memory_bytes = u->memory_bytes;
        out.memory_source = u->memory_source;
    }
    if (!u->cpu_source.empty()) {
        out.cpu_seconds = u->cpu_seconds;
        out.cpu_source = u->cpu_source;
    }
    if (u->uptime_seconds > 0) out.uptime_seconds = u->uptime_seconds;
    return out;
}

}  // namespace core::process
