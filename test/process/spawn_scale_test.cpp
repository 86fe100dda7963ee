// Spawning in a crowded descriptor table (issue 16, item 1): the clone3 path shares the table
// with the child (CLONE_FILES) and passes the child's sources through low slots reserved at
// load, the child unsharing only what lies below them. What must hold whatever the table holds:
// the child sees exactly 0, 1 and 2 with the right sources behind them, our copies of its pipe
// ends are gone once it started (EOF arrives), and concurrent spawns (more threads than slot
// sets) never see each other's sources. Runs on both spawn paths (test/meson.build).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <thread>

#include "common.hpp"

using core::Context;
using namespace proctest;

namespace {

// n descriptors this test opens (dups of /dev/null, half without CLOEXEC, as a careless host's
// would be) and closes again.
struct Crowd {
    std::vector<int> fds;
    explicit Crowd(int n) {
        const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        REQUIRE(null >= 0);
        for (int i = 0; i < n; ++i) {
            const int fd = ::fcntl(null, (i % 2) ? F_DUPFD_CLOEXEC : F_DUPFD, 3);
            REQUIRE(fd >= 0);
            fds.push_back(fd);
        }
        ::close(null);
    }
    ~Crowd() {
        for (int fd : fds) ::close(fd);
    }
    Crowd(const Crowd&) = delete;
    Crowd& operator=(const Crowd&) = delete;
};

}  // namespace

TEST_CASE("SpawnScale_Start_Good", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    Crowd crowd(2000);
    // Live children holding descriptors of ours (pipes, pidfds) besides the crowd.
    std::vector<std::shared_ptr<cp::ManagedProcess>> live;
    for (int i = 0; i < 20; ++i) {
        auto o = child({"sleep", "30"});
        auto p = service(c)->start(Context::background(), o);
        REQUIRE(p);
        live.push_back(*p);
    }
    SECTION("the child sees exactly 0, 1, 2") {
        auto r = service(c)->run(Context::background(), child({"fds"}));
        REQUIRE(r);
        CHECK(*r == "0 1 2\n");
    }
    SECTION("stdin bytes, stdout and stderr each reach the right place") {
        auto o = child({"echo"});
        o.std_in = cp::Stdio::bytes("through stdin\n");
        auto r = service(c)->run(Context::background(), o);
        REQUIRE(r);
        CHECK(*r == "through stdin\n");
        auto e = child({"stderr", "on stderr"});
        e.std_err = cp::Stdio::merge();
        auto m = service(c)->run(Context::background(), e);
        REQUIRE(m);
        CHECK(*m == "on stderr\n");
    }
    SECTION("passed descriptors still arrive at their numbers") {
        auto o = child({"fds"});
        o.pass_fds = {{5, crowd.fds[0]}};
        auto r = service(c)->run(Context::background(), o);
        REQUIRE(r);
        CHECK(*r == "0 1 2 5\n");
    }
    for (auto& p : live) (void)p->kill();
    for (auto& p : live) (void)p->wait();
    service(c)->clear();
}

TEST_CASE("SpawnScale_Concurrent_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    Crowd crowd(500);
    SECTION("more threads than slot sets, each gets its own output") {
        constexpr int kThreads = 8, kEach = 15;
        std::atomic<int> wrong{0}, failed{0};
        // Catch's assertions are not thread-safe: the workers use none (service() REQUIREs).
        const auto svc = service(c);
        const std::string path = core::test::child_path();
        std::vector<std::thread> ts;
        for (int t = 0; t < kThreads; ++t) {
            ts.emplace_back([&, t] {
                for (int i = 0; i < kEach; ++i) {
                    const std::string tag = "t" + std::to_string(t) + "-" + std::to_string(i);
                    cp::RunOptions o;
                    o.command = path;
                    o.args = {"print", tag};
                    auto r = svc->run(Context::background(), o);
                    if (!r) {
                        ++failed;
                    } else if (*r != tag + "\n") {
                        ++wrong;
                    }
                }
            });
        }
        for (auto& th : ts) th.join();
        CHECK(failed.load() == 0);
        CHECK(wrong.load() == 0);
    }
}

TEST_CASE("SpawnScale_ExecFailure_Bad", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    Crowd crowd(1000);
    SECTION("a missing program is still ENOENT, nothing left behind") {
        auto o = child({});
        o.command = "/nonexistent/coreproc-spawn-scale";
        auto r = service(c)->run(Context::background(), o);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == ENOENT);
    }
}

// Last in this file (and the file last in test_process): it takes the low slots away from the
// library for the rest of the process, which then spawns on the copying path.
TEST_CASE("SpawnScale_HostClosedSlots_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    SECTION("a host that closed our slots and reopened files there keeps its files") {
        // The slots: a dozen low descriptors on one pipe (the most shared FIFO inode below 64).
        std::map<ino_t, std::vector<int>> fifos;
        for (int fd = 3; fd < 64; ++fd) {
            struct stat st {};
            if (::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) fifos[st.st_ino].push_back(fd);
        }
        std::vector<int> slots;
        for (auto& [ino, fds] : fifos)
            if (fds.size() > slots.size()) slots = fds;
        if (slots.size() < 4) SKIP("no low slots in this build (posix_spawn only)");
        // What a daemonizing host does: close them, open its own files at those numbers.
        const int file = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
        REQUIRE(file >= 0);
        struct stat zero {};
        REQUIRE(::fstat(file, &zero) == 0);
        for (int fd : slots) REQUIRE(::dup3(file, fd, O_CLOEXEC) == fd);
        auto o = child({"echo"});
        o.std_in = cp::Stdio::bytes("still works\n");
        auto r = service(c)->run(Context::background(), o);
        REQUIRE(r);
        CHECK(*r == "still works\n");
        for (int fd : slots) {
            struct stat st {};
            REQUIRE(::fstat(fd, &st) == 0);
            CHECK(st.st_ino == zero.st_ino);
            CHECK(st.st_rdev == zero.st_rdev);
        }
        // The guard counts these numbers as open before the test: they stay open (on the file).
        ::close(file);
    }
}
