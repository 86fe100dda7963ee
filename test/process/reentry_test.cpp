// Re-entrancy (issue 12 §4): Core::shutdown called from a library thread. A bus subscriber runs
// on the process service's event thread; shutting the Core down from there used to join that
// thread from itself (std::terminate: the host aborted). Shutdown from a subscriber must return
// and leave the host running; a subscriber's shutdown while the main thread shuts down must not
// deadlock; nothing leaks.
#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "common.hpp"

using core::Context;
using core::Value;
using namespace proctest;

TEST_CASE("Reentry_ShutdownFromSubscriber_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    SECTION("a subscriber shuts the Core down on a process's exit") {
        auto c = make_core();
        std::atomic<bool> called{false};
        std::atomic<int> result{-1};  // 1 ok, 0 error
        std::atomic<bool> done{false};
        std::thread::id handler_thread;
        auto sub = c->subscribe([&](const Value& v) {
            if (!v.is<cp::ProcessExited>() || called.exchange(true)) return;
            handler_thread = std::this_thread::get_id();
            auto r = c->shutdown(Context::background());
            result = r ? 1 : 0;
            done = true;
        });
        auto p = service(c)->start(Context::background(), child({"exit", "0"}));
        REQUIRE(p);
        (*p)->wait();
        REQUIRE(core::test::eventually([&] { return done.load(); }));
        CHECK(result.load() == 1);
        CHECK(handler_thread != std::this_thread::get_id());  // it did run on a library thread
        // The host is alive and the service is shut down: new work is refused, clearly.
        auto again = service(c)->run(Context::background(), child({"exit", "0"}));
        REQUIRE_FALSE(again);
        CHECK(contains(again.error().what(), "shut down"));
        CHECK(c->shutdown(Context::background()));  // idempotent
        sub.reset();
    }
    SECTION("a subscriber kills a running process and shuts down while others run") {
        auto c = make_core();
        std::atomic<bool> done{false};
        auto sleeper = service(c)->start(Context::background(), child({"sleep", "60000"}));
        REQUIRE(sleeper);
        auto sub = c->subscribe([&](const Value& v) {
            const auto* st = v.get<cp::ProcessStarted>();
            if (!st || st->pid == (*sleeper)->pid() || done.load()) return;
            (void)c->shutdown(Context::background());
            done = true;
        });
        auto trigger = service(c)->start(Context::background(), child({"exit", "0"}));
        REQUIRE(trigger);
        REQUIRE(core::test::eventually([&] { return done.load(); }));
        (*sleeper)->wait();  // the subscriber's shutdown ended it
        CHECK_FALSE((*sleeper)->is_running());
        sub.reset();
    }
}

TEST_CASE("Reentry_ShutdownFromSubscriber_Bad", "[process]") {
    CORE_LEAK_GUARD();
    // The main thread's shutdown kills the sleeper and waits for the event thread to deliver
    // its exit; the subscriber handling that exit calls shutdown too. Before: it waited for the
    // main thread's shutdown, which waited for it (deadlock).
    auto c = make_core();
    std::atomic<bool> sub_done{false};
    auto sub = c->subscribe([&](const Value& v) {
        if (!v.is<cp::ProcessExited>()) return;
        (void)c->shutdown(Context::background());
        sub_done = true;
    });
    auto sleeper = service(c)->start(Context::background(), child({"sleep", "60000"}));
    REQUIRE(sleeper);
    auto main_shutdown =
        std::async(std::launch::async, [&] { return c->shutdown(Context::background()); });
    REQUIRE(main_shutdown.wait_for(30s) == std::future_status::ready);
    CHECK(main_shutdown.get());
    CHECK(core::test::eventually([&] { return sub_done.load(); }));
    sub.reset();
}
