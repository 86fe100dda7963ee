// The pure parts of supervision: backoff delays, the start-limit window, restart decisions,
// spec validation and signal names.
#include <catch2/catch_test_macros.hpp>
#include <climits>

#include "core/process/supervisor.hpp"
#include "guard.hpp"
#include "supervisor/policy.hpp"

using namespace std::chrono_literals;
using core::process::BackoffPolicy;
using core::process::DaemonSpec;
using core::process::RestartPolicy;
using core::process::StartLimit;
using core::process::detail::backoff_delay;
using core::process::detail::Clock;
using core::process::detail::ExitInfo;
using core::process::detail::StartWindow;

TEST_CASE("Backoff_Delay_Good", "[supervisor]") {
    CORE_LEAK_GUARD();
    BackoffPolicy p{100ms, 2.0, 1000ms, 0.0};
    SECTION("exponential up to the cap") {
        CHECK(backoff_delay(p, 1, 0.5) == 100ms);
        CHECK(backoff_delay(p, 2, 0.5) == 200ms);
        CHECK(backoff_delay(p, 3, 0.5) == 400ms);
        CHECK(backoff_delay(p, 4, 0.5) == 800ms);
        CHECK(backoff_delay(p, 5, 0.5) == 1000ms);
        CHECK(backoff_delay(p, 50, 0.5) == 1000ms);
    }
    SECTION("factor 1 is a constant delay") {
        p.factor = 1.0;
        CHECK(backoff_delay(p, 1, 0) == 100ms);
        CHECK(backoff_delay(p, 9, 0) == 100ms);
    }
    SECTION("jitter only shortens, by at most jitter x delay") {
        p.jitter = 0.5;
        CHECK(backoff_delay(p, 2, 0.0) == 200ms);
        CHECK(backoff_delay(p, 2, 0.5) == 150ms);
        const auto low = backoff_delay(p, 2, 0.999999);
        CHECK(low >= 100ms);
        CHECK(low < 101ms);
        CHECK(backoff_delay(p, 9, 0.0) == 1000ms);  // the cap is never exceeded
    }
}

TEST_CASE("Backoff_Delay_Ugly", "[supervisor]") {
    CORE_LEAK_GUARD();
    SECTION("huge attempt counts do not overflow") {
        BackoffPolicy p{100ms, 1000.0, 30000ms, 0.0};
        CHECK(backoff_delay(p, UINT_MAX, 0.3) == 30000ms);
    }
    SECTION("attempt 0 is treated as the first") {
        BackoffPolicy p{100ms, 2.0, 30000ms, 0.0};
        CHECK(backoff_delay(p, 0, 0.0) == 100ms);
    }
    SECTION("zero initial delay stays zero") {
        BackoffPolicy p{0ms, 2.0, 0ms, 1.0};
        CHECK(backoff_delay(p, 7, 0.9) == 0ms);
    }
}

TEST_CASE("Backoff_Reset_Good", "[supervisor]") {
    CORE_LEAK_GUARD();
    using core::process::detail::resets_backoff;
    const auto t0 = Clock::now();
    SECTION("a stable period of reset_after or more resets, whatever ended it") {
        CHECK(resets_backoff(t0, t0 + 10s, 10s));
        CHECK(resets_backoff(t0, t0 + 11s, 10s));
        // Healthy for 12s, then unhealthy: the stable period ends when it turned unhealthy,
        // not when the stop that followed reaped it (the end handed in is that time).
        CHECK(resets_backoff(t0, t0 + 12s, 10s));
    }
    SECTION("a zero reset_after resets after any stable period") {
        CHECK(resets_backoff(t0, t0, 0ms));
    }
}

TEST_CASE("Backoff_Reset_Bad", "[supervisor]") {
    CORE_LEAK_GUARD();
    using core::process::detail::resets_backoff;
    const auto t0 = Clock::now();
    SECTION("too short a stable period") {
        CHECK_FALSE(resets_backoff(t0, t0 + 9999ms, 10s));
    }
    SECTION("never stable (crashed while starting, never healthy)") {
        CHECK_FALSE(resets_backoff(std::nullopt, t0 + 1h, 10s));
    }
    SECTION("an end before the start (clock order broken) is no period") {
        CHECK_FALSE(resets_backoff(t0 + 20s, t0, 10s));
    }
}

