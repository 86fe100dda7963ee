// coreproc supervise FILE: the Supervisor in the foreground. Serves /health (200 while this
// supervisor works), /ready (200 when every daemon whose restart policy is not `no` is running)
// and /status (JSON) on --listen; on SIGTERM or SIGINT stops every daemon and exits 0; on
// SIGHUP re-reads FILE and applies the difference (Supervisor::apply).
//
// Under a manager that speaks the readiness protocol (systemd's Type=notify: NOTIFY_SOCKET is
// set) it says READY=1 once every daemon whose policy is not `no` is up, STATUS= as that
// changes, RELOADING=1 / READY=1 around a reload, STOPPING=1 when it stops, and WATCHDOG=1 every
// WATCHDOG_USEC/2 when the manager asks for it; its daemons never see those variables.
//
// This process is itself a Daemon (the library's) for its health server; the signal wait is a
// SignalWaiter (a signalfd; main() blocked SIGTERM, SIGINT and SIGHUP before any thread).
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>
#include <thread>

#include <spdlog/logger.h>

#include "commands.hpp"
#include "core/process/control.hpp"
#include "core/process/daemon.hpp"
#include "core/process/service.hpp"
#include "core/process/signal_waiter.hpp"
#include "host.hpp"

namespace coreproc {

namespace cp = core::process;

namespace {

// A config error as the user reads it: "FILE: daemons[0] (\"a\"): key …". The library's
// error names its operation ("supervise.config: \"FILE\": …") for embedders; after
// "coreproc supervise: " that would say supervise twice and quote the file the user typed.
std::string config_error_text(const core::Error& e) {
    std::string w = e.what();
    constexpr std::string_view op = "supervise.config: ";
    if (w.rfind(op, 0) == 0) w.erase(0, op.size());
    if (w.size() > 1 && w[0] == '"') {
        const auto close = w.find("\": ", 1);
        if (close != std::string::npos) w = w.substr(1, close - 1) + w.substr(close + 1);
    }
    return w;
}

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& x : v) out += (out.empty() ? "" : ", ") + x;
    return out.empty() ? "-" : out;
}

// The daemons' logs go beside the registry (the supervisor's state): <registry>/../logs/<stem>,
// $HOME/.core/logs/daemons for ~/.core/daemons and a file named daemons.json.
std::string default_log_dir(const std::string& registry_dir, const std::string& file) {
    namespace fs = std::filesystem;
    const fs::path reg(registry_dir);
    fs::path parent = reg.has_filename() ? reg.parent_path() : reg.parent_path().parent_path();
    if (parent.empty()) parent = ".";
    std::string stem = fs::path(file).stem().string();
    if (stem.empty()) stem = "supervise";
    return (parent / "logs" / stem).string();
}

// SIGHUP and `coreproc ctl reload`: the file again, applied by name. A file that does not load
// changes nothing. The outcome is printed and returned (the control plane's reply).
core::Result<cp::ReloadResult> reload(const Globals& g, const SuperviseArgs& a,
                                      SupervisorHost& host) {
    auto fail_reload = [&](const std::string& why) -> core::Result<cp::ReloadResult> {
        host.reload_failed(why);
        g.log->error("reload: {}; nothing changed", why);
        if (g.json)
            std::cout << dump({{"event", "reload"}, {"ok", false}, {"error", why}}, -1)
                      << std::endl;
        else
            std::cout << "coreproc supervise: reload failed: " << why << "; nothing changed"
                      << std::endl;
        return core::fail(core::Error("reload", why + "; nothing changed", EINVAL));
    };
    auto next = cp::load_supervise_config(a.file);
    if (!next) return fail_reload(config_error_text(next.error()));
    if (next->empty()) return fail_reload(a.file + ": key \"daemons\": no daemons to supervise");
    auto rr = host.apply(std::move(*next));
    if (!rr) return fail_reload(rr.error().what());
    for (const auto& e : rr->errors) g.log->warn("reload: {}", e);
    if (g.json) {
        std::cout << dump({{"event", "reload"},
                           {"ok", rr->errors.empty()},
                           {"added", rr->added},
                           {"removed", rr->removed},
                           {"changed", rr->changed},
                           {"unchanged", rr->unchanged},
                           {"errors", rr->errors}},
                          -1)
                  << std::endl;
    } else {
        std::cout << "coreproc supervise: reloaded " << a.file << ": added " << join(rr->added)
                  << "; removed " << join(rr->removed) << "; changed " << join(rr->changed)
                  << "; unchanged " << join(rr->unchanged) << std::endl;
    }
    return rr;
}

