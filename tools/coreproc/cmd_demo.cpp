// coreproc demo: a self-ending tour of the library (README command 1). It supervises two
// example daemons (a healthy one serving /health, and one that crashes and is restarted with
// growing backoff until its start limit), runs a small pipeline, drives process.start / list /
// get / kill through the Core's actions, and shuts everything down, printing what happened.
// Bounded: every wait has a deadline, so it ends in well under 20 s and leaves no process.
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <stop_token>

#include <spdlog/logger.h>

#include "commands.hpp"
#include "core/process/health.hpp"
#include "core/process/managed_process.hpp"
#include "core/process/runner.hpp"
#include "core/process/service.hpp"
#include "host.hpp"

namespace coreproc {

namespace cp = core::process;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// The example daemon program built beside coreproc (tools/examples/), or installed next to it.
std::string find_example_daemon() {
    const std::string self = self_path();
    if (self.empty()) return {};
    const fs::path dir = fs::path(self).parent_path();
    for (const fs::path& p :
         {dir / ".." / "examples" / "coreproc-example-daemon", dir / "coreproc-example-daemon"}) {
        std::error_code ec;
        if (fs::is_regular_file(p, ec)) return fs::weakly_canonical(p, ec).string();
    }
    return {};
}

// A loopback port nobody listens on right now (the library's own server binds port 0 and we
// read the port back). Another process could take it before the example daemon binds it; for
// a demo on a developer machine that is acceptable, and the daemon then fails visibly.
std::string free_loopback_addr() {
    cp::HealthOptions ho;
    ho.addr = "127.0.0.1:0";
    cp::HealthServer probe(ho);
    if (!probe.start()) return {};
    std::string addr = probe.addr();
    probe.stop();
    return addr;
}

class Demo {
  public:
    explicit Demo(const Globals& g) : g_(g) {}

    void section(const std::string& title) {
        if (g_.json) {
            std::cout << dump({{"section", title}}, -1) << std::endl;
        } else {
            std::cout << "\n==> " << title << std::endl;
        }
    }
    void say(const std::string& text) {
        if (g_.json) {
            std::cout << dump({{"say", text}}, -1) << std::endl;
        } else {
            std::cout << "    " << text << std::endl;
        }
    }

    int run(const DemoArgs& a) {
        const auto t0 = std::chrono::steady_clock::now();
        std::string registry = a.registry;
        bool own_registry = false;
        if (registry.empty()) {
            std::string tmpl = (fs::temp_directory_path() / "coreproc-demo-XXXXXX").string();
            if (!mkdtemp(tmpl.data())) {
                std::cerr << "coreproc demo: cannot create a temporary registry directory\n";
                return kExitFailed;
            }
            registry = tmpl;
            own_registry = true;
        }
        // Ctrl-C (or SIGTERM) ends the tour early but still cleanly: the sections check the
        // context, and every daemon and child is stopped on the way out.
        int code = kExitOk;
        const int sig = run_interruptible(g_.log, [&](const core::Context& ctx) {
            ctx_ = ctx;
            code = tour(registry);
        });
        if (sig != 0) code = kExitSignalBase + sig;
        if (own_registry) {
            std::error_code ec;
            fs::remove_all(registry, ec);
        }
        section("done in " + human_duration(std::chrono::steady_clock::now() - t0));
        return code;
    }

  private:
    int tour(const std::string& registry) {
        section("core: a Core with the process service");
        auto core = start_core(g_.log);
        if (!core) {
            std::cerr << "coreproc demo: " << core.error().what() << "\n";
            return kExitFailed;
        }
        auto svc = (*core)->service<cp::Service>("process");
        say("actions registered: " + join((*core)->actions()));

        int code = supervise(**core, *svc, registry);
        if (code == kExitOk && !interrupted()) code = pipeline(**core);
        if (code == kExitOk && !interrupted()) code = actions(**core, *svc);

        section("shutdown: stopping the Core (every managed process is stopped and reaped)");
        const auto left = svc->list(true);
        (void)(*core)->shutdown(core::Context::background());
        say(std::to_string(left.size()) + " process(es) were still running at shutdown");
        return code;
    }

