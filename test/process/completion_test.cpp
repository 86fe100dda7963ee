// The typed completion (ExitStatus, Usage, Service::exec/Completed), the exit hook and the exit
// fd, the per-process output callback, and the fixes of issue 12 §4 and issue 18 that live in
// the process layer: huge timeouts, NUL bytes, unknown keys, write_input behind a grandchild,
// cut output, signal(0).
#include <poll.h>
#include <signal.h>

#include <atomic>
#include <catch2/catch_test_macros.hpp>
#include <mutex>
#include <thread>

#include "common.hpp"

using namespace proctest;
using core::Context;
using cp::Stdio;

namespace {
// The helper's "grandchild" mode prints "gc PID"; the grandchild is not ours to kill, so the
// test ends it itself.
void end_grandchild(const std::string& out) {
    auto pos = out.find("gc ");
    REQUIRE(pos != std::string::npos);
    const int gc = std::atoi(out.c_str() + pos + 3);
    REQUIRE(gc > 0);
    ::kill(gc, SIGKILL);
    CHECK(core::test::eventually([&] { return !alive(gc); }));
}
}  // namespace

TEST_CASE("Service_Exec_Good", "[process][completion]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    SECTION("exit 0") {
        auto r = svc->exec(Context::background(), child({"print", "ok"}));
        REQUIRE(r);
        CHECK(r->success());
        CHECK(r->status.kind == cp::ExitKind::exited);
        CHECK(r->status.reason == cp::ExitReason::natural);
        CHECK(r->status.describe() == "exited with code 0");
        CHECK(r->std_out == "ok\n");
        CHECK(r->pid > 0);
        CHECK(r->duration.count() > 0);
        CHECK(svc->list().empty());  // exec removes its own entry
    }
    SECTION("exit 3 is a status, not an Error") {
        auto r = svc->exec(Context::background(), child({"output-exit", "3", "2"}));
        REQUIRE(r);
        CHECK_FALSE(r->success());
        CHECK(r->status.code == 3);
        CHECK(r->status.describe() == "exited with code 3");
        CHECK(r->std_out == "ooEND\n");
    }
    SECTION("a signal") {
        auto r = svc->exec(Context::background(), child({"kill-self", "9"}));
        REQUIRE(r);
        CHECK(r->status.kind == cp::ExitKind::signalled);
        CHECK(r->status.signal == SIGKILL);
        CHECK(r->status.code == -1);
        CHECK(r->status.describe() == "killed by signal 9 (SIGKILL)");
    }
    SECTION("a timeout") {
        auto o = child({"sleep", "60000"});
        o.timeout = 100ms;
        o.grace_period = 0ms;
        auto r = svc->exec(Context::background(), o);
        REQUIRE(r);
        CHECK(r->status.reason == cp::ExitReason::timeout);
        CHECK(r->status.kind == cp::ExitKind::signalled);
        CHECK(r->status.describe() == "timed out after 100ms");
    }
    SECTION("a cancelled context") {
        const Context ctx = Context::background().with_cancel();
        auto o = child({"sleep", "60000"});
        o.grace_period = 0ms;
        std::thread t([ctx] {
            std::this_thread::sleep_for(50ms);
            ctx.cancel();
        });
        auto r = svc->exec(ctx, o);
        t.join();
        REQUIRE(r);
        CHECK(r->status.reason == cp::ExitReason::cancelled);
    }
}

TEST_CASE("Service_Exec_Bad", "[process][completion]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    cp::RunOptions o;
    o.command = "core-process-no-such-program";
    auto r = svc->exec(Context::background(), o);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == ENOENT);
    CHECK(contains(r.error().what(), "core-process-no-such-program"));
}

TEST_CASE("ProcessFacade_Exec_Good", "[process][completion]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    cp::Command cmd;
    cmd.command = core::test::child_path();
    cmd.args = {"interleave", "1"};
    auto r = c->process().exec(Context::background(), cmd);
    REQUIRE(r);
    CHECK(r->std_out == "out 0\n");
    CHECK(r->std_err == "err 0\n");
    CHECK(r->status.code == 0);
    cmd.args = {"exit", "4"};
    auto four = c->process().exec(Context::background(), cmd);
    REQUIRE(four);
    CHECK(four->status.code == 4);
    // Permission by registration: no process service, no exec.
    auto bare = core::Core::create({});
    REQUIRE(bare);
    auto none = (*bare)->process().exec(Context::background(), cmd);
    REQUIRE_FALSE(none);
    CHECK(contains(none.error().what(), "not registered"));
}

