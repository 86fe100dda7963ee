// core::Core: actions (permission by registration), services and lifecycle, the IPC bus, the
// process facade, and logging.
#include <atomic>
#include <catch2/catch_test_macros.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "core/core.hpp"
#include "guard.hpp"

using core::Context;
using core::Core;
using core::Options;
using core::Result;
using core::Value;
using Strings = std::vector<std::string>;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

std::shared_ptr<Core> make_core(std::vector<core::ServiceFactory> factories = {}) {
    auto c = Core::create(std::move(factories));
    REQUIRE(c);
    return *c;
}

// Records its lifecycle calls into a shared journal; can be told to fail or throw.
class Recorder : public core::Service {
  public:
    struct Journal {
        std::mutex mu;
        Strings lines;
        void add(std::string s) {
            std::lock_guard lk(mu);
            lines.push_back(std::move(s));
        }
    };
    enum class Mode { ok, fail, throw_std, throw_other };

    Recorder(Core& c, std::string name, std::shared_ptr<Journal> j, Mode start = Mode::ok,
             Mode stop = Mode::ok)
        : Service(c, std::move(name)), journal_(std::move(j)), start_(start), stop_(stop) {}

    Result<void> on_startup(const Context&) override { return act("start", start_); }
    Result<void> on_shutdown(const Context&) override { return act("stop", stop_); }

    static core::ServiceFactory factory(std::string name, std::shared_ptr<Journal> j,
                                        Mode start = Mode::ok, Mode stop = Mode::ok) {
        return [=](Core& c) -> Result<std::shared_ptr<core::Service>> {
            return std::make_shared<Recorder>(c, name, j, start, stop);
        };
    }

  private:
    Result<void> act(const std::string& what, Mode m) {
        journal_->add(what + " " + name());
        switch (m) {
            case Mode::ok:
                return {};
            case Mode::fail:
                return core::fail(core::E(name(), what + " refused"));
            case Mode::throw_std:
                throw std::runtime_error(what + " exploded");
            case Mode::throw_other:
                throw 42;
        }
        return {};
    }
    std::shared_ptr<Journal> journal_;
    Mode start_;
    Mode stop_;
};

class Other : public core::Service {
  public:
    explicit Other(Core& c) : Service(c, "other") {}
};

// A logger writing into a string, never registered with spdlog.
struct CapturedLog {
    std::ostringstream out;
    std::shared_ptr<spdlog::logger> logger = std::make_shared<spdlog::logger>(
        "captured", std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
    CapturedLog() { logger->set_level(spdlog::level::trace); }
    std::string text() {
        logger->flush();
        return out.str();
    }
};

// A fake process service: process.* actions that record the Options they were given.
struct FakeProcess {
    std::mutex mu;
    std::vector<Options> calls;

    void install(Core& c) {
        REQUIRE(c.action("process.run", [this](const Context&, const Options& o) -> Result<Value> {
            record(o);
            return std::string("out:") + o.string("command");
        }));
        REQUIRE(
            c.action("process.start", [this](const Context&, const Options& o) -> Result<Value> {
                record(o);
                return std::string("id-1-abcdef");
            }));
        REQUIRE(c.action("process.kill", [this](const Context&, const Options& o) -> Result<Value> {
            record(o);
            if (o.string("id") == "unknown")
                return core::fail(core::E("process.kill", "not found: unknown"));
            return Value();
        }));
    }
    void record(const Options& o) {
        std::lock_guard lk(mu);
        calls.push_back(o);
    }
    Options last() {
        std::lock_guard lk(mu);
        REQUIRE_FALSE(calls.empty());
        return calls.back();
    }
};

Strings keys(const Options& o) {
    Strings out;
    for (const auto& [k, v] : o.entries()) out.push_back(k);
    return out;
}

}  // namespace

// ------------------------------------------------------------------ create

TEST_CASE("Runtime_Create_Good", "[core][runtime]") {
    CORE_LEAK_GUARD();
    SECTION("no factories") {
        auto c = Core::create();
        REQUIRE(c);
        REQUIRE(*c);
        CHECK((*c)->services().empty());
        CHECK((*c)->actions().empty());
    }
    SECTION("factories run in order") {
        auto j = std::make_shared<Recorder::Journal>();
        Strings order;
        auto c = Core::create({[&](Core& core) -> Result<std::shared_ptr<core::Service>> {
                                   order.push_back("a");
                                   return std::make_shared<Recorder>(core, "a", j);
                               },
                               [&](Core& core) -> Result<std::shared_ptr<core::Service>> {
                                   order.push_back("b");
                                   // A factory may use the Core it is building.
                                   REQUIRE(core.services() == Strings{"a"});
                                   return std::make_shared<Recorder>(core, "b", j);
                               }});
        REQUIRE(c);
        CHECK(order == Strings{"a", "b"});
        CHECK((*c)->services() == Strings{"a", "b"});
    }
}

