// Starting a daemon: its dependencies, a held start, the spawn of its process.
#include "supervisor/impl.hpp"

namespace core::process::detail {

Result<void> SupervisorImpl::check_pid_file(const DaemonRec& d) {
    if (d.spec.pid_file.empty()) return {};
    auto info = probe_pid_file(d.spec.pid_file);
    if (!info) return {};  // missing or unreadable: nothing to protect
    if (info->alive)
        return fail(E("supervisor", "daemon \"" + d.spec.name + "\": pid file \"" +
                                        d.spec.pid_file + "\" is held by live pid " +
                                        std::to_string(info->pid)));
    remove_stale_pid_file(d);
    return {};
}

void SupervisorImpl::remove_stale_pid_file(const DaemonRec& d) {
    if (d.spec.pid_file.empty()) return;
    auto info = probe_pid_file(d.spec.pid_file);
    if (!info || info->alive) return;
    std::error_code ec;
    std::filesystem::remove(d.spec.pid_file, ec);
    if (ec)
        log()->debug("supervisor: {}: removing stale pid file {}: {}", d.spec.name, d.spec.pid_file,
                     ec.message());
}

bool SupervisorImpl::is_ready(const DaemonRec& d) {
    if (!d.proc || d.stop_pending) return false;
    if (d.spec.notify && (!d.notified || d.reloading || d.stopping_said)) return false;
    if (d.spec.health.enabled()) return d.state == DaemonState::healthy;
    return d.state == DaemonState::running || d.state == DaemonState::healthy;
}

std::string SupervisorImpl::names_text(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "\"" : ", \"") + n + "\"";
    return out;
}

Result<std::vector<std::string>> SupervisorImpl::blockers(const DaemonRec& d, bool manual) {
    std::vector<std::string> out;
    std::lock_guard lk(mu);
    for (const auto* list : {&d.spec.requires_, &d.spec.after}) {
        for (const auto& name : *list) {
            auto it = daemons.find(name);
            if (it == daemons.end())
                return fail(E("supervisor", "daemon \"" + d.spec.name +
                                                "\": unknown dependency \"" + name + "\""));
            if (manual && list == &d.spec.requires_ && it->second->state == DaemonState::failed)
                return fail(E("supervisor", "daemon \"" + d.spec.name + "\": requires \"" + name +
                                                "\", which is failed"));
            if (!is_ready(*it->second) && std::find(out.begin(), out.end(), name) == out.end())
                out.push_back(name);
        }
    }
    return out;
}

Result<void> SupervisorImpl::request_start(DaemonRec& d, const std::string& why, bool manual) {
    auto wait = blockers(d, manual);
    if (!wait) {
        std::lock_guard lk(mu);
        d.waiting = false;
        d.waiting_for.clear();
        d.restart_at.reset();
        // A start() refused for a failed dependency leaves a stopped daemon stopped.
        if (d.state != DaemonState::stopped || !manual) {
            d.last_error = wait.error().what();
            set_state_locked(d, DaemonState::failed, d.last_error);
        }
        return fail(wait.error());
    }
    if (wait->empty()) {
        {
            std::lock_guard lk(mu);
            d.waiting = false;
            d.waiting_for.clear();
        }
        return do_start(d, why);
    }
    std::lock_guard lk(mu);
    const bool fresh = !d.waiting || d.waiting_for != *wait;
    d.waiting = true;
    d.waiting_for = *wait;
    d.restart_at.reset();
    if (fresh || d.state != DaemonState::starting)
        set_state_locked(d, DaemonState::starting, why + ": waiting for " + names_text(*wait));
    return {};
}

template <class Step>
void SupervisorImpl::until_settled(Step step) {
    for (bool again = true; again;) {
        again = false;
        std::vector<std::string> names;
        {
            std::lock_guard lk(mu);
            names = order;
        }
        for (const auto& name : names) {
            DaemonRec* d = find(name);
            if (!d || !step(name, *d)) continue;
            flush();
            again = true;
        }
    }
}

void SupervisorImpl::release_waiting() {
    until_settled([this](const std::string&, DaemonRec& d) {
        if (!d.waiting) return false;
        auto wait = blockers(d, false);
        if (wait && !wait->empty()) {
            std::lock_guard lk(mu);
            d.waiting_for = *wait;
            return false;
        }
        (void)request_start(d, "dependencies ready", false);
        return true;
    });
}

void SupervisorImpl::stop_dependents(const std::string& dep, bool coming_back) {
    std::vector<std::string> names;
    {
        std::lock_guard lk(mu);
        names = order;
    }
    const std::string why =
        "required \"" + dep + "\" " + (coming_back ? "is restarting" : "went down");
    for (const auto& name : names) {
        DaemonRec* d = find(name);
        if (!d || std::find(d->spec.requires_.begin(), d->spec.requires_.end(), dep) ==
                      d->spec.requires_.end())
            continue;
        if (d->proc) {
            if (d->state == DaemonState::stopping &&
                (d->after == After::stop || d->after == After::remove))
                continue;  // already going down for good
            begin_stop(*d, coming_back ? After::wait_deps : After::stop, why);
        } else if (d->state == DaemonState::backoff || d->waiting) {
            if (coming_back) {
                // One already held for its dependencies stays held: release_waiting() starts
                // it once they are ready ("dependencies ready"); one in backoff is held now.
                if (!d->waiting) (void)request_start(*d, why, false);
            } else {
                std::lock_guard lk(mu);
                d->waiting = false;
                d->waiting_for.clear();
                d->restart_at.reset();
                set_state_locked(*d, DaemonState::stopped, why);
            }
        }
    }
}

