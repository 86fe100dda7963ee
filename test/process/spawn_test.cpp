// The lib/sys layer the Service stands on: PATH resolution, env merging, posix_spawn with
// pidfd and waitid, the poll objects.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "common.hpp"
#include "sys/io.hpp"
#include "sys/poll.hpp"
#include "sys/proc.hpp"
#include "sys/signals.hpp"
#include "sys/spawn.hpp"

namespace sys = core::sys;
using namespace proctest;

TEST_CASE("Spawn_FindExecutable_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto r = sys::find_executable("sh", "/nonexistent:/bin:/usr/bin", "");
    REQUIRE(r);
    CHECK(*r == "/bin/sh");
    SECTION("a slash: taken as is") {
        auto s = sys::find_executable("./x/y", "/bin", "");
        REQUIRE(s);
        CHECK(*s == "./x/y");
    }
    SECTION("an empty PATH element is the child's dir") {
        char dir[] = "/tmp/core-proc-fe-XXXXXX";
        REQUIRE(mkdtemp(dir));
        const std::string link = std::string(dir) + "/kid";
        REQUIRE(::symlink(core::test::child_path(), link.c_str()) == 0);
        auto e = sys::find_executable("kid", "/nonexistent::/bin", dir);
        ::unlink(link.c_str());
        ::rmdir(dir);
        REQUIRE(e);
        CHECK(*e == "./kid");
    }
}

TEST_CASE("Spawn_FindExecutable_Bad", "[process]") {
    CORE_LEAK_GUARD();
    auto r = sys::find_executable("no-such-program-q", "/bin:/usr/bin", "");
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == ENOENT);
    CHECK(contains(r.error().what(), "\"no-such-program-q\""));
    SECTION("found but not executable: EACCES") {
        char dir[] = "/tmp/core-proc-fe-XXXXXX";
        REQUIRE(mkdtemp(dir));
        const std::string f = std::string(dir) + "/plain";
        const int fd = ::open(f.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        REQUIRE(fd >= 0);
        ::close(fd);
        auto e = sys::find_executable("plain", dir, "");
        ::unlink(f.c_str());
        ::rmdir(dir);
        REQUIRE_FALSE(e);
        CHECK(e.error().code() == EACCES);
    }
    SECTION("empty command") {
        CHECK_FALSE(sys::find_executable("", "/bin", ""));
    }
}

TEST_CASE("Spawn_MergeEnv_Good", "[process]") {
    CORE_LEAK_GUARD();
    ::setenv("CORE_MERGE_A", "parent", 1);
    auto env = sys::merge_env({"CORE_MERGE_A=1", "CORE_MERGE_B=2", "CORE_MERGE_A=3", "EMPTY="});
    ::unsetenv("CORE_MERGE_A");
    int a = 0, b = 0, e = 0;
    for (const auto& kv : env) {
        if (kv.rfind("CORE_MERGE_A=", 0) == 0) {
            ++a;
            CHECK(kv == "CORE_MERGE_A=3");
        }
        if (kv.rfind("CORE_MERGE_B=", 0) == 0) ++b;
        if (kv == "EMPTY=") ++e;
    }
    CHECK(a == 1);
    CHECK(b == 1);
    CHECK(e == 1);
}

TEST_CASE("Spawn_Spawn_Good", "[process]") {
    CORE_LEAK_GUARD();
    std::string path = core::test::child_path();
    char* argv[] = {path.data(), const_cast<char*>("exit"), const_cast<char*>("7"), nullptr};
    sys::SpawnSpec spec;
    spec.path = path.c_str();
    spec.argv = argv;
    auto pid = sys::spawn(spec);
    REQUIRE(pid);
    auto pfd = sys::pidfd_open(*pid);
    REQUIRE(pfd);
    // Wait on the pidfd's readiness with epoll, then reap through it.
    auto ep = sys::Epoll::create();
    REQUIRE(ep);
    REQUIRE(ep->add(pfd->get(), sys::ev_in, 42));
    sys::PollEvent ev[4];
    auto n = ep->wait(ev, 4, 30000);
    REQUIRE(n);
    REQUIRE(*n == 1);
    CHECK(ev[0].data == 42);
    auto w = sys::wait_pidfd(pfd->get());
    REQUIRE(w);
    REQUIRE(*w);
    CHECK((*w)->exited);
    CHECK((*w)->code == 7);
}