TEST_CASE("Service_Exec_Ugly", "[process][completion]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    SECTION("rusage of a child that burns 200 ms of CPU and touches 64 MiB") {
        auto r = svc->exec(Context::background(), child({"burn", "200", "64"}));
        REQUIRE(r);
        REQUIRE(r->success());
        CHECK(r->usage.user_cpu + r->usage.system_cpu >= 190ms);
        CHECK(r->usage.max_rss_bytes >= std::uint64_t{64} << 20);
    }
    SECTION("a grandchild holding the pipes past the drain: cut output is visible") {
        auto o = child({"grandchild", "60000"});
        auto r = svc->exec(Context::background(), o);
        REQUIRE(r);
        CHECK(r->status.output_cut);
        CHECK_FALSE(r->success());
        CHECK(contains(r->status.describe(), "output cut"));
        end_grandchild(r->std_out);
        auto run = svc->run(Context::background(), o);
        REQUIRE_FALSE(run);
        CHECK(contains(run.error().what(), "output cut"));
        end_grandchild(run.error().what());
    }
}

TEST_CASE("ManagedProcess_OnExit_Good", "[process][completion]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    SECTION("called once, off the caller's thread, with the final info") {
        // It cannot end before the hook is registered: it waits for its stdin's EOF.
        auto o = child({"echo"});
        o.std_in = Stdio::pipe();
        auto p = svc->start(Context::background(), o);
        REQUIRE(p);
        std::mutex mu;
        std::vector<cp::ProcessInfo> seen;
        std::thread::id hook_thread;
        (*p)->on_exit([&](const cp::ProcessInfo& i) {
            std::lock_guard lk(mu);
            seen.push_back(i);
            hook_thread = std::this_thread::get_id();
        });
        REQUIRE((*p)->write_input("bye"));
        REQUIRE((*p)->close_input());
        (*p)->wait();
        REQUIRE(core::test::eventually([&] {
            std::lock_guard lk(mu);
            return !seen.empty();
        }));
        std::lock_guard lk(mu);
        REQUIRE(seen.size() == 1);
        CHECK(seen[0].exit.code == 0);
        CHECK_FALSE(seen[0].running);
        CHECK(hook_thread != std::this_thread::get_id());
    }
    SECTION("already finished: at once, on this thread") {
        auto p = svc->start(Context::background(), child({"exit", "0"}));
        REQUIRE(p);
        (*p)->wait();
        int calls = 0;
        std::thread::id where;
        (*p)->on_exit([&](const cp::ProcessInfo&) {
            ++calls;
            where = std::this_thread::get_id();
        });
        CHECK(calls == 1);
        CHECK(where == std::this_thread::get_id());
    }
    SECTION("output chunks come before the exit hook, on the same thread") {
        std::mutex mu;
        std::string got;
        bool exited = false, chunk_after_exit = false;
        auto o = child({"lines", "2000"});
        o.on_output = [&](const cp::OutputChunk& ch) {
            std::lock_guard lk(mu);
            if (exited) chunk_after_exit = true;
            got.append(ch.bytes);
        };
        auto p = svc->start(Context::background(), o);
        REQUIRE(p);
        (*p)->on_exit([&](const cp::ProcessInfo&) {
            std::lock_guard lk(mu);
            exited = true;
        });
        REQUIRE(core::test::eventually([&] {
            std::lock_guard lk(mu);
            return exited;
        }));
        std::lock_guard lk(mu);
        CHECK_FALSE(chunk_after_exit);
        CHECK(got == (*p)->output());
        CHECK(got.size() > 18000);  // 2000 numbered lines
    }
}

