// The reaper's thread, its command queue and its epoll loop: taking children in, kill
// requests, and dispatching events. Reading, reaping and finishing are in reaper_drain.cpp;
// the timer heap and the polled children in reaper_timers.cpp.
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

// The reap under st.mu: a signaller holding it sees either a child not yet waited for (its pid
// still ours) or one marked reaped, never a pid waited for but not yet marked.
Result<std::optional<sys::ExitStatus>> Reaper::reap_under_mu(ProcessState& st) {
    std::lock_guard lk(st.mu);
    return st.ref.reap();
}

namespace {
// The work lock for a short step on another thread: taken at once when free, waited for when
// another short step holds it, not taken (empty) while the reaper thread is at work on a batch,
// which can be long (bounded reads of many pipes). The caller then queues its step instead.
std::unique_lock<std::mutex> lock_for_step(std::mutex& mu, const std::atomic<bool>& batch) {
    std::unique_lock lk(mu, std::try_to_lock);
    if (!lk && !batch.load()) lk.lock();
    return lk;
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
    // exec for a CPU. When it is at work on a batch, queue the child (never wait for a batch to
    // end); when another thread holds the lock for a short step, wait for it.
    auto lk = lock_for_step(work_mu_, batch_);
    if (lk) {
        take_in(st);
        return;
    }
    push(Cmd{Cmd::watch, std::move(st), {}, EndReason::none, {}, {}});
}

void Reaper::expedite(const std::shared_ptr<ProcessState>& st) {
    st->expedite.store(true);
    if (!st->deferred.load()) return;  // enrolled already, or never deferred
    auto lk = lock_for_step(work_mu_, batch_);
    if (lk) {
        if (st->deferred.load() && !st->ref.reaped()) enroll(st);
        return;
    }
    push(Cmd{Cmd::expedite, nullptr, st, EndReason::none, {}, {}});
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
        batch_.store(true);
        for (int i = 0; i < *n; ++i) on_event(evs[i].events, evs[i].data);
        batch_.store(false);
        if (stop_ && live_.load() == 0) break;
    }
}

bool Reaper::help_reap(const std::shared_ptr<ProcessState>& st) {
    std::unique_lock lk(work_mu_, std::try_to_lock);
    if (!lk) {
        // The reaper thread at work on a batch is most likely on this very exit, unless the
        // child is deferred (not in its epoll set): then nobody else will reap it soon. Any
        // other holder is another waiter or a starter, for a short step.
        if (batch_.load() && !st->deferred.load()) return false;
        lk.lock();
    }
    run_commands();  // a watch the reaper thread has not taken in yet
    // ref and polled change only under work_mu_ (ref under st->mu too), which we hold.
    if (st->ref.reaped() || st->polled || !st->ref.has_pidfd() || st->driver_active) return false;
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
    bool pty;
    {
        std::lock_guard lk(st->mu);
        st->advance(Phase::running);
        pty = static_cast<bool>(st->pty_ctl);
    }
    const bool pipes = st->out_fd || st->err_fd;
    // Nothing to read or write for it, or a run() child whose caller is about to wait and read
    // for itself (drive): its waiter, if it comes soon, reaps it (defer_window).
    const bool quiet = !pipes && !st->in_fd;
    const bool drivable = st->transient && pipes && !st->in_fd && !pty;
    st->pipes_held = pipes;
    if (st->ref.has_pidfd() && (quiet || drivable) && !st->expedite.load()) {
        st->deferred.store(true);
        deferred_.push_back(st);
        if (!enroll_scheduled_) {
            enroll_scheduled_ = true;
            add_timer(Timer{st->started_steady + defer_window, Timer::enroll, {}});
        }
    } else {
        enroll(st);
    }
    if (st->in_fd)
        if (auto a = ep_.add(st->in_fd.get(), sys::ev_out, key(*st, k_in)); !a) st->in_fd.reset();
    if (st->timeout.count() > 0) {
        const auto at = deadline_after(st->started_steady, st->timeout);
        if (at != Clock::time_point::max()) add_timer(Timer{at, Timer::timeout, st});
    }
}

