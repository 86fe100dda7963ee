// ManagedProcess through the Service: env, dir, stdin, kill semantics, signals, output bounds,
// scale and races.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <thread>

#include "common.hpp"
#include "sys/fault.hpp"

using core::Context;
using namespace proctest;

namespace {
int grandchild_pid(const std::string& out) {
    auto pos = out.find("gc ");
    REQUIRE(pos != std::string::npos);
    return std::atoi(out.c_str() + pos + 3);
}
}  // namespace

TEST_CASE("ManagedProcess_Env_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    ::setenv("CORE_TEST_INHERITED", "parent", 1);
    SECTION("a new variable is added, the rest inherited") {
        auto o = child({"env"});
        o.env = {"CORE_TEST_NEW=child value"};
        auto r = svc->run(Context::background(), o);
        REQUIRE(r);
        CHECK(contains(*r, "CORE_TEST_NEW=child value\n"));
        CHECK(contains(*r, "CORE_TEST_INHERITED=parent\n"));
    }
    SECTION("an inherited variable is overridden, last wins") {
        auto o = child({"env", "CORE_TEST_INHERITED"});
        o.env = {"CORE_TEST_INHERITED=first", "CORE_TEST_INHERITED=second"};
        auto r = svc->run(Context::background(), o);
        REQUIRE(r);
        CHECK(*r == "CORE_TEST_INHERITED=second\n");
    }
    SECTION("through the facade") {
        auto r = c->process().run_with_env(Context::background(), "", {"CORE_X=1"},
                                           core::test::child_path(), {"env", "CORE_X"});
        REQUIRE(r);
        CHECK(*r == "CORE_X=1\n");
    }
    ::unsetenv("CORE_TEST_INHERITED");
}

TEST_CASE("ManagedProcess_Env_Bad", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto o = child({"env"});
    SECTION("not K=V") {
        o.env = {"NOEQUALS"};
    }
    SECTION("empty key") {
        o.env = {"=value"};
    }
    auto r = service(c)->run(Context::background(), o);
    REQUIRE_FALSE(r);
    CHECK(contains(r.error().what(), "option \"env\""));
    CHECK(r.error().code() == EINVAL);
}

TEST_CASE("ManagedProcess_Env_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    // The command is looked up in the child's PATH, not ours.
    char dir[] = "/tmp/core-proc-path-XXXXXX";
    REQUIRE(mkdtemp(dir));
    const std::string link = std::string(dir) + "/only-in-child-path";
    REQUIRE(::symlink(core::test::child_path(), link.c_str()) == 0);
    cp::RunOptions o;
    o.command = "only-in-child-path";
    o.args = {"print", "found"};
    auto miss = service(c)->run(Context::background(), o);
    REQUIRE_FALSE(miss);
    CHECK(miss.error().code() == ENOENT);
    o.env = {std::string("PATH=/nonexistent:") + dir};
    auto hit = service(c)->run(Context::background(), o);
    ::unlink(link.c_str());
    ::rmdir(dir);
    REQUIRE(hit);
    CHECK(*hit == "found\n");
}

TEST_CASE("ManagedProcess_Dir_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto o = child({"cwd"});
    o.dir = "/tmp";
    auto r = service(c)->run(Context::background(), o);
    REQUIRE(r);
    CHECK(*r == "/tmp\n");
    SECTION("through run_in") {
        auto r2 =
            c->process().run_in(Context::background(), "/", core::test::child_path(), {"cwd"});
        REQUIRE(r2);
        CHECK(*r2 == "/\n");
    }
}

TEST_CASE("ManagedProcess_Dir_Bad", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto o = child({"cwd"});
    o.dir = "/no/such/dir";
    auto r = service(c)->run(Context::background(), o);
    REQUIRE_FALSE(r);
    // Named: the dir, not the program (glibc gives both the same errno).
    CHECK(r.error().what() == "process.run: dir \"/no/such/dir\": No such file or directory");
    CHECK(r.error().code() == ENOENT);
}

