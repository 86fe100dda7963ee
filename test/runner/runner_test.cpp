// Runner: dependency order, bounded parallelism, skip propagation, allowed failures, the
// validation done before anything runs, run_sequential / run_parallel, and the pipeline reader.
// Children are the helper program (test/helper/child.cpp). Parallelism is observed through the
// progress callback (a counter of running specs), never through timing.
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>
#include <cerrno>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include "core/process/runner.hpp"
#include "core/process/service.hpp"
#include "guard.hpp"
#include "sys/fault.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::ContainsSubstring;
using core::Context;
using core::process::RunAllResult;
using core::process::Runner;
using core::process::RunnerOptions;
using core::process::RunProgress;
using core::process::RunSpec;
using core::process::RunStatus;

namespace {

// A started Core with the process service; shut down (every child reaped) on destruction.
struct Host {
    std::shared_ptr<core::Core> core;
    core::process::Service* svc = nullptr;
    Host() {
        auto c = core::Core::create({core::process::register_service});
        REQUIRE(c);
        core = *c;
        REQUIRE(core->startup(Context::background()));
        svc = core->service<core::process::Service>("process").get();
        REQUIRE(svc != nullptr);
    }
    ~Host() { (void)core->shutdown(Context::background()); }
};

RunSpec step(std::string name, std::vector<std::string> args, std::vector<std::string> after = {}) {
    RunSpec s;
    s.name = std::move(name);
    s.command = core::test::child_path();
    s.args = std::move(args);
    s.after = std::move(after);
    return s;
}

// Records the progress events: start/finish order and the peak of specs running at once.
// With want_peak > 0, a started spec waits (bounded) until want_peak specs have been seen
// running together, which makes "they ran in parallel" deterministic without any timing.
struct Recorder {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::string> started;
    std::vector<std::string> finished;
    std::vector<std::string> log;  // "started:x" and "finished:x", in callback order
    std::map<std::string, RunStatus> status_at_finish;
    int running = 0;
    int peak = 0;
    int want_peak = 0;
    bool peak_timed_out = false;

    RunnerOptions options(std::size_t max_parallel) {
        RunnerOptions o;
        o.max_parallel = max_parallel;
        o.on_progress = [this](const RunProgress& p) { on(p); };
        return o;
    }
    void on(const RunProgress& p) {
        std::unique_lock lk(mu);
        if (p.kind == RunProgress::Kind::started) {
            started.push_back(p.spec->name);
            log.push_back("started:" + p.spec->name);
            peak = std::max(peak, ++running);
            cv.notify_all();
            if (want_peak > 0 && !cv.wait_for(lk, 10s, [&] { return peak >= want_peak; }))
                peak_timed_out = true;
        } else {
            REQUIRE(p.result != nullptr);
            finished.push_back(p.spec->name);
            log.push_back("finished:" + p.spec->name);
            status_at_finish[p.spec->name] = p.result->status;
            // A skipped spec never started: only started ones count as running.
            if (std::find(started.begin(), started.end(), p.spec->name) != started.end()) --running;
        }
    }
    std::size_t pos(const std::vector<std::string>& v, const std::string& name) {
        auto it = std::find(v.begin(), v.end(), name);
        return it == v.end() ? SIZE_MAX : static_cast<std::size_t>(it - v.begin());
    }
};

const core::process::RunResult& by_name(const RunAllResult& r, const std::string& name) {
    for (const auto& x : r.results)
        if (x.name == name) return x;
    FAIL("no result named " << name);
    return r.results.front();
}

std::string temp_file(const std::string& name, const std::string& text) {
    auto p = std::filesystem::temp_directory_path() /
             ("runner-test-" + std::to_string(::getpid()) + "-" + name);
    std::ofstream(p) << text;
    return p.string();
}

}  // namespace

TEST_CASE("Runner_RunAll_Good", "[runner]") {
    CORE_LEAK_GUARD();
    Host h;

    SECTION("dependencies finish before their dependents start; results keep input order") {
        Recorder rec;
        Runner runner(*h.svc, rec.options(4));
        // Input order deliberately differs from a valid execution order.
        std::vector<RunSpec> specs = {
            step("deploy", {"print", "deploy"}, {"test", "build"}),
            step("test", {"print", "test"}, {"build"}),
            step("build", {"print", "build"}, {"fetch"}),
            step("fetch", {"print", "fetch"}),
            step("docs", {"print", "docs"}),
        };
        auto r = runner.run_all(Context::background(), specs);
        REQUIRE(r);
        REQUIRE(r->results.size() == 5);
        CHECK(r->passed == 5);
        CHECK(r->failed == 0);
        CHECK(r->skipped == 0);
        CHECK(r->ok());
        for (std::size_t i = 0; i < specs.size(); ++i) {
            CHECK(r->results[i].name == specs[i].name);
            CHECK(r->results[i].status == RunStatus::passed);
            CHECK(r->results[i].exit_code == 0);
            CHECK(r->results[i].output == specs[i].args[1] + "\n");
            CHECK(r->results[i].error.empty());
        }
        // A dependent starts only after its dependency's finished event was delivered.
        std::lock_guard lk(rec.mu);
        for (const auto& s : specs) {
            for (const auto& dep : s.after) {
                CHECK(rec.pos(rec.log, "finished:" + dep) < rec.pos(rec.log, "started:" + s.name));
                CHECK(rec.pos(rec.finished, dep) < rec.pos(rec.finished, s.name));
            }
        }
        CHECK(rec.started.size() == 5);
        CHECK(rec.finished.size() == 5);
        CHECK(h.svc->list().empty());  // the Runner removes its finished processes
    }

    SECTION("independent specs run in parallel, never more than max_parallel") {
        for (std::size_t bound : {2u, 3u}) {
            Recorder rec;
            rec.want_peak = static_cast<int>(bound);
            Runner runner(*h.svc, rec.options(bound));
            std::vector<RunSpec> specs;
            for (int i = 0; i < 7; ++i)
                specs.push_back(step("s" + std::to_string(i), {"sleep", "20"}));
            auto r = runner.run_all(Context::background(), specs);
            REQUIRE(r);
            CHECK(r->passed == 7);
            CHECK_FALSE(rec.peak_timed_out);
            CHECK(rec.peak == static_cast<int>(bound));
        }
    }

    SECTION("max_parallel 1: one at a time, ready specs in input order") {
        Recorder rec;
        Runner runner(*h.svc, rec.options(1));
        CHECK(runner.max_parallel() == 1);
        auto r = runner.run_all(
            Context::background(),
            {step("c", {"exit", "0"}, {"a"}), step("a", {"exit", "0"}), step("b", {"exit", "0"})});
        REQUIRE(r);
        CHECK(rec.peak == 1);
        // a is the only ready spec; once it is done, c (input position 0) precedes b.
        CHECK(rec.started == std::vector<std::string>{"a", "c", "b"});
    }

    SECTION("default max_parallel is at least 1; an empty list is an empty result") {
        Runner runner(*h.svc);
        CHECK(runner.max_parallel() >= 1);
        auto r = runner.run_all(Context::background(), {});
        REQUIRE(r);
        CHECK(r->results.empty());
        CHECK(r->ok());
    }

    SECTION("dir, env and allow_failure of a spec reach the child") {
        Runner runner(*h.svc);
        RunSpec cwd = step("cwd", {"cwd"});
        cwd.dir = "/";
        RunSpec env = step("env", {"env", "RUNNER_TEST_VAR"});
        env.env = {"RUNNER_TEST_VAR=hello"};
        auto r = runner.run_all(Context::background(), {cwd, env});
        REQUIRE(r);
        CHECK(by_name(*r, "cwd").output == "/\n");
        CHECK(by_name(*r, "env").output == "RUNNER_TEST_VAR=hello\n");
    }

    SECTION("a spec's Command is RunOptions': env_mode replace and unset_env reach the child") {
        Runner runner(*h.svc);
        RunSpec only;
        only.name = "only";
        only.command = "env";  // /usr/bin/env prints the whole environment
        only.env = {"ONLY=1"};
        only.env_mode = core::process::EnvMode::replace;
        RunSpec gone = step("gone", {"env", "HOME"});
        gone.unset_env = {"HOME"};
        auto r = runner.run_all(Context::background(), {only, gone});
        REQUIRE(r);
        CHECK(by_name(*r, "only").std_out == "ONLY=1\n");
        CHECK(by_name(*r, "gone").output == "HOME=\n");
    }

    SECTION("Runner::create finds the Core's process service") {
        auto runner = Runner::create(*h.core);
        REQUIRE(runner);
        auto r = runner->run_all(Context::background(), {step("one", {"print", "x"})});
        REQUIRE(r);
        CHECK(r->passed == 1);
    }
}

