#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch_test_macros.hpp>
#include <cerrno>
#include <string>
#include <thread>

#include "core/process/daemon.hpp"
#include "guard.hpp"
#include "sys/fault.hpp"
#include "util.hpp"

namespace cp = core::process;
using core::test::TempDir;
using namespace std::chrono_literals;

namespace {

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

cp::DaemonOptions options(const TempDir& tmp) {
    cp::DaemonOptions o;
    o.pid_file = tmp / "run/app.pid";
    o.health_addr = "127.0.0.1:0";
    o.code = "test";
    o.daemon = "app";
    o.project = "/srv/app";
    o.binary = "/usr/bin/app";
    o.registry_dir = tmp / "reg";
    o.checks.emplace_back("always", []() -> core::Result<void> { return {}; });
    return o;
}

// Blocks SIGTERM in this thread for the scope, restoring the previous mask after consuming any
// SIGTERM still pending for the thread.
class BlockTerm {
  public:
    BlockTerm() {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &s, &old_);
    }
    ~BlockTerm() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }

  private:
    sigset_t old_;
};

}  // namespace

TEST_CASE("Daemon_Start_Good", "[daemon]") {
    CORE_LEAK_GUARD();
    TempDir tmp;
    auto o = options(tmp);
    cp::Daemon d(o);
    REQUIRE(d.start());
    CHECK(d.running());
    REQUIRE(d.start());  // idempotent
    auto info = cp::read_pid(o.pid_file);
    REQUIRE(info);
    CHECK(info->pid == ::getpid());
    CHECK(info->alive);
    REQUIRE(cp::probe_health(d.health_addr(), 5s));
    REQUIRE(cp::probe_ready(d.health_addr(), 5s));
    cp::DaemonRegistry reg(o.registry_dir);
    auto e = reg.get("test", "app");
    REQUIRE(e);
    CHECK(e->pid == ::getpid());
    CHECK(e->health == d.health_addr());
    CHECK(e->project == "/srv/app");
    REQUIRE(d.stop());
}

TEST_CASE("Daemon_Start_Bad", "[daemon]") {
    CORE_LEAK_GUARD();
    TempDir tmp;
    auto o = options(tmp);
    SECTION("PID file held by another: nothing else started") {
        cp::PidFile other(o.pid_file);
        REQUIRE(other.acquire());
        cp::Daemon d(o);
        auto r = d.start();
        REQUIRE_FALSE(r);
        CHECK(r.error().what().find("daemon.start: pidfile.acquire: " + o.pid_file +
                                    ": held by pid") == 0);
        CHECK_FALSE(d.running());
        CHECK_FALSE(exists(o.registry_dir + "/test-app.json"));
    }
    SECTION("health port taken: the PID file is released again") {
        cp::HealthServer busy;
        REQUIRE(busy.start());
        o.health_addr = busy.addr();
        cp::Daemon d(o);
        auto r = d.start();
        REQUIRE_FALSE(r);
        CHECK(r.error().what().find("Address already in use") != std::string::npos);
        CHECK_FALSE(exists(o.pid_file));
        CHECK_FALSE(exists(o.registry_dir + "/test-app.json"));
    }
    SECTION("code without daemon name") {
        o.daemon.clear();
        cp::Daemon d(o);
        REQUIRE_FALSE(d.start());
        CHECK_FALSE(exists(o.pid_file));
    }
}

