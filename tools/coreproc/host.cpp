#include "host.hpp"

#include <iostream>

#include <spdlog/logger.h>

#include "common.hpp"

namespace coreproc {

namespace cp = core::process;

std::string host_port(const std::string& url) {
    std::string_view u(url);
    if (u.rfind("http://", 0) != 0) return {};
    u.remove_prefix(7);
    return std::string(u.substr(0, u.find('/')));
}

SupervisorHost::SupervisorHost(core::Core& core, cp::Service& svc, HostOptions opts,
                               std::shared_ptr<spdlog::logger> log)
    : opts_(std::move(opts)), log_(std::move(log)), registry_(opts_.registry_dir) {
    cp::SupervisorOptions so;
    so.on_state_change = [this](const cp::DaemonStateChanged& ev) { on_change(ev); };
    so.log_dir = opts_.log_dir;
    so.state_file = opts_.state_file;
    so.on_log_problem = [this](const std::string& daemon, const std::string& problem) {
        log_->warn("daemon {}: log: {}", daemon, problem);
    };
    sup_ = std::make_unique<cp::Supervisor>(core, svc, std::move(so));
}

SupervisorHost::~SupervisorHost() {
    (void)stop_all();
    sup_.reset();  // joins the supervisor thread: no callback runs after this
    std::lock_guard lk(mu_);
    for (const auto& [name, pid] : registered_) (void)registry_.unregister(opts_.code, name);
    registered_.clear();
}

core::Result<void> SupervisorHost::add_all(const std::vector<cp::DaemonSpec>& specs) {
    for (const auto& s : specs) {
        {
            std::lock_guard lk(specs_mu_);
            specs_[s.name] = s;
        }
        if (auto ok = sup_->add(s); !ok) return ok;
    }
    return {};
}

core::Result<cp::ReloadResult> SupervisorHost::apply(std::vector<cp::DaemonSpec> specs) {
    std::map<std::string, cp::DaemonSpec> next;
    for (const auto& s : specs) next[s.name] = s;
    auto rr = sup_->apply(std::move(specs));
    std::lock_guard lk(specs_mu_);
    last_reload_ = {{"at", cp::format_rfc3339(std::chrono::system_clock::now())}};
    if (!rr) {
        last_reload_["ok"] = false;
        last_reload_["error"] = rr.error().what();
        return rr;
    }
    specs_ = std::move(next);
    last_reload_["ok"] = rr->errors.empty();
    last_reload_["added"] = rr->added;
    last_reload_["removed"] = rr->removed;
    last_reload_["changed"] = rr->changed;
    last_reload_["unchanged"] = rr->unchanged;
    last_reload_["errors"] = rr->errors;
    return rr;
}

void SupervisorHost::reload_failed(const std::string& error) {
    std::lock_guard lk(specs_mu_);
    last_reload_ = {{"at", cp::format_rfc3339(std::chrono::system_clock::now())},
                    {"ok", false},
                    {"error", error}};
}

core::Result<void> SupervisorHost::start_all() {
    return sup_->start_all();
}

core::Result<void> SupervisorHost::stop_all() {
    return sup_->stop_all();
}

bool SupervisorHost::ready() const {
    const auto list = sup_->list();
    std::lock_guard lk(specs_mu_);
    for (const auto& st : list) {
        auto it = specs_.find(st.name);
        if (it != specs_.end() && it->second.restart == cp::RestartPolicy::no) continue;
        if (st.state != cp::DaemonState::running && st.state != cp::DaemonState::healthy)
            return false;
    }
    return true;
}

nlohmann::json SupervisorHost::status() const {
    nlohmann::json daemons = nlohmann::json::array();
    for (const auto& st : sup_->list()) {
        nlohmann::json d;
        d["name"] = st.name;
        d["state"] = cp::to_string(st.state);
        d["pid"] = st.pid;
        d["restarts"] = st.restarts;
        if (st.exited) {
            d["last_exit"] = {
                {"code", st.last_exit_code}, {"signal", st.last_signal}, {"error", st.last_error}};
        } else {
            d["last_exit"] = nullptr;
        }
        d["health_failures"] = st.health_failures;
        d["since"] = cp::format_rfc3339(st.since);
        // Why it last failed, a spawn failure included (last_exit stays null then).
        d["last_error"] = st.last_error;
        d["last_lines"] = st.last_lines;
        // Dependencies and the readiness protocol (issue 15).
        d["ready"] = st.ready;
        d["waiting_for"] = st.waiting_for;
        d["status_text"] = st.status_text;
        // Resource use of the current process (issue 13): null where not accounted; the
        // sources say "cgroup" (its own cgroup v2) or "proc" (the main process alone).
        d["memory_bytes"] = nullptr;
        d["memory_source"] = "";
        d["cpu_seconds"] = nullptr;
        d["cpu_source"] = "";
        if (st.pid > 0) {
            if (auto u = sup_->usage(st.name)) {
                if (u->memory_bytes) {
                    d["memory_bytes"] = *u->memory_bytes;
                    d["memory_source"] = u->memory_source;
                }
                if (u->cpu_seconds) {
                    d["cpu_seconds"] = *u->cpu_seconds;
                    d["cpu_source"] = u->cpu_source;
                }
            }
        }
        d["log"] = {{"path", st.log_path},
                    {"err_path", st.err_log_path},
                    {"dropped", st.log_dropped},
                    {"errors", st.log_errors},
                    {"error", st.log_error}};
        daemons.push_back(std::move(d));
    }
    nlohmann::json j;
    j["ready"] = ready();
    j["daemons"] = std::move(daemons);
    std::lock_guard lk(specs_mu_);
    j["reload"] = last_reload_;
    return j;
}

void SupervisorHost::attach(cp::HealthServer* server) {
    {
        std::lock_guard lk(mu_);
        server_ = server;
    }
    if (!server) return;
    server->add_handler("/status", [this] {
        cp::HttpResponse r;
        r.status = 200;
        r.body = dump(status()) + "\n";
        r.content_type = "application/json";
        return r;
    });
    server->set_ready(ready());
}

void SupervisorHost::on_change(const cp::DaemonStateChanged& ev) {
    std::string line =
        "daemon " + ev.name + ": " + cp::to_string(ev.from) + " -> " + cp::to_string(ev.to);
    if (ev.pid > 0) line += " (pid " + std::to_string(ev.pid) + ")";
    if (ev.to == cp::DaemonState::backoff) line += ", restart in " + human_duration(ev.delay);
    if (!ev.reason.empty()) line += ": " + ev.reason;
    log_->info("{}", line);
    if (opts_.print) {
        if (opts_.json) {
            nlohmann::json j{{"event", "state"},
                             {"daemon", ev.name},
                             {"from", cp::to_string(ev.from)},
                             {"to", cp::to_string(ev.to)},
                             {"pid", ev.pid},
                             {"restarts", ev.restarts},
                             {"reason", ev.reason},
                             {"delay_ms", ev.delay.count()}};
            std::cout << dump(j, -1) << std::endl;
        } else {
            std::cout << line << std::endl;
        }
    }
    mirror(ev);
    cp::HealthServer* server = nullptr;
    {
        std::lock_guard lk(mu_);
        server = server_;
    }
    if (server) server->set_ready(ready());
    if (opts_.on_change) opts_.on_change(ev);
}

// The registry holds one entry per daemon that has a live process: written when a process
// appears (a new pid), removed when the daemon has none.
void SupervisorHost::mirror(const cp::DaemonStateChanged& ev) {
    const bool up = ev.to == cp::DaemonState::running || ev.to == cp::DaemonState::healthy ||
                    ev.to == cp::DaemonState::unhealthy;
    const bool down = ev.to == cp::DaemonState::backoff || ev.to == cp::DaemonState::stopped ||
                      ev.to == cp::DaemonState::failed;
    std::lock_guard lk(mu_);
    auto it = registered_.find(ev.name);
    if (up && ev.pid > 0 && (it == registered_.end() || it->second != ev.pid)) {
        cp::DaemonEntry e;
        e.code = opts_.code;
        e.daemon = ev.name;
        e.pid = ev.pid;
        e.project = opts_.project;
        e.started = std::chrono::system_clock::now();
        {
            std::lock_guard slk(specs_mu_);
            if (auto s = specs_.find(ev.name); s != specs_.end()) {
                e.binary = s->second.command;
                e.health = host_port(s->second.health.url);
            }
        }
        if (auto ok = registry_.register_entry(e); !ok)
            log_->warn("registry: {}", ok.error().what());
        else
            registered_[ev.name] = ev.pid;
    } else if (down && it != registered_.end()) {
        if (auto ok = registry_.unregister(opts_.code, ev.name); !ok)
            log_->debug("registry: {}", ok.error().what());
        registered_.erase(it);
    }
}

}  // namespace coreproc