TEST_CASE("Runner_RunAll_Bad", "[runner]") {
    CORE_LEAK_GUARD();
    Host h;
    Recorder rec;
    Runner runner(*h.svc, rec.options(2));
    auto check_error = [&](const std::vector<RunSpec>& specs, const std::string& want) {
        auto r = runner.run_all(Context::background(), specs);
        REQUIRE_FALSE(r);
        CHECK(r.error().op() == "runner");
        CHECK_THAT(r.error().what(), ContainsSubstring(want));
        auto v = Runner::validate(specs);
        REQUIRE_FALSE(v);
        CHECK(v.error().what() == r.error().what());
    };

    SECTION("a dependency cycle is reported with its path") {
        check_error({step("a", {"exit", "0"}, {"c"}), step("b", {"exit", "0"}, {"a"}),
                     step("c", {"exit", "0"}, {"b"}), step("d", {"exit", "0"})},
                    "dependency cycle:");
        auto r = runner.run_all(Context::background(),
                                {step("a", {"exit", "0"}, {"c"}), step("b", {"exit", "0"}, {"a"}),
                                 step("c", {"exit", "0"}, {"b"})});
        REQUIRE_FALSE(r);
        for (const char* name : {"\"a\"", "\"b\"", "\"c\""})
            CHECK_THAT(r.error().what(), ContainsSubstring(name));
    }
    SECTION("a spec waiting for itself is a cycle") {
        check_error({step("self", {"exit", "0"}, {"self"})},
                    "dependency cycle: \"self\" -> \"self\"");
    }
    SECTION("a cycle behind an acyclic prefix is found") {
        check_error({step("x", {"exit", "0"}, {"y"}), step("y", {"exit", "0"}, {"z"}),
                     step("z", {"exit", "0"}, {"y"})},
                    "dependency cycle: \"y\" -> \"z\" -> \"y\"");
    }
    SECTION("an unknown dependency names both steps") {
        check_error({step("build", {"exit", "0"}, {"fetch"})},
                    "step \"build\": unknown dependency \"fetch\"");
    }
    SECTION("duplicate names") {
        check_error({step("a", {"exit", "0"}), step("a", {"exit", "1"})},
                    "duplicate step name \"a\" (steps #1 and #2)");
    }
    SECTION("empty name") {
        check_error({step("", {"exit", "0"})}, "step #1: empty name");
    }
    SECTION("empty command") {
        RunSpec s = step("nocmd", {});
        s.command.clear();
        check_error({s}, "step \"nocmd\": empty command");
    }
    // Nothing ran for any of them.
    std::lock_guard lk(rec.mu);
    CHECK(rec.started.empty());
    CHECK(rec.finished.empty());
    CHECK(h.svc->list().empty());
}

