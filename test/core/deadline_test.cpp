// core::saturating_add, saturating_duration_cast, deadline_after (include/core/deadline.hpp), and
// Context deadlines built from huge durations: nothing overflows, "too far" means never.
#include <catch2/catch_test_macros.hpp>
#include <chrono>
#include <limits>

#include "core/context.hpp"
#include "core/deadline.hpp"
#include "core/options.hpp"
#include "guard.hpp"

using core::Context;
using core::saturating_add;
using core::saturating_duration_cast;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using TP = Clock::time_point;

TEST_CASE("Deadline_SaturatingAdd_Good", "[core][deadline]") {
    CORE_LEAK_GUARD();
    const TP t = Clock::now();
    CHECK(saturating_add(t, 0ns) == t);
    CHECK(saturating_add(t, 1500ms) == t + 1500ms);
    CHECK(saturating_add(t, 2s) == t + 2s);
    CHECK(saturating_add(t, -3s) == t - 3s);
    CHECK(saturating_add(t, std::chrono::duration<double>(0.25)) == t + 250ms);
    SECTION("constexpr, on any clock") {
        constexpr auto sys = saturating_add(std::chrono::sys_seconds{}, std::chrono::hours(1));
        static_assert(sys.time_since_epoch() == std::chrono::hours(1));
        CHECK(sys.time_since_epoch() == 3600s);
    }
    SECTION("deadline_after is now plus d") {
        const TP before = Clock::now();
        const TP d = core::deadline_after(5s);
        CHECK(d >= before + 5s);
        CHECK(d <= Clock::now() + 5s);
    }
}

TEST_CASE("Deadline_SaturatingAdd_Ugly", "[core][deadline]") {
    CORE_LEAK_GUARD();
    const TP now = Clock::now();
    SECTION("a sum beyond the clock is time_point::max()") {
        CHECK(saturating_add(now, std::chrono::nanoseconds::max()) == TP::max());
        CHECK(saturating_add(TP::max(), 1ns) == TP::max());
        CHECK(saturating_add(TP::max() - 1s, 2s) == TP::max());
    }
    SECTION("a duration whose conversion to the clock's rep overflows") {
        CHECK(saturating_add(now, std::chrono::milliseconds::max()) == TP::max());
        CHECK(saturating_add(now, std::chrono::hours::max()) == TP::max());
        CHECK(saturating_add(now, std::chrono::seconds(std::numeric_limits<long long>::max())) ==
              TP::max());
        CHECK(saturating_add(now, std::chrono::duration<double>(1e300)) == TP::max());
        CHECK(saturating_add(now, std::chrono::duration<double>(
                                      std::numeric_limits<double>::infinity())) == TP::max());
    }
    SECTION("\"9223372036s\" parses, and now plus it is max (it fits alone, not after uptime)") {
        auto d = core::parse_duration("9223372036s");
        REQUIRE(d);
        CHECK(saturating_add(now, *d) == TP::max());
        CHECK(saturating_add(TP{}, *d) == TP{} + *d);  // exact where it fits
    }
    SECTION("the other way: time_point::min()") {
        CHECK(saturating_add(TP::min(), -1ns) == TP::min());
        const TP before_epoch = TP{} - 1s;
        CHECK(saturating_add(before_epoch, std::chrono::milliseconds::min()) == TP::min());
        CHECK(saturating_add(before_epoch, std::chrono::duration<double>(-1e300)) == TP::min());
        // From a positive time the clamped duration itself fits: now - 2^63 ns, exactly.
        CHECK(saturating_add(now, std::chrono::milliseconds::min()) ==
              now + std::chrono::nanoseconds::min());
    }
    SECTION("NaN changes nothing") {
        CHECK(saturating_add(now, std::chrono::duration<double>(
                                      std::numeric_limits<double>::quiet_NaN())) == now);
    }
}

TEST_CASE("Deadline_SaturatingDurationCast_Good", "[core][deadline]") {
    CORE_LEAK_GUARD();
    CHECK(saturating_duration_cast<std::chrono::nanoseconds>(1500ms) == 1500000000ns);
    CHECK(saturating_duration_cast<std::chrono::milliseconds>(1999us) == 1ms);  // truncates
    CHECK(saturating_duration_cast<std::chrono::milliseconds>(
              std::chrono::duration<double>(0.25)) == 250ms);
    CHECK(saturating_duration_cast<std::chrono::seconds>(std::chrono::nanoseconds::max()) ==
          std::chrono::seconds(9223372036));
}

TEST_CASE("Deadline_SaturatingDurationCast_Ugly", "[core][deadline]") {
    CORE_LEAK_GUARD();
    using ns = std::chrono::nanoseconds;
    CHECK(saturating_duration_cast<ns>(std::chrono::milliseconds::max()) == ns::max());
    CHECK(saturating_duration_cast<ns>(std::chrono::milliseconds::min()) == ns::min());
    CHECK(saturating_duration_cast<ns>(std::chrono::hours::max()) == ns::max());
    CHECK(saturating_duration_cast<ns>(std::chrono::duration<unsigned long long, std::milli>(
              std::numeric_limits<unsigned long long>::max())) == ns::max());
    CHECK(saturating_duration_cast<ns>(std::chrono::duration<double>(
              std::numeric_limits<double>::quiet_NaN())) == ns::zero());
}

TEST_CASE("Deadline_Context_Ugly", "[core][deadline][context]") {
    CORE_LEAK_GUARD();
    SECTION("with_timeout of a huge typed duration is no deadline, not an early one") {
        for (const Context& ctx :
             {Context::background().with_timeout(std::chrono::milliseconds::max()),
              Context::background().with_timeout(std::chrono::hours::max()),
              Context::background().with_timeout(std::chrono::seconds(9223372036)),
              Context::background().with_timeout(std::chrono::nanoseconds::max() - 1ns)}) {
            CHECK_FALSE(ctx.done());
            CHECK_FALSE(ctx.deadline().has_value());
            ctx.cancel();
            CHECK(ctx.done());
        }
    }
    SECTION("with_deadline(time_point::max()) is no deadline") {
        const Context ctx = Context::background().with_deadline(TP::max());
        CHECK_FALSE(ctx.done());
        CHECK_FALSE(ctx.deadline().has_value());
    }
    SECTION("a far but representable deadline is kept and not reached") {
        const Context ctx = Context::background().with_timeout(std::chrono::hours(24 * 365 * 200));
        REQUIRE(ctx.deadline().has_value());
        CHECK(*ctx.deadline() > Clock::now() + std::chrono::hours(24 * 365 * 199));
        CHECK_FALSE(ctx.done());
        CHECK_FALSE(ctx.deadline_exceeded());
    }
    SECTION("a child of a never-context keeps its own deadline") {
        const Context never = Context::background().with_timeout(std::chrono::hours::max());
        const Context child = never.with_timeout(1h);
        REQUIRE(child.deadline().has_value());
        CHECK(*child.deadline() <= Clock::now() + 1h);
    }
}
