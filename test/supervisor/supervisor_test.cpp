// The Supervisor against real children (test/helper/child.cpp) through a real process Service:
// restarts with growing delays, the start limit, health checks, terminate-then-kill, policies,
// backoff reset, shutdown with nothing left behind, and the daemon.* actions. Every wait is on
// a DaemonStateChanged event with a deadline.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch_test_macros.hpp>
#include <cerrno>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>

#include "core/process/pidfile.hpp"
#include "core/process/process.hpp"
#include "core/process/supervisor.hpp"
#include "guard.hpp"
#include "support.hpp"
#include "sys/fault.hpp"

using namespace std::chrono_literals;
using core::process::DaemonSpec;
using core::process::DaemonState;
using core::process::DaemonStateChanged;
using core::process::DaemonStatus;
using core::process::RestartPolicy;
using core::process::Supervisor;
using core::process::SupervisorOptions;
using Result = core::Result<void>;
using core::test::sup::child_spec;
using core::test::sup::Env;
using core::test::sup::EventLog;
using core::test::sup::kWait;

namespace {

std::vector<std::chrono::milliseconds> backoff_delays(const std::vector<DaemonStateChanged>& evs) {
    std::vector<std::chrono::milliseconds> out;
    for (const auto& e : evs)
        if (e.to == DaemonState::backoff) out.push_back(e.delay);
    return out;
}

std::vector<DaemonState> states(const std::vector<DaemonStateChanged>& evs) {
    std::vector<DaemonState> out;
    for (const auto& e : evs) out.push_back(e.to);
    return out;
}

std::string text(const std::vector<DaemonState>& ss) {
    std::string out;
    for (auto s : ss) out += std::string(out.empty() ? "" : " ") + core::process::to_string(s);
    return out;
}

// The captured output of the daemon's current process.
std::string output_of(Env& env, const Supervisor& sup, const std::string& name) {
    auto st = sup.get(name);
    if (!st || st->process_id.empty()) return "";
    auto p = env.svc->get(st->process_id);
    return p ? (*p)->output() : "";
}

// A pid that is gone, or a zombie waiting for its (non-us) reaper.
bool dead(int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(f, line)) return true;
    auto close = line.rfind(')');
    return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

// A TCP port on 127.0.0.1 where nothing listens (bound then closed).
int free_port() {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(s);
    return ntohs(a.sin_port);
}

}  // namespace

TEST_CASE("Supervisor_Add_Good", "[supervisor]") {
    CORE_LEAK_GUARD();
    Env env;
    Supervisor sup(*env.core, *env.svc);
    REQUIRE(sup.add(child_spec("a", {"sleep", "60000"})));
    REQUIRE(sup.add(child_spec("b", {"sleep", "60000"})));
    CHECK(sup.names() == std::vector<std::string>{"a", "b"});

    auto st = sup.get("a");
    REQUIRE(st);
    CHECK(st->state == DaemonState::stopped);
    CHECK(st->pid == 0);
    CHECK(sup.spec("b")->args == std::vector<std::string>{"sleep", "60000"});

    REQUIRE(sup.start("a"));
    st = sup.get("a");
    REQUIRE(st);
    CHECK(st->state == DaemonState::running);
    CHECK(st->pid > 0);
    CHECK_FALSE(st->process_id.empty());
    CHECK(sup.start("a"));  // idempotent while up
    CHECK(sup.get("a")->pid == st->pid);

    REQUIRE(sup.start_all());
    CHECK(sup.get("b")->state == DaemonState::running);
    CHECK(sup.list().size() == 2);

    REQUIRE(sup.stop("a"));
    st = sup.get("a");
    CHECK(st->state == DaemonState::stopped);
    CHECK(st->pid == 0);
    CHECK(st->last_signal == SIGTERM);
    CHECK(st->last_error.empty());  // a requested stop is not a failure

    REQUIRE(sup.remove("b"));
    CHECK(sup.names() == std::vector<std::string>{"a"});
    CHECK(states(env.log.of("a")) ==
          std::vector<DaemonState>{DaemonState::starting, DaemonState::running,
                                   DaemonState::stopping, DaemonState::stopped});
}

TEST_CASE("Supervisor_Add_Bad", "[supervisor]") {
    CORE_LEAK_GUARD();
    Env env;
    Supervisor sup(*env.core, *env.svc);
    SECTION("an invalid spec names the key") {
        auto s = child_spec("a", {});
        s.backoff.factor = 0.1;
        auto r = sup.add(s);
        REQUIRE_FALSE(r);
        CHECK(r.error().what().find("backoff.factor") != std::string::npos);
        CHECK(sup.names().empty());
    }
    SECTION("a duplicate name") {
        REQUIRE(sup.add(child_spec("a", {})));
        auto r = sup.add(child_spec("a", {}));
        REQUIRE_FALSE(r);
        CHECK(r.error().what().find("already exists") != std::string::npos);
    }
    SECTION("unknown names") {
        for (auto r : {sup.start("x"), sup.stop("x"), sup.restart("x"), sup.remove("x")}) {
            REQUIRE_FALSE(r);
            CHECK(r.error().what().find("unknown daemon: x") != std::string::npos);
        }
        CHECK_FALSE(sup.get("x"));
        CHECK_FALSE(sup.spec("x"));
    }
}

