// The public Supervisor: its calls post commands to the supervisor thread (impl.hpp) and wait.
#include "supervisor/impl.hpp"

namespace core::process {

using detail::CommandMsg;

Supervisor::Supervisor(core::Core& core, Service& service, SupervisorOptions opts)
    : impl_(std::make_unique<detail::SupervisorImpl>(core, service, std::move(opts))) {
    auto* impl = impl_.get();
    impl->logs = std::make_unique<detail::LogWriter>(
        impl->opts.log_queue_bytes, [impl](const std::string& daemon, const std::string& what) {
            impl->log()->debug("supervisor: {}: log: {}", daemon, what);
            if (impl->opts.on_log_problem) {
                try {
                    impl->opts.on_log_problem(daemon, what);
                } catch (...) {
                    impl->log()->debug("supervisor: on_log_problem threw");
                }
            }
        });
    impl->checker = std::make_unique<detail::Checker>(
        service, [impl](const std::string& name, std::uint64_t gen, Result<void> r) {
            impl->post(detail::HealthMsg{name, gen, std::move(r)});
        });
    impl->link = std::make_shared<detail::Link>();
    impl->link->impl = impl;
    impl->thread = std::thread([impl] { impl->run(); });
    impl->thread_id = impl->thread.get_id();
}

Supervisor::~Supervisor() {
    (void)stop_all();
    impl_->checker.reset();  // cancels a running check and joins

    {
        std::lock_guard lk(impl_->mu);
        impl_->quit = true;
    }
    impl_->cv.notify_one();
    impl_->thread.join();
    {
        // A process that outlived its stop finds nobody: its hooks do nothing from here on.
        std::lock_guard lk(impl_->link->mu);
        impl_->link->impl = nullptr;
    }
    // Only the supervisor thread made and used the hub; a datagram its thread still posts
    // lands in an inbox nobody reads.
    impl_->notify.reset();
    impl_->sync_state();  // nothing runs any more: the state file goes
    impl_->logs.reset();  // writes what is queued, then joins the writer
}

Result<void> Supervisor::add(DaemonSpec spec) {
    if (auto r = validate(spec); !r) return fail(E("supervisor.add", "invalid spec", r.error()));
    std::lock_guard lk(impl_->mu);
    if (impl_->daemons.count(spec.name))
        return fail(E("supervisor.add", "daemon \"" + spec.name + "\" already exists"));
    {
        // A cycle through the daemons known so far is refused now; a name not added yet is
        // checked when the dependent starts (a file adds its daemons in any order).
        std::vector<DaemonSpec> all;
        for (const auto& name : impl_->order) all.push_back(impl_->daemons.at(name)->spec);
        all.push_back(spec);
        if (auto r = validate_dependencies(all, true); !r)
            return fail(E("supervisor.add", "daemon \"" + spec.name + "\"", r.error()));
    }
    auto rec = std::make_unique<detail::DaemonRec>();
    const std::string name = spec.name;
    rec->sink = impl_->make_sink(spec);
    rec->spec = std::move(spec);
    impl_->daemons.emplace(name, std::move(rec));
    impl_->order.push_back(name);
    return {};
}

Result<void> Supervisor::remove(const std::string& name) {
    return impl_->call(CommandMsg::remove, name, impl_->stop_bound(name));
}

Result<void> Supervisor::start(const std::string& name) {
    // A start waits for the spawn only (or for a stop in progress to end).
    return impl_->call(CommandMsg::start, name, impl_->stop_bound(name) + std::chrono::seconds(30));
}

Result<void> Supervisor::stop(const std::string& name) {
    // Its `requires` dependents (and theirs) that are up stop first, in reverse dependency
    // order; then it.
    std::set<std::string> set{name};
    for (bool grew = true; grew;) {
        grew = false;
        std::lock_guard lk(impl_->mu);
        for (const auto& [n, d] : impl_->daemons) {
            if (set.count(n)) continue;
            for (const auto& dep : d->spec.requires_)
                if (set.count(dep) && d->state != DaemonState::stopped &&
                    d->state != DaemonState::failed) {
                    set.insert(n);
                    grew = true;
                    break;
                }
        }
    }
    if (set.size() == 1) return impl_->call(CommandMsg::stop, name, impl_->stop_bound(name));
    set.erase(name);
    if (auto r = impl_->stop_ordered({set.begin(), set.end()}); !r) return r;
    return impl_->call(CommandMsg::stop, name, impl_->stop_bound(name));
}

Result<void> Supervisor::restart(const std::string& name) {
    return impl_->call(CommandMsg::restart, name,
                       impl_->stop_bound(name) + std::chrono::seconds(30));
}

Result<void> Supervisor::start_all() {
    // Unknown dependencies and cycles are refused before anything starts.
    {
        std::vector<DaemonSpec> all;
        for (const auto& name : names())
            if (auto s = spec(name)) all.push_back(std::move(*s));
        if (auto r = validate_dependencies(all); !r)
            return fail(E("supervisor.start_all", "refused", r.error()));
    }
    Result<void> first;
    for (const auto& name : names()) {
        auto r = start(name);
        if (!r && first) first = fail(r.error());
    }
    return first;
}

Result<void> Supervisor::stop_all() {
    return impl_->stop_ordered(names());
}

Result<ReloadResult> Supervisor::apply(std::vector<DaemonSpec> next) {
    constexpr const char* op = "supervisor.apply";
    if (std::this_thread::get_id() == impl_->thread_id)
        return fail(E(op, "called from the supervisor thread"));
    // Everything is checked before anything changes.
    std::set<std::string> wanted;
    for (const auto& s : next) {
        if (auto r = validate(s); !r) return fail(E(op, "invalid spec", r.error()));
        if (!wanted.insert(s.name).second)
            return fail(E(op, "duplicate daemon name \"" + s.name + "\""));
    }
    if (auto r = validate_dependencies(next); !r) return fail(E(op, "refused", r.error()));
    ReloadResult rr;
    for (const auto& name : names())
        if (!wanted.count(name)) rr.removed.push_back(name);
    std::vector<DaemonSpec> added, changed;
    for (auto& s : next) {
        auto cur = spec(s.name);
        if (!cur) {
            rr.added.push_back(s.name);
            added.push_back(std::move(s));
        } else if (*cur == s) {
            rr.unchanged.push_back(s.name);
        } else {
            rr.changed.push_back(s.name);
            changed.push_back(std::move(s));
        }
    }
    auto keep = [&rr](const std::string& name, const Result<void>& r) {
        if (!r) rr.errors.push_back(name + ": " + r.error().what());
    };
    // The removed ones stop in reverse dependency order, then go.
    if (!rr.removed.empty()) (void)impl_->stop_ordered(rr.removed);
    for (const auto& name : rr.removed) keep(name, remove(name));
    for (auto& s : changed) {
        const std::string name = s.name;
        keep(name, impl_->call(CommandMsg::update, name,
                               impl_->stop_bound(name) + std::chrono::seconds(30), std::move(s)));
    }
    // Every new daemon exists before any starts: a dependent waits for a dependency that is
    // new too.
    std::vector<std::string> fresh;
    for (auto& s : added) {
        const std::string name = s.name;
        auto r = add(std::move(s));
        keep(name, r);
        if (r) fresh.push_back(name);
    }
    for (const auto& name : fresh) keep(name, start(name));
    return rr;
}

Result<DaemonStatus> Supervisor::get(const std::string& name) const {
    std::lock_guard lk(impl_->mu);
    auto it = impl_->daemons.find(name);
    if (it == impl_->daemons.end()) return fail(E("supervisor.get", "unknown daemon: " + name));
    return impl_->status_locked(*it->second);
}

std::vector<DaemonStatus> Supervisor::list() const {
    std::lock_guard lk(impl_->mu);
    std::vector<DaemonStatus> out;
    for (const auto& name : impl_->order)
        out.push_back(impl_->status_locked(*impl_->daemons.at(name)));
    return out;
}

std::vector<std::string> Supervisor::names() const {
    std::lock_guard lk(impl_->mu);
    return impl_->order;
}

Result<DaemonSpec> Supervisor::spec(const std::string& name) const {
    std::lock_guard lk(impl_->mu);
    auto it = impl_->daemons.find(name);
    if (it == impl_->daemons.end()) return fail(E("supervisor.spec", "unknown daemon: " + name));
    return it->second->spec;
}

Result<DaemonUsage> Supervisor::usage(const std::string& name) const {
    int pid = 0;
    {
        std::lock_guard lk(impl_->mu);
        auto it = impl_->daemons.find(name);
        if (it == impl_->daemons.end())
            return fail(E("supervisor.usage", "unknown daemon: " + name));
        pid = it->second->pid;
    }
    if (pid <= 0)
        return fail(
            Error("supervisor.usage", "daemon \"" + name + "\": no process running", ESRCH));
    auto u = sys::procstat::of_pid(pid);
    if (!u) return fail(E("supervisor.usage", "daemon \"" + name + "\"", u.error()));
    DaemonUsage out;
    out.pid = pid;
    if (!u->memory_source.empty()) {
        out.memory_bytes = u->memory_bytes;
        out.memory_source = u->memory_source;
    }
    if (!u->cpu_source.empty()) {
        out.cpu_seconds = u->cpu_seconds;
        out.cpu_source = u->cpu_source;
    }
    if (u->uptime_seconds > 0) out.uptime_seconds = u->uptime_seconds;
    return out;
}

}  // namespace core::process