TEST_CASE("Daemon_Start_Ugly", "[daemon]") {
    CORE_LEAK_GUARD();
    TempDir tmp;
    auto o = options(tmp);
    SECTION("registry write fails (full disk): health stopped and PID file released") {
        cp::Daemon d(o);
        {
            core::sys::fault::Scoped g("fsync", ENOSPC, 1, 1);  // the PID file's fsync passes
            auto r = d.start();
            REQUIRE_FALSE(r);
            CHECK(r.error().code() == ENOSPC);
            CHECK(r.error().what().find("daemon.start: registry.register") == 0);
        }
        CHECK_FALSE(d.running());
        CHECK_FALSE(exists(o.pid_file));
        CHECK(d.health() != nullptr);
        CHECK_FALSE(d.health()->running());
        // And it can start once the disk has room again.
        REQUIRE(d.start());
        REQUIRE(d.stop());
    }
    SECTION("no PID file, no health, no registry: a bare daemon still runs") {
        cp::Daemon d(cp::DaemonOptions{});
        REQUIRE(d.start());
        CHECK(d.health_addr().empty());
        CHECK(d.health() == nullptr);
        d.notify_stop();
        REQUIRE(d.run(core::Context::background()));
        CHECK_FALSE(d.running());
    }
}

TEST_CASE("Daemon_Stop_Good", "[daemon]") {
    CORE_LEAK_GUARD();
    TempDir tmp;
    auto o = options(tmp);
    cp::Daemon d(o);
    REQUIRE(d.start());
    const std::string addr = d.health_addr();
    REQUIRE(d.stop());
    CHECK_FALSE(d.running());
    CHECK_FALSE(exists(o.pid_file));
    CHECK_FALSE(exists(o.registry_dir + "/test-app.json"));
    CHECK_FALSE(cp::probe_health(addr, 2s));
    REQUIRE(d.stop());  // idempotent
    SECTION("start again after stop") {
        REQUIRE(d.start());
        REQUIRE(cp::probe_ready(d.health_addr(), 5s));
        REQUIRE(d.stop());
    }
}

TEST_CASE("Daemon_Stop_Bad", "[daemon]") {
    CORE_LEAK_GUARD();
    TempDir tmp;
    auto o = options(tmp);
    cp::Daemon d(o);
    REQUIRE(d.start());
    SECTION("entry already removed by someone else: stop still succeeds") {
        REQUIRE(::unlink((o.registry_dir + "/test-app.json").c_str()) == 0);
        REQUIRE(d.stop());
        CHECK_FALSE(exists(o.pid_file));
    }
    SECTION("unlink failing: every step still runs, the first error is returned") {
        core::sys::fault::Scoped g("unlink", EIO, 1);
        auto r = d.stop();
        REQUIRE_FALSE(r);
        CHECK(r.error().what().find("daemon.stop: registry.unregister") == 0);
        CHECK_FALSE(d.running());
        CHECK_FALSE(exists(o.pid_file));  // released anyway
        CHECK_FALSE(d.health()->running());
    }
}

TEST_CASE("Daemon_Stop_Ugly", "[daemon]") {
    CORE_LEAK_GUARD();
    TempDir tmp;
    auto o = options(tmp);
    SECTION("the destructor stops") {
        {
            cp::Daemon d(o);
            REQUIRE(d.start());
        }
        CHECK_FALSE(exists(o.pid_file));
        CHECK_FALSE(exists(o.registry_dir + "/test-app.json"));
    }
    SECTION("readiness goes down while stopping: a check that observes it") {
        cp::Daemon d(o);
        REQUIRE(d.start());
        d.set_ready(false);
        REQUIRE_FALSE(cp::probe_ready(d.health_addr(), 5s));
        REQUIRE(cp::probe_health(d.health_addr(), 5s));
        REQUIRE(d.stop());
    }
}

TEST_CASE("Daemon_Run_Good", "[daemon]") {
    CORE_LEAK_GUARD();
    TempDir tmp;
    auto o = options(tmp);
    cp::Daemon d(o);
    REQUIRE(d.start());
    SECTION("context cancelled from another thread") {
        auto ctx = core::Context::background().with_cancel();
        std::thread canceller([&] {
            // Cancel once the daemon answers, i.e. while run() is (about to be) blocked.
            (void)cp::probe_health(d.health_addr(), 5s);
            ctx.cancel();
        });
        REQUIRE(d.run(ctx));
        canceller.join();
        CHECK_FALSE(d.running());
        CHECK(d.stop_signal() == 0);
        CHECK_FALSE(exists(o.pid_file));
    }
    SECTION("already cancelled context: returns at once, stopped") {
        auto ctx = core::Context::background().with_cancel();
        ctx.cancel();
        REQUIRE(d.run(ctx));
        CHECK_FALSE(d.running());
    }
    SECTION("notify_stop from another thread") {
        std::thread t([&] { d.notify_stop(); });
        REQUIRE(d.run(core::Context::background()));
        t.join();
        CHECK_FALSE(d.running());
    }
}

