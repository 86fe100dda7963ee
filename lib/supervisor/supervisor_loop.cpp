// The supervisor thread: its inbox and deadlines, state events out, the state file, and the
// output hook.
#include "supervisor/impl.hpp"

namespace core::process::detail {

void SupervisorImpl::post(Msg m) {
    {
        std::lock_guard lk(mu);
        inbox.push_back(std::move(m));
    }
    cv.notify_one();
}

void SupervisorImpl::keep_line_locked(DaemonRec& d, const std::string& line) {
    if (opts.last_lines == 0) return;
    d.last_lines.push_back(line);
    while (d.last_lines.size() > opts.last_lines) d.last_lines.pop_front();
}

std::shared_ptr<LogSink> SupervisorImpl::make_sink(const DaemonSpec& spec) {
    return logs->sink(spec.name, spec.log, opts.log_dir);
}

void SupervisorImpl::on_chunk(Tap& tap, Stream stream, std::string_view bytes, bool last) {
    std::vector<std::pair<bool, std::string>> lines;
    std::shared_ptr<LogSink> sink;
    {
        std::lock_guard lk(mu);
        auto it = daemons.find(tap.name);
        // A late chunk of a daemon removed (and perhaps added anew) since: not its output.
        if (it == daemons.end() || it->second->generation != tap.generation) return;
        DaemonRec& d = *it->second;
        auto keep = [&](bool err) {
            return [&, err](std::string line) {
                keep_line_locked(d, line);
                lines.emplace_back(err, std::move(line));
            };
        };
        if (last) {
            tap.out.flush(keep(false));
            tap.err.flush(keep(true));
        } else {
            const bool err = stream == Stream::stderr_;
            (err ? tap.err : tap.out).feed(bytes.data(), bytes.size(), keep(err));
        }
        sink = d.sink;
    }
    if (!sink) return;
    const auto now = std::chrono::system_clock::now();
    for (auto& [err, line] : lines) (void)logs->push(sink, err, std::move(line), now);
}

Result<void> SupervisorImpl::call(CommandMsg::Kind kind, const std::string& name,
                                  std::chrono::milliseconds bound, std::optional<DaemonSpec> spec) {
    if (std::this_thread::get_id() == thread_id)
        return fail(E("supervisor",
                      "called from the supervisor thread (a state-change "
                      "callback must not call start/stop/restart/remove)"));
    auto done = std::make_shared<Completion>();
    {
        std::lock_guard lk(mu);
        if (!daemons.count(name)) return fail(E("supervisor", "unknown daemon: " + name));
    }
    post(CommandMsg{kind, name, done, std::move(spec)});
    auto r = done->wait_for(bound);
    if (!r)
        return fail(E("supervisor", "daemon \"" + name + "\": no result within " +
                                        std::to_string(bound.count()) + "ms"));
    return *r;
}

std::chrono::milliseconds SupervisorImpl::stop_bound(const std::string& name) const {
    std::lock_guard lk(mu);
    auto it = daemons.find(name);
    const auto t =
        it == daemons.end() ? std::chrono::milliseconds(0) : it->second->spec.stop_timeout;
    return t + opts.kill_wait + std::chrono::seconds(1);
}

void SupervisorImpl::set_state_locked(DaemonRec& d, DaemonState to, std::string reason,
                                      std::chrono::milliseconds delay) {
    if (d.state == to && to != DaemonState::starting) return;
    DaemonStateChanged ev{d.spec.name, d.state, to, d.pid, d.restarts, std::move(reason), delay};
    d.state = to;
    d.since = std::chrono::system_clock::now();
    events.push_back(std::move(ev));
}

void SupervisorImpl::set_state(DaemonRec& d, DaemonState to, std::string reason,
                               std::chrono::milliseconds delay) {
    std::lock_guard lk(mu);
    set_state_locked(d, to, std::move(reason), delay);
}

void SupervisorImpl::complete(DaemonRec& d, const Result<void>& r) {
    std::lock_guard lk(mu);  // waiters is a DaemonRec field: written under mu
    for (auto& w : d.waiters) completions.emplace_back(std::move(w), r);
    d.waiters.clear();
}

void SupervisorImpl::add_waiter(DaemonRec& d, CompletionPtr c) {
    std::lock_guard lk(mu);
    d.waiters.push_back(std::move(c));
}

void SupervisorImpl::flush() {
    auto evs = std::move(events);
    events.clear();
    for (const auto& ev : evs) {
        log()->debug("supervisor: {}: {} -> {} ({})", ev.name, to_string(ev.from), to_string(ev.to),
                     ev.reason);
        if (opts.broadcast) core.broadcast(Value(ev));
        if (opts.on_state_change) {
            try {
                opts.on_state_change(ev);
            } catch (const std::exception& ex) {
                log()->debug("supervisor: on_state_change threw: {}", ex.what());
            } catch (...) {
                log()->debug("supervisor: on_state_change threw");
            }
        }
    }
    sync_state();
    auto cs = std::move(completions);
    completions.clear();
    for (auto& [c, r] : cs) c->set(r);
}

void SupervisorImpl::sync_state() {
    if (opts.state_file.empty()) return;
    std::vector<Survivor> now;
    {
        std::lock_guard lk(mu);
        for (const auto& name : order) {
            const auto& d = *daemons.at(name);
            if (d.pid > 0) now.push_back(Survivor{name, d.pid, d.start_time});
        }
    }
    auto same = [](const std::vector<Survivor>& a, const std::vector<Survivor>& b) {
        if (a.size() != b.size()) return false;
        for (std::size_t i = 0; i < a.size(); ++i)
            if (a[i].name != b[i].name || a[i].pid != b[i].pid) return false;
        return true;
    };
    if (state_known && same(now, state_written)) return;
    Result<void> r;
    if (now.empty()) {
        r = sys::file::unlink(opts.state_file);
        if (!r && r.error().code() == ENOENT) r = {};
    } else {
        r = write_state_file(opts.state_file, now);
    }
    if (!r) {
        log()->debug("supervisor: state file: {}", r.error().what());
        state_known = false;
        return;
    }
    state_written = std::move(now);
    state_known = true;
}

DaemonRec* SupervisorImpl::find(const std::string& name) {
    std::lock_guard lk(mu);
    auto it = daemons.find(name);
    return it == daemons.end() ? nullptr : it->second.get();
}

bool SupervisorImpl::checkable(const DaemonRec& d) {
    return d.proc && !d.check_in_flight &&
           (d.state == DaemonState::running || d.state == DaemonState::healthy ||
            d.state == DaemonState::unhealthy);
}

std::optional<Clock::time_point> SupervisorImpl::next_deadline_locked() const {
    std::optional<Clock::time_point> next;
    auto consider = [&](const std::optional<Clock::time_point>& t) {
        if (t && (!next || *t < *next)) next = t;
    };
    for (const auto& [name, d] : daemons) {
        if (d->state == DaemonState::backoff) consider(d->restart_at);
        if (d->state == DaemonState::stopping) consider(d->kill_at);
        if (checkable(*d)) consider(d->next_check);
        if (d->proc && d->state != DaemonState::stopping) {
            consider(d->ready_deadline);
            consider(d->watchdog_at);
        }
    }
    return next;
}

void SupervisorImpl::fire_due() {
    const auto now = Clock::now();
    std::vector<std::string> names;
    {
        std::lock_guard lk(mu);
        names = order;
    }
    for (const auto& name : names) {
        DaemonRec* d = find(name);
        if (!d) continue;
        if (d->state == DaemonState::backoff && d->restart_at && *d->restart_at <= now) {
            if (!d->window.allows(d->spec.start_limit, now)) {
                std::lock_guard lk(mu);
                d->restart_at.reset();
                d->last_error = limit_text(*d);
                set_state_locked(*d, DaemonState::failed, d->last_error);
            } else {
                (void)request_start(
                    *d, "restart after backoff (attempt " + std::to_string(d->attempt) + ")",
                    false);
            }
        } else if (d->state == DaemonState::stopping && d->kill_at && *d->kill_at <= now) {
            on_kill_deadline(*d);
        } else if (d->proc && d->state != DaemonState::stopping && d->ready_deadline &&
                   *d->ready_deadline <= now) {
            notify_expired(*d, "no READY=1 within start_timeout (" +
                                   std::to_string(d->spec.start_timeout.count()) + "ms)");
        } else if (d->proc && d->state != DaemonState::stopping && d->watchdog_at &&
                   *d->watchdog_at <= now) {
            notify_expired(*d, "watchdog: no WATCHDOG=1 within " +
                                   std::to_string(d->spec.watchdog.count()) + "ms");
        } else if (checkable(*d) && d->next_check && *d->next_check <= now) {
            start_check(*d);
        }
        flush();
    }
}

void SupervisorImpl::run() {
    std::unique_lock lk(mu);
    for (;;) {
        if (inbox.empty() && !quit) {
            const auto next = next_deadline_locked();
            auto ready = [&] { return !inbox.empty() || quit; };
            if (next)
                cv.wait_until(lk, *next, ready);
            else
                cv.wait(lk, ready);
        }
        if (quit && inbox.empty()) return;
        std::deque<Msg> batch;
        batch.swap(inbox);
        lk.unlock();
        for (auto& m : batch) {
            if (auto* c = std::get_if<CommandMsg>(&m)) on_command(*c);
            if (auto* e = std::get_if<ExitMsg>(&m)) on_exit(*e);
            if (auto* h = std::get_if<HealthMsg>(&m)) on_health(*h);
            if (auto* n = std::get_if<NotifyMsg>(&m)) on_notify(*n);
            flush();
        }
        fire_due();
        begin_pending_stops();
        release_waiting();
        flush();
        lk.lock();
    }
}

Result<void> SupervisorImpl::stop_ordered(std::vector<std::string> names) {
    if (std::this_thread::get_id() == thread_id)
        return fail(E("supervisor", "called from the supervisor thread"));
    Result<void> first;
    std::set<std::string> left(names.begin(), names.end());
    while (!left.empty()) {
        std::vector<std::string> round;
        {
            std::lock_guard lk(mu);
            for (const auto& name : names) {
                if (!left.count(name)) continue;
                bool blocked = false;
                for (const auto& other : left) {
                    auto it = daemons.find(other);
                    if (other == name || it == daemons.end()) continue;
                    const auto& sp = it->second->spec;
                    for (const auto* list : {&sp.after, &sp.requires_})
                        blocked =
                            blocked || std::find(list->begin(), list->end(), name) != list->end();
                }
                if (!blocked) round.push_back(name);
            }
            // A cycle cannot be added; should one exist anyway, stop the rest together.
            if (round.empty()) round.assign(left.begin(), left.end());
        }
        std::vector<std::pair<std::string, CompletionPtr>> pending;
        for (const auto& name : round) {
            left.erase(name);
            auto done = std::make_shared<Completion>();
            post(CommandMsg{CommandMsg::stop, name, done, std::nullopt});
            pending.emplace_back(name, done);
        }
        for (auto& [name, done] : pending) {
            auto r = done->wait_for(stop_bound(name));
            if (!r) {
                if (first)
                    first = fail(
                        E("supervisor.stop_all", "daemon \"" + name + "\" not reaped in time"));
            } else if (!*r && first) {
                first = fail(r->error());
            }
        }
    }
    return first;
}

DaemonStatus SupervisorImpl::status_locked(const DaemonRec& d) const {
    DaemonStatus s;
    s.name = d.spec.name;
    s.state = d.state;
    s.pid = d.pid;
    s.process_id = d.proc_id;
    s.restarts = d.restarts;
    s.exited = d.exited;
    s.last_exit_code = d.last_exit_code;
    s.last_signal = d.last_signal;
    s.last_error = d.last_error;
    s.health_failures = d.health_failures;
    s.since = d.since;
    s.last_lines.assign(d.last_lines.begin(), d.last_lines.end());
    s.ready = is_ready(d);
    s.waiting_for = d.waiting_for;
    s.status_text = d.status_text;
    s.main_pid = d.main_pid;
    s.notify_dropped = d.notify_dropped;
    if (d.sink) {
        s.log_path = d.sink->paths.out;
        s.err_log_path = d.sink->paths.err;
        s.log_dropped = d.sink->dropped.load(std::memory_order_relaxed);
        s.log_errors = d.sink->errors.load(std::memory_order_relaxed);
        s.log_error = logs->last_error(*d.sink);
    }
    return s;
}

}  // namespace core::process::detail
