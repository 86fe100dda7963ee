// The orphan reaper under a race (issue 15 §3): this test program makes itself a child
// subreaper (its own executable, so no other test gets orphans), then runs many short-lived
// managed children on several threads while daemons keep making orphans and a thread calls
// the reaper's pass in a tight loop beside the reaper's own thread. Every managed child's exit
// must still reach its owner intact (exit code 7, never lost to the orphan reaper), and no
// zombie is left. The rule being proved is in lib/sys/reap.hpp.
#include <unistd.h>

#include <atomic>
#include <catch2/catch_test_macros.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/process/managed_process.hpp"
#include "core/process/service.hpp"
#include "core/process/supervisor.hpp"
#include "guard.hpp"

using namespace std::chrono_literals;
using core::Context;
namespace fs = std::filesystem;

namespace {

// Zombie children of this process.
int zombies() {
    const std::string self = std::to_string(::getpid());
    int n = 0;
    for (const auto& e : fs::directory_iterator("/proc")) {
        const std::string name = e.path().filename().string();
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream f(e.path() / "stat");
        std::string line;
        if (!std::getline(f, line)) continue;
        const auto close = line.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream rest(line.substr(close + 2));
        char state = '?';
        std::string ppid;
        rest >> state >> ppid;
        if (ppid == self && state == 'Z') ++n;
    }
    return n;
}

}  // namespace

TEST_CASE("Reap_OrphanReaper_Ugly", "[supervisor][init]") {
    CORE_LEAK_GUARD();
    auto reaper = core::process::OrphanReaper::start(true);
    REQUIRE(reaper);

    auto made = core::Core::create({core::process::register_service});
    REQUIRE(made);
    auto c = *made;
    REQUIRE(c->startup(Context::background()));
    auto svc = c->service<core::process::Service>("process");

    // Daemons that orphan 200 grandchildren each, which come to us.
    std::vector<std::shared_ptr<core::process::ManagedProcess>> makers;
    for (int i = 0; i < 3; ++i) {
        core::process::RunOptions o;
        o.command = core::test::child_path();
        o.args = {"f-orphans", "200"};
        o.kill_group = true;
        auto p = svc->start(Context::background(), o);
        REQUIRE(p);
        makers.push_back(*p);
    }

    std::atomic<bool> stop{false};
    std::thread eager([&] {
        while (!stop.load()) (void)core::process::OrphanReaper::reap_now();
    });

    std::atomic<int> good{0}, bad{0};
    std::vector<std::thread> runners;
    for (int t = 0; t < 4; ++t) {
        runners.emplace_back([&] {
            for (int k = 0; k < 50; ++k) {
                core::process::RunOptions o;
                o.command = core::test::child_path();
                o.args = {"exit", "7"};
                auto p = svc->start(Context::background(), o);
                if (!p) {
                    ++bad;
                    continue;
                }
                const auto info = (*p)->wait();
                (info.status == core::process::Status::exited && info.exit_code == 7 ? good
                                                                                     : bad)++;
                (void)svc->remove((*p)->id());
            }
        });
    }
    for (auto& t : runners) t.join();
    stop.store(true);
    eager.join();

    CHECK(bad.load() == 0);
    CHECK(good.load() == 200);
    for (auto& m : makers) {
        CHECK(core::test::eventually(
            [&] { return m->output().find("orphaned 200") != std::string::npos; }, 30s));
        (void)m->kill();
        (void)m->wait();
    }
    // Every orphan was reaped (by the thread or the eager loop).
    CHECK(core::test::eventually([] {
        (void)core::process::OrphanReaper::reap_now();
        return zombies() == 0;
    }));
    (void)c->shutdown(Context::background());
}