// The last `tail` lines of a log file (read from its end: files rotate at max_size).
core::Result<std::string> tail_file(const std::string& path, std::size_t tail) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return core::fail(core::Error("logs", "cannot open \"" + path + "\"", ENOENT));
    f.seekg(0, std::ios::end);
    const std::streamoff size = f.tellg();
    const std::streamoff from = std::max<std::streamoff>(0, size - (std::streamoff{1} << 20));
    f.seekg(from);
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (from > 0) {  // drop the partial first line
        const auto nl = text.find('\n');
        text.erase(0, nl == std::string::npos ? text.size() : nl + 1);
    }
    std::size_t pos = text.size(), lines = 0;
    if (pos > 0 && text[pos - 1] == '\n') --pos;
    while (pos > 0 && lines < tail) {
        const auto nl = text.rfind('\n', pos - 1);
        ++lines;
        if (nl == std::string::npos) {
            pos = 0;
            break;
        }
        if (lines == tail) {
            pos = nl + 1;
            break;
        }
        pos = nl;
    }
    return text.substr(lines < tail ? 0 : pos);
}

// After a `kill -9` of an earlier supervisor its daemons still run: each one found (same pid
// and start time as in the state file) is stopped with its spec's stop signal and timeout
// before the fresh copies start, so there is never a second copy. One that cannot be stopped
// makes us refuse to start (exit 1) rather than duplicate it.
int stop_survivors(const Globals& g, const std::string& state_file,
                   const std::vector<cp::DaemonSpec>& specs) {
    auto found = cp::find_survivors(state_file);
    if (!found) {
        g.log->warn("{} (ignored)", found.error().what());
        return kExitOk;
    }
    for (const auto& s : *found) {
        int sig = cp::signal_term();
        std::chrono::milliseconds timeout{10000};
        for (const auto& spec : specs)
            if (spec.name == s.name) {
                sig = spec.stop_signal;
                timeout = spec.stop_timeout;
            }
        const std::string what = "daemon " + s.name + " (pid " + std::to_string(s.pid) +
                                 ") was left running by an earlier supervisor";
        g.log->warn("{}: stopping it before starting a fresh copy", what);
        if (g.json)
            std::cout << dump({{"event", "survivor"}, {"daemon", s.name}, {"pid", s.pid}}, -1)
                      << std::endl;
        else
            std::cout << "coreproc supervise: " << what << "; stopping it" << std::endl;
        if (auto ok = cp::stop_survivor(s, sig, timeout); !ok) {
            std::cerr << "coreproc supervise: " << what << " and cannot be stopped ("
                      << ok.error().what() << "): refusing to start a second copy\n";
            return kExitFailed;
        }
    }
    return kExitOk;
}

// What we tell our own manager (ManagerNotifier; inactive without NOTIFY_SOCKET).
class ManagerLink {
  public:
    ManagerLink(cp::ManagerNotifier m, std::shared_ptr<spdlog::logger> log)
        : m_(std::move(m)), log_(std::move(log)) {}
    ~ManagerLink() { stop_watchdog(); }

    bool active() const { return m_.active(); }
    void attach(SupervisorHost* host) {
        std::lock_guard lk(mu_);
        host_ = host;
    }
    // After each state change (the supervisor thread) and once after the start: READY=1 the
    // first time every daemon with a policy other than `no` is up, STATUS= when it changes.
    void update() {
        if (!active()) return;
        std::lock_guard lk(mu_);
        if (!host_ || stopping_) return;
        const auto list = host_->supervisor().list();
        std::size_t up = 0;
        for (const auto& st : list)
            if (st.state == cp::DaemonState::running || st.state == cp::DaemonState::healthy) ++up;
        const bool ready = host_->ready();
        const std::string status =
            std::to_string(up) + " of " + std::to_string(list.size()) + " daemons up";
        std::string msg;
        if (ready && !ready_sent_) msg = "READY=1\n";
        if (status != status_) msg += "STATUS=" + status + "\n";
        if (msg.empty()) return;
        ready_sent_ = ready_sent_ || ready;
        status_ = status;
        say(msg);
    }
    void reloading() {
        std::lock_guard lk(mu_);
        if (active()) say("RELOADING=1\nSTATUS=reloading\n");
        ready_sent_ = false;  // READY=1 again once the reload is applied
        status_.clear();
    }
    void stopping() {
        std::lock_guard lk(mu_);
        stopping_ = true;
        if (active()) say("STOPPING=1\nSTATUS=stopping every daemon\n");
    }
    // WATCHDOG=1 every WATCHDOG_USEC/2 on a thread of its own, until stop_watchdog().
    void start_watchdog() {
        if (!active() || m_.watchdog().count() <= 0) return;
        const auto every =
            std::max<std::chrono::microseconds>(m_.watchdog() / 2, std::chrono::microseconds(1000));
        dog_ = std::thread([this, every] {
            std::unique_lock lk(dog_mu_);
            while (!dog_quit_) {
                if (auto r = m_.send("WATCHDOG=1"); !r)
                    log_->debug("notify: WATCHDOG=1: {}", r.error().what());
                dog_cv_.wait_for(lk, every, [&] { return dog_quit_; });
            }
        });
    }
    void stop_watchdog() {
        {
            std::lock_guard lk(dog_mu_);
            dog_quit_ = true;
        }
        dog_cv_.notify_all();
        if (dog_.joinable()) dog_.join();
    }

