// core::SignalContext, core::block_signals and Context::cancel_by_signal/signal(): a Context
// cancelled by SIGINT/SIGTERM for CLI hosts. Signals are raised at the whole process (kill, as
// Ctrl-C does), with them blocked in every thread of this test program (its only other thread,
// the deadline timer, blocks everything); the test waits on the context's token, never sleeps.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch_test_macros.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <stop_token>

#include "core/signal_context.hpp"
#include "guard.hpp"

using core::Context;
using core::SignalContext;
using namespace std::chrono_literals;

namespace {

bool wait_fired(std::stop_token token, std::chrono::seconds safety = 10s) {
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lk(mu);
    cv.wait_until(lk, token, std::chrono::steady_clock::now() + safety, [] { return false; });
    return token.stop_requested();
}

bool blocked_here(int sig) {
    sigset_t cur;
    pthread_sigmask(SIG_SETMASK, nullptr, &cur);
    return sigismember(&cur, sig) == 1;
}

}  // namespace

TEST_CASE("Context_CancelBySignal_Good", "[core][context][signal]") {
    CORE_LEAK_GUARD();
    const Context ctx = Context::background().with_cancel();
    const Context before = ctx.with_cancel();
    ctx.cancel_by_signal(SIGTERM);
    CHECK(ctx.done());
    CHECK_FALSE(ctx.deadline_exceeded());
    CHECK(ctx.signal() == SIGTERM);
    CHECK(std::string(ctx.reason()) == "interrupted by SIGTERM");
    SECTION("children made before and after carry the signal") {
        CHECK(before.signal() == SIGTERM);
        CHECK(std::string(before.reason()) == "interrupted by SIGTERM");
        const Context after = ctx.with_timeout(1h);
        CHECK(after.done());
        CHECK(std::string(after.reason()) == "interrupted by SIGTERM");
    }
}

TEST_CASE("Context_CancelBySignal_Ugly", "[core][context][signal]") {
    CORE_LEAK_GUARD();
    SECTION("the first cause stays") {
        const Context ctx = Context::background().with_cancel();
        ctx.cancel();
        ctx.cancel_by_signal(SIGINT);
        CHECK(ctx.signal() == 0);
        CHECK(std::string(ctx.reason()) == "context cancelled");
    }
    SECTION("the background root cannot be cancelled") {
        Context::background().cancel_by_signal(SIGINT);
        CHECK_FALSE(Context::background().done());
        CHECK(Context::background().signal() == 0);
    }
    SECTION("an unknown number still reads") {
        const Context ctx = Context::background().with_cancel();
        ctx.cancel_by_signal(10000);
        CHECK(ctx.done());
        CHECK(std::string(ctx.reason()) == "interrupted by a signal");
    }
}

TEST_CASE("SignalContext_Create_Good", "[core][signal]") {
    CORE_LEAK_GUARD();
    REQUIRE(core::block_signals({SIGINT, SIGTERM}));
    SECTION("SIGINT at the process cancels the context, with that reason") {
        auto sc = SignalContext::create({SIGINT, SIGTERM});
        REQUIRE(sc);
        const Context ctx = sc->context();
        const Context child = ctx.with_timeout(1h);
        CHECK_FALSE(ctx.done());
        CHECK(sc->signal() == 0);
        REQUIRE(::kill(::getpid(), SIGINT) == 0);
        REQUIRE(wait_fired(ctx.token()));
        CHECK(sc->signal() == SIGINT);
        CHECK(ctx.signal() == SIGINT);
        CHECK(std::string(ctx.reason()) == "interrupted by SIGINT");
        REQUIRE(wait_fired(child.token()));
        CHECK(std::string(child.reason()) == "interrupted by SIGINT");
        SECTION("a second signal is consumed and changes nothing") {
            REQUIRE(::kill(::getpid(), SIGTERM) == 0);
            sc->stop();  // drains what is pending
            CHECK(sc->signal() == SIGINT);
            CHECK(std::string(ctx.reason()) == "interrupted by SIGINT");
        }
    }
    SECTION("the default set is SIGINT and SIGTERM") {
        auto sc = SignalContext::create();
        REQUIRE(sc);
        REQUIRE(::kill(::getpid(), SIGTERM) == 0);
        REQUIRE(wait_fired(sc->context().token()));
        CHECK(sc->signal() == SIGTERM);
        CHECK(std::string(sc->context().reason()) == "interrupted by SIGTERM");
    }
    SECTION("the parent's cancel ends it too, without a signal") {
        const Context parent = Context::background().with_cancel();
        auto sc = SignalContext::create({SIGUSR1}, parent);
        REQUIRE(sc);
        parent.cancel();
        CHECK(sc->context().done());
        CHECK(sc->signal() == 0);
        CHECK(std::string(sc->context().reason()) == "context cancelled");
    }
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, SIGINT);
    sigaddset(&unblock, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);
}

TEST_CASE("SignalContext_Create_Bad", "[core][signal]") {
    CORE_LEAK_GUARD();
    for (int sig : {SIGKILL, SIGSTOP, 0, -1, 32, 33, 100000}) {
        INFO(sig);
        auto sc = SignalContext::create({SIGINT, sig});
        REQUIRE_FALSE(sc);
        CHECK(sc.error().code() == EINVAL);
        CHECK(sc.error().what().find("signal_context") == 0);
    }
    auto b = core::block_signals({SIGKILL});
    REQUIRE_FALSE(b);
    CHECK(b.error().code() == EINVAL);
}

TEST_CASE("SignalContext_Stop_Ugly", "[core][signal]") {
    CORE_LEAK_GUARD();
    SECTION("create blocks the signals here; stop on this thread unblocks them again") {
        REQUIRE_FALSE(blocked_here(SIGUSR2));
        {
            auto sc = SignalContext::create({SIGUSR2});
            REQUIRE(sc);
            CHECK(blocked_here(SIGUSR2));
        }
        CHECK_FALSE(blocked_here(SIGUSR2));
    }
    SECTION("stopped from a stop callback on the watcher thread: no self-join, no leak") {
        REQUIRE(core::block_signals({SIGUSR1}));
        std::optional<SignalContext> sc;
        {
            auto r = SignalContext::create({SIGUSR1});
            REQUIRE(r);
            sc.emplace(std::move(*r));
        }
        std::atomic<bool> ran{false};
        std::stop_callback cb(sc->context().token(), [&] {
            sc->stop();  // on the watcher thread: detaches it
            ran = true;
        });
        REQUIRE(::kill(::getpid(), SIGUSR1) == 0);
        REQUIRE(wait_fired(sc->context().token()));
        CHECK(core::test::eventually([&] { return ran.load(); }));
        CHECK(sc->signal() == SIGUSR1);
        sc.reset();
        sigset_t unblock;
        sigemptyset(&unblock);
        sigaddset(&unblock, SIGUSR1);
        pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);
    }
    SECTION("moved: the moved-to one owns the watcher; the context copy stays valid") {
        auto a = SignalContext::create({SIGUSR2});
        REQUIRE(a);
        const Context ctx = a->context();
        SignalContext b(std::move(*a));
        CHECK(b.signal() == 0);
        CHECK(a->signal() == 0);  // moved-from: harmless
        b.stop();
        b.stop();  // idempotent
        CHECK_FALSE(ctx.done());
    }
}
