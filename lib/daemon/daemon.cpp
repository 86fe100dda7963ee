#include "core/process/daemon.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <stop_token>

#include "core/log.hpp"
#include "sys/fd.hpp"
#include "sys/file.hpp"
#include "sys/poll.hpp"
#include "sys/signals.hpp"

namespace core::process {

struct Daemon::Impl {
    DaemonOptions opts;
    std::shared_ptr<spdlog::logger> log;

    mutable std::mutex mu;             // guards everything below but the atomics
    std::atomic<bool> running{false};  // written under mu; read lock-free
    std::optional<PidFile> pid;
    std::unique_ptr<HealthServer> health;
    std::optional<DaemonRegistry> registry;
    bool registered = false;

    std::optional<sys::EventFd> stop_fd;          // behind notify_stop(); lives until ~Daemon
    std::atomic<sys::EventFd*> stop_ev{nullptr};  // what notify_stop reads (signal-safe, no lock)
    std::atomic<int> last_signal{0};

    bool wants_registry() const { return !opts.code.empty() || !opts.daemon.empty(); }
};

Daemon::Daemon(DaemonOptions opts) : impl_(std::make_unique<Impl>()) {
    impl_->opts = std::move(opts);
    impl_->log = impl_->opts.logger ? impl_->opts.logger : core::default_logger();
    if (!impl_->opts.health_addr.empty()) {
        HealthOptions h;
        h.addr = impl_->opts.health_addr;
        h.read_timeout = impl_->opts.health_read_timeout;
        h.logger = impl_->log;
        impl_->health = std::make_unique<HealthServer>(h);
        for (auto& [name, check] : impl_->opts.checks) impl_->health->add_check(name, check);
    }
}

Daemon::~Daemon() {
    (void)stop();
    impl_->stop_ev.store(nullptr);
}

Result<void> Daemon::start() {
    constexpr const char* op = "daemon.start";
    Impl& m = *impl_;
    std::lock_guard lk(m.mu);
    if (m.running) return {};
    if (m.wants_registry() && (m.opts.code.empty() || m.opts.daemon.empty()))
        return fail(Error(op, "code and daemon must be both set or both empty", EINVAL));
    if (!m.stop_fd) {
        auto efd = sys::EventFd::create();
        if (!efd) return fail(E(op, "", efd.error()));
        m.stop_fd.emplace(std::move(*efd));
        m.stop_ev.store(&*m.stop_fd);
    }
    m.stop_fd->drain();  // a stop requested for an earlier run is spent
    m.last_signal.store(0);

    // Each step undoes the earlier ones when it fails (all-or-nothing).
    if (!m.opts.pid_file.empty()) {
        PidFile p(m.opts.pid_file);
        if (auto r = p.acquire(); !r) return fail(E(op, "", r.error()));
        m.pid.emplace(std::move(p));
    }
    auto undo_pid = [&m] {
        if (m.pid) (void)m.pid->release();
        m.pid.reset();
    };
    if (m.health) {
        if (auto r = m.health->start(); !r) {
            undo_pid();
            return fail(E(op, "", r.error()));
        }
    }
    if (m.wants_registry()) {
        m.registry.emplace(m.opts.registry_dir);
        DaemonEntry e;
        e.code = m.opts.code;
        e.daemon = m.opts.daemon;
        e.pid = sys::file::self_pid();
        e.health = m.health ? m.health->addr() : std::string();
        e.project = m.opts.project;
        e.binary = m.opts.binary;
        e.started = std::chrono::system_clock::now();
        if (auto r = m.registry->register_entry(e); !r) {
            if (m.health) m.health->stop();
            undo_pid();
            return fail(E(op, "", r.error()));
        }
        m.registered = true;
    }
    m.running = true;
    SPDLOG_LOGGER_DEBUG(m.log, "daemon: started (pid file \"{}\", health \"{}\")", m.opts.pid_file,
                        m.health ? m.health->addr() : "");
    return {};
}

Result<void> Daemon::stop() {
    Impl& m = *impl_;
    std::lock_guard lk(m.mu);
    if (!m.running) return {};
    m.running = false;
    Result<void> first;
    auto keep = [&first](Result<void> r) {
        if (!r && first) first = fail(E("daemon.stop", "", r.error()));
    };
    // Order: stop advertising readiness first, so probes and load balancers drain us while the
    // rest winds down; the health server goes last so /ready answers "not ready" until then.
    if (m.health) m.health->set_ready(false);
    if (m.registered) {
        auto r = m.registry->unregister(m.opts.code, m.opts.daemon);
        // Already gone (pruned by someone who thought us dead, or removed by hand): fine.
        if (!r && r.error().code() != ENOENT) keep(std::move(r));
        m.registered = false;
    }
    if (m.pid) {
        keep(m.pid->release());
        m.pid.reset();
    }
    if (m.health) {
        m.health->stop();
        m.health->set_ready(true);  // a later start() serves ready again, as a fresh server
    }
    return first;
}

Result<void> Daemon::run(const Context& ctx) {
    constexpr const char* op = "daemon.run";
    Impl& m = *impl_;
    sys::EventFd* efd;
    {
        std::lock_guard lk(m.mu);
        if (!m.running) return fail(Error(op, "daemon not started", EINVAL));
        efd = &*m.stop_fd;
    }
    std::optional<sys::SignalFd> sigs;
    if (m.opts.handle_signals) {
        auto s = sys::SignalFd::open_blocking({sys::sig_term(), sys::sig_int()});
        if (!s) return fail(E(op, "", s.error()));
        sigs.emplace(std::move(*s));
    }
    auto ep = sys::Epoll::create();
    if (!ep) return fail(E(op, "", ep.error()));
    if (auto r = ep->add(efd->fd(), sys::ev_in, 1); !r) return fail(E(op, "", r.error()));
    if (sigs) {
        if (auto r = ep->add(sigs->fd(), sys::ev_in, 2); !r) return fail(E(op, "", r.error()));
    }
    // Cancellation wakes us through the same eventfd notify_stop() uses.
    std::stop_callback on_cancel(ctx.token(), [efd] { efd->signal(); });
    for (bool done = ctx.done(); !done;) {
        sys::PollEvent evs[4];
        auto n = ep->wait(evs, 4, -1);
        if (!n) return fail(E(op, "", n.error()));
        for (int i = 0; i < *n; ++i) {
            if (evs[i].data == 1) done = true;
            if (evs[i].data == 2) {
                if (int s = sigs->read(); s != 0) {
                    m.last_signal.store(s);
                    done = true;
                }
            }
        }
    }
    SPDLOG_LOGGER_DEBUG(m.log, "daemon: stopping ({})",
                        m.last_signal.load() ? "signal " + std::to_string(m.last_signal.load())
                                             : std::string(ctx.done() ? ctx.reason() : "notified"));
    return stop();
}

void Daemon::notify_stop() noexcept {
    if (sys::EventFd* ev = impl_->stop_ev.load()) ev->signal();
}

int Daemon::stop_signal() const noexcept {
    return impl_->last_signal.load();
}

// The accessors below take no Daemon lock: health is fixed at construction and has its own,
// and stop() holds mu while joining the health thread, whose checks may call them.
void Daemon::set_ready(bool ready) {
    if (impl_->health) impl_->health->set_ready(ready);
}

bool Daemon::running() const {
    return impl_->running.load();
}

std::string Daemon::health_addr() const {
    return impl_->health ? impl_->health->addr() : std::string();
}

HealthServer* Daemon::health() noexcept {
    return impl_->health.get();
}

Result<void> block_stop_signals() {
    auto r = sys::block_signals({sys::sig_term(), sys::sig_int()});
    if (!r) return fail(E("daemon.block_stop_signals", "", r.error()));
    return {};
}

}  // namespace core::process
