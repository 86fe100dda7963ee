#include "core/process/service.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <list>
#include <mutex>
#include <optional>
#include <stop_token>
#include <unordered_map>

#include "core/id.hpp"
#include "core/log.hpp"
#include "process/cgroup.hpp"
#include "process/containment.hpp"
#include "process/events.hpp"
#include "process/reaper.hpp"
#include "process/state.hpp"
#include "sys/io.hpp"
#include "sys/proc.hpp"
#include "sys/signals.hpp"
#include "sys/spawn.hpp"

namespace core::process {

using detail::EndReason;
using detail::ProcessState;
using detail::Reaper;
using Clock = std::chrono::steady_clock;

namespace {

// An Error for op that keeps a lower layer's text and errno: `process.run: pipe2: Too many…`.
Error wrap(const std::string& op, const Error& e) {
    return Error(op, e.what(), e.code());
}

bool is_resource_errno(int e) {
    return e == EAGAIN || e == ENOMEM || e == EMFILE || e == ENFILE;
}

constexpr std::size_t error_tail = 4096;

}  // namespace

struct Service::Impl {
    Impl(Service& s, Core& c, ServiceOptions o)
        : self(s),
          core(c),
          opts(o),
          events(o.events ? std::make_shared<detail::EventDispatcher>(c.weak_from_this(),
                                                                      o.max_queued_lines)
                          : nullptr) {}

    Service& self;
    Core& core;
    ServiceOptions opts;
    Registry<std::shared_ptr<ManagedProcess>> managed{"process"};
    std::shared_ptr<detail::EventDispatcher> events;

    std::mutex mu;  // guards everything below
    std::condition_variable cv;
    std::shared_ptr<Reaper> reaper;
    bool accepting = true;
    int in_flight = 0;  // start() calls between admission and registration
    sys::UniqueFd devnull;
    std::list<std::string> finished;  // retained finished ids, oldest first
    std::unordered_map<std::string, std::list<std::string>::iterator> finished_pos;
    std::atomic<bool> told_fallback{false};

    Result<std::shared_ptr<ManagedProcess>> start(const std::string& op, const Context& ctx,
                                                  const RunOptions& o, bool transient);
    Result<std::string> run(const Context& ctx, const RunOptions& o);
    void on_finished(const std::shared_ptr<ProcessState>& st);
    void stop_all(bool deliver_events, const Context* ctx = nullptr);
    void forget_finished(const std::string& id);
};

// ------------------------------------------------------------------ start

Result<std::shared_ptr<ManagedProcess>> Service::Impl::start(const std::string& op,
                                                             const Context& ctx,
                                                             const RunOptions& o, bool transient) {
    if (o.command.empty()) return fail(Error(op, "option \"command\" is required", EINVAL));
    if (o.timeout.count() < 0)
        return fail(Error(op, "option \"timeout\": negative duration", EINVAL));
    if (o.grace_period.count() < 0)
        return fail(Error(op, "option \"gracePeriod\": negative duration", EINVAL));
    if (o.input && o.keep_stdin)
        return fail(Error(op, "options \"input\" and \"keepStdin\" exclude each other", EINVAL));
    for (const auto& kv : o.env) {
        const auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0)
            return fail(Error(op, "option \"env\": entry \"" + kv + "\" is not K=V", EINVAL));
    }

    // Admission: counted in flight until registered, so shutdown never misses a child.
    std::shared_ptr<Reaper> reaper_ref;
    int devnull_fd = -1;
    {
        std::lock_guard lk(mu);
        if (!accepting) return fail(Error(op, "process service is shut down", ESHUTDOWN));
        if (!reaper) {
            detail::ReaperHooks hooks;
            hooks.log = core.logger();
            hooks.events = events.get();
            hooks.on_finished = [this](const std::shared_ptr<ProcessState>& st) {
                on_finished(st);
            };
            auto r = Reaper::create(std::move(hooks));
            if (!r) return fail(wrap(op, r.error()));
            reaper = std::move(*r);
        }
        if (!devnull) {
            auto d = sys::open_devnull();
            if (!d) return fail(wrap(op, d.error()));
            devnull = std::move(*d);
        }
        devnull_fd = devnull.get();
        reaper_ref = reaper;
        ++in_flight;
    }
    struct InFlight {
        Impl* impl;
        ~InFlight() {
            {
                std::lock_guard lk(impl->mu);
                --impl->in_flight;
            }
            impl->cv.notify_all();
        }
    } in_flight_guard{this};