TEST_CASE("Supervisor_Start_Bad", "[supervisor]") {
    CORE_LEAK_GUARD();
    Env env;
    Supervisor sup(*env.core, *env.svc);
    SECTION("a missing program: the error, then the policy (no: failed)") {
        auto s = child_spec("gti", {});
        s.command = "/nonexistent/gti";
        s.restart = RestartPolicy::no;
        REQUIRE(sup.add(s));
        auto r = sup.start("gti");
        REQUIRE_FALSE(r);
        CHECK(r.error().what().find("/nonexistent/gti") != std::string::npos);
        auto st = sup.get("gti");
        CHECK(st->state == DaemonState::failed);
        CHECK(st->last_error.find("/nonexistent/gti") != std::string::npos);
        CHECK_FALSE(st->exited);
    }
    SECTION("a missing program with on-failure retries, then hits the start limit") {
        auto s = child_spec("gti", {});
        s.command = "/nonexistent/gti";
        s.start_limit = {3, 60000ms};
        REQUIRE(sup.add(s));
        CHECK_FALSE(sup.start("gti"));
        REQUIRE(env.log.wait("gti", DaemonState::failed));
        CHECK(env.log.count("gti", DaemonState::starting) == 3);
        CHECK(sup.get("gti")->last_error.find("start limit") != std::string::npos);
    }
    SECTION("a PID file held by a live process refuses the start") {
        const std::string path = "/tmp/core-sup-" + std::to_string(::getpid()) + ".pid";
        core::process::PidFile holder(path);
        REQUIRE(holder.acquire());
        auto s = child_spec("p", {"sleep", "60000"});
        s.pid_file = path;
        s.restart = RestartPolicy::no;
        REQUIRE(sup.add(s));
        auto r = sup.start("p");
        REQUIRE_FALSE(r);
        CHECK(r.error().what().find("held by live pid " + std::to_string(::getpid())) !=
              std::string::npos);
        CHECK(sup.get("p")->state == DaemonState::failed);
        REQUIRE(holder.release());
        // Released: a stale file is cleaned up and the start goes ahead.
        { std::ofstream(path) << "999999\n"; }
        REQUIRE(sup.start("p"));
        CHECK_FALSE(std::ifstream(path).good());
        REQUIRE(sup.stop("p"));
    }
}

TEST_CASE("Supervisor_Restart_Good", "[supervisor]") {
    CORE_LEAK_GUARD();
    Env env;
    Supervisor sup(*env.core, *env.svc);

    SECTION("a crashing daemon restarts with growing delays, then fails at the start limit") {
        auto s = child_spec("crash", {"exit", "3"});
        s.start_limit = {5, 60000ms};
        REQUIRE(sup.add(s));
        REQUIRE(sup.start("crash"));
        REQUIRE(env.log.wait("crash", DaemonState::failed));
        const auto evs = env.log.of("crash");
        const auto delays = backoff_delays(evs);
        // 5 starts allowed: 4 restarts, each after twice the previous delay.
        REQUIRE(delays.size() == 4);
        CHECK(delays == std::vector<std::chrono::milliseconds>{10ms, 20ms, 40ms, 80ms});
        for (std::size_t i = 1; i < delays.size(); ++i) CHECK(delays[i] >= delays[i - 1]);
        using S = DaemonState;
        const std::vector<S> cycle{S::starting, S::running, S::backoff};
        std::vector<S> want;
        for (int i = 0; i < 4; ++i) want.insert(want.end(), cycle.begin(), cycle.end());
        want.insert(want.end(), {S::starting, S::running, S::failed});
        INFO(text(states(evs)));
        CHECK(states(evs) == want);
        auto st = sup.get("crash");
        CHECK(st->state == DaemonState::failed);
        CHECK(st->restarts == 4);
        CHECK(st->last_exit_code == 3);
        CHECK(st->last_error.find("start limit hit") != std::string::npos);
        CHECK(evs.back().reason.find("exited with code 3") != std::string::npos);
        // The restart counter in the events grows with each start.
        CHECK(evs.back().restarts == 4);
        // A manual start clears the failed state and the window.
        REQUIRE(sup.start("crash"));
        REQUIRE(env.log.wait("crash", DaemonState::failed, 2));
        REQUIRE(sup.stop("crash"));
    }

    SECTION("a daemon whose health command fails is restarted") {
        auto s = child_spec("sick", {"sleep", "60000"});
        s.health.command = {core::test::child_path(), "exit", "1"};
        s.health.interval = 20ms;
        s.health.failures = 2;
        REQUIRE(sup.add(s));
        REQUIRE(sup.start("sick"));
        REQUIRE(env.log.wait("sick", DaemonState::starting, 2));
        const auto evs = env.log.of("sick");
        using S = DaemonState;
        const std::vector<S> want{S::starting, S::running, S::unhealthy,
                                  S::stopping, S::backoff, S::starting};
        INFO(text(states(evs)));
        REQUIRE(evs.size() >= want.size());
        const auto got = states(evs);
        CHECK(std::vector<S>(got.begin(), got.begin() + 6) == want);
        CHECK(evs[2].reason.find("health") != std::string::npos);
        CHECK(evs[2].reason.find("2 in a row") != std::string::npos);
        CHECK(evs[4].reason.find("health check") != std::string::npos);
        REQUIRE(sup.stop("sick"));
    }

    SECTION("a daemon whose health URL refuses connections is restarted") {
        auto s = child_spec("deaf", {"sleep", "60000"});
        s.health.url = "http://127.0.0.1:" + std::to_string(free_port()) + "/health";
        s.health.interval = 20ms;
        s.health.timeout = 1000ms;
        s.health.failures = 1;
        REQUIRE(sup.add(s));
        REQUIRE(sup.start("deaf"));
        REQUIRE(env.log.wait("deaf", DaemonState::backoff));
        const auto evs = env.log.of("deaf");
        REQUIRE(evs.size() >= 3);
        CHECK(evs[2].to == DaemonState::unhealthy);
        CHECK(sup.get("deaf")->last_error.find("health") != std::string::npos);
        REQUIRE(sup.stop("deaf"));
    }

    SECTION("a daemon that answers its health URL becomes healthy") {
        const int port = free_port();
        auto s = child_spec("web", {"http-health", std::to_string(port)});
        s.health.url = "http://127.0.0.1:" + std::to_string(port) + "/health";
        s.health.interval = 20ms;
        s.health.failures = 100;  // the server needs a moment to listen
        REQUIRE(sup.add(s));
        REQUIRE(sup.start("web"));
        REQUIRE(env.log.wait("web", DaemonState::healthy));
        CHECK(sup.get("web")->health_failures == 0);
        REQUIRE(sup.stop("web"));
        CHECK(sup.get("web")->state == DaemonState::stopped);
    }

    SECTION("restart() stops and starts at once, without backoff") {
        REQUIRE(sup.add(child_spec("r", {"sleep", "60000"})));
        REQUIRE(sup.start("r"));
        const int pid = sup.get("r")->pid;
        REQUIRE(sup.restart("r"));
        auto st = sup.get("r");
        CHECK(st->state == DaemonState::running);
        CHECK(st->pid != pid);
        CHECK(st->restarts == 1);
        CHECK(env.log.count("r", DaemonState::backoff) == 0);
        REQUIRE(sup.stop("r"));
    }
}