TEST_CASE("ManagedProcess_Dir_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    // A relative command with a slash is relative to dir (exec runs after the chdir).
    char dir[] = "/tmp/core-proc-dir-XXXXXX";
    REQUIRE(mkdtemp(dir));
    const std::string link = std::string(dir) + "/kid";
    REQUIRE(::symlink(core::test::child_path(), link.c_str()) == 0);
    cp::RunOptions o;
    o.command = "./kid";
    o.args = {"cwd"};
    o.dir = dir;
    auto r = service(c)->run(Context::background(), o);
    ::unlink(link.c_str());
    ::rmdir(dir);
    REQUIRE(r);
    CHECK(*r == std::string(dir) + "\n");
}

TEST_CASE("ManagedProcess_Input_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto o = child({"echo"});
    o.std_in = core::process::Stdio::bytes(std::string("hello\r\n\0binary", 14));
    auto r = service(c)->run(Context::background(), o);
    REQUIRE(r);
    CHECK(*r == o.std_in.data());
    SECTION("through the action") {
        auto opts = child_opts({"echo"});
        opts.set("input", "abc");
        auto a = c->action("process.run").run(Context::background(), opts);
        REQUIRE(a);
        CHECK(*a->get<std::string>() == "abc");
    }
    SECTION("without input, stdin is /dev/null") {
        auto e = service(c)->run(Context::background(), child({"echo"}));
        REQUIRE(e);
        CHECK(e->empty());
    }
}

TEST_CASE("ManagedProcess_Input_Bad", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    // A child that never reads its stdin cannot deadlock run(): the input is written by the
    // reaper without blocking and dropped when the child goes.
    auto o = child({"exit", "0"});
    o.std_in = core::process::Stdio::bytes(std::string(4 << 20, 'i'));
    auto r = service(c)->run(Context::background(), o);
    REQUIRE(r);
    CHECK(r->empty());
    SECTION("input and keepStdin exclude each other") {
        // One Stdio per stream makes the pair impossible in the typed API; the action keys
        // still refuse it.
        auto e = c->action("process.start")
                     .run(Context::background(),
                          core::Options{{"command", std::string(core::test::child_path())},
                                        {"args", Strings{"echo"}},
                                        {"input", std::string("x")},
                                        {"keepStdin", true}});
        REQUIRE_FALSE(e);
        CHECK(e.error().code() == EINVAL);
    }
}

TEST_CASE("ManagedProcess_Input_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    // Much more than a pipe buffer in both directions at once: no deadlock, byte-exact.
    std::string big(3 << 20, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + i / 251);
    auto o = child({"echo"});
    o.std_in = core::process::Stdio::bytes(big);
    o.max_output = big.size();
    auto r = service(c)->run(Context::background(), o);
    REQUIRE(r);
    CHECK(r->size() == big.size());
    CHECK(*r == big);
}

TEST_CASE("ManagedProcess_WriteInput_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto o = child({"echo"});
    o.std_in = core::process::Stdio::pipe();
    auto p = service(c)->start(Context::background(), o);
    REQUIRE(p);
    REQUIRE((*p)->write_input("first "));
    REQUIRE((*p)->write_input(std::string(200000, 'z')));
    REQUIRE((*p)->write_input("last"));
    REQUIRE((*p)->close_input());
    auto info = (*p)->wait();
    CHECK(info.status == cp::Status::exited);
    const auto out = (*p)->output();
    CHECK(out.size() == 6 + 200000 + 4);
    CHECK(out.substr(0, 6) == "first ");
    CHECK(out.substr(out.size() - 4) == "last");
}

TEST_CASE("ManagedProcess_WriteInput_Bad", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto p = service(c)->start(Context::background(), child({"echo"}));
    REQUIRE(p);
    auto w = (*p)->write_input("x");
    REQUIRE_FALSE(w);
    CHECK(contains(w.error().what(), "stdin not kept"));
    (*p)->wait();
    SECTION("after close_input") {
        auto o = child({"echo"});
        o.std_in = core::process::Stdio::pipe();
        auto k = service(c)->start(Context::background(), o);
        REQUIRE(k);
        REQUIRE((*k)->close_input());
        auto w2 = (*k)->write_input("x");
        REQUIRE_FALSE(w2);
        CHECK(contains(w2.error().what(), "already closed"));
        (*k)->wait();
    }
}