TEST_CASE("Runner_RunAll_Ugly", "[runner]") {
    CORE_LEAK_GUARD();
    Host h;
    Recorder rec;
    Runner runner(*h.svc, rec.options(2));

    SECTION("a failure skips its dependents transitively; independent specs still run") {
        auto r =
            runner.run_all(Context::background(),
                           {step("build", {"exit", "3"}), step("test", {"exit", "0"}, {"build"}),
                            step("deploy", {"exit", "0"}, {"test"}), step("lint", {"print", "ok"}),
                            step("both", {"exit", "0"}, {"lint", "build"})});
        REQUIRE(r);
        CHECK(r->passed == 1);
        CHECK(r->failed == 1);
        CHECK(r->skipped == 3);
        CHECK_FALSE(r->ok());
        const auto& build = by_name(*r, "build");
        CHECK(build.status == RunStatus::failed);
        CHECK(build.exit_code == 3);
        CHECK(build.error == "exited with code 3");
        CHECK_FALSE(build.allowed_failure);
        CHECK(by_name(*r, "test").status == RunStatus::skipped);
        CHECK(by_name(*r, "test").error == "dependency \"build\" failed");
        CHECK(by_name(*r, "deploy").status == RunStatus::skipped);
        CHECK(by_name(*r, "deploy").error == "dependency \"test\" was skipped");
        CHECK(by_name(*r, "both").status == RunStatus::skipped);
        CHECK(by_name(*r, "lint").status == RunStatus::passed);
        std::lock_guard lk(rec.mu);
        // Skipped specs are reported finished, never started.
        CHECK(rec.pos(rec.started, "test") == SIZE_MAX);
        CHECK(rec.pos(rec.finished, "deploy") != SIZE_MAX);
        CHECK(rec.status_at_finish["deploy"] == RunStatus::skipped);
    }

    SECTION("an allowed failure lets its dependents run and the run stay ok") {
        RunSpec flaky = step("flaky", {"exit", "1"});
        flaky.allow_failure = true;
        auto r = runner.run_all(Context::background(),
                                {flaky, step("after", {"print", "ran"}, {"flaky"})});
        REQUIRE(r);
        CHECK(r->failed == 1);
        CHECK(r->allowed_failures == 1);
        CHECK(r->passed == 1);
        CHECK(r->skipped == 0);
        CHECK(r->ok());
        CHECK(by_name(*r, "flaky").allowed_failure);
        CHECK(by_name(*r, "flaky").status == RunStatus::failed);
        CHECK(by_name(*r, "after").output == "ran\n");
    }

    SECTION("a command that cannot start fails with the Service's error") {
        RunSpec missing = step("missing", {});
        missing.command = "/nonexistent/runner-test-command";
        auto r = runner.run_all(Context::background(),
                                {missing, step("next", {"exit", "0"}, {"missing"})});
        REQUIRE(r);
        const auto& m = by_name(*r, "missing");
        CHECK(m.status == RunStatus::failed);
        CHECK(m.exit_code == -1);
        CHECK_THAT(m.error, ContainsSubstring("/nonexistent/runner-test-command"));
        CHECK(by_name(*r, "next").status == RunStatus::skipped);
    }

    SECTION("killed by a signal, timed out") {
        RunSpec slow = step("slow", {"sleep", "30000"});
        slow.timeout = 100ms;
        auto r = runner.run_all(Context::background(), {step("crash", {"kill-self", "9"}), slow});
        REQUIRE(r);
        const auto& crash = by_name(*r, "crash");
        CHECK(crash.status == RunStatus::failed);
        CHECK(crash.signal == 9);
        CHECK(crash.exit_code == -1);
        CHECK(crash.error == "killed by signal 9 (SIGKILL)");
        const auto& s = by_name(*r, "slow");
        CHECK(s.status == RunStatus::failed);
        CHECK(s.timed_out);
        CHECK(s.error == "timed out after 100ms");
    }

    SECTION("a cancelled context kills what runs and skips the rest") {
        const Context ctx = Context::background().with_cancel();
        RunnerOptions o;
        o.max_parallel = 1;
        Runner r2(*h.svc, o);
        // Cancel once the long step's process exists.
        std::thread canceller([&] {
            core::test::eventually([&] { return !h.svc->list(true).empty(); }, 10s);
            ctx.cancel();
        });
        auto r =
            r2.run_all(ctx, {step("long", {"sleep", "30000"}),
                             step("next", {"exit", "0"}, {"long"}), step("other", {"exit", "0"})});
        canceller.join();
        REQUIRE(r);
        CHECK(by_name(*r, "long").status == RunStatus::failed);
        CHECK(by_name(*r, "long").error == "context cancelled");
        CHECK(by_name(*r, "next").status == RunStatus::skipped);
        CHECK(by_name(*r, "other").status == RunStatus::skipped);
        CHECK_THAT(by_name(*r, "other").error, ContainsSubstring("context cancelled"));
        CHECK_FALSE(r->ok());
        CHECK(h.svc->list(true).empty());
    }

    SECTION("a timeout kills the step's whole group, grandchildren included") {
        RunSpec spec = step("tree", {"grandchild-wait", "30000"});
        spec.timeout = 200ms;
        auto r = runner.run_all(Context::background(), {spec});
        REQUIRE(r);
        const auto& t = by_name(*r, "tree");
        CHECK(t.timed_out);
        const auto at = t.output.find("gc ");
        REQUIRE(at != std::string::npos);
        const int gc = std::stoi(t.output.substr(at + 3));
        CHECK(core::test::eventually(
            [&] {
                std::ifstream f("/proc/" + std::to_string(gc) + "/stat");
                std::string line;
                if (!std::getline(f, line)) return true;
                const auto close = line.rfind(')');
                return close != std::string::npos && line.at(close + 2) == 'Z';
            },
            10s));
    }

    SECTION("spawn failures (fault-injected EAGAIN) fail those steps only; nothing leaks") {
        // One at a time, so the two failing spawns are those of a and b.
        Runner one(*h.svc, RunnerOptions{1, {}});
        core::sys::fault::Scoped fault("spawn", EAGAIN, 2);
        auto r = one.run_all(Context::background(),
                             {step("a", {"exit", "0"}), step("b", {"exit", "0"}),
                              step("c", {"exit", "0"}, {"a"}), step("d", {"print", "ok"})});
        REQUIRE(r);
        CHECK(core::sys::fault::fired("spawn") == 2);
        CHECK(r->failed == 2);
        for (const auto& x : r->results) {
            if (x.status != RunStatus::failed) continue;
            CHECK_THAT(x.error, ContainsSubstring("Resource temporarily unavailable"));
        }
        CHECK(by_name(*r, "a").status == RunStatus::failed);
        CHECK(by_name(*r, "b").status == RunStatus::failed);
        CHECK(by_name(*r, "c").status == RunStatus::skipped);
        CHECK(by_name(*r, "d").status == RunStatus::passed);
        CHECK(by_name(*r, "d").output == "ok\n");
    }

    SECTION("a throwing progress callback does not stop the run") {
        RunnerOptions o;
        o.on_progress = [](const RunProgress&) { throw std::runtime_error("callback"); };
        Runner r2(*h.svc, o);
        auto r = r2.run_all(Context::background(),
                            {step("a", {"exit", "0"}), step("b", {"exit", "0"}, {"a"})});
        REQUIRE(r);
        CHECK(r->passed == 2);
    }

    SECTION("large output is kept, byte-exact") {
        auto r = runner.run_all(Context::background(), {step("big", {"bytes", "300000", "z"})});
        REQUIRE(r);
        CHECK(by_name(*r, "big").output == std::string(300000, 'z'));
    }
}

TEST_CASE("Runner_RunSequential_Good", "[runner]") {
    CORE_LEAK_GUARD();
    Host h;
    Recorder rec;
    Runner runner(*h.svc, rec.options(4));
    // `after` is ignored: input order is the order.
    auto r = runner.run_sequential(
        Context::background(),
        {step("c", {"print", "c"}, {"a"}), step("b", {"print", "b"}), step("a", {"print", "a"})});
    REQUIRE(r);
    CHECK(r->passed == 3);
    CHECK(rec.peak == 1);
    CHECK(rec.started == std::vector<std::string>{"c", "b", "a"});
    CHECK(r->results[0].output == "c\n");
}

TEST_CASE("Runner_RunSequential_Bad", "[runner]") {
    CORE_LEAK_GUARD();
    Host h;
    Runner runner(*h.svc);

    SECTION("the first failure skips the rest") {
        auto r = runner.run_sequential(Context::background(),
                                       {step("one", {"exit", "0"}), step("two", {"exit", "4"}),
                                        step("three", {"exit", "0"}), step("four", {"exit", "0"})});
        REQUIRE(r);
        CHECK(r->passed == 1);
        CHECK(r->failed == 1);
        CHECK(r->skipped == 2);
        CHECK(r->results[1].exit_code == 4);
        CHECK(r->results[2].error == "step \"two\" failed");
        CHECK(r->results[3].error == "step \"three\" was skipped");
    }
    SECTION("an allowed failure does not stop it") {
        RunSpec two = step("two", {"exit", "4"});
        two.allow_failure = true;
        auto r = runner.run_sequential(
            Context::background(), {step("one", {"exit", "0"}), two, step("three", {"exit", "0"})});
        REQUIRE(r);
        CHECK(r->passed == 2);
        CHECK(r->allowed_failures == 1);
        CHECK(r->ok());
    }
    SECTION("invalid specs are refused before anything runs") {
        auto r = runner.run_sequential(Context::background(),
                                       {step("x", {"exit", "0"}), step("x", {"exit", "0"})});
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error().what(), ContainsSubstring("duplicate step name \"x\""));
    }
}

