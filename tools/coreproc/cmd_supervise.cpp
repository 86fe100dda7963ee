// coreproc supervise FILE: the Supervisor in the foreground. Serves /health (200 while this
// supervisor works), /ready (200 when every daemon whose restart policy is not `no` is running)
// and /status (JSON) on --listen; on SIGTERM or SIGINT stops every daemon and exits 0.
//
// This process is itself a Daemon (the library's): its health server is the Daemon's, and its
// run() is the SIGTERM/SIGINT wait (a signalfd; main() blocked both signals before any thread).
#include <iostream>

#include <spdlog/logger.h>

#include "commands.hpp"
#include "core/process/control.hpp"
#include "core/process/daemon.hpp"
#include "core/process/service.hpp"
#include "host.hpp"

namespace coreproc {

namespace cp = core::process;

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
                             {"daemons", specs->size()}};
            std::cout << dump(j, -1) << std::endl;
        } else {
            std::cout << "coreproc supervise: " << specs->size() << " daemon(s) from " << a.file
                      << "; listening on http://" << addr << " (/health /ready /status)"
                      << std::endl;
            std::cout << "coreproc supervise: control socket " << control.socket_path()
                      << (control.tcp_address().empty() ? std::string()
                                                        : "; control API on http://" +
                                                              control.tcp_address())
                      << std::endl;
        }
        if (auto ok = host.start_all(); !ok) g.log->warn("start: {}", ok.error().what());

        if (auto ok = self.run(core::Context::background()); !ok) {
            g.log->error("{}", ok.error().what());
            code = kExitFailed;
        }
        const int sig = self.stop_signal();
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
