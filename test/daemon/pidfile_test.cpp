#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch_test_macros.hpp>
#include <cerrno>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/process/pidfile.hpp"
#include "guard.hpp"
#include "sys/fault.hpp"
#include "util.hpp"

namespace cp = core::process;
using core::test::TempDir;

namespace {

std::string slurp(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::trunc);
    f << text;
}

}  // namespace

TEST_CASE("PidFile_Acquire_Good", "[daemon][pidfile]") {
    CORE_LEAK_GUARD();
    TempDir dir;
    const std::string path = dir / "run/sub/app.pid";  // parent directories missing

    cp::PidFile p(path);
    REQUIRE(p.acquire());
    CHECK(p.held());
    CHECK(slurp(path) == std::to_string(::getpid()) + "\n");
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0644);
    REQUIRE(::stat((dir / "run/sub").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == (0755 & ~[] {
              mode_t m = ::umask(0);
              ::umask(m);
              return m;
          }()));

    SECTION("read_pid sees us alive") {
        auto info = cp::read_pid(path);
        REQUIRE(info);
        CHECK(info->pid == ::getpid());
        CHECK(info->alive);
    }
    SECTION("the lock is really held: a raw flock from another open fails") {
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
        CHECK(::flock(fd, LOCK_EX | LOCK_NB) == -1);
        CHECK(errno == EWOULDBLOCK);
        ::close(fd);
    }
    SECTION("moved-from object no longer owns it") {
        cp::PidFile q(std::move(p));
        CHECK(q.held());
        REQUIRE(q.release());
        CHECK_FALSE(exists(path));
    }
}

TEST_CASE("PidFile_Acquire_Bad", "[daemon][pidfile]") {
    CORE_LEAK_GUARD();
    TempDir dir;
    const std::string path = dir / "app.pid";

    SECTION("a second owner in the same process fails naming the holder") {
        cp::PidFile first(path);
        REQUIRE(first.acquire());
        cp::PidFile second(path);
        auto r = second.acquire();
        REQUIRE_FALSE(r);
        CHECK(r.error().what() ==
              "pidfile.acquire: " + path + ": held by pid " + std::to_string(::getpid()));
        CHECK(r.error().code() == EWOULDBLOCK);
        CHECK_FALSE(second.held());
        // The loser did not disturb the winner's file.
        CHECK(slurp(path) == std::to_string(::getpid()) + "\n");
    }
    SECTION("a symlink is refused, even to a harmless target") {
        const std::string target = dir / "target";
        write_file(target, "keep me");
        REQUIRE(::symlink(target.c_str(), path.c_str()) == 0);
        cp::PidFile p(path);
        auto r = p.acquire();
        REQUIRE_FALSE(r);
        CHECK(r.error().what().find("is a symbolic link; refusing to follow it") !=
              std::string::npos);
        CHECK(r.error().code() == ELOOP);
        CHECK(slurp(target) == "keep me");
        auto info = cp::read_pid(path);
        REQUIRE_FALSE(info);
        CHECK(info.error().code() == ELOOP);
    }
    SECTION("empty path") {
        cp::PidFile p("");
        auto r = p.acquire();
        REQUIRE_FALSE(r);
        CHECK(r.error().what() == "pidfile.acquire: empty path");
    }
    SECTION("acquiring twice with one object") {
        cp::PidFile p(path);
        REQUIRE(p.acquire());
        auto r = p.acquire();
        REQUIRE_FALSE(r);
        CHECK(r.error().what().find("already acquired") != std::string::npos);
    }
    SECTION("parent is a file") {
        write_file(dir / "file", "x");
        cp::PidFile p(dir / "file/app.pid");
        auto r = p.acquire();
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == ENOTDIR);
    }
}

