// The lib/sys layer the Service stands on: PATH resolution, env merging, posix_spawn with
// pidfd and waitid, the poll objects.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <thread>
#include <vector>

#include <catch2/generators/catch_generators.hpp>

#include "common.hpp"
#include "sys/fault.hpp"
#include "sys/io.hpp"
#include "sys/net.hpp"
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
    sys::set_spawn_method(sys::SpawnMethod::posix_spawn);
    auto pid = sys::spawn(spec);
    sys::set_spawn_method(sys::SpawnMethod::automatic);
    REQUIRE(pid);
    // posix_spawn: spawn() opens the pidfd before it returns (under the spawn gate that keeps
    // an orphan reaper away, sys/reap.hpp); a second one from pidfd_open works as well.
    CHECK(pid->pidfd);
    auto pfd = sys::pidfd_open(pid->pid);
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
    core::Result<sys::UniqueFd> pfd =
        pid->pidfd ? core::Result<sys::UniqueFd>(std::move(pid->pidfd)) : sys::pidfd_open(pid->pid);
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

// ------------------------------------------------------------------ clone3

namespace {

// Spawns the helper child with argv and reaps it through its pidfd: the exit code, 128 + the
// signal, or -1 when a call failed. No REQUIRE: the signal-storm probe (a forked process) uses it.
int spawn_and_reap(const char* const* args) {
    std::string path = core::test::child_path();
    std::vector<char*> argv{path.data()};
    for (const char* const* a = args; *a; ++a) argv.push_back(const_cast<char*>(*a));
    argv.push_back(nullptr);
    sys::SpawnSpec spec;
    spec.path = path.c_str();
    spec.argv = argv.data();
    auto sp = sys::spawn(spec);
    if (!sp) return -1;
    core::Result<sys::UniqueFd> pfd =
        sp->pidfd ? core::Result<sys::UniqueFd>(std::move(sp->pidfd)) : sys::pidfd_open(sp->pid);
    if (!pfd) return -1;
    for (;;) {
        ::pollfd p{pfd->get(), POLLIN, 0};
        if (::poll(&p, 1, 30000) < 0 && errno != EINTR) return -1;
        auto w = sys::wait_pidfd(pfd->get());
        if (!w) return -1;
        if (*w) return (*w)->exited ? (*w)->code : 128 + (*w)->signal;
    }
}

// sys::spawn of /bin/true, where only the spawn's own answer matters (stderr_fd as given).
core::Result<sys::Spawned> spawn_true(int stderr_fd = -1) {
    char prog[] = "/bin/true";
    char* argv[] = {prog, nullptr};
    sys::SpawnSpec spec;
    spec.path = prog;
    spec.argv = argv;
    spec.stderr_fd = stderr_fd;
    return sys::spawn(spec);
}

int run_to_exit(const char* const* args) {
    const int code = spawn_and_reap(args);
    REQUIRE(code >= 0);
    return code;
}

std::atomic<int> g_handler_calls{0};
std::atomic<int> g_handler_foreign{0};
int g_parent_pid = 0;
void count_usr1(int) {
    // A handler running in a CLONE_VM child would run our code on our memory: count it.
    if (::getpid() != g_parent_pid) g_handler_foreign.fetch_add(1);
    g_handler_calls.fetch_add(1);
}

}  // namespace

