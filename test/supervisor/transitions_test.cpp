// The Supervisor's transitions as pure functions (lib/supervisor/transitions.hpp): what a daemon
// does after its process ended and after a health-check result, with no thread, process or
// clock.
#include <catch2/catch_test_macros.hpp>

#include "guard.hpp"
#include "supervisor/transitions.hpp"

using namespace std::chrono_literals;
using core::process::DaemonState;
using core::process::RestartPolicy;
using core::process::detail::After;
using core::process::detail::Clock;
using core::process::detail::decide_end;
using core::process::detail::decide_health;
using core::process::detail::EndInput;
using core::process::detail::ExitInfo;
using core::process::detail::HealthInput;
using core::process::detail::kLastLineChars;

namespace {

const Clock::time_point t0 = Clock::time_point{} + 1000h;

EndInput crashed(int code) {
    EndInput in;
    in.exit = ExitInfo{code, 0, false, false};
    in.backoff = {100ms, 2.0, 1000ms, 0.0};
    in.start_limit = {5, 60000ms};
    in.reset_after = 10s;
    in.now = t0;
    return in;
}

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("Transitions_DecideEnd_Good", "[supervisor]") {
    CORE_LEAK_GUARD();
    SECTION("a crash under on-failure backs off, the delay growing with the attempt") {
        auto in = crashed(3);
        in.last_line = "OSError: [Errno 98] Address already in use";
        auto x = decide_end(in);
        CHECK(x.state == DaemonState::backoff);
        CHECK(x.delay == 100ms);
        CHECK(x.restart_at == t0 + 100ms);
        CHECK(x.attempt == 1);
        CHECK(x.coming_back);
        CHECK_FALSE(x.start_again);
        CHECK(x.reason == "exited with code 3: OSError: [Errno 98] Address already in use");
        CHECK(x.last_error == x.reason);
        in.attempt = 3;
        CHECK(decide_end(in).delay == 800ms);
    }
    SECTION("a clean exit under on-failure stops, with no error") {
        auto x = decide_end(crashed(0));
        CHECK(x.state == DaemonState::stopped);
        CHECK_FALSE(x.last_error);
        CHECK_FALSE(x.coming_back);
    }
    SECTION("restart always: a clean exit backs off too") {
        auto in = crashed(0);
        in.restart = RestartPolicy::always;
        CHECK(decide_end(in).state == DaemonState::backoff);
    }
    SECTION("a stop or a remove we asked for is not a failure") {
        auto in = crashed(-1);
        in.exit.signal = 15;
        in.after = After::stop;
        in.last_line = "bye";
        auto x = decide_end(in);
        CHECK(x.state == DaemonState::stopped);
        CHECK(has(x.reason, "stopped: "));
        CHECK_FALSE(has(x.reason, "bye"));
        CHECK_FALSE(x.last_error);
        in.after = After::remove;
        x = decide_end(in);
        CHECK(x.erase);
        CHECK(has(x.reason, "removed: "));
    }
    SECTION("restart and wait_deps start again, whatever the policy") {
        for (After a : {After::restart, After::wait_deps}) {
            auto in = crashed(3);
            in.after = a;
            in.restart = RestartPolicy::no;
            auto x = decide_end(in);
            CHECK(x.start_again);
            CHECK(x.coming_back);
            CHECK_FALSE(x.state);
        }
    }
    SECTION("a long enough stable period resets the backoff, even when unhealthy ended it") {
        auto in = crashed(1);
        in.after = After::unhealthy;
        in.attempt = 4;
        in.stable_since = t0 - 60s;
        in.stable_until = t0 - 30s;  // turned unhealthy 30 s ago, after 30 s healthy
        auto x = decide_end(in);
        CHECK(x.attempt == 1);  // reset, then this failure
        CHECK(x.delay == 100ms);
        in.stable_since = t0 - 35s;  // only 5 s healthy
        CHECK(decide_end(in).attempt == 5);
    }
    SECTION("an unhealthy stop says why") {
        auto in = crashed(-1);
        in.exit.signal = 15;
        in.after = After::unhealthy;
        in.unhealthy_why = "watchdog: no WATCHDOG=1 within 1000ms";
        auto x = decide_end(in);
        CHECK(has(x.reason, "after watchdog: no WATCHDOG=1 within 1000ms"));
        CHECK(x.state == DaemonState::backoff);
    }
}

TEST_CASE("Transitions_DecideEnd_Bad", "[supervisor]") {
    CORE_LEAK_GUARD();
    SECTION("the start limit: failed now rather than after a useless wait") {
        auto in = crashed(3);
        in.start_limit = {2, 60000ms};
        in.window.record(in.start_limit, t0 - 2s);
        in.window.record(in.start_limit, t0 - 1s);
        auto x = decide_end(in);
        CHECK(x.state == DaemonState::failed);
        REQUIRE(x.last_error);
        CHECK(has(*x.last_error, "start limit hit: 2 starts within 60000ms"));
        CHECK(has(x.reason, "exited with code 3; start limit hit"));
        CHECK_FALSE(x.restart_at);
        CHECK_FALSE(x.coming_back);
    }
    SECTION("a spawn failure's reason is its error, never a last line") {
        auto in = crashed(0);
        in.exit.spawn_failed = true;
        in.detail = "process.start: exec \"nope\": No such file or directory";
        in.last_line = "stale";
        in.restart = RestartPolicy::no;
        auto x = decide_end(in);
        CHECK(x.state == DaemonState::failed);
        CHECK(x.reason == in.detail);
        CHECK(x.last_error == in.detail);
    }
}

TEST_CASE("Transitions_DecideEnd_Ugly", "[supervisor]") {
    CORE_LEAK_GUARD();
    SECTION("a huge last line is cut") {
        auto in = crashed(1);
        in.last_line = std::string(100000, 'x');
        auto x = decide_end(in);
        CHECK(x.reason.size() < kLastLineChars + 64);
        CHECK(has(x.reason, "…"));
    }
    SECTION("deciding does not change the window it was given") {
        auto in = crashed(1);
        in.start_limit = {1, 60000ms};
        in.window.record(in.start_limit, t0 - 1s);
        (void)decide_end(in);
        CHECK(in.window.count() == 1);
    }
}

TEST_CASE("Transitions_DecideHealth_Good", "[supervisor]") {
    CORE_LEAK_GUARD();
    HealthInput in;
    in.failures_to_trip = 3;
    SECTION("a pass makes a running daemon healthy and starts its stable period") {
        in.ok = true;
        in.failures = 2;
        auto x = decide_health(in);
        CHECK(x.failures == 0);
        CHECK(x.state == DaemonState::healthy);
        CHECK(x.stable_begins);
        in.state = DaemonState::healthy;
        x = decide_health(in);
        CHECK_FALSE(x.state);  // already healthy: no event
    }
    SECTION("failures count up to the trip, then unhealthy and a restart") {
        in.error = "GET /health: status 500";
        auto x = decide_health(in);
        CHECK(x.failures == 1);
        CHECK_FALSE(x.state);
        CHECK(x.last_error == "health: GET /health: status 500");
        in.failures = 2;
        x = decide_health(in);
        CHECK(x.state == DaemonState::unhealthy);
        CHECK(x.reason == "health: GET /health: status 500 (3 in a row)");
        CHECK(x.stable_ends);
        CHECK(x.restart);
    }
}

TEST_CASE("Transitions_DecideHealth_Bad", "[supervisor]") {
    CORE_LEAK_GUARD();
    HealthInput in;
    in.failures_to_trip = 1;
    in.error = "timeout";
    SECTION("restart no: unhealthy, but left running") {
        in.restart = RestartPolicy::no;
        auto x = decide_health(in);
        CHECK(x.state == DaemonState::unhealthy);
        CHECK_FALSE(x.restart);
    }
    SECTION("already unhealthy: counted, no second event or restart") {
        in.state = DaemonState::unhealthy;
        in.failures = 5;
        auto x = decide_health(in);
        CHECK(x.failures == 6);
        CHECK_FALSE(x.state);
        CHECK_FALSE(x.restart);
    }
}