TEST_CASE("Runtime_Create_Bad", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto j = std::make_shared<Recorder::Journal>();
    SECTION("a failing factory fails create and is wrapped") {
        bool later_ran = false;
        auto c = Core::create({Recorder::factory("a", j),
                               [](Core&) -> Result<std::shared_ptr<core::Service>> {
                                   return core::fail(
                                       core::E("db", "cannot open", core::Error("open", "x", 13)));
                               },
                               [&](Core& core) -> Result<std::shared_ptr<core::Service>> {
                                   later_ran = true;
                                   return std::make_shared<Recorder>(core, "c", j);
                               }});
        REQUIRE_FALSE(c);
        CHECK(c.error().what() == "core.create: factory 1 failed: db: cannot open: open: x");
        CHECK(c.error().code() == 13);
        CHECK_FALSE(later_ran);  // stops at the failing factory
    }
    SECTION("duplicate service name") {
        auto c = Core::create({Recorder::factory("dup", j), Recorder::factory("dup", j)});
        REQUIRE_FALSE(c);
        CHECK(c.error().what() == "core.create: duplicate service: dup");
    }
    SECTION("null factory") {
        auto c = Core::create({core::ServiceFactory()});
        REQUIRE_FALSE(c);
        CHECK(contains(c.error().what(), "factory 0 is null"));
    }
    SECTION("factory returning no service") {
        auto c = Core::create({[](Core&) -> Result<std::shared_ptr<core::Service>> {
            return std::shared_ptr<core::Service>();
        }});
        REQUIRE_FALSE(c);
        CHECK(contains(c.error().what(), "factory 0 returned no service"));
    }
    SECTION("service with an empty name") {
        auto c = Core::create({Recorder::factory("", j)});
        REQUIRE_FALSE(c);
        CHECK(contains(c.error().what(), "service has no name"));
    }
    SECTION("a throwing factory becomes an Error") {
        auto c = Core::create({[](Core&) -> Result<std::shared_ptr<core::Service>> {
            throw std::runtime_error("kaboom");
        }});
        REQUIRE_FALSE(c);
        CHECK(c.error().what() == "core.create: factory 0 threw: kaboom");
        auto d = Core::create({[](Core&) -> Result<std::shared_ptr<core::Service>> { throw 7; }});
        REQUIRE_FALSE(d);
        CHECK(contains(d.error().what(), "factory 0 threw a non-standard exception"));
    }
}

// ------------------------------------------------------------------ actions

TEST_CASE("Runtime_Action_Good", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    REQUIRE(c->action("greet", [](const Context&, const Options& o) -> Result<Value> {
        return "hello " + o.string("who");
    }));
    REQUIRE(c->action("other", [](const Context&, const Options&) -> Result<Value> { return 1; }));
    auto r = c->action("greet").run(Context::background(), Options{{"who", "world"}});
    REQUIRE(r);
    CHECK(*r->get<std::string>() == "hello world");
    SECTION("re-registering replaces in place") {
        REQUIRE(c->action("greet", [](const Context&, const Options&) -> Result<Value> {
            return std::string("replaced");
        }));
        CHECK(c->actions() == Strings{"greet", "other"});
        auto r2 = c->action("greet").run(Context::background(), {});
        REQUIRE(r2);
        CHECK(*r2->get<std::string>() == "replaced");
    }
}

TEST_CASE("Runtime_Action_Bad", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto empty = c->action("", [](const Context&, const Options&) -> Result<Value> { return {}; });
    REQUIRE_FALSE(empty);
    CHECK(empty.error().what() == "core.action: empty action name");
    auto null = c->action("x", core::ActionHandler());
    REQUIRE_FALSE(null);
    CHECK(null.error().what() == "core.action: null handler for x");
    CHECK(c->actions().empty());
}

