// coreproc pipeline FILE: a Runner spec file, with each step's state shown as it changes and
// a summary table at the end. Exit 0 only when nothing failed (failures of steps with
// allow_failure excepted), 1 otherwise, 2 when the file is unreadable or invalid.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <mutex>

#include <spdlog/logger.h>

#include "commands.hpp"
#include "core/signal_context.hpp"
#include "core/process/runner.hpp"
#include "core/process/service.hpp"
#include "core/process/supervisor.hpp"

namespace coreproc {

namespace {

using core::process::RunResult;
using core::process::RunStatus;

std::string verdict(const RunResult& r) {
    if (r.status == RunStatus::passed) return "passed";
    if (r.status == RunStatus::skipped) return "skipped";
    return r.allowed_failure ? "failed (allowed)" : "failed";
}

std::string exit_text(const RunResult& r) {
    if (r.status == RunStatus::skipped) return "-";
    if (r.timed_out) return "timeout";
    if (r.signal != 0) return core::process::signal_name(r.signal);
    if (r.exit_code < 0) return "-";
    return std::to_string(r.exit_code);
}

nlohmann::json to_json(const RunResult& r, const core::process::RunSpec& s) {
    nlohmann::json j;
    j["name"] = r.name;
    j["command"] = s.command;
    j["args"] = s.args;
    j["status"] = core::process::to_string(r.status);
    j["allowed_failure"] = r.allowed_failure;
    j["exit_code"] = r.exit_code;
    j["signal"] = r.signal;
    j["timed_out"] = r.timed_out;
    j["duration_ms"] = millis(r.duration);
    j["output"] = r.output;
    j["error"] = r.error;
    return j;
}

}  // namespace

int cmd_pipeline(const Globals& g, const PipelineArgs& a) {
    auto specs = core::process::load_pipeline(a.file);
    if (!specs) {
        std::cerr << "coreproc pipeline: " << specs.error().what() << "\n";
        return kExitUsage;
    }
    auto core = start_core(g.log);
    if (!core) {
        std::cerr << "coreproc pipeline: " << core.error().what() << "\n";
        return kExitFailed;
    }

    std::mutex print_mu;
    const auto t0 = std::chrono::steady_clock::now();
    std::size_t name_width = 4;
    for (const auto& s : *specs) name_width = std::max(name_width, s.name.size());
    core::process::RunnerOptions ro;
    ro.max_parallel = a.jobs;
    if (!g.json) {
        // Live state, one line per change (the Runner calls this from its worker threads).
        ro.on_progress = [&](const core::process::RunProgress& p) {
            const auto at = std::chrono::steady_clock::now() - t0;
            char stamp[32];
            std::snprintf(stamp, sizeof stamp, "[%7.2fs] ",
                          std::chrono::duration<double>(at).count());
            std::string line =
                stamp + p.spec->name + std::string(name_width - p.spec->name.size() + 2, ' ');
            if (p.kind == core::process::RunProgress::Kind::started) {
                line += "started  " + p.spec->command;
                for (const auto& arg : p.spec->args) line += " " + arg;
            } else {
                line += verdict(*p.result);
                if (p.result->status != RunStatus::skipped)
                    line += " in " + human_duration(p.result->duration);
                if (!p.result->error.empty()) line += ": " + p.result->error;
            }
            std::lock_guard lk(print_mu);
            std::cout << line << std::endl;
        };
    }
    auto runner = core::process::Runner::create(**core, ro);
    if (!runner) {
        std::cerr << "coreproc pipeline: " << runner.error().what() << "\n";
        return kExitFailed;
    }

    // SIGINT (Ctrl-C) or SIGTERM cancels ctx: the Runner stops its running steps (each in a
    // process group of its own, killed whole) and skips the rest. main() blocked both signals
    // before any thread started.
    auto sc = core::SignalContext::create({SIGINT, SIGTERM, SIGHUP});
    if (!sc) g.log->warn("signals will not be handled: {}", sc.error().what());
    const core::Context ctx = sc ? sc->context() : core::Context::background();
    core::Result<core::process::RunAllResult> res =
        a.sequential ? runner->run_sequential(ctx, *specs) : runner->run_all(ctx, *specs);
    const int sig = sc ? sc->signal() : 0;
    if (sig != 0) g.log->info("signal {} received: stopped", sig);
    (void)(*core)->shutdown(core::Context::background());
    if (!res) {
        std::cerr << "coreproc pipeline: " << res.error().what() << "\n";
        return kExitUsage;
    }

    const auto& r = *res;
    if (g.json) {
        nlohmann::json j;
        j["file"] = a.file;
        j["ok"] = r.ok();
        j["passed"] = r.passed;
        j["failed"] = r.failed;
        j["allowed_failures"] = r.allowed_failures;
        j["skipped"] = r.skipped;
        j["duration_ms"] = millis(r.duration);
        j["steps"] = nlohmann::json::array();
        for (std::size_t i = 0; i < r.results.size(); ++i)
            j["steps"].push_back(to_json(r.results[i], (*specs)[i]));
        if (sig != 0) j["interrupted_by"] = core::process::signal_name(sig);
        std::cout << dump(j) << std::endl;
    } else {
        std::cout << "\n";
        std::vector<std::vector<std::string>> rows;
        for (const auto& x : r.results)
            rows.push_back({x.name, verdict(x), exit_text(x),
                            x.status == RunStatus::skipped ? "-" : human_duration(x.duration),
                            x.error});
        print_table(std::cout, {"STEP", "STATUS", "EXIT", "DURATION", "ERROR"}, rows);
        std::cout << "\n"
                  << r.results.size() << " steps: " << r.passed << " passed, " << r.failed
                  << " failed";
        if (r.allowed_failures) std::cout << " (" << r.allowed_failures << " allowed)";
        std::cout << ", " << r.skipped << " skipped in " << human_duration(r.duration) << "\n";
        for (const auto& x : r.results) {
            if (x.status != RunStatus::failed || x.output.empty()) continue;
            std::cout << "\n--- " << x.name << " (" << verdict(x) << "), last lines of output:\n"
                      << tail_lines(x.output, 20, "  | ");
        }
        std::cout.flush();
    }
    if (sig != 0) return kExitSignalBase + sig;
    return r.ok() ? kExitOk : kExitFailed;
}

}  // namespace coreproc