TEST_CASE("ManagedProcess_WriteInput_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    // The child exits without reading while we are blocked writing: the write fails with EPIPE
    // and the host is not killed by SIGPIPE, even with the default disposition.
    struct sigaction old {};
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, &old);
    auto o = child({"fail-after", "200", "0"});
    o.std_in = core::process::Stdio::pipe();
    auto p = service(c)->start(Context::background(), o);
    REQUIRE(p);
    auto w = (*p)->write_input(std::string(1 << 20, 'q'));
    (*p)->wait();
    // After the exit, stdin is closed by the reaper: a clear Error, still no signal.
    auto after = (*p)->write_input("late");
    sigaction(SIGPIPE, &old, nullptr);
    REQUIRE_FALSE(w);
    // EPIPE, or EBADF if a very slow machine only started writing after the exit.
    CHECK((w.error().code() == EPIPE || w.error().code() == EBADF));
    REQUIRE_FALSE(after);
    CHECK(contains(after.error().what(), "already closed"));
    sigset_t pending;
    sigpending(&pending);
    CHECK(sigismember(&pending, SIGPIPE) == 0);
}

TEST_CASE("ManagedProcess_KillGroup_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    // Killing the group takes the grandchild holding the pipe with it; run returns.
    auto o = child({"grandchild-wait", "60000"});
    o.kill_group = true;
    o.timeout = 200ms;
    auto p = service(c)->start(Context::background(), o);
    REQUIRE(p);
    REQUIRE(core::test::eventually([&] { return contains((*p)->output(), "gc "); }));
    const int gc = grandchild_pid((*p)->output());
    auto info = (*p)->wait();
    CHECK(info.status == cp::Status::killed);
    CHECK(info.error == "timed out after 200ms");
    CHECK(core::test::eventually([&] { return !alive(gc); }));
    SECTION("the child leads its own group") {
        auto g = child({"pid"});
        g.kill_group = true;
        auto r = service(c)->run(Context::background(), g);
        REQUIRE(r);
        const int pid = std::atoi(r->c_str());
        const int pgrp = std::atoi(r->c_str() + r->find(' ') + 1);
        CHECK(pid == pgrp);
        CHECK(pgrp != getpgrp());
    }
}

TEST_CASE("ManagedProcess_KillGroup_Bad", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    // Without kill_group, a grandchild that keeps the pipe open does not hang run(): the drain
    // after the child's exit is bounded, and run says the output was cut (issue 18). The
    // grandchild survives (it is not ours to kill).
    auto r = service(c)->run(Context::background(), child({"grandchild", "60000"}));
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == EIO);
    CHECK(r.error().what().find("output cut") != std::string::npos);
    const int gc = grandchild_pid(r.error().what());
    CHECK(alive(gc));
    ::kill(gc, SIGKILL);
    CHECK(core::test::eventually([&] { return !alive(gc); }));
}

TEST_CASE("ManagedProcess_KillGroup_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    // With kill_group, the leftovers of a group whose leader exited while they still hold our
    // pipes are killed: run returns at once with the output, and the grandchild is gone.
    auto o = child({"grandchild", "60000"});
    o.kill_group = true;
    auto r = service(c)->run(Context::background(), o);
    REQUIRE(r);
    const int gc = grandchild_pid(*r);
    CHECK(core::test::eventually([&] { return !alive(gc); }));
}

TEST_CASE("ManagedProcess_Kill_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto p = service(c)->start(Context::background(), child({"sleep", "60000"}));
    REQUIRE(p);
    REQUIRE((*p)->kill());
    REQUIRE((*p)->kill());  // twice: still fine
    auto info = (*p)->wait();
    CHECK(info.status == cp::Status::killed);
    CHECK(info.signal == SIGTERM);
    CHECK(info.exit_code == -1);
    CHECK_FALSE(info.running);
    REQUIRE((*p)->kill());  // after exit: no-op success
    SECTION("grace 0 is SIGKILL at once") {
        auto o = child({"sleep", "60000"});
        o.grace_period = 0ms;
        auto k = service(c)->start(Context::background(), o);
        REQUIRE(k);
        REQUIRE((*k)->kill());
        CHECK((*k)->wait().signal == SIGKILL);
    }
}

