// core::Context: background, with_cancel, with_timeout, with_deadline, cancel, done, deadline,
// deadline_exceeded, token, reason. Deadlines are observed through the token (an event), never
// by sleeping.
#include <atomic>
#include <catch2/catch_test_macros.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <thread>
#include <vector>

#include "core/context.hpp"
#include "guard.hpp"

using core::Context;
using namespace std::chrono_literals;

namespace {

// Blocks until the token fires or the (generous) safety deadline passes; true if it fired.
bool wait_fired(std::stop_token token, std::chrono::seconds safety = 10s) {
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lk(mu);
    cv.wait_until(lk, token, std::chrono::steady_clock::now() + safety, [] { return false; });
    return token.stop_requested();
}

}  // namespace

TEST_CASE("Context_Background_Good", "[core][context]") {
    CORE_LEAK_GUARD();
    const Context bg = Context::background();
    CHECK_FALSE(bg.done());
    CHECK_FALSE(bg.deadline());
    CHECK_FALSE(bg.deadline_exceeded());
    CHECK(std::string(bg.reason()).empty());
    CHECK_FALSE(bg.token().stop_requested());
}

TEST_CASE("Context_Background_Bad", "[core][context]") {
    CORE_LEAK_GUARD();
    // The background is shared by every caller: cancelling it must not cancel anyone.
    const Context bg = Context::background();
    const Context child = bg.with_cancel();
    bg.cancel();
    CHECK_FALSE(bg.done());
    CHECK_FALSE(Context::background().done());
    CHECK_FALSE(child.done());
}

TEST_CASE("Context_WithCancel_Good", "[core][context]") {
    CORE_LEAK_GUARD();
    const Context parent = Context::background().with_cancel();
    const Context child = parent.with_cancel();
    const Context grandchild = child.with_cancel();
    CHECK_FALSE(grandchild.done());
    parent.cancel();
    CHECK(parent.done());
    CHECK(child.done());
    CHECK(grandchild.done());
    CHECK(grandchild.token().stop_requested());
    CHECK(std::string(grandchild.reason()) == "context cancelled");
}

TEST_CASE("Context_WithCancel_Bad", "[core][context]") {
    CORE_LEAK_GUARD();
    SECTION("a child never cancels its parent or siblings") {
        const Context parent = Context::background().with_cancel();
        const Context a = parent.with_cancel();
        const Context b = parent.with_cancel();
        a.cancel();
        CHECK(a.done());
        CHECK_FALSE(parent.done());
        CHECK_FALSE(b.done());
    }
    SECTION("a child of a cancelled parent is born cancelled") {
        const Context parent = Context::background().with_cancel();
        parent.cancel();
        const Context child = parent.with_cancel();
        CHECK(child.done());
        CHECK(std::string(child.reason()) == "context cancelled");
    }
}

TEST_CASE("Context_WithCancel_Ugly", "[core][context]") {
    CORE_LEAK_GUARD();
    SECTION("a deep chain is cancelled from the root") {
        const Context root = Context::background().with_cancel();
        std::vector<Context> chain{root};
        for (int i = 0; i < 2000; ++i) chain.push_back(chain.back().with_cancel());
        root.cancel();
        for (const auto& c : chain) REQUIRE(c.done());
    }
    SECTION("8 threads make children while another cancels the parent") {
        const Context parent = Context::background().with_cancel();
        std::atomic<bool> go{false};
        std::vector<std::vector<Context>> made(8);
        std::vector<std::thread> threads;
        for (std::size_t t = 0; t < made.size(); ++t) {
            threads.emplace_back([&, t] {
                while (!go.load()) std::this_thread::yield();
                for (int i = 0; i < 300; ++i) made[t].push_back(parent.with_cancel());
            });
        }
        go = true;
        parent.cancel();
        for (auto& th : threads) th.join();
        // Whether made before or after the cancel, every child ends up cancelled.
        for (const auto& v : made)
            for (const auto& c : v) REQUIRE(c.done());
    }
    SECTION("contexts dropped while their parent is cancelled on another thread") {
        for (int round = 0; round < 50; ++round) {
            const Context parent = Context::background().with_cancel();
            std::thread dropper([&] {
                for (int i = 0; i < 50; ++i) {
                    const Context c = parent.with_cancel();
                    (void)c.done();
                }
            });
            parent.cancel();
            dropper.join();
            CHECK(parent.done());
        }
    }
}

