// Commands from callers (start/stop/restart/remove/update) and health-check results.
#include "supervisor/impl.hpp"

namespace core::process::detail {

void SupervisorImpl::on_command(CommandMsg& c) {
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
                begin_stop(*d, after, after == After::stop ? "stop requested" : "remove requested");
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

void SupervisorImpl::on_health(const HealthMsg& m) {
    DaemonRec* d = find(m.name);
    if (!d || d->generation != m.generation || !d->proc) return;
    bool restart = false;
    {
        std::lock_guard lk(mu);
        d->check_in_flight = false;
        if (d->state != DaemonState::running && d->state != DaemonState::healthy &&
            d->state != DaemonState::unhealthy)
            return;
        const auto now = Clock::now();
        d->next_check = now + d->spec.health.interval;
        HealthInput in;
        in.state = d->state;
        in.failures = d->health_failures;
        in.failures_to_trip = d->spec.health.failures;
        in.restart = d->spec.restart;
        in.ok = static_cast<bool>(m.result);
        if (!m.result) in.error = m.result.error().what();
        const HealthDecision x = decide_health(in);
        d->health_failures = x.failures;
        if (x.last_error) d->last_error = *x.last_error;
        if (x.stable_begins) {
            d->stable_since = now;
            d->stable_until.reset();
        }
        if (x.stable_ends && d->stable_since && !d->stable_until) d->stable_until = now;
        if (x.state) set_state_locked(*d, *x.state, x.reason);
        restart = x.restart;
    }
    if (restart) begin_stop(*d, After::unhealthy, "restarting: unhealthy");
}

void SupervisorImpl::start_check(DaemonRec& d) {
    {
        std::lock_guard lk(mu);
        d.next_check.reset();
        d.check_in_flight = true;
    }
    checker->submit(d.spec.name, d.generation, d.spec.health);
}

}  // namespace core::process::detail