  private:
    void say(const std::string& msg) {
        if (auto r = m_.send(msg); !r) log_->warn("notify {}: {}", m_.socket(), r.error().what());
    }
    const cp::ManagerNotifier m_;
    std::shared_ptr<spdlog::logger> log_;
    std::mutex mu_;
    SupervisorHost* host_ = nullptr;
    bool ready_sent_ = false;
    bool stopping_ = false;
    std::string status_;
    std::mutex dog_mu_;
    std::condition_variable dog_cv_;
    bool dog_quit_ = false;
    std::thread dog_;
};

}  // namespace

int cmd_supervise(const Globals& g, const SuperviseArgs& a) {
    // First, before any thread: NOTIFY_SOCKET and the watchdog variables are ours, not the
    // daemons'.
    ManagerLink manager(cp::ManagerNotifier::from_environment(), g.log);
    // PID 1 (a container's init) or --init/--subreaper: orphans re-parented to us are reaped.
    // SIGCHLD is blocked before any thread starts, so the reaper's signalfd gets every one.
    const bool pid1 = cp::running_as_pid1();
    const bool reaping = a.init || a.subreaper || pid1;
    if (reaping)
        if (auto ok = cp::block_signals({cp::signal_chld()}); !ok)
            g.log->warn("init: {}", ok.error().what());
    auto specs = cp::load_supervise_config(a.file);
    if (!specs) {
        std::cerr << "coreproc supervise: " << config_error_text(specs.error()) << "\n";
        return kExitUsage;
    }
    if (specs->empty()) {
        std::cerr << "coreproc supervise: " << a.file
                  << ": key \"daemons\": no daemons to supervise\n";
        return kExitUsage;
    }
    auto core = start_core(g.log);
    if (!core) {
        std::cerr << "coreproc supervise: " << core.error().what() << "\n";
        return kExitFailed;
    }
    auto svc = (*core)->service<cp::Service>("process");
    std::unique_ptr<cp::OrphanReaper> reaper;
    if (reaping) {
        auto r = cp::OrphanReaper::start(!pid1);
        if (!r) {
            std::cerr << "coreproc supervise: " << r.error().what() << "\n";
            (void)(*core)->shutdown(core::Context::background());
            return kExitFailed;
        }
        reaper = std::move(*r);
        g.log->info("init: reaping orphans ({})", pid1 ? "PID 1" : "child subreaper");
    }

    cp::DaemonOptions dopts;
    dopts.health_addr = a.listen;
    dopts.logger = g.log;
    cp::Daemon self(dopts);
    if (auto ok = self.start(); !ok) {
        std::cerr << "coreproc supervise: --listen " << a.listen << ": " << ok.error().what()
                  << "\n";
        (void)(*core)->shutdown(core::Context::background());
        return kExitUsage;
    }
    self.set_ready(false);

    int code = kExitOk;
    {
        HostOptions ho;
        ho.code = a.code;
        ho.project = a.file;
        ho.registry_dir = a.registry;
        ho.json = g.json;
        ho.log_dir =
            !a.log_dir.empty()
                ? a.log_dir
                : default_log_dir(
                      !a.registry.empty() ? a.registry : cp::DaemonRegistry::default_dir(), a.file);
        ho.state_file = ho.log_dir + "/supervisor.state";
        ho.on_change = [&manager](const cp::DaemonStateChanged&) { manager.update(); };
        // Before the new Supervisor writes its own state: what a crashed one left running.
        if (int rc = stop_survivors(g, ho.state_file, *specs); rc != kExitOk) {
            (void)self.stop();
            (void)(*core)->shutdown(core::Context::background());
            return rc;
        }
        SupervisorHost host(**core, *svc, ho, g.log);
        manager.attach(&host);
        manager.start_watchdog();
        if (auto ok = host.add_all(*specs); !ok) {
            std::cerr << "coreproc supervise: " << a.file << ": " << ok.error().what() << "\n";
            (void)self.stop();
            (void)(*core)->shutdown(core::Context::background());
            return kExitUsage;
        }
        // A health check that says the supervisor itself answers; daemons' own health shows in
        // /ready and /status.
        self.health()->add_check("supervisor", [] { return core::Result<void>{}; });
        host.attach(self.health());

        // --- the control plane (lib/control): `coreproc ctl`'s socket, optional TCP ---
        // The lead wires copts.reload (Supervisor::apply) and copts.read_logs (the log files).
        cp::ControlOptions copts;
        copts.name = a.name.empty() ? cp::control_name_from_file(a.file) : a.name;
        copts.socket_path = a.socket.empty() ? cp::control_socket_path(copts.name) : a.socket;
        copts.listen = a.control_listen;
        copts.allow_remote = a.allow_remote;
        copts.token_file = a.token_file;
        copts.logger = g.log;
        copts.reload = [&]() -> core::Result<std::string> {
            auto rr = reload(g, a, host);
            if (!rr) return core::fail(rr.error());
            return nlohmann::json{{"ok", rr->errors.empty()},   {"added", rr->added},
                                  {"removed", rr->removed},     {"changed", rr->changed},
                                  {"unchanged", rr->unchanged}, {"errors", rr->errors}}
                .dump();
        };
        copts.read_logs = [&](const std::string& name, std::size_t tail,
                              bool stderr_only) -> core::Result<std::string> {
            auto st = host.supervisor().get(name);
            if (!st) return core::fail(st.error());
            const std::string& path =
                stderr_only && !st->err_log_path.empty() ? st->err_log_path : st->log_path;
            if (path.empty())
                return core::fail(core::Error("logs", name + ": no log file", ENOENT));
            return tail_file(path, tail);
        };
        cp::ControlServer control(**core, host.supervisor(), *svc, copts);
        if (auto ok = control.start(); !ok) {
            std::cerr << "coreproc supervise: " << ok.error().what() << "\n";
            host.attach(nullptr);
            (void)self.stop();
            (void)host.stop_all();
            (void)(*core)->shutdown(core::Context::background());
            return kExitFailed;
        }
        // --- end of the control plane's block ---

        const std::string addr = self.health_addr();
        if (g.json) {
            nlohmann::json j{{"event", "listening"},
                             {"addr", addr},
                             {"control", control.socket_path()},
                             {"control_listen", control.tcp_address()},
                             {"registry", host.registry_dir()},
                             {"log_dir", ho.log_dir},
                             {"daemons", specs->size()}};
            std::cout << dump(j, -1) << std::endl;
        } else {
            std::cout << "coreproc supervise: " << specs->size() << " daemon(s) from " << a.file
                      << "; listening on http://" << addr << " (/health /ready /status)"
                      << "; logs in " << ho.log_dir << std::endl;
            std::cout << "coreproc supervise: control socket " << control.socket_path()
                      << (control.tcp_address().empty()
                              ? std::string()
                              : "; control API on http://" + control.tcp_address())
                      << std::endl;
        }
        if (auto ok = host.start_all(); !ok) g.log->warn("start: {}", ok.error().what());
        manager.update();  // every daemon may be up already (or none has a policy but `no`)

        int sig = 0;
        auto waiter = cp::SignalWaiter::open(kStopSignals);
        if (!waiter) {
            g.log->error("{}", waiter.error().what());
            code = kExitFailed;
        }
        while (waiter) {
            auto s = waiter->wait();
            if (!s) {
                g.log->error("{}", s.error().what());
                code = kExitFailed;
                break;
            }
            if (*s == cp::signal_hup()) {
                g.log->info("SIGHUP: reloading {}", a.file);
                manager.reloading();
                (void)reload(g, a, host);
                manager.update();
                continue;
            }
            sig = *s;
            break;
        }
        if (g.json) {
            std::cout << dump({{"event", "stopping"}, {"signal", sig}}, -1) << std::endl;
        } else {
            std::cout << "coreproc supervise: "
                      << (sig ? "signal " + cp::signal_name(sig) + ": " : std::string())
                      << "stopping every daemon" << std::endl;
        }
        manager.stopping();
        control.stop();  // the control plane: no request reaches the supervisor after this
        host.attach(nullptr);
        (void)self.stop();  // run() stopped it already; the server no longer calls into host
        if (auto ok = host.stop_all(); !ok) {
            g.log->error("stop: {}", ok.error().what());
            code = kExitFailed;
        }
        manager.attach(nullptr);
    }
    manager.stop_watchdog();
    (void)(*core)->shutdown(core::Context::background());
    if (reaper) {
        (void)cp::OrphanReaper::reap_now();  // what the last stops left behind
        g.log->info("init: {} orphan(s) reaped", reaper->reaped());
        reaper.reset();
    }
    if (!g.json) std::cout << "coreproc supervise: stopped" << std::endl;
    // As a container's PID 1: 0 after a clean stop (SIGTERM from the runtime included), 1 when
    // a daemon could not be stopped.
    return code;
}

}  // namespace coreproc
