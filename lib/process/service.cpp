#include "core/process/service.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <stop_token>
#include <unordered_map>

#include "core/id.hpp"
#include "core/log.hpp"
#include "process/cgroup.hpp"
#include "process/containment.hpp"
#include "process/events.hpp"
#include "process/notifier.hpp"
#include "process/reaper.hpp"
#include "process/state.hpp"
#include "sys/io.hpp"
#include "sys/proc.hpp"
#include "sys/signals.hpp"
#include "sys/spawn.hpp"
#include "sys/stdio.hpp"

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
                          : nullptr),
          notifier(detail::Notifier::create(o.max_queued_output_bytes)) {}

    Service& self;
    Core& core;
    ServiceOptions opts;
    Registry<std::shared_ptr<ManagedProcess>> managed{"process"};
    std::shared_ptr<detail::EventDispatcher> events;
    std::shared_ptr<detail::Notifier> notifier;

    std::mutex mu;  // guards everything below
    std::condition_variable cv;
    std::shared_ptr<Reaper> reaper;
    bool accepting = true;
    int in_flight = 0;  // start() calls between admission and registration
    sys::UniqueFd devnull;
    std::list<std::string> finished;  // retained finished ids, oldest first
    // Running processes in start order, and the newest process per pid: list(running_only),
    // kill_pid and shutdown cost O(running), not O(retained).
    std::uint64_t next_seq = 0;
    std::map<std::uint64_t, std::shared_ptr<ManagedProcess>> running;
    std::unordered_map<std::string, std::uint64_t> seq_of;
    std::unordered_map<int, std::weak_ptr<ManagedProcess>> by_pid;
    std::unordered_map<std::string, std::list<std::string>::iterator> finished_pos;
    std::atomic<bool> told_fallback{false};

    Result<std::shared_ptr<ManagedProcess>> start(const std::string& op, const Context& ctx,
                                                  const RunOptions& o, bool transient);
    Result<std::string> run(const Context& ctx, const RunOptions& o);
    Result<Completed> exec(const std::string& op, const Context& ctx, const RunOptions& o);
    void on_finished(const std::shared_ptr<ProcessState>& st);
    void stop_all(bool deliver_events, const Context* ctx = nullptr);
    void forget_finished(const std::string& id);
};

// ------------------------------------------------------------------ start

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

// Step 3: the child's environment under its policy, and the PATH its command is found in.
struct Resolved {
    std::vector<std::string> env_store;
    std::vector<char*> envp;  // empty: the host's environ as it is
    std::string exe;
};