TEST_CASE("ManagedProcess_Kill_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    // A child that ignores SIGTERM gets SIGKILL after the grace period.
    auto o = child({"ignore-term", "60000"});
    o.grace_period = 100ms;
    auto p = service(c)->start(Context::background(), o);
    REQUIRE(p);
    REQUIRE(core::test::eventually([&] { return contains((*p)->output(), "ready"); }));
    REQUIRE((*p)->kill());
    auto info = (*p)->wait();
    CHECK(info.status == cp::Status::killed);
    CHECK(info.signal == SIGKILL);
}

TEST_CASE("ManagedProcess_KillRace_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    // kill racing a natural exit: either outcome is fine, never an error, never a zombie.
    int exited = 0, killed = 0;
    for (int i = 0; i < 200; ++i) {
        auto p = svc->start(Context::background(), child({"exit", "0"}));
        REQUIRE(p);
        if (i % 2) std::this_thread::yield();
        REQUIRE((*p)->kill());
        auto info = (*p)->wait();
        if (info.status == cp::Status::exited) {
            CHECK(info.exit_code == 0);
            ++exited;
        } else {
            REQUIRE(info.status == cp::Status::killed);
            CHECK(info.signal == SIGTERM);
            ++killed;
        }
        REQUIRE(svc->remove(info.id));
    }
    CHECK(exited + killed == 200);
}

TEST_CASE("ManagedProcess_Signal_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto p = service(c)->start(Context::background(), child({"sleep", "60000"}));
    REQUIRE(p);
    REQUIRE((*p)->signal(SIGUSR1));
    auto info = (*p)->wait();
    CHECK(info.signal == SIGUSR1);
    CHECK(info.error == "killed by signal 10 (SIGUSR1)");
    REQUIRE((*p)->signal(SIGUSR1));  // after exit: no-op
    REQUIRE(service(c)->signal((*p)->id(), SIGTERM));
}

TEST_CASE("ManagedProcess_Signal_Bad", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto p = service(c)->start(Context::background(), child({"sleep", "60000"}));
    REQUIRE(p);
    CHECK((*p)->signal(0));  // a liveness probe now (issue 18), not an invalid signal
    CHECK_FALSE((*p)->signal(100000));
    CHECK_FALSE(service(c)->signal("nope", SIGTERM));
    REQUIRE((*p)->kill());
    (*p)->wait();
}

TEST_CASE("ManagedProcess_Signal_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    // After the reap, no signal syscall is ever made for this process (its PID may be reused):
    // with every signalling call armed to fail, kill and signal still succeed and none fired.
    auto p = service(c)->start(Context::background(), child({"exit", "0"}));
    REQUIRE(p);
    (*p)->wait();
    core::sys::fault::Scoped a("pidfd_send_signal", EPERM, -1);
    core::sys::fault::Scoped b("kill", EPERM, -1);
    REQUIRE((*p)->kill());
    REQUIRE((*p)->signal(SIGKILL));
    REQUIRE(service(c)->kill((*p)->id()));
    REQUIRE(service(c)->kill_pid((*p)->pid()));
    CHECK(core::sys::fault::fired("pidfd_send_signal") == 0);
    CHECK(core::sys::fault::fired("kill") == 0);
}

TEST_CASE("ManagedProcess_Output_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    // Over max_output: the newest bytes are kept and the dropped ones counted.
    auto o = child({"lines", "10000"});
    o.max_output = 100;
    auto p = service(c)->start(Context::background(), o);
    REQUIRE(p);
    auto info = (*p)->wait();
    const auto out = (*p)->output();
    std::string all;
    for (int i = 0; i < 10000; ++i) all += "line " + std::to_string(i) + "\n";
    CHECK(out.size() == 100);
    CHECK(out == all.substr(all.size() - 100));
    CHECK(info.output_dropped == all.size() - 100);
    SECTION("run returns the newest bytes too") {
        auto r = service(c)->run(Context::background(), o);
        REQUIRE(r);
        CHECK(*r == all.substr(all.size() - 100));
    }
    SECTION("disableCapture: nothing kept") {
        auto opts = child_opts({"print", "to-inherited-stdout"});
        opts.set("disableCapture", true);
        auto r = c->action("process.run").run(Context::background(), opts);
        REQUIRE(r);
        CHECK(r->get<std::string>()->empty());
    }
}

