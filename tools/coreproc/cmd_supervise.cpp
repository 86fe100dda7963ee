// coreproc supervise FILE: the Supervisor in the foreground. Serves /health (200 while this
// supervisor works), /ready (200 when every daemon whose restart policy is not `no` is running)
// and /status (JSON) on --listen; on SIGTERM or SIGINT stops every daemon and exits 0; on
// SIGHUP re-reads FILE and applies the difference (Supervisor::apply).
//
// This process is itself a Daemon (the library's) for its health server; the signal wait is a
// SignalWaiter (a signalfd; main() blocked SIGTERM, SIGINT and SIGHUP before any thread).
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

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
    if (!next) return fail_reload(next.error().what());
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

}  // namespace

int cmd_supervise(const Globals& g, const SuperviseArgs& a) {
    auto specs = cp::load_supervise_config(a.file);
    if (!specs) {
        std::cerr << "coreproc supervise: " << specs.error().what() << "\n";
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
        // Before the new Supervisor writes its own state: what a crashed one left running.
        if (int rc = stop_survivors(g, ho.state_file, *specs); rc != kExitOk) {
            (void)self.stop();
            (void)(*core)->shutdown(core::Context::background());
            return rc;
        }
        SupervisorHost host(**core, *svc, ho, g.log);
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
                (void)reload(g, a, host);
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
        control.stop();  // the control plane: no request reaches the supervisor after this
        host.attach(nullptr);
        (void)self.stop();  // run() stopped it already; the server no longer calls into host
        if (auto ok = host.stop_all(); !ok) {
            g.log->error("stop: {}", ok.error().what());
            code = kExitFailed;
        }
    }
    (void)(*core)->shutdown(core::Context::background());
    if (!g.json) std::cout << "coreproc supervise: stopped" << std::endl;
    return code;
}

}  // namespace coreproc