TEST_CASE("Runtime_Action_Ugly", "[core][runtime]") {
    CORE_LEAK_GUARD();
    // 8 threads register, replace and run actions at once.
    auto c = make_core();
    REQUIRE(
        c->action("shared", [](const Context&, const Options&) -> Result<Value> { return -1; }));
    constexpr int kThreads = 8;
    constexpr int kPer = 200;
    std::atomic<bool> go{false};
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            while (!go.load()) std::this_thread::yield();
            for (int i = 0; i < kPer; ++i) {
                const std::string name = "a" + std::to_string(t) + "-" + std::to_string(i);
                const int want = t * 1000 + i;
                auto h = [want](const Context&, const Options&) -> Result<Value> { return want; };
                if (!c->action(name, h)) ++failures;
                if (!c->action(name, h)) ++failures;  // replace
                auto r = c->action(name).run(Context::background(), {});
                if (!r || !r->get<int>() || *r->get<int>() != want) ++failures;
                if (!c->action("shared",
                               [t](const Context&, const Options&) -> Result<Value> { return t; }))
                    ++failures;
                auto s = c->action("shared").run(Context::background(), {});
                if (!s || !s->get<int>() || *s->get<int>() < 0 || *s->get<int>() >= kThreads)
                    ++failures;
                if (!c->action(name).exists()) ++failures;
            }
        });
    }
    go = true;
    for (auto& th : threads) th.join();
    CHECK(failures == 0);
    const auto names = c->actions();
    CHECK(names.size() == 1 + kThreads * kPer);
    CHECK(names.front() == "shared");
    for (int t = 0; t < kThreads; ++t) {
        const std::string prefix = "a" + std::to_string(t) + "-";
        int last = -1;
        for (const auto& n : names) {
            if (n.rfind(prefix, 0) != 0) continue;
            const int i = std::stoi(n.substr(prefix.size()));
            CHECK(i == last + 1);  // each thread's actions in its registration order
            last = i;
        }
        CHECK(last == kPer - 1);
    }
}

TEST_CASE("Runtime_ActionRun_Good", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    // A handle taken before registration resolves at run time.
    const core::Action handle = c->action("late");
    REQUIRE_FALSE(handle.run(Context::background(), {}));
    REQUIRE(c->action(
        "late", [](const Context& ctx, const Options&) -> Result<Value> { return ctx.done(); }));
    auto r = handle.run(Context::background(), {});
    REQUIRE(r);
    CHECK(*r->get<bool>() == false);
    // The handler sees the caller's context.
    const Context cancelled = Context::background().with_cancel();
    cancelled.cancel();
    auto rc = handle.run(cancelled, {});
    REQUIRE(rc);
    CHECK(*rc->get<bool>() == true);
}

TEST_CASE("Runtime_ActionRun_Bad", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    SECTION("not registered") {
        auto r = c->action("nope").run(Context::background(), {});
        REQUIRE_FALSE(r);
        CHECK(contains(r.error().what(), "action not registered: nope"));
    }
    SECTION("the handler's Error is returned as is") {
        REQUIRE(c->action("err", [](const Context&, const Options&) -> Result<Value> {
            return core::fail(core::E("err", "bad input", core::Error("inner", "why", 22)));
        }));
        auto r = c->action("err").run(Context::background(), {});
        REQUIRE_FALSE(r);
        CHECK(r.error().what() == "err: bad input: inner: why");
        CHECK(r.error().code() == 22);
    }
    SECTION("a handler that throws becomes an Error") {
        REQUIRE(c->action("boom", [](const Context&, const Options&) -> Result<Value> {
            throw std::logic_error("broken invariant");
        }));
        auto r = c->action("boom").run(Context::background(), {});
        REQUIRE_FALSE(r);
        CHECK(r.error().what() == "boom: handler threw: broken invariant");
        REQUIRE(c->action("boom2", [](const Context&, const Options&) -> Result<Value> {
            throw "not an exception class";
        }));
        auto r2 = c->action("boom2").run(Context::background(), {});
        REQUIRE_FALSE(r2);
        CHECK(contains(r2.error().what(), "handler threw a non-standard exception"));
    }
    SECTION("the Core is gone") {
        const core::Action orphan = c->action("x");
        c.reset();
        auto r = orphan.run(Context::background(), {});
        REQUIRE_FALSE(r);
        CHECK(r.error().what() == "x: core is gone");
        CHECK_FALSE(orphan.exists());
    }
}

TEST_CASE("Runtime_ActionExists_Good", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    REQUIRE(c->action("a", [](const Context&, const Options&) -> Result<Value> { return {}; }));
    CHECK(c->action("a").exists());
}

TEST_CASE("Runtime_ActionExists_Bad", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    CHECK_FALSE(c->action("a").exists());
    CHECK_FALSE(c->action("").exists());
}

