// coreproc pipeline FILE [STEP…]: a Runner spec file, read like a CI log while it runs: each
// step's output lines as they arrive, prefixed with the step's name, its start and end, and a
// summary table at the end. On a terminal (and without --json) a live view at the bottom shows
// the running steps with their elapsed time and a progress count. Exit 0 only when nothing
// failed (failures of steps with allow_failure excepted), 1 otherwise, 2 when the file is
// unreadable or invalid or a named step does not exist, 128+N after signal N.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/logger.h>

#include "commands.hpp"
#include "core/process/runner.hpp"
#include "core/process/service.hpp"
#include "core/process/signal_waiter.hpp"
#include "core/process/supervisor.hpp"
#include "core/signal_context.hpp"
#include "term.hpp"

namespace coreproc {

namespace {

using core::process::RunResult;
using core::process::RunSpec;
using core::process::RunStatus;
using Clock = std::chrono::steady_clock;

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

std::string command_line(const RunSpec& s) {
    // A shell step reads as what was written in the file.
    if (s.command == "/bin/sh" && s.args.size() == 2 && s.args[0] == "-c") return s.args[1];
    std::string out = s.command;
    for (const auto& a : s.args) out += " " + a;
    return out;
}

// RFC 3339 in UTC with milliseconds: "2026-12-01T19:31:08.123Z".
std::string rfc3339(std::chrono::system_clock::time_point t) {
    using namespace std::chrono;
    const auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
    const std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[80];  // room for any int the compiler can imagine in each field (-Wformat-truncation)
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms % 1000));
    return buf;
}

// The typed completion, as process.exec's Completed::status: how (kind, code, signal), why
// (reason) and its one description. null for a step that never ran (skipped).
nlohmann::json exit_status_json(const RunResult& r) {
    if (r.status == RunStatus::skipped) return nullptr;
    const core::process::ExitStatus& x = r.exit;
    nlohmann::json j;
    j["kind"] = core::process::to_string(x.kind);
    j["code"] = x.code;
    j["signal"] = x.signal;
    j["signal_name"] =
        x.signal != 0 ? nlohmann::json(core::process::signal_name(x.signal)) : nlohmann::json();
    j["core_dumped"] = x.core_dumped;
    j["reason"] = core::process::to_string(x.reason);
    j["timeout_ms"] = x.timeout.count();
    j["output_cut"] = x.output_cut;
    j["detail"] = x.detail;
    j["success"] = x.success();
    j["description"] = x.describe();
    return j;
}

nlohmann::json to_json(const RunResult& r, const RunSpec& s) {
    nlohmann::json j;
    j["name"] = r.name;
    j["command"] = s.command;
    j["args"] = s.args;
    if (!s.description.empty()) j["description"] = s.description;
    j["status"] = core::process::to_string(r.status);
    j["allowed_failure"] = r.allowed_failure;
    j["exit_code"] = r.exit_code;
    j["signal"] = r.signal;
    j["timed_out"] = r.timed_out;
    j["duration_ms"] = millis(r.duration);
    const bool started = r.started_at.time_since_epoch().count() != 0;
    j["started_at"] = started ? nlohmann::json(rfc3339(r.started_at)) : nlohmann::json(nullptr);
    j["finished_at"] = rfc3339(r.finished_at);
    j["output"] = r.output;
    j["error"] = r.error;
    // Each stream apart (issue 12), beside the combined "output".
    j["stdout"] = r.std_out;
    j["stderr"] = r.std_err;
    j["stdout_dropped"] = r.std_out_dropped;
    j["stderr_dropped"] = r.std_err_dropped;
    j["exit_status"] = exit_status_json(r);
    if (r.status == RunStatus::skipped) {
        j["usage"] = nullptr;
    } else {
        j["usage"] = {
            {"user_cpu_ms", std::chrono::duration<double, std::milli>(r.usage.user_cpu).count()},
            {"system_cpu_ms",
             std::chrono::duration<double, std::milli>(r.usage.system_cpu).count()},
            {"max_rss_bytes", r.usage.max_rss_bytes}};
    }
    return j;
}

// The error text without a leading "pipeline: ", which the command's own prefix already says.
std::string say(const core::Error& e) {
    std::string w = e.what();
    if (w.rfind("pipeline: ", 0) == 0) w.erase(0, 10);
    return w;
}

// ANSI SGR colours for the step names, cycled by step index.
constexpr const char* kNameColours[] = {"36", "35", "34", "33", "32", "96", "95", "94"};

// What the user sees while the pipeline runs. Every method is called from the Runner's
// threads (or the Service's event thread) and serialises on mu_. On a terminal the last
// lines of the screen are a live view (one line per running step, a progress count) that is
// erased before anything else is printed and drawn again after it.
class View {
  public:
    View(const std::vector<RunSpec>& specs, bool tty, bool colour, bool quiet)
        : specs_(specs), tty_(tty), colour_(colour), quiet_(quiet), t0_(Clock::now()) {
        for (const auto& s : specs) name_width_ = std::max(name_width_, s.name.size());
        started_at_.resize(specs.size());
        if (tty_) {
            width_ = terminal_width(1);
            // The elapsed times change while nothing else happens: redraw a few times a
            // second. Waits on the condition variable, so stop() ends it at once.
            ticker_ = std::thread([this] {
                std::unique_lock lk(mu_);
                while (!stopping_) {
                    cv_.wait_for(lk, std::chrono::milliseconds(250));
                    if (stopping_) break;
                    erase();
                    draw();
                    std::cout.flush();
                }
            });
        }
    }
    ~View() { stop(); }
    View(const View&) = delete;
    View& operator=(const View&) = delete;

