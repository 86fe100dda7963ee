// The process Service: registration, the five actions, shutdown and the permission model (the
// RFC's AX-7 list), plus the action table's options, values and errors.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <thread>

#include "common.hpp"

using core::Context;
using core::Options;
using core::Value;
using namespace proctest;

TEST_CASE("Service_Register_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto c = core::Core::create({cp::register_service});
    REQUIRE(c);
    auto s = (*c)->service<cp::Service>("process");
    REQUIRE(s);
    CHECK(s->name() == "process");
    CHECK((*c)->services() == Strings{"process"});
    SECTION("a factory with options") {
        auto d = core::Core::create({cp::service_factory({.retention = 3})});
        REQUIRE(d);
        CHECK((*d)->service<cp::Service>("process"));
    }
}

TEST_CASE("Service_OnStartup_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto c = core::Core::create({cp::register_service});
    REQUIRE(c);
    CHECK((*c)->actions().empty());
    REQUIRE((*c)->startup(Context::background()));
    CHECK((*c)->actions() ==
          Strings{"process.run", "process.start", "process.kill", "process.list", "process.get"});
    CHECK((*c)->process().exists());
}

TEST_CASE("Service_HandleRun_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    SECTION("through the action") {
        auto r = (*c).action("process.run").run(Context::background(),
                                                 child_opts({"print", "hello", "world"}));
        REQUIRE(r);
        REQUIRE(r->get<std::string>());
        CHECK(*r->get<std::string>() == "hello world\n");
    }
    SECTION("through the facade") {
        auto r = c->process().run(Context::background(), core::test::child_path(),
                                  {"print", "hi"});
        REQUIRE(r);
        CHECK(*r == "hi\n");
    }
    SECTION("stdout and stderr combined, entry removed afterwards") {
        auto r = service(c)->run(Context::background(), child({"interleave", "3"}));
        REQUIRE(r);
        CHECK(contains(*r, "out 0\n"));
        CHECK(contains(*r, "err 2\n"));
        CHECK(r->size() == 3 * 12);
        CHECK(service(c)->list().empty());
    }
    SECTION("a command found in PATH") {
        auto r = c->process().run(Context::background(), "true");
        REQUIRE(r);
        CHECK(r->empty());
    }
}

TEST_CASE("Service_HandleRun_Bad", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    SECTION("command not found") {
        auto r = c->process().run(Context::background(), "gti-does-not-exist");
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == ENOENT);
        CHECK(r.error().what() ==
              "process.run: exec \"gti-does-not-exist\": No such file or directory");
    }
    SECTION("a path that does not exist") {
        auto r = c->process().run(Context::background(), "/nonexistent/prog");
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == ENOENT);
        CHECK(contains(r.error().what(), "exec \"/nonexistent/prog\""));
    }
    SECTION("not executable") {
        char path[] = "/tmp/core-proc-noexec-XXXXXX";
        const int fd = mkstemp(path);
        REQUIRE(fd >= 0);
        ::close(fd);
        ::chmod(path, 0644);
        auto r = c->process().run(Context::background(), path);
        ::unlink(path);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == EACCES);
        CHECK(contains(r.error().what(), "Permission denied"));
    }
    SECTION("command missing") {
        auto r = c->action("process.run").run(Context::background(), Options{});
        REQUIRE_FALSE(r);
        CHECK(contains(r.error().what(), "option \"command\" is required"));
    }
    SECTION("non-zero exit carries the output tail") {
        auto r = c->action("process.run").run(Context::background(),
                                              child_opts({"fail-after", "0", "3"}));
        REQUIRE_FALSE(r);
        CHECK(contains(r.error().what(), "exited with code 3"));
        auto r2 = service(c)->run(Context::background(), child({"print", "boom"}));
        REQUIRE(r2);
    }
    SECTION("killed by a signal") {
        auto r = service(c)->run(Context::background(), child({"kill-self", "9"}));
        REQUIRE_FALSE(r);
        CHECK(contains(r.error().what(), "killed by signal 9 (SIGKILL)"));
    }
    CHECK(service(c)->list().empty());
}

TEST_CASE("Service_HandleRun_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    SECTION("timeout through the context kills the child") {
        auto ctx = Context::background().with_timeout(100ms);
        const auto t0 = std::chrono::steady_clock::now();
        auto r = c->action("process.run").run(ctx, child_opts({"sleep", "60000"}));
        REQUIRE_FALSE(r);
        CHECK(contains(r.error().what(), "context deadline exceeded"));
        CHECK(std::chrono::steady_clock::now() - t0 < 30s);
    }
    SECTION("timeout option") {
        Options o = child_opts({"sleep", "60000"});
        o.set("timeout", "100ms");
        auto r = c->action("process.run").run(Context::background(), o);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == ETIMEDOUT);
        CHECK(contains(r.error().what(), "timed out after 100ms"));
    }
    SECTION("cancelled context") {
        auto ctx = Context::background().with_cancel();
        std::thread t([&] {
            // Cancel once the child is running (it appears in the list).
            core::test::eventually([&] { return !service(c)->list().empty(); });
            ctx.cancel();
        });
        auto r = service(c)->run(ctx, child({"sleep", "60000"}));
        t.join();
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == ECANCELED);
        CHECK(contains(r.error().what(), "context cancelled"));
    }
    SECTION("already cancelled context: nothing is spawned") {
        auto ctx = Context::background().with_cancel();
        ctx.cancel();
        auto r = service(c)->run(ctx, child({"sleep", "60000"}));
        REQUIRE_FALSE(r);
        CHECK(contains(r.error().what(), "context cancelled"));
    }
}

