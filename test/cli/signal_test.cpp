// coreproc and Ctrl-C (issue 12 §4): SIGINT or SIGTERM to `coreproc run` / `coreproc pipeline`
// stops everything the command started, grandchildren included. The command is the issue's own
// `sh -c 'sleep 100 & sleep 100'` (a shell on purpose: a non-interactive shell starts `&` jobs
// with SIGINT ignored, which is what left them running). coreproc is spawned through the library;
// the test finds the shell's children in /proc while they run and checks each is gone after.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/process/managed_process.hpp"
#include "core/process/service.hpp"
#include "guard.hpp"
#include "proc_view.hpp"

using namespace std::chrono_literals;
using core::Context;
namespace fs = std::filesystem;
using core::test::proc::children_of;
using core::test::proc::gone;
using core::test::proc::stat_of;

namespace {

struct Coreproc {
    std::shared_ptr<core::Core> core;
    std::shared_ptr<core::process::ManagedProcess> mp;

    explicit Coreproc(std::vector<std::string> args) {
        REQUIRE(core::test::coreproc_path()[0] != '\0');
        auto c = core::Core::create({core::process::register_service});
        REQUIRE(c);
        core = *c;
        REQUIRE(core->startup(Context::background()));
        core::process::RunOptions o;
        o.command = core::test::coreproc_path();
        o.args = std::move(args);
        auto p = core->service<core::process::Service>("process")->start(Context::background(), o);
        REQUIRE(p);
        mp = *p;
    }
    ~Coreproc() {
        if (mp && mp->is_running()) (void)mp->signal(SIGKILL);
        (void)core->shutdown(Context::background());
    }
};

// Waits for "pids SH BG" in out and for the shell's two sleeps; returns SH, BG and the sleeps.
std::set<int> shell_and_sleeps(const std::shared_ptr<core::process::ManagedProcess>& mp) {
    std::smatch m;
    std::string out;
    REQUIRE(core::test::eventually(
        [&] {
            out = mp->output();
            return std::regex_search(out, m, std::regex("pids ([0-9]+) ([0-9]+)"));
        },
        20s));
    const int sh = std::stoi(m[1]);
    std::set<int> kids;
    // The foreground sleep starts after the echo: wait until the shell has both children.
    REQUIRE(core::test::eventually(
        [&] {
            kids = children_of(sh);
            return kids.size() == 2;
        },
        20s));
    kids.insert(sh);
    kids.insert(std::stoi(m[2]));
    return kids;
}

const std::vector<std::string> kShell = {"sh", "-c", "sleep 100 & echo \"pids $$ $!\"; sleep 100"};

}  // namespace

TEST_CASE("CliSignal_Run_Ugly", "[cli]") {
    CORE_LEAK_GUARD();
    const int sig = GENERATE(SIGINT, SIGTERM);
    INFO("signal " << sig);
    std::vector<std::string> args = {"run", "--grace", "2s", "--"};
    args.insert(args.end(), kShell.begin(), kShell.end());
    Coreproc cp(args);
    const auto pids = shell_and_sleeps(cp.mp);
    REQUIRE(cp.mp->signal(sig));
    REQUIRE(cp.mp->wait_for(30s));
    const auto info = cp.mp->wait();
    // The shell died of the SIGTERM sent to its group: 128 + 15.
    CHECK(info.status == core::process::Status::exited);
    CHECK(info.exit_code == 128 + SIGTERM);
    for (int pid : pids) {
        INFO("pid " << pid << " outlived coreproc");
        CHECK(core::test::eventually([&] { return gone(pid); }, 10s));
    }
}

TEST_CASE("CliSignal_Pipeline_Ugly", "[cli]") {
    CORE_LEAK_GUARD();
    std::string dir_tmpl = (fs::temp_directory_path() / "cli-signal-XXXXXX").string();
    REQUIRE(mkdtemp(dir_tmpl.data()) != nullptr);
    const fs::path dir = dir_tmpl;
    nlohmann::json p{
        {"steps", {{{"name", "shell"}, {"command", kShell[0]}, {"args", {kShell[1], kShell[2]}}}}}};
    const std::string file = (dir / "p.json").string();
    std::ofstream(file) << p.dump();
    {
        Coreproc cp({"pipeline", file});
        // The Runner captures the step's output: find the shell as coreproc's child instead.
        std::set<int> pids;
        REQUIRE(core::test::eventually(
            [&] {
                for (int sh : children_of(cp.mp->pid())) {
                    auto kids = children_of(sh);
                    if (kids.size() == 2) {
                        pids = kids;
                        pids.insert(sh);
                        return true;
                    }
                }
                return false;
            },
            20s));
        REQUIRE(cp.mp->signal(SIGINT));
        REQUIRE(cp.mp->wait_for(30s));
        const auto info = cp.mp->wait();
        CHECK(info.status == core::process::Status::exited);
        CHECK(info.exit_code == 128 + SIGINT);
        for (int pid : pids) {
            INFO("pid " << pid << " outlived coreproc");
            CHECK(core::test::eventually([&] { return gone(pid); }, 10s));
        }
    }
    fs::remove_all(dir);
}