TEST_CASE("ManagedProcess_Output_Bad", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    // A failing run is never silent: its Error ends with the last 4 KiB of output.
    auto r = service(c)->run(Context::background(), child({"output-exit", "4", "10000"}));
    REQUIRE_FALSE(r);
    const std::string head =
        "process.run: \"" + std::string(core::test::child_path()) + "\" exited with code 4";
    const std::string msg = r.error().what();
    REQUIRE(msg.size() > head.size());
    CHECK(msg.substr(0, head.size()) == head);
    const std::string tail = msg.substr(msg.find(":\n") + 2);
    CHECK(tail.size() == 4096);
    CHECK(tail.substr(tail.size() - 4) == "END\n");
    SECTION("no output: no tail") {
        auto e = service(c)->run(Context::background(), child({"exit", "4"}));
        REQUIRE_FALSE(e);
        CHECK(e.error().what() == head);
    }
}

TEST_CASE("ManagedProcess_Output_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    SECTION("a 1 MiB line") {
        auto o = child({"line", "1048576"});
        o.max_output = 2 << 20;
        auto r = service(c)->run(Context::background(), o);
        REQUIRE(r);
        CHECK(r->size() == 1048577);
        CHECK(r->back() == '\n');
        CHECK(r->find_first_not_of('y') == 1048576);
    }
    SECTION("a 1 MiB line plus its newline over the default max_output keeps the newest MiB") {
        auto r = service(c)->run(Context::background(), child({"line", "1048576"}));
        REQUIRE(r);
        CHECK(r->size() == 1048576);
        CHECK(r->back() == '\n');
    }
    SECTION("binary, CRLF and NUL byte-exact") {
        auto r = service(c)->run(Context::background(), child({"binary"}));
        REQUIRE(r);
        std::string want;
        for (int k = 0; k < 2; ++k)
            for (int b = 0; b < 256; ++b) want.push_back(static_cast<char>(b));
        want.append("\r\n\0end", 6);
        CHECK(*r == want);
    }
    SECTION("heavy output never blocks the child") {
        auto o = child({"bytes", std::to_string(64 << 20)});
        o.max_output = 4096;
        auto r = service(c)->run(Context::background(), o);
        REQUIRE(r);
        CHECK(r->size() == 4096);
    }
}

TEST_CASE("ManagedProcess_Wait_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    // 200 processes at once, each with its own exit code.
    std::vector<std::shared_ptr<cp::ManagedProcess>> procs;
    for (int i = 0; i < 200; ++i) {
        auto p =
            svc->start(Context::background(), child({"fail-after", "50", std::to_string(i % 100)}));
        REQUIRE(p);
        procs.push_back(*p);
    }
    for (int i = 0; i < 200; ++i) {
        auto info = procs[static_cast<std::size_t>(i)]->wait();
        CHECK(info.status == cp::Status::exited);
        CHECK(info.exit_code == i % 100);
    }
    CHECK(svc->list(true).empty());
    CHECK(svc->list().size() == 200);
    svc->clear();
    CHECK(svc->list().empty());
}

TEST_CASE("ManagedProcess_WaitFor_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto p = service(c)->start(Context::background(), child({"sleep", "60000"}));
    REQUIRE(p);
    CHECK_FALSE((*p)->wait_for(10ms));
    CHECK((*p)->is_running());
    auto running = (*p)->info();
    CHECK(running.running);
    CHECK(running.status == cp::Status::running);
    CHECK(running.duration.count() > 0);
    REQUIRE((*p)->kill());
    CHECK((*p)->wait_for(30s));
    CHECK_FALSE((*p)->is_running());
}

namespace {
// A child with nothing for the reaper to read or write (no pipes): its pidfd stays out of the
// reaper's epoll set for a short while after the start, so that a waiter reaps it on its own
// thread. The exit must be learned all the same by every other way of asking.
cp::RunOptions quiet_child(Strings args) {
    auto o = child(std::move(args));
    o.std_out = cp::Stdio::null();
    o.std_err = cp::Stdio::null();
    return o;
}
}  // namespace

