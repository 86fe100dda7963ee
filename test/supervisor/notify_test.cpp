// The readiness protocol (issue 15 §2): a "notify" daemon (test/helper/child.cpp's f-notify,
// which speaks sd_notify to $NOTIFY_SOCKET) is `running` only after READY=1; STATUS= shows in
// its status; a missed WATCHDOG=1 restarts it; a datagram from another pid, an oversized or a
// malformed one is dropped and counted; start_timeout bounds the wait; and the sending side
// (ManagerNotifier) reaches a fake manager's socket. Every wait has a deadline.
#include <catch2/catch_test_macros.hpp>
#include <condition_variable>
#include <mutex>
#include <random>

#include "core/process/process.hpp"
#include "core/process/supervisor.hpp"
#include "guard.hpp"
#include "supervisor/notify_hub.hpp"
#include "support.hpp"
#include "sys/notify.hpp"
#include "sys/poll.hpp"

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

DaemonSpec notify_spec(const std::string& name, std::vector<std::string> steps) {
    DaemonSpec s;
    s.name = name;
    s.command = core::test::child_path();
    s.args = {"f-notify"};
    for (auto& st : steps) s.args.push_back(std::move(st));
    s.notify = true;
    s.backoff = {10ms, 2.0, 10000ms, 0.0};
    s.start_limit = {100, 60000ms};
    s.stop_timeout = 5000ms;
    return s;
}

std::string unique_address() {
    std::random_device rd;
    return "@core-notify-test-" + std::to_string(rd()) + "-" + std::to_string(rd());
}

}  // namespace

TEST_CASE("Notify_ParseNotify_Good", "[supervisor][notify]") {
    using core::process::detail::parse_notify;
    auto f = parse_notify("READY=1\nSTATUS=up and running\n");
    REQUIRE(f);
    REQUIRE(f->size() == 2);
    CHECK(f->at(0).key == "READY");
    CHECK(f->at(0).value == "1");
    CHECK(f->at(1).key == "STATUS");
    CHECK(f->at(1).value == "up and running");
    auto e = parse_notify("STATUS=");
    REQUIRE(e);
    CHECK(e->at(0).value.empty());
}

TEST_CASE("Notify_ParseNotify_Bad", "[supervisor][notify]") {
    using core::process::detail::parse_notify;
    CHECK_FALSE(parse_notify(""));
    CHECK_FALSE(parse_notify("\n"));
    CHECK_FALSE(parse_notify("READY"));
    CHECK_FALSE(parse_notify("=1"));
    CHECK_FALSE(parse_notify("ready=1"));
    CHECK_FALSE(parse_notify("READY=1\ngarbage"));
    CHECK_FALSE(parse_notify(std::string("READY=1\0", 8)));
}

TEST_CASE("Notify_Ready_Good", "[supervisor][notify]") {
    CORE_LEAK_GUARD();
    Env env;
    Supervisor sup(*env.core, *env.svc);

    SECTION("running only after READY=1, with STATUS= in its status") {
        REQUIRE(sup.add(
            notify_spec("db", {"STATUS=warming up", "sleep:300", "READY=1", "STATUS=serving"})));
        auto web = notify_spec("web", {"READY=1"});
        web.after = {"db"};
        REQUIRE(sup.add(web));
        REQUIRE(sup.start_all());
        CHECK(sup.get("db")->state == DaemonState::starting);
        CHECK_FALSE(sup.get("db")->ready);
        REQUIRE(env.log.wait("db", DaemonState::running));
        REQUIRE(env.log.wait("web", DaemonState::running));
        CHECK(env.log.index("db", DaemonState::running) <
              env.log.index("web", DaemonState::running));
        auto evs = env.log.of("db");
        REQUIRE(evs.size() >= 3);
        CHECK(evs[1].to == DaemonState::starting);  // spawned, not ready yet
        CHECK(evs[1].pid > 0);
        CHECK(has(evs[1].reason, "waiting for READY=1"));
        CHECK(evs[2].reason == "READY=1");
        CHECK(core::test::eventually([&] { return sup.get("db")->status_text == "serving"; }));
        CHECK(sup.get("db")->ready);
        CHECK(sup.get("db")->notify_dropped == 0);
    }

    SECTION("MAINPID= names a process of the daemon's tree") {
        REQUIRE(sup.add(notify_spec("m", {"mainpid", "READY=1"})));
        REQUIRE(sup.start("m"));
        REQUIRE(env.log.wait("m", DaemonState::running));
        auto st = sup.get("m");
        CHECK(st->main_pid > 0);
        CHECK(st->main_pid != st->pid);
    }
}