    if (ctx.done()) {
        return fail(Error(op, "\"" + o.command + "\": " + ctx.reason(),
                          ctx.deadline_exceeded() ? ETIMEDOUT : ECANCELED));
    }

    // Environment and PATH: the child's own PATH decides where its command is found.
    std::vector<std::string> env_store;
    std::vector<char*> envp;
    const char* path_var = nullptr;
    if (!o.env.empty()) {
        env_store = sys::merge_env(o.env);
        envp.reserve(env_store.size() + 1);
        for (auto& kv : env_store) {
            envp.push_back(kv.data());
            if (kv.compare(0, 5, "PATH=") == 0) path_var = kv.c_str() + 5;
        }
        envp.push_back(nullptr);
    } else {
        path_var = sys::parent_getenv("PATH");
    }
    // glibc's execvp default when PATH is unset.
    if (!path_var) path_var = "/bin:/usr/bin";

    // The working directory is checked before spawning: glibc reports a failed chdir with the
    // same errno as a missing program (node #45279), so name the culprit ourselves.
    if (!o.dir.empty()) {
        if (auto d = sys::check_dir(o.dir); !d)
            return fail(E_errno(op, "dir \"" + o.dir + "\"", d.error().code()));
    }
    auto exe = sys::find_executable(o.command, path_var, o.dir);
    if (!exe) return fail(E_errno(op, "exec \"" + o.command + "\"", exe.error().code()));

    // Pipes, CLOEXEC from birth; our ends non-blocking (the child's stay blocking).
    sys::Pipe in_pipe, out_pipe, err_pipe;
    auto make = [&](sys::Pipe& p, bool parent_reads, bool parent_nonblock) -> Result<void> {
        auto r = sys::make_pipe();
        if (!r) return fail(r.error());
        p = std::move(*r);
        // A host with fd 0/1/2 closed gets pipe ends there; move them up so that the dup2s
        // onto 0/1/2 in the child cannot clobber each other.
        for (sys::UniqueFd* f : {&p.read, &p.write}) {
            if (f->get() < 3) {
                auto d = sys::dup_at_least(f->get(), 3);
                if (!d) return fail(d.error());
                *f = std::move(*d);
            }
        }
        if (parent_nonblock) {
            if (auto nb = sys::make_nonblocking(parent_reads ? p.read.get() : p.write.get()); !nb)
                return fail(nb.error());
        }
        return {};
    };
    const bool stdin_pipe = o.input.has_value() || o.keep_stdin;
    if (stdin_pipe)
        if (auto r = make(in_pipe, false, !o.keep_stdin); !r) return fail(wrap(op, r.error()));
    if (o.capture) {
        if (auto r = make(out_pipe, true, true); !r) return fail(wrap(op, r.error()));
        if (auto r = make(err_pipe, true, true); !r) return fail(wrap(op, r.error()));
    }

    std::vector<char*> argv;
    argv.reserve(o.args.size() + 2);
    argv.push_back(const_cast<char*>(o.command.c_str()));
    for (const auto& a : o.args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);

    // Not make_shared: a pending timer holds a weak_ptr, which would pin the whole object.
    std::shared_ptr<ProcessState> st(new ProcessState());
    st->command = o.command;
    st->args = o.args;
    st->dir = o.dir;
    // A new session (detach) also leads a new group; run() ignores detach.
    st->kill_group = o.kill_group || (o.detach && !transient);
    st->transient = transient;
    st->grace = o.grace_period;
    st->timeout = o.timeout;
    st->max_output = o.max_output;
    st->output.set_capacity(o.capture ? o.max_output : 0);
    const std::size_t piece = o.max_output ? o.max_output : (std::size_t{1} << 16);
    st->out_lines.set_max_piece(piece);
    st->err_lines.set_max_piece(piece);
    st->reaper = reaper_ref;