TEST_CASE("PidFile_Acquire_Ugly", "[daemon][pidfile]") {
    CORE_LEAK_GUARD();
    TempDir dir;
    const std::string path = dir / "app.pid";

    SECTION("stale files are taken over: dead pid, garbage, empty, our own old pid") {
        for (const std::string& stale :
             {std::to_string(core::test::dead_pid()) + "\n", std::string("garbage\n"),
              std::string(""), std::string("999999999999999999999\n"), std::string(200, 'x')}) {
            write_file(path, stale);
            auto before = cp::read_pid(path);
            REQUIRE(before);
            CHECK_FALSE(before->alive);  // nobody holds the lock
            cp::PidFile p(path);
            REQUIRE(p.acquire());
            CHECK(slurp(path) == std::to_string(::getpid()) + "\n");
            REQUIRE(p.release());
        }
    }
    SECTION("a stale file naming a live pid is still stale: only the lock counts") {
        write_file(path, "1\n");  // init is alive, but holds no lock on this file
        auto info = cp::read_pid(path);
        REQUIRE(info);
        CHECK(info->pid == 1);
        CHECK_FALSE(info->alive);
        cp::PidFile p(path);
        REQUIRE(p.acquire());
    }
    SECTION("two processes race for one PID file: exactly one wins") {
        constexpr int kRacers = 6;
        std::vector<std::unique_ptr<core::test::Spawned>> racers;
        for (int i = 0; i < kRacers; ++i)
            racers.push_back(std::make_unique<core::test::Spawned>(
                core::test::daemon_helper_path(), std::vector<std::string>{"pidfile", path}));
        int winners = 0, winner_pid = 0;
        std::vector<std::string> losses;
        for (auto& r : racers) {
            REQUIRE(r->pid() > 0);
            const std::string line = r->read_line();
            if (line == "won") {
                ++winners;
                winner_pid = r->pid();
            } else {
                losses.push_back(line);
            }
        }
        CHECK(winners == 1);
        REQUIRE(losses.size() == kRacers - 1);
        for (const auto& l : losses) {
            INFO(l);
            CHECK(l.rfind("lost pidfile.acquire: " + path + ": held by ", 0) == 0);
        }
        auto info = cp::read_pid(path);
        REQUIRE(info);
        CHECK(info->pid == winner_pid);
        CHECK(info->alive);
        // The winner releases when its stdin closes: the file disappears with it.
        for (auto& r : racers) {
            r->close_stdin();
            const int st = r->wait();
            CHECK(WIFEXITED(st));
            CHECK(WEXITSTATUS(st) == 0);
        }
        CHECK_FALSE(exists(path));
    }
    SECTION("a holder that dies leaves a stale file we take over") {
        {
            core::test::Spawned holder(core::test::daemon_helper_path(), {"pidfile", path});
            REQUIRE(holder.read_line() == "won");
            cp::PidFile p(path);
            REQUIRE_FALSE(p.acquire());
            ::kill(holder.pid(), SIGKILL);  // dies without releasing: the file stays
            holder.wait();
        }
        REQUIRE(exists(path));
        auto info = cp::read_pid(path);
        REQUIRE(info);
        CHECK_FALSE(info->alive);
        cp::PidFile p(path);
        REQUIRE(p.acquire());
        CHECK(slurp(path) == std::to_string(::getpid()) + "\n");
    }
    SECTION("full disk while writing: clear error, no half-written file left claimed") {
        for (const char* call : {"write", "fsync", "ftruncate"}) {
            INFO(call);
            core::sys::fault::Scoped guard(call, ENOSPC);
            cp::PidFile p(path);
            auto r = p.acquire();
            REQUIRE_FALSE(r);
            CHECK(r.error().code() == ENOSPC);
            CHECK(r.error().what().find("pidfile.acquire: " + path) == 0);
            CHECK(r.error().what().find("No space left on device") != std::string::npos);
            CHECK_FALSE(p.held());
            CHECK_FALSE(exists(path));
        }
        // And the path is usable afterwards.
        cp::PidFile p(path);
        REQUIRE(p.acquire());
    }
    SECTION("full disk when a stale file exists: removed rather than left half-written") {
        write_file(path, "12345\n");
        core::sys::fault::Scoped guard("write", ENOSPC);
        cp::PidFile p(path);
        REQUIRE_FALSE(p.acquire());
        CHECK_FALSE(exists(path));
    }
}