Result<Resolved> resolve(const std::string& op, const RunOptions& o) {
    Resolved r;
    std::vector<std::string> overrides = o.env;
    // PWD names the child's directory, not ours (Go 1.19, go.dev/issue/50599): shells and
    // build tools trust it. An explicit PWD in env wins.
    if (!o.dir.empty()) {
        bool explicit_pwd = false;
        for (const auto& kv : o.env) explicit_pwd = explicit_pwd || kv.compare(0, 4, "PWD=") == 0;
        if (!explicit_pwd) {
            std::string abs = o.dir;
            if (abs[0] != '/') {
                auto cwd = sys::current_dir();
                if (!cwd) return fail(E(op, "dir \"" + o.dir + "\"", cwd.error()));
                abs = *cwd + (cwd->back() == '/' ? "" : "/") + o.dir;
            }
            overrides.push_back("PWD=" + abs);
        }
    }
    const bool custom =
        !overrides.empty() || !o.unset_env.empty() || o.env_mode == EnvMode::replace;
    const char* path_var = nullptr;
    if (custom) {
        if (o.env_mode == EnvMode::replace) {
            // Last wins, first position kept, as merge_env does over the host's environment.
            std::unordered_map<std::string, std::size_t> at;
            for (const auto& kv : overrides) {
                auto [it, added] = at.emplace(kv.substr(0, kv.find('=')), r.env_store.size());
                if (added) {
                    r.env_store.push_back(kv);
                } else {
                    r.env_store[it->second] = kv;
                }
            }
        } else {
            r.env_store = sys::merge_env(overrides);
        }
        if (!o.unset_env.empty()) {
            std::erase_if(r.env_store, [&](const std::string& kv) {
                const std::string_view name = std::string_view(kv).substr(0, kv.find('='));
                for (const auto& u : o.unset_env)
                    if (name == u) return true;
                return false;
            });
        }
        r.envp.reserve(r.env_store.size() + 1);
        for (auto& kv : r.env_store) {
            r.envp.push_back(kv.data());
            if (kv.compare(0, 5, "PATH=") == 0) path_var = kv.c_str() + 5;
        }
        r.envp.push_back(nullptr);
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
    r.exe = std::move(*exe);
    return r;
}

// Step 4: every descriptor the child gets, and the parent ends we keep.
struct StdioPlan {
    sys::UniqueFd child_own[3];        // owned sources for 0, 1, 2 (pipe ends, files, dups)
    int child[3] = {-1, -1, -1};       // what is dup2'd onto 0, 1, 2; -1: inherit ours
    sys::UniqueFd out_read, err_read;  // captured stdout / stderr
    sys::UniqueFd in_write;            // stdin pipe (pipe or bytes)
    bool separate_err = false;
    bool pty = false;
    sys::Pty pty_pair;
    std::vector<sys::UniqueFd> pass_own;
    std::vector<int> pass_src, pass_dst;
};

Result<StdioPlan> plan_stdio(const std::string& op, const RunOptions& o, int devnull_fd) {
    using K = Stdio::Kind;
    StdioPlan p;
    const char* keys[3] = {"stdin", "stdout", "stderr"};
    auto wrap_key = [&](int n, const Error& e) {
        return Error(op, std::string("option \"") + keys[n] + "\": " + e.what(), e.code());
    };
    if (o.std_in.kind() == K::pty) {
        auto pt = sys::open_pty(o.std_in.rows(), o.std_in.cols());
        if (!pt) return fail(wrap_key(0, pt.error()));
        auto slave = sys::open_pty_slave(pt->slave_path);
        if (!slave) return fail(wrap_key(0, slave.error()));
        p.pty = true;
        for (int n = 0; n < 3; ++n) p.child[n] = slave->get();
        p.child_own[0] = std::move(*slave);
        p.pty_pair = std::move(*pt);
        return p;
    }
    auto one = [&](int n, const Stdio& s) -> Result<void> {
        switch (s.kind()) {
            case K::null:
                p.child[n] = devnull_fd;
                return {};
            case K::inherit:
                p.child[n] = -1;
                return {};
            case K::pipe:
            case K::bytes: {
                auto pp = sys::make_pipe();
                if (!pp) return fail(wrap_key(n, pp.error()));
                if (n == 0) {
                    // Ours is non-blocking either way: the reaper writes bytes() without
                    // blocking; write_input() waits for room together with a wake-up.
                    if (auto nb = sys::set_nonblocking(pp->write.get()); !nb)
                        return fail(wrap_key(n, nb.error()));
                    p.in_write = std::move(pp->write);
                    p.child_own[n] = std::move(pp->read);
                } else {
                    if (auto nb = sys::set_nonblocking(pp->read.get()); !nb)
                        return fail(wrap_key(n, nb.error()));
                    (n == 1 ? p.out_read : p.err_read) = std::move(pp->read);
                    p.child_own[n] = std::move(pp->write);
                }
                p.child[n] = p.child_own[n].get();
                return {};
            }
            case K::file: {
                auto f = sys::open_stdio_file(s.path(), n != 0, s.mode() == FileMode::append);
                if (!f) return fail(wrap_key(n, f.error()));
                p.child_own[n] = std::move(*f);
                p.child[n] = p.child_own[n].get();
                return {};
            }
            case K::fd: {
                // Our own dup: the caller may close theirs as soon as start returns.
                auto d = sys::dup_at_least(s.descriptor(), 3);
                if (!d) return fail(wrap_key(n, d.error()));
                p.child_own[n] = std::move(*d);
                p.child[n] = p.child_own[n].get();
                return {};
            }
            case K::merge:
            case K::pty:
                break;
        }
        return {};
    };
    if (auto r = one(0, o.std_in); !r) return fail(r.error());
    if (auto r = one(1, o.std_out); !r) return fail(r.error());
    if (o.std_err.kind() == K::merge) {
        if (o.std_out.kind() == K::pipe) {
            // A pipe of its own feeding the same buffer: arrival order is kept per read, and
            // ProcessOutput events still say which stream a line came from.
            if (auto r = one(2, Stdio::pipe()); !r) return fail(r.error());
        } else if (p.child[1] >= 0) {
            p.child[2] = p.child[1];
        } else {
            // stdout inherited: stderr goes where our stdout goes.
            auto d = sys::dup_at_least(1, 3);
            if (d) {
                p.child_own[2] = std::move(*d);
                p.child[2] = p.child_own[2].get();
            }  // our fd 1 is closed: the child's 2 stays ours, as inherit
        }
    } else {
        p.separate_err = o.std_err.kind() == K::pipe;
        if (auto r = one(2, o.std_err); !r) return fail(r.error());
    }
    if (!o.pass_fds.empty()) {
        // Sources above every target, so the child's dup2s cannot clobber one another.
        int max_dst = 2;
        for (const auto& pf : o.pass_fds) max_dst = std::max(max_dst, pf.child);
        for (const auto& pf : o.pass_fds) {
            auto d = sys::dup_at_least(pf.parent, max_dst + 1);
            if (!d)
                return fail(Error(
                    op,
                    "option \"passFds\": fd " + std::to_string(pf.parent) + ": " + d.error().what(),
                    d.error().code()));
            p.pass_src.push_back(d->get());
            p.pass_dst.push_back(pf.child);
            p.pass_own.push_back(std::move(*d));
        }
    }
    return p;
}

}  // namespace