    sys::SpawnSpec spec;
    spec.path = exe->c_str();
    spec.argv = argv.data();
    spec.envp = envp.empty() ? nullptr : envp.data();
    spec.dir = o.dir.empty() ? nullptr : o.dir.c_str();
    spec.stdin_fd = stdin_pipe ? in_pipe.read.get() : devnull_fd;
    spec.stdout_fd = o.capture ? out_pipe.write.get() : -1;
    spec.stderr_fd = o.capture ? err_pipe.write.get() : -1;
    spec.new_session = o.detach && !transient;
    spec.new_group = o.kill_group;
    // Containment and identity (issue 13): the cgroup exists before the child, born in it.
    detail::IdentitySpec identity_store;
    if (auto c = detail::check_containment(op, o); !c) return fail(c.error());
    detail::apply_identity(o.identity, identity_store, spec);
    if (detail::wants_cgroup(o)) {
        auto cg = detail::make_cgroup(op, opts.cgroup_parent, o);
        if (!cg) return fail(cg.error());
        st->cgroup = std::move(*cg);
        spec.cgroup_fd = st->cgroup->fd();
    }
    st->started_at = std::chrono::system_clock::now();
    st->started_steady = Clock::now();
    auto spawned = sys::spawn(spec);
    if (!spawned) {
        const int code = spawned.error().code();
        // A containment or identity step of the child: its own text (`setuid 65534: …`).
        if (spawned.error().op() == "child")
            return fail(Error(op, "\"" + o.command + "\": " + spawned.error().message(), code));
        return fail(E_errno(
            op, (is_resource_errno(code) ? "spawn \"" : "exec \"") + o.command + "\"", code));
    }
    st->pid = spawned->pid;
    // The child has its copies: close ours now, or EOF never comes.
    in_pipe.read.reset();
    out_pipe.write.reset();
    err_pipe.write.reset();

    if (spawned->pidfd) {
        // clone3 gave the pidfd at birth: nothing to race.
        st->pidfd = std::move(spawned->pidfd);
    } else if (auto pfd = sys::pidfd_open(st->pid)) {
        // Right after spawn, while the child cannot have been reaped by anyone but us.
        st->pidfd = std::move(*pfd);
    } else if (pfd.error().code() == ENOSYS) {
        if (!told_fallback.exchange(true))
            core.logger()->info(
                "process: pidfd_open unsupported (ENOSYS); waiting by polling waitid(P_PID)");
    } else if (auto log = core.logger(); log->should_log(spdlog::level::debug)) {
        log->debug("process: {}; waiting for pid {} by polling", pfd.error().what(), st->pid);
    }

    st->id = core::id();
    st->status = Status::running;
    st->out_fd = std::move(out_pipe.read);
    st->err_fd = std::move(err_pipe.read);
    if (o.keep_stdin) {
        st->keep_stdin = true;
        st->input_fd = std::move(in_pipe.write);
    } else if (o.input) {
        st->in_fd = std::move(in_pipe.write);
        st->input = *o.input;
    }
    auto mp = std::make_shared<ManagedProcess>(st);
    if (auto s = managed.set(st->id, mp); !s) {
        // Cannot happen with a fresh id and an unlocked registry; never leave the child alone.
        reaper_ref->watch(st);
        (void)reaper_ref->kill(st, EndReason::killed);
        mp->wait();
        return fail(wrap(op, s.error()));
    }
    if (events && events->wanted()) {
        events->emit(Value(ProcessStarted{st->id, st->command, st->args, st->dir, st->pid}), false);
    }
    if ((transient || !o.detach) && ctx.token().stop_possible()) {
        std::lock_guard lk(st->mu);
        // If ctx is already cancelled the callback runs here and only queues a kill.
        st->on_cancel.emplace(ctx.token(), detail::CancelFn{reaper_ref, st, ctx});
    }
    reaper_ref->watch(st);
    return mp;
}

void detail::CancelFn::operator()() noexcept {
    if (auto r = reaper.lock()) {
        try {
            r->queue_kill(state, EndReason::cancelled, ctx.reason());
        } catch (...) {
            // Out of memory while queueing: the timeout and shutdown paths still end the child.
        }
    }
}

// ------------------------------------------------------------------ run