    int supervise(core::Core& core, cp::Service& svc, const std::string& registry) {
        section("supervisor: two example daemons");
        const std::string example = find_example_daemon();
        const std::string addr = free_loopback_addr();
        std::vector<cp::DaemonSpec> specs(2);
        cp::DaemonSpec& web = specs[0];
        cp::DaemonSpec& flaky = specs[1];
        web.name = "web";
        flaky.name = "flaky";
        const bool with_health = !example.empty() && !addr.empty();
        if (with_health) {
            web.command = example;
            web.args = {"--name", "web", "--listen", addr};
            web.health.url = "http://" + addr + "/health";
            web.health.interval = 250ms;
            web.health.timeout = 500ms;
            web.health.failures = 2;
            web.health.start_grace = 100ms;
            flaky.command = example;
            flaky.args = {"--name", "flaky", "--crash-after", "300ms", "--exit-code", "3"};
        } else {
            say("(example daemon program not found: using sleep and sh instead)");
            web.command = "sleep";
            web.args = {"30"};
            flaky.command = "sh";
            flaky.args = {"-c", "sleep 0.3; exit 3"};
        }
        web.restart = cp::RestartPolicy::always;
        web.stop_timeout = 3s;
        flaky.restart = cp::RestartPolicy::on_failure;
        flaky.backoff.initial = 200ms;
        flaky.backoff.factor = 2;
        flaky.backoff.max = 2s;
        flaky.backoff.jitter = 0;
        flaky.start_limit.burst = 3;
        flaky.start_limit.interval = 20s;
        flaky.stop_timeout = 3s;
        say("web:   " + describe(web) + (with_health ? ", health " + web.health.url : ""));
        say("flaky: " + describe(flaky) +
            ", restart on-failure, backoff 200ms x2, start limit 3 in 20s");

        std::mutex mu;
        std::condition_variable cv;
        bool web_up = false;
        bool flaky_done = false;
        HostOptions ho;
        ho.code = "coreproc-demo";
        ho.project = "demo";
        ho.registry_dir = registry;
        ho.json = g_.json;
        ho.on_change = [&](const cp::DaemonStateChanged& ev) {
            std::lock_guard lk(mu);
            if (ev.name == "web" &&
                ev.to == (with_health ? cp::DaemonState::healthy : cp::DaemonState::running))
                web_up = true;
            if (ev.name == "flaky" && ev.to == cp::DaemonState::failed) flaky_done = true;
            cv.notify_all();
        };
        SupervisorHost host(core, svc, ho, g_.log);
        if (auto ok = host.add_all(specs); !ok) {
            std::cerr << "coreproc demo: " << ok.error().what() << "\n";
            return kExitFailed;
        }
        if (auto ok = host.start_all(); !ok) say("start: " + ok.error().what());
        {
            // Woken by the state changes, or by an interrupt cancelling the context.
            std::stop_callback wake(ctx_.token(), [&] {
                std::lock_guard lk(mu);
                cv.notify_all();
            });
            std::unique_lock lk(mu);
            if (!cv.wait_for(lk, 10s, [&] { return (web_up && flaky_done) || ctx_.done(); }))
                say("(not everything happened within 10s; carrying on)");
        }
        if (interrupted()) {
            section("interrupted: stopping every daemon");
            (void)host.stop_all();
            return kExitOk;
        }

        section("registry: the entries `coreproc daemons --registry " + registry + "` shows");
        cp::DaemonRegistry reg(registry);
        if (auto listed = reg.list(); listed) {
            for (const auto& e : listed->entries)
                say(e.code + "/" + e.daemon + "  pid " + std::to_string(e.pid) + "  health " +
                    (e.health.empty() ? "-" : e.health));
            if (listed->entries.empty()) say("(none)");
        }
        if (with_health) {
            auto resp = cp::http_get(addr, "/health", 1s);
            say("GET http://" + addr + "/health -> " +
                (resp ? std::to_string(resp->status) + " " + trim(resp->body)
                      : resp.error().what()));
        }
        section("status: what /status of `coreproc supervise` serves");
        const nlohmann::json status = host.status();
        for (const auto& d : status["daemons"])
            say(d["name"].get<std::string>() + ": " + d["state"].get<std::string>() +
                ", restarts " + std::to_string(d["restarts"].get<unsigned>()) +
                (d["last_exit"].is_null()
                     ? std::string()
                     : ", last exit code " + std::to_string(d["last_exit"]["code"].get<int>())));

        section("supervisor: stopping every daemon (SIGTERM to its group, SIGKILL after 3s)");
        if (auto ok = host.stop_all(); !ok) say("stop: " + ok.error().what());
        return kExitOk;
    }