TEST_CASE("ManagedProcess_Deferred_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    SECTION("nobody waits: the reaper still learns the exit") {
        auto p = svc->start(Context::background(), quiet_child({"fail-after", "0", "3"}));
        REQUIRE(p);
        CHECK(core::test::eventually([&] { return !(*p)->is_running(); }));
        CHECK((*p)->info().status == cp::Status::exited);
        CHECK((*p)->info().exit_code == 3);
        CHECK(svc->list(true).empty());
    }
    SECTION("on_exit, registered after the start, runs without a waiter") {
        auto p = svc->start(Context::background(), quiet_child({"fail-after", "20", "4"}));
        REQUIRE(p);
        std::atomic<int> code{-1};
        (*p)->on_exit([&](const cp::ProcessInfo& info) { code.store(info.exit_code); });
        CHECK(core::test::eventually([&] { return code.load() == 4; }));
    }
    SECTION("exit_fd becomes readable without a waiter") {
        auto p = svc->start(Context::background(), quiet_child({"fail-after", "20", "5"}));
        REQUIRE(p);
        auto fd = (*p)->exit_fd();
        REQUIRE(fd);
        struct pollfd pfd {
            *fd, POLLIN, 0
        };
        CHECK(::poll(&pfd, 1, 10000) == 1);
        CHECK((*p)->info().exit_code == 5);
    }
    SECTION("wait_for reaps it") {
        auto p = svc->start(Context::background(), quiet_child({"fail-after", "0", "6"}));
        REQUIRE(p);
        CHECK((*p)->wait_for(30s));
        CHECK((*p)->info().exit_code == 6);
    }
    SECTION("a waiter that cannot copy the pidfd (EMFILE) waits for the reaper") {
        auto p = svc->start(Context::background(), quiet_child({"fail-after", "0", "7"}));
        REQUIRE(p);
        core::sys::fault::Scoped f("dup", EMFILE, -1);
        CHECK((*p)->wait().exit_code == 7);
    }
    SECTION("many at once, most waited for, some not") {
        std::vector<std::shared_ptr<cp::ManagedProcess>> procs;
        for (int i = 0; i < 100; ++i) {
            auto p = svc->start(Context::background(),
                                quiet_child({"fail-after", std::to_string(i % 7), "0"}));
            REQUIRE(p);
            procs.push_back(*p);
        }
        for (std::size_t i = 0; i < procs.size(); i += 2) CHECK(procs[i]->wait().exit_code == 0);
        CHECK(core::test::eventually([&] { return svc->list(true).empty(); }));
    }
}

TEST_CASE("ManagedProcess_Deferred_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    // Children still deferred (started, never waited for) when the Core shuts down: shutdown
    // learns their ends and leaves no zombie and no descriptor behind.
    std::vector<int> pids;
    {
        auto c = make_core();
        auto svc = service(c);
        for (int i = 0; i < 20; ++i) {
            auto p = svc->start(Context::background(), quiet_child({"fail-after", "0", "0"}));
            REQUIRE(p);
            pids.push_back((*p)->pid());
        }
        REQUIRE(c->shutdown(Context::background()));
    }
    for (int pid : pids) CHECK_FALSE(alive(pid));
}

namespace {
// The ProcessOutput lines of a Core's bus, then "<exited>" for each ProcessExited.
struct LineLog {
    std::mutex mu;
    std::vector<std::string> seen;
    void on(const core::Value& v) {
        std::lock_guard lk(mu);
        if (const auto* o = v.get<cp::ProcessOutput>()) seen.push_back(o->line);
        if (v.get<cp::ProcessExited>()) seen.push_back("<exited>");
    }
    // What was seen, once the (one) ProcessExited has been.
    std::vector<std::string> until_exited() {
        CHECK(core::test::eventually([&] {
            std::lock_guard lk(mu);
            return !seen.empty() && seen.back() == "<exited>";
        }));
        std::lock_guard lk(mu);
        return seen;
    }
};
}  // namespace