Result<std::string> Service::Impl::run(const Context& ctx, const RunOptions& o) {
    const std::string op = "process.run";
    auto started = start(op, ctx, o, true);
    if (!started) return fail(started.error());
    auto& p = *started;
    const ProcessInfo info = p->wait();
    (void)managed.remove(info.id);
    auto st = p->state();
    EndReason reason;
    std::string reason_text;
    {
        std::lock_guard lk(st->mu);
        reason = st->reason;
        reason_text = st->reason_text;
    }
    const std::string cmd = "\"" + o.command + "\"";
    auto with_tail = [&](std::string msg) {
        std::string tail;
        {
            std::lock_guard lk(st->mu);
            tail = st->output.tail(error_tail);
        }
        if (!tail.empty()) msg += "; output (last 4 KiB):\n" + tail;
        return msg;
    };
    switch (reason) {
        case EndReason::timeout:
            return fail(Error(op, cmd + " " + info.error, ETIMEDOUT));
        case EndReason::cancelled:
            return fail(Error(op, cmd + ": " + info.error,
                              ctx.deadline_exceeded() ? ETIMEDOUT : ECANCELED));
        case EndReason::shutdown:
            return fail(Error(op, cmd + ": stopped by the process service's shutdown", ECANCELED));
        default:
            break;
    }
    if (info.status == Status::failed) return fail(Error(op, cmd + ": " + info.error));
    if (info.status == Status::killed) return fail(Error(op, with_tail(cmd + " " + info.error)));
    if (info.exit_code != 0) return fail(Error(op, with_tail(cmd + " " + info.error)));
    return p->output();
}

// ------------------------------------------------------------------ retention, shutdown

void Service::Impl::on_finished(const std::shared_ptr<ProcessState>& st) {
    if (st->transient) return;
    std::lock_guard lk(mu);
    // remove() takes the entry out of the registry before it takes mu: an id no longer there
    // was removed by the user and must not occupy a retention place.
    if (!managed.has(st->id)) return;
    finished.push_back(st->id);
    finished_pos[st->id] = std::prev(finished.end());
    while (finished.size() > opts.retention) {
        const std::string oldest = std::move(finished.front());
        finished.pop_front();
        finished_pos.erase(oldest);
        (void)managed.remove(oldest);
    }
}

void Service::Impl::forget_finished(const std::string& id) {
    std::lock_guard lk(mu);
    auto it = finished_pos.find(id);
    if (it == finished_pos.end()) return;
    finished.erase(it->second);
    finished_pos.erase(it);
}

void Service::Impl::stop_all(bool deliver_events, const Context* ctx) {
    std::shared_ptr<Reaper> r;
    {
        std::unique_lock lk(mu);
        accepting = false;
        cv.wait(lk, [&] { return in_flight == 0; });
        r = reaper;
    }
    std::vector<std::shared_ptr<ManagedProcess>> all;
    managed.each(
        [&](const std::string&, const std::shared_ptr<ManagedProcess>& p) { all.push_back(p); });
    if (r) {
        for (auto& p : all) {
            if (p->is_running()) (void)r->kill(p->state(), EndReason::shutdown);
        }
    }
    {
        // If the shutdown's context ends before the grace periods do, SIGKILL what is left.
        auto hard = [&r, &all]() noexcept {
            if (!r) return;
            try {
                for (auto& p : all) r->queue_hard_kill(p->state());
            } catch (...) {
                // Out of memory: the grace periods still end every child.
            }
        };
        std::optional<std::stop_callback<decltype(hard)>> on_deadline;
        if (ctx && ctx->token().stop_possible()) on_deadline.emplace(ctx->token(), hard);
        for (auto& p : all) p->wait();
    }
    if (events) {
        if (deliver_events) {
            events->flush_and_stop();
        } else {
            events->close();
        }
    }
    {
        std::lock_guard lk(mu);
        r = std::move(reaper);
    }
    if (r) r->stop();
}

// ------------------------------------------------------------------ Service

Service::Service(core::Core& core, ServiceOptions opts)
    : core::Service(core, "process"), impl_(std::make_unique<Impl>(*this, core, opts)) {}

Service::~Service() {
    // The Core may be half destroyed (its bus goes before its services): no events, no logs
    // through it; stop and reap every child so none outlives us as a zombie.
    impl_->stop_all(false);
}