TEST_CASE("ManagedProcess_OnExit_Ugly", "[process][completion]") {
    CORE_LEAK_GUARD();
    // 8 threads race kill() against the natural exit of 8 processes each, registering hooks
    // before and during the race: every hook runs exactly once.
    auto c = make_core(cp::ServiceOptions{.events = false});
    auto svc = service(c);
    std::atomic<int> calls{0};
    std::atomic<int> registered{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 8; ++t) {
        ts.emplace_back([&, t] {
            for (int i = 0; i < 8; ++i) {
                auto o = child({"sleep", std::to_string((t + i) % 3)});
                auto p = svc->start(Context::background(), o);
                if (!p) continue;
                (*p)->on_exit([&](const cp::ProcessInfo&) { calls.fetch_add(1); });
                registered.fetch_add(1);
                if (i % 2) (void)(*p)->kill();
                (*p)->on_exit([&](const cp::ProcessInfo&) { calls.fetch_add(1); });
                registered.fetch_add(1);
                (*p)->wait();
            }
        });
    }
    for (auto& t : ts) t.join();
    REQUIRE(core::test::eventually([&] { return calls.load() == registered.load(); }));
    CHECK(registered.load() == 128);
    svc->clear();
}

TEST_CASE("ManagedProcess_ExitFd_Good", "[process][completion]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    auto o = child({"sleep", "60000"});
    o.std_in = Stdio::pipe();
    auto p = svc->start(Context::background(), o);
    REQUIRE(p);
    auto fd = (*p)->exit_fd();
    REQUIRE(fd);
    auto fd2 = (*p)->exit_fd();
    REQUIRE(fd2);
    CHECK(*fd == *fd2);  // one descriptor per process
    ::pollfd pf{*fd, POLLIN, 0};
    CHECK(::poll(&pf, 1, 50) == 0);  // not readable while running
    REQUIRE((*p)->kill());
    REQUIRE(::poll(&pf, 1, 10000) == 1);
    CHECK_FALSE((*p)->is_running());  // readable exactly when finished
    // A finished process's exit_fd is readable at once.
    auto q = svc->start(Context::background(), child({"exit", "0"}));
    REQUIRE(q);
    (*q)->wait();
    auto qfd = (*q)->exit_fd();
    REQUIRE(qfd);
    ::pollfd qf{*qfd, POLLIN, 0};
    CHECK(::poll(&qf, 1, 0) == 1);
    svc->clear();
}

TEST_CASE("Service_Deadlines_Ugly", "[process][completion]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    SECTION("huge timeouts and grace periods mean never, not at once") {
        for (auto big : {std::chrono::milliseconds::max(), std::chrono::milliseconds::max() / 2,
                         std::chrono::milliseconds(9223372036000LL)}) {
            auto o = child({"sleep", "300"});
            o.timeout = big;
            o.grace_period = big;
            auto r = svc->exec(Context::background(), o);
            REQUIRE(r);
            CHECK(r->success());
        }
    }
    SECTION("through the action's string form") {
        auto r = c->action("process.run")
                     .run(Context::background(),
                          core::Options{{"command", std::string(core::test::child_path())},
                                        {"args", Strings{"sleep", "200"}},
                                        {"timeout", std::string("9223372036s")},
                                        {"gracePeriod", std::string("9223372036s")}});
        CHECK(r);
    }
    SECTION("a huge grace period: kill still sends SIGTERM, the child ends on it") {
        auto o = child({"sleep", "60000"});
        o.grace_period = std::chrono::milliseconds::max();
        auto p = svc->start(Context::background(), o);
        REQUIRE(p);
        REQUIRE((*p)->kill());
        const auto info = (*p)->wait();
        CHECK(info.exit.signal == SIGTERM);
        svc->clear();
    }
}