TEST_CASE("Supervisor_Policy_Good", "[supervisor]") {
    CORE_LEAK_GUARD();
    Env env;
    Supervisor sup(*env.core, *env.svc);
    auto run_to = [&](const std::string& name, RestartPolicy p, const char* code,
                      DaemonState until) {
        auto s = child_spec(name, {"exit", code});
        s.restart = p;
        s.start_limit = {3, 60000ms};
        REQUIRE(sup.add(s));
        REQUIRE(sup.start(name));
        REQUIRE(env.log.wait(name, until));
        return env.log.of(name);
    };
    using S = DaemonState;
    SECTION("no: a failure is final") {
        auto evs = run_to("n3", RestartPolicy::no, "3", S::failed);
        CHECK(states(evs) == std::vector<S>{S::starting, S::running, S::failed});
    }
    SECTION("no: a clean exit stops") {
        auto evs = run_to("n0", RestartPolicy::no, "0", S::stopped);
        CHECK(states(evs) == std::vector<S>{S::starting, S::running, S::stopped});
        CHECK(sup.get("n0")->last_error.empty());
    }
    SECTION("on-failure: a clean exit stops") {
        auto evs = run_to("f0", RestartPolicy::on_failure, "0", S::stopped);
        CHECK(states(evs) == std::vector<S>{S::starting, S::running, S::stopped});
    }
    SECTION("on-failure: a failure restarts") {
        auto evs = run_to("f3", RestartPolicy::on_failure, "3", S::failed);
        CHECK(env.log.count("f3", S::backoff) == 2);
    }
    SECTION("on-failure: a signal restarts") {
        auto s = child_spec("sig", {"kill-self", "9"});
        s.start_limit = {2, 60000ms};
        REQUIRE(sup.add(s));
        REQUIRE(sup.start("sig"));
        REQUIRE(env.log.wait("sig", S::failed));
        CHECK(env.log.count("sig", S::backoff) == 1);
        CHECK(sup.get("sig")->last_signal == 9);
        CHECK(sup.get("sig")->last_exit_code == -1);
    }
    SECTION("always: a clean exit restarts too") {
        auto evs = run_to("a0", RestartPolicy::always, "0", S::failed);
        CHECK(env.log.count("a0", S::backoff) == 2);
        CHECK(evs[2].reason == "exited with code 0");
    }
}

TEST_CASE("Supervisor_Backoff_Good", "[supervisor]") {
    CORE_LEAK_GUARD();
    Env env;
    Supervisor sup(*env.core, *env.svc);
    // The child runs 300 ms each time. The order of events is asserted, never their timing:
    // reset_after 20 ms is far below the run time, 10 s far above it.
    SECTION("a run longer than reset_after resets the backoff") {
        auto s = child_spec("steady", {"fail-after", "300", "3"});
        s.reset_after = 20ms;
        REQUIRE(sup.add(s));
        REQUIRE(sup.start("steady"));
        REQUIRE(env.log.wait("steady", DaemonState::backoff, 3));
        REQUIRE(sup.stop("steady"));
        const auto delays = backoff_delays(env.log.of("steady"));
        REQUIRE(delays.size() >= 3);
        for (auto d : delays) CHECK(d == 10ms);
    }
    SECTION("a shorter run keeps growing the delay") {
        auto s = child_spec("flaky", {"fail-after", "300", "3"});
        s.reset_after = 10000ms;
        REQUIRE(sup.add(s));
        REQUIRE(sup.start("flaky"));
        REQUIRE(env.log.wait("flaky", DaemonState::backoff, 3));
        REQUIRE(sup.stop("flaky"));
        const auto delays = backoff_delays(env.log.of("flaky"));
        REQUIRE(delays.size() >= 3);
        CHECK(delays[0] == 10ms);
        CHECK(delays[1] == 20ms);
        CHECK(delays[2] == 40ms);
    }
    SECTION("with a health check, the healthy period counts") {
        auto s = child_spec("checked", {"fail-after", "300", "3"});
        s.health.command = {core::test::child_path(), "exit", "0"};
        s.health.interval = 10ms;
        s.reset_after = 20ms;
        REQUIRE(sup.add(s));
        REQUIRE(sup.start("checked"));
        REQUIRE(env.log.wait("checked", DaemonState::backoff, 2));
        REQUIRE(sup.stop("checked"));
        const auto evs = env.log.of("checked");
        CHECK(env.log.count("checked", DaemonState::healthy) >= 2);
        for (auto d : backoff_delays(evs)) CHECK(d == 10ms);
    }
}