TEST_CASE("Runtime_ActionName_Good", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    CHECK(c->action("process.run").name() == "process.run");
}

TEST_CASE("Runtime_ActionName_Bad", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    const core::Action a = c->action("");
    CHECK(a.name().empty());
    auto r = a.run(Context::background(), {});
    REQUIRE_FALSE(r);
    CHECK(contains(r.error().what(), "action not registered: "));
}

TEST_CASE("Runtime_Actions_Good", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    for (const char* n : {"z", "a", "m"})
        REQUIRE(c->action(n, [](const Context&, const Options&) -> Result<Value> { return {}; }));
    CHECK(c->actions() == Strings{"z", "a", "m"});
}

TEST_CASE("Runtime_Actions_Bad", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    CHECK(c->actions().empty());
    CHECK_FALSE(c->action("", core::ActionHandler()));
    CHECK(c->actions().empty());
}

TEST_CASE("Runtime_Handler_Good", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    REQUIRE(c->action("h", [](const Context&, const Options&) -> Result<Value> { return 9; }));
    auto h = c->handler("h");
    REQUIRE(h);
    auto r = (*h)(Context::background(), {});
    REQUIRE(r);
    CHECK(*r->get<int>() == 9);
}

TEST_CASE("Runtime_Handler_Bad", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto h = c->handler("missing");
    REQUIRE_FALSE(h);
    CHECK(h.error().what() == "missing: action not registered: missing");
}

// ------------------------------------------------------------------ services

TEST_CASE("Runtime_Startup_Good", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto j = std::make_shared<Recorder::Journal>();
    auto c = make_core(
        {Recorder::factory("a", j), Recorder::factory("b", j), Recorder::factory("c", j)});
    REQUIRE(c->startup(Context::background()));
    CHECK(j->lines == Strings{"start a", "start b", "start c"});
}

TEST_CASE("Runtime_Startup_Bad", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto j = std::make_shared<Recorder::Journal>();
    SECTION("stops at the first failure") {
        auto c =
            make_core({Recorder::factory("a", j), Recorder::factory("b", j, Recorder::Mode::fail),
                       Recorder::factory("c", j)});
        auto r = c->startup(Context::background());
        REQUIRE_FALSE(r);
        CHECK(r.error().what() == "core.startup: service b: b: start refused");
        CHECK(j->lines == Strings{"start a", "start b"});
    }
    SECTION("a throwing on_startup becomes an Error") {
        auto c = make_core({Recorder::factory("a", j, Recorder::Mode::throw_std)});
        auto r = c->startup(Context::background());
        REQUIRE_FALSE(r);
        CHECK(r.error().what() == "core.startup: service a: a: on_startup threw: start exploded");
        auto d = make_core({Recorder::factory("x", j, Recorder::Mode::throw_other)});
        auto rd = d->startup(Context::background());
        REQUIRE_FALSE(rd);
        CHECK(contains(rd.error().what(), "on_startup threw a non-standard exception"));
    }
}

TEST_CASE("Runtime_Shutdown_Good", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto j = std::make_shared<Recorder::Journal>();
    auto c = make_core(
        {Recorder::factory("a", j), Recorder::factory("b", j), Recorder::factory("c", j)});
    REQUIRE(c->startup(Context::background()));
    REQUIRE(c->shutdown(Context::background()));
    CHECK(j->lines == Strings{"start a", "start b", "start c", "stop c", "stop b", "stop a"});
    SECTION("idempotent") {
        REQUIRE(c->shutdown(Context::background()));
        CHECK(j->lines.size() == 6);
    }
}

TEST_CASE("Runtime_Shutdown_Bad", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto j = std::make_shared<Recorder::Journal>();
    // Every service is stopped even when some fail; the first failure (in shutdown order) wins.
    auto c =
        make_core({Recorder::factory("a", j, Recorder::Mode::ok, Recorder::Mode::fail),
                   Recorder::factory("b", j, Recorder::Mode::ok, Recorder::Mode::throw_std),
                   Recorder::factory("c", j, Recorder::Mode::ok, Recorder::Mode::fail),
                   Recorder::factory("d", j, Recorder::Mode::ok, Recorder::Mode::throw_other)});
    auto r = c->shutdown(Context::background());
    REQUIRE_FALSE(r);
    CHECK(r.error().what() ==
          "core.shutdown: service d: d: on_shutdown threw a non-standard exception");
    CHECK(j->lines == Strings{"stop d", "stop c", "stop b", "stop a"});
}

