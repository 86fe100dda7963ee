// Service::Impl::start as named steps: validate -> admit -> resolve -> plan stdio -> spawn ->
// register. Each step is a function; start() only strings them together.
#include <spdlog/spdlog.h>

#include <cerrno>
#include <mutex>

#include "core/id.hpp"
#include "core/log.hpp"
#include "process/cgroup.hpp"
#include "process/containment.hpp"
#include "process/service_impl.hpp"
#include "sys/io.hpp"
#include "sys/spawn.hpp"

namespace core::process {

using detail::EndReason;
using detail::ProcessState;
using detail::Reaper;
using detail::wrap;
using Clock = std::chrono::steady_clock;

namespace {

bool has_nul(const std::string& s) noexcept {
    return s.find('\0') != std::string::npos;
}

// Step 1: what can be said about the options without touching the system.
Result<void> validate(const std::string& op, const RunOptions& o) {
    if (o.command.empty()) return fail(Error(op, "option \"command\" is required", EINVAL));
    // A NUL byte would silently cut the string where the kernel reads it (argv, envp, paths).
    auto nul = [&](const char* key, const std::string& what) {
        return fail(Error(
            op, std::string("option \"") + key + "\": " + what + " contains a NUL byte", EINVAL));
    };
    if (has_nul(o.command))
        return nul("command", "\"" + o.command.substr(0, o.command.find('\0')) + "…\"");
    for (std::size_t i = 0; i < o.args.size(); ++i)
        if (has_nul(o.args[i])) return nul("args", "element " + std::to_string(i));
    if (has_nul(o.dir)) return nul("dir", "the path");
    for (std::size_t i = 0; i < o.env.size(); ++i)
        if (has_nul(o.env[i])) return nul("env", "entry " + std::to_string(i));
    for (std::size_t i = 0; i < o.unset_env.size(); ++i) {
        if (has_nul(o.unset_env[i])) return nul("unsetEnv", "entry " + std::to_string(i));
        if (o.unset_env[i].empty() || o.unset_env[i].find('=') != std::string::npos)
            return fail(
                Error(op, "option \"unsetEnv\": \"" + o.unset_env[i] + "\" is not a name", EINVAL));
    }
    if (o.timeout.count() < 0)
        return fail(Error(op, "option \"timeout\": negative duration", EINVAL));
    if (o.grace_period.count() < 0)
        return fail(Error(op, "option \"gracePeriod\": negative duration", EINVAL));
    for (const auto& kv : o.env) {
        const auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0)
            return fail(Error(op, "option \"env\": entry \"" + kv + "\" is not K=V", EINVAL));
    }
    using K = Stdio::Kind;
    auto bad = [&](const char* key, const std::string& why) {
        return fail(Error(op, std::string("option \"") + key + "\": " + why, EINVAL));
    };
    const std::pair<const char*, const Stdio*> streams[] = {
        {"stdin", &o.std_in}, {"stdout", &o.std_out}, {"stderr", &o.std_err}};
    for (const auto& [key, st] : streams) {
        const bool is_in = st == &o.std_in;
        if (st->kind() == K::merge && st != &o.std_err) return bad(key, "merge is for stderr only");
        if (st->kind() == K::bytes && !is_in) return bad(key, "bytes is for stdin only");
        if (st->kind() == K::file && st->path().empty()) return bad(key, "file needs a path");
        if (st->kind() == K::file && has_nul(st->path())) return nul(key, "the path");
        if (st->kind() == K::fd && st->descriptor() < 0)
            return bad(key, "fd " + std::to_string(st->descriptor()) + " is not a descriptor");
    }
    const int ptys =
        (o.std_in.kind() == K::pty) + (o.std_out.kind() == K::pty) + (o.std_err.kind() == K::pty);
    if (ptys != 0 && ptys != 3)
        return bad(o.std_in.kind() != K::pty    ? "stdin"
                   : o.std_out.kind() != K::pty ? "stdout"
                                                : "stderr",
                   "a pty is shared by stdin, stdout and stderr: all three must say pty");
    for (std::size_t i = 0; i < o.pass_fds.size(); ++i) {
        const auto& p = o.pass_fds[i];
        if (p.child < 3)
            return bad("passFds", "child descriptor " + std::to_string(p.child) +
                                      " is below 3 (use std_in/std_out/std_err)");
        if (p.parent < 0) return bad("passFds", "parent descriptor " + std::to_string(p.parent));
        for (std::size_t j = 0; j < i; ++j)
            if (o.pass_fds[j].child == p.child)
                return bad("passFds",
                           "child descriptor " + std::to_string(p.child) + " given twice");
    }
    return {};
}

}  // namespace

