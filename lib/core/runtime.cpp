#include <atomic>
#include <exception>

#include <spdlog/logger.h>

#include "core/log.hpp"
#include "core/runtime.hpp"

namespace core {

// ---------------------------------------------------------------- IPC bus

// One subscriber. `mu` is held while the handler runs and by reset(), so after reset() returns
// the handler is never running nor called again. Recursive: a handler may reset its own
// Subscription from inside the call; the handler is held by shared_ptr and broadcast keeps its
// own reference for the call, so such a reset does not destroy the closure while it runs.
struct Subscription::Entry {
    std::recursive_mutex mu;
    std::shared_ptr<const std::function<void(const Value&)>> fn;
    std::atomic<bool> active{true};  // read without mu by the bus's prune
    // The bus's count of live subscriptions; shared, so a Subscription may outlive its Core.
    std::shared_ptr<std::atomic<int>> live;
};

struct Core::Bus {
    mutable std::mutex mu;
    // Live subscriptions, read lock-free by has_subscribers() on hot paths.
    std::shared_ptr<std::atomic<int>> live = std::make_shared<std::atomic<int>>(0);
    // Copy-on-write list: broadcast takes a snapshot and calls outside the lock.
    std::shared_ptr<const std::vector<std::shared_ptr<Subscription::Entry>>> subs =
        std::make_shared<const std::vector<std::shared_ptr<Subscription::Entry>>>();