TEST_CASE("Service_Validate_Bad", "[process][completion]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    SECTION("NUL bytes are refused, naming the option") {
        auto o = child({"print", std::string("abc\0def", 7)});
        auto r = svc->exec(Context::background(), o);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == EINVAL);
        CHECK(contains(r.error().what(), "\"args\""));
        auto e = child({"env"});
        e.env = {std::string("K=a\0b", 5)};
        auto re = svc->exec(Context::background(), e);
        REQUIRE_FALSE(re);
        CHECK(contains(re.error().what(), "\"env\""));
        cp::RunOptions cmd;
        cmd.command = std::string("tr\0ue", 5);
        auto rc = svc->exec(Context::background(), cmd);
        REQUIRE_FALSE(rc);
        CHECK(contains(rc.error().what(), "\"command\""));
        auto d = child({"cwd"});
        d.dir = std::string("/tmp\0/x", 7);
        auto rd = svc->exec(Context::background(), d);
        REQUIRE_FALSE(rd);
        CHECK(contains(rd.error().what(), "\"dir\""));
    }
    SECTION("unknown action keys are refused, listing the known ones") {
        auto r = c->action("process.run")
                     .run(Context::background(),
                          core::Options{{"command", std::string("true")}, {"timout", 5}});
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == EINVAL);
        CHECK(contains(r.error().what(), "unknown option \"timout\""));
        CHECK(contains(r.error().what(), "timeout"));
        auto s = c->action("process.start")
                     .run(Context::background(),
                          core::Options{{"command", std::string("true")}, {"detatch", true}});
        REQUIRE_FALSE(s);
        CHECK(contains(s.error().what(), "detatch"));
    }
    SECTION("lenient_options restores go-process's behaviour") {
        auto lc = make_core(cp::ServiceOptions{.lenient_options = true});
        auto r = lc->action("process.run")
                     .run(Context::background(),
                          core::Options{{"command", std::string(core::test::child_path())},
                                        {"args", Strings{"print", "x"}},
                                        {"timout", 5}});
        REQUIRE(r);
        CHECK(*r->get<std::string>() == "x\n");
    }
    SECTION("the new stream keys") {
        auto r = c->action("process.run")
                     .run(Context::background(),
                          core::Options{{"command", std::string(core::test::child_path())},
                                        {"args", Strings{"interleave", "1"}},
                                        {"stderr", std::string("null")}});
        REQUIRE(r);
        CHECK(*r->get<std::string>() == "out 0\n");
        auto bad = c->action("process.run")
                       .run(Context::background(), core::Options{{"command", std::string("true")},
                                                                 {"stdout", std::string("pipes")}});
        REQUIRE_FALSE(bad);
        CHECK(contains(bad.error().what(), "\"stdout\""));
        auto clash = c->action("process.run")
                         .run(Context::background(), core::Options{{"command", std::string("true")},
                                                                   {"input", std::string("x")},
                                                                   {"stdin", std::string("null")}});
        REQUIRE_FALSE(clash);
    }
}

TEST_CASE("ManagedProcess_WriteInput_Ugly", "[process][completion]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    SECTION("a grandchild holds stdin and never reads: write_input returns once finished") {
        auto o = child({"grandchild", "60000"});
        o.std_in = Stdio::pipe();
        auto p = svc->start(Context::background(), o);
        REQUIRE(p);
        // More than a pipe holds: blocks until the process is finished (after the drain).
        auto w = (*p)->write_input(std::string(1 << 20, 'x'));
        REQUIRE_FALSE(w);
        CHECK(w.error().code() == EPIPE);
        CHECK_FALSE((*p)->is_running());
        CHECK((*p)->close_input());
        end_grandchild((*p)->output());
        svc->clear();
    }
    SECTION("close_input on another thread wakes a blocked writer") {
        auto o = child({"sleep", "60000"});
        o.std_in = Stdio::pipe();
        auto p = svc->start(Context::background(), o);
        REQUIRE(p);
        core::Result<void> w;
        std::thread t([&] { w = (*p)->write_input(std::string(1 << 20, 'x')); });
        std::this_thread::sleep_for(50ms);  // let it block on the full pipe (either way is fine)
        REQUIRE((*p)->close_input());
        t.join();
        CHECK_FALSE(w);
        REQUIRE((*p)->kill());
        (*p)->wait();
        svc->clear();
    }
}

TEST_CASE("ManagedProcess_Signal0_Good", "[process][completion]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    auto p = svc->start(Context::background(), child({"sleep", "60000"}));
    REQUIRE(p);
    CHECK((*p)->signal(0));  // a liveness probe: nothing is sent
    CHECK((*p)->is_running());
    REQUIRE((*p)->kill());
    (*p)->wait();
    CHECK((*p)->signal(0));  // finished: success, nothing sent
    CHECK_FALSE((*p)->signal(-1));
    svc->clear();
}
