// coreproc: the command-line face of core-process (README command 1).
//   coreproc run [--dir D] [--env K=V]… [--timeout DUR] [--kill-group] [--json] -- CMD [ARG…]
//   coreproc pipeline FILE [STEP…] [--jobs N] [--sequential] [--fail-fast] [--dry-run] [--quiet]
//                    [--plain] [--json]
//   coreproc supervise FILE [--listen ADDR] [--registry DIR] [--json]
//   coreproc daemons [--registry DIR] [--json]
//   coreproc demo [--json]
//   coreproc ctl [--name N | --socket PATH] [--json] ACTION [ARG] (see cmd_ctl.cpp)
//   coreproc --version
// -v/-vv are accepted before or after the subcommand. Exit codes: see common.hpp and the
// README; 2 for usage and configuration errors. The shell completion files in
// tools/completion/ list these subcommands and flags: keep them in step (test/cli checks).
#include <iostream>

#include <spdlog/logger.h>
#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "core/log.hpp"
#include "core/process/daemon.hpp"

int main(int argc, char** argv) {
    using namespace coreproc;

    CLI::App app{"coreproc: run, pipeline and supervise processes with core-process", "coreproc"};
    app.require_subcommand(1);
    // Options the subcommand does not know go up to here: -v works after the subcommand too.
    app.fallthrough();
    app.set_version_flag("--version", std::string("coreproc ") + COREPROC_VERSION);
    app.footer(
        "Examples:\n"
        "  coreproc run --timeout 5s -- make check\n"
        "  coreproc pipeline build.json test      # the step test and what it depends on\n"
        "  coreproc supervise daemons.json --listen 127.0.0.1:8080\n"
        "Run `coreproc SUBCOMMAND --help` for each one's flags.");
    int verbose = 0;
    app.add_flag("-v,--verbose", verbose, "Log more to stderr (-v info, -vv debug)");
    bool json = false;

    RunArgs run_args;
    auto* run = app.add_subcommand("run", "Run one command; exit with its exit status");
    run->add_option("--dir", run_args.dir, "Working directory of the command");
    run->add_option("--env", run_args.env, "Set an environment variable K=V (repeatable)")
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    run->add_option("--timeout", run_args.timeout,
                    "Kill the command after this long (500ms, 2s, 1m); exit 124");
    run->add_option("--grace", run_args.grace,
                    "Delay between SIGTERM and SIGKILL when killing (default 5s)");
    run->add_flag("--kill-group", run_args.kill_group,
                  "Start the command in its own process group and kill the whole group");
    run->add_flag(
        "--json", json,
        "Print a JSON result (stdout and stderr captured apart, exit status, CPU) on stdout");
    run->add_option("--stdin", run_args.stdin_mode,
                    "Where the command's stdin comes from: inherit (ours, the default) or null")
        ->check(CLI::IsMember({"inherit", "null"}));
    add_containment_flags(*run, run_args.contain);
    run->add_option("command", run_args.command, "CMD [ARG…] (after --)")->required();
    run->positionals_at_end(true);
    run->footer(
        "Examples:\n"
        "  coreproc run -- ls -l /\n"
        "  coreproc run --timeout 2s --kill-group -- sh -c 'sleep 10 & wait'   # exit 124\n"
        "  coreproc run --json --env LC_ALL=C -- date\n"
        "Exit: the command's code; 124 timeout; 127 cannot start; 128+N killed by signal N.");

    PipelineArgs pipe_args;
    auto* pipe = app.add_subcommand("pipeline", "Run a pipeline file (steps with dependencies)");
    pipe->add_option("file", pipe_args.file, "Pipeline file (JSON: {\"steps\": [...]})")
        ->required();
    pipe->add_option("steps", pipe_args.targets,
                     "Run only these steps and the steps they depend on (default: all)");
    pipe->add_option("-j,--jobs", pipe_args.jobs,
                     "Steps running at once (default: hardware threads)");
    pipe->add_flag("--sequential", pipe_args.sequential,
                   "Run steps one by one in file order; stop at the first failure");
    pipe->add_flag("--fail-fast", pipe_args.fail_fast,
                   "After the first failure, start no more steps and stop the running ones");
    pipe->add_flag("--dry-run", pipe_args.dry_run, "Print the steps in run order; run nothing");
    pipe->add_flag("-q,--quiet", pipe_args.quiet,
                   "Show only failures and the summary (no output of passed steps)");
    pipe->add_flag("--plain", pipe_args.plain,
                   "Plain lines even on a terminal (no live view, no colour)");
    pipe->add_flag("--json", json, "Print one JSON result on stdout (no live output)");
    pipe->footer(
        "Examples:\n"
        "  coreproc pipeline build.json                 # every step, output live\n"
        "  coreproc pipeline build.json check -j4       # check and its dependencies\n"
        "  coreproc pipeline build.json --dry-run       # the order, nothing run\n"
        "  coreproc pipeline build.json --fail-fast --quiet\n"
        "Exit: 0 all passed (allowed failures excepted); 1 a step failed or was skipped;\n"
        "2 bad file or unknown step; 128+N interrupted by signal N.");

    SuperviseArgs sup_args;
    auto* sup = app.add_subcommand("supervise", "Supervise the daemons of FILE in the foreground");
    sup->add_option("file", sup_args.file, "Supervise file (JSON: {\"daemons\": [...]})")
        ->required();
    sup->add_option("--listen", sup_args.listen,
                    "Address of /health, /ready and /status (default 127.0.0.1:0: any port)");
    sup->add_option("--registry", sup_args.registry,
                    "Daemon registry directory (default $HOME/.core/daemons)");
    sup->add_option("--code", sup_args.code, "Registry code of the entries (default coreproc)");
    sup->add_option("--log-dir", sup_args.log_dir,
                    "Directory of the daemons' log files (default: <registry>/../logs/<file "
                    "stem>, i.e. $HOME/.core/logs/<stem>)");
    sup->add_flag("--json", json, "Print events as JSON lines");
    // The control plane (coreproc ctl's other end).
    sup->add_option("--socket", sup_args.socket,
                    "Control socket path (default $XDG_RUNTIME_DIR/coreproc/NAME.sock)");
    sup->add_option("--name", sup_args.name,
                    "Supervisor name for the control socket (default: FILE's base name)");
    sup->add_option("--control-listen", sup_args.control_listen,
                    "Also serve the control API on this loopback HOST:PORT (bearer token)");
    sup->add_flag("--allow-remote", sup_args.allow_remote,
                  "Allow a non-loopback --control-listen address (logs a warning)");
    sup->add_option(
        "--token-file", sup_args.token_file,
        "Bearer token file for --control-listen (default: generated beside the socket)");
    sup->add_flag("--init", sup_args.init,
                  "Act as a container's init: reap orphans (automatic as PID 1; implies "
                  "--subreaper otherwise)");
    sup->add_flag("--subreaper", sup_args.subreaper,
                  "Become the child subreaper (PR_SET_CHILD_SUBREAPER) and reap the orphans of "
                  "the daemons' trees");
    sup->footer(
        "Examples:\n"
        "  coreproc supervise daemons.json\n"
        "  coreproc supervise daemons.json --listen 127.0.0.1:8080 --json\n"
        "  curl -s 127.0.0.1:8080/status   # from another shell\n"
        "Stops every daemon on SIGINT/SIGTERM. Exit: 0 after a stop; 2 bad file.");

    DaemonsArgs dm_args;
    auto* dm = app.add_subcommand("daemons", "List the live daemons of a registry");
    dm->add_option("--registry", dm_args.registry,
                   "Daemon registry directory (default $HOME/.core/daemons)");
    dm->add_flag("--json", json, "Print the entries as a JSON array");
    dm->footer(
        "Examples:\n"
        "  coreproc daemons\n"
        "  coreproc daemons --registry \"${XDG_RUNTIME_DIR:-/tmp}/core/daemons\" --json");

    CtlArgs ctl_args;
    auto* ctl =
        app.add_subcommand("ctl", "Control a running `coreproc supervise` from another shell");
    ctl->add_option("--name", ctl_args.name, "The supervisor's name (its file's base name)");
    ctl->add_option("--socket", ctl_args.socket, "The supervisor's control socket");
    ctl->add_flag("--json", json, "Print the supervisor's JSON replies as they are");
    ctl->add_flag("-f,--follow", ctl_args.follow, "logs: keep printing new lines");
    ctl->add_option("-n,--lines", ctl_args.lines, "logs: how many last lines (default 10)");
    ctl->add_flag("--stderr", ctl_args.err, "logs: stderr only");
    ctl->add_option("action", ctl_args.action,
                    "status | start NAME | stop NAME | restart NAME | add FILE | remove NAME | "
                    "reload | logs NAME | events")
        ->required();
    ctl->add_option("args", ctl_args.args, "The action's argument");

    DemoArgs demo_args;
    auto* demo = app.add_subcommand("demo", "A short self-ending tour of the library");
    demo->add_option("--registry", demo_args.registry,
                     "Registry directory to use (default: a temporary one)");
    demo->add_flag("--json", json, "Print what happens as JSON lines");
    demo->footer(
        "Examples:\n"
        "  coreproc demo\n"
        "  coreproc demo --json | head");

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "coreproc: " << e.what() << "\n(run `coreproc --help` for usage)\n";
        return kExitUsage;
    }

    // Commands that wait for SIGTERM/SIGINT read them from a signalfd: they must be blocked in
    // every thread, so here, before the Core (or anything else) starts one.
    // SIGHUP is blocked with them (read by a signalfd too), and SIGPIPE is ignored everywhere
    // (prepare_signals in common.cpp).
    if (!dm->parsed() && !ctl->parsed()) {
        if (auto ok = core::process::block_stop_signals(); !ok) {
            std::cerr << "coreproc: " << ok.error().what() << "\n";
            return kExitFailed;
        }
    }
    if (auto ok = prepare_signals(!dm->parsed() && !ctl->parsed()); !ok) {
        std::cerr << "coreproc: " << ok.error().what() << "\n";
        return kExitFailed;
    }

    Globals g;
    g.log = make_logger(verbose);
    g.json = json;
    core::set_default_logger(g.log);

    int code = kExitUsage;
    if (run->parsed())
        code = cmd_run(g, run_args);
    else if (pipe->parsed())
        code = cmd_pipeline(g, pipe_args);
    else if (sup->parsed())
        code = cmd_supervise(g, sup_args);
    else if (dm->parsed())
        code = cmd_daemons(g, dm_args);
    else if (ctl->parsed())
        code = cmd_ctl(g, ctl_args);
    else if (demo->parsed())
        code = cmd_demo(g, demo_args);
    core::set_default_logger(nullptr);
    g.log->flush();
    return code;
}