TEST_CASE("Supervisor_Stop_Good", "[supervisor]") {
    CORE_LEAK_GUARD();
    Env env;
    Supervisor sup(*env.core, *env.svc);
    SECTION("a SIGTERM-ignoring daemon gets SIGKILL after stop_timeout") {
        auto s = child_spec("stubborn", {"ignore-term", "60000"});
        s.stop_timeout = 100ms;
        REQUIRE(sup.add(s));
        REQUIRE(sup.start("stubborn"));
        // The child ignores SIGTERM only once it has said so.
        REQUIRE(core::test::eventually(
            [&] { return output_of(env, sup, "stubborn").find("ready") != std::string::npos; }));
        REQUIRE(sup.stop("stubborn"));
        auto st = sup.get("stubborn");
        CHECK(st->state == DaemonState::stopped);
        CHECK(st->last_signal == SIGKILL);
        const auto evs = env.log.of("stubborn");
        CHECK(evs.back().to == DaemonState::stopped);
        CHECK(evs.back().reason.find("SIGKILL") != std::string::npos);
    }
    SECTION("stop_signal is what is sent first") {
        auto s = child_spec("hup", {"sleep", "60000"});
        s.stop_signal = SIGHUP;
        REQUIRE(sup.add(s));
        REQUIRE(sup.start("hup"));
        REQUIRE(sup.stop("hup"));
        CHECK(sup.get("hup")->last_signal == SIGHUP);
    }
    SECTION("the daemon's whole process group is stopped, grandchildren included") {
        REQUIRE(sup.add(child_spec("family", {"grandchild-wait", "60000"})));
        REQUIRE(sup.start("family"));
        int gc = 0;
        REQUIRE(core::test::eventually([&] {
            std::istringstream in(output_of(env, sup, "family"));
            std::string word;
            return in >> word >> gc && word == "gc" && gc > 0;
        }));
        CHECK_FALSE(dead(gc));
        REQUIRE(sup.stop("family"));
        CHECK(core::test::eventually([&] { return dead(gc); }));
    }
    SECTION("stopping a daemon in backoff cancels the restart") {
        auto s = child_spec("later", {"exit", "1"});
        s.backoff = {60000ms, 2.0, 60000ms, 0.0};
        REQUIRE(sup.add(s));
        REQUIRE(sup.start("later"));
        REQUIRE(env.log.wait("later", DaemonState::backoff));
        REQUIRE(sup.stop("later"));
        CHECK(sup.get("later")->state == DaemonState::stopped);
        CHECK(env.log.count("later", DaemonState::starting) == 1);
    }
}

TEST_CASE("Supervisor_StopAll_Good", "[supervisor]") {
    CORE_LEAK_GUARD();
    std::vector<int> grandchildren;
    {
        Env env;
        {
            Supervisor sup(*env.core, *env.svc);
            for (const char* n : {"a", "b", "c"})
                REQUIRE(sup.add(child_spec(n, {"grandchild-wait", "60000"})));
            auto stubborn = child_spec("d", {"ignore-term", "60000"});
            stubborn.stop_timeout = 50ms;
            REQUIRE(sup.add(stubborn));
            REQUIRE(sup.start_all());
            for (const char* n : {"a", "b", "c"}) {
                int gc = 0;
                REQUIRE(core::test::eventually([&] {
                    std::istringstream in(output_of(env, sup, n));
                    std::string word;
                    return in >> word >> gc && word == "gc";
                }));
                grandchildren.push_back(gc);
            }
            CHECK(core::test::child_pids().size() >= 4);
            SECTION("stop_all") {
                REQUIRE(sup.stop_all());
                for (const auto& st : sup.list()) CHECK(st.state == DaemonState::stopped);
                CHECK(core::test::child_pids().empty());
            }
            SECTION("the destructor") {}
        }
        CHECK(core::test::child_pids().empty());
    }
    for (int gc : grandchildren) CHECK(core::test::eventually([&] { return dead(gc); }));
}

TEST_CASE("Supervisor_Callback_Ugly", "[supervisor]") {
    CORE_LEAK_GUARD();
    Env env;
    std::mutex mu;
    std::vector<std::string> seen;
    Supervisor* self = nullptr;
    SupervisorOptions opts;
    opts.on_state_change = [&](const DaemonStateChanged& ev) {
        std::string note = std::string(core::process::to_string(ev.to));
        if (ev.to == DaemonState::running) {
            // Blocking calls from the supervisor thread fail instead of deadlocking; get() works.
            auto r = self->stop(ev.name);
            note += r ? " stop-ok" : " stop-refused";
            note += self->get(ev.name) ? " get-ok" : " get-failed";
        }
        if (ev.to == DaemonState::stopped) throw std::runtime_error("a throwing callback");
        std::lock_guard lk(mu);
        seen.push_back(note);
    };
    opts.broadcast = false;
    Supervisor sup(*env.core, *env.svc, opts);
    self = &sup;
    REQUIRE(sup.add(child_spec("cb", {"sleep", "60000"})));
    REQUIRE(sup.start("cb"));
    REQUIRE(sup.stop("cb"));
    std::lock_guard lk(mu);
    CHECK(seen == std::vector<std::string>{"starting", "running stop-refused get-ok", "stopping"});
    CHECK(env.log.events().empty());  // broadcast off
}