TEST_CASE("Service_HandleStart_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    auto r = c->action("process.start").run(Context::background(), child_opts({"sleep", "60000"}));
    REQUIRE(r);
    const std::string id = *r->get<std::string>();
    CHECK_FALSE(id.empty());
    auto p = svc->get(id);
    REQUIRE(p);
    CHECK((*p)->is_running());
    CHECK((*p)->pid() > 0);
    CHECK(alive((*p)->pid()));
    CHECK((*p)->status() == cp::Status::running);
    REQUIRE((*p)->kill());
    auto info = (*p)->wait();
    CHECK(info.status == cp::Status::killed);
    CHECK(info.signal == SIGTERM);
    CHECK(info.exit_code == -1);
    SECTION("detached: survives its context") {
        auto ctx = Context::background().with_cancel();
        Options o = child_opts({"sleep", "60000"});
        o.set("detach", true);
        auto d = c->action("process.start").run(ctx, o);
        REQUIRE(d);
        ctx.cancel();
        auto dp = svc->get(*d->get<std::string>());
        REQUIRE(dp);
        CHECK_FALSE((*dp)->wait_for(50ms));
        REQUIRE((*dp)->kill());
        (*dp)->wait();
    }
    SECTION("not detached: ends with its context") {
        auto ctx = Context::background().with_cancel();
        auto d = svc->start(ctx, child({"sleep", "60000"}));
        REQUIRE(d);
        ctx.cancel();
        auto info2 = (*d)->wait();
        CHECK(info2.status == cp::Status::killed);
        CHECK(info2.error == "context cancelled");
    }
}

TEST_CASE("Service_HandleStart_Bad", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto r = c->action("process.start").run(Context::background(),
                                            Options{{"command", "no-such-command-xyz"}});
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == ENOENT);
    CHECK(r.error().what() ==
          "process.start: exec \"no-such-command-xyz\": No such file or directory");
    CHECK(service(c)->list().empty());
    SECTION("missing dir names the dir") {
        Options o = child_opts({"cwd"});
        o.set("dir", "/no/such/dir");
        auto d = c->action("process.start").run(Context::background(), o);
        REQUIRE_FALSE(d);
        CHECK(d.error().code() == ENOENT);
        CHECK(d.error().what() == "process.start: dir \"/no/such/dir\": No such file or directory");
    }
    SECTION("dir that is a file") {
        Options o = child_opts({"cwd"});
        o.set("dir", "/etc/hostname");
        auto d = c->action("process.start").run(Context::background(), o);
        REQUIRE_FALSE(d);
        CHECK(d.error().code() == ENOTDIR);
    }
}

TEST_CASE("Service_HandleKill_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    SECTION("by id") {
        auto p = svc->start(Context::background(), child({"sleep", "60000"}));
        REQUIRE(p);
        auto r = c->action("process.kill").run(Context::background(), Options{{"id", (*p)->id()}});
        REQUIRE(r);
        CHECK(r->empty());
        auto info = (*p)->wait();
        CHECK(info.status == cp::Status::killed);
        CHECK(info.signal == SIGTERM);
    }
    SECTION("by pid") {
        auto p = svc->start(Context::background(), child({"sleep", "60000"}));
        REQUIRE(p);
        auto r = c->action("process.kill").run(Context::background(), Options{{"pid", (*p)->pid()}});
        REQUIRE(r);
        CHECK((*p)->wait().status == cp::Status::killed);
    }
    SECTION("through the facade") {
        auto p = svc->start(Context::background(), child({"sleep", "60000"}));
        REQUIRE(p);
        REQUIRE(c->process().kill(Context::background(), Options{{"id", (*p)->id()}}));
        CHECK((*p)->wait().status == cp::Status::killed);
    }
    SECTION("kill after exit is a no-op success") {
        auto p = svc->start(Context::background(), child({"exit", "0"}));
        REQUIRE(p);
        (*p)->wait();
        CHECK(c->action("process.kill").run(Context::background(), Options{{"id", (*p)->id()}}));
        CHECK((*p)->info().status == cp::Status::exited);
    }
}

