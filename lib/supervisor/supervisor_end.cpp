// A daemon's process ended, or is being stopped.
#include "supervisor/impl.hpp"

namespace core::process::detail {

std::string SupervisorImpl::limit_text(const DaemonRec& d) {
    return "start limit hit: " + std::to_string(d.window.count()) + " starts within " +
           std::to_string(d.spec.start_limit.interval.count()) + "ms";
}

void SupervisorImpl::ended(DaemonRec& d, ExitInfo e, const std::string& detail) {
    const auto now = Clock::now();
    if (d.stop_pending) {
        // It ended by itself while its dependents were going down for its restart.
        std::lock_guard lk(mu);
        d.after = *d.stop_pending;
        d.stop_pending.reset();
        d.stop_pending_why.clear();
    }
    const After after = d.after;
    EndDecision x;
    {
        std::lock_guard lk(mu);
        EndInput in;
        in.after = after;
        in.exit = e;
        in.detail = detail;
        in.unhealthy_why = d.unhealthy_why;
        if (!d.last_lines.empty()) in.last_line = d.last_lines.back();
        in.restart = d.spec.restart;
        in.backoff = d.spec.backoff;
        in.start_limit = d.spec.start_limit;
        in.reset_after = d.spec.reset_after;
        in.attempt = d.attempt;
        in.window = d.window;
        in.stable_since = d.stable_since;
        in.stable_until = d.stable_until;
        in.now = now;
        in.jitter_u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
        x = decide_end(in);

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
        if (x.last_error) d.last_error = *x.last_error;
        d.attempt = x.attempt;
        d.stable_since.reset();
        d.stable_until.reset();
        if (d.next_spec && after != After::remove) {
            // apply() changed the spec while this process ran: the next one uses it.
            if (d.next_spec->log != d.spec.log) d.sink = make_sink(*d.next_spec);
            d.spec = std::move(*d.next_spec);
            d.next_spec.reset();
        }
        d.after = After::policy;
        if (x.restart_at) d.restart_at = x.restart_at;
        if (x.state) set_state_locked(d, *x.state, x.reason, x.delay);
    }
    if (!e.spawn_failed) remove_stale_pid_file(d);
    const std::string name = d.spec.name;
    // Its `requires` dependents go down with it; they come back with it when it does.
    const bool coming_back = x.coming_back;
    if (x.start_again) {
        auto r =
            request_start(d, after == After::restart ? "restart" : "restart with its dependency",
                          after == After::restart);
        complete(d, r);
    }
    if (after == After::stop) complete(d, {});
    if (x.erase) {
        complete(d, {});
        std::lock_guard lk(mu);
        order.erase(std::remove(order.begin(), order.end(), name), order.end());
        daemons.erase(name);  // d is gone from here on
        if (notify) notify->close(name);
    }
    if (!e.spawn_failed) stop_dependents(name, coming_back);
}

void SupervisorImpl::on_exit(const ExitMsg& m) {
    DaemonRec* d = find(m.name);
    if (!d || d->proc_id != m.proc_id || !d->proc) return;  // stale: an earlier process
    ExitInfo e;
    e.exit_code = m.info.exit_code;
    e.signal = m.info.signal;
    if (e.signal != 0) e.exit_code = -1;
    ended(*d, e, m.info.error);
}

void SupervisorImpl::begin_stop(DaemonRec& d, After after, const std::string& why) {
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

void SupervisorImpl::on_kill_deadline(DaemonRec& d) {
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

}  // namespace core::process::detail