TEST_CASE("Notify_Datagram_Bad", "[supervisor][notify]") {
    CORE_LEAK_GUARD();
    Env env;
    Supervisor sup(*env.core, *env.svc);

    SECTION("another pid, an oversized and a malformed datagram are dropped and counted") {
        REQUIRE(sup.add(notify_spec(
            "d", {"other:READY=1", "big:5000", "no key here", "sleep:200", "READY=1"})));
        REQUIRE(sup.start("d"));
        REQUIRE(env.log.wait("d", DaemonState::running));
        auto st = sup.get("d");
        CHECK(st->notify_dropped == 3);
        // The other pid's READY=1 did not count: running came from the daemon's own.
        for (const auto& e : env.log.of("d"))
            if (e.to == DaemonState::running) CHECK(e.reason == "READY=1");
    }

    SECTION("start_timeout: no READY=1 in time is a failed start") {
        auto s = notify_spec("slow", {"STATUS=thinking"});
        s.start_timeout = 200ms;
        s.restart = RestartPolicy::no;
        REQUIRE(sup.add(s));
        REQUIRE(sup.start("slow"));
        REQUIRE(env.log.wait("slow", DaemonState::failed));
        CHECK(env.log.index("slow", DaemonState::running) == SIZE_MAX);
        CHECK(has(sup.get("slow")->last_error, "READY=1"));
    }

    SECTION("a missed WATCHDOG=1 makes it unhealthy and restarts it") {
        auto s = notify_spec("dog", {"READY=1", "ping:50:4"});
        s.watchdog = 300ms;
        REQUIRE(sup.add(s));
        REQUIRE(sup.start("dog"));
        REQUIRE(env.log.wait("dog", DaemonState::unhealthy));
        REQUIRE(env.log.wait("dog", DaemonState::running, 2));
        bool said = false;
        for (const auto& e : env.log.of("dog"))
            if (e.to == DaemonState::unhealthy) said = said || has(e.reason, "watchdog");
        CHECK(said);
        CHECK(sup.get("dog")->restarts >= 1);
    }
}

TEST_CASE("Notify_ManagerNotifier_Good", "[supervisor][notify]") {
    CORE_LEAK_GUARD();
    const std::string address = unique_address();
    auto sock = core::sys::notify::bind(address);
    REQUIRE(sock);
    core::process::ManagerNotifier m(address, 2000000us);
    CHECK(m.active());
    CHECK(m.watchdog() == 2000000us);
    REQUIRE(m.send("READY=1\nSTATUS=3 of 3 daemons up\n"));
    REQUIRE(
        core::sys::wait_readable(sock->get(), std::chrono::milliseconds(10000)).value_or(false));
    auto d = core::sys::notify::receive(sock->get(), 4096);
    REQUIRE(d);
    REQUIRE(*d);
    CHECK((*d)->text == "READY=1\nSTATUS=3 of 3 daemons up\n");
    CHECK((*d)->pid > 0);  // SO_PASSCRED: the kernel's word on the sender
    CHECK_FALSE((*d)->truncated);

    SECTION("inactive without a socket") {
        core::process::ManagerNotifier none;
        CHECK_FALSE(none.active());
        CHECK(none.send("READY=1"));
    }
    SECTION("a socket nobody bound is the send's error") {
        core::process::ManagerNotifier gone(unique_address());
        CHECK_FALSE(gone.send("READY=1"));
    }
}
