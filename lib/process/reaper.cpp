#include "process/reaper.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <cerrno>

#include "process/cgroup.hpp"
#include "process/notifier.hpp"
#include "sys/io.hpp"
#include "sys/signals.hpp"

namespace core::process::detail {

using Clock = std::chrono::steady_clock;

Clock::time_point deadline_after(Clock::time_point now, std::chrono::milliseconds d) noexcept {
    if (d.count() <= 0) return now;
    // Compare in the clock's own unit: d converted to it may itself overflow.
    const auto room = Clock::time_point::max() - now;  // Clock::duration, >= 0
    const auto room_ms = std::chrono::duration_cast<std::chrono::milliseconds>(room);
    if (d >= room_ms) return Clock::time_point::max();
    return now + std::chrono::duration_cast<Clock::duration>(d);
}

Result<void> signal_locked(ProcessState& st, int sig) {
    if (st.ref.reaped()) return {};
    if (st.cgroup) cgroup_signal(*st.cgroup, sig);  // SIGTERM/SIGKILL: the whole tree too
    // The group with kill_group; otherwise the pidfd (the pid without one). PidRef refuses once
    // reaped; here that cannot happen (checked above, under the same lock).
    auto r = st.ref.signal(sig, st.kill_group);
    if (!r && r.error().code() == ESRCH) return {};  // exited, not yet reaped
    return r;
}

namespace {
// The reap under st.mu: a signaller holding it sees either a child not yet waited for (its pid
// still ours) or one marked reaped, never a pid waited for but not yet marked.
Result<std::optional<sys::ExitStatus>> reap_under_mu(ProcessState& st) {
    std::lock_guard lk(st.mu);
    return st.ref.reap();
}
}  // namespace

Result<std::shared_ptr<Reaper>> Reaper::create(ReaperHooks hooks) {
    std::shared_ptr<Reaper> r(new Reaper());
    r->hooks_ = std::move(hooks);
    auto ep = sys::Epoll::create();
    if (!ep) return fail(ep.error());
    r->ep_ = std::move(*ep);
    auto wake = sys::EventFd::create();
    if (!wake) return fail(wake.error());
    r->wake_ = std::move(*wake);
    auto timer = sys::TimerFd::create();
    if (!timer) return fail(timer.error());
    r->timer_ = std::move(*timer);
    if (auto a = r->ep_.add(r->wake_.fd(), sys::ev_in, k_wake); !a) return fail(a.error());
    if (auto a = r->ep_.add(r->timer_.fd(), sys::ev_in, k_timer); !a) return fail(a.error());
    try {
        // The thread holds a plain pointer: the Reaper's owner joins it (stop or destructor)
        // before the Reaper goes away.
        r->th_ = std::thread([p = r.get()] { p->loop(); });
    } catch (const std::system_error& e) {
        return fail(E_errno("process.reaper", "thread", e.code().value()));
    }
    r->th_id_ = r->th_.get_id();
    return r;
}

Reaper::~Reaper() {
    stop();
}

void Reaper::stop() {
    if (!th_.joinable()) return;
    if (std::this_thread::get_id() == th_id_) {
        // Destroyed from its own thread (the last reference dropped in a hook): cannot join.
        th_.detach();
        return;
    }
    push(Cmd{Cmd::stop, nullptr, {}, EndReason::none, {}, {}});
    th_.join();
}

bool Reaper::on_reaper_thread() const noexcept {
    return std::this_thread::get_id() == th_id_;
}

void Reaper::debug(const std::string& msg) const {
    if (hooks_.log && hooks_.log->should_log(spdlog::level::debug)) hooks_.log->debug("{}", msg);
}

void Reaper::push(Cmd c) {
    bool was_empty;
    {
        std::lock_guard lk(cmd_mu_);
        was_empty = cmds_.empty();
        cmds_.push_back(std::move(c));
    }
    // The reaper reads the eventfd before it takes the queue, so one wake per batch suffices.
    if (was_empty) wake_.signal();
}

void Reaper::watch(std::shared_ptr<ProcessState> st) {
    live_.fetch_add(1);
    // When the reaper thread is idle, take the child in here, under its work lock, instead of
    // waking that thread for it: on a small machine that wake-up competes with the child's
    // exec for a CPU. When it is at work, queue the child (never wait for a batch to end).
    std::unique_lock lk(work_mu_, std::try_to_lock);
    if (lk) {
        take_in(st);
        return;
    }
    push(Cmd{Cmd::watch, std::move(st), {}, EndReason::none, {}, {}});
}

void Reaper::queue_kill(std::weak_ptr<ProcessState> st, EndReason why, std::string text) {
    push(Cmd{Cmd::kill, nullptr, std::move(st), why, std::move(text), {}});
}

void Reaper::queue_hard_kill(std::weak_ptr<ProcessState> st) {
    push(Cmd{Cmd::hard_kill, nullptr, std::move(st), EndReason::shutdown, {}, {}});
}

Result<void> Reaper::kill(const std::shared_ptr<ProcessState>& st, EndReason why,
                          std::string text) {
    std::unique_lock lk(st->mu);
    if (st->ref.reaped() || st->kill_requested()) return {};  // finished, or already being killed
    assert(why != EndReason::none);  // a request names its reason: kill_requested() reads it
    st->reason = why;
    st->reason_text = std::move(text);
    if (st->grace.count() <= 0) return signal_locked(*st, sys::sig_kill());
    auto r = signal_locked(*st, sys::sig_term());
    // A stopped (SIGSTOP) process cannot act on SIGTERM until it is continued (systemd sends
    // SIGCONT right after the stop signal too).
    (void)signal_locked(*st, sys::sig_cont());
    lk.unlock();
    const auto at = deadline_after(Clock::now(), st->grace);
    if (at == Clock::time_point::max()) return r;  // a grace period longer than time itself
    if (on_reaper_thread()) {
        add_timer(Timer{at, Timer::escalate, st});
    } else {
        push(Cmd{Cmd::timer, nullptr, st, EndReason::none, {}, at});
    }
    return r;
}

std::uint64_t Reaper::key(const ProcessState& st, Kind k) const noexcept {
    return (static_cast<std::uint64_t>(slots_[st.slot].gen) << 32) |
           (static_cast<std::uint64_t>(st.slot) << 8) | k;
}

void Reaper::loop() {
    // Host signal handlers never run here, and a SIGPIPE from writing `input` to a child that
    // closed its stdin stays pending in this thread (consumed by sys::write_some).
    sys::block_all_signals_in_thread();
    sys::PollEvent evs[64];
    for (;;) {
        auto n = ep_.wait(evs, 64, -1);
        if (!n) {
            debug("process.reaper: " + n.error().what());
            continue;
        }
        std::lock_guard lk(work_mu_);
        for (int i = 0; i < *n; ++i) on_event(evs[i].events, evs[i].data);
        if (stop_ && live_.load() == 0) break;
    }
}

bool Reaper::help_reap(const std::shared_ptr<ProcessState>& st) {
    std::unique_lock lk(work_mu_, std::try_to_lock);
    if (!lk) return false;  // the reaper thread is at work, most likely on this very exit
    run_commands();         // a watch the reaper thread has not taken in yet
    // ref and polled change only under work_mu_ (ref under st->mu too), which we hold.
    if (st->ref.reaped() || st->polled || !st->ref.has_pidfd()) return false;
    if (st->slot >= slots_.size() || slots_[st->slot].st != st) return false;
    on_exit_ready(st);
    // Taking the pidfd out of the epoll set may have cancelled the reaper thread's wake-up: if
    // it is stopping and this was the last child, it must still see that.
    if (stop_ && live_.load() == 0) wake_.signal();
    return true;
}

void Reaper::take_in(const std::shared_ptr<ProcessState>& st) {
    std::uint32_t slot;
    if (!free_slots_.empty()) {
        slot = free_slots_.back();
        free_slots_.pop_back();
    } else {
        slot = static_cast<std::uint32_t>(slots_.size());
        slots_.push_back(Slot{});
    }
    slots_[slot].st = st;
    st->slot = slot;
    {
        std::lock_guard lk(st->mu);
        st->advance(Phase::running);
    }
    if (st->ref.has_pidfd()) {
        if (auto a = ep_.add(st->ref.pidfd(), sys::ev_in, key(*st, k_pidfd)); !a) {
            debug("process.reaper: " + a.error().what() + "; polling pid " +
                  std::to_string(st->ref.pid()));
            st->polled = true;
        }
    } else {
        st->polled = true;
    }
    if (st->polled) {
        polled_.push_back(st);
        if (!poll_scheduled_) {
            poll_scheduled_ = true;
            add_timer(Timer{Clock::now() + fallback_poll, Timer::poll, {}});
        }
    }
    if (st->out_fd)
        if (auto a = ep_.add(st->out_fd.get(), sys::ev_in, key(*st, k_out)); !a)
            close_pipe(*st, st->out_fd);
    if (st->err_fd)
        if (auto a = ep_.add(st->err_fd.get(), sys::ev_in, key(*st, k_err)); !a)
            close_pipe(*st, st->err_fd);
    if (st->in_fd)
        if (auto a = ep_.add(st->in_fd.get(), sys::ev_out, key(*st, k_in)); !a) st->in_fd.reset();
    if (st->timeout.count() > 0) {
        const auto at = deadline_after(st->started_steady, st->timeout);
        if (at != Clock::time_point::max()) add_timer(Timer{at, Timer::timeout, st});
    }
}

void Reaper::run_commands() {
    std::vector<Cmd> cmds;
    {
        std::lock_guard lk(cmd_mu_);
        cmds.swap(cmds_);
    }
    for (auto& c : cmds) {
        switch (c.kind) {
            case Cmd::watch:
                take_in(c.st);
                break;
            case Cmd::kill:
                if (auto st = c.weak.lock()) (void)kill(st, c.why, std::move(c.text));
                break;
            case Cmd::hard_kill:
                if (auto st = c.weak.lock()) {
                    (void)kill(st, c.why);  // records the reason if this is the first kill
                    std::lock_guard lk(st->mu);
                    (void)signal_locked(*st, sys::sig_kill());
                }
                break;
            case Cmd::timer:
                add_timer(Timer{c.at, Timer::escalate, c.weak});
                break;
            case Cmd::stop:
                stop_ = true;
                break;
        }
    }
}

void Reaper::on_event(std::uint32_t events, std::uint64_t data) {
    const auto kind = static_cast<Kind>(data & 0xff);
    if (kind == k_wake) {
        wake_.drain();
        run_commands();
        return;
    }
    if (kind == k_timer) {
        timer_.drain();
        on_timers();
        return;
    }
    const auto slot = static_cast<std::uint32_t>((data >> 8) & 0xffffff);
    const auto gen = static_cast<std::uint32_t>(data >> 32);
    if (slot >= slots_.size() || slots_[slot].gen != gen || !slots_[slot].st) return;  // stale
    auto st = slots_[slot].st;  // keeps it alive through finish()
    switch (kind) {
        case k_pidfd:
            // A waiter may have reaped it (help_reap) after this batch of events was taken.
            if (!st->ref.reaped() && !st->polled) on_exit_ready(st);
            break;
        case k_out:
        case k_err:
            read_pipe(st, kind == k_err, 1);
            maybe_finish(st);
            break;
        case k_in:
            (void)events;
            write_input(st);
            break;
        default:
            break;
    }
}

void Reaper::read_pipe(const std::shared_ptr<ProcessState>& st, bool err, int max_reads) {
    sys::UniqueFd& fd = err ? st->err_fd : st->out_fd;
    for (int i = 0; i < max_reads && fd; ++i) {
        auto n = sys::read_some(fd.get(), buf_, sizeof buf_);
        if (!n) {
            debug("process.reaper: " + n.error().what());
            close_pipe(*st, fd);
            return;
        }
        if (*n == sys::would_block) return;
        if (*n == 0) {
            close_pipe(*st, fd);
            return;
        }
        const auto len = static_cast<std::size_t>(*n);
        const Stream stream = err ? Stream::stderr_ : Stream::stdout_;
        bool queued = true;
        if (st->on_output && hooks_.notifier) {
            // One callback per read (a batch of lines), on the notifier thread.
            queued =
                hooks_.notifier->post_output(len, [st, stream, bytes = std::string(buf_, len)] {
                    st->on_output(OutputChunk{st->id, stream, bytes});
                });
        }
        {
            std::lock_guard lk(st->mu);
            if (err && st->separate_err) {
                st->err_output.append(buf_, len);
            } else {
                st->output.append(buf_, len);
            }
            if (!queued) st->callback_dropped += len;
        }
        if (hooks_.events) {
            LineSplitter& sp = err ? st->err_lines : st->out_lines;
            // One line event per line is the costly part of capture (a string, a queue entry
            // and a broadcast each): build none while nobody subscribes.
            if (hooks_.events->wanted() && hooks_.output_batches) {
                // One event for the lines of this read: one queue entry, one broadcast.
                ProcessOutputBatch batch{st->id, stream, {}};
                sp.feed(buf_, len,
                        [&](std::string line) { batch.lines.push_back(std::move(line)); });
                const std::size_t nlines = batch.lines.size();
                if (nlines > 0) hooks_.events->emit_counted(Value(std::move(batch)), nlines);
            } else if (hooks_.events->wanted()) {
                sp.feed(buf_, len, [&](std::string line) {
                    hooks_.events->emit(Value(ProcessOutput{st->id, std::move(line), stream}),
                                        true);
                });
            } else {
                sp.skip(buf_, len);
            }
        }
    }
}

void Reaper::close_pipe(ProcessState& st, sys::UniqueFd& fd) {
    (void)st;
    if (!fd) return;
    // Explicit EPOLL_CTL_DEL: if the host forked without exec, a copy of this descriptor keeps
    // the open file alive and epoll would keep reporting it after our close.
    (void)ep_.remove(fd.get());
    fd.reset();
}

void Reaper::write_input(const std::shared_ptr<ProcessState>& st) {
    while (st->in_fd && st->input_off < st->input.size()) {
        auto n = sys::write_some(st->in_fd.get(), st->input.data() + st->input_off,
                                 st->input.size() - st->input_off);
        if (!n) {  // EPIPE: the child closed stdin without reading everything; not an error
            debug("process.reaper: input: " + n.error().what());
            break;
        }
        if (*n == sys::would_block) return;  // EPOLLOUT will tell us when to go on
        st->input_off += static_cast<std::size_t>(*n);
    }
    // All written (or the reader is gone): closing gives the child its EOF.
    close_pipe(*st, st->in_fd);
    std::string().swap(st->input);
}

void Reaper::on_exit_ready(const std::shared_ptr<ProcessState>& st) {
    // The child's own pipe ends were closed before its exit was signalled (exit_files runs
    // before exit_notify), so what is in the pipes now is all it wrote; read it (bounded: a
    // grandchild may keep writing).
    if (st->cgroup) end_cgroup_tree(*st);  // what is left of the tree dies with the leader
    read_pipe(st, false, 16);
    read_pipe(st, true, 16);
    if (st->kill_group && (st->out_fd || st->err_fd)) {
        // Something else in the group still holds our pipes. The group is one unit with
        // kill_group: kill the leftovers now, while the unreaped leader still pins the group id.
        std::lock_guard lk(st->mu);
        (void)signal_locked(*st, sys::sig_kill());
    }
    auto w = reap_under_mu(*st);
    if (w && !*w) {
        // Readable but not reapable (a ptracer intervened, tokio #7144): not an error. Poll it
        // instead of spinning on a level-triggered pidfd.
        if (!st->polled) {
            (void)ep_.remove(st->ref.pidfd());
            st->polled = true;
            polled_.push_back(st);
            if (!poll_scheduled_) {
                poll_scheduled_ = true;
                add_timer(Timer{Clock::now() + fallback_poll, Timer::poll, {}});
            }
        }
        return;
    }
    if (!w) {
        complete_reap(st, fail(w.error()));
    } else {
        complete_reap(st, **w);
    }
}

void Reaper::complete_reap(const std::shared_ptr<ProcessState>& st,
                           const Result<sys::ExitStatus>& w) {
    if (!st->polled && st->ref.has_pidfd()) (void)ep_.remove(st->ref.pidfd());
    {
        std::lock_guard lk(st->mu);
        st->ref.mark_reaped();  // closes the pidfd, out of the epoll set now
        st->advance(Phase::reaped);
        st->ended_steady = Clock::now();
        if (!w) {
            // ECHILD: someone else reaped our child (waitpid(-1) or SIGCHLD=SIG_IGN in the host).
            st->status = Status::failed;
            st->exit_code = -1;
            st->error = w.error().what();
        } else if (w->exited) {
            st->status = Status::exited;
            st->exit_code = w->code;
        } else {
            st->exit.core_dumped = w->core_dumped;
            st->status = Status::killed;
            st->exit_code = -1;
            st->signal = w->signal;
        }
    }
    if (w) {
        st->usage.user_cpu = std::chrono::microseconds(w->user_cpu_us);
        st->usage.system_cpu = std::chrono::microseconds(w->system_cpu_us);
        st->usage.max_rss_bytes = w->max_rss_bytes;
    }
    if (!st->out_fd && !st->err_fd) {
        finish(st);
    } else {
        {
            std::lock_guard lk(st->mu);
            st->advance(Phase::draining);
        }
        add_timer(Timer{Clock::now() + drain_timeout, Timer::drain, st});
    }
}

void Reaper::maybe_finish(const std::shared_ptr<ProcessState>& st) {
    if (st->out_fd || st->err_fd) return;
    bool reaped;
    {
        std::lock_guard lk(st->mu);
        reaped = st->is_draining();
    }
    if (reaped) finish(st);
}

namespace {
ExitReason public_reason(EndReason r) noexcept {
    switch (r) {
        case EndReason::timeout:
            return ExitReason::timeout;
        case EndReason::cancelled:
            return ExitReason::cancelled;
        case EndReason::killed:
            return ExitReason::killed;
        case EndReason::shutdown:
            return ExitReason::shutdown;
        case EndReason::none:
            break;
    }
    return ExitReason::natural;
}
}  // namespace

void Reaper::finish(const std::shared_ptr<ProcessState>& st) {
    close_pipe(*st, st->out_fd);
    close_pipe(*st, st->err_fd);
    close_pipe(*st, st->in_fd);
    if (hooks_.events && hooks_.output_batches) {
        for (Stream stream : {Stream::stdout_, Stream::stderr_}) {
            ProcessOutputBatch batch{st->id, stream, {}};
            (stream == Stream::stdout_ ? st->out_lines : st->err_lines)
                .flush([&](std::string line) { batch.lines.push_back(std::move(line)); });
            const std::size_t nlines = batch.lines.size();
            if (nlines > 0) hooks_.events->emit_counted(Value(std::move(batch)), nlines);
        }
    } else if (hooks_.events) {
        st->out_lines.flush([&](std::string line) {
            hooks_.events->emit(Value(ProcessOutput{st->id, std::move(line), Stream::stdout_}),
                                true);
        });
        st->err_lines.flush([&](std::string line) {
            hooks_.events->emit(Value(ProcessOutput{st->id, std::move(line), Stream::stderr_}),
                                true);
        });
    }
    ProcessExited exited;
    int killed_by = 0;
    std::vector<std::function<void(const ProcessInfo&)>> hooks;
    ProcessInfo info;
    {
        std::lock_guard lk(st->mu);
        st->advance(Phase::done);
        st->pty_ctl.reset();
        // The context's callback may be running on another thread: the stop_callback's
        // destructor waits for it, and it takes only the command queue's lock, not st->mu.
        st->on_cancel.reset();
        ExitStatus& x = st->exit;
        x.reason = public_reason(st->reason);
        x.timeout = st->timeout;
        x.output_cut = st->output_cut;
        if (st->status == Status::failed) {
            x.kind = ExitKind::unknown;
            x.code = -1;
            x.detail = st->error;
        } else if (st->status == Status::exited) {
            x.kind = ExitKind::exited;
            x.code = st->exit_code;
        } else {
            x.kind = ExitKind::signalled;
            x.code = -1;
            x.signal = st->signal;
        }
        if (x.reason == ExitReason::cancelled) x.detail = st->reason_text;
        if (st->cgroup && x.kind == ExitKind::signalled) {
            // An OOM kill in the process's cgroup says more than the bare SIGKILL.
            oom_reason_locked(*st);  // sets st->error: "killed by the OOM killer: memory.max 64M"
            if (!st->error.empty()) x.detail = st->error;
        }
        const bool clean = x.kind == ExitKind::exited && x.code == 0 && !x.output_cut &&
                           x.reason != ExitReason::timeout && x.reason != ExitReason::cancelled;
        st->error = clean ? std::string() : x.describe();
        if (st->status == Status::killed && st->kill_requested()) killed_by = st->signal;
        exited.id = st->id;
        exited.exit_code = st->exit_code;
        exited.duration = st->ended_steady - st->started_steady;
        exited.error = st->error;
        exited.status = x;
        exited.usage = st->usage;
        hooks.swap(st->exit_hooks);
        if (!hooks.empty()) info = info_of(*st);
        if (st->exit_event.fd() >= 0) st->exit_event.signal();
    }
    // std_in = pipe: the child is gone, so its stdin is useless. A writer blocked on a full pipe
    // (a grandchild holds its read end) is woken, now that the process is done, and returns an
    // Error; whoever holds input_mu closes the pipe (here, or the writer on its way out).
    st->input_closing.store(true);
    if (st->input_wake.fd() >= 0) st->input_wake.signal();
    {
        std::unique_lock ilk(st->input_mu, std::try_to_lock);
        if (ilk) st->input_fd.reset();
    }
    if (!hooks.empty()) {
        if (hooks_.notifier) {
            hooks_.notifier->post([hooks = std::move(hooks), info = std::move(info)] {
                for (auto& h : hooks) {
                    try {
                        h(info);
                    } catch (...) {
                        // One throwing hook does not keep the others from running.
                    }
                }
            });
        }
    }
    st->cv.notify_all();
    if (hooks_.events) {
        if (killed_by) hooks_.events->emit(Value(ProcessKilled{st->id, killed_by}), false);
        hooks_.events->emit(Value(std::move(exited)), false);
    }
    if (st->slot < slots_.size() && slots_[st->slot].st == st) {
        slots_[st->slot].st.reset();
        ++slots_[st->slot].gen;
        free_slots_.push_back(st->slot);
    }
    stale_timers_ += st->timers_queued;
    st->timers_queued = 0;
    if (stale_timers_ > 32 && stale_timers_ * 2 > timers_.size()) purge_timers();
    live_.fetch_sub(1);
    if (hooks_.on_finished) hooks_.on_finished(st);
}

void Reaper::post_hook(std::function<void()> fn) {
    if (hooks_.notifier) {
        hooks_.notifier->post(std::move(fn));
    } else {
        fn();
    }
}

void Reaper::add_timer(Timer t) {
    const auto at = t.at;
    if (auto st = t.st.lock()) {
        if (st->is_done()) return;  // nothing left to time
        ++st->timers_queued;
    }
    timers_.push_back(std::move(t));
    std::push_heap(timers_.begin(), timers_.end(), std::greater<Timer>());
    if (!armed_ || at < armed_at_) {
        if (timer_.arm_at(at)) {
            armed_ = true;
            armed_at_ = at;
        }
    }
}

void Reaper::on_timers() {
    armed_ = false;
    const auto now = Clock::now();
    while (!timers_.empty() && timers_.front().at <= now) {
        Timer t = pop_timer();
        if (t.kind == Timer::poll) {
            poll_scheduled_ = false;
            poll_children();
            continue;
        }
        auto st = t.st.lock();
        if (!st) continue;
        switch (t.kind) {
            case Timer::timeout: {
                bool done;
                {
                    std::lock_guard lk(st->mu);
                    done = st->ref.reaped();
                }
                if (!done) (void)kill(st, EndReason::timeout);
                break;
            }
            case Timer::escalate: {
                std::lock_guard lk(st->mu);
                (void)signal_locked(*st, sys::sig_kill());
                break;
            }
            case Timer::drain: {
                bool pending;
                {
                    std::lock_guard lk(st->mu);
                    pending = st->is_draining();
                }
                if (pending) {
                    read_pipe(st, false, 16);  // what is there now, then stop waiting
                    read_pipe(st, true, 16);
                    if (st->out_fd || st->err_fd) {
                        // Still held (a descendant): whatever it writes from now on is lost,
                        // and the caller must be able to tell (Go's ErrWaitDelay).
                        std::lock_guard lk(st->mu);
                        st->output_cut = true;
                    }
                    finish(st);
                }
                break;
            }
            default:
                break;
        }
    }
    if (!timers_.empty()) {
        if (timer_.arm_at(timers_.front().at)) {
            armed_ = true;
            armed_at_ = timers_.front().at;
        }
    }
}

Reaper::Timer Reaper::pop_timer() {
    std::pop_heap(timers_.begin(), timers_.end(), std::greater<Timer>());
    Timer t = std::move(timers_.back());
    timers_.pop_back();
    if (auto st = t.st.lock()) {
        if (st->timers_queued > 0) --st->timers_queued;
        if (st->is_done() && stale_timers_ > 0) --stale_timers_;
    }
    return t;
}

void Reaper::purge_timers() {
    // Amortised O(1) per timer: runs only when at least half the heap is stale.
    std::vector<Timer> keep;
    keep.reserve(timers_.size() > stale_timers_ ? timers_.size() - stale_timers_ : 0);
    for (auto& t : timers_) {
        auto st = t.st.lock();
        if (t.kind == Timer::poll || (st && !st->is_done())) keep.push_back(std::move(t));
    }
    timers_ = std::move(keep);
    std::make_heap(timers_.begin(), timers_.end(), std::greater<Timer>());
    stale_timers_ = 0;
    // The earliest deadline may be later now; an early wake-up is harmless (nothing is due).
}

void Reaper::poll_children() {
    // O(n) in the polled children, which exist only without pidfd support.
    for (std::size_t i = 0; i < polled_.size();) {
        auto st = polled_[i];
        if (st->kill_group && (st->out_fd || st->err_fd)) {
            // As on the pidfd path: leftovers of the group holding our pipes are killed while
            // the exited but unreaped leader still pins the group id (WNOWAIT peeks).
            auto gone = st->ref.exited();  // under work_mu_: ref cannot change
            if (gone && *gone) {
                read_pipe(st, false, 16);
                read_pipe(st, true, 16);
                if (st->out_fd || st->err_fd) {
                    std::lock_guard lk(st->mu);
                    (void)signal_locked(*st, sys::sig_kill());
                }
            }
        }
        auto w = reap_under_mu(*st);
        if (w && !*w) {
            ++i;
            continue;
        }
        polled_[i] = std::move(polled_.back());
        polled_.pop_back();
        if (st->cgroup) end_cgroup_tree(*st);
        read_pipe(st, false, 16);
        read_pipe(st, true, 16);
        if (!w) {
            complete_reap(st, fail(w.error()));
        } else {
            complete_reap(st, **w);
        }
    }
    if (!polled_.empty() && !poll_scheduled_) {
        poll_scheduled_ = true;
        add_timer(Timer{Clock::now() + fallback_poll, Timer::poll, {}});
    }
}

}  // namespace core::process::detail
