// Fault injection through the lib/sys seam: each failure gives a clear Error, leaks nothing
// (the leak guard), and leaves the Service usable. ENOSYS from pidfd_open switches to the
// waitid(P_PID) polling path, which then runs the core cases.
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>
#include <catch2/generators/catch_generators.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>
#include <thread>

#include "common.hpp"
#include "sys/fault.hpp"

using core::Context;
using core::sys::fault::Scoped;
using namespace proctest;

namespace {
void still_usable(cp::Service& svc) {
    auto r = svc.run(Context::background(), child({"print", "ok"}));
    REQUIRE(r);
    CHECK(*r == "ok\n");
}
}  // namespace

TEST_CASE("Fault_Pipe2_Bad", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    SECTION("EMFILE on the first pipe") {
        Scoped f("pipe2", EMFILE);
        auto r = svc->run(Context::background(), child({"print", "x"}));
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == EMFILE);
        CHECK(r.error().what() == "process.run: option \"stdout\": pipe2: Too many open files");
    }
    SECTION("ENFILE on the second pipe: the first is closed again") {
        Scoped f("pipe2", ENFILE, 1, 1);
        auto r = svc->start(Context::background(), child({"print", "x"}));
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == ENFILE);
    }
    SECTION("the stdin pipe") {
        Scoped f("pipe2", EMFILE);
        auto o = child({"echo"});
        o.std_in = core::process::Stdio::bytes("abc");
        auto r = svc->run(Context::background(), o);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == EMFILE);
    }
    CHECK(svc->list().empty());
    still_usable(*svc);
}

TEST_CASE("Fault_PosixSpawn_Bad", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    const int err = GENERATE(EAGAIN, ENOMEM);
    {
        SpawnMethodScope m(cp::SpawnMethod::posix_spawn);
        Scoped f("posix_spawn", err);
        auto r = svc->start(Context::background(), child({"sleep", "60000"}));
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == err);
        CHECK(contains(r.error().what(),
                       "process.start: spawn \"" + std::string(core::test::child_path()) + "\": "));
    }
    CHECK(svc->list().empty());
    still_usable(*svc);
}

TEST_CASE("Fault_Epoll_Bad", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    // The reaper is built on the first start: its failure is that start's Error.
    {
        Scoped f("epoll_create1", EMFILE);
        auto r = svc->run(Context::background(), child({"print", "x"}));
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == EMFILE);
        CHECK(contains(r.error().what(), "process.run: epoll_create1"));
    }
    {
        Scoped f("timerfd_create", ENOMEM);
        auto r = svc->run(Context::background(), child({"print", "x"}));
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == ENOMEM);
    }
    still_usable(*svc);
}

TEST_CASE("Fault_PidfdOpen_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    // No pidfd at all (kernel < 5.3): every child is waited for by polling waitid(P_PID).
    std::ostringstream logs;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(logs);
    auto logger = std::make_shared<spdlog::logger>("test", sink);
    logger->set_level(spdlog::level::info);
    auto made = core::Core::create({cp::register_service});
    REQUIRE(made);
    auto c = *made;
    c->set_logger(logger);
    auto svc = service(c);
    REQUIRE(c->startup(Context::background()));
    // posix_spawn: clone3 hands the pidfd over at birth and never calls pidfd_open.
    SpawnMethodScope m(cp::SpawnMethod::posix_spawn);
    Scoped f("pidfd_open", ENOSYS, -1);

    auto r = svc->run(Context::background(), child({"print", "polled"}));
    REQUIRE(r);
    CHECK(*r == "polled\n");
    CHECK(contains(logs.str(), "pidfd_open unsupported"));

    auto code = svc->run(Context::background(), child({"exit", "5"}));
    REQUIRE_FALSE(code);
    CHECK(contains(code.error().what(), "exited with code 5"));

    auto p = svc->start(Context::background(), child({"sleep", "60000"}));
    REQUIRE(p);
    REQUIRE((*p)->kill());
    CHECK((*p)->wait().signal == SIGTERM);

    auto t = child({"sleep", "60000"});
    t.timeout = 50ms;
    auto to = svc->run(Context::background(), t);
    REQUIRE_FALSE(to);
    CHECK(to.error().code() == ETIMEDOUT);

    auto stubborn = child({"ignore-term", "60000"});
    stubborn.grace_period = 50ms;
    auto s = svc->start(Context::background(), stubborn);
    REQUIRE(s);
    REQUIRE(core::test::eventually([&] { return contains((*s)->output(), "ready"); }));
    REQUIRE((*s)->kill());
    CHECK((*s)->wait().signal == SIGKILL);

    auto g = child({"grandchild-wait", "60000"});
    g.kill_group = true;
    g.timeout = 100ms;
    auto gp = svc->start(Context::background(), g);
    REQUIRE(gp);
    REQUIRE(core::test::eventually([&] { return contains((*gp)->output(), "gc "); }));
    const int gc = std::atoi((*gp)->output().c_str() + 3);
    (*gp)->wait();
    CHECK(core::test::eventually([&] { return !alive(gc); }));

    // The leader exits while its grandchild holds the pipe: killed before the leader's reap.
    auto lg = child({"grandchild", "60000"});
    lg.kill_group = true;
    auto lr = svc->run(Context::background(), lg);
    REQUIRE(lr);
    const int lgc = std::atoi(lr->c_str() + lr->find("gc ") + 3);
    CHECK(core::test::eventually([&] { return !alive(lgc); }));

    auto in = child({"echo"});
    in.std_in = core::process::Stdio::bytes(std::string(300000, 'e'));
    auto ir = svc->run(Context::background(), in);
    REQUIRE(ir);
    CHECK(ir->size() == 300000);

    std::vector<std::shared_ptr<cp::ManagedProcess>> many;
    for (int i = 0; i < 20; ++i) {
        auto m = svc->start(Context::background(), child({"exit", std::to_string(i)}));
        REQUIRE(m);
        many.push_back(*m);
    }
    for (int i = 0; i < 20; ++i) CHECK(many[static_cast<std::size_t>(i)]->wait().exit_code == i);
    REQUIRE(c->shutdown(Context::background()));
}