    // Ends the live view (erased: the summary replaces it).
    void stop() {
        {
            std::lock_guard lk(mu_);
            if (stopping_) return;
            stopping_ = true;
            erase();
            std::cout.flush();
        }
        cv_.notify_all();
        if (ticker_.joinable()) ticker_.join();
    }

    void started(std::size_t i) {
        std::lock_guard lk(mu_);
        started_at_[i] = Clock::now();
        running_.push_back(i);
        if (!quiet_) print(stamp() + name(i, true) + "  started  " + command_line(specs_[i]));
        redraw();
    }

    void finished(std::size_t i, const RunResult& r) {
        std::lock_guard lk(mu_);
        running_.erase(std::remove(running_.begin(), running_.end(), i), running_.end());
        ++done_;
        if (r.status == RunStatus::passed) ++passed_;
        if (r.status == RunStatus::failed) ++failed_;
        const bool is_failure = r.status == RunStatus::failed;
        if (!quiet_ || is_failure) {
            std::string line =
                stamp() + name(i, true) + "  " + paint(verdict_colour(r), verdict(r));
            if (r.status != RunStatus::skipped) line += " in " + human_duration(r.duration);
            if (!r.error.empty()) line += ": " + r.error;
            print(line);
        }
        redraw();
    }

    void output(std::size_t i, std::string_view text) {
        if (quiet_) return;
        std::lock_guard lk(mu_);
        std::string line = name(i, true) + (colour_ ? " \x1b[2m|\x1b[0m " : " | ");
        line += text;
        print(line);
        // A step printing thousands of lines must not pay for thousands of redraws: between
        // lines the view is drawn at most every 100ms (the ticker draws it back meanwhile).
        if (Clock::now() - last_draw_ >= std::chrono::milliseconds(100)) draw();
        std::cout.flush();  // live: a line is on the screen (or in the pipe) when it arrives
    }

  private:
    std::string paint(const char* sgr, const std::string& text) const {
        if (!colour_ || sgr == nullptr) return text;
        return std::string("\x1b[") + sgr + "m" + text + "\x1b[0m";
    }
    static const char* verdict_colour(const RunResult& r) {
        if (r.status == RunStatus::passed) return "32";
        if (r.status == RunStatus::skipped) return "33";
        return r.allowed_failure ? "33" : "31";
    }
    // The step's name padded to the widest, coloured by index on a colour terminal.
    std::string name(std::size_t i, bool pad) const {
        std::string n = specs_[i].name;
        if (pad) n += std::string(name_width_ - n.size(), ' ');
        return paint(kNameColours[i % std::size(kNameColours)], n);
    }
    std::string stamp() const {
        char buf[32];
        std::snprintf(buf, sizeof buf, "[%7.2fs] ",
                      std::chrono::duration<double>(Clock::now() - t0_).count());
        return buf;
    }

    // Under mu_: one permanent line, above the live view.
    void print(const std::string& line) {
        erase();
        std::cout << line << '\n';
    }
    void redraw() {
        draw();
        std::cout.flush();
    }
    // Under mu_: removes the live view from the screen (cursor to its first line, clear below).
    void erase() {
        if (drawn_ == 0) return;
        std::cout << "\x1b[" << drawn_ << "F\x1b[J";
        drawn_ = 0;
    }
    // Under mu_: the live view, each line cut to the terminal width so none wraps (erase()
    // counts lines).
    void draw() {
        if (!tty_ || stopping_) return;
        const auto now = Clock::now();
        last_draw_ = now;
        auto emit = [&](std::string plain, const std::string& shown) {
            if (plain.size() >= width_) {
                std::cout << plain.substr(0, width_ > 1 ? width_ - 1 : 0) << '\n';
            } else {
                std::cout << shown << '\n';
            }
            ++drawn_;
        };
        for (std::size_t i : running_) {
            const std::string elapsed = human_duration(now - started_at_[i]);
            const std::string pad(name_width_ - specs_[i].name.size(), ' ');
            emit("  > " + specs_[i].name + pad + "  " + elapsed,
                 "  > " + name(i, false) + pad + "  " + elapsed);
        }
        std::string count = "[" + std::to_string(done_) + "/" + std::to_string(specs_.size()) +
                            "] " + std::to_string(running_.size()) + " running, " +
                            std::to_string(passed_) + " passed, " + std::to_string(failed_) +
                            " failed  " + human_duration(now - t0_);
        emit(count, paint("1", count));
    }

    const std::vector<RunSpec>& specs_;
    const bool tty_;
    const bool colour_;
    const bool quiet_;
    const Clock::time_point t0_;
    std::size_t name_width_ = 4;
    std::size_t width_ = 80;

