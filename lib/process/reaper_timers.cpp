// The reaper's deadline heap (timeouts, SIGTERM->SIGKILL escalations, bounded drains) on one
// timerfd, and the children waited for by polling (no pidfd).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <cerrno>

#include "process/cgroup.hpp"
#include "process/notifier.hpp"
#include "process/reaper.hpp"
#include "sys/io.hpp"
#include "sys/signals.hpp"

namespace core::process::detail {

using Clock = std::chrono::steady_clock;

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
        if (t.kind == Timer::enroll) {
            enroll_deferred(false);
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
        if (t.kind == Timer::poll || t.kind == Timer::enroll || (st && !st->is_done()))
            keep.push_back(std::move(t));
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