TEST_CASE("Runtime_Services_Good", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto j = std::make_shared<Recorder::Journal>();
    auto c = make_core({Recorder::factory("z", j), Recorder::factory("a", j)});
    CHECK(c->services() == Strings{"z", "a"});
}

TEST_CASE("Runtime_Services_Bad", "[core][runtime]") {
    CORE_LEAK_GUARD();
    CHECK(make_core()->services().empty());
}

TEST_CASE("Runtime_Service_Good", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto j = std::make_shared<Recorder::Journal>();
    auto c = make_core(
        {Recorder::factory("rec", j), [](Core& core) -> Result<std::shared_ptr<core::Service>> {
             return std::make_shared<Other>(core);
         }});
    auto rec = c->service<Recorder>("rec");
    REQUIRE(rec);
    CHECK(rec->name() == "rec");
    CHECK(&rec->core() == c.get());
    CHECK(c->service<core::Service>("other"));
    CHECK(c->service<Other>("other"));
}

TEST_CASE("Runtime_Service_Bad", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto j = std::make_shared<Recorder::Journal>();
    auto c = make_core({Recorder::factory("rec", j)});
    CHECK(c->service<Recorder>("absent") == nullptr);
    CHECK(c->service<Other>("rec") == nullptr);  // another type
    CHECK(c->service<Recorder>("") == nullptr);
}

TEST_CASE("Runtime_ServiceDefaults_Good", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core({[](Core& core) -> Result<std::shared_ptr<core::Service>> {
        return std::make_shared<Other>(core);
    }});
    // The base class's lifecycle hooks succeed.
    REQUIRE(c->startup(Context::background()));
    REQUIRE(c->shutdown(Context::background()));
}

TEST_CASE("Runtime_ServiceDefaults_Bad", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core({[](Core& core) -> Result<std::shared_ptr<core::Service>> {
        return std::make_shared<Other>(core);
    }});
    // Even with a cancelled context, the defaults succeed: they have nothing to wait for.
    const Context done = Context::background().with_cancel();
    done.cancel();
    CHECK(c->startup(done));
    CHECK(c->shutdown(done));
}

// ------------------------------------------------------------------ IPC

TEST_CASE("Runtime_Broadcast_Good", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    Strings seen;
    auto s1 = c->subscribe([&](const Value& v) { seen.push_back("1:" + *v.get<std::string>()); });
    auto s2 = c->subscribe([&](const Value& v) { seen.push_back("2:" + *v.get<std::string>()); });
    auto s3 = c->subscribe([&](const Value& v) { seen.push_back("3:" + *v.get<std::string>()); });
    c->broadcast(std::string("x"));
    c->broadcast(std::string("y"));
    CHECK(seen == Strings{"1:x", "2:x", "3:x", "1:y", "2:y", "3:y"});
}

TEST_CASE("Runtime_Broadcast_Bad", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    CapturedLog log;
    c->set_logger(log.logger);
    SECTION("no subscribers") {
        c->broadcast(Value());
    }
    SECTION("a throwing subscriber is isolated and logged") {
        int after = 0;
        auto bad = c->subscribe([](const Value&) { throw std::runtime_error("subscriber bug"); });
        auto odd = c->subscribe([](const Value&) { throw 1; });
        auto good = c->subscribe([&](const Value&) { ++after; });
        c->broadcast(1);
        c->broadcast(2);
        CHECK(after == 2);
        CHECK(contains(log.text(), "subscriber threw: subscriber bug"));
        CHECK(contains(log.text(), "non-standard exception"));
    }
    SECTION("a message of an unexpected type reaches the subscriber untouched") {
        bool got_null = false;
        auto s = c->subscribe([&](const Value& v) { got_null = v.get<std::string>() == nullptr; });
        c->broadcast(42);
        CHECK(got_null);
    }
}

