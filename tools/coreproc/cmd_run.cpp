// coreproc run: one command through the process Service, its exit status as ours.
//
// The Service's start()+wait() rather than the process.run action: run's Value is only the
// output and its failure only an Error's text, while this command must exit with the child's
// code, 128+N for signal N and 124 on timeout, all of which ProcessInfo carries typed. It is the
// same code path process.run takes (start, then wait). Without --json the child inherits our
// stdout and stderr, so its output is live and keeps its interleaving; with --json they are
// captured apart. Our stdin is passed through (--stdin null to opt out).
#include <iostream>

#include <spdlog/logger.h>

#include "commands.hpp"
#include "core/process/managed_process.hpp"
#include "core/process/service.hpp"
#include "core/process/signal_waiter.hpp"
#include "core/process/signals.hpp"
#include "core/signal_context.hpp"

namespace coreproc {

namespace {

nlohmann::json base_json(const RunArgs& a) {
    nlohmann::json j;
    j["command"] = a.command.front();
    j["args"] = std::vector<std::string>(a.command.begin() + 1, a.command.end());
    return j;
}

}  // namespace

int cmd_run(const Globals& g, const RunArgs& a) {
    if (a.command.empty()) {
        std::cerr << "coreproc run: missing command (usage: coreproc run [flags] -- CMD [ARG…])\n";
        return kExitUsage;
    }
    core::process::RunOptions o;
    o.command = a.command.front();
    o.args.assign(a.command.begin() + 1, a.command.end());
    o.dir = a.dir;
    // Always its own process group, killed whole: Ctrl-C, SIGTERM and --timeout must take what
    // the command started too (`sh -c 'sleep 100 & sleep 100'` left both sleeps running: a
    // non-interactive shell starts `&` jobs with SIGINT ignored). --kill-group is the default.
    o.kill_group = true;
    (void)a.kill_group;
    // Our stdin is the command's (a filter works: `echo hi | coreproc run -- cat`), unless
    // --stdin null. With --json both streams are captured apart; otherwise they are ours.
    if (a.stdin_mode == "null") {
        o.std_in = core::process::Stdio::null();
    } else if (a.stdin_mode == "inherit" || a.stdin_mode.empty()) {
        o.std_in = core::process::Stdio::inherit();
    } else {
        std::cerr << "coreproc run: --stdin \"" << a.stdin_mode << "\": want inherit or null\n";
        return kExitUsage;
    }
    if (g.json) {
        o.std_out = core::process::Stdio::pipe();
        o.std_err = core::process::Stdio::pipe();
    } else {
        o.std_out = core::process::Stdio::inherit();
        o.std_err = core::process::Stdio::inherit();
    }
    for (const std::string& kv : a.env) {
        if (kv.find('=') == std::string::npos || kv.front() == '=') {
            std::cerr << "coreproc run: --env \"" << kv << "\": want K=V\n";
            return kExitUsage;
        }
        o.env.push_back(kv);
    }
    std::chrono::milliseconds timeout{0};
    if (!a.timeout.empty()) {
        auto d = core::parse_duration(a.timeout);
        if (!d) {
            std::cerr << "coreproc run: --timeout: " << d.error().message() << "\n";
            return kExitUsage;
        }
        timeout = std::chrono::ceil<std::chrono::milliseconds>(*d);
    }
    if (!a.grace.empty()) {
        auto d = core::parse_duration(a.grace);
        if (!d) {
            std::cerr << "coreproc run: --grace: " << d.error().message() << "\n";
            return kExitUsage;
        }
        o.grace_period = std::chrono::ceil<std::chrono::milliseconds>(*d);
    }

    if (auto bad = apply_containment_flags(a.contain, o); !bad.empty()) {
        std::cerr << "coreproc run: " << bad << "\n";
        return kExitUsage;
    }

    auto core = start_core(g.log);
    if (!core) {
        std::cerr << "coreproc run: " << core.error().what() << "\n";
        return kExitCannotStart;
    }
    auto svc = (*core)->service<core::process::Service>("process");

    // SIGINT (Ctrl-C) or SIGTERM cancels ctx: the Service then stops the command's group
    // (SIGTERM, SIGKILL after --grace). main() blocked both signals before any thread started.
    auto sc = core::SignalContext::create(
        {core::process::signal_int(), core::process::signal_term(), core::process::signal_hup()});
    if (!sc) g.log->warn("signals will not be handled: {}", sc.error().what());
    const core::Context sig_ctx = sc ? sc->context() : core::Context::background();

    int code = kExitCannotStart;
    nlohmann::json out = base_json(a);
    auto work = [&](const core::Context& ctx) {
        // The timeout is a child context: the Service kills the child (its group with
        // --kill-group) when it expires, and deadline_exceeded() names the cause afterwards.
        const core::Context run_ctx = timeout.count() > 0 ? ctx.with_timeout(timeout) : ctx;
        auto mp = svc->start(run_ctx, o);
        if (!mp) {
            out["status"] = "not-started";
            out["error"] = mp.error().what();
            code = kExitCannotStart;
            return;
        }
        const core::process::ProcessInfo info = (*mp)->wait();
        out["pid"] = info.pid;
        out["duration_ms"] = millis(info.duration);
        out["exit_code"] = info.exit_code;
        out["signal"] = info.signal;
        if (info.accounting.accounted) {  // --cgroup (issue 13): what the cgroup counted
            out["cgroup"] = {{"path", info.cgroup},
                             {"memory_peak", info.accounting.memory_peak},
                             {"cpu_usage_us", info.accounting.cpu_usage.count()},
                             {"oom_kills", info.accounting.oom_kills}};
        }
        if (g.json) {
            out["stdout"] = (*mp)->output(core::process::Stream::stdout_);
            out["stderr"] = (*mp)->output(core::process::Stream::stderr_);
            out["output"] = out["stdout"];  // the field before stderr was apart: stdout
            out["output_dropped"] = info.output_dropped;
            out["stdout_dropped"] = info.output_dropped;
            out["stderr_dropped"] = info.stderr_dropped;
            out["user_cpu_ms"] =
                std::chrono::duration<double, std::milli>(info.usage.user_cpu).count();
            out["system_cpu_ms"] =
                std::chrono::duration<double, std::milli>(info.usage.system_cpu).count();
            out["max_rss_bytes"] = info.usage.max_rss_bytes;
        }
        (void)svc->remove((*mp)->id());
        const bool timed_out = timeout.count() > 0 && !ctx.done() && run_ctx.deadline_exceeded();
        out["timed_out"] = timed_out;
        if (timed_out) {
            out["status"] = "timeout";
            out["error"] = "timed out after " + a.timeout;
            code = kExitTimeout;
        } else if (info.status == core::process::Status::exited) {
            out["status"] = "exited";
            code = info.exit_code;
        } else if (info.status == core::process::Status::killed) {
            out["status"] = "killed";
            out["error"] = info.exit.describe();
            code = kExitSignalBase + info.signal;
        } else {
            out["status"] = "failed";
            out["error"] = info.error;
            code = kExitCannotStart;
        }
    };
    work(sig_ctx);
    const int sig = sc ? sc->signal() : 0;
    if (sig != 0) g.log->info("signal {} received: stopped", sig);
    (void)(*core)->shutdown(core::Context::background());

    if (g.json) {
        if (sig != 0) out["interrupted_by"] = core::process::signal_name(sig);
        std::cout << dump(out) << std::endl;
    } else if (out.contains("error")) {
        std::cerr << "coreproc run: " << out["error"].get<std::string>() << "\n";
    }
    if (sig != 0 && code == kExitCannotStart) code = kExitSignalBase + sig;
    return code;
}

}  // namespace coreproc