TEST_CASE("Runner_RunParallel_Good", "[runner]") {
    CORE_LEAK_GUARD();
    Host h;
    Recorder rec;
    rec.want_peak = 3;
    Runner runner(*h.svc, rec.options(3));
    std::vector<RunSpec> specs;
    for (int i = 0; i < 6; ++i) specs.push_back(step("p" + std::to_string(i), {"sleep", "10"}));
    specs[5].after = {"p0"};  // ignored by run_parallel
    auto r = runner.run_parallel(Context::background(), specs);
    REQUIRE(r);
    CHECK(r->passed == 6);
    CHECK_FALSE(rec.peak_timed_out);
    CHECK(rec.peak == 3);
}

TEST_CASE("Runner_RunParallel_Bad", "[runner]") {
    CORE_LEAK_GUARD();
    Host h;
    Runner runner(*h.svc, RunnerOptions{2, {}});
    SECTION("failures do not stop the others") {
        auto r = runner.run_parallel(Context::background(),
                                     {step("a", {"exit", "1"}), step("b", {"exit", "0"}),
                                      step("c", {"exit", "2"}), step("d", {"exit", "0"})});
        REQUIRE(r);
        CHECK(r->passed == 2);
        CHECK(r->failed == 2);
        CHECK(r->skipped == 0);
    }
    SECTION("invalid specs are refused") {
        RunSpec s = step("a", {});
        s.command.clear();
        auto r = runner.run_parallel(Context::background(), {s});
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error().what(), ContainsSubstring("empty command"));
    }
}

TEST_CASE("Runner_Create_Bad", "[runner]") {
    CORE_LEAK_GUARD();
    auto c = core::Core::create({});
    REQUIRE(c);
    auto r = Runner::create(**c);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().what(), ContainsSubstring("no process service"));
}

TEST_CASE("Runner_ParsePipeline_Good", "[runner]") {
    CORE_LEAK_GUARD();
    auto specs = core::process::parse_pipeline(R"({
      "description": "ci",
      "steps": [
        {"name": "fetch", "command": "git", "args": ["fetch", "--all"], "timeout": "1m"},
        {"name": "build", "command": "make", "args": ["-j2"], "dir": "/src",
         "env": ["CC=gcc", "V=1"], "after": ["fetch"], "timeout": 2500},
        {"name": "test", "command": "make", "after": "build", "allow_failure": true,
         "env": {"CTEST_OUTPUT_ON_FAILURE": "1"}, "description": "may flake"}
      ]})",
                                               "ci.json");
    REQUIRE(specs);
    REQUIRE(specs->size() == 3);
    const RunSpec& f = (*specs)[0];
    CHECK(f.name == "fetch");
    CHECK(f.command == "git");
    CHECK(f.args == std::vector<std::string>{"fetch", "--all"});
    CHECK(f.timeout == 60000ms);
    CHECK_FALSE(f.allow_failure);
    const RunSpec& b = (*specs)[1];
    CHECK(b.dir == "/src");
    CHECK(b.env == std::vector<std::string>{"CC=gcc", "V=1"});
    CHECK(b.after == std::vector<std::string>{"fetch"});
    CHECK(b.timeout == 2500ms);
    const RunSpec& t = (*specs)[2];
    CHECK(t.after == std::vector<std::string>{"build"});
    CHECK(t.allow_failure);
    CHECK(t.env == std::vector<std::string>{"CTEST_OUTPUT_ON_FAILURE=1"});
    CHECK(t.timeout == 0ms);
}

TEST_CASE("Runner_ParsePipelineEnvMode_Good", "[runner]") {
    CORE_LEAK_GUARD();
    auto specs = core::process::parse_pipeline(R"({"steps": [
        {"name": "a", "command": "env", "env": ["X=1"], "env_mode": "replace",
         "unset_env": ["HOME"]}]})");
    REQUIRE(specs);
    CHECK((*specs)[0].env_mode == core::process::EnvMode::replace);
    CHECK((*specs)[0].unset_env == std::vector<std::string>{"HOME"});
    auto bad = core::process::parse_pipeline(
        R"({"steps": [{"name": "a", "command": "env", "env_mode": "none"}]})", "p.json");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().what().find("key \"env_mode\": \"none\": want \"merge\" or \"replace\"") !=
          std::string::npos);
}