TEST_CASE("Runtime_Broadcast_Ugly", "[core][runtime]") {
    CORE_LEAK_GUARD();
    // 8 threads: 4 broadcast, 4 subscribe and unsubscribe in a loop. A subscription's counter
    // lives on the subscribing thread's stack and dies right after reset(): a call after
    // reset() would be a use-after-scope (caught under ASan) and a count change (checked).
    auto c = make_core();
    std::atomic<long> persistent{0};
    auto keep = c->subscribe([&](const Value&) { ++persistent; });
    auto thrower = c->subscribe([](const Value&) { throw std::runtime_error("always"); });
    constexpr int kBroadcasters = 4;
    constexpr int kChurners = 4;
    constexpr int kMessages = 2000;
    std::atomic<int> failures{0};
    std::atomic<bool> go{false};
    std::atomic<int> broadcasters_done{0};
    std::atomic<long> churn_sent{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kBroadcasters; ++t) {
        threads.emplace_back([&] {
            while (!go.load()) std::this_thread::yield();
            for (int i = 0; i < kMessages; ++i) c->broadcast(i);
            ++broadcasters_done;
        });
    }
    for (int t = 0; t < kChurners; ++t) {
        threads.emplace_back([&] {
            while (!go.load()) std::this_thread::yield();
            while (broadcasters_done.load() < kBroadcasters) {
                std::atomic<int> mine{0};
                core::Subscription s = c->subscribe([&mine](const Value&) { ++mine; });
                c->broadcast(std::string("hello"));  // our own message reaches us
                ++churn_sent;
                if (mine.load() < 1) ++failures;
                s.reset();
                const int after_reset = mine.load();
                c->broadcast(std::string("after"));
                ++churn_sent;
                if (mine.load() != after_reset) ++failures;
            }
        });
    }
    go = true;
    for (auto& th : threads) th.join();
    CHECK(failures == 0);
    // Every broadcast reached the persistent subscriber exactly once.
    CHECK(persistent.load() == static_cast<long>(kBroadcasters) * kMessages + churn_sent.load());
    const long before = persistent.load();
    c->broadcast(0);
    CHECK(persistent.load() == before + 1);
}

TEST_CASE("Runtime_Subscribe_Good", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    int calls = 0;
    {
        auto s = c->subscribe([&](const Value&) { ++calls; });
        CHECK(s.active());
        c->broadcast(1);
        CHECK(calls == 1);
    }  // destroyed: unsubscribed
    c->broadcast(2);
    CHECK(calls == 1);
    SECTION("moved subscriptions stay subscribed once") {
        core::Subscription a = c->subscribe([&](const Value&) { ++calls; });
        core::Subscription b = std::move(a);
        CHECK_FALSE(a.active());  // NOLINT(bugprone-use-after-move)
        CHECK(b.active());
        c->broadcast(3);
        CHECK(calls == 2);
        b = core::Subscription();
        c->broadcast(4);
        CHECK(calls == 2);
    }
    SECTION("a handler may reset its own subscription while it runs") {
        core::Subscription self;
        auto payload = std::make_shared<std::string>("captured");
        std::string seen;
        self = c->subscribe([&self, &seen, payload](const Value&) {
            self.reset();
            seen = *payload;  // the closure is still alive after its own reset
        });
        payload.reset();
        c->broadcast(1);
        c->broadcast(2);
        CHECK(seen == "captured");
        CHECK_FALSE(self.active());
    }
}

TEST_CASE("Runtime_Subscribe_Bad", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    SECTION("a null handler is inert") {
        auto s = c->subscribe(nullptr);
        c->broadcast(1);
        s.reset();
        s.reset();  // idempotent
        CHECK_FALSE(s.active());
    }
    SECTION("a subscription may outlive its Core") {
        int calls = 0;
        core::Subscription s = c->subscribe([&](const Value&) { ++calls; });
        c.reset();
        s.reset();
        CHECK(calls == 0);
    }
}

TEST_CASE("Runtime_SubscriptionReset_Good", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    int a = 0;
    int b = 0;
    auto sa = c->subscribe([&](const Value&) { ++a; });
    auto sb = c->subscribe([&](const Value&) { ++b; });
    sa.reset();
    CHECK_FALSE(sa.active());
    CHECK(sb.active());
    c->broadcast(1);
    CHECK(a == 0);  // only the reset one stops
    CHECK(b == 1);
}

TEST_CASE("Runtime_SubscriptionReset_Bad", "[core][runtime]") {
    CORE_LEAK_GUARD();
    core::Subscription never;  // default: subscribed to nothing
    CHECK_FALSE(never.active());
    never.reset();  // harmless
    CHECK_FALSE(never.active());
    auto c = make_core();
    int calls = 0;
    auto s = c->subscribe([&](const Value&) { ++calls; });
    core::Subscription& alias = s;
    s = std::move(alias);  // self-move (through an alias) keeps the subscription
    c->broadcast(1);
    CHECK(calls == 1);
}

// ------------------------------------------------------------------ process facade

TEST_CASE("Runtime_ProcessExists_Good", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    FakeProcess fake;
    fake.install(*c);
    CHECK(c->process().exists());
}