TEST_CASE("SupervisorService_Actions_Good", "[supervisor]") {
    CORE_LEAK_GUARD();
    Env env({core::process::register_daemon_service});
    auto& c = *env.core;
    const auto ctx = core::Context::background();
    auto started = c.action("daemon.start")
                       .run(ctx, core::Options{{"name", "svc"},
                                               {"command", std::string(core::test::child_path())},
                                               {"args", std::vector<std::string>{"sleep", "60000"}},
                                               {"restart", "always"},
                                               {"backoff_initial", "10ms"},
                                               {"backoff_factor", 3},
                                               {"stop_signal", "SIGINT"},
                                               {"stop_timeout", 2000ms}});
    REQUIRE(started);
    const auto* st = started->get<DaemonStatus>();
    REQUIRE(st);
    CHECK(st->state == DaemonState::running);
    CHECK(st->pid > 0);

    auto names = c.action("daemon.list").run(ctx, {});
    REQUIRE(names);
    REQUIRE(names->get<std::vector<std::string>>());
    CHECK(*names->get<std::vector<std::string>>() == std::vector<std::string>{"svc"});
    auto statuses = c.action("daemon.list").run(ctx, core::Options{{"status", true}});
    REQUIRE(statuses);
    REQUIRE(statuses->get<std::vector<DaemonStatus>>());
    CHECK(statuses->get<std::vector<DaemonStatus>>()->at(0).name == "svc");

    auto got = c.action("daemon.get").run(ctx, core::Options{{"name", "svc"}});
    REQUIRE(got);
    CHECK(got->get<DaemonStatus>()->pid == st->pid);

    auto restarted = c.action("daemon.restart").run(ctx, core::Options{{"name", "svc"}});
    REQUIRE(restarted);
    CHECK(restarted->get<DaemonStatus>()->restarts == 1);
    CHECK(restarted->get<DaemonStatus>()->pid != st->pid);

    auto stopped = c.action("daemon.stop").run(ctx, core::Options{{"name", "svc"}});
    REQUIRE(stopped);
    CHECK(stopped->get<DaemonStatus>()->state == DaemonState::stopped);
    CHECK(stopped->get<DaemonStatus>()->last_signal == SIGINT);

    // By name only, once added.
    auto again = c.action("daemon.start").run(ctx, core::Options{{"name", "svc"}});
    REQUIRE(again);
    CHECK(again->get<DaemonStatus>()->state == DaemonState::running);

    auto svc = c.service<core::process::SupervisorService>("daemon");
    REQUIRE(svc);
    auto spec = svc->supervisor()->spec("svc");
    REQUIRE(spec);
    CHECK(spec->backoff.factor == 3.0);
    CHECK(spec->restart == RestartPolicy::always);
    // Core shutdown (in ~Env) stops it: the leak guard proves nothing is left.
}

TEST_CASE("SupervisorService_Actions_Bad", "[supervisor]") {
    CORE_LEAK_GUARD();
    const auto ctx = core::Context::background();
    SECTION("wrong types and unknown keys are named") {
        Env env({core::process::register_daemon_service});
        auto& c = *env.core;
        struct Case {
            const char* action;
            core::Options opts;
            const char* want;
        };
        const std::vector<Case> cases = {
            {"daemon.start", core::Options{{"name", 5}}, "option \"name\""},
            {"daemon.start", core::Options{}, "option \"name\""},
            {"daemon.start", core::Options{{"name", "x"}, {"command", "y"}, {"args", "z"}},
             "option \"args\""},
            {"daemon.start", core::Options{{"name", "x"}, {"command", "y"}, {"restart", 1}},
             "option \"restart\""},
            {"daemon.start", core::Options{{"name", "x"}, {"command", "y"}, {"restart", "often"}},
             "often"},
            {"daemon.start", core::Options{{"name", "x"}, {"command", "y"}, {"stop_signal", "NO"}},
             "option \"stop_signal\""},
            {"daemon.start",
             core::Options{{"name", "x"}, {"command", "y"}, {"backoff_factor", "2"}},
             "option \"backoff_factor\""},
            {"daemon.start",
             core::Options{{"name", "x"}, {"command", "y"}, {"stop_timeout", "soon"}},
             "stop_timeout"},
            {"daemon.start", core::Options{{"name", "x"}, {"command", "y"}, {"colour", "red"}},
             "option \"colour\""},
            {"daemon.start", core::Options{{"name", "x"}, {"command", "y"}, {"timout", "1s"}},
             "(known: name, command, args, dir, env, env_mode, unset_env, pid_file"},
            {"daemon.start", core::Options{{"name", "x"}, {"command", "y"}, {"env_mode", "all"}},
             "option \"env_mode\": \"all\": want \"merge\" or \"replace\""},
            {"daemon.start", core::Options{{"name", "x"}, {"spec", 3}}, "option \"spec\""},
            {"daemon.start", core::Options{{"name", "nope"}}, "unknown daemon: nope"},
            {"daemon.stop", core::Options{{"name", "nope"}}, "unknown daemon: nope"},
            {"daemon.get", core::Options{{"id", "x"}}, "option \"id\""},
            {"daemon.list", core::Options{{"status", "yes"}}, "option \"status\""},
        };
        for (const auto& k : cases) {
            auto r = c.action(k.action).run(ctx, k.opts);
            INFO(k.action);
            REQUIRE_FALSE(r);
            INFO(r.error().what());
            CHECK(r.error().what().find(k.want) != std::string::npos);
        }
    }
    SECTION("without the process service, startup fails clearly") {
        auto c = core::Core::create({core::process::register_daemon_service});
        REQUIRE(c);
        auto r = (*c)->startup(ctx);
        REQUIRE_FALSE(r);
        CHECK(r.error().what().find("process service is not registered") != std::string::npos);
    }
    SECTION("preloaded daemons through the factory") {
        Env env({core::process::daemon_service_factory({}, {child_spec("pre", {"sleep", "1"})})});
        auto r = env.core->action("daemon.get").run(ctx, core::Options{{"name", "pre"}});
        REQUIRE(r);
        CHECK(r->get<DaemonStatus>()->state == DaemonState::stopped);
    }
}

TEST_CASE("Supervisor_Spawn_Ugly", "[supervisor]") {
    CORE_LEAK_GUARD();
    Env env;
    Supervisor sup(*env.core, *env.svc);
    auto s = child_spec("flaky-spawn", {"sleep", "60000"});
    REQUIRE(sup.add(s));
    {
        // The first two spawns fail (as under a process limit): failures for the policy.
        core::sys::fault::Scoped guard("spawn", EAGAIN, 2);
        auto r = sup.start("flaky-spawn");
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == EAGAIN);
        REQUIRE(env.log.wait("flaky-spawn", DaemonState::running));
    }
    using S = DaemonState;
    const auto evs = env.log.of("flaky-spawn");
    INFO(text(states(evs)));
    CHECK(states(evs) == std::vector<S>{S::starting, S::backoff, S::starting, S::backoff,
                                        S::starting, S::running});
    CHECK(backoff_delays(evs) == std::vector<std::chrono::milliseconds>{10ms, 20ms});
    auto st = sup.get("flaky-spawn");
    CHECK(st->restarts == 2);
    CHECK_FALSE(st->exited);
    CHECK(st->last_error.find("Resource temporarily unavailable") != std::string::npos);
    REQUIRE(sup.stop("flaky-spawn"));
}