TEST_CASE("Spawn_Clone3_Good", "[process]") {
    CORE_LEAK_GUARD();
    if (!sys::clone3_built()) SKIP("this build has no clone3 path (not x86-64, or ASan/TSan)");
    proctest::SpawnMethodScope m(cp::SpawnMethod::clone3);
    CHECK(std::string(cp::spawn_method()) == "clone3");
    std::string path = core::test::child_path();
    char* argv[] = {path.data(), const_cast<char*>("exit"), const_cast<char*>("7"), nullptr};
    sys::SpawnSpec spec;
    spec.path = path.c_str();
    spec.argv = argv;
    auto sp = sys::spawn(spec);
    REQUIRE(sp);
    // The pidfd exists from birth: no pidfd_open, no window in which the pid could be reused.
    REQUIRE(sp->pidfd);
    CHECK(sp->pid > 0);
    CHECK(fcntl(sp->pidfd.get(), F_GETFD) & FD_CLOEXEC);
    auto ep = sys::Epoll::create();
    REQUIRE(ep);
    REQUIRE(ep->add(sp->pidfd.get(), sys::ev_in, 7));
    sys::PollEvent ev[2];
    auto n = ep->wait(ev, 2, 30000);
    REQUIRE(n);
    REQUIRE(*n == 1);
    auto w = sys::wait_pidfd(sp->pidfd.get());
    REQUIRE(w);
    REQUIRE(*w);
    CHECK((*w)->exited);
    CHECK((*w)->code == 7);
    SECTION("the child's set-up: dir, stdio, group, then exec") {
        auto c = proctest::make_core();
        auto o = proctest::child({"cwd"});
        o.dir = "/tmp";
        o.kill_group = true;
        auto r = proctest::service(c)->run(core::Context::background(), o);
        REQUIRE(r);
        CHECK(*r == "/tmp\n");
    }
}

TEST_CASE("Spawn_Clone3_Bad", "[process]") {
    CORE_LEAK_GUARD();
    if (!sys::clone3_built()) SKIP("this build has no clone3 path (not x86-64, or ASan/TSan)");
    proctest::SpawnMethodScope m(cp::SpawnMethod::clone3);
    // The exec's errno comes back from the child through shared memory; the child that exited
    // 127 is already reaped (the leak guard counts zombies) and its pidfd closed.
    char dir[] = "/tmp/core-proc-c3-XXXXXX";
    REQUIRE(mkdtemp(dir));
    const std::string plain = std::string(dir) + "/plain";
    const std::string junk = std::string(dir) + "/junk";
    for (const auto& [f, mode] : {std::pair{plain, 0644}, std::pair{junk, 0755}}) {
        const int fd = ::open(f.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, mode);
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, "\x01\x02\x03\x04garbage", 11) == 11);
        ::close(fd);
    }
    struct Case {
        std::string path;
        const char* dir;
        int err;
    };
    const Case cases[] = {{"/no/such/prog", nullptr, ENOENT},
                          {plain, nullptr, EACCES},
                          {junk, nullptr, ENOEXEC},
                          {"/bin/true", "/no/such/dir", ENOENT},
                          {"/bin/true", "/etc/passwd", ENOTDIR}};
    for (const auto& c : cases) {
        char* argv[] = {const_cast<char*>(c.path.c_str()), nullptr};
        sys::SpawnSpec spec;
        spec.path = c.path.c_str();
        spec.argv = argv;
        spec.dir = c.dir;
        auto sp = sys::spawn(spec);
        REQUIRE_FALSE(sp);
        CHECK(sp.error().code() == c.err);
        CHECK(proctest::contains(sp.error().what(), "clone3"));
    }
    ::unlink(plain.c_str());
    ::unlink(junk.c_str());
    ::rmdir(dir);
    SECTION("a stdio source below 3 is refused before cloning") {
        auto sp = spawn_true(1);
        REQUIRE_FALSE(sp);
        CHECK(sp.error().code() == EINVAL);
    }
    SECTION("clone3 asked for and refused: the refusal is the error, no fallback") {
        core::sys::fault::Scoped f("clone3", ENOSYS);
        auto sp = spawn_true();
        REQUIRE_FALSE(sp);
        CHECK(sp.error().code() == ENOSYS);
        CHECK(std::string(cp::spawn_method()) == "clone3");
    }
}