    int pipeline(core::Core& core) {
        section("runner: a pipeline of five steps, two at a time");
        std::vector<cp::RunSpec> steps(5);
        // name, shell command line, after, allow_failure, timeout
        auto step = [](std::string name, std::string line, std::vector<std::string> after,
                       bool allow_failure, std::chrono::milliseconds timeout) {
            cp::RunSpec s;
            s.name = std::move(name);
            s.command = "sh";
            s.args = {"-c", std::move(line)};
            s.after = std::move(after);
            s.allow_failure = allow_failure;
            s.timeout = timeout;
            return s;
        };
        steps[0] = step("fetch", "echo fetching; sleep 0.2", {}, false, 0ms);
        steps[1] = step("lint", "echo lint ok", {}, false, 0ms);
        steps[2] = step("build", "echo compiling; sleep 0.3", {"fetch"}, false, 0ms);
        steps[3] = step("flaky-test", "echo 1 of 12 tests failed; exit 1", {"build"}, true, 5000ms);
        steps[4] = step("package", "echo packaged app.tar", {"build", "flaky-test"}, false, 5000ms);
        std::mutex mu;
        cp::RunnerOptions ro;
        ro.max_parallel = 2;
        ro.on_progress = [&](const cp::RunProgress& p) {
            std::lock_guard lk(mu);
            if (p.kind == cp::RunProgress::Kind::started)
                say(p.spec->name + " started");
            else
                say(p.spec->name + " " + cp::to_string(p.result->status) +
                    (p.result->allowed_failure ? " (failure allowed)" : "") +
                    (p.result->error.empty() ? "" : ": " + p.result->error));
        };
        auto runner = cp::Runner::create(core, ro);
        if (!runner) {
            std::cerr << "coreproc demo: " << runner.error().what() << "\n";
            return kExitFailed;
        }
        auto res = runner->run_all(ctx_, steps);
        if (!res) {
            std::cerr << "coreproc demo: " << res.error().what() << "\n";
            return kExitFailed;
        }
        say(std::to_string(res->passed) + " passed, " + std::to_string(res->failed) + " failed (" +
            std::to_string(res->allowed_failures) + " allowed), " + std::to_string(res->skipped) +
            " skipped in " + human_duration(res->duration) +
            (res->ok() ? ": pipeline ok" : ": pipeline FAILED"));
        return kExitOk;
    }

    int actions(core::Core& core, cp::Service& svc) {
        section("actions: process.start / list / get / kill through the Core");
        const auto ctx = core::Context::background();
        core::Options start{{"command", "sleep"}, {"args", std::vector<std::string>{"30"}}};
        auto started = core.action("process.start").run(ctx, start);
        if (!started || !started->is<std::string>()) {
            say("process.start: " +
                (started ? std::string("unexpected value") : started.error().what()));
            return kExitFailed;
        }
        const std::string id = *started->get<std::string>();
        say("process.start {command: sleep, args: [30]} -> " + id);
        if (auto list = core.action("process.list").run(ctx, {{"runningOnly", true}}); list) {
            if (auto ids = list->get<std::vector<std::string>>())
                say("process.list {runningOnly: true} -> [" + join(*ids) + "]");
        }
        auto show = [&](const char* when) {
            auto got = core.action("process.get").run(ctx, {{"id", id}});
            if (!got) {
                say(std::string("process.get ") + when + ": " + got.error().what());
                return;
            }
            if (const auto* info = got->get<cp::ProcessInfo>())
                say(std::string("process.get ") + when + " -> pid " + std::to_string(info->pid) +
                    ", " + cp::to_string(info->status) +
                    (info->signal ? ", signal " + std::to_string(info->signal) : std::string()));
        };
        show("(running)");
        if (auto k = core.action("process.kill").run(ctx, {{"id", id}}); !k)
            say("process.kill: " + k.error().what());
        else
            say("process.kill {id: " + id + "} -> ok (SIGTERM, SIGKILL after the grace period)");
        if (auto mp = svc.get(id); mp) (*mp)->wait_for(10s);
        show("(after kill)");
        return kExitOk;
    }

    static std::string describe(const cp::DaemonSpec& s) {
        std::string out = fs::path(s.command).filename().string();
        for (const auto& a : s.args) out += " " + a;
        return out;
    }
    static std::string join(const std::vector<std::string>& v) {
        std::string out;
        for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
        return out;
    }
    static std::string trim(std::string s) {
        while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
        return s;
    }

    bool interrupted() const { return ctx_.done(); }

    const Globals& g_;
    core::Context ctx_ = core::Context::background();
};

}  // namespace

int cmd_demo(const Globals& g, const DemoArgs& a) {
    Demo demo(g);
    return demo.run(a);
}

}  // namespace coreproc
