// core::Core: the runtime a service plugs into: named actions (permission by registration),
// services with a lifecycle, an IPC bus, and the process facade. A Core is shared
// (std::shared_ptr from Core::create); every call is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/context.hpp"
#include "core/error.hpp"
#include "core/export.hpp"
#include "core/options.hpp"
#include "core/registry.hpp"
#include "core/result.hpp"
#include "core/value.hpp"

namespace spdlog {
class logger;
}

namespace core {

class Core;

using ActionHandler = std::function<Result<Value>(const Context&, const Options&)>;

// A handle on a named action. Cheap to copy; resolves the handler at each run(), so a handle
// taken before registration works once the action is registered.
class CORE_API Action {
  public:
    Action(std::weak_ptr<Core> core, std::string name);
    const std::string& name() const noexcept { return name_; }
    // Is a handler registered under this name?
    bool exists() const;
    // Runs the handler. Errors: `action not registered: <name>`; whatever the handler returns;
    // a handler that throws becomes `<name>: handler threw: <what>`.
    [[nodiscard]] Result<Value> run(const Context& ctx, const Options& opts) const;

  private:
    std::weak_ptr<Core> core_;
    std::string name_;
};

// A service: something with a name and a lifecycle that the Core owns. Subclass it.
class CORE_API Service {
  public:
    explicit Service(Core& core, std::string name) : core_(&core), name_(std::move(name)) {}
    virtual ~Service() = default;
    Service(const Service&) = delete;
    Service& operator=(const Service&) = delete;

    const std::string& name() const noexcept { return name_; }
    Core& core() const noexcept { return *core_; }

    virtual Result<void> on_startup(const Context&) { return {}; }
    virtual Result<void> on_shutdown(const Context&) { return {}; }

  private:
    Core* core_;
    std::string name_;
};

using ServiceFactory = std::function<Result<std::shared_ptr<Service>>(Core&)>;

// IPC subscription: unsubscribes when destroyed (or on reset()). After reset() returns, the
// handler is never called again (it may be running on another thread until then). Move-only.
class CORE_API Subscription {
  public:
    Subscription() = default;
    ~Subscription();
    Subscription(Subscription&&) noexcept;
    Subscription& operator=(Subscription&&) noexcept;
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;
    void reset();
    bool active() const noexcept { return static_cast<bool>(entry_); }

    struct Entry;

  private:
    friend class Core;
    explicit Subscription(std::shared_ptr<Entry> e) : entry_(std::move(e)) {}
    std::shared_ptr<Entry> entry_;
};

namespace process {
struct Command;
struct Completed;
}  // namespace process

// The process primitive of core/go's Section 17: a typed layer over the process.* actions.
// Without a registered process service every call fails with `action not registered`.
class CORE_API ProcessFacade {
  public:
    explicit ProcessFacade(Core& core) : core_(&core) {}

    // Runs command with args and returns its combined output.
    [[nodiscard]] Result<std::string> run(const Context& ctx, const std::string& command,
                                          const std::vector<std::string>& args = {}) const;
    // As run, in directory dir.
    [[nodiscard]] Result<std::string> run_in(const Context& ctx, const std::string& dir,
                                             const std::string& command,
                                             const std::vector<std::string>& args = {}) const;
    // As run_in, with env ("K=V") merged over the inherited environment.
    [[nodiscard]] Result<std::string> run_with_env(const Context& ctx, const std::string& dir,
                                                   const std::vector<std::string>& env,
                                                   const std::string& command,
                                                   const std::vector<std::string>& args = {}) const;
    // Runs cmd and returns how it ended with stdout and stderr apart (Service::exec through the
    // process.exec action): fails only when it could not be started or no process service is
    // registered; a non-zero exit is a status. Needs core/process/types.hpp for the types.
    [[nodiscard]] Result<process::Completed> exec(const Context& ctx,
                                                  const process::Command& cmd) const;
    // process.start: returns the managed process id.
    [[nodiscard]] Result<std::string> start(const Context& ctx, const Options& opts) const;
    // process.kill by id or pid.
    [[nodiscard]] Result<void> kill(const Context& ctx, const Options& opts) const;
    // Is process.run registered?
    bool exists() const;