TEST_CASE("Service_HandleKill_Bad", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    SECTION("unknown id") {
        auto r = c->action("process.kill").run(Context::background(), Options{{"id", "nope"}});
        REQUIRE_FALSE(r);
        CHECK(r.error().what() == "process.kill: not found: nope");
    }
    SECTION("neither id nor pid") {
        auto r = c->action("process.kill").run(Context::background(), Options{});
        REQUIRE_FALSE(r);
        CHECK(contains(r.error().what(), "need option \"id\" or \"pid\""));
    }
    SECTION("a pid this service does not manage") {
        auto r = c->action("process.kill").run(Context::background(),
                                               Options{{"pid", static_cast<int>(getpid())}});
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == EPERM);
        CHECK(contains(r.error().what(), "is not managed by this service"));
    }
    SECTION("a non-positive pid") {
        auto r = c->action("process.kill").run(Context::background(), Options{{"pid", -1}});
        REQUIRE_FALSE(r);
        CHECK(contains(r.error().what(), "option \"pid\""));
    }
}

TEST_CASE("Service_HandleList_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    auto a = svc->start(Context::background(), child({"sleep", "60000"}));
    auto b = svc->start(Context::background(), child({"exit", "0"}));
    REQUIRE(a);
    REQUIRE(b);
    (*b)->wait();
    auto all = c->action("process.list").run(Context::background(), Options{});
    REQUIRE(all);
    CHECK(*all->get<Strings>() == Strings{(*a)->id(), (*b)->id()});
    auto running = c->action("process.list").run(Context::background(),
                                                 Options{{"runningOnly", true}});
    REQUIRE(running);
    CHECK(*running->get<Strings>() == Strings{(*a)->id()});
    SECTION("process.get") {
        auto g = c->action("process.get").run(Context::background(), Options{{"id", (*b)->id()}});
        REQUIRE(g);
        const auto* info = g->get<cp::ProcessInfo>();
        REQUIRE(info);
        CHECK(info->id == (*b)->id());
        CHECK(info->pid == (*b)->pid());
        CHECK(info->command == core::test::child_path());
        CHECK(info->args == Strings{"exit", "0"});
        CHECK_FALSE(info->running);
        CHECK(info->status == cp::Status::exited);
        CHECK(info->exit_code == 0);
        auto missing = c->action("process.get").run(Context::background(), Options{});
        REQUIRE_FALSE(missing);
        auto unknown = c->action("process.get").run(Context::background(), Options{{"id", "x"}});
        REQUIRE_FALSE(unknown);
        CHECK(unknown.error().what() == "process.get: not found: x");
    }
    REQUIRE((*a)->kill());
    (*a)->wait();
}

TEST_CASE("Service_OnShutdown_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    std::vector<int> pids;
    std::vector<std::shared_ptr<cp::ManagedProcess>> procs;
    for (int i = 0; i < 3; ++i) {
        auto p = svc->start(Context::background(), child({"sleep", "60000"}));
        REQUIRE(p);
        pids.push_back((*p)->pid());
        procs.push_back(*p);
    }
    auto grp = child({"grandchild-wait", "60000"});
    grp.kill_group = true;
    auto g = svc->start(Context::background(), grp);
    REQUIRE(g);
    auto stubborn = child({"ignore-term", "60000"});
    stubborn.grace_period = 100ms;
    auto s = svc->start(Context::background(), stubborn);
    REQUIRE(s);
    // Wait for "ready" so the SIGTERM is surely ignored, and for the grandchild's pid.
    REQUIRE(core::test::eventually([&] { return contains((*s)->output(), "ready"); }));
    REQUIRE(core::test::eventually([&] { return contains((*g)->output(), "gc "); }));
    const int gc = std::stoi((*g)->output().substr(3));
    REQUIRE(c->shutdown(Context::background()));
    for (auto& p : procs) CHECK_FALSE(p->is_running());
    CHECK((*s)->info().signal == SIGKILL);
    CHECK_FALSE((*g)->is_running());
    CHECK(core::test::eventually([&] { return !alive(gc); }));
    for (int pid : pids) CHECK_FALSE(alive(pid));
    SECTION("start after shutdown fails") {
        auto r = svc->start(Context::background(), child({"exit", "0"}));
        REQUIRE_FALSE(r);
        CHECK(contains(r.error().what(), "shut down"));
    }
}

TEST_CASE("Service_Ugly_PermissionModel", "[process]") {
    CORE_LEAK_GUARD();
    auto c = core::Core::create();
    REQUIRE(c);
    REQUIRE((*c)->startup(Context::background()));
    CHECK_FALSE((*c)->process().exists());
    auto r = (*c)->process().run(Context::background(), "true");
    REQUIRE_FALSE(r);
    CHECK(contains(r.error().what(), "action not registered: process.run"));
    auto s = (*c)->process().start(Context::background(), Options{{"command", "true"}});
    REQUIRE_FALSE(s);
}
