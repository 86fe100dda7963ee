// Dependencies between daemons (issue 15 §1): `after` starts a dependent once its dependency is
// ready, `requires` also takes it down with the dependency, cycles and unknown names are refused
// before anything starts, stops run in reverse dependency order. Real children from
// test/helper/child.cpp; every wait is on a DaemonStateChanged event with a deadline, and order
// is read from the sequence of events (the supervisor thread publishes them in order).
#include <stdlib.h>

#include <catch2/catch_test_macros.hpp>
#include <condition_variable>
#include <filesystem>
#include <mutex>

#include "core/process/process.hpp"
#include "core/process/supervisor.hpp"
#include "guard.hpp"
#include "support.hpp"

using namespace std::chrono_literals;
using core::test::sup::Env;
using core::test::sup::has;
using core::test::sup::kWait;
using Events = core::test::sup::EventLog;
using core::process::DaemonSpec;
using core::process::DaemonState;
using core::process::DaemonStateChanged;
using core::process::RestartPolicy;
using core::process::Supervisor;

namespace {

DaemonSpec spec(const std::string& name, std::vector<std::string> args) {
    return core::test::sup::child_spec(name, std::move(args));
}

// A fresh directory under /tmp, removed with everything in it.
struct TmpDir {
    std::string path;
    TmpDir() {
        std::string tmpl = "/tmp/core-deps-XXXXXX";
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TmpDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

}  // namespace

TEST_CASE("Deps_Start_Good", "[supervisor][deps]") {
    CORE_LEAK_GUARD();
    Env env;
    TmpDir tmp;

    SECTION("web after db starts only once db is ready (500 ms, by its health check)") {
        const std::string ready = tmp.path + "/db.ready";
        auto db = spec("db", {"f-touch-after", "500", ready});
        db.health.command = {core::test::child_path(), "f-exists", ready};
        db.health.interval = 20ms;
        db.health.failures = 1000;
        auto web = spec("web", {"sleep", "60000"});
        web.after = {"db"};
        Supervisor sup(*env.core, *env.svc);
        REQUIRE(sup.add(web));  // a dependent may come first: checked when it starts
        REQUIRE(sup.add(db));
        REQUIRE(sup.start_all());
        REQUIRE(env.log.wait("web", DaemonState::running));
        CHECK(std::filesystem::exists(ready));
        CHECK(env.log.index("db", DaemonState::healthy) <
              env.log.index("web", DaemonState::running));
        auto evs = env.log.of("web");
        REQUIRE_FALSE(evs.empty());
        CHECK(evs[0].to == DaemonState::starting);
        CHECK(evs[0].pid == 0);
        CHECK(has(evs[0].reason, "waiting for \"db\""));
        CHECK(sup.get("web")->ready);
        CHECK(sup.get("web")->waiting_for.empty());
    }

    SECTION("a chain starts in order and stop_all stops it in reverse") {
        Supervisor sup(*env.core, *env.svc);
        auto a = spec("a", {"sleep", "60000"});
        auto b = spec("b", {"sleep", "60000"});
        auto c = spec("c", {"sleep", "60000"});
        c.requires_ = {"b"};
        b.after = {"a"};
        REQUIRE(sup.add(c));
        REQUIRE(sup.add(b));
        REQUIRE(sup.add(a));
        REQUIRE(sup.start_all());
        REQUIRE(env.log.wait("c", DaemonState::running));
        CHECK(env.log.index("a", DaemonState::running) < env.log.index("b", DaemonState::running));
        CHECK(env.log.index("b", DaemonState::running) < env.log.index("c", DaemonState::running));
        REQUIRE(sup.stop_all());
        CHECK(env.log.index("c", DaemonState::stopped) < env.log.index("b", DaemonState::stopping));
        CHECK(env.log.index("b", DaemonState::stopped) < env.log.index("a", DaemonState::stopping));
    }

    SECTION("apply() adds a dependency and its dependent together") {
        Supervisor sup(*env.core, *env.svc);
        auto db = spec("db", {"sleep", "60000"});
        auto web = spec("web", {"sleep", "60000"});
        web.requires_ = {"db"};
        auto rr = sup.apply({web, db});
        REQUIRE(rr);
        CHECK(rr->errors.empty());
        REQUIRE(env.log.wait("web", DaemonState::running));
        CHECK(env.log.index("db", DaemonState::running) <
              env.log.index("web", DaemonState::running));
    }
}

TEST_CASE("Deps_Requires_Good", "[supervisor][deps]") {
    CORE_LEAK_GUARD();
    Env env;
    Supervisor sup(*env.core, *env.svc);
    auto db = spec("db", {"sleep", "60000"});
    auto web = spec("web", {"sleep", "60000"});
    web.requires_ = {"db"};
    auto side = spec("side", {"sleep", "60000"});
    side.after = {"db"};  // ordered only: stays up when db stops
    REQUIRE(sup.add(db));
    REQUIRE(sup.add(web));
    REQUIRE(sup.add(side));
    REQUIRE(sup.start_all());
    REQUIRE(env.log.wait("web", DaemonState::running));
    REQUIRE(env.log.wait("side", DaemonState::running));

    SECTION("stopping db stops web first, and web stays stopped") {
        REQUIRE(sup.stop("db"));
        CHECK(sup.get("web")->state == DaemonState::stopped);
        CHECK(env.log.index("web", DaemonState::stopped) <
              env.log.index("db", DaemonState::stopping));
        CHECK(sup.get("side")->state == DaemonState::running);
    }

    SECTION("web goes down when db dies, and comes back once db is up again") {
        const int old_web = sup.get("web")->pid;
        REQUIRE(sup.get("db")->pid > 0);
        REQUIRE(env.svc->get(sup.get("db")->process_id).value()->signal(9));
        REQUIRE(env.log.wait("web", DaemonState::running, 2));
        REQUIRE(env.log.wait("db", DaemonState::running, 2));
        CHECK(env.log.index("db", DaemonState::running, 2) <
              env.log.index("web", DaemonState::running, 2));
        CHECK(sup.get("web")->pid != old_web);
        bool saw_reason = false;
        for (const auto& e : env.log.of("web"))
            saw_reason = saw_reason || has(e.reason, "required \"db\"");
        CHECK(saw_reason);
        CHECK(sup.get("side")->restarts == 0);
    }

    SECTION("restarting db stops web before it and starts web after it") {
        const int old_db = sup.get("db")->pid;
        const int old_web = sup.get("web")->pid;
        REQUIRE(sup.restart("db"));
        REQUIRE(env.log.wait("web", DaemonState::running, 2));
        // Reverse order down (web's process ended before db was signalled), order up.
        CHECK(env.log.index("web", DaemonState::stopping) <
              env.log.index("db", DaemonState::stopping));
        CHECK(env.log.index("web", DaemonState::starting, 2) <
              env.log.index("db", DaemonState::stopping));
        CHECK(env.log.index("db", DaemonState::running, 2) <
              env.log.index("web", DaemonState::running, 2));
        CHECK(sup.get("db")->pid != old_db);
        CHECK(sup.get("web")->pid != old_web);
        bool saw_reason = false;
        for (const auto& e : env.log.of("web"))
            saw_reason = saw_reason || has(e.reason, "required \"db\" is restarting");
        CHECK(saw_reason);
        CHECK(sup.get("side")->restarts == 0);
    }

    SECTION("a reload that changes db does the same") {
        auto next = db;
        next.args = {"sleep", "60001"};
        auto rr = sup.apply({next, web, side});
        REQUIRE(rr);
        CHECK(rr->changed == std::vector<std::string>{"db"});
        REQUIRE(env.log.wait("web", DaemonState::running, 2));
        CHECK(env.log.index("web", DaemonState::starting, 2) <
              env.log.index("db", DaemonState::stopping));
        CHECK(env.log.index("db", DaemonState::running, 2) <
              env.log.index("web", DaemonState::running, 2));
        CHECK(sup.get("side")->restarts == 0);
    }
}

// A chain: top requires mid requires db. A restart of db takes top down first, then mid, then
// db, and brings them back in the other order.
TEST_CASE("Deps_Restart_Ugly", "[supervisor][deps]") {
    CORE_LEAK_GUARD();
    Env env;
    Supervisor sup(*env.core, *env.svc);
    auto db = spec("db", {"sleep", "60000"});
    auto mid = spec("mid", {"sleep", "60000"});
    mid.requires_ = {"db"};
    auto top = spec("top", {"sleep", "60000"});
    top.requires_ = {"mid"};
    REQUIRE(sup.add(top));  // added in any order
    REQUIRE(sup.add(mid));
    REQUIRE(sup.add(db));
    REQUIRE(sup.start_all());
    REQUIRE(env.log.wait("top", DaemonState::running));
    REQUIRE(sup.restart("db"));
    REQUIRE(env.log.wait("top", DaemonState::running, 2));
    using S = DaemonState;
    CHECK(env.log.index("top", S::starting, 2) < env.log.index("mid", S::stopping));
    CHECK(env.log.index("mid", S::starting, 2) < env.log.index("db", S::stopping));
    CHECK(env.log.index("db", S::running, 2) < env.log.index("mid", S::running, 2));
    CHECK(env.log.index("mid", S::running, 2) < env.log.index("top", S::running, 2));
    for (const char* n : {"db", "mid", "top"}) CHECK(sup.get(n)->restarts == 1);
    REQUIRE(sup.stop_all());
    CHECK(env.svc->list(true).empty());
}

TEST_CASE("Deps_Graph_Bad", "[supervisor][deps]") {
    CORE_LEAK_GUARD();

    SECTION("a cycle in a supervise file is refused, spelled out") {
        auto r = core::process::parse_supervise_config(
            R"({"daemons":[{"name":"a","command":"x","after":["b"]},
                            {"name":"b","command":"x","requires":["a"]}]})",
            "deps.json");
        REQUIRE_FALSE(r);
        const std::string what = r.error().what();
        CHECK(has(what, "dependency cycle"));
        CHECK((has(what, "a → b → a") || has(what, "b → a → b")));
    }
    SECTION("an unknown name in a supervise file is refused") {
        auto r = core::process::parse_supervise_config(
            R"({"daemons":[{"name":"web","command":"x","after":["nope"]}]})", "deps.json");
        REQUIRE_FALSE(r);
        CHECK(has(r.error().what(), "unknown dependency \"nope\""));
        CHECK(has(r.error().what(), "web"));
    }
    SECTION("a daemon that depends on itself is refused") {
        DaemonSpec s;
        s.name = "me";
        s.command = "x";
        s.requires_ = {"me"};
        auto r = core::process::validate(s);
        REQUIRE_FALSE(r);
        CHECK(has(r.error().what(), "me → me"));
    }
    SECTION("after and requires want lists of names") {
        auto r = core::process::parse_supervise_config(
            R"({"daemons":[{"name":"web","command":"x","after":"db"}]})", "deps.json");
        REQUIRE_FALSE(r);
        CHECK(has(r.error().what(), "after"));
    }
    SECTION("a valid file keeps both lists") {
        auto r = core::process::parse_supervise_config(
            R"({"daemons":[{"name":"db","command":"x"},
                            {"name":"web","command":"x","after":["db"],"requires":["db"]}]})",
            "deps.json");
        REQUIRE(r);
        CHECK(r->at(1).after == std::vector<std::string>{"db"});
        CHECK(r->at(1).requires_ == std::vector<std::string>{"db"});
    }
}