TEST_CASE("Supervisor_Concurrent_Ugly", "[supervisor]") {
    CORE_LEAK_GUARD();
    Env env;
    {
        Supervisor sup(*env.core, *env.svc);
        const std::vector<std::string> names{"x", "y", "z"};
        for (const auto& n : names) REQUIRE(sup.add(child_spec(n, {"sleep", "60000"})));
        std::atomic<int> errors{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < 4; ++t) {
            threads.emplace_back([&, t] {
                unsigned seed = static_cast<unsigned>(t) * 7919u + 1u;
                for (int i = 0; i < 25; ++i) {
                    seed = seed * 1103515245u + 12345u;
                    const auto& n = names[(seed >> 8) % names.size()];
                    Result r;
                    switch ((seed >> 16) % 5) {
                        case 0:
                            r = sup.start(n);
                            break;
                        case 1:
                            r = sup.stop(n);
                            break;
                        case 2:
                            r = sup.restart(n);
                            break;
                        case 3:
                            r = sup.get(n) ? Result{} : Result{core::fail(core::E("get", n))};
                            break;
                        default:
                            (void)sup.list();
                            break;
                    }
                    if (!r) ++errors;
                }
            });
        }
        for (auto& th : threads) th.join();
        CHECK(errors == 0);
        REQUIRE(sup.stop_all());
        for (const auto& st : sup.list()) {
            CHECK(st.state == DaemonState::stopped);
            CHECK(st.pid == 0);
        }
    }
    CHECK(core::test::child_pids().empty());
}

// ---------------------------------------------------------------- issue 14: reload, logs,
// stopping a SIGSTOPped daemon (helper B)