TEST_CASE("StartWindow_Allows_Good", "[supervisor]") {
    CORE_LEAK_GUARD();
    const StartLimit limit{3, 1000ms};
    StartWindow w;
    const auto t0 = Clock::now();
    for (int i = 0; i < 3; ++i) {
        CHECK(w.allows(limit, t0 + i * 10ms));
        w.record(limit, t0 + i * 10ms);
    }
    CHECK_FALSE(w.allows(limit, t0 + 30ms));   // a 4th start within 1 s
    CHECK_FALSE(w.allows(limit, t0 + 999ms));  // the first start is still inside
    CHECK(w.allows(limit, t0 + 1000ms));       // it has left the window
    w.clear();
    CHECK(w.allows(limit, t0 + 40ms));
}

TEST_CASE("StartWindow_Allows_Ugly", "[supervisor]") {
    CORE_LEAK_GUARD();
    SECTION("burst 0 means no limit and records nothing") {
        const StartLimit none{0, 1000ms};
        StartWindow w;
        for (int i = 0; i < 1000; ++i) {
            CHECK(w.allows(none, Clock::now()));
            w.record(none, Clock::now());
        }
        CHECK(w.count() == 0);
    }
    SECTION("the window keeps at most burst entries") {
        const StartLimit limit{2, 1000ms};
        StartWindow w;
        for (int i = 0; i < 10; ++i) w.record(limit, Clock::now());
        CHECK(w.count() == 2);
    }
}

TEST_CASE("Policy_ShouldRestart_Good", "[supervisor]") {
    CORE_LEAK_GUARD();
    using core::process::detail::should_restart;
    const ExitInfo clean{0, 0, false, false};
    const ExitInfo code3{3, 0, false, false};
    const ExitInfo killed{-1, 9, false, false};
    const ExitInfo spawn{0, 0, true, false};
    const ExitInfo unhealthy{0, 0, false, true};
    SECTION("no never restarts") {
        for (const auto& e : {clean, code3, killed, spawn, unhealthy})
            CHECK_FALSE(should_restart(RestartPolicy::no, e));
    }
    SECTION("on-failure restarts on a failure only") {
        CHECK_FALSE(should_restart(RestartPolicy::on_failure, clean));
        for (const auto& e : {code3, killed, spawn, unhealthy})
            CHECK(should_restart(RestartPolicy::on_failure, e));
    }
    SECTION("always restarts after a clean exit too") {
        for (const auto& e : {clean, code3, killed, spawn, unhealthy})
            CHECK(should_restart(RestartPolicy::always, e));
    }
    SECTION("the reason says what happened") {
        using core::process::detail::describe;
        CHECK(describe(code3) == "exited with code 3");
        CHECK(describe(killed) == "killed by SIGKILL");
        CHECK(describe(unhealthy) == "exited with code 0 after failing its health check");
    }
}

TEST_CASE("Policy_ParseRestartPolicy_Bad", "[supervisor]") {
    CORE_LEAK_GUARD();
    using core::process::parse_restart_policy;
    CHECK(parse_restart_policy("on-failure").value() == RestartPolicy::on_failure);
    CHECK(parse_restart_policy("on_failure").value() == RestartPolicy::on_failure);
    CHECK(parse_restart_policy("always").value() == RestartPolicy::always);
    CHECK(parse_restart_policy("no").value() == RestartPolicy::no);
    auto r = parse_restart_policy("sometimes");
    REQUIRE_FALSE(r);
    CHECK(r.error().what().find("sometimes") != std::string::npos);
    CHECK(std::string(core::process::to_string(RestartPolicy::on_failure)) == "on-failure");
}