TEST_CASE("Runner_ParsePipeline_Bad", "[runner]") {
    CORE_LEAK_GUARD();
    auto err = [](const std::string& text) {
        auto r = core::process::parse_pipeline(text, "p.json");
        REQUIRE_FALSE(r);
        CHECK(r.error().op() == "pipeline");
        return r.error().what();
    };
    CHECK_THAT(err("{"), ContainsSubstring("p.json: invalid JSON"));
    CHECK_THAT(err("[]"), ContainsSubstring("p.json: want a JSON object"));
    CHECK_THAT(err("{}"), ContainsSubstring("p.json: key \"steps\": missing"));
    CHECK_THAT(err(R"({"steps": {}})"), ContainsSubstring("key \"steps\": want array, got object"));
    CHECK_THAT(err(R"({"steps": [], "step": 1})"), ContainsSubstring("key \"step\": unknown key"));
    // Running nothing and saying "passed" would hide a broken generator (issue 17).
    CHECK_THAT(err(R"({"steps": []})"), ContainsSubstring("p.json: key \"steps\": empty"));
    CHECK_THAT(err(R"({"steps": [3]})"), ContainsSubstring("steps[0]: want object, got integer"));
    CHECK_THAT(err(R"({"steps": [{"command": "x"}]})"),
               ContainsSubstring("steps[0]: key \"name\": missing"));
    CHECK_THAT(err(R"({"steps": [{"name": "a"}]})"),
               ContainsSubstring("steps[0] (\"a\"): key \"command\": missing"));
    CHECK_THAT(err(R"({"steps": [{"name": "a", "command": ""}]})"),
               ContainsSubstring("key \"command\": empty"));
    CHECK_THAT(err(R"({"steps": [{"name": 5, "command": "x"}]})"),
               ContainsSubstring("key \"name\": want string, got integer"));
    CHECK_THAT(
        err(R"({"steps": [{"name": "a", "command": "x", "args": "y"}]})"),
        ContainsSubstring("steps[0] (\"a\"): key \"args\": want array of strings, got string"));
    CHECK_THAT(err(R"({"steps": [{"name": "a", "command": "x", "args": ["y", 1]}]})"),
               ContainsSubstring("key \"args\": element 1: want string, got integer"));
    CHECK_THAT(err(R"({"steps": [{"name": "a", "command": "x", "env": ["NOEQUALS"]}]})"),
               ContainsSubstring("key \"env\": \"NOEQUALS\": want K=V"));
    CHECK_THAT(err(R"({"steps": [{"name": "a", "command": "x", "env": {"K": 1}}]})"),
               ContainsSubstring("key \"env\": \"K\": want string, got integer"));
    CHECK_THAT(err(R"({"steps": [{"name": "a", "command": "x", "allow_failure": "yes"}]})"),
               ContainsSubstring("key \"allow_failure\": want boolean, got string"));
    CHECK_THAT(err(R"({"steps": [{"name": "a", "command": "x", "timeout": "soon"}]})"),
               ContainsSubstring("key \"timeout\": not a duration: \"soon\""));
    CHECK_THAT(err(R"({"steps": [{"name": "a", "command": "x", "timeout": -5}]})"),
               ContainsSubstring("key \"timeout\": negative duration"));
    CHECK_THAT(err(R"({"steps": [{"name": "a", "command": "x", "timeout": 1.5}]})"),
               ContainsSubstring("key \"timeout\": want a duration"));
    CHECK_THAT(err(R"({"steps": [{"name": "a", "command": "x", "allow_faliure": true}]})"),
               ContainsSubstring("steps[0] (\"a\"): key \"allow_faliure\": unknown key"));
    CHECK_THAT(err(R"({"steps": [{"name": "a", "command": "x", "after": ["zz"]}]})"),
               ContainsSubstring("p.json: step \"a\": unknown dependency \"zz\""));
    CHECK_THAT(err(R"({"steps": [{"name": "a", "command": "x", "after": "b"},
                                 {"name": "b", "command": "x", "after": "a"}]})"),
               ContainsSubstring("p.json: dependency cycle"));
    CHECK_THAT(err(R"({"steps": [{"name": "a", "command": "x"}, {"name": "a", "command": "y"}]})"),
               ContainsSubstring("duplicate step name \"a\""));
}

TEST_CASE("Runner_ParsePipeline_Ugly", "[runner]") {
    CORE_LEAK_GUARD();
    // Hostile inputs give Errors, never exceptions or crashes.
    const std::vector<std::string> inputs = {
        "",
        std::string("{\"steps\": [\0]}", 14),
        "{\"steps\": [{\"name\": \"\xff\xfe\", \"command\": \"x\"}]}",
        std::string(100000, '['),
        "{\"steps\": [{\"name\": \"a\", \"command\": \"x\", \"timeout\": 18446744073709551615}]}",
        "{\"steps\": [{\"name\": \"a\", \"command\": \"x\", \"timeout\": \"1e300h\"}]}",
        "{\"steps\": [{\"name\": \"a\", \"command\": \"x\", \"env\": {\"\": \"v\"}}]}",
        "{\"steps\": [{\"name\": \"a\", \"command\": \"x\", \"env\": {\"A=B\": \"v\"}}]}",
        "{\"steps\": null}",
        "{\"steps\": [{\"name\": \"a\", \"command\": \"x\", \"after\": [null]}]}",
    };
    for (const auto& text : inputs) {
        INFO("input: " << text.substr(0, 80));
        auto r = core::process::parse_pipeline(text, "ugly.json");
        CHECK_FALSE(r);
        if (!r) CHECK_THAT(r.error().what(), ContainsSubstring("ugly.json"));
    }
    // Valid but odd: many steps in one long chain.
    std::string chain = "{\"steps\": [";
    for (int i = 0; i < 2000; ++i) {
        if (i) chain += ",";
        chain += "{\"name\": \"s" + std::to_string(i) + "\", \"command\": \"x\"";
        if (i) chain += ", \"after\": \"s" + std::to_string(i - 1) + "\"";
        chain += "}";
    }
    chain += "]}";
    auto r = core::process::parse_pipeline(chain);
    REQUIRE(r);
    CHECK(r->size() == 2000);
}

TEST_CASE("Runner_LoadPipeline_Good", "[runner]") {
    CORE_LEAK_GUARD();
    Host h;
    const std::string path =
        temp_file("good.json", std::string(R"({"steps": [{"name": "hello", "command": ")") +
                                   core::test::child_path() + R"(", "args": ["print", "hi"]}]})");
    auto specs = core::process::load_pipeline(path);
    std::filesystem::remove(path);
    REQUIRE(specs);
    Runner runner(*h.svc);
    auto r = runner.run_all(Context::background(), *specs);
    REQUIRE(r);
    CHECK(r->results.at(0).output == "hi\n");
}

TEST_CASE("Runner_LoadPipeline_Bad", "[runner]") {
    CORE_LEAK_GUARD();
    SECTION("missing file: the path and errno") {
        auto r = core::process::load_pipeline("/nonexistent/pipeline.json");
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == ENOENT);
        CHECK_THAT(r.error().what(), ContainsSubstring("/nonexistent/pipeline.json"));
        CHECK_THAT(r.error().what(), ContainsSubstring("No such file or directory"));
    }
    SECTION("invalid content names the file") {
        const std::string path = temp_file("bad.json", R"({"steps": [{"name": "a"}]})");
        auto r = core::process::load_pipeline(path);
        std::filesystem::remove(path);
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error().what(),
                   ContainsSubstring(path + ": steps[0] (\"a\"): key \"command\""));
    }
    SECTION("a directory is not a pipeline file") {
        auto r = core::process::load_pipeline("/");
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error().what(), ContainsSubstring("\"/\""));
    }
}

// --- issue 17: defaults, shell, file-relative dirs, targets, order, fail_fast, on_output ---

TEST_CASE("Runner_ParsePipelineDefaults_Good", "[runner]") {
    CORE_LEAK_GUARD();
    auto specs = core::process::parse_pipeline(R"({
      "defaults": {"dir": "work", "env": {"A": "1", "B": "2"}, "timeout": "30s"},
      "steps": [
        {"name": "plain", "command": "true"},
        {"name": "own", "command": "true", "dir": "/abs", "env": ["B=3"], "timeout": 0,
         "description": "its own dir, env over the defaults', no timeout"},
        {"name": "sh", "shell": "make -j2 && make check", "dir": "sub/dir"}
      ]})",
                                               "d.json", "/base");
    REQUIRE(specs);
    const RunSpec& plain = (*specs)[0];
    CHECK(plain.dir == "/base/work");
    CHECK(plain.env == std::vector<std::string>{"A=1", "B=2"});
    CHECK(plain.timeout == 30000ms);
    const RunSpec& own = (*specs)[1];
    CHECK(own.dir == "/abs");
    CHECK(own.env == std::vector<std::string>{"A=1", "B=2", "B=3"});  // last wins at spawn
    CHECK(own.timeout == 0ms);
    CHECK(own.description == "its own dir, env over the defaults', no timeout");
    const RunSpec& sh = (*specs)[2];
    CHECK(sh.command == "/bin/sh");
    CHECK(sh.args == std::vector<std::string>{"-c", "make -j2 && make check"});
    CHECK(sh.dir == "/base/sub/dir");
    SECTION("without a base dir, a relative dir stays as written") {
        auto r = core::process::parse_pipeline(
            R"({"steps": [{"name": "a", "command": "x", "dir": "rel"}]})");
        REQUIRE(r);
        CHECK(r->at(0).dir == "rel");
    }
}