TEST_CASE("Daemon_Run_Bad", "[daemon]") {
    CORE_LEAK_GUARD();
    TempDir tmp;
    cp::Daemon d(options(tmp));
    auto r = d.run(core::Context::background());
    REQUIRE_FALSE(r);
    CHECK(r.error().what() == "daemon.run: daemon not started");
    SECTION("signalfd failure: error, daemon still running and stoppable") {
        REQUIRE(d.start());
        core::sys::fault::Scoped g("signalfd", EMFILE);
        auto f = d.run(core::Context::background());
        REQUIRE_FALSE(f);
        CHECK(f.error().code() == EMFILE);
        CHECK(d.running());
        REQUIRE(d.stop());
    }
}

TEST_CASE("Daemon_Run_Ugly", "[daemon]") {
    CORE_LEAK_GUARD();
    TempDir tmp;
    SECTION("SIGTERM to the thread running run(): consumed through the signalfd") {
        auto o = options(tmp);
        cp::Daemon d(o);
        REQUIRE(d.start());
        BlockTerm block;  // so the signal waits for run() instead of killing the test runner
        REQUIRE(::pthread_kill(::pthread_self(), SIGTERM) == 0);
        REQUIRE(d.run(core::Context::background()));
        CHECK(d.stop_signal() == SIGTERM);
        CHECK_FALSE(d.running());
        CHECK_FALSE(exists(o.pid_file));
        sigset_t pending;
        sigpending(&pending);
        CHECK_FALSE(sigismember(&pending, SIGTERM));  // consumed, not left to fire later
    }
    SECTION("a real SIGTERM to a daemon process: clean stop, files gone, exit 0") {
        const std::string pid_file = tmp / "helper.pid";
        const std::string reg_dir = tmp / "reg";
        core::test::Spawned p(core::test::daemon_helper_path(), {"daemon", pid_file, reg_dir});
        const std::string ready = p.read_line();
        REQUIRE(ready.rfind("ready 127.0.0.1:", 0) == 0);
        const std::string addr = ready.substr(6);
        REQUIRE(cp::probe_health(addr, 5s));
        auto info = cp::read_pid(pid_file);
        REQUIRE(info);
        CHECK(info->pid == p.pid());
        CHECK(info->alive);
        cp::DaemonRegistry reg(reg_dir);
        auto e = reg.get("test", "helper");
        REQUIRE(e);
        CHECK(e->pid == p.pid());
        CHECK(e->health == addr);

        REQUIRE(::kill(p.pid(), SIGTERM) == 0);
        CHECK(p.read_line() == "stopped 15");
        const int st = p.wait();
        CHECK(WIFEXITED(st));
        CHECK(WEXITSTATUS(st) == 0);
        CHECK_FALSE(exists(pid_file));
        CHECK_FALSE(exists(reg_dir + "/test-helper.json"));
        CHECK_FALSE(cp::probe_health(addr, 2s));
    }
    SECTION("SIGINT works the same") {
        const std::string pid_file = tmp / "helper.pid";
        core::test::Spawned p(core::test::daemon_helper_path(), {"daemon", pid_file, tmp / "reg"});
        REQUIRE(p.read_line().rfind("ready ", 0) == 0);
        REQUIRE(::kill(p.pid(), SIGINT) == 0);
        CHECK(p.read_line() == "stopped 2");
        CHECK(WIFEXITED(p.wait()));
        CHECK_FALSE(exists(pid_file));
    }
}