TEST_CASE("Spawn_Clone3_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    if (!sys::clone3_built()) SKIP("this build has no clone3 path (not x86-64, or ASan/TSan)");
    const char* const exit3[] = {"exit", "3", nullptr};
    SECTION("refused under automatic (seccomp answers ENOSYS or EPERM): posix_spawn for good") {
        const int err = GENERATE(ENOSYS, EPERM);
        proctest::SpawnMethodScope m(cp::SpawnMethod::automatic);
        REQUIRE(std::string(cp::spawn_method()) == "clone3");
        {
            core::sys::fault::Scoped f("clone3", err);
            CHECK(run_to_exit(exit3) == 3);
            CHECK(core::sys::fault::fired("clone3") == 1);
        }
        CHECK(std::string(cp::spawn_method()) == "posix_spawn");
        CHECK(run_to_exit(exit3) == 3);
        // Asking for automatic again probes clone3 again.
        cp::set_spawn_method(cp::SpawnMethod::automatic);
        CHECK(std::string(cp::spawn_method()) == "clone3");
    }
    SECTION("a resource error is the caller's, not a reason to switch") {
        proctest::SpawnMethodScope m(cp::SpawnMethod::automatic);
        core::sys::fault::Scoped f("clone3", EAGAIN);
        auto sp = spawn_true();
        REQUIRE_FALSE(sp);
        CHECK(sp.error().code() == EAGAIN);
        CHECK(std::string(cp::spawn_method()) == "clone3");
    }
    SECTION("a signal storm while 4 threads spawn: no handler ever runs in a child") {
        // In a probe process leading its own group, so that kill(0, ...) reaches exactly it and
        // its children that have not exec'd yet (a terminal's ^C does the same), and nothing of
        // the test runner's. Each child must die of the default action or exit 3, never run the
        // probe's handler on the probe's memory. Exit: 0 ok, 1 a bad exit, 2 a handler ran in a
        // child, 3 the storm never landed, 4 a spawn failed.
        const pid_t probe = ::fork();
        REQUIRE(probe >= 0);
        if (probe == 0) {
            ::setpgid(0, 0);
            cp::set_spawn_method(cp::SpawnMethod::clone3);
            g_parent_pid = ::getpid();
            struct sigaction sa {};
            sa.sa_handler = count_usr1;
            sigemptyset(&sa.sa_mask);
            ::sigaction(SIGUSR1, &sa, nullptr);
            std::atomic<bool> done{false};
            std::atomic<int> bad{0}, failed{0};
            std::thread storm([&] {
                while (!done) {
                    ::kill(0, SIGUSR1);
                    std::this_thread::sleep_for(std::chrono::microseconds(200));
                }
            });
            std::vector<std::thread> spawners;
            for (int t = 0; t < 4; ++t)
                spawners.emplace_back([&] {
                    for (int i = 0; i < 50; ++i) {
                        const int code = spawn_and_reap(exit3);
                        if (code < 0)
                            failed.fetch_add(1);
                        else if (code != 3 && code != 128 + SIGUSR1)
                            bad.fetch_add(1);
                    }
                });
            for (auto& t : spawners) t.join();
            done = true;
            storm.join();
            ::_exit(failed ? 4 : bad ? 1 : g_handler_foreign ? 2 : g_handler_calls == 0 ? 3 : 0);
        }
        int status = 0;
        while (::waitpid(probe, &status, 0) < 0 && errno == EINTR) {
        }
        REQUIRE(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
}

// Issue 12 §4: wait_readable(…, milliseconds::max()) is "forever", not a deadline that
// overflowed into the past (it returned false at once). The waiter must still be asleep in poll
// when the writer writes: the writer waits until the waiting thread's state is S.
TEST_CASE("Spawn_WaitFd_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    auto p = sys::make_pipe();
    REQUIRE(p);
    std::atomic<int> tid{0};
    std::atomic<bool> returned{false};
    core::Result<bool> got = false;
    std::thread waiter([&] {
        tid = static_cast<int>(::gettid());
        got = sys::wait_readable(p->read.get(), std::chrono::milliseconds::max());
        returned = true;
    });
    auto sleeping = [&] {
        const int t = tid.load();
        if (t == 0 || returned.load()) return false;
        std::ifstream f("/proc/self/task/" + std::to_string(t) + "/stat");
        std::string line;
        if (!std::getline(f, line)) return false;
        const auto close = line.rfind(')');
        return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'S';
    };
    const bool slept = core::test::eventually(sleeping, std::chrono::seconds(10));
    REQUIRE(::write(p->write.get(), "x", 1) == 1);
    waiter.join();
    CHECK(slept);
    REQUIRE(got);
    CHECK(*got);
}
