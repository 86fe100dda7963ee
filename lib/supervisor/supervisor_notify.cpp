// The readiness protocol: datagrams from a daemon's NOTIFY_SOCKET, and its deadlines.
#include "supervisor/impl.hpp"

namespace core::process::detail {

void SupervisorImpl::on_notify(const NotifyMsg& m) {
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

void SupervisorImpl::notify_expired(DaemonRec& d, const std::string& why) {
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

}  // namespace core::process::detail
