// The Supervisor with containment (issue 13): a daemon in its own cgroup whose grandchild calls
// setsid and forks is fully stopped; the supervise file's containment keys.
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch_test_macros.hpp>
#include <sstream>

#include "core/process/process.hpp"
#include "core/process/supervisor.hpp"
#include "guard.hpp"
#include "json/containment_config.hpp"
#include "process/cgroup.hpp"
#include "sys/spawn.hpp"

using namespace std::chrono_literals;
namespace cp = core::process;

namespace {

bool gone(int pid) {
    if (::kill(pid, 0) != 0) return true;
    std::ostringstream p;
    p << "/proc/" << pid << "/stat";
    FILE* f = std::fopen(p.str().c_str(), "r");
    if (!f) return true;
    char buf[512] = {0};
    const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    std::string s(buf, n);
    auto close = s.rfind(')');
    return close != std::string::npos && close + 2 < s.size() &&
           (s[close + 2] == 'Z' || s[close + 2] == 'X');
}

}  // namespace

TEST_CASE("SupervisorCgroup_Stop_Good", "[supervisor][cgroup]") {
    if (!core::sys::clone3_built()) SKIP("no clone3 path in this build");
    if (core::sys::spawn_method() != core::sys::SpawnMethod::clone3)
        SKIP("spawning through posix_spawn here: no cgroup placement");
    if (auto p = cp::detail::find_cgroup_parent(""); !p)
        SKIP("no usable cgroup v2 parent: " + p.error().what());
    CORE_LEAK_GUARD();
    auto c = core::Core::create({cp::register_service});
    REQUIRE(c);
    REQUIRE((*c)->startup(core::Context::background()));
    auto svc = (*c)->service<cp::Service>("process");
    REQUIRE(svc);
    {
        cp::Supervisor sup(**c, *svc);
        cp::DaemonSpec s;
        s.name = "tree";
        s.command = core::test::child_path();
        s.args = {"setsid-tree", "60000"};
        s.stop_timeout = 300ms;
        s.cgroup = true;
        REQUIRE(sup.add(s));
        REQUIRE(sup.start("tree"));
        int gc = 0, ggc = 0;
        REQUIRE(core::test::eventually([&] {
            auto st = sup.get("tree");
            if (!st || st->process_id.empty()) return false;
            auto p = svc->get(st->process_id);
            if (!p) return false;
            std::istringstream in((*p)->output());
            std::string w;
            return in >> w >> gc >> ggc && w == "tree" && ggc > 0;
        }));
        std::string path;
        {
            auto st = sup.get("tree");
            auto p = svc->get(st->process_id);
            path = (*p)->info().cgroup;
        }
        CHECK_FALSE(gone(ggc));
        REQUIRE(sup.stop("tree"));
        CHECK(core::test::eventually([&] { return gone(gc) && gone(ggc); }));
        struct stat sb {};
        CHECK(core::test::eventually([&] { return ::stat(path.c_str(), &sb) != 0; }));
    }
    (void)(*c)->shutdown(core::Context::background());
}

TEST_CASE("SupervisorCgroup_Config_Good", "[supervisor][cgroup]") {
    auto j = nlohmann::json::parse(R"({
        "cgroup": true,
        "limits": {"memory": "256M", "pids": 100, "cpu": 1.5, "memory_swap": 0, "io_weight": 50},
        "user": "root", "group": 0, "groups": ["0"], "umask": "022",
        "rlimits": {"nofile": 4096, "core": "unlimited", "nproc": "100:200"},
        "nice": 5, "no_new_privs": true, "parent_death_signal": "TERM"})");
    bool cgroup = false;
    cp::Limits l;
    cp::Identity id;
    REQUIRE(cp::detail::parse_containment_keys(j, cgroup, l, id));
    CHECK(cgroup);
    CHECK(*l.memory_max == 256u << 20);
    CHECK(*l.pids_max == 100);
    CHECK(*l.cpu_max == 1.5);
    CHECK(*l.io_weight == 50);
    CHECK(*id.uid == 0);
    CHECK(*id.gid == 0);
    CHECK(*id.umask == 022);
    REQUIRE(id.rlimits.size() == 3);
    CHECK(*id.nice == 5);
    CHECK(id.no_new_privs);
    CHECK(id.parent_death_signal == SIGTERM);
}

TEST_CASE("SupervisorCgroup_Config_Bad", "[supervisor][cgroup]") {
    auto bad = [](const char* text, const char* key) {
        bool cgroup = false;
        cp::Limits l;
        cp::Identity id;
        auto r = cp::detail::parse_containment_keys(nlohmann::json::parse(text), cgroup, l, id);
        REQUIRE_FALSE(r);
        INFO(r.error().what());
        CHECK(r.error().what().find(std::string("key \"") + key + "\"") != std::string::npos);
    };
    bad(R"({"cgroup": "yes"})", "cgroup");
    bad(R"({"limits": {"memory": "lots"}})", "limits.memory");
    bad(R"({"limits": {"disk": 1}})", "limits.disk");
    bad(R"({"user": "no-such-user-q"})", "user");
    bad(R"({"umask": 18})", "umask");
    bad(R"({"rlimits": {"nofiles": 3}})", "rlimits.nofiles");
    bad(R"({"nice": 50})", "nice");
}