    void add(std::shared_ptr<Subscription::Entry> e) {
        std::lock_guard lk(mu);
        auto next = std::make_shared<std::vector<std::shared_ptr<Subscription::Entry>>>(*subs);
        next->push_back(std::move(e));
        subs = std::move(next);
    }
    void prune() {
        std::lock_guard lk(mu);
        auto next = std::make_shared<std::vector<std::shared_ptr<Subscription::Entry>>>();
        for (const auto& e : *subs)
            if (e->active.load()) next->push_back(e);
        subs = std::move(next);
    }
    std::shared_ptr<const std::vector<std::shared_ptr<Subscription::Entry>>> snapshot() const {
        std::lock_guard lk(mu);
        return subs;
    }
};

Subscription::~Subscription() {
    reset();
}

Subscription::Subscription(Subscription&& o) noexcept : entry_(std::move(o.entry_)) {}

Subscription& Subscription::operator=(Subscription&& o) noexcept {
    if (this != &o) {
        reset();
        entry_ = std::move(o.entry_);
    }
    return *this;
}

void Subscription::reset() {
    if (!entry_) return;
    {
        std::lock_guard lk(entry_->mu);
        if (entry_->active.exchange(false) && entry_->live)
            entry_->live->fetch_sub(1, std::memory_order_relaxed);
        entry_->fn = nullptr;
    }
    // The bus drops inactive entries on its next subscribe; the entry itself is tiny.
    entry_.reset();
}

// ---------------------------------------------------------------- Action

Action::Action(std::weak_ptr<Core> core, std::string name)
    : core_(std::move(core)), name_(std::move(name)) {}

bool Action::exists() const {
    auto c = core_.lock();
    return c && static_cast<bool>(c->handler(name_));
}

Result<Value> Action::run(const Context& ctx, const Options& opts) const {
    auto c = core_.lock();
    if (!c) return fail(E(name_, "core is gone"));
    auto h = c->handler(name_);
    if (!h) return fail(h.error());
    try {
        return (*h)(ctx, opts);
    } catch (const std::exception& ex) {
        return fail(E(name_, std::string("handler threw: ") + ex.what()));
    } catch (...) {
        return fail(E(name_, "handler threw a non-standard exception"));
    }
}

// ---------------------------------------------------------------- Core

Core::Core() : bus_(std::make_unique<Bus>()), logger_(default_logger()) {}

Core::~Core() = default;

Result<std::shared_ptr<Core>> Core::create(std::vector<ServiceFactory> factories) {
    std::shared_ptr<Core> c(new Core());
    for (std::size_t i = 0; i < factories.size(); ++i) {
        const auto& f = factories[i];
        if (!f) return fail(E("core.create", "factory " + std::to_string(i) + " is null"));
        Result<std::shared_ptr<Service>> r;
        try {
            r = f(*c);
        } catch (const std::exception& ex) {
            return fail(E("core.create", "factory " + std::to_string(i) + " threw: " + ex.what()));
        } catch (...) {
            return fail(E("core.create",
                          "factory " + std::to_string(i) + " threw a non-standard exception"));
        }
        if (!r)
            return fail(E("core.create", "factory " + std::to_string(i) + " failed", r.error()));
        if (!*r)
            return fail(E("core.create", "factory " + std::to_string(i) + " returned no service"));
        const std::string name = (*r)->name();
        if (name.empty())
            return fail(E("core.create", "factory " + std::to_string(i) + ": service has no name"));
        if (c->services_.has(name)) return fail(E("core.create", "duplicate service: " + name));
        if (auto s = c->services_.set(name, *r); !s) return fail(s.error());
    }
    return c;
}

Result<void> Core::action(const std::string& name, ActionHandler handler) {
    if (name.empty()) return fail(E("core.action", "empty action name"));
    if (!handler) return fail(E("core.action", "null handler for " + name));
    return actions_.set(name, std::move(handler));
}

Action Core::action(const std::string& name) {
    return Action(weak_from_this(), name);
}

std::vector<std::string> Core::actions() const {
    return actions_.names();
}

Result<ActionHandler> Core::handler(const std::string& name) const {
    auto h = actions_.get(name);
    if (!h) return fail(E(name, "action not registered: " + name));
    return *h;
}

Result<void> Core::startup(const Context& ctx) {
    std::lock_guard lk(lifecycle_mu_);
    for (const auto& name : services_.names()) {
        auto s = services_.get(name);
        if (!s) continue;
        Result<void> r;
        try {
            r = (*s)->on_startup(ctx);
        } catch (const std::exception& ex) {
            r = fail(E(name, std::string("on_startup threw: ") + ex.what()));
        } catch (...) {
            r = fail(E(name, "on_startup threw a non-standard exception"));
        }
        if (!r) return fail(E("core.startup", "service " + name, r.error()));
    }
    started_ = true;
    shut_down_ = false;
    return {};
}

namespace {
// How deep the calling thread is in Core::broadcast's subscriber calls: a shutdown asked for
// from a subscriber must not wait for another thread's shutdown (see Core::shutdown).
thread_local int t_broadcast_depth = 0;
}  // namespace

Result<void> Core::shutdown(const Context& ctx) {
    {
        std::unique_lock lk(shutdown_mu_);
        if (shutting_down_) {
            // A worked interleaving of why a subscriber must not wait: thread M runs shutdown,
            // the process service's on_shutdown kills the children and waits (join) for its
            // event thread E to deliver their exits; E's subscriber calls shutdown, which would
            // wait for M, which waits for E. On M itself (an on_shutdown broadcasting to such a
            // subscriber) the wait would be on ourselves. The shutdown in progress does the work.
            if (shutdown_thread_ == std::this_thread::get_id() || t_broadcast_depth > 0) return {};
            shutdown_cv_.wait(lk, [&] { return !shutting_down_; });
            return {};
        }
        shutting_down_ = true;
        shutdown_thread_ = std::this_thread::get_id();
    }
    struct Done {
        Core* c;
        ~Done() {
            {
                std::lock_guard lk(c->shutdown_mu_);
                c->shutting_down_ = false;
                c->shutdown_thread_ = std::thread::id();
            }
            c->shutdown_cv_.notify_all();
        }
    } done{this};
    std::lock_guard lk(lifecycle_mu_);
    if (shut_down_) return {};
    shut_down_ = true;
    auto names = services_.names();
    Result<void> first;
    for (auto it = names.rbegin(); it != names.rend(); ++it) {
        auto s = services_.get(*it);
        if (!s) continue;
        Result<void> r;
        try {
            r = (*s)->on_shutdown(ctx);
        } catch (const std::exception& ex) {
            r = fail(E(*it, std::string("on_shutdown threw: ") + ex.what()));
        } catch (...) {
            r = fail(E(*it, "on_shutdown threw a non-standard exception"));
        }
        if (!r && first) first = fail(E("core.shutdown", "service " + *it, r.error()));
    }
    return first;
}

std::vector<std::string> Core::services() const {
    return services_.names();
}

void Core::broadcast(const Value& message) const {
    auto subs = bus_->snapshot();
    for (const auto& e : *subs) {
        std::lock_guard lk(e->mu);
        if (!e->active || !e->fn) continue;
        const auto fn = e->fn;
        struct Depth {
            Depth() { ++t_broadcast_depth; }
            ~Depth() { --t_broadcast_depth; }
        } depth;
        try {
            (*fn)(message);
        } catch (const std::exception& ex) {
            logger()->debug("core.broadcast: subscriber threw: {}", ex.what());
        } catch (...) {
            logger()->debug("core.broadcast: subscriber threw a non-standard exception");
        }
    }
}

std::shared_ptr<const std::atomic<int>> Core::subscriber_count() const noexcept {
    return bus_->live;
}

bool Core::has_subscribers() const noexcept {
    return bus_->live->load(std::memory_order_relaxed) > 0;
}

Subscription Core::subscribe(std::function<void(const Value&)> handler) {
    bus_->prune();
    auto e = std::make_shared<Subscription::Entry>();
    e->live = bus_->live;
    e->live->fetch_add(1, std::memory_order_relaxed);
    if (handler)
        e->fn = std::make_shared<const std::function<void(const Value&)>>(std::move(handler));
    bus_->add(e);
    return Subscription(std::move(e));
}

std::shared_ptr<spdlog::logger> Core::logger() const {
    std::lock_guard lk(log_mu_);
    return logger_;
}

void Core::set_logger(std::shared_ptr<spdlog::logger> logger) {
    std::lock_guard lk(log_mu_);
    logger_ = logger ? std::move(logger) : default_logger();
}

// ---------------------------------------------------------------- ProcessFacade

namespace {
Result<std::string> as_output(Result<Value> r, const char* op) {
    if (!r) return fail(r.error());
    if (const auto* s = r->get<std::string>()) return *s;
    if (r->empty()) return std::string();
    return fail(E(op, "action returned " + r->type_name() + ", want string"));
}

// process.start must name what it started: an empty id would make the process unreachable.
Result<std::string> as_id(Result<Value> r, const char* op) {
    auto s = as_output(std::move(r), op);
    if (s && s->empty()) return fail(E(op, "action returned no process id"));
    return s;
}
}  // namespace

Result<std::string> ProcessFacade::run(const Context& ctx, const std::string& command,
                                       const std::vector<std::string>& args) const {
    return as_output(
        core_->action("process.run").run(ctx, Options{{"command", command}, {"args", args}}),
        "process.run");
}

Result<std::string> ProcessFacade::run_in(const Context& ctx, const std::string& dir,
                                          const std::string& command,
                                          const std::vector<std::string>& args) const {
    return as_output(core_->action("process.run")
                         .run(ctx, Options{{"command", command}, {"args", args}, {"dir", dir}}),
                     "process.run");
}

Result<std::string> ProcessFacade::run_with_env(const Context& ctx, const std::string& dir,
                                                const std::vector<std::string>& env,
                                                const std::string& command,
                                                const std::vector<std::string>& args) const {
    return as_output(
        core_->action("process.run")
            .run(ctx, Options{{"command", command}, {"args", args}, {"dir", dir}, {"env", env}}),
        "process.run");
}

Result<std::string> ProcessFacade::start(const Context& ctx, const Options& opts) const {
    return as_id(core_->action("process.start").run(ctx, opts), "process.start");
}

Result<void> ProcessFacade::kill(const Context& ctx, const Options& opts) const {
    auto r = core_->action("process.kill").run(ctx, opts);
    if (!r) return fail(r.error());
    return {};
}

bool ProcessFacade::exists() const {
    return core_->action("process.run").exists();
}

}  // namespace core