Result<std::shared_ptr<ManagedProcess>> Service::Impl::start(const std::string& op,
                                                             const Context& ctx,
                                                             const RunOptions& o, bool transient) {
    if (auto v = validate(op, o); !v) return fail(v.error());

    // Step 2, admission: counted in flight until registered, so shutdown never misses a child.
    std::shared_ptr<Reaper> reaper_ref;
    int devnull_fd = -1;
    {
        std::lock_guard lk(mu);
        if (!accepting) return fail(Error(op, "process service is shut down", ESHUTDOWN));
        if (!reaper) {
            detail::ReaperHooks hooks;
            hooks.log = core.logger();
            hooks.events = events.get();
            hooks.output_batches = opts.output_batches;
            hooks.notifier = notifier;
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

    auto res = resolve(op, o);
    if (!res) return fail(res.error());
    auto plan = plan_stdio(op, o, devnull_fd);
    if (!plan) return fail(plan.error());

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
    // A new session (detach, pty) also leads a new group; run() ignores detach.
    const bool new_session = (o.detach && !transient) || plan->pty;
    st->kill_group = o.kill_group || new_session;
    st->transient = transient;
    st->grace = o.grace_period;
    st->timeout = o.timeout;
    st->max_output = o.max_output;
    st->capture_out = plan->out_read.valid() || plan->pty;
    st->separate_err = plan->separate_err;
    st->on_output = o.on_output;
    st->output.set_capacity(st->capture_out ? o.max_output : 0);
    st->err_output.set_capacity(plan->separate_err ? o.max_output : 0);
    const std::size_t piece = o.max_output ? o.max_output : (std::size_t{1} << 16);
    st->out_lines.set_max_piece(piece);
    st->err_lines.set_max_piece(piece);
    st->reaper = reaper_ref;

    // Step 5: spawn.
    sys::SpawnSpec spec;
    spec.path = res->exe.c_str();
    spec.argv = argv.data();
    spec.envp = res->envp.empty() ? nullptr : res->envp.data();
    spec.dir = o.dir.empty() ? nullptr : o.dir.c_str();
    spec.stdin_fd = plan->child[0];
    spec.stdout_fd = plan->child[1];
    spec.stderr_fd = plan->child[2];
    spec.new_session = new_session;
    spec.new_group = o.kill_group;
    spec.pass_src = plan->pass_src.data();
    spec.pass_dst = plan->pass_dst.data();
    spec.pass_count = static_cast<int>(plan->pass_src.size());
    spec.controlling_tty = plan->pty;
    spec.ctty_path = plan->pty ? plan->pty_pair.slave_path.c_str() : nullptr;
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
    // The child has its copies: close ours now, or EOF never comes.
    for (auto& f : plan->child_own) f.reset();
    plan->pass_own.clear();

    const int pid = spawned->pid;
    if (spawned->pidfd) {
        // clone3 gave the pidfd at birth (posix_spawn opened it before returning): nothing to
        // race.
        st->ref = detail::PidRef::take(pid, std::move(spawned->pidfd));
    } else if (auto ref = detail::PidRef::open(pid)) {
        // Right after spawn, while the child cannot have been reaped by anyone but us.
        st->ref = std::move(*ref);
    } else {
        st->ref = detail::PidRef::take(pid, {});  // waited for by polling
        if (ref.error().code() == ENOSYS) {
            if (!told_fallback.exchange(true))
                core.logger()->info(
                    "process: pidfd_open unsupported (ENOSYS); waiting by polling "
                    "waitid(P_PID)");
        } else if (auto log = core.logger(); log->should_log(spdlog::level::debug)) {
            log->debug("process: {}; waiting for pid {} by polling", ref.error().what(), pid);
        }
    }

    // Step 6: register and watch.
    st->id = core::id();
    st->status = Status::running;
    if (plan->pty) {
        // Output is read from the master like a pipe; write_input goes to the master too.
        auto in = plan->pty_pair.master.dup();
        if (in) {
            st->keep_stdin = true;
            st->input_fd = std::move(*in);
        }
        if (auto ctl = plan->pty_pair.master.dup()) st->pty_ctl = std::move(*ctl);
        st->out_fd = std::move(plan->pty_pair.master);
    } else {
        st->out_fd = std::move(plan->out_read);
        st->err_fd = std::move(plan->err_read);
    }
    if (o.std_in.kind() == Stdio::Kind::pipe || plan->pty) {
        if (!plan->pty) {
            st->keep_stdin = true;
            st->input_fd = std::move(plan->in_write);
        }
        if (auto w = sys::EventFd::create()) st->input_wake = std::move(*w);
    } else if (o.std_in.kind() == Stdio::Kind::bytes) {
        st->in_fd = std::move(plan->in_write);
        st->input = o.std_in.data();
    }
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

Result<void> Service::on_startup(const Context&) {
    {
        std::lock_guard lk(impl_->mu);
        impl_->accepting = true;
    }
    auto& c = core();
    const std::pair<const char*, ActionHandler> actions[] = {
        {"process.run",
         [this](const Context& ctx, const Options& opts) -> Result<Value> {
             auto o = parse_options("process.run", opts, impl_->opts.lenient_options);
             if (!o) return fail(o.error());
             auto out = run(ctx, *o);
             if (!out) return fail(out.error());
             return Value(std::move(*out));
         }},
        {"process.exec",
         [this](const Context& ctx, const Options& opts) -> Result<Value> {
             auto o = parse_options("process.exec", opts, impl_->opts.lenient_options);
             if (!o) return fail(o.error());
             auto done = impl_->exec("process.exec", ctx, *o);
             if (!done) return fail(done.error());
             return Value(std::move(*done));
         }},
        {"process.start",
         [this](const Context& ctx, const Options& opts) -> Result<Value> {
             auto o = parse_options("process.start", opts, impl_->opts.lenient_options);
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

std::uint64_t Service::dropped_event_lines() const {
    return impl_->events ? impl_->events->dropped_lines() : 0;
}

Result<std::shared_ptr<ManagedProcess>> Service::get(const std::string& id) const {
    auto p = impl_->managed.get(id);
    if (!p) return fail(Error("process.get", "not found: " + id, ESRCH));
    return *p;
}

std::vector<std::string> Service::list(bool running_only) const {
    if (!running_only) return impl_->managed.names();
    std::vector<std::string> out;
    std::lock_guard lk(impl_->mu);
    out.reserve(impl_->running.size());
    for (const auto& [seq, p] : impl_->running) {
        // run()/exec() entries are private to their caller until removed: not listed, as the
        // registry's names() does not list them once removed either.
        // Done but not yet unindexed (the reaper's on_finished runs just after): not running.
        if (p->is_running() && impl_->managed.has(p->id())) out.push_back(p->id());
    }
    return out;
}

Result<void> Service::kill(const std::string& id) {
    auto p = impl_->managed.get(id);
    if (!p) return fail(Error("process.kill", "not found: " + id, ESRCH));
    return (*p)->kill();
}

Result<void> Service::kill_pid(int pid) {
    std::shared_ptr<ManagedProcess> match;
    {
        std::lock_guard lk(impl_->mu);
        // The newest process with this pid: a running one wins over a finished one whose pid
        // was reused, since the running one started later.
        if (auto it = impl_->by_pid.find(pid); it != impl_->by_pid.end()) match = it->second.lock();
    }
    // A forgotten (removed) process is no longer managed.
    if (match && (match->is_running() || impl_->managed.has(match->id()))) return match->kill();
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

namespace {

// The keys of process.run / process.start, go-process's first, then ours.
constexpr const char* kRunKeys[] = {
    "command", "args", "dir", "env", "timeout", "gracePeriod", "killGroup", "disableCapture",
    "input", "maxOutput", "detach", "keepStdin", "stdin", "stdout", "stderr", "envMode", "unsetEnv",
    // containment and identity (issue 13), read by detail::parse_containment_options
    "cgroup", "memoryMax", "memorySwapMax", "pidsMax", "cpuMax", "ioWeight", "user", "group",
    "groups", "umask", "rlimits", "nice", "noNewPrivs", "parentDeathSignal"};

Result<Stdio> parse_stdio(const std::string& op, const char* key, const Value& v) {
    const std::string where = std::string("option \"") + key + "\"";
    if (const auto* s = v.get<Stdio>()) return *s;
    if (const auto* s = v.get<std::string>()) {
        if (*s == "pipe") return Stdio::pipe();
        if (*s == "null") return Stdio::null();
        if (*s == "inherit") return Stdio::inherit();
        if (*s == "merge") return Stdio::merge();
        return fail(Error(op,
                          where + ": unknown stream target \"" + *s +
                              "\" (want pipe, null, inherit, merge or {\"file\": path})",
                          EINVAL));
    }
    if (const auto* o = v.get<Options>()) {
        for (const auto& [k, _] : o->entries())
            if (k != "file" && k != "append")
                return fail(
                    Error(op, where + ": unknown key \"" + k + "\" (known: file, append)", EINVAL));
        auto path = o->want_string(op, "file");
        if (!path) return fail(path.error());
        if (path->empty()) return fail(Error(op, where + ": \"file\" is required", EINVAL));
        auto append = o->want_boolean(op, "append");
        if (!append) return fail(append.error());
        return Stdio::file(*path, *append ? FileMode::append : FileMode::truncate);
    }
    return fail(Error(
        op, where + ": want string or {\"file\": path, \"append\": bool}, got " + v.type_name(),
        EINVAL));
}

}  // namespace

Result<RunOptions> Service::parse_options(const std::string& op, const Options& opts) {
    return parse_options(op, opts, false);
}

Result<RunOptions> Service::parse_options(const std::string& op, const Options& opts,
                                          bool lenient) {
    if (!lenient) {
        for (const auto& [key, _] : opts.entries()) {
            bool known = false;
            for (const char* k : kRunKeys) known = known || key == k;
            if (known) continue;
            std::string list;
            for (const char* k : kRunKeys) list += (list.empty() ? "" : ", ") + std::string(k);
            return fail(Error(op, "unknown option \"" + key + "\" (known: " + list + ")", EINVAL));
        }
    }
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
    auto env_mode = opts.want_string(op, "envMode", "merge");
    if (!env_mode) return fail(env_mode.error());
    if (*env_mode == "replace") {
        o.env_mode = EnvMode::replace;
    } else if (*env_mode != "merge") {
        return fail(Error(
            op, "option \"envMode\": want \"merge\" or \"replace\", got \"" + *env_mode + "\"",
            EINVAL));
    }
    auto unset = opts.want_strings(op, "unsetEnv");
    if (!unset) return fail(unset.error());
    o.unset_env = std::move(*unset);
    auto ceil_ms = [](std::chrono::nanoseconds d) {
        // Saturating: a duration near nanoseconds::max() stays huge ("never"), not negative.
        if (d >= std::chrono::nanoseconds::max() - std::chrono::milliseconds(1))
            return std::chrono::duration_cast<std::chrono::milliseconds>(d);
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
    if (*no_capture) {
        // go-process's disableCapture: the child writes where we write.
        o.std_out = Stdio::inherit();
        o.std_err = Stdio::inherit();
    }
    auto keep = opts.want_boolean(op, "keepStdin");
    if (!keep) return fail(keep.error());
    if (opts.has("input")) {
        auto input = opts.want_string(op, "input");
        if (!input) return fail(input.error());
        if (*keep)
            return fail(
                Error(op, "options \"input\" and \"keepStdin\" exclude each other", EINVAL));
        o.std_in = Stdio::bytes(std::move(*input));
    } else if (*keep) {
        o.std_in = Stdio::pipe();
    }
    for (const char* key : {"stdin", "stdout", "stderr"}) {
        auto v = opts.get(key);
        if (!v) continue;
        const std::string k = key;
        if (k == "stdin" && (opts.has("input") || *keep))
            return fail(Error(op,
                              std::string("option \"stdin\" excludes \"") +
                                  (opts.has("input") ? "input" : "keepStdin") + "\"",
                              EINVAL));
        if (k != "stdin" && *no_capture)
            return fail(Error(op, "option \"" + k + "\" excludes \"disableCapture\"", EINVAL));
        auto st = parse_stdio(op, key, *v);
        if (!st) return fail(st.error());
        (k == "stdin" ? o.std_in : k == "stdout" ? o.std_out : o.std_err) = std::move(*st);
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
    if (auto c = detail::parse_containment_options(op, opts, o); !c) return fail(c.error());
    return o;
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