    std::mutex mu_;
    std::condition_variable cv_;
    std::thread ticker_;
    bool stopping_ = false;
    std::vector<std::size_t> running_;  // in start order
    std::vector<Clock::time_point> started_at_;
    std::size_t drawn_ = 0;  // lines of the live view on the screen now
    Clock::time_point last_draw_{};
    std::size_t done_ = 0;
    std::size_t passed_ = 0;
    std::size_t failed_ = 0;
};

int dry_run(const Globals& g, const PipelineArgs& a, const std::vector<RunSpec>& specs) {
    auto order = core::process::Runner::order(specs);
    if (!order) {
        std::cerr << "coreproc pipeline: " << a.file << ": " << say(order.error()) << "\n";
        return kExitUsage;
    }
    if (g.json) {
        nlohmann::json j;
        j["file"] = a.file;
        j["order"] = nlohmann::json::array();
        for (std::size_t i : *order) {
            const RunSpec& s = specs[i];
            nlohmann::json x;
            x["name"] = s.name;
            x["command"] = s.command;
            x["args"] = s.args;
            x["dir"] = s.dir;
            x["after"] = s.after;
            x["allow_failure"] = s.allow_failure;
            x["timeout_ms"] = s.timeout.count();
            if (!s.description.empty()) x["description"] = s.description;
            j["order"].push_back(std::move(x));
        }
        std::cout << dump(j) << std::endl;
        return kExitOk;
    }
    std::vector<std::vector<std::string>> rows;
    std::size_t n = 0;
    for (std::size_t i : *order) {
        const RunSpec& s = specs[i];
        std::string after;
        for (const auto& d : s.after) after += (after.empty() ? "" : ",") + d;
        std::string what = command_line(s);
        if (!s.description.empty()) what += "  # " + s.description;
        rows.push_back({std::to_string(++n), s.name, after.empty() ? "-" : after, what});
    }
    std::cout << a.file << ": " << specs.size() << " steps, in the order they start with -j1"
              << " (with more jobs, steps whose dependencies are done start together):\n";
    print_table(std::cout, {"#", "STEP", "AFTER", "COMMAND"}, rows);
    return kExitOk;
}

}  // namespace

int cmd_pipeline(const Globals& g, const PipelineArgs& a) {
    auto loaded = core::process::load_pipeline(a.file);
    if (!loaded) {
        std::cerr << "coreproc pipeline: " << say(loaded.error()) << "\n";
        return kExitUsage;
    }
    std::vector<RunSpec> specs = std::move(*loaded);
    if (!a.targets.empty()) {
        auto picked = core::process::select_steps(specs, a.targets);
        if (!picked) {
            std::cerr << "coreproc pipeline: " << a.file << ": " << say(picked.error()) << "\n";
            return kExitUsage;
        }
        specs = std::move(*picked);
    }
    if (a.dry_run) return dry_run(g, a, specs);

    auto core = start_core(g.log);
    if (!core) {
        std::cerr << "coreproc pipeline: " << core.error().what() << "\n";
        return kExitFailed;
    }

    // --json keeps stdout for the one JSON document: no live view, no lines.
    const bool tty = !g.json && !a.plain && is_terminal(1);
    std::optional<View> view;
    core::process::RunnerOptions ro;
    ro.max_parallel = a.jobs;
    ro.fail_fast = a.fail_fast;
    if (!g.json) {
        view.emplace(specs, tty, tty && want_colour(1), a.quiet);
        ro.on_progress = [&](const core::process::RunProgress& p) {
            if (p.kind == core::process::RunProgress::Kind::started)
                view->started(p.index);
            else
                view->finished(p.index, *p.result);
        };
        if (!a.quiet)
            ro.on_output = [&](const core::process::RunOutput& o) {
                view->output(o.index, o.line);
            };
    }
    auto runner = core::process::Runner::create(**core, ro);
    if (!runner) {
        std::cerr << "coreproc pipeline: " << runner.error().what() << "\n";
        return kExitFailed;
    }

    // SIGINT (Ctrl-C), SIGTERM or SIGHUP cancels ctx: the Runner stops its running steps (each
    // in a process group of its own, killed whole) and skips the rest. main() blocked them
    // before any thread started.
    auto sc = core::SignalContext::create(
        {core::process::signal_int(), core::process::signal_term(), core::process::signal_hup()});
    if (!sc) g.log->warn("signals will not be handled: {}", sc.error().what());
    const core::Context ctx = sc ? sc->context() : core::Context::background();
    core::Result<core::process::RunAllResult> res =
        a.sequential ? runner->run_sequential(ctx, specs) : runner->run_all(ctx, specs);
    const int sig = sc ? sc->signal() : 0;
    if (view) view->stop();
    if (sig != 0) g.log->info("signal {} received: stopped", sig);
    (void)(*core)->shutdown(core::Context::background());
    if (!res) {
        std::cerr << "coreproc pipeline: " << a.file << ": " << say(res.error()) << "\n";
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
            j["steps"].push_back(to_json(r.results[i], specs[i]));
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
