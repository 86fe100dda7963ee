// coreproc-example-daemon: the smallest useful daemon written with core-process's Daemon API,
// used by `coreproc demo` and as an example to copy.
//   coreproc-example-daemon [--name N] [--listen ADDR] [--pidfile PATH]
//                           [--crash-after DUR] [--exit-code N]
// It serves GET /health and /ready on ADDR (when given), then runs until SIGTERM/SIGINT (exit
// 0) or, with --crash-after, until that much time has passed (then it exits with --exit-code,
// default 1: a crash for its supervisor to restart).
#include <iostream>

#include <CLI/CLI.hpp>

#include "core/context.hpp"
#include "core/options.hpp"
#include "core/process/daemon.hpp"

int main(int argc, char** argv) {
    // First, before any thread exists: Daemon::run reads SIGTERM/SIGINT from a signalfd.
    if (auto ok = core::process::block_stop_signals(); !ok) {
        std::cerr << "example-daemon: " << ok.error().what() << "\n";
        return 1;
    }
    CLI::App app{"core-process example daemon", "coreproc-example-daemon"};
    std::string name = "example";
    std::string listen;
    std::string pidfile;
    std::string crash_after;
    int exit_code = 1;
    app.add_option("--name", name, "Name shown in its messages");
    app.add_option("--listen", listen, "Serve /health and /ready on this address (host:port)");
    app.add_option("--pidfile", pidfile, "Hold this PID file while running");
    app.add_option("--crash-after", crash_after, "Exit with --exit-code after this long (2s)");
    app.add_option("--exit-code", exit_code, "Exit code of the crash (default 1)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }

    core::Context ctx = core::Context::background();
    bool crashes = false;
    if (!crash_after.empty()) {
        auto d = core::parse_duration(crash_after);
        if (!d) {
            std::cerr << "example-daemon " << name << ": --crash-after: " << d.error().message()
                      << "\n";
            return 2;
        }
        ctx = ctx.with_timeout(*d);
        crashes = true;
    }

    core::process::DaemonOptions opts;
    opts.health_addr = listen;
    opts.pid_file = pidfile;
    core::process::Daemon daemon(opts);
    if (auto ok = daemon.start(); !ok) {
        std::cerr << "example-daemon " << name << ": " << ok.error().what() << "\n";
        return 1;
    }
    std::cout << "example-daemon " << name << ": up"
              << (listen.empty() ? std::string() : ", serving /health on " + daemon.health_addr())
              << std::endl;
    if (auto ok = daemon.run(ctx); !ok) {
        std::cerr << "example-daemon " << name << ": " << ok.error().what() << "\n";
        return 1;
    }
    if (daemon.stop_signal() == 0 && crashes) {
        std::cout << "example-daemon " << name << ": crashing with exit code " << exit_code
                  << std::endl;
        return exit_code;
    }
    std::cout << "example-daemon " << name << ": stopped cleanly" << std::endl;
    return 0;
}