TEST_CASE("Context_WithTimeout_Good", "[core][context]") {
    CORE_LEAK_GUARD();
    const Context ctx = Context::background().with_timeout(20ms);
    REQUIRE(ctx.deadline());
    // The deadline fires the token by itself: nobody polls done().
    CHECK(wait_fired(ctx.token()));
    CHECK(ctx.done());
    CHECK(ctx.deadline_exceeded());
    CHECK(std::string(ctx.reason()) == "context deadline exceeded");
    SECTION("children of a timed-out context report the deadline too") {
        const Context parent = Context::background().with_timeout(10ms);
        const Context child = parent.with_cancel();
        CHECK(wait_fired(child.token()));
        CHECK(child.deadline_exceeded());
    }
}

TEST_CASE("Context_WithTimeout_Bad", "[core][context]") {
    CORE_LEAK_GUARD();
    SECTION("zero or negative: already done") {
        CHECK(Context::background().with_timeout(0ns).done());
        const Context neg = Context::background().with_timeout(-5s);
        CHECK(neg.done());
        CHECK(neg.token().stop_requested());
        CHECK(neg.deadline_exceeded());
    }
    SECTION("the most negative duration does not overflow") {
        CHECK(Context::background().with_timeout(std::chrono::nanoseconds::min()).done());
    }
}

TEST_CASE("Context_WithTimeout_Ugly", "[core][context]") {
    CORE_LEAK_GUARD();
    SECTION("a timeout too far away to represent is no deadline, not an overflow") {
        const Context ctx = Context::background().with_timeout(std::chrono::nanoseconds::max());
        CHECK_FALSE(ctx.done());
        CHECK_FALSE(ctx.deadline_exceeded());
        ctx.cancel();
        CHECK(ctx.done());
    }
    SECTION("a child's later timeout does not extend the parent's deadline") {
        const Context parent = Context::background().with_timeout(10ms);
        const Context child = parent.with_timeout(1h);
        REQUIRE(child.deadline());
        CHECK(*child.deadline() == *parent.deadline());
        CHECK(wait_fired(child.token()));
    }
    SECTION("many timers fire, each once") {
        std::vector<Context> ctxs;
        for (int i = 0; i < 200; ++i)
            ctxs.push_back(Context::background().with_timeout(std::chrono::milliseconds(i % 20)));
        for (const auto& c : ctxs) REQUIRE(wait_fired(c.token()));
    }
}

TEST_CASE("Context_WithDeadline_Good", "[core][context]") {
    CORE_LEAK_GUARD();
    const auto when = Context::Clock::now() + 15ms;
    const Context ctx = Context::background().with_deadline(when);
    REQUIRE(ctx.deadline());
    CHECK(*ctx.deadline() == when);
    CHECK(wait_fired(ctx.token()));
    CHECK(ctx.deadline_exceeded());
}

TEST_CASE("Context_WithDeadline_Bad", "[core][context]") {
    CORE_LEAK_GUARD();
    const Context past = Context::background().with_deadline(Context::Clock::now() - 1s);
    CHECK(past.done());
    CHECK(past.deadline_exceeded());
}

TEST_CASE("Context_Cancel_Good", "[core][context]") {
    CORE_LEAK_GUARD();
    const Context ctx = Context::background().with_cancel();
    std::atomic<int> calls{0};
    std::stop_callback cb(ctx.token(), [&] { ++calls; });
    ctx.cancel();
    CHECK(calls == 1);
    CHECK(ctx.done());
    SECTION("copies share the state") {
        const Context copy = ctx;  // NOLINT(performance-unnecessary-copy-initialization)
        CHECK(copy.done());
    }
}