TEST_CASE("Runner_ParsePipelineDefaults_Bad", "[runner]") {
    CORE_LEAK_GUARD();
    auto err = [](const std::string& text) {
        auto r = core::process::parse_pipeline(text, "p.json");
        REQUIRE_FALSE(r);
        return r.error().what();
    };
    const std::string one = R"(, "steps": [{"name": "a", "command": "x"}]})";
    CHECK_THAT(err(R"({"defaults": 3)" + one),
               ContainsSubstring("p.json: key \"defaults\": want object, got integer"));
    CHECK_THAT(err(R"({"defaults": {"cwd": "/"})" + one),
               ContainsSubstring("p.json: defaults: key \"cwd\": unknown key"));
    CHECK_THAT(err(R"({"defaults": {"dir": 1})" + one),
               ContainsSubstring("p.json: defaults: key \"dir\": want string, got integer"));
    CHECK_THAT(err(R"({"defaults": {"env": ["X"]})" + one),
               ContainsSubstring("p.json: defaults: key \"env\": \"X\": want K=V"));
    CHECK_THAT(err(R"({"defaults": {"timeout": -1})" + one),
               ContainsSubstring("p.json: defaults: key \"timeout\": negative duration"));
    CHECK_THAT(err(R"({"steps": [{"name": "a", "shell": "x", "command": "y"}]})"),
               ContainsSubstring("steps[0] (\"a\"): key \"shell\": not with \"command\""));
    CHECK_THAT(err(R"({"steps": [{"name": "a", "shell": "x", "args": ["y"]}]})"),
               ContainsSubstring("steps[0] (\"a\"): key \"args\": not with \"shell\""));
    CHECK_THAT(err(R"({"steps": [{"name": "a", "shell": ""}]})"),
               ContainsSubstring("key \"shell\": empty"));
    CHECK_THAT(err(R"({"steps": [{"name": "a", "shell": ["x"]}]})"),
               ContainsSubstring("key \"shell\": want string, got array"));
    CHECK_THAT(err(R"({"description": 1, "steps": [{"name": "a", "command": "x"}]})"),
               ContainsSubstring("key \"description\": want string, got integer"));
}

TEST_CASE("Runner_LoadPipelineDir_Good", "[runner]") {
    CORE_LEAK_GUARD();
    // A relative dir means the directory beside the file, whatever the cwd.
    const std::string path =
        temp_file("rel.json", R"({"steps": [{"name": "a", "command": "x", "dir": "sub"}]})");
    auto specs = core::process::load_pipeline(path);
    std::filesystem::remove(path);
    REQUIRE(specs);
    CHECK(specs->at(0).dir == (std::filesystem::temp_directory_path() / "sub").string());
}

TEST_CASE("Runner_SelectSteps_Good", "[runner]") {
    CORE_LEAK_GUARD();
    std::vector<RunSpec> specs = {step("a", {}), step("b", {}, {"a"}), step("c", {}, {"b"}),
                                  step("d", {}), step("e", {}, {"a", "d"})};
    auto names = [](const std::vector<RunSpec>& v) {
        std::vector<std::string> out;
        for (const auto& s : v) out.push_back(s.name);
        return out;
    };
    auto r = core::process::select_steps(specs, {"c"});
    REQUIRE(r);
    CHECK(names(*r) == std::vector<std::string>{"a", "b", "c"});
    r = core::process::select_steps(specs, {"e", "b"});
    REQUIRE(r);
    CHECK(names(*r) == std::vector<std::string>{"a", "b", "d", "e"});  // input order
    r = core::process::select_steps(specs, {"d", "d"});
    REQUIRE(r);
    CHECK(names(*r) == std::vector<std::string>{"d"});
}

TEST_CASE("Runner_SelectSteps_Bad", "[runner]") {
    CORE_LEAK_GUARD();
    std::vector<RunSpec> specs = {step("a", {}), step("b", {}, {"a"})};
    auto r = core::process::select_steps(specs, {"zz"});
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().what(), ContainsSubstring("unknown step \"zz\" (steps: a, b)"));
    specs.push_back(step("c", {}, {"nope"}));
    r = core::process::select_steps(specs, {"a"});
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().what(), ContainsSubstring("unknown dependency \"nope\""));
}

TEST_CASE("Runner_Order_Good", "[runner]") {
    CORE_LEAK_GUARD();
    std::vector<RunSpec> specs = {step("test", {}, {"build"}), step("build", {}, {"fetch"}),
                                  step("lint", {}), step("fetch", {})};
    auto o = Runner::order(specs);
    REQUIRE(o);
    CHECK(*o == std::vector<std::size_t>{2, 3, 1, 0});  // lint, fetch, build, test
    specs.push_back(step("x", {}, {"y"}));
    specs.push_back(step("y", {}, {"x"}));
    CHECK_FALSE(Runner::order(specs));
}

TEST_CASE("Runner_FailFast_Good", "[runner]") {
    CORE_LEAK_GUARD();
    Host h;
    RunnerOptions o;
    o.max_parallel = 2;
    o.fail_fast = true;
    Runner runner(*h.svc, o);
    // "long" and "bad" run together; "queued" waits for a worker and is never started.
    auto r = runner.run_all(Context::background(), {step("long", {"sleep", "30000"}),
                                                    step("bad", {"fail-after", "50", "1"}),
                                                    step("queued", {"exit", "0"})});
    REQUIRE(r);
    CHECK_FALSE(r->ok());
    CHECK(by_name(*r, "bad").error == "exited with code 1");
    CHECK(by_name(*r, "long").status == RunStatus::failed);
    CHECK(by_name(*r, "long").error == "stopped (fail-fast: step \"bad\" failed)");
    CHECK(by_name(*r, "long").duration < 25s);
    CHECK(by_name(*r, "queued").status == RunStatus::skipped);
    CHECK(by_name(*r, "queued").error == "not started: fail-fast: step \"bad\" failed");
    SECTION("an allowed failure does not stop the run") {
        auto flaky = step("flaky", {"exit", "1"});
        flaky.allow_failure = true;
        auto r2 = runner.run_all(Context::background(), {flaky, step("after", {"exit", "0"})});
        REQUIRE(r2);
        CHECK(r2->ok());
        CHECK(by_name(*r2, "after").status == RunStatus::passed);
    }
}

