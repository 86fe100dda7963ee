// The stress suite (issue 7): many threads starting, killing, timing out and waiting on real
// children at random, then proof that nothing is left: no zombie, no fd, memory back to its
// level, every process in a final state with the right exit code. Bounded to about a minute on
// 2 cores; CORE_STRESS_CYCLES scales it (the sanitizer runs use fewer cycles).
#include <malloc.h>
#include <signal.h>

#include <atomic>
#include <catch2/catch_test_macros.hpp>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/process/process.hpp"
#include "guard.hpp"

namespace cp = core::process;
using namespace std::chrono_literals;

namespace {

int cycles(int fallback) {
    const char* v = std::getenv("CORE_STRESS_CYCLES");
    return v ? std::max(1, std::atoi(v)) : fallback;
}

std::shared_ptr<core::Core> make_core() {
    auto c = core::Core::create({cp::register_service});
    REQUIRE(c);
    REQUIRE((*c)->startup(core::Context::background()));
    return *c;
}

cp::RunOptions child(std::vector<std::string> args) {
    cp::RunOptions o;
    o.command = core::test::child_path();
    o.args = std::move(args);
    return o;
}

std::size_t heap_in_use() {
    return mallinfo2().uordblks;
}

bool final_status(cp::Status s) {
    return s == cp::Status::exited || s == cp::Status::killed || s == cp::Status::failed;
}

// One random cycle; returns an empty string when the outcome is right, else what was wrong.
std::string one_cycle(cp::Service& svc, std::mt19937& rng) {
    const auto ctx = core::Context::background();
    auto jitter = [&] { std::this_thread::sleep_for(std::chrono::microseconds(rng() % 300)); };
    switch (rng() % 5) {
        case 0: {  // natural exit with a code
            const int code = static_cast<int>(rng() % 4);
            auto p = svc.start(ctx, child({"exit", std::to_string(code)}));
            if (!p) return "start: " + p.error().what();
            auto info = (*p)->wait();
            (void)svc.remove(info.id);
            if (info.status != cp::Status::exited || info.exit_code != code)
                return "exit: want " + std::to_string(code) + ", got " +
                       cp::to_string(info.status) + " " + std::to_string(info.exit_code);
            return {};
        }
        case 1: {  // kill a sleeper (SIGTERM works; grace 0 escalates at once)
            auto o = child({"sleep", "10000"});
            o.grace_period = (rng() % 2) ? 0ms : 200ms;
            auto p = svc.start(ctx, o);
            if (!p) return "start: " + p.error().what();
            jitter();
            if (auto k = (*p)->kill(); !k) return "kill: " + k.error().what();
            auto info = (*p)->wait();
            (void)svc.remove(info.id);
            if (info.status != cp::Status::killed || info.exit_code != -1 ||
                (info.signal != SIGTERM && info.signal != SIGKILL))
                return std::string("kill: got ") + cp::to_string(info.status) + " signal " +
                       std::to_string(info.signal);
            return {};
        }
        case 2: {  // kill racing a natural exit: either outcome, never both, never a hang
            auto p = svc.start(ctx, child({"sleep", std::to_string(rng() % 3)}));
            if (!p) return "start: " + p.error().what();
            jitter();
            if (auto k = (*p)->kill(); !k) return "race kill: " + k.error().what();
            auto info = (*p)->wait();
            (void)svc.remove(info.id);
            const bool exited = info.status == cp::Status::exited && info.exit_code == 0;
            const bool killed = info.status == cp::Status::killed && info.exit_code == -1;
            if (!exited && !killed) return std::string("race: got ") + cp::to_string(info.status);
            return {};
        }
        case 3: {  // timeout
            auto o = child({"sleep", "10000"});
            o.timeout = std::chrono::milliseconds(1 + rng() % 5);
            o.grace_period = 0ms;
            auto r = svc.run(ctx, o);
            if (r) return "timeout: run succeeded";
            if (r.error().what().find("timed out") == std::string::npos)
                return "timeout: " + r.error().what();
            return {};
        }
        default: {  // run with output
            auto r = svc.run(ctx, child({"print", "hello"}));
            if (!r) return "run: " + r.error().what();
            if (*r != "hello\n") return "run: output " + *r;
            return {};
        }
    }
}

}  // namespace