TEST_CASE("Runtime_ProcessExists_Bad", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    CHECK_FALSE(c->process().exists());
    // process.start alone does not make the facade exist: exists() means process.run.
    REQUIRE(c->action("process.start", [](const Context&, const Options&) -> Result<Value> {
        return std::string("id");
    }));
    CHECK_FALSE(c->process().exists());
}

TEST_CASE("Runtime_ProcessRun_Good", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    FakeProcess fake;
    fake.install(*c);
    auto r = c->process().run(Context::background(), "echo", {"hi", "there"});
    REQUIRE(r);
    CHECK(*r == "out:echo");
    const Options o = fake.last();
    CHECK(keys(o) == Strings{"command", "args"});
    CHECK(o.string("command") == "echo");
    CHECK(o.strings("args") == Strings{"hi", "there"});
}

TEST_CASE("Runtime_ProcessRun_Bad", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    SECTION("no process service: permission denied by absence") {
        auto r = c->process().run(Context::background(), "echo", {"hi"});
        REQUIRE_FALSE(r);
        CHECK(contains(r.error().what(), "action not registered: process.run"));
    }
    SECTION("an action returning something other than a string") {
        REQUIRE(c->action("process.run",
                          [](const Context&, const Options&) -> Result<Value> { return 5; }));
        auto r = c->process().run(Context::background(), "echo");
        REQUIRE_FALSE(r);
        CHECK(r.error().what() == "process.run: action returned integer, want string");
    }
    SECTION("an action's Error passes through") {
        REQUIRE(c->action("process.run", [](const Context&, const Options&) -> Result<Value> {
            return core::fail(core::E("process.run", "exec \"gti\": No such file or directory"));
        }));
        auto r = c->process().run(Context::background(), "gti");
        REQUIRE_FALSE(r);
        CHECK(r.error().what() == "process.run: exec \"gti\": No such file or directory");
    }
}

TEST_CASE("Runtime_ProcessRunIn_Good", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    FakeProcess fake;
    fake.install(*c);
    auto r = c->process().run_in(Context::background(), "/tmp", "ls", {"-l"});
    REQUIRE(r);
    CHECK(*r == "out:ls");
    const Options o = fake.last();
    CHECK(keys(o) == Strings{"command", "args", "dir"});
    CHECK(o.string("dir") == "/tmp");
    CHECK(o.strings("args") == Strings{"-l"});
}

TEST_CASE("Runtime_ProcessRunIn_Bad", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto r = c->process().run_in(Context::background(), "/tmp", "ls");
    REQUIRE_FALSE(r);
    CHECK(contains(r.error().what(), "action not registered: process.run"));
}

TEST_CASE("Runtime_ProcessRunWithEnv_Good", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    FakeProcess fake;
    fake.install(*c);
    auto r = c->process().run_with_env(Context::background(), "/srv", {"A=1", "B=2"}, "env");
    REQUIRE(r);
    CHECK(*r == "out:env");
    const Options o = fake.last();
    CHECK(keys(o) == Strings{"command", "args", "dir", "env"});
    CHECK(o.string("dir") == "/srv");
    CHECK(o.strings("env") == Strings{"A=1", "B=2"});
    CHECK(o.strings("args").empty());
}

TEST_CASE("Runtime_ProcessRunWithEnv_Bad", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto r = c->process().run_with_env(Context::background(), "", {"A=1"}, "env");
    REQUIRE_FALSE(r);
    CHECK(contains(r.error().what(), "action not registered: process.run"));
}

TEST_CASE("Runtime_ProcessStart_Good", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    FakeProcess fake;
    fake.install(*c);
    const Options opts{{"command", "sleep"}, {"args", Strings{"5"}}, {"detach", true}};
    auto r = c->process().start(Context::background(), opts);
    REQUIRE(r);
    CHECK(*r == "id-1-abcdef");
    const Options o = fake.last();  // passed through untouched
    CHECK(keys(o) == Strings{"command", "args", "detach"});
    CHECK(o.boolean("detach"));
}

TEST_CASE("Runtime_ProcessStart_Bad", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    SECTION("no process service") {
        auto r = c->process().start(Context::background(), Options{{"command", "sleep"}});
        REQUIRE_FALSE(r);
        CHECK(contains(r.error().what(), "action not registered: process.start"));
    }
    SECTION("an action that returns no id") {
        REQUIRE(c->action("process.start",
                          [](const Context&, const Options&) -> Result<Value> { return Value(); }));
        auto r = c->process().start(Context::background(), {});
        REQUIRE_FALSE(r);
        CHECK(r.error().what() == "process.start: action returned no process id");
    }
}

