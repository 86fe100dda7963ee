// The process Service: registration, the five actions, shutdown and the permission model (the
// RFC's AX-7 list), plus the action table's options, values and errors.
#include <sys/stat.h>
#include <unistd.h>

#include <spawn.h>
#include <sys/wait.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
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
    CHECK((*c)->actions() == Strings{"process.run", "process.exec", "process.start", "process.kill",
                                     "process.list", "process.get"});
    CHECK((*c)->process().exists());
}

TEST_CASE("Service_HandleRun_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    SECTION("through the action") {
        auto r = (*c).action("process.run")
                     .run(Context::background(), child_opts({"print", "hello", "world"}));
        REQUIRE(r);
        REQUIRE(r->get<std::string>());
        CHECK(*r->get<std::string>() == "hello world\n");
    }
    SECTION("through the facade") {
        auto r = c->process().run(Context::background(), core::test::child_path(), {"print", "hi"});
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
        auto r = c->action("process.run")
                     .run(Context::background(), child_opts({"fail-after", "0", "3"}));
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
        const auto svc = service(c);  // its REQUIRE stays on this thread (Catch is not thread-safe)
        std::thread t([&] {
            // Cancel once the child is running (it appears in the list).
            core::test::eventually([&] { return !svc->list().empty(); });
            ctx.cancel();
        });
        auto r = svc->run(ctx, child({"sleep", "60000"}));
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
    SECTION("run ignores detach and is still killed on timeout") {
        Options o = child_opts({"sleep", "60000"});
        o.set("detach", true);
        o.set("timeout", 50);
        auto d = c->action("process.run").run(Context::background(), o);
        REQUIRE_FALSE(d);
        CHECK(d.error().code() == ETIMEDOUT);
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
    auto r = c->action("process.start")
                 .run(Context::background(), Options{{"command", "no-such-command-xyz"}});
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
        auto r =
            c->action("process.kill").run(Context::background(), Options{{"pid", (*p)->pid()}});
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
        auto r = c->action("process.kill")
                     .run(Context::background(), Options{{"pid", static_cast<int>(getpid())}});
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
    auto running =
        c->action("process.list").run(Context::background(), Options{{"runningOnly", true}});
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

TEST_CASE("Service_OnShutdown_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    // A shutdown whose context expires before a long grace period: SIGKILL at the deadline.
    auto o = child({"ignore-term", "60000"});
    o.grace_period = std::chrono::hours(1);
    auto p = service(c)->start(Context::background(), o);
    REQUIRE(p);
    REQUIRE(core::test::eventually([&] { return contains((*p)->output(), "ready"); }));
    REQUIRE(c->shutdown(Context::background().with_timeout(100ms)));
    const auto info = (*p)->info();
    INFO("status " << cp::to_string(info.status) << " exit " << info.exit_code << " error "
                   << info.error);
    CHECK(info.signal == SIGKILL);
}

TEST_CASE("Service_PermissionModel_Ugly", "[process]") {
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

// ------------------------------------------------------------------ events

namespace {
// Collects the process events of one Core, thread-safely.
struct Recorder {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::string> log;  // "started <id>", "out <id> <line>", "killed …", "exited …"
    core::Subscription sub;

    explicit Recorder(core::Core& c) {
        sub = c.subscribe([this](const Value& v) {
            std::string e;
            if (auto* s = v.get<cp::ProcessStarted>()) e = "started " + s->id;
            if (auto* o = v.get<cp::ProcessOutput>())
                e = std::string(cp::to_string(o->stream)) + " " + o->id + " " + o->line;
            if (auto* k = v.get<cp::ProcessKilled>())
                e = "killed " + k->id + " " + std::to_string(k->signal);
            if (auto* x = v.get<cp::ProcessExited>())
                e = "exited " + x->id + " " + std::to_string(x->exit_code) + " " + x->error;
            if (e.empty()) return;
            std::lock_guard lk(mu);
            log.push_back(e);
            cv.notify_all();
        });
    }
    // Waits for the exited event of id; returns every event of id in order.
    std::vector<std::string> until_exit(const std::string& id) {
        std::unique_lock lk(mu);
        cv.wait_for(lk, 30s, [&] {
            for (auto& e : log)
                if (e.rfind("exited " + id + " ", 0) == 0) return true;
            return false;
        });
        std::vector<std::string> out;
        for (auto& e : log)
            if (e.find(" " + id) != std::string::npos) out.push_back(e);
        return out;
    }
};
}  // namespace

TEST_CASE("Service_Events_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    Recorder rec(*c);
    auto p = service(c)->start(Context::background(), child({"lines", "100"}));
    REQUIRE(p);
    const std::string id = (*p)->id();
    auto events = rec.until_exit(id);
    REQUIRE(events.size() == 102);
    CHECK(events.front() == "started " + id);
    for (int i = 0; i < 100; ++i)
        CHECK(events[static_cast<std::size_t>(i) + 1] ==
              "stdout " + id + " line " + std::to_string(i));
    CHECK(events.back() == "exited " + id + " 0 ");
    SECTION("stderr lines and the last unterminated line") {
        auto q = service(c)->start(Context::background(), child({"stderr", "oops"}));
        REQUIRE(q);
        auto ev = rec.until_exit((*q)->id());
        REQUIRE(ev.size() == 3);
        CHECK(ev[1] == "stderr " + (*q)->id() + " oops");
        auto u = service(c)->start(Context::background(), child({"bytes", "5", "z"}));
        REQUIRE(u);
        auto eu = rec.until_exit((*u)->id());
        REQUIRE(eu.size() == 3);
        CHECK(eu[1] == "stdout " + (*u)->id() + " zzzzz");
    }
}

TEST_CASE("Service_Events_Bad", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    Recorder rec(*c);
    // ProcessKilled at most once, even with several kills; then ProcessExited with the reason.
    auto o = child({"ignore-term", "60000"});
    o.grace_period = 50ms;
    auto p = service(c)->start(Context::background(), o);
    REQUIRE(p);
    REQUIRE(core::test::eventually([&] { return contains((*p)->output(), "ready"); }));
    REQUIRE((*p)->kill());
    REQUIRE((*p)->kill());
    REQUIRE(service(c)->kill((*p)->id()));
    const std::string id = (*p)->id();
    auto ev = rec.until_exit(id);
    int killed = 0;
    for (auto& e : ev) killed += e.rfind("killed ", 0) == 0;
    CHECK(killed == 1);
    REQUIRE(ev.size() >= 3);
    CHECK(ev[ev.size() - 2] == "killed " + id + " 9");
    CHECK(ev.back() == "exited " + id + " -1 killed by signal 9 (SIGKILL)");
    SECTION("no events when the Service is built without them") {
        auto quiet = make_core({.events = false});
        Recorder none(*quiet);
        REQUIRE(service(quiet)->run(Context::background(), child({"print", "x"})));
        std::lock_guard lk(none.mu);
        CHECK(none.log.empty());
    }
}

TEST_CASE("Service_Events_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core({.max_queued_lines = 100});
    // A subscriber that blocks does not block the reaper: runs complete while it is stuck, and
    // the lines it could not take are dropped (bounded), not queued without limit.
    std::mutex gate_mu;
    std::condition_variable gate_cv;
    bool open = false;
    std::atomic<int> seen{0};
    auto sub = c->subscribe([&](const Value&) {
        ++seen;
        std::unique_lock lk(gate_mu);
        gate_cv.wait(lk, [&] { return open; });
    });
    for (int i = 0; i < 5; ++i) {
        auto r = service(c)->run(Context::background(), child({"lines", "1000"}));
        REQUIRE(r);
    }
    {
        std::lock_guard lk(gate_mu);
        open = true;
    }
    gate_cv.notify_all();
    // Let the backlog drain: events are FIFO, so once a sentinel's exit is seen, it is.
    Recorder rec(*c);
    auto sentinel = service(c)->start(Context::background(), child({"exit", "0"}));
    REQUIRE(sentinel);
    REQUIRE(rec.until_exit((*sentinel)->id()).size() == 2);
    // Long lines are delivered in pieces of max_output bytes.
    auto o = child({"line", "10000"});
    o.max_output = 4096;
    auto p = service(c)->start(Context::background(), o);
    REQUIRE(p);
    auto ev = rec.until_exit((*p)->id());
    REQUIRE(ev.size() == 5);
    CHECK(ev[1].size() == std::string("stdout " + (*p)->id() + " ").size() + 4096);
    CHECK(ev[3].size() == std::string("stdout " + (*p)->id() + " ").size() + 10000 - 8192);
    sub.reset();
    CHECK(seen.load() < 5 * 1002);
}

// ------------------------------------------------------------------ retention, options

TEST_CASE("Service_Retention_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core({.retention = 3});
    auto svc = service(c);
    auto running = svc->start(Context::background(), child({"sleep", "60000"}));
    REQUIRE(running);
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) {
        auto p = svc->start(Context::background(), child({"exit", std::to_string(i)}));
        REQUIRE(p);
        (*p)->wait();
        ids.push_back((*p)->id());
    }
    // The oldest finished are evicted first; the running one never.
    REQUIRE(core::test::eventually([&] { return svc->list().size() == 4; }));
    CHECK(svc->list() == Strings{(*running)->id(), ids[2], ids[3], ids[4]});
    CHECK_FALSE(svc->get(ids[0]));
    SECTION("remove frees a place") {
        REQUIRE(svc->remove(ids[4]));
        CHECK_FALSE(svc->remove(ids[4]));
        auto busy = svc->remove((*running)->id());
        REQUIRE_FALSE(busy);
        CHECK(contains(busy.error().what(), "still running"));
        auto p = svc->start(Context::background(), child({"exit", "0"}));
        REQUIRE(p);
        (*p)->wait();
        REQUIRE(core::test::eventually([&] { return svc->list().size() == 4; }));
        CHECK(svc->get(ids[2]));
    }
    REQUIRE((*running)->kill());
    (*running)->wait();
}

TEST_CASE("Service_ParseOptions_Bad", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    struct Case {
        const char* key;
        Value value;
        const char* want;
    };
    const Case cases[] = {
        {"command", 42, "option \"command\": want string"},
        {"args", 7, "option \"args\": want string list, got"},
        {"args", std::string("a b"), "option \"args\": want string list"},
        {"dir", true, "option \"dir\": want string"},
        {"env", std::string("A=B"), "option \"env\": want string list"},
        {"timeout", true, "option \"timeout\""},
        {"timeout", -5, "option \"timeout\": negative duration"},
        {"timeout", std::string("soon"), "option \"timeout\""},
        {"gracePeriod", std::string("x"), "option \"gracePeriod\""},
        {"killGroup", std::string("yes"), "option \"killGroup\": want bool"},
        {"disableCapture", 3.5, "option \"disableCapture\""},
        {"input", 12, "option \"input\": want string"},
        {"maxOutput", std::string("1MB"), "option \"maxOutput\""},
        {"maxOutput", -1, "option \"maxOutput\": must not be negative"},
        {"detach", 1.0, "option \"detach\""},
    };
    for (const auto& k : cases) {
        for (const char* action : {"process.run", "process.start"}) {
            Options o = child_opts({"exit", "0"});
            o.set(k.key, k.value);
            auto r = c->action(action).run(Context::background(), o);
            INFO(action << " " << k.key);
            REQUIRE_FALSE(r);
            CHECK(contains(r.error().what(), std::string(action) + ": " + k.want));
        }
    }
    CHECK(service(c)->list().empty());
    SECTION("process.list / get / kill") {
        auto l = c->action("process.list").run(Context::background(), Options{{"runningOnly", 1}});
        REQUIRE_FALSE(l);
        CHECK(contains(l.error().what(), "process.list: option \"runningOnly\""));
        auto g = c->action("process.get").run(Context::background(), Options{{"id", 5}});
        REQUIRE_FALSE(g);
        CHECK(contains(g.error().what(), "process.get: option \"id\""));
        auto k = c->action("process.kill").run(Context::background(), Options{{"pid", "12"}});
        REQUIRE_FALSE(k);
        CHECK(contains(k.error().what(), "process.kill: option \"pid\""));
    }
}

TEST_CASE("Service_ParseOptions_Good", "[process]") {
    CORE_LEAK_GUARD();
    Options o{{"command", "git"},  {"args", Strings{"log", "-1"}},
              {"dir", "/tmp"},     {"env", Strings{"A=1"}},
              {"timeout", "1.5s"}, {"gracePeriod", 0},
              {"killGroup", true}, {"disableCapture", true},
              {"input", "in"},     {"maxOutput", 10},
              {"detach", true}};
    auto r = cp::Service::parse_options("process.start", o);
    REQUIRE(r);
    CHECK(r->command == "git");
    CHECK(r->args == Strings{"log", "-1"});
    CHECK(r->dir == "/tmp");
    CHECK(r->env == Strings{"A=1"});
    CHECK(r->timeout == 1500ms);
    CHECK(r->grace_period == 0ms);
    CHECK(r->kill_group);
    // go-process's keys map onto Stdio: disableCapture inherits, input writes bytes.
    CHECK(r->std_out == cp::Stdio::inherit());
    CHECK(r->std_err == cp::Stdio::inherit());
    CHECK(r->std_in == cp::Stdio::bytes("in"));
    CHECK(r->max_output == 10);
    CHECK(r->detach);
    auto d = cp::Service::parse_options("process.run", Options{{"command", "x"}});
    REQUIRE(d);
    CHECK(d->grace_period == 5000ms);
    CHECK(d->max_output == std::size_t{1} << 20);
    CHECK(d->std_out == cp::Stdio::pipe());
    CHECK(d->std_err == cp::Stdio::merge());
    CHECK(d->std_in == cp::Stdio::null());
}

TEST_CASE("Service_KillPid_Good", "[process]") {
    CORE_LEAK_GUARD();
    // With allow_foreign_pids, a PID the Service did not start may be signalled.
    auto c = make_core({.allow_foreign_pids = true});
    pid_t pid = -1;
    char* argv[] = {const_cast<char*>(core::test::child_path()), const_cast<char*>("sleep"),
                    const_cast<char*>("60000"), nullptr};
    REQUIRE(posix_spawn(&pid, argv[0], nullptr, nullptr, argv, environ) == 0);
    auto r = c->action("process.kill")
                 .run(Context::background(), Options{{"pid", static_cast<int>(pid)}});
    CHECK(r);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGTERM);
}