TEST_CASE("Context_Cancel_Bad", "[core][context]") {
    CORE_LEAK_GUARD();
    const Context ctx = Context::background().with_timeout(1h);
    std::atomic<int> calls{0};
    std::stop_callback cb(ctx.token(), [&] { ++calls; });
    ctx.cancel();
    ctx.cancel();  // idempotent
    CHECK(calls == 1);
    // Cancelled before the deadline: the reason is the cancel, not the deadline.
    CHECK_FALSE(ctx.deadline_exceeded());
    CHECK(std::string(ctx.reason()) == "context cancelled");
}

TEST_CASE("Context_Done_Good", "[core][context]") {
    CORE_LEAK_GUARD();
    const Context ctx = Context::background().with_cancel();
    CHECK_FALSE(ctx.done());
    ctx.cancel();
    CHECK(ctx.done());
}

TEST_CASE("Context_Done_Bad", "[core][context]") {
    CORE_LEAK_GUARD();
    // A parent cancelled after the child was made still reaches the child.
    const Context parent = Context::background().with_cancel();
    const Context child = parent.with_timeout(1h);
    CHECK_FALSE(child.done());
    parent.cancel();
    CHECK(child.done());
    CHECK_FALSE(child.deadline_exceeded());
}

TEST_CASE("Context_Deadline_Good", "[core][context]") {
    CORE_LEAK_GUARD();
    const auto before = Context::Clock::now();
    const Context ctx = Context::background().with_timeout(1h);
    REQUIRE(ctx.deadline());
    CHECK(*ctx.deadline() >= before + 1h);
    SECTION("the earliest deadline in the chain wins") {
        const Context child = ctx.with_timeout(1min);
        REQUIRE(child.deadline());
        CHECK(*child.deadline() < *ctx.deadline());
        const Context grandchild = child.with_cancel();
        CHECK(grandchild.deadline() == child.deadline());
    }
}

TEST_CASE("Context_Deadline_Bad", "[core][context]") {
    CORE_LEAK_GUARD();
    CHECK_FALSE(Context::background().deadline());
    CHECK_FALSE(Context::background().with_cancel().deadline());
}

TEST_CASE("Context_DeadlineExceeded_Good", "[core][context]") {
    CORE_LEAK_GUARD();
    const Context ctx = Context::background().with_timeout(1ms);
    CHECK(wait_fired(ctx.token()));
    CHECK(ctx.deadline_exceeded());
}

TEST_CASE("Context_DeadlineExceeded_Bad", "[core][context]") {
    CORE_LEAK_GUARD();
    const Context ctx = Context::background().with_cancel();
    ctx.cancel();
    CHECK_FALSE(ctx.deadline_exceeded());
}

TEST_CASE("Context_Token_Good", "[core][context]") {
    CORE_LEAK_GUARD();
    const Context ctx = Context::background().with_cancel();
    std::stop_token tok = ctx.token();
    CHECK(tok.stop_possible());
    std::atomic<bool> woke{false};  // Catch2 assertions belong on the test's own thread
    std::thread waiter([tok, &woke] { woke = wait_fired(tok); });
    ctx.cancel();
    waiter.join();
    CHECK(woke);
    CHECK(tok.stop_requested());
}

TEST_CASE("Context_Token_Bad", "[core][context]") {
    CORE_LEAK_GUARD();
    // A token outlives its Context: it stays valid and still reports the cancel.
    std::stop_token tok;
    {
        const Context ctx = Context::background().with_cancel();
        tok = ctx.token();
        ctx.cancel();
    }
    CHECK(tok.stop_requested());
    CHECK_FALSE(Context::background().token().stop_requested());
}

TEST_CASE("Context_Reason_Good", "[core][context]") {
    CORE_LEAK_GUARD();
    const Context c = Context::background().with_cancel();
    c.cancel();
    CHECK(std::string(c.reason()) == "context cancelled");
    const Context d = Context::background().with_timeout(-1ns);
    CHECK(std::string(d.reason()) == "context deadline exceeded");
}

TEST_CASE("Context_Reason_Bad", "[core][context]") {
    CORE_LEAK_GUARD();
    CHECK(std::string(Context::background().with_cancel().reason()).empty());
}
