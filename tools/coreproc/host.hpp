// SupervisorHost: what `coreproc supervise` and `coreproc demo` wrap around a Supervisor: state
// changes logged and printed, a registry entry per running daemon, readiness for /ready and the
// /status document. Owns the Supervisor; the Core and the Service must outlive it. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/process/daemon_registry.hpp"
#include "core/process/health.hpp"
#include "core/process/supervisor.hpp"

namespace spdlog {
class logger;
}

namespace coreproc {

struct HostOptions {
    std::string code = "coreproc";  // registry code of the daemons' entries
    std::string project;            // registry project (the config file)
    std::string registry_dir;       // empty: DaemonRegistry::default_dir()
    bool print = true;              // print each state change on stdout
    bool json = false;              // as a JSON line rather than text
    // Called after the host's own handling, on the supervisor thread.
    std::function<void(const core::process::DaemonStateChanged&)> on_change;
    std::string log_dir;     // SupervisorOptions::log_dir: the daemons' default log directory
    std::string state_file;  // SupervisorOptions::state_file
};

class SupervisorHost {
  public:
    SupervisorHost(core::Core& core, core::process::Service& svc, HostOptions opts,
                   std::shared_ptr<spdlog::logger> log);
    // Stops every daemon and removes their registry entries.
    ~SupervisorHost();
    SupervisorHost(const SupervisorHost&) = delete;
    SupervisorHost& operator=(const SupervisorHost&) = delete;

    // Adds every spec; the first invalid one is the Error (nothing started yet).
    core::Result<void> add_all(const std::vector<core::process::DaemonSpec>& specs);
    core::Result<void> start_all();
    // Stops every daemon; returns the first error.
    core::Result<void> stop_all();
    // Supervisor::apply, with the outcome (or the Error) kept for /status's "reload".
    core::Result<core::process::ReloadResult> apply(std::vector<core::process::DaemonSpec> specs);
    // Records a reload that failed before apply (an unreadable or invalid file).
    void reload_failed(const std::string& error);

    // Every daemon whose restart policy is not `no` is running or healthy.
    bool ready() const;
    // {"supervisor":{pid, ready}, "daemons":[{name, state, pid, restarts, last_exit, …}]}.
    nlohmann::json status() const;
    // Serves /status on server and keeps its /ready in step with ready().
    void attach(core::process::HealthServer* server);

    core::process::Supervisor& supervisor() { return *sup_; }
    const std::string& registry_dir() const { return registry_.dir(); }

  private:
    void on_change(const core::process::DaemonStateChanged& ev);
    void mirror(const core::process::DaemonStateChanged& ev);

    HostOptions opts_;
    std::shared_ptr<spdlog::logger> log_;
    core::process::DaemonRegistry registry_;
    mutable std::mutex specs_mu_;
    std::map<std::string, core::process::DaemonSpec> specs_;  // guarded by specs_mu_
    nlohmann::json last_reload_;                              // guarded by specs_mu_
    mutable std::mutex mu_;
    std::map<std::string, int> registered_;  // name → pid in the registry
    core::process::HealthServer* server_ = nullptr;
    std::unique_ptr<core::process::Supervisor> sup_;  // last: destroyed (stopped) first
};

// "http://127.0.0.1:8080/health" → "127.0.0.1:8080"; empty when url is not one.
std::string host_port(const std::string& url);

}  // namespace coreproc