// run() and exec(): the caller that waits reads the child's pipes and reaps it on its own
// thread (Reaper::drive); the reaper thread takes over whatever outlives that wait.
TEST_CASE("ManagedProcess_Driven_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    SECTION("output, apart and in order, many times over") {
        for (int i = 0; i < 200; ++i) {
            auto o = child({"interleave", std::to_string(i % 9)});
            o.std_err = cp::Stdio::pipe();  // two pipes, read apart
            auto done = svc->exec(Context::background(), o);
            REQUIRE(done);
            std::string want_out, want_err;
            for (int k = 0; k < i % 9; ++k) {
                want_out += "out " + std::to_string(k) + "\n";
                want_err += "err " + std::to_string(k) + "\n";
            }
            CHECK(done->std_out == want_out);
            CHECK(done->std_err == want_err);
            CHECK(done->success());
        }
        CHECK(svc->list().empty());
    }
    SECTION("more than a pipe holds, kept to max_output") {
        auto o = child({"bytes", std::to_string(3 << 20), "z"});
        o.max_output = 1 << 20;
        auto done = svc->exec(Context::background(), o);
        REQUIRE(done);
        CHECK(done->std_out.size() == std::size_t{1} << 20);
        CHECK(done->std_out.find_first_not_of('z') == std::string::npos);
        CHECK(done->std_out_dropped == (std::size_t{2} << 20));
    }
    SECTION("events and the on_output callback come from the waiter's reads, in order") {
        LineLog log;
        auto sub = c->subscribe([&](const core::Value& v) { log.on(v); });
        std::atomic<std::size_t> chunk_bytes{0};
        auto o = child({"lines", "300"});
        o.on_output = [&](const cp::OutputChunk& ch) { chunk_bytes += ch.bytes.size(); };
        auto out = svc->run(Context::background(), o);
        REQUIRE(out);
        const auto seen = log.until_exited();
        REQUIRE(seen.size() == 301);
        for (int i = 0; i < 300; ++i)
            CHECK(seen[static_cast<std::size_t>(i)] == "line " + std::to_string(i));
        CHECK(core::test::eventually([&] { return chunk_bytes.load() == out->size(); }));
    }
    SECTION("a child still writing after the window goes to the reaper thread mid-stream") {
        LineLog log;
        auto sub = c->subscribe([&](const core::Value& v) { log.on(v); });
        cp::RunOptions o;
        o.command = "sh";
        o.args = {"-c", "for i in 1 2 3 4 5 6; do echo $i; sleep 0.01; done"};
        auto out = svc->run(Context::background(), o);
        REQUIRE(out);
        CHECK(*out == "1\n2\n3\n4\n5\n6\n");
        CHECK(log.until_exited() ==
              std::vector<std::string>{"1", "2", "3", "4", "5", "6", "<exited>"});
    }
    SECTION("a grandchild holding the pipes: its later output is still read, then run returns") {
        cp::RunOptions o;
        o.command = "sh";
        o.args = {"-c", "echo a; (sleep 0.1; echo b) & exit 0"};
        auto out = svc->run(Context::background(), o);
        REQUIRE(out);
        CHECK(*out == "a\nb\n");
    }
    SECTION("a timeout and a cancelled context still end it") {
        auto o = child({"sleep", "60000"});
        o.timeout = 100ms;
        auto r = svc->run(Context::background(), o);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == ETIMEDOUT);
        auto ctx = Context::background().with_timeout(100ms);
        auto r2 = svc->run(ctx, child({"sleep", "60000"}));
        REQUIRE_FALSE(r2);
        CHECK(svc->list(true).empty());
    }
}

TEST_CASE("ManagedProcess_Driven_Bad", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    // The waiter's poll fails: the child goes back to the reaper thread, nothing is lost.
    core::sys::fault::Scoped f("poll", EIO, -1);
    auto out = svc->run(Context::background(), child({"lines", "50"}));
    REQUIRE(out);
    CHECK(out->size() == 50 * std::string("line 00\n").size() - 10);
}