TEST_CASE("PidFile_Release_Good", "[daemon][pidfile]") {
    CORE_LEAK_GUARD();
    TempDir dir;
    const std::string path = dir / "app.pid";
    SECTION("release removes the file and frees the name") {
        cp::PidFile p(path);
        REQUIRE(p.acquire());
        REQUIRE(p.release());
        CHECK_FALSE(p.held());
        CHECK_FALSE(exists(path));
        REQUIRE(p.release());  // idempotent
        cp::PidFile q(path);
        REQUIRE(q.acquire());
    }
    SECTION("the destructor releases") {
        {
            cp::PidFile p(path);
            REQUIRE(p.acquire());
        }
        CHECK_FALSE(exists(path));
    }
}

TEST_CASE("PidFile_Release_Bad", "[daemon][pidfile]") {
    CORE_LEAK_GUARD();
    TempDir dir;
    const std::string path = dir / "app.pid";
    SECTION("never held: nothing removed") {
        write_file(path, "4242\n");
        cp::PidFile p(path);
        REQUIRE(p.release());
        CHECK(exists(path));
    }
    SECTION("a loser's release does not remove the winner's file") {
        cp::PidFile winner(path);
        REQUIRE(winner.acquire());
        {
            cp::PidFile loser(path);
            REQUIRE_FALSE(loser.acquire());
            REQUIRE(loser.release());
        }
        CHECK(exists(path));
        auto info = cp::read_pid(path);
        REQUIRE(info);
        CHECK(info->alive);
    }
}

TEST_CASE("PidFile_Release_Ugly", "[daemon][pidfile]") {
    CORE_LEAK_GUARD();
    TempDir dir;
    const std::string path = dir / "app.pid";
    SECTION("file replaced behind our back: release leaves the stranger's file alone") {
        cp::PidFile p(path);
        REQUIRE(p.acquire());
        REQUIRE(::unlink(path.c_str()) == 0);
        write_file(path, "777\n");
        REQUIRE(p.release());
        CHECK(slurp(path) == "777\n");
    }
    SECTION("release then re-acquire by a waiting second object") {
        cp::PidFile a(path);
        cp::PidFile b(path);
        REQUIRE(a.acquire());
        REQUIRE_FALSE(b.acquire());
        REQUIRE(a.release());
        REQUIRE(b.acquire());
        auto info = cp::read_pid(path);
        REQUIRE(info);
        CHECK(info->alive);
    }
}

TEST_CASE("PidFile_ReadPid_Good", "[daemon][pidfile]") {
    CORE_LEAK_GUARD();
    TempDir dir;
    const std::string path = dir / "app.pid";
    write_file(path, "31337\n");
    auto info = cp::read_pid(path);
    REQUIRE(info);
    CHECK(info->pid == 31337);
    CHECK_FALSE(info->alive);
}

TEST_CASE("PidFile_ReadPid_Bad", "[daemon][pidfile]") {
    CORE_LEAK_GUARD();
    TempDir dir;
    auto r = cp::read_pid(dir / "missing.pid");
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == ENOENT);
    CHECK(r.error().what().find("pidfile.read: " + (dir / "missing.pid")) == 0);
    auto e = cp::read_pid("");
    REQUIRE_FALSE(e);
}

TEST_CASE("PidFile_ReadPid_Ugly", "[daemon][pidfile]") {
    CORE_LEAK_GUARD();
    TempDir dir;
    const std::string path = dir / "app.pid";
    SECTION("garbage") {
        write_file(path, "-5\n");
        auto info = cp::read_pid(path);
        REQUIRE(info);
        CHECK(info->pid == 0);
        CHECK_FALSE(info->alive);
    }
    SECTION("a locked file with garbage: alive, pid from the kernel's lock table") {
        int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, "zz", 2) == 2);
        REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
        auto info = cp::read_pid(path);
        ::close(fd);
        REQUIRE(info);
        CHECK(info->alive);
        CHECK(info->pid == ::getpid());
    }
    SECTION("read_pid does not make a concurrent acquire fail (it takes no lock)") {
        cp::PidFile p(path);
        for (int i = 0; i < 50; ++i) {
            auto info = cp::read_pid(dir.path() + "/other.pid");
            (void)info;
        }
        write_file(path, "1\n");
        REQUIRE(cp::read_pid(path));
        REQUIRE(p.acquire());
    }
}