TEST_CASE("Deps_Supervisor_Bad", "[supervisor][deps]") {
    CORE_LEAK_GUARD();
    Env env;
    Supervisor sup(*env.core, *env.svc);

    SECTION("add() refuses a daemon that closes a cycle") {
        auto a = spec("a", {"sleep", "60000"});
        a.after = {"b"};
        auto b = spec("b", {"sleep", "60000"});
        b.after = {"a"};
        REQUIRE(sup.add(a));
        auto r = sup.add(b);
        REQUIRE_FALSE(r);
        CHECK(has(r.error().what(), "dependency cycle"));
        CHECK(sup.names() == std::vector<std::string>{"a"});
    }
    SECTION("start_all() refuses an unknown dependency before starting anything") {
        auto ok = spec("ok", {"sleep", "60000"});
        auto web = spec("web", {"sleep", "60000"});
        web.after = {"nope"};
        REQUIRE(sup.add(ok));
        REQUIRE(sup.add(web));
        auto r = sup.start_all();
        REQUIRE_FALSE(r);
        CHECK(has(r.error().what(), "unknown dependency \"nope\""));
        CHECK(sup.get("ok")->state == DaemonState::stopped);
        CHECK(sup.get("web")->state == DaemonState::stopped);
    }
    SECTION("a dependent is not started while a required dependency is failed") {
        auto db = spec("db", {"exit", "1"});
        db.restart = RestartPolicy::no;
        auto web = spec("web", {"sleep", "60000"});
        web.requires_ = {"db"};
        REQUIRE(sup.add(db));
        REQUIRE(sup.add(web));
        REQUIRE(sup.start("db"));
        REQUIRE(env.log.wait("db", DaemonState::failed));
        auto r = sup.start("web");
        REQUIRE_FALSE(r);
        CHECK(has(r.error().what(), "which is failed"));
        CHECK(sup.get("web")->state == DaemonState::stopped);
        CHECK(sup.get("web")->pid == 0);
    }
    SECTION("a held dependent is stopped by stop() without ever running") {
        auto db = spec("db", {"sleep", "60000"});
        auto web = spec("web", {"sleep", "60000"});
        web.after = {"db"};
        REQUIRE(sup.add(db));
        REQUIRE(sup.add(web));
        REQUIRE(sup.start("web"));
        CHECK(sup.get("web")->state == DaemonState::starting);
        CHECK(sup.get("web")->waiting_for == std::vector<std::string>{"db"});
        REQUIRE(sup.stop("web"));
        CHECK(sup.get("web")->state == DaemonState::stopped);
        REQUIRE(sup.start("db"));
        CHECK(sup.get("web")->state == DaemonState::stopped);
    }
}