TEST_CASE("Runner_OnOutput_Good", "[runner]") {
    CORE_LEAK_GUARD();
    Host h;
    std::mutex mu;
    std::vector<std::string> events;  // "line:<step>:<text>" and "finished:<step>", in order
    RunnerOptions o;
    o.max_parallel = 2;
    o.on_output = [&](const core::process::RunOutput& out) {
        std::lock_guard lk(mu);
        REQUIRE(out.spec != nullptr);
        events.push_back("line:" + out.spec->name + ":" + std::string(out.line) +
                         (out.stream == core::process::Stream::stderr_ ? " (err)" : ""));
    };
    o.on_progress = [&](const RunProgress& p) {
        if (p.kind != RunProgress::Kind::finished) return;
        std::lock_guard lk(mu);
        events.push_back("finished:" + p.spec->name);
    };
    Runner runner(*h.svc, o);
    auto r = runner.run_all(Context::background(),
                            {step("many", {"lines", "200"}), step("err", {"stderr", "oops"}),
                             step("quiet", {"exit", "0"})});
    REQUIRE(r);
    CHECK(r->ok());
    std::lock_guard lk(mu);
    auto at = [&](const std::string& e) {
        auto it = std::find(events.begin(), events.end(), e);
        return it == events.end() ? SIZE_MAX : static_cast<std::size_t>(it - events.begin());
    };
    // Every line, in order, and all of a step's lines before its finished event.
    CHECK(at("line:many:line 0") < at("line:many:line 199"));
    CHECK(at("line:many:line 199") < at("finished:many"));
    CHECK(std::count_if(events.begin(), events.end(),
                        [](const std::string& e) { return e.rfind("line:many:", 0) == 0; }) == 200);
    CHECK(at("line:err:oops (err)") < at("finished:err"));
    CHECK(at("finished:quiet") != SIZE_MAX);
    // Timestamps: set for a run step.
    for (const auto& x : r->results) {
        CHECK(x.started_at.time_since_epoch().count() != 0);
        CHECK(x.started_at <= x.finished_at);
    }
}

// --- the typed process model (issue 12 in the Runner): each stream apart, the ExitStatus, and
// lines and ends learnt from the process's own hooks, not from the bus ---

TEST_CASE("Runner_Exec_Good", "[runner]") {
    CORE_LEAK_GUARD();
    Host h;
    Runner runner(*h.svc, RunnerOptions{});
    auto r = runner.run_all(Context::background(),
                            {step("both", {"interleave", "3"}), step("three", {"exit", "3"}),
                             step("signal", {"kill-self", "9"})});
    REQUIRE(r);
    SECTION("stdout and stderr apart, and the combined output of both") {
        const auto& b = by_name(*r, "both");
        CHECK(b.status == RunStatus::passed);
        CHECK(b.std_out == "out 0\nout 1\nout 2\n");
        CHECK(b.std_err == "err 0\nerr 1\nerr 2\n");
        CHECK(b.output.size() == b.std_out.size() + b.std_err.size());
        CHECK_THAT(b.output, ContainsSubstring("out 2\n"));
        CHECK_THAT(b.output, ContainsSubstring("err 2\n"));
        CHECK(b.exit.kind == core::process::ExitKind::exited);
        CHECK(b.exit.code == 0);
        CHECK(b.exit.success());
        CHECK(b.usage.max_rss_bytes > 0);
    }
    SECTION("a non-zero exit and a signal as typed completions") {
        const auto& t = by_name(*r, "three");
        CHECK(t.status == RunStatus::failed);
        CHECK(t.exit.kind == core::process::ExitKind::exited);
        CHECK(t.exit.code == 3);
        CHECK(t.exit_code == 3);
        CHECK(t.error == "exited with code 3");
        const auto& k = by_name(*r, "signal");
        CHECK(k.exit.kind == core::process::ExitKind::signalled);
        CHECK(k.exit.signal == 9);
        CHECK(k.signal == 9);
        CHECK(k.exit_code == -1);
        CHECK_THAT(k.error, ContainsSubstring("killed by signal 9 (SIGKILL)"));
    }
}

TEST_CASE("Runner_Exec_Bad", "[runner]") {
    CORE_LEAK_GUARD();
    Host h;
    Runner runner(*h.svc, RunnerOptions{});
    SECTION("a program that cannot start: failed_to_start, naming why") {
        RunSpec s;
        s.name = "missing";
        s.command = "/nonexistent/runner-test-no-such-program";
        auto r = runner.run_all(Context::background(), {s});
        REQUIRE(r);
        const auto& m = by_name(*r, "missing");
        CHECK(m.status == RunStatus::failed);
        CHECK(m.exit.kind == core::process::ExitKind::failed_to_start);
        CHECK_THAT(m.exit.detail, ContainsSubstring("No such file"));
    }
    SECTION("a timeout: reason timeout, timed_out, the group killed") {
        auto s = step("slow", {"sleep", "60000"});
        s.timeout = 100ms;
        auto r = runner.run_all(Context::background(), {s});
        REQUIRE(r);
        const auto& x = by_name(*r, "slow");
        CHECK(x.status == RunStatus::failed);
        CHECK(x.timed_out);
        CHECK(x.exit.reason == core::process::ExitReason::timeout);
        CHECK(x.error == "timed out after 100ms");
    }
    SECTION("a skipped step keeps no completion of its own") {
        auto r = runner.run_all(Context::background(),
                                {step("bad", {"exit", "1"}), step("next", {"exit", "0"}, {"bad"})});
        REQUIRE(r);
        const auto& n = by_name(*r, "next");
        CHECK(n.status == RunStatus::skipped);
        CHECK(n.std_out.empty());
        CHECK(n.started_at.time_since_epoch().count() == 0);
    }
}