// Step 2, admit: the reaper and /dev/null exist, and this start is counted in flight until it
// is registered (leave()), so shutdown never misses a child.
Result<Service::Impl::Admission> Service::Impl::admit(const std::string& op) {
    std::lock_guard lk(mu);
    if (!accepting) return fail(Error(op, "process service is shut down", ESHUTDOWN));
    if (!reaper) {
        detail::ReaperHooks hooks;
        hooks.log = core.logger();
        hooks.events = events.get();
        hooks.output_batches = opts.output_batches;
        hooks.notifier = notifier;
        hooks.on_finished = [this](const std::shared_ptr<ProcessState>& st) { on_finished(st); };
        auto r = Reaper::create(std::move(hooks));
        if (!r) return fail(wrap(op, r.error()));
        reaper = std::move(*r);
    }
    if (!devnull) {
        auto d = sys::open_devnull();
        if (!d) return fail(wrap(op, d.error()));
        devnull = std::move(*d);
    }
    ++in_flight;
    return Admission{reaper, devnull.get()};
}

void Service::Impl::leave() noexcept {
    {
        std::lock_guard lk(mu);
        --in_flight;
    }
    cv.notify_all();
}

namespace {

// The state of a child about to be spawned, from its options and stdio plan (no system call).
std::shared_ptr<ProcessState> make_state(const RunOptions& o, const detail::StdioPlan& plan,
                                         bool transient, bool new_session,
                                         const std::shared_ptr<Reaper>& reaper) {
    // Not make_shared: a pending timer holds a weak_ptr, which would pin the whole object.
    std::shared_ptr<ProcessState> st(new ProcessState());
    st->command = o.command;
    st->args = o.args;
    st->dir = o.dir;
    st->kill_group = o.kill_group || new_session;
    st->transient = transient;
    st->grace = o.grace_period;
    st->timeout = o.timeout;
    st->max_output = o.max_output;
    st->capture_out = plan.out_read.valid() || plan.pty;
    st->separate_err = plan.separate_err;
    st->on_output = o.on_output;
    st->output.set_capacity(st->capture_out ? o.max_output : 0);
    st->err_output.set_capacity(plan.separate_err ? o.max_output : 0);
    const std::size_t piece = o.max_output ? o.max_output : (std::size_t{1} << 16);
    st->out_lines.set_max_piece(piece);
    st->err_lines.set_max_piece(piece);
    st->reaper = reaper;
    return st;
}

// The parent's ends of the child's streams go into its state: output pipes (or the pty master)
// for the reaper, the stdin pipe for write_input or for the reaper to write bytes() into.
void take_parent_ends(const RunOptions& o, detail::StdioPlan& plan, ProcessState& st) {
    if (plan.pty) {
        // Output is read from the master like a pipe; write_input goes to the master too.
        auto in = plan.pty_pair.master.dup();
        if (in) {
            st.keep_stdin = true;
            st.input_fd = std::move(*in);
        }
        if (auto ctl = plan.pty_pair.master.dup()) st.pty_ctl = std::move(*ctl);
        st.out_fd = std::move(plan.pty_pair.master);
    } else {
        st.out_fd = std::move(plan.out_read);
        st.err_fd = std::move(plan.err_read);
    }
    if (o.std_in.kind() == Stdio::Kind::pipe || plan.pty) {
        if (!plan.pty) {
            st.keep_stdin = true;
            st.input_fd = std::move(plan.in_write);
        }
        if (auto w = sys::EventFd::create()) st.input_wake = std::move(*w);
    } else if (o.std_in.kind() == Stdio::Kind::bytes) {
        st.in_fd = std::move(plan.in_write);
        st.input = o.std_in.data();
    }
}

}  // namespace

// Step 5, spawn: the child's setup (stdio, session, containment, identity) in one SpawnSpec,
// the child itself, and its PidRef.
Result<void> Service::Impl::spawn(const std::string& op, const RunOptions& o,
                                  const detail::Resolved& res, detail::StdioPlan& plan,
                                  ProcessState& st, bool new_session) {
    std::vector<char*> argv;
    argv.reserve(o.args.size() + 2);
    argv.push_back(const_cast<char*>(o.command.c_str()));
    for (const auto& a : o.args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);

    sys::SpawnSpec spec;
    spec.path = res.exe.c_str();
    spec.argv = argv.data();
    spec.envp = res.envp.empty() ? nullptr : res.envp.data();
    spec.dir = o.dir.empty() ? nullptr : o.dir.c_str();
    spec.stdin_fd = plan.child[0];
    spec.stdout_fd = plan.child[1];
    spec.stderr_fd = plan.child[2];
    spec.new_session = new_session;
    spec.new_group = o.kill_group;
    spec.pass_src = plan.pass_src.data();
    spec.pass_dst = plan.pass_dst.data();
    spec.pass_count = static_cast<int>(plan.pass_src.size());
    spec.controlling_tty = plan.pty;
    spec.ctty_path = plan.pty ? plan.pty_pair.slave_path.c_str() : nullptr;
    // Containment and identity (issue 13): the cgroup exists before the child, born in it.
    detail::IdentitySpec identity_store;
    if (auto c = detail::check_containment(op, o); !c) return fail(c.error());
    detail::apply_identity(o.identity, identity_store, spec);
    if (detail::wants_cgroup(o)) {
        auto cg = detail::make_cgroup(op, opts.cgroup_parent, o);
        if (!cg) return fail(cg.error());
        st.cgroup = std::move(*cg);
        spec.cgroup_fd = st.cgroup->fd();
    }
    st.started_at = std::chrono::system_clock::now();
    st.started_steady = Clock::now();
    auto spawned = sys::spawn(spec);
    if (!spawned) {
        const int code = spawned.error().code();
        // A containment or identity step of the child: its own text (`setuid 65534: …`).
        if (spawned.error().op() == "child")
            return fail(Error(op, "\"" + o.command + "\": " + spawned.error().message(), code));
        return fail(E_errno(
            op, (detail::is_resource_errno(code) ? "spawn \"" : "exec \"") + o.command + "\"",
            code));
    }
    // The child has its copies: close ours now, or EOF never comes.
    for (auto& f : plan.child_own) f.reset();
    plan.pass_own.clear();

    const int pid = spawned->pid;
    if (spawned->pidfd) {
        // clone3 gave the pidfd at birth (posix_spawn opened it before returning): nothing to
        // race.
        st.ref = detail::PidRef::take(pid, std::move(spawned->pidfd));
    } else if (auto ref = detail::PidRef::open(pid)) {
        // Right after spawn, while the child cannot have been reaped by anyone but us.
        st.ref = std::move(*ref);
    } else {
        st.ref = detail::PidRef::take(pid, {});  // waited for by polling
        if (ref.error().code() == ENOSYS) {
            if (!told_fallback.exchange(true))
                core.logger()->info(
                    "process: pidfd_open unsupported (ENOSYS); waiting by polling "
                    "waitid(P_PID)");
        } else if (auto log = core.logger(); log->should_log(spdlog::level::debug)) {
            log->debug("process: {}; waiting for pid {} by polling", ref.error().what(), pid);
        }
    }
    return {};
}