TEST_CASE("ManagedProcess_Driven_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    SECTION("other threads wait, hook and poll the same run() child meanwhile") {
        auto c = make_core();
        auto svc = service(c);
        std::string got;
        std::thread runner([&] {
            cp::RunOptions o;
            o.command = "sh";
            o.args = {"-c", "sleep 0.3; printf ok"};
            auto out = svc->run(Context::background(), o);
            if (out) got = *out;
        });
        std::shared_ptr<cp::ManagedProcess> p;
        CHECK(core::test::eventually([&] {
            auto ids = svc->list(true);
            if (ids.empty()) return false;
            if (auto g = svc->get(ids.front())) p = *g;
            return static_cast<bool>(p);
        }));
        if (!p) {
            runner.join();
            FAIL("the run() child was never seen running");
        }
        std::atomic<int> hooked{-1};
        p->on_exit([&](const cp::ProcessInfo& info) { hooked = info.exit_code; });
        auto efd = p->exit_fd();
        REQUIRE(efd);
        CHECK(p->wait().exit_code == 0);
        runner.join();
        CHECK(got == "ok");
        CHECK(core::test::eventually([&] { return hooked.load() == 0; }));
        struct pollfd pfd {
            *efd, POLLIN, 0
        };
        CHECK(::poll(&pfd, 1, 0) == 1);
    }
    SECTION("shutdown while run() waits: it returns, no child is left") {
        int pid = 0;
        {
            auto c = make_core();
            auto svc = service(c);
            std::atomic<bool> returned{false};
            std::thread runner([&] {
                (void)svc->run(Context::background(), child({"sleep", "60000"}));
                returned = true;
            });
            REQUIRE(core::test::eventually([&] { return !svc->list(true).empty(); }));
            auto ids = svc->list(true);
            REQUIRE_FALSE(ids.empty());
            if (auto g = svc->get(ids.front())) pid = (*g)->pid();
            REQUIRE(c->shutdown(Context::background()));
            runner.join();
            CHECK(returned.load());
        }
        CHECK_FALSE(alive(pid));
    }
    SECTION("eight threads run() at once, for a while") {
        auto c = make_core();
        auto svc = service(c);
        std::atomic<int> bad{0};
        std::vector<std::thread> ts;
        for (int t = 0; t < 8; ++t)
            ts.emplace_back([&, t] {
                for (int i = 0; i < 40; ++i) {
                    auto out = svc->run(Context::background(),
                                        child({"print", std::to_string(t), std::to_string(i)}));
                    if (!out || *out != std::to_string(t) + " " + std::to_string(i) + "\n") ++bad;
                }
            });
        for (auto& t : ts) t.join();
        CHECK(bad.load() == 0);
        CHECK(svc->list().empty());
    }
}

TEST_CASE("ManagedProcess_Wait_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    // Waiters sleep on copies of the pidfd and then wait for the reaper: eight of them on one
    // process, with the reaper closing the original under them, all see the same end, and no
    // copy is left open (the leak guard counts descriptors).
    auto p = svc->start(Context::background(), child({"sleep", "60000"}));
    REQUIRE(p);
    std::vector<std::thread> waiters;
    std::atomic<int> killed{0};
    for (int i = 0; i < 8; ++i)
        waiters.emplace_back([&] {
            if ((*p)->wait().signal == SIGTERM) killed.fetch_add(1);
        });
    REQUIRE((*p)->kill());
    for (auto& t : waiters) t.join();
    CHECK(killed == 8);
    CHECK((*p)->wait().signal == SIGTERM);  // done already: no pidfd left to copy
    SECTION("the pipes outlive the child: the waiter falls back to the reaper's word") {
        // A grandchild holds stdout after the child exits: done comes only once the reaper has
        // killed the group's leftover, after the pidfd said the child was gone.
        auto g = child({"grandchild", "60000"});
        g.kill_group = true;
        auto gp = svc->start(Context::background(), g);
        REQUIRE(gp);
        auto info = (*gp)->wait();
        CHECK(info.status == cp::Status::exited);
        CHECK(info.exit_code == 0);
    }
    SECTION("no descriptor to copy (EMFILE): the condition variable alone") {
        auto s = svc->start(Context::background(), child({"fail-after", "200", "4"}));
        REQUIRE(s);
        core::sys::fault::Scoped f("dup", EMFILE, -1);
        CHECK((*s)->wait().exit_code == 4);
        CHECK(core::sys::fault::fired("dup") == 1);
    }
}