TEST_CASE("Runtime_ProcessKill_Good", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    FakeProcess fake;
    fake.install(*c);
    REQUIRE(c->process().kill(Context::background(), Options{{"id", "id-1-abcdef"}}));
    CHECK(fake.last().string("id") == "id-1-abcdef");
}

TEST_CASE("Runtime_ProcessKill_Bad", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto none = c->process().kill(Context::background(), Options{{"id", "x"}});
    REQUIRE_FALSE(none);
    CHECK(contains(none.error().what(), "action not registered: process.kill"));
    FakeProcess fake;
    fake.install(*c);
    auto r = c->process().kill(Context::background(), Options{{"id", "unknown"}});
    REQUIRE_FALSE(r);
    CHECK(r.error().what() == "process.kill: not found: unknown");
}

TEST_CASE("Runtime_PermissionModel_Ugly", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = Core::create();
    REQUIRE(c);
    const Context ctx = Context::background();
    auto& core = **c;
    CHECK_FALSE(core.process().exists());
    const std::string want = "action not registered: process.";
    auto run = core.process().run(ctx, "echo", {"hi"});
    REQUIRE_FALSE(run);
    CHECK(contains(run.error().what(), want + "run"));
    auto in = core.process().run_in(ctx, "/", "echo");
    REQUIRE_FALSE(in);
    CHECK(contains(in.error().what(), want + "run"));
    auto env = core.process().run_with_env(ctx, "/", {"A=1"}, "echo");
    REQUIRE_FALSE(env);
    CHECK(contains(env.error().what(), want + "run"));
    auto start = core.process().start(ctx, {});
    REQUIRE_FALSE(start);
    CHECK(contains(start.error().what(), want + "start"));
    auto kill = core.process().kill(ctx, {});
    REQUIRE_FALSE(kill);
    CHECK(contains(kill.error().what(), want + "kill"));
}

// ------------------------------------------------------------------ logging

TEST_CASE("Runtime_Logger_Good", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    CapturedLog log;
    c->set_logger(log.logger);
    CHECK(c->logger() == log.logger);
    c->logger()->info("through the injected logger");
    CHECK(contains(log.text(), "through the injected logger"));
}

TEST_CASE("Runtime_Logger_Bad", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    REQUIRE(c->logger());
    c->set_logger(nullptr);  // null restores the default instead of leaving no logger
    REQUIRE(c->logger());
    CHECK(c->logger() == core::default_logger());
}

TEST_CASE("Runtime_DefaultLogger_Good", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto l = core::default_logger();
    REQUIRE(l);
    // Never in spdlog's global registry, so a host's spdlog::drop_all() or a name clash
    // cannot touch it.
    CHECK(spdlog::get(l->name()) == nullptr);
    CapturedLog log;
    core::set_default_logger(log.logger);
    CHECK(core::default_logger() == log.logger);
    auto c = make_core();  // a new Core picks up the default
    CHECK(c->logger() == log.logger);
    core::set_default_logger(nullptr);
}

TEST_CASE("Runtime_DefaultLogger_Bad", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto before = core::default_logger();
    core::set_default_logger(nullptr);  // null restores the null-sink logger
    auto l = core::default_logger();
    REQUIRE(l);
    CHECK(l == before);
    l->error("goes nowhere");  // the null sink swallows it
}

TEST_CASE("Runtime_HasSubscribers_Good", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    CHECK_FALSE(c->has_subscribers());
    {
        auto a = c->subscribe([](const core::Value&) {});
        auto b = c->subscribe([](const core::Value&) {});
        CHECK(c->has_subscribers());
        a.reset();
        CHECK(c->has_subscribers());
    }
    CHECK_FALSE(c->has_subscribers());
}

TEST_CASE("Runtime_HasSubscribers_Bad", "[core][runtime]") {
    CORE_LEAK_GUARD();
    core::Subscription outlives;
    {
        auto c = make_core();
        outlives = c->subscribe([](const core::Value&) {});
        // A moved-from and a reset handle count once, not twice.
        core::Subscription moved = std::move(outlives);
        moved.reset();
        moved.reset();
        CHECK_FALSE(c->has_subscribers());
        outlives = c->subscribe([](const core::Value&) {});
        CHECK(c->has_subscribers());
    }
    // The Core is gone: releasing a subscription that outlived it is safe.
    outlives.reset();
    CHECK_FALSE(outlives.active());
}