void SupervisorImpl::stop_after_dependents(DaemonRec& root, After after, const std::string& why) {
    const std::string name = root.spec.name;
    {
        std::lock_guard lk(mu);
        std::set<std::string> set{name};
        for (bool grew = true; grew;) {
            grew = false;
            for (const auto& [n, d] : daemons) {
                if (set.count(n) || !d->proc || d->state == DaemonState::stopping) continue;
                for (const auto& dep : d->spec.requires_)
                    if (set.count(dep)) {
                        set.insert(n);
                        grew = true;
                        break;
                    }
            }
        }
        for (const auto& n : set) {
            DaemonRec& d = *daemons.at(n);
            d.stop_pending = n == name ? after : After::wait_deps;
            d.stop_pending_why = n == name ? why : "required \"" + name + "\" is restarting";
        }
    }
    begin_pending_stops();
}

void SupervisorImpl::begin_pending_stops() {
    until_settled([this](const std::string& name, DaemonRec& d) {
        if (!d.stop_pending) return false;
        After after;
        std::string why;
        {
            std::lock_guard lk(mu);
            for (const auto& [n, o] : daemons)
                if (o->proc && std::find(o->spec.requires_.begin(), o->spec.requires_.end(),
                                         name) != o->spec.requires_.end())
                    return false;  // something that requires it still runs
            after = *d.stop_pending;
            why = std::move(d.stop_pending_why);
            d.stop_pending.reset();
        }
        if (d.proc) begin_stop(d, after, why);
        return true;
    });
}

Result<void> SupervisorImpl::do_start(DaemonRec& d, const std::string& why) {
    const auto now = Clock::now();
    {
        std::lock_guard lk(mu);
        d.window.record(d.spec.start_limit, now);
        if (d.ever_started) ++d.restarts;
        d.ever_started = true;
        ++d.generation;
        d.after = After::policy;
        d.restart_at.reset();
        d.kill_at.reset();
        d.health_failures = 0;
        d.next_check.reset();
        d.check_in_flight = false;
        d.stable_since.reset();
        d.stable_until.reset();
        d.last_lines.clear();
        d.notified = d.reloading = d.stopping_said = false;
        d.main_pid = 0;
        d.status_text.clear();
        d.watchdog_at.reset();
        d.ready_deadline.reset();
        d.unhealthy_why.clear();
        if (d.spec.notify && d.spec.start_timeout.count() > 0)
            d.ready_deadline = now + d.spec.start_timeout;
        set_state_locked(d, DaemonState::starting, why);
    }
    auto tap = std::make_shared<Tap>(d.spec.name, d.generation, opts.max_output);
    Result<std::shared_ptr<ManagedProcess>> proc = check_pid_file(d).and_then([&]() {
        return notify_socket(d).and_then([&](std::string address) {
            RunOptions o = run_options(d.spec);
            if (!address.empty()) o.env.push_back("NOTIFY_SOCKET=" + address);
            o.on_output = [link = link, tap](const OutputChunk& c) {
                link->with(
                    [&](SupervisorImpl& self) { self.on_chunk(*tap, c.stream, c.bytes, false); });
            };
            return service.start(Context::background(), o);
        });
    });
    if (!proc) {
        const Error err = proc.error();
        ExitInfo e;
        e.spawn_failed = true;
        ended(d, e, err.what());
        return fail(err);
    }
    {
        std::lock_guard lk(mu);
        d.proc = *proc;
        d.proc_id = (*proc)->id();
        d.pid = (*proc)->pid();
        d.start_time = start_time_of(d.pid);  // our unreaped child: the pid is still its
        if (d.spec.notify)
            set_state_locked(d, DaemonState::starting,
                             "pid " + std::to_string(d.pid) + ": waiting for READY=1");
        else
            mark_running_locked(d, now, "pid " + std::to_string(d.pid));
    }
    // The state file names the new process at once: a supervisor killed right after this
    // spawn leaves it findable by the next one.
    sync_state();
    // After every chunk of its output (so the last lines are kept when the exit is
    // handled); at once, on the notifier thread, if it has finished already.
    (*proc)->on_exit([link = link, tap](const ProcessInfo& info) {
        link->with([&](SupervisorImpl& self) {
            self.on_chunk(*tap, Stream::stdout_, {}, true);
            self.post(ExitMsg{tap->name, info.id, info});
        });
    });
    return {};
}

void SupervisorImpl::mark_running_locked(DaemonRec& d, Clock::time_point now,
                                         const std::string& why) {
    set_state_locked(d, DaemonState::running, why);
    if (d.spec.health.enabled()) {
        const auto& h = d.spec.health;
        d.next_check = now + (h.start_grace.count() > 0 ? h.start_grace : h.interval);
    } else {
        d.stable_since = now;
    }
}

Result<std::string> SupervisorImpl::notify_socket(const DaemonRec& d) {
    if (!d.spec.notify) return std::string();
    if (!notify) {
        auto hub = NotifyHub::create([this](const std::string& name, sys::notify::Datagram g) {
            post(NotifyMsg{name, std::move(g)});
        });
        if (!hub) return fail(E("supervisor", "notify socket", hub.error()));
        notify = std::move(*hub);
    }
    auto address = notify->open(d.spec.name);
    if (!address) return fail(E("supervisor", "notify socket", address.error()));
    return *address;
}

RunOptions SupervisorImpl::run_options(const DaemonSpec& s) const {
    RunOptions o;
    static_cast<Command&>(o) = s;
    o.kill_group = true;  // stop signals reach the daemon's own children too
    o.detach = true;
    o.max_output = opts.max_output;
    o.grace_period = s.stop_timeout;  // for the Service's own shutdown of our children
    o.cgroup = s.cgroup;              // containment and identity (issue 13)
    o.limits = s.limits;
    o.identity = s.identity;
    return o;
}

}  // namespace core::process::detail