namespace {

// Runs `threads` threads of n random cycles each; returns the failures (at most 20).
std::vector<std::string> hammer(cp::Service& svc, int threads, int n, unsigned seed) {
    std::vector<std::string> failures;
    std::mutex mu;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            std::mt19937 rng(seed + static_cast<unsigned>(t));
            for (int i = 0; i < n; ++i) {
                std::string err = one_cycle(svc, rng);
                if (err.empty()) continue;
                std::lock_guard lk(mu);
                if (failures.size() < 20) failures.push_back(err);
            }
        });
    }
    for (auto& th : pool) th.join();
    return failures;
}

}  // namespace

TEST_CASE("Stress_StartKillWait_Ugly", "[stress]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = c->service<cp::Service>("process");
    REQUIRE(svc);
    const int n = cycles(1000);

    // A first round brings every container and allocator arena to its high-water mark; the
    // second, as long, must then leave the heap where the first left it.
    auto failures = hammer(*svc, 8, n / 2, 1234u);
    for (const auto& f : failures) UNSCOPED_INFO(f);
    CHECK(failures.empty());
    svc->clear();
    const std::size_t heap_before = heap_in_use();

    failures = hammer(*svc, 8, n, 5678u);
    for (const auto& f : failures) UNSCOPED_INFO(f);
    CHECK(failures.empty());

    // Every process left in the registry is final; run() removed its own entries.
    for (const auto& id : svc->list()) {
        auto p = svc->get(id);
        REQUIRE(p);
        CHECK(final_status((*p)->status()));
    }
    svc->clear();
    CHECK(svc->list().empty());
    CHECK(core::test::child_pids().empty());
    const std::size_t heap_after = heap_in_use();
    INFO("heap in use after the warm-up round " << heap_before << ", after " << 8 * n
                                                << " more cycles " << heap_after);
    // Back to its level: within 10%, or (high-water marks of queues differ with the machine's
    // load) under 8 bytes a cycle, far below anything a leaked process, fd or event would cost.
    const double growth = static_cast<double>(heap_after) - static_cast<double>(heap_before);
    CHECK((growth <= static_cast<double>(heap_before) * 0.10 || growth / (8.0 * n) < 8.0));
    REQUIRE(c->shutdown(core::Context::background()));
}

TEST_CASE("Stress_ShutdownWhileStarting_Ugly", "[stress]") {
    CORE_LEAK_GUARD();
    for (int round = 0; round < cycles(1000) / 100 + 1; ++round) {
        auto c = make_core();
        auto svc = c->service<cp::Service>("process");
        REQUIRE(svc);
        std::atomic<int> started{0};
        std::atomic<bool> stop{false};
        std::vector<std::thread> threads;
        for (int t = 0; t < 4; ++t) {
            threads.emplace_back([&] {
                while (!stop.load()) {
                    auto p = svc->start(core::Context::background(), child({"sleep", "10000"}));
                    if (p) ++started;
                    // After shutdown, start fails with a clear Error; keep hammering anyway.
                }
            });
        }
        REQUIRE(core::test::eventually([&] { return started.load() >= 20; }));
        REQUIRE(c->shutdown(core::Context::background()));
        stop = true;
        for (auto& th : threads) th.join();
        // Whatever raced with shutdown: every process is final, none is left running.
        for (const auto& id : svc->list()) {
            auto p = svc->get(id);
            REQUIRE(p);
            // A start that won the race after shutdown began is still stopped by the service.
            (*p)->wait_for(10s);
            CHECK(final_status((*p)->status()));
        }
        CHECK(core::test::eventually([] { return core::test::child_pids().empty(); }));
    }
}

TEST_CASE("Stress_SequentialRun_Ugly", "[stress]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    const int n = cycles(1000) * 10;
    const auto ctx = core::Context::background();
    int bad = 0;
    std::string first_error;
    for (int i = 0; i < n; ++i) {
        auto r = c->process().run(ctx, core::test::child_path(), {"print", std::to_string(i)});
        if (!r || *r != std::to_string(i) + "\n") {
            if (bad++ == 0) first_error = r ? "output " + *r : r.error().what();
        }
    }
    INFO(first_error);
    CHECK(bad == 0);
    auto svc = c->service<cp::Service>("process");
    REQUIRE(svc);
    CHECK(svc->list().empty());  // run() removes its own entry
    REQUIRE(c->shutdown(ctx));
}