TEST_CASE("Fault_PidfdOpen_Bad", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    // One pidfd_open fails with EMFILE: that child alone is polled; nothing leaks.
    {
        Scoped f("pidfd_open", EMFILE);
        auto r = svc->run(Context::background(), child({"print", "one"}));
        REQUIRE(r);
        CHECK(*r == "one\n");
    }
    still_usable(*svc);
}

TEST_CASE("Fault_Eintr_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    // EINTR on every interruptible call is absorbed in lib/sys: the run still succeeds.
    const char* call = GENERATE("read", "write", "waitid", "epoll_wait");
    Scoped f(call, EINTR, 5);
    auto o = child({"echo"});
    o.std_in = core::process::Stdio::bytes("interrupted but fine");
    auto r = svc->run(Context::background(), o);
    INFO(call);
    REQUIRE(r);
    CHECK(*r == "interrupted but fine");
    auto k = child({"echo"});
    k.std_in = core::process::Stdio::pipe();
    auto p = svc->start(Context::background(), k);
    REQUIRE(p);
    REQUIRE((*p)->write_input("via write_input"));
    REQUIRE((*p)->close_input());
    (*p)->wait();
    CHECK((*p)->output() == "via write_input");
}

TEST_CASE("Fault_RlimitNofile_Bad", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    still_usable(*svc);  // the reaper and /dev/null exist before the limit drops
    // A real, low RLIMIT_NOFILE: no room for the pipes. A clear EMFILE, nothing leaked.
    rlimit old{};
    REQUIRE(getrlimit(RLIMIT_NOFILE, &old) == 0);
    // Only the lowest free descriptor number stays allowed: a pipe needs two.
    const int lowest_free = fcntl(0, F_DUPFD_CLOEXEC, 0);
    REQUIRE(lowest_free >= 0);
    ::close(lowest_free);
    rlimit low{static_cast<rlim_t>(lowest_free + 1), old.rlim_max};
    REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
    auto r = svc->run(Context::background(), child({"print", "x"}));
    REQUIRE(setrlimit(RLIMIT_NOFILE, &old) == 0);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == EMFILE);
    CHECK(contains(r.error().what(), "Too many open files"));
    still_usable(*svc);
}

// Runs in a re-executed copy of this binary (see Fault_RlimitNproc_Ugly): drops to an
// unprivileged uid (root ignores RLIMIT_NPROC), lowers RLIMIT_NPROC and starts children until
// the kernel refuses. Hidden: it changes the process's credentials.
TEST_CASE("Fault_RlimitNprocChild_Ugly", "[.][nproc-child]") {
    if (getuid() == 0) {
        // RLIMIT_NPROC counts every process of the real uid on the host: the suite's other
        // spawn-path run does this at the same time, and other tests run children as nobody.
        // A uid of this run's own (no passwd entry needed) keeps the count ours alone.
        const auto uid = static_cast<uid_t>(200000 + getpid() % 100000);
        REQUIRE(setgid(uid) == 0);
        REQUIRE(setuid(uid) == 0);
    }
    auto c = make_core();
    auto svc = service(c);
    still_usable(*svc);
    rlimit low{24, 24};
    REQUIRE(setrlimit(RLIMIT_NPROC, &low) == 0);
    std::vector<std::shared_ptr<cp::ManagedProcess>> procs;
    core::Error last;
    for (int i = 0; i < 64; ++i) {
        auto p = svc->start(Context::background(), child({"sleep", "60000"}));
        if (!p) {
            last = p.error();
            break;
        }
        procs.push_back(*p);
    }
    CHECK(procs.size() < 64);
    CHECK(last.code() == EAGAIN);
    CHECK(contains(last.what(), "process.start: spawn \""));
    for (auto& p : procs) REQUIRE(p->kill());
    for (auto& p : procs) p->wait();
    still_usable(*svc);
}

TEST_CASE("Fault_RlimitNproc_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    char self[4096];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    REQUIRE(n > 0);
    self[n] = '\0';
    pid_t pid = -1;
    char* argv[] = {self, const_cast<char*>("Fault_RlimitNprocChild_Ugly"), nullptr};
    REQUIRE(posix_spawn(&pid, self, nullptr, nullptr, argv, environ) == 0);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}