void Reaper::enroll(const std::shared_ptr<ProcessState>& st) {
    if (st->driver_active) return;  // its driver reads and reaps it, and enrolls what is left
    enroll_pipes(st);
    st->deferred.store(false);
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
}

void Reaper::enroll_pipes(const std::shared_ptr<ProcessState>& st) {
    if (!st->pipes_held) return;
    st->pipes_held = false;
    if (st->out_fd)
        if (auto a = ep_.add(st->out_fd.get(), sys::ev_in, key(*st, k_out)); !a)
            close_pipe(*st, st->out_fd);
    if (st->err_fd)
        if (auto a = ep_.add(st->err_fd.get(), sys::ev_in, key(*st, k_err)); !a)
            close_pipe(*st, st->err_fd);
}

bool Reaper::drive(const std::shared_ptr<ProcessState>& st) {
    std::unique_lock lk(work_mu_);
    run_commands();  // its watch, if the reaper thread has not taken it in yet
    if (st->driver_active || !st->pipes_held || !st->deferred.load() || st->ref.reaped() ||
        st->polled || !st->ref.has_pidfd())
        return false;
    if (st->slot >= slots_.size() || slots_[st->slot].st != st) return false;
    st->driver_active = true;
    for (;;) {
        // Nothing closes these while driver_active (see ProcessState), so they are polled as
        // they are, without the lock.
        int fds[3];
        int n = 0;
        fds[n++] = st->ref.pidfd();
        const int out_at = st->out_fd ? n : -1;
        if (st->out_fd) fds[n++] = st->out_fd.get();
        const int err_at = st->err_fd ? n : -1;
        if (st->err_fd) fds[n++] = st->err_fd.get();
        lk.unlock();
        auto ready = sys::wait_any_readable(fds, n);
        lk.lock();
        if (!ready) {
            // Give it back to the reaper thread, which learns of its exit as of any other.
            debug("process.reaper: " + ready.error().what());
            st->driver_active = false;
            enroll(st);
            return false;
        }
        if (*ready & 1u) break;  // exited: read what is left, then reap
        if (out_at >= 0 && (*ready >> out_at & 1u)) read_pipe(st, false, 16);
        if (err_at >= 0 && (*ready >> err_at & 1u)) read_pipe(st, true, 16);
        if (Clock::now() - st->started_steady >= defer_window) {
            // Still writing after the window: a long or talkative child. The reaper thread's
            // epoll loop moves bulk output for about half the CPU of a poll() per read here
            // (64 MiB through run(): 15 vs 28 ms), so it takes the child over.
            st->driver_active = false;
            enroll(st);
            return false;
        }
    }
    st->driver_active = false;
    on_exit_ready(st);  // a grandchild's pipes, if it still holds them, go to the reaper thread
    if (stop_ && live_.load() == 0) wake_.signal();
    return true;
}

void Reaper::enroll_deferred(bool all) {
    enroll_scheduled_ = false;
    const auto now = Clock::now();
    std::size_t keep = 0;
    for (std::size_t i = 0; i < deferred_.size(); ++i) {
        auto st = deferred_[i].lock();
        if (!st || !st->deferred.load() || st->ref.reaped()) continue;  // reaped meanwhile
        if (!all && st->started_steady + defer_window > now) {
            deferred_[keep++] = std::move(deferred_[i]);
            continue;
        }
        enroll(st);
    }
    deferred_.resize(keep);
    if (keep > 0) {
        enroll_scheduled_ = true;
        auto first = deferred_.front().lock();
        const auto at = first ? first->started_steady + defer_window : now;
        add_timer(Timer{at, Timer::enroll, {}});
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
            case Cmd::expedite:
                if (auto st = c.weak.lock())
                    if (st->deferred.load() && !st->ref.reaped()) enroll(st);
                break;
            case Cmd::stop:
                stop_ = true;
                enroll_deferred(true);  // the last exits must wake this thread
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

void Reaper::post_hook(std::function<void()> fn) {
    if (hooks_.notifier) {
        hooks_.notifier->post(std::move(fn));
    } else {
        fn();
    }
}

}  // namespace core::process::detail