TEST_CASE("Runner_OnOutput_Ugly", "[runner]") {
    CORE_LEAK_GUARD();
    // events off: no bus, no event thread; lines and ends still come through the hooks.
    core::process::ServiceOptions so;
    so.events = false;
    auto c = core::Core::create({core::process::service_factory(so)});
    REQUIRE(c);
    std::shared_ptr<core::Core> core = *c;
    REQUIRE(core->startup(Context::background()));
    auto* svc = core->service<core::process::Service>("process").get();
    REQUIRE(svc != nullptr);
    std::mutex mu;
    std::vector<std::string> events;
    RunnerOptions o;
    o.max_parallel = 2;
    o.on_output = [&](const core::process::RunOutput& out) {
        std::lock_guard lk(mu);
        events.push_back("line:" + out.spec->name + ":" + std::string(out.line) +
                         (out.stream == core::process::Stream::stderr_ ? " (err)" : ""));
    };
    o.on_progress = [&](const RunProgress& p) {
        if (p.kind != RunProgress::Kind::finished) return;
        std::lock_guard lk(mu);
        events.push_back("finished:" + p.spec->name);
    };
    Runner runner(*svc, o);
    SECTION("every line before the finished event, each stream tagged") {
        auto r = runner.run_all(Context::background(), {step("mix", {"interleave", "50"}),
                                                        step("many", {"lines", "300"})});
        REQUIRE(r);
        CHECK(r->ok());
        std::lock_guard lk(mu);
        auto at = [&](const std::string& e) {
            auto it = std::find(events.begin(), events.end(), e);
            return it == events.end() ? SIZE_MAX : static_cast<std::size_t>(it - events.begin());
        };
        CHECK(at("line:mix:out 49") < at("finished:mix"));
        CHECK(at("line:mix:err 49 (err)") < at("finished:mix"));
        CHECK(at("line:many:line 299") < at("finished:many"));
        CHECK(std::count_if(events.begin(), events.end(), [](const std::string& e) {
                  return e.rfind("line:mix:", 0) == 0;
              }) == 100);
    }
    SECTION("a last line without a newline arrives at the end") {
        auto r = runner.run_all(Context::background(), {step("tail", {"bytes", "5", "z"})});
        REQUIRE(r);
        std::lock_guard lk(mu);
        REQUIRE(events.size() == 2);
        CHECK(events[0] == "line:tail:zzzzz");
        CHECK(events[1] == "finished:tail");
    }
    (void)core->shutdown(Context::background());
}

// --- issue 13 in pipeline files: the supervise file's containment and identity keys, per step
// and in "defaults", read by the same reader ---

TEST_CASE("Runner_ParsePipelineContainment_Good", "[runner]") {
    CORE_LEAK_GUARD();
    auto specs = core::process::parse_pipeline(R"({
      "defaults": {"limits": {"memory": "256M"}, "umask": "022", "rlimits": {"nofile": 4096},
                   "nice": 5},
      "steps": [
        {"name": "plain", "command": "true"},
        {"name": "own", "command": "true", "cgroup": true, "limits": {"pids": 100, "cpu": 1.5},
         "umask": "077", "rlimits": {"core": 0}, "user": 0, "group": 0, "no_new_privs": true,
         "parent_death_signal": "SIGTERM"}
      ]})",
                                               "c.json");
    REQUIRE(specs);
    const RunSpec& plain = (*specs)[0];
    CHECK(plain.limits.memory_max == std::uint64_t{256} << 20);
    CHECK_FALSE(plain.limits.pids_max);
    CHECK(plain.identity.umask == 022u);
    REQUIRE(plain.identity.rlimits.size() == 1);
    CHECK(plain.identity.rlimits[0].soft == 4096);
    CHECK(plain.identity.nice == 5);
    CHECK_FALSE(plain.cgroup);
    const RunSpec& own = (*specs)[1];
    CHECK(own.cgroup);
    // limits and rlimits: entries merged over the defaults'; other keys replace them.
    CHECK(own.limits.memory_max == std::uint64_t{256} << 20);
    CHECK(own.limits.pids_max == 100u);
    CHECK(own.limits.cpu_max == 1.5);
    CHECK(own.identity.umask == 077u);
    CHECK(own.identity.rlimits.size() == 2);
    CHECK(own.identity.uid == 0u);
    CHECK(own.identity.gid == 0u);
    CHECK(own.identity.no_new_privs);
    CHECK(own.identity.parent_death_signal != 0);
    CHECK(own.identity.nice == 5);
}

TEST_CASE("Runner_ParsePipelineContainment_Bad", "[runner]") {
    CORE_LEAK_GUARD();
    auto err = [](const std::string& text) {
        auto r = core::process::parse_pipeline(text, "p.json");
        REQUIRE_FALSE(r);
        return r.error().what();
    };
    const std::string one = R"(, "steps": [{"name": "a", "command": "x"}]})";
    CHECK_THAT(err(R"({"steps": [{"name": "a", "command": "x", "limits": {"memroy": "1M"}}]})"),
               ContainsSubstring("p.json: steps[0] (\"a\"): key \"limits.memroy\": unknown key"));
    CHECK_THAT(err(R"({"steps": [{"name": "a", "command": "x", "umask": 18}]})"),
               ContainsSubstring("steps[0] (\"a\"): key \"umask\": want an octal string"));
    CHECK_THAT(err(R"({"steps": [{"name": "a", "command": "x", "cgroup": "yes"}]})"),
               ContainsSubstring("steps[0] (\"a\"): key \"cgroup\": want a boolean"));
    CHECK_THAT(err(R"({"steps": [{"name": "a", "command": "x", "nice": 40}]})"),
               ContainsSubstring("key \"nice\": want an integer -20…19"));
    CHECK_THAT(
        err(R"({"steps": [{"name": "a", "command": "x", "user": "no-such-user-coreproc"}]})"),
        ContainsSubstring("steps[0] (\"a\"): key \"user\""));
    CHECK_THAT(err(R"({"defaults": {"limits": {"pids": 0}})" + one),
               ContainsSubstring("p.json: defaults: key \"limits.pids\": want a positive"));
    CHECK_THAT(err(R"({"defaults": {"rlimits": {"nofiles": 1}})" + one),
               ContainsSubstring("p.json: defaults: key \"rlimits.nofiles\""));
    // Still strict about what is no key at all, and the message lists the new ones.
    CHECK_THAT(err(R"({"steps": [{"name": "a", "command": "x", "memory": "1M"}]})"),
               ContainsSubstring("key \"memory\": unknown key (known: "));
    CHECK_THAT(err(R"({"steps": [{"name": "a", "command": "x", "memory": "1M"}]})"),
               ContainsSubstring("limits"));
}

TEST_CASE("Runner_RunContainment_Good", "[runner]") {
    CORE_LEAK_GUARD();
    if (std::string(core::process::spawn_method()) != "clone3")
        SKIP("identity options need the clone3 spawn path; this run uses "
             << core::process::spawn_method());
    Host h;
    auto specs = core::process::parse_pipeline(
        R"({"defaults": {"umask": "027", "rlimits": {"nofile": "64:128"}}, "steps": [
          {"name": "umask", "command": ")" +
        std::string(core::test::child_path()) + R"(", "args": ["umask"]},
          {"name": "nofile", "command": ")" +
        std::string(core::test::child_path()) + R"(", "args": ["rlimit", "nofile"]}]})");
    REQUIRE(specs);
    Runner runner(*h.svc, RunnerOptions{});
    auto r = runner.run_all(Context::background(), *specs);
    REQUIRE(r);
    CHECK(r->ok());
    CHECK(by_name(*r, "umask").std_out == "027\n");
    CHECK(by_name(*r, "nofile").std_out == "64 128\n");
}