Result<void> Service::on_startup(const Context&) {
    {
        std::lock_guard lk(impl_->mu);
        impl_->accepting = true;
    }
    auto& c = core();
    const std::pair<const char*, ActionHandler> actions[] = {
        {"process.run",
         [this](const Context& ctx, const Options& opts) -> Result<Value> {
             auto o = parse_options("process.run", opts);
             if (!o) return fail(o.error());
             auto out = run(ctx, *o);
             if (!out) return fail(out.error());
             return Value(std::move(*out));
         }},
        {"process.start",
         [this](const Context& ctx, const Options& opts) -> Result<Value> {
             auto o = parse_options("process.start", opts);
             if (!o) return fail(o.error());
             auto p = impl_->start("process.start", ctx, *o, false);
             if (!p) return fail(p.error());
             return Value((*p)->id());
         }},
        {"process.kill",
         [this](const Context&, const Options& opts) -> Result<Value> {
             const std::string op = "process.kill";
             auto id = opts.want_string(op, "id");
             if (!id) return fail(id.error());
             auto pid = opts.want_integer(op, "pid");
             if (!pid) return fail(pid.error());
             if (!id->empty()) {
                 if (auto k = kill(*id); !k) return fail(k.error());
                 return Value();
             }
             if (opts.has("pid")) {
                 if (*pid <= 0 || *pid > 0x3fffffff)
                     return fail(Error(
                         op, "option \"pid\": want a positive pid, got " + std::to_string(*pid),
                         EINVAL));
                 if (auto k = kill_pid(static_cast<int>(*pid)); !k) return fail(k.error());
                 return Value();
             }
             return fail(Error(op, "need option \"id\" or \"pid\"", EINVAL));
         }},
        {"process.list",
         [this](const Context&, const Options& opts) -> Result<Value> {
             auto running = opts.want_boolean("process.list", "runningOnly");
             if (!running) return fail(running.error());
             return Value(list(*running));
         }},
        {"process.get",
         [this](const Context&, const Options& opts) -> Result<Value> {
             auto id = opts.want_string("process.get", "id");
             if (!id) return fail(id.error());
             if (id->empty())
                 return fail(Error("process.get", "option \"id\" is required", EINVAL));
             auto p = get(*id);
             if (!p) return fail(p.error());
             return Value((*p)->info());
         }},
    };
    for (const auto& [name, fn] : actions) {
        if (auto r = c.action(name, fn); !r) return fail(E("process.startup", name, r.error()));
    }
    return {};
}

Result<void> Service::on_shutdown(const Context& ctx) {
    impl_->stop_all(true, &ctx);
    return {};
}

Result<std::shared_ptr<ManagedProcess>> Service::start(const Context& ctx, const RunOptions& opts) {
    return impl_->start("process.start", ctx, opts, false);
}

Result<std::string> Service::run(const Context& ctx, const RunOptions& opts) {
    return impl_->run(ctx, opts);
}

Result<std::shared_ptr<ManagedProcess>> Service::get(const std::string& id) const {
    auto p = impl_->managed.get(id);
    if (!p) return fail(Error("process.get", "not found: " + id, ESRCH));
    return *p;
}

std::vector<std::string> Service::list(bool running_only) const {
    if (!running_only) return impl_->managed.names();
    std::vector<std::string> out;
    impl_->managed.each([&](const std::string& id, const std::shared_ptr<ManagedProcess>& p) {
        if (p->is_running()) out.push_back(id);
    });
    return out;
}

Result<void> Service::kill(const std::string& id) {
    auto p = impl_->managed.get(id);
    if (!p) return fail(Error("process.kill", "not found: " + id, ESRCH));
    return (*p)->kill();
}

Result<void> Service::kill_pid(int pid) {
    std::shared_ptr<ManagedProcess> match;
    impl_->managed.each([&](const std::string&, const std::shared_ptr<ManagedProcess>& p) {
        // A running match wins over a finished one whose pid was reused.
        if (p->pid() == pid && (!match || p->is_running())) match = p;
    });
    if (match) return match->kill();
    if (!impl_->opts.allow_foreign_pids)
        return fail(Error("process.kill",
                          "pid " + std::to_string(pid) + " is not managed by this service", EPERM));
    if (auto r = sys::kill_pid(pid, sys::sig_term()); !r)
        return fail(wrap("process.kill", r.error()));
    return {};
}

Result<void> Service::signal(const std::string& id, int sig) {
    auto p = impl_->managed.get(id);
    if (!p) return fail(Error("process.signal", "not found: " + id, ESRCH));
    return (*p)->signal(sig);
}

Result<void> Service::remove(const std::string& id) {
    auto p = impl_->managed.get(id);
    if (!p) return fail(Error("process.remove", "not found: " + id, ESRCH));
    if ((*p)->is_running()) return fail(Error("process.remove", id + " is still running", EBUSY));
    (void)impl_->managed.remove(id);
    impl_->forget_finished(id);
    return {};
}