// Step 6, register: an id, the registry and the indexes, ProcessStarted, the context's
// cancellation, and the reaper's watch. From here on the child is the reaper's.
Result<std::shared_ptr<ManagedProcess>> Service::Impl::register_process(
    const std::string& op, const Context& ctx, const RunOptions& o,
    const std::shared_ptr<ProcessState>& st, const std::shared_ptr<Reaper>& reaper_ref) {
    const int pid = st->ref.pid();
    st->id = core::id();
    st->status = Status::running;
    auto mp = std::make_shared<ManagedProcess>(st);
    {
        std::lock_guard lk(mu);
        const std::uint64_t seq = next_seq++;
        running.emplace(seq, mp);
        seq_of.emplace(st->id, seq);
        by_pid[pid] = mp;  // the newest with this pid wins (an older one has finished)
        // Entries of forgotten processes go in an occasional sweep: amortised O(1) a start.
        if (by_pid.size() > 2 * (running.size() + opts.retention) + 64) {
            std::erase_if(by_pid, [&](const auto& kv) {
                auto p = kv.second.lock();
                return !p || (!p->is_running() && !managed.has(p->id()));
            });
        }
    }
    if (auto s = managed.set(st->id, mp); !s) {
        // Cannot happen with a fresh id and an unlocked registry; never leave the child alone.
        reaper_ref->watch(st);
        (void)reaper_ref->kill(st, EndReason::killed);
        mp->wait();
        return fail(wrap(op, s.error()));
    }
    if (events && events->wanted()) {
        events->emit(Value(ProcessStarted{st->id, st->command, st->args, st->dir, pid}), false);
    }
    if ((st->transient || !o.detach) && ctx.token().stop_possible()) {
        std::lock_guard lk(st->mu);
        // If ctx is already cancelled the callback runs here and only queues a kill.
        st->on_cancel.emplace(ctx.token(), detail::CancelFn{reaper_ref, st, ctx});
    }
    reaper_ref->watch(st);
    return mp;
}

Result<std::shared_ptr<ManagedProcess>> Service::Impl::start(const std::string& op,
                                                             const Context& ctx,
                                                             const RunOptions& o, bool transient) {
    if (auto v = validate(op, o); !v) return fail(v.error());
    auto admitted = admit(op);
    if (!admitted) return fail(admitted.error());
    struct InFlight {
        Impl* impl;
        ~InFlight() { impl->leave(); }
    } in_flight_guard{this};
    if (ctx.done()) {
        return fail(Error(op, "\"" + o.command + "\": " + ctx.reason(),
                          ctx.deadline_exceeded() ? ETIMEDOUT : ECANCELED));
    }
    auto res = detail::resolve(op, o);
    if (!res) return fail(res.error());
    auto plan = detail::plan_stdio(op, o, admitted->devnull_fd);
    if (!plan) return fail(plan.error());
    // A new session (detach, pty) also leads a new group; run() ignores detach.
    const bool new_session = (o.detach && !transient) || plan->pty;
    auto st = make_state(o, *plan, transient, new_session, admitted->reaper);
    if (auto s = spawn(op, o, *res, *plan, *st, new_session); !s) return fail(s.error());
    take_parent_ends(o, *plan, *st);
    return register_process(op, ctx, o, st, admitted->reaper);
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

}  // namespace core::process