  private:
    Core* core_;
};

class CORE_API Core : public std::enable_shared_from_this<Core> {
  public:
    // Builds a Core and runs the factories in order. Errors: a failing factory (wrapped), a
    // null service, a duplicate service name.
    [[nodiscard]] static Result<std::shared_ptr<Core>> create(
        std::vector<ServiceFactory> factories = {});

    ~Core();
    Core(const Core&) = delete;
    Core& operator=(const Core&) = delete;

    // --- actions ---
    // Registers handler under name; re-registering replaces in place. Errors: empty name, null
    // handler.
    [[nodiscard]] Result<void> action(const std::string& name, ActionHandler handler);
    // A handle on the named action (registered or not).
    Action action(const std::string& name);
    // Registered action names, in registration order.
    std::vector<std::string> actions() const;
    // The handler under name, or an `action not registered` Error.
    [[nodiscard]] Result<ActionHandler> handler(const std::string& name) const;

    // --- services ---
    // Runs every on_startup in registration order; stops at the first failure.
    [[nodiscard]] Result<void> startup(const Context& ctx);
    // Runs every on_shutdown in reverse order; returns the first error. Idempotent. Callable
    // from any thread, a bus subscriber included (the process service then stops without its
    // event thread waiting for itself). While another thread's shutdown is in progress, a
    // subscriber's call (or one re-entered on the shutting-down thread) returns at once with
    // success, since waiting there would deadlock: that shutdown may be waiting for the very
    // events the subscriber is handling; any other caller waits for it to finish.
    [[nodiscard]] Result<void> shutdown(const Context& ctx);
    std::vector<std::string> services() const;
    template <class S>
    std::shared_ptr<S> service(const std::string& name) const {
        auto r = services_.get(name);
        if (!r) return nullptr;
        return std::dynamic_pointer_cast<S>(*r);
    }

    // --- IPC ---
    // Calls every subscriber synchronously, in subscription order. A subscriber that throws is
    // isolated (logged at debug: the library logs nothing louder) and the others still run.
    void broadcast(const Value& message) const;
    // Is anyone subscribed? Lock-free, for publishers that can skip building events nobody
    // reads (a subscription made concurrently may miss events published meanwhile).
    bool has_subscribers() const noexcept;
    // The count has_subscribers() reads, as a handle that outlives the Core: a publisher on
    // its own thread asks it without holding the Core, so it can never become the Core's last
    // owner and destroy it (and its own owner) in the middle of its work.
    std::shared_ptr<const std::atomic<int>> subscriber_count() const noexcept;
    // handler runs on the broadcasting thread. The Subscription unsubscribes when destroyed.
    [[nodiscard]] Subscription subscribe(std::function<void(const Value&)> handler);

    // --- process facade ---
    ProcessFacade process() { return ProcessFacade(*this); }

    // --- logging ---
    std::shared_ptr<spdlog::logger> logger() const;
    void set_logger(std::shared_ptr<spdlog::logger> logger);

  private:
    Core();
    struct Bus;
    Registry<ActionHandler> actions_{"core.action"};
    Registry<std::shared_ptr<Service>> services_{"core.service"};
    std::unique_ptr<Bus> bus_;
    mutable std::mutex log_mu_;
    std::shared_ptr<spdlog::logger> logger_;
    std::mutex lifecycle_mu_;
    bool started_ = false;
    bool shut_down_ = false;
    // A shutdown in progress, and on which thread (see shutdown()); under shutdown_mu_.
    std::mutex shutdown_mu_;
    std::condition_variable shutdown_cv_;
    bool shutting_down_ = false;
    std::thread::id shutdown_thread_;
};

}  // namespace core