void Service::clear() {
    impl_->managed.remove_if([](const std::string&, const std::shared_ptr<ManagedProcess>& p) {
        return !p->is_running();
    });
    std::lock_guard lk(impl_->mu);
    std::list<std::string> keep;
    for (auto& id : impl_->finished)
        if (impl_->managed.has(id)) keep.push_back(id);
    impl_->finished.clear();
    impl_->finished_pos.clear();
    for (auto& id : keep) {
        impl_->finished.push_back(id);
        impl_->finished_pos[id] = std::prev(impl_->finished.end());
    }
}

Result<RunOptions> Service::parse_options(const std::string& op, const Options& opts) {
    RunOptions o;
    auto command = opts.want_string(op, "command");
    if (!command) return fail(command.error());
    if (command->empty()) return fail(Error(op, "option \"command\" is required", EINVAL));
    o.command = std::move(*command);
    auto args = opts.want_strings(op, "args");
    if (!args) return fail(args.error());
    o.args = std::move(*args);
    auto dir = opts.want_string(op, "dir");
    if (!dir) return fail(dir.error());
    o.dir = std::move(*dir);
    auto env = opts.want_strings(op, "env");
    if (!env) return fail(env.error());
    o.env = std::move(*env);
    auto ceil_ms = [](std::chrono::nanoseconds d) {
        return std::chrono::ceil<std::chrono::milliseconds>(d);
    };
    auto timeout = opts.want_duration(op, "timeout");
    if (!timeout) return fail(timeout.error());
    o.timeout = ceil_ms(*timeout);
    auto grace = opts.want_duration(op, "gracePeriod", o.grace_period);
    if (!grace) return fail(grace.error());
    o.grace_period = ceil_ms(*grace);
    auto kill_group = opts.want_boolean(op, "killGroup");
    if (!kill_group) return fail(kill_group.error());
    o.kill_group = *kill_group;
    auto no_capture = opts.want_boolean(op, "disableCapture");
    if (!no_capture) return fail(no_capture.error());
    o.capture = !*no_capture;
    if (opts.has("input")) {
        auto input = opts.want_string(op, "input");
        if (!input) return fail(input.error());
        o.input = std::move(*input);
    }
    auto max_output = opts.want_integer(op, "maxOutput", static_cast<std::int64_t>(o.max_output));
    if (!max_output) return fail(max_output.error());
    if (*max_output < 0)
        return fail(Error(
            op, "option \"maxOutput\": must not be negative, got " + std::to_string(*max_output),
            EINVAL));
    o.max_output = static_cast<std::size_t>(*max_output);
    auto detach = opts.want_boolean(op, "detach");
    if (!detach) return fail(detach.error());
    o.detach = *detach;
    auto keep = opts.want_boolean(op, "keepStdin");
    if (!keep) return fail(keep.error());
    o.keep_stdin = *keep;
    if (auto c = detail::parse_containment_options(op, opts, o); !c) return fail(c.error());
    return o;
}

Result<std::shared_ptr<core::Service>> register_service(core::Core& core) {
    try {
        return std::shared_ptr<core::Service>(std::make_shared<Service>(core));
    } catch (const std::exception& e) {
        return fail(E("process.register", e.what()));
    }
}

ServiceFactory service_factory(ServiceOptions opts) {
    return [opts](core::Core& core) -> Result<std::shared_ptr<core::Service>> {
        try {
            return std::shared_ptr<core::Service>(std::make_shared<Service>(core, opts));
        } catch (const std::exception& e) {
            return fail(E("process.register", e.what()));
        }
    };
}

void set_spawn_method(SpawnMethod m) noexcept {
    switch (m) {
        case SpawnMethod::automatic:
            sys::set_spawn_method(sys::SpawnMethod::automatic);
            break;
        case SpawnMethod::clone3:
            sys::set_spawn_method(sys::SpawnMethod::clone3);
            break;
        case SpawnMethod::posix_spawn:
            sys::set_spawn_method(sys::SpawnMethod::posix_spawn);
            break;
    }
}

const char* spawn_method() noexcept {
    return sys::spawn_method() == sys::SpawnMethod::clone3 ? "clone3" : "posix_spawn";
}

}  // namespace core::process
