// The process service: run and exec on top of start, retention of finished processes,
// shutdown, pipelines, the facade's exec and the service's registration. start() is in
// service_start.cpp, its planning steps in service_plan.cpp, the queries in service_query.cpp,
// the actions and their option readers in service_actions.cpp; Impl in service_impl.hpp.
#include "core/process/service.hpp"

#include <cerrno>
#include <list>
#include <mutex>
#include <optional>
#include <stop_token>

#include "process/service_impl.hpp"
#include "sys/fd.hpp"
#include "sys/spawn.hpp"

namespace core::process {

using detail::EndReason;
using detail::error_tail;
using detail::ProcessState;
using detail::Reaper;
using detail::wrap;

// ------------------------------------------------------------------ run, exec

Result<Completed> Service::Impl::exec(const std::string& op, const Context& ctx,
                                      const RunOptions& o) {
    auto started = start(op, ctx, o, true);
    if (!started) return fail(started.error());
    auto& p = *started;
    const ProcessInfo info = p->wait();
    (void)managed.remove(info.id);
    Completed c;
    c.id = info.id;
    c.pid = info.pid;
    c.status = info.exit;
    c.duration = info.duration;
    c.usage = info.usage;
    c.std_out = p->output(Stream::stdout_);
    c.std_err = p->output(Stream::stderr_);
    c.std_out_dropped = info.output_dropped;
    c.std_err_dropped = info.stderr_dropped;
    return c;
}

Result<std::string> Service::Impl::run(const Context& ctx, const RunOptions& o) {
    const std::string op = "process.run";
    auto done = exec(op, ctx, o);
    if (!done) return fail(done.error());
    const ExitStatus& x = done->status;
    const std::string cmd = "\"" + o.command + "\"";
    auto with_tail = [&](std::string msg) {
        const std::string& out = done->std_out;
        if (!out.empty())
            msg += "; output (last 4 KiB):\n" +
                   (out.size() > error_tail ? out.substr(out.size() - error_tail) : out);
        return msg;
    };
    switch (x.reason) {
        case ExitReason::timeout:
            return fail(Error(op, cmd + " " + x.describe(), ETIMEDOUT));
        case ExitReason::cancelled:
            return fail(Error(op, cmd + ": " + x.describe(),
                              ctx.deadline_exceeded() ? ETIMEDOUT : ECANCELED));
        case ExitReason::shutdown:
            return fail(Error(op, cmd + ": stopped by the process service's shutdown", ECANCELED));
        default:
            break;
    }
    if (x.kind == ExitKind::unknown) return fail(Error(op, cmd + ": " + x.describe()));
    if (x.kind == ExitKind::signalled) return fail(Error(op, with_tail(cmd + " " + x.describe())));
    if (x.code != 0) return fail(Error(op, with_tail(cmd + " " + x.describe())));
    // Exit 0, but a descendant kept the pipes past the drain: what it wrote later is lost, and
    // returning the rest as complete would hide that (Go's ErrWaitDelay).
    if (x.output_cut) return fail(Error(op, with_tail(cmd + " " + x.describe()), EIO));
    return std::move(done->std_out);
}

// ------------------------------------------------------------------ retention, shutdown

void Service::Impl::on_finished(const std::shared_ptr<ProcessState>& st) {
    std::lock_guard lk(mu);
    if (auto it = seq_of.find(st->id); it != seq_of.end()) {
        running.erase(it->second);
        seq_of.erase(it);
    }
    if (st->transient) return;
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
    {
        std::lock_guard lk(mu);
        all.reserve(running.size());
        for (const auto& [seq, p] : running) all.push_back(p);
    }
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
    // Every exit hook is queued by now (each process finished): run them, then end the thread.
    notifier->stop();
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

Result<Completed> Service::exec(const Context& ctx, const RunOptions& opts) {
    return impl_->exec("process.exec", ctx, opts);
}

Result<PipelineProcesses> Service::start_pipeline(const Context& ctx,
                                                  std::vector<RunOptions> stages) {
    const std::string op = "process.pipeline";
    if (stages.empty()) return fail(Error(op, "no stages", EINVAL));
    PipelineProcesses out;
    auto abort_all = [&] {
        for (auto& p : out.processes) (void)p->kill();
        for (auto& p : out.processes) p->wait();
    };
    sys::UniqueFd next_in;  // the read end the next stage takes as its stdin
    for (std::size_t i = 0; i < stages.size(); ++i) {
        RunOptions& st = stages[i];
        sys::UniqueFd write_end;
        if (i > 0) st.std_in = Stdio::fd(next_in.get());
        if (i + 1 < stages.size()) {
            auto p = sys::make_pipe();
            if (!p) {
                abort_all();
                return fail(wrap(op, p.error()));
            }
            st.std_out = Stdio::fd(p->write.get());
            if (st.std_err.kind() == Stdio::Kind::merge) st.std_err = Stdio::inherit();
            write_end = std::move(p->write);
            auto started = impl_->start(op, ctx, st, false);
            next_in = std::move(p->read);
            if (!started) {
                abort_all();
                return fail(Error(op, "stage " + std::to_string(i) + ": " + started.error().what(),
                                  started.error().code()));
            }
            out.processes.push_back(std::move(*started));
        } else {
            auto started = impl_->start(op, ctx, st, false);
            if (!started) {
                abort_all();
                return fail(Error(op, "stage " + std::to_string(i) + ": " + started.error().what(),
                                  started.error().code()));
            }
            out.processes.push_back(std::move(*started));
        }
        // Our copies of the pipe ends close here: each stage sees EOF when the one before ends.
    }
    return out;
}

ExitStatus PipelineProcesses::wait() const {
    ExitStatus last;
    ExitStatus failed;
    bool any_failed = false;
    for (const auto& p : processes) {
        const ProcessInfo info = p->wait();
        last = info.exit;
        if (!info.exit.success()) {
            failed = info.exit;
            any_failed = true;
        }
    }
    return any_failed ? failed : last;
}

std::vector<ExitStatus> PipelineProcesses::statuses() const {
    std::vector<ExitStatus> out;
    out.reserve(processes.size());
    for (const auto& p : processes) out.push_back(p->exit_status());
    return out;
}

}  // namespace core::process

namespace core {

// The facade lives in the runtime's header but returns the process service's types, so it is
// defined here, with them; it still goes through the action (permission by registration).
Result<process::Completed> ProcessFacade::exec(const Context& ctx,
                                               const process::Command& cmd) const {
    Options o{{"command", cmd.command}, {"args", cmd.args}, {"dir", cmd.dir}, {"env", cmd.env}};
    if (cmd.env_mode == process::EnvMode::replace) o.set("envMode", std::string("replace"));
    if (!cmd.unset_env.empty()) o.set("unsetEnv", cmd.unset_env);
    o.set("stderr", std::string("pipe"));
    auto r = core_->action("process.exec").run(ctx, o);
    if (!r) return fail(r.error());
    if (const auto* c = r->get<process::Completed>()) return *c;
    return fail(E("process.exec", "action returned " + r->type_name() + ", want Completed"));
}

}  // namespace core

namespace core::process {

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

}  // namespace core::process