TEST_CASE("Signal_Parse_Good", "[supervisor]") {
    CORE_LEAK_GUARD();
    using core::process::parse_signal;
    CHECK(parse_signal("SIGTERM").value() == 15);
    CHECK(parse_signal("TERM").value() == 15);
    CHECK(parse_signal("term").value() == 15);
    CHECK(parse_signal("9").value() == 9);
    CHECK(parse_signal("SIGUSR1").value() == 10);
    CHECK(parse_signal("SIGRTMIN+1").value() > 32);
    CHECK(core::process::signal_name(15) == "SIGTERM");
    CHECK(core::process::signal_name(9) == "SIGKILL");
}

TEST_CASE("Signal_Parse_Bad", "[supervisor]") {
    CORE_LEAK_GUARD();
    using core::process::parse_signal;
    for (const char* bad : {"", "SIG", "SIGFOO", "0", "-1", "999", "15x", "SIGRTMIN+99999999999",
                            "RTMAX-100", "SIGRTMIN-1"}) {
        INFO(bad);
        auto r = parse_signal(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().what().find("unknown signal") != std::string::npos);
    }
}

namespace {
DaemonSpec good_spec() {
    DaemonSpec s;
    s.name = "web-1.a_b";
    s.command = "/bin/true";
    return s;
}
}  // namespace

TEST_CASE("Spec_Validate_Good", "[supervisor]") {
    CORE_LEAK_GUARD();
    CHECK(core::process::validate(good_spec()));
    auto s = good_spec();
    s.health.command = {"/bin/true"};
    s.start_limit.burst = 0;
    s.start_limit.interval = 0ms;  // irrelevant without a limit
    s.stop_timeout = 0ms;          // SIGKILL at once
    CHECK(core::process::validate(s));
}

TEST_CASE("Spec_Validate_Bad", "[supervisor]") {
    CORE_LEAK_GUARD();
    struct Case {
        const char* key;
        std::function<void(DaemonSpec&)> edit;
    };
    const std::vector<Case> cases = {
        {"name", [](DaemonSpec& s) { s.name = ""; }},
        {"name", [](DaemonSpec& s) { s.name = "a/b"; }},
        {"command", [](DaemonSpec& s) { s.command = ""; }},
        {"env", [](DaemonSpec& s) { s.env = {"NOEQUALS"}; }},
        {"env", [](DaemonSpec& s) { s.env = {"=v"}; }},
        {"health",
         [](DaemonSpec& s) {
             s.health.url = "http://127.0.0.1:1/";
             s.health.command = {"x"};
         }},
        {"health.url", [](DaemonSpec& s) { s.health.url = "ftp://x"; }},
        {"health.interval", [](DaemonSpec& s) { s.health.interval = 0ms; }},
        {"health.timeout", [](DaemonSpec& s) { s.health.timeout = -1ms; }},
        {"health.failures", [](DaemonSpec& s) { s.health.failures = 0; }},
        {"backoff.initial", [](DaemonSpec& s) { s.backoff.initial = -5ms; }},
        {"backoff.max", [](DaemonSpec& s) { s.backoff.max = 10ms; }},
        {"backoff.factor", [](DaemonSpec& s) { s.backoff.factor = 0.5; }},
        {"backoff.jitter", [](DaemonSpec& s) { s.backoff.jitter = 1.5; }},
        {"reset_after", [](DaemonSpec& s) { s.reset_after = std::chrono::hours(24 * 400); }},
        {"start_limit.interval", [](DaemonSpec& s) { s.start_limit.interval = 0ms; }},
        {"stop_signal", [](DaemonSpec& s) { s.stop_signal = 0; }},
        {"stop_timeout", [](DaemonSpec& s) { s.stop_timeout = -1ms; }},
    };
    for (const auto& c : cases) {
        auto s = good_spec();
        c.edit(s);
        auto r = core::process::validate(s);
        INFO(c.key);
        REQUIRE_FALSE(r);
        INFO(r.error().what());
        CHECK(r.error().what().find(std::string(c.key) + ":") != std::string::npos);
    }
}