namespace {

// A fresh directory under /tmp, removed with everything in it.
struct TmpDir {
    std::string path;
    TmpDir() {
        std::string tmpl = "/tmp/core-sup-logs-XXXXXX";
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TmpDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

std::string slurp(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

}  // namespace

TEST_CASE("Supervisor_Apply_Good", "[supervisor]") {
    CORE_LEAK_GUARD();
    Env env;
    Supervisor sup(*env.core, *env.svc);
    REQUIRE(sup.add(child_spec("same", {"sleep", "60000"})));
    REQUIRE(sup.add(child_spec("changes", {"sleep", "60000"})));
    REQUIRE(sup.add(child_spec("goes", {"sleep", "60000"})));
    REQUIRE(sup.start_all());
    const int same_pid = sup.get("same")->pid;
    const int changes_pid = sup.get("changes")->pid;
    const int goes_pid = sup.get("goes")->pid;

    auto changed = child_spec("changes", {"sleep", "50000"});
    std::vector<DaemonSpec> next{child_spec("same", {"sleep", "60000"}), changed,
                                 child_spec("new", {"sleep", "60000"})};
    auto rr = sup.apply(next);
    REQUIRE(rr);
    CHECK(rr->added == std::vector<std::string>{"new"});
    CHECK(rr->removed == std::vector<std::string>{"goes"});
    CHECK(rr->changed == std::vector<std::string>{"changes"});
    CHECK(rr->unchanged == std::vector<std::string>{"same"});
    CHECK(rr->errors.empty());

    CHECK(sup.get("same")->pid == same_pid);  // untouched
    auto st = sup.get("changes");
    REQUIRE(st);
    CHECK(st->state == DaemonState::running);
    CHECK(st->pid != changes_pid);
    CHECK(sup.spec("changes")->args == changed.args);
    CHECK(sup.get("new")->state == DaemonState::running);
    CHECK_FALSE(sup.get("goes"));
    CHECK(core::test::eventually([&] { return dead(goes_pid) && dead(changes_pid); }));
    CHECK(sup.names() == std::vector<std::string>{"same", "changes", "new"});

    SECTION("the same set again changes nothing") {
        auto again = sup.apply({child_spec("same", {"sleep", "60000"}), changed,
                                child_spec("new", {"sleep", "60000"})});
        REQUIRE(again);
        CHECK(again->unchanged.size() == 3);
        CHECK(sup.get("same")->pid == same_pid);
    }
    SECTION("a stopped daemon whose spec changes stays stopped with the new spec") {
        REQUIRE(sup.stop("same"));
        auto r = sup.apply({child_spec("same", {"sleep", "40000"}), changed,
                            child_spec("new", {"sleep", "60000"})});
        REQUIRE(r);
        CHECK(r->changed == std::vector<std::string>{"same"});
        CHECK(sup.get("same")->state == DaemonState::stopped);
        CHECK(sup.spec("same")->args == std::vector<std::string>{"sleep", "40000"});
    }
    REQUIRE(sup.stop_all());
}

TEST_CASE("Supervisor_Apply_Bad", "[supervisor]") {
    CORE_LEAK_GUARD();
    Env env;
    Supervisor sup(*env.core, *env.svc);
    REQUIRE(sup.add(child_spec("a", {"sleep", "60000"})));
    REQUIRE(sup.start("a"));
    const int pid = sup.get("a")->pid;
    SECTION("an invalid spec changes nothing") {
        auto bad = child_spec("b", {});
        bad.backoff.factor = 0.5;
        auto r = sup.apply({child_spec("a", {"sleep", "1"}), bad});
        REQUIRE_FALSE(r);
        CHECK(r.error().what().find("backoff.factor") != std::string::npos);
    }
    SECTION("a duplicate name changes nothing") {
        auto r = sup.apply({child_spec("c", {}), child_spec("c", {})});
        REQUIRE_FALSE(r);
        CHECK(r.error().what().find("duplicate") != std::string::npos);
    }
    CHECK(sup.names() == std::vector<std::string>{"a"});
    CHECK(sup.get("a")->pid == pid);
    CHECK(sup.spec("a")->args == std::vector<std::string>{"sleep", "60000"});
    SECTION("a start that fails is reported, the rest applied") {
        auto gone = child_spec("gti", {});
        gone.command = "/nonexistent/gti";
        gone.restart = RestartPolicy::no;
        auto r = sup.apply({child_spec("a", {"sleep", "60000"}), gone});
        REQUIRE(r);
        CHECK(r->added == std::vector<std::string>{"gti"});
        REQUIRE(r->errors.size() == 1);
        CHECK(r->errors[0].find("/nonexistent/gti") != std::string::npos);
        CHECK(sup.get("gti")->state == DaemonState::failed);
    }
    REQUIRE(sup.stop_all());
}

TEST_CASE("Supervisor_Logs_Good", "[supervisor]") {
    CORE_LEAK_GUARD();
    Env env;
    TmpDir dir;
    SupervisorOptions o;
    o.log_dir = dir.path;
    Supervisor sup(*env.core, *env.svc, o);

    SECTION("both streams merged in <dir>/<name>.log, in order") {
        auto s = child_spec("talk", {"interleave", "3"});
        s.restart = RestartPolicy::no;
        REQUIRE(sup.add(s));
        REQUIRE(sup.start("talk"));
        REQUIRE(env.log.wait("talk", DaemonState::stopped));
        const std::string path = dir.path + "/talk.log";
        CHECK(sup.get("talk")->log_path == path);
        CHECK(core::test::eventually([&] {
            const std::string t = slurp(path);
            return t.find("out 2") != std::string::npos && t.find("err 2") != std::string::npos;
        }));
    }
    SECTION("separate files and timestamps") {
        auto s = child_spec("two", {"interleave", "2"});
        s.restart = RestartPolicy::no;
        s.log.separate = true;
        s.log.timestamps = true;
        REQUIRE(sup.add(s));
        REQUIRE(sup.start("two"));
        REQUIRE(env.log.wait("two", DaemonState::stopped));
        CHECK(sup.get("two")->err_log_path == dir.path + "/two.err.log");
        std::string out, err;
        CHECK(core::test::eventually([&] {
            out = slurp(dir.path + "/two.log");
            err = slurp(dir.path + "/two.err.log");
            return out.find("out 1") != std::string::npos && err.find("err 1") != std::string::npos;
        }));
        INFO("out: " << out << "\nerr: " << err);
        CHECK(out.find("err") == std::string::npos);
        CHECK(err.find("out") == std::string::npos);
        // "2026-12-01T19:30:00.123Z out 0"
        CHECK(std::regex_search(
            out, std::regex(R"((^|\n)\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z out 0\n)")));
    }
    SECTION("rotation at max_size keeps `backups` files") {
        auto s = child_spec("many", {"lines", "2000"});  // "line <i>\n": ~10 bytes each
        s.restart = RestartPolicy::no;
        s.log.max_size = 4096;
        s.log.backups = 2;
        REQUIRE(sup.add(s));
        REQUIRE(sup.start("many"));
        REQUIRE(env.log.wait("many", DaemonState::stopped));
        const std::string path = dir.path + "/many.log";
        CHECK(core::test::eventually(
            [&] { return slurp(path).find("line 1999\n") != std::string::npos; }));
        for (const auto& p : {path, path + ".1", path + ".2"}) {
            INFO(p);
            CHECK(std::filesystem::exists(p));
            CHECK(std::filesystem::file_size(p) <= 4096);
        }
        CHECK_FALSE(std::filesystem::exists(path + ".3"));
        CHECK(std::filesystem::file_size(path + ".1") > 4000);  // rotated when full
        // The newest lines are in the newest files, in order.
        const std::string all = slurp(path + ".2") + slurp(path + ".1") + slurp(path);
        CHECK(all.find("line 1998\nline 1999\n") != std::string::npos);
    }
    SECTION("a failure's last line is in its status and its reason") {
        auto s = child_spec("bind", {"print-fail", "OSError: [Errno 98] Address already in use"});
        s.restart = RestartPolicy::no;
        REQUIRE(sup.add(s));
        REQUIRE(sup.start("bind"));
        REQUIRE(env.log.wait("bind", DaemonState::failed));
        auto st = sup.get("bind");
        REQUIRE(st);
        REQUIRE_FALSE(st->last_lines.empty());
        CHECK(st->last_lines.back() == "OSError: [Errno 98] Address already in use");
        CHECK(st->last_error == "exited with code 1: OSError: [Errno 98] Address already in use");
        const auto evs = env.log.of("bind");
        CHECK(evs.back().reason ==
              "exited with code 1: OSError: [Errno 98] Address already in use");
    }
    REQUIRE(sup.stop_all());
}

TEST_CASE("Supervisor_Logs_Bad", "[supervisor]") {
    CORE_LEAK_GUARD();
    Env env;
    TmpDir dir;
    // A regular file where the log directory should be: every open fails (ENOTDIR).
    const std::string not_dir = dir.path + "/file";
    { std::ofstream(not_dir) << "x"; }
    std::mutex mu;
    std::vector<std::string> problems;
    SupervisorOptions o;
    o.log_dir = not_dir + "/logs";
    o.on_log_problem = [&](const std::string& d, const std::string& what) {
        std::lock_guard lk(mu);
        problems.push_back(d + ": " + what);
    };
    Supervisor sup(*env.core, *env.svc, o);
    auto s = child_spec("chatty", {"lines", "5"});
    s.restart = RestartPolicy::no;
    REQUIRE(sup.add(s));
    auto s2 = child_spec("stays", {"sleep", "60000"});
    REQUIRE(sup.add(s2));
    REQUIRE(sup.start("stays"));
    REQUIRE(sup.start("chatty"));
    REQUIRE(env.log.wait("chatty", DaemonState::stopped));  // exit 0: not a failure
    CHECK(core::test::eventually([&] { return sup.get("chatty")->log_errors >= 5; }));
    auto st = sup.get("chatty");
    INFO("log_error: " << st->log_error);
    CHECK(st->log_error.find("Not a directory") != std::string::npos);
    CHECK(st->last_exit_code == 0);
    {
        std::lock_guard lk(mu);
        REQUIRE_FALSE(problems.empty());
        CHECK(problems[0].rfind("chatty: ", 0) == 0);
    }
    CHECK(sup.get("stays")->state == DaemonState::running);
    REQUIRE(sup.stop_all());
}

TEST_CASE("Supervisor_Stop_Ugly", "[supervisor]") {
    CORE_LEAK_GUARD();
    Env env;
    Supervisor sup(*env.core, *env.svc);
    SECTION("a SIGSTOPped daemon stops at once (SIGCONT follows the stop signal)") {
        auto s = child_spec("frozen", {"sleep", "60000"});
        s.stop_timeout = 30000ms;
        REQUIRE(sup.add(s));
        REQUIRE(sup.start("frozen"));
        const int pid = sup.get("frozen")->pid;
        REQUIRE(::kill(pid, SIGSTOP) == 0);
        REQUIRE(core::test::eventually([&] {
            std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
            std::string line;
            std::getline(f, line);
            auto close = line.rfind(')');
            return close != std::string::npos && line[close + 2] == 'T';
        }));
        const auto t0 = std::chrono::steady_clock::now();
        REQUIRE(sup.stop("frozen"));
        CHECK(std::chrono::steady_clock::now() - t0 < 10s);  // not the 30s stop_timeout
        CHECK(sup.get("frozen")->last_signal == SIGTERM);
    }
}

// The Supervisor learns exits and output from each process's own hooks, not from the bus: with
// the Service's events off it still restarts a crashing daemon, quotes its last line and writes
// its log file.
TEST_CASE("Supervisor_NoEvents_Good", "[supervisor]") {
    CORE_LEAK_GUARD();
    Env env({}, core::process::ServiceOptions{.events = false});
    const auto dir = std::filesystem::temp_directory_path() /
                     ("core-sup-noevents-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    SupervisorOptions so;
    so.log_dir = dir.string();
    Supervisor sup(*env.core, *env.svc, so);

    SECTION("a crashing daemon restarts, then fails at the start limit, its last line quoted") {
        auto s = child_spec("crash", {"-c", "echo 'bind: address in use'; exit 1"});
        s.command = "sh";
        s.start_limit = {3, 60000ms};
        REQUIRE(sup.add(s));
        REQUIRE(sup.start("crash"));
        REQUIRE(env.log.wait("crash", DaemonState::failed));
        auto st = sup.get("crash");
        REQUIRE(st);
        CHECK(st->restarts == 2);
        CHECK(st->last_exit_code == 1);
        CHECK(st->pid == 0);
        const auto evs = env.log.of("crash");
        INFO(evs.back().reason);
        CHECK(evs.back().reason.find("exited with code 1: bind: address in use") !=
              std::string::npos);
        REQUIRE_FALSE(st->last_lines.empty());
        CHECK(st->last_lines.back() == "bind: address in use");
        // Three processes, three lines in the log file (written off the reaper thread).
        REQUIRE_FALSE(st->log_path.empty());
        std::string text;
        for (auto until = std::chrono::steady_clock::now() + kWait;
             std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(10ms)) {
            std::ifstream f(st->log_path);
            std::stringstream ss;
            ss << f.rdbuf();
            text = ss.str();
            if (text.size() >= 3 * std::string("bind: address in use\n").size()) break;
        }
        CHECK(text == "bind: address in use\nbind: address in use\nbind: address in use\n");
    }

    SECTION("an unterminated last line and a daemon that exits before start returns") {
        auto s = child_spec("quick", {"-c", "printf 'no newline'; exit 2"});
        s.command = "sh";
        s.restart = RestartPolicy::no;
        REQUIRE(sup.add(s));
        REQUIRE(sup.start("quick"));
        REQUIRE(env.log.wait("quick", DaemonState::failed));
        auto st = sup.get("quick");
        REQUIRE(st);
        CHECK(st->last_exit_code == 2);
        REQUIRE_FALSE(st->last_lines.empty());
        CHECK(st->last_lines.back() == "no newline");
    }

    SECTION("stop of a running daemon") {
        REQUIRE(sup.add(child_spec("long", {"sleep", "60000"})));
        REQUIRE(sup.start("long"));
        REQUIRE(env.log.wait("long", DaemonState::running));
        REQUIRE(sup.stop("long"));
        CHECK(sup.get("long")->state == DaemonState::stopped);
        CHECK(env.svc->list(true).empty());
    }
    REQUIRE(sup.stop_all());
    std::filesystem::remove_all(dir);
}

// Supervisor::usage: the current process's memory and CPU; errors for an unknown daemon and
// for one without a process.
TEST_CASE("Supervisor_Usage_Good", "[supervisor]") {
    CORE_LEAK_GUARD();
    Env env;
    Supervisor sup(*env.core, *env.svc);
    REQUIRE(sup.add(child_spec("up", {"sleep", "60000"})));
    REQUIRE(sup.add(child_spec("down", {"sleep", "60000"})));
    REQUIRE(sup.start("up"));
    REQUIRE(env.log.wait("up", DaemonState::running));
    auto u = sup.usage("up");
    REQUIRE(u);
    CHECK(u->pid == sup.get("up")->pid);
    REQUIRE(u->memory_bytes);
    CHECK(*u->memory_bytes > 0);
    CHECK_FALSE(u->memory_source.empty());
    REQUIRE(u->cpu_seconds);
    CHECK(*u->cpu_seconds >= 0);
    auto none = sup.usage("down");
    REQUIRE_FALSE(none);
    CHECK(none.error().code() == ESRCH);
    CHECK(none.error().what().find("\"down\"") != std::string::npos);
    auto unknown = sup.usage("nope");
    REQUIRE_FALSE(unknown);
    CHECK(unknown.error().what().find("unknown daemon: nope") != std::string::npos);
    REQUIRE(sup.stop_all());
}