TEST_CASE("Spawn_Spawn_Bad", "[process]") {
    CORE_LEAK_GUARD();
    char* argv[] = {const_cast<char*>("/no/such/prog"), nullptr};
    sys::SpawnSpec spec;
    spec.path = argv[0];
    spec.argv = argv;
    auto pid = sys::spawn(spec);
    REQUIRE_FALSE(pid);
    CHECK(pid.error().code() == ENOENT);
    SECTION("a stdio source below 3 is refused") {
        sys::SpawnSpec s2 = spec;
        s2.stdout_fd = 2;
        auto p2 = sys::spawn(s2);
        REQUIRE_FALSE(p2);
        CHECK(p2.error().code() == EINVAL);
    }
}

TEST_CASE("Spawn_WaitPidfd_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    std::string path = core::test::child_path();
    char* argv[] = {path.data(), const_cast<char*>("sleep"), const_cast<char*>("60000"), nullptr};
    sys::SpawnSpec spec;
    spec.path = path.c_str();
    spec.argv = argv;
    auto pid = sys::spawn(spec);
    REQUIRE(pid);
    auto pfd = sys::pidfd_open(*pid);
    REQUIRE(pfd);
    // Not exited yet: "nothing" is not an error.
    auto w = sys::wait_pidfd(pfd->get());
    REQUIRE(w);
    CHECK_FALSE(*w);
    REQUIRE(sys::pidfd_send_signal(pfd->get(), SIGKILL));
    std::optional<sys::ExitStatus> st;
    REQUIRE(core::test::eventually([&] {
        auto x = sys::wait_pidfd(pfd->get());
        if (x && *x) st = *x;
        return st.has_value();
    }));
    CHECK_FALSE(st->exited);
    CHECK(st->signal == SIGKILL);
    CHECK(st->code == -1);
    // Reaped: the pidfd now says ESRCH (and we would never call it anyway).
    CHECK_FALSE(sys::wait_pidfd(pfd->get()));
}

TEST_CASE("Spawn_Poll_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto ep = sys::Epoll::create();
    auto ev = sys::EventFd::create();
    auto tm = sys::TimerFd::create();
    REQUIRE(ep);
    REQUIRE(ev);
    REQUIRE(tm);
    REQUIRE(ep->add(ev->fd(), sys::ev_in, 1));
    REQUIRE(ep->add(tm->fd(), sys::ev_in, 2));
    sys::PollEvent out[4];
    auto n = ep->wait(out, 4, 0);
    REQUIRE(n);
    CHECK(*n == 0);
    ev->signal();
    ev->signal();
    n = ep->wait(out, 4, 1000);
    REQUIRE(n);
    REQUIRE(*n == 1);
    CHECK(out[0].data == 1);
    ev->drain();
    REQUIRE(tm->arm_at(std::chrono::steady_clock::now()));
    n = ep->wait(out, 4, 10000);
    REQUIRE(n);
    REQUIRE(*n == 1);
    CHECK(out[0].data == 2);
    tm->drain();
    REQUIRE(tm->disarm());
    CHECK(fcntl(ep->fd(), F_GETFD) & FD_CLOEXEC);
    CHECK(fcntl(ev->fd(), F_GETFD) & FD_CLOEXEC);
    CHECK(fcntl(tm->fd(), F_GETFD) & FD_CLOEXEC);
}

TEST_CASE("Spawn_Signals_Good", "[process]") {
    CORE_LEAK_GUARD();
    CHECK(sys::signal_name(SIGKILL) == "SIGKILL");
    CHECK(sys::signal_name(SIGTERM) == "SIGTERM");
    CHECK(sys::signal_name(SIGRTMIN + 2) == "SIGRTMIN+2");
    CHECK(sys::sig_term() == SIGTERM);
    CHECK(sys::sig_kill() == SIGKILL);
    CHECK(sys::valid_signal(1));
    CHECK_FALSE(sys::valid_signal(0));
    CHECK_FALSE(sys::valid_signal(NSIG));
}

TEST_CASE("Spawn_CheckDir_Bad", "[process]") {
    CORE_LEAK_GUARD();
    auto r = sys::check_dir("/no/such");
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == ENOENT);
    auto f = sys::check_dir("/etc/passwd");
    REQUIRE_FALSE(f);
    CHECK(f.error().code() == ENOTDIR);
    CHECK(sys::check_dir("/tmp"));
}
