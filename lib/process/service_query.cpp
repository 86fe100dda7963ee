// Service's queries and signals by id or pid: get, list, kill, kill_pid, signal, remove, clear.
#include <cerrno>
#include <list>
#include <mutex>

#include "process/service_impl.hpp"
#include "sys/proc.hpp"
#include "sys/signals.hpp"

namespace core::process {

using detail::wrap;

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

}  // namespace core::process
