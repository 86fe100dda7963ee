// A helper program for the daemon tests, linked with the library (unlike test/helper/child,
// which must not be). Modes:
//   pidfile PATH            acquire the PID file; print "won" or "lost <error>"; hold it until
//                           stdin closes, then release; exit 0
//   daemon PIDFILE REGDIR   block SIGTERM/SIGINT, start a Daemon (pid file, health on
//                           127.0.0.1:0, registry code "test" daemon "helper"), print
//                           "ready <health addr>", run until a signal, print "stopped <signo>",
//                           exit 0 (1 on an error, printed as "error <what>")
#include <unistd.h>

#include <cstdio>
#include <string>

#include "core/process/daemon.hpp"
#include "core/process/pidfile.hpp"

namespace cp = core::process;

static void say(const std::string& s) {
    std::string line = s + "\n";
    (void)!::write(1, line.data(), line.size());
}

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "pidfile" && argc == 3) {
        cp::PidFile p(argv[2]);
        auto r = p.acquire();
        say(r ? "won" : "lost " + r.error().what());
        char c;
        while (::read(0, &c, 1) > 0) {
        }
        if (r) (void)p.release();
        return 0;
    }
    if (mode == "daemon" && argc == 4) {
        if (auto r = cp::block_stop_signals(); !r) {
            say("error " + r.error().what());
            return 1;
        }
        cp::DaemonOptions o;
        o.pid_file = argv[2];
        o.registry_dir = argv[3];
        o.health_addr = "127.0.0.1:0";
        o.code = "test";
        o.daemon = "helper";
        cp::Daemon d(o);
        if (auto r = d.start(); !r) {
            say("error " + r.error().what());
            return 1;
        }
        say("ready " + d.health_addr());
        auto r = d.run(core::Context::background());
        if (!r) {
            say("error " + r.error().what());
            return 1;
        }
        say("stopped " + std::to_string(d.stop_signal()));
        return 0;
    }
    std::fprintf(stderr, "usage: daemon_helper pidfile PATH | daemon PIDFILE REGDIR\n");
    return 2;
}
