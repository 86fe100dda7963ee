// A cgroup v2 per child (issue 13): born in it (CLONE_INTO_CGROUP), the whole tree killed on
// kill, timeout and shutdown even when a grandchild calls setsid, the directory removed after,
// limits refused by name where their controller is not delegated (and run where it is), the
// accounting at exit, the posix_spawn path refusing it, and fault injection.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "common.hpp"
#include "process/cgroup.hpp"
#include "sys/cgroup.hpp"
#include "sys/fault.hpp"
#include "sys/file.hpp"
#include "sys/spawn.hpp"

namespace sys = core::sys;
namespace detail = core::process::detail;
using core::Context;
using core::sys::fault::Scoped;
using namespace proctest;

namespace {

// Where this host lets us create cgroups, or empty (with why in *why).
std::string usable_parent(std::string* why) {
    if (!sys::clone3_built()) {
        *why = "this build has no clone3 path (CLONE_INTO_CGROUP needs it)";
        return {};
    }
    auto p = detail::find_cgroup_parent("");
    if (!p) {
        *why = "no usable cgroup v2 parent: " + p.error().what();
        return {};
    }
    return *p;
}

#define NEED_CGROUP(parent)                          \
    std::string why_;                                \
    const std::string parent = usable_parent(&why_); \
    if (parent.empty()) SKIP(why_)

bool dir_exists(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0;
}

std::string read_text(const std::string& p) {
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

bool has_controller(const std::string& parent, const std::string& c) {
    std::istringstream in(read_text(parent + "/cgroup.controllers"));
    std::string w;
    while (in >> w)
        if (w == c) return true;
    return false;
}

// "tree <gc> <ggc>" from setsid-tree's first line.
std::pair<int, int> tree_pids(const std::string& out) {
    std::istringstream in(out);
    std::string word;
    int a = 0, b = 0;
    in >> word >> a >> b;
    return {a, b};
}

// Waits for the output of p to contain text (the line is printed before the tree sleeps).
std::string wait_output(const std::shared_ptr<cp::ManagedProcess>& p, const std::string& text) {
    std::string out;
    core::test::eventually([&] {
        out = p->output();
        return contains(out, text);
    });
    return out;
}

// The cgroups this process made under a parent: the other spawn path's run of this suite may
// be creating its own in the same parent at the same time, so counting every entry races.
long ours(const std::vector<std::string>& names) {
    const std::string prefix = "core-process-" + std::to_string(::getpid()) + "-";
    return static_cast<long>(std::count_if(
        names.begin(), names.end(), [&](const std::string& n) { return n.rfind(prefix, 0) == 0; }));
}

}  // namespace

TEST_CASE("Cgroup_Create_Good", "[process][cgroup]") {
    NEED_CGROUP(parent);
    CORE_LEAK_GUARD();
    auto c = detail::Cgroup::create(parent, {});
    REQUIRE(c);
    const std::string path = (*c)->path();
    CHECK(path.rfind(parent + "/core-process-" + std::to_string(::getpid()) + "-", 0) == 0);
    CHECK(dir_exists(path));
    CHECK((*c)->fd() >= 0);
    auto pop = (*c)->populated();
    REQUIRE(pop);
    CHECK_FALSE(*pop);
    cp::Accounting a;
    CHECK((*c)->end_tree(a));
    CHECK(a.accounted);
    CHECK_FALSE(dir_exists(path));
    SECTION("the destructor removes what end_tree did not") {
        auto d = detail::Cgroup::create(parent, {});
        REQUIRE(d);
        const std::string p2 = (*d)->path();
        d->reset();
        CHECK_FALSE(dir_exists(p2));
    }
}

TEST_CASE("Cgroup_Kill_Good", "[process][cgroup]") {
    NEED_CGROUP(parent);
    CORE_LEAK_GUARD();
    SpawnMethodScope m(cp::SpawnMethod::clone3);
    auto c = make_core();
    auto svc = service(c);
    auto o = child({"setsid-tree", "60000"});
    o.cgroup = true;
    o.grace_period = 200ms;
    SECTION("kill: the setsid grandchild dies with the tree; the directory goes") {
        auto p = svc->start(Context::background(), o);
        REQUIRE(p);
        auto [gc, ggc] = tree_pids(wait_output(*p, "tree "));
        REQUIRE(gc > 0);
        REQUIRE(ggc > 0);
        const std::string path = (*p)->info().cgroup;
        CHECK(dir_exists(path));
        REQUIRE((*p)->kill());
        auto info = (*p)->wait();
        CHECK(info.status == cp::Status::killed);
        CHECK_FALSE(alive(gc));
        CHECK_FALSE(alive(ggc));
        CHECK_FALSE(dir_exists(path));
        CHECK(info.accounting.accounted);
    }
    SECTION("timeout") {
        o.timeout = 300ms;
        auto p = svc->start(Context::background(), o);
        REQUIRE(p);
        auto [gc, ggc] = tree_pids(wait_output(*p, "tree "));
        const std::string path = (*p)->info().cgroup;
        auto info = (*p)->wait();
        CHECK(contains(info.error, "timed out"));
        CHECK_FALSE(alive(gc));
        CHECK_FALSE(alive(ggc));
        CHECK_FALSE(dir_exists(path));
    }
    SECTION("a SIGTERM-ignoring member: SIGKILL via cgroup.kill after the grace period") {
        auto p = svc->start(Context::background(), o);
        REQUIRE(p);
        auto [gc, ggc] = tree_pids(wait_output(*p, "tree "));
        // The leader ignores nothing, but its grandchildren get SIGTERM too: all must be gone.
        REQUIRE(svc->kill((*p)->id()));
        (*p)->wait();
        CHECK_FALSE(alive(gc));
        CHECK_FALSE(alive(ggc));
    }
    SECTION("the leader exits on its own: what is left is killed, run returns") {
        auto g = child({"grandchild", "60000"});
        g.cgroup = true;
        auto out = svc->run(Context::background(), g);
        REQUIRE(out);
        std::istringstream in(*out);
        std::string w;
        int gc = 0;
        in >> w >> gc;
        REQUIRE(gc > 0);
        CHECK_FALSE(alive(gc));
    }
}

// The state letter of /proc/PID/stat ('T' when stopped), or 0 when the pid is gone.
static char proc_state(int pid) {
    const std::string st = read_text("/proc/" + std::to_string(pid) + "/stat");
    const auto close = st.rfind(')');
    if (close == std::string::npos || close + 2 >= st.size()) return 0;
    return st[close + 2];
}

TEST_CASE("Cgroup_Signal_Good", "[process][cgroup]") {
    NEED_CGROUP(parent);
    CORE_LEAK_GUARD();
    SpawnMethodScope m(cp::SpawnMethod::clone3);
    auto c = make_core();
    auto svc = service(c);
    auto o = child({"setsid-tree", "60000"});
    o.cgroup = true;
    o.grace_period = 200ms;
    auto p = svc->start(Context::background(), o);
    REQUIRE(p);
    auto [gc, ggc] = tree_pids(wait_output(*p, "tree "));
    REQUIRE(gc > 0);
    // A member in another session, stopped: only the cgroup reaches it.
    REQUIRE(::kill(gc, SIGSTOP) == 0);
    REQUIRE(core::test::eventually([&] { return proc_state(gc) == 'T'; }));
    SECTION("SIGCONT reaches every member, not only the leader's group") {
        REQUIRE((*p)->signal(SIGCONT));
        CHECK(core::test::eventually([&] { return proc_state(gc) != 'T'; }));
    }
    SECTION("kill: a stopped member is continued and gone with the tree") {
        REQUIRE((*p)->kill());
        (*p)->wait();
        CHECK_FALSE(alive(gc));
        CHECK_FALSE(alive(ggc));
    }
    (void)(*p)->kill();
    (*p)->wait();
}

TEST_CASE("Cgroup_Shutdown_Good", "[process][cgroup]") {
    NEED_CGROUP(parent);
    CORE_LEAK_GUARD();
    SpawnMethodScope m(cp::SpawnMethod::clone3);
    int gc = 0, ggc = 0;
    std::string path;
    {
        auto c = make_core();
        auto svc = service(c);
        auto o = child({"setsid-tree", "60000"});
        o.cgroup = true;
        o.grace_period = 200ms;
        auto p = svc->start(Context::background(), o);
        REQUIRE(p);
        std::tie(gc, ggc) = tree_pids(wait_output(*p, "tree "));
        path = (*p)->info().cgroup;
        REQUIRE(c->shutdown(Context::background()));
    }
    CHECK_FALSE(alive(gc));
    CHECK_FALSE(alive(ggc));
    CHECK_FALSE(dir_exists(path));
}

TEST_CASE("Cgroup_Accounting_Good", "[process][cgroup]") {
    NEED_CGROUP(parent);
    CORE_LEAK_GUARD();
    SpawnMethodScope m(cp::SpawnMethod::clone3);
    auto c = make_core();
    auto svc = service(c);
    auto o = child({"lines", "20000"});
    o.cgroup = true;
    auto p = svc->start(Context::background(), o);
    REQUIRE(p);
    auto info = (*p)->wait();
    CHECK(info.status == cp::Status::exited);
    CHECK(info.accounting.accounted);
    CHECK(info.accounting.cpu_usage.count() > 0);
    CHECK(info.accounting.oom_kills == 0);
    CHECK_FALSE(info.cgroup.empty());
    CHECK_FALSE(dir_exists(info.cgroup));
}

TEST_CASE("Cgroup_Limits_Bad", "[process][cgroup]") {
    NEED_CGROUP(parent);
    CORE_LEAK_GUARD();
    SpawnMethodScope m(cp::SpawnMethod::clone3);
    auto c = make_core();
    auto svc = service(c);
    struct Case {
        const char* controller;
        const char* option;
        void (*set)(cp::Limits&);
    };
    const Case cases[] = {
        {"memory", "memoryMax", [](cp::Limits& l) { l.memory_max = 64u << 20; }},
        {"pids", "pidsMax", [](cp::Limits& l) { l.pids_max = 10; }},
        {"cpu", "cpuMax", [](cp::Limits& l) { l.cpu_max = 0.5; }},
        {"io", "ioWeight", [](cp::Limits& l) { l.io_weight = 100; }},
    };
    int checked = 0;
    for (const auto& k : cases) {
        if (has_controller(parent, k.controller)) continue;  // Cgroup_Limits_Good runs it
        ++checked;
        auto o = child({"print", "x"});
        k.set(o.limits);
        auto before = core::sys::file::list_dir(parent);
        auto r = svc->run(Context::background(), o);
        REQUIRE_FALSE(r);
        INFO(r.error().what());
        CHECK(r.error().code() == EOPNOTSUPP);
        CHECK(contains(r.error().what(), std::string("the ") + k.controller + " controller"));
        CHECK(contains(r.error().what(), "cgroup " + parent));
        CHECK(contains(r.error().what(), std::string("\"") + k.option + "\""));
        auto after = core::sys::file::list_dir(parent);
        REQUIRE(before);
        REQUIRE(after);
        CHECK(ours(*before) == ours(*after));  // nothing created
    }
    if (checked == 0) SKIP("every controller is delegated here: nothing to refuse");
}

TEST_CASE("Cgroup_Limits_Good", "[process][cgroup]") {
    NEED_CGROUP(parent);
    CORE_LEAK_GUARD();
    SpawnMethodScope m(cp::SpawnMethod::clone3);
    auto c = make_core();
    auto svc = service(c);
    SECTION("memory.max: an allocation past it ends as an OOM kill with that reason") {
        if (!has_controller(parent, "memory"))
            SKIP("the memory controller is not delegated to " + parent +
                 " (cgroup.controllers: " + read_text(parent + "/cgroup.controllers") + ")");
        auto o = child({"alloc", "256"});
        o.limits.memory_max = 32u << 20;
        o.limits.memory_swap_max = 0;
        auto p = svc->start(Context::background(), o);
        REQUIRE(p);
        auto info = (*p)->wait();
        CHECK(info.status == cp::Status::killed);
        CHECK(info.error == "killed by the OOM killer: memory.max 32M");
        CHECK(info.accounting.oom_kills >= 1);
        CHECK(info.accounting.memory_peak > 0);
    }
    SECTION("pids.max: the fork past it is refused") {
        if (!has_controller(parent, "pids"))
            SKIP("the pids controller is not delegated to " + parent +
                 " (cgroup.controllers: " + read_text(parent + "/cgroup.controllers") + ")");
        auto o = child({"forks", "10"});
        o.limits.pids_max = 4;
        auto r = svc->run(Context::background(), o);
        REQUIRE(r);
        CHECK(*r == "3\n");
    }
}

TEST_CASE("Cgroup_PosixSpawn_Bad", "[process][cgroup]") {
    NEED_CGROUP(parent);
    CORE_LEAK_GUARD();
    SpawnMethodScope m(cp::SpawnMethod::posix_spawn);
    auto c = make_core();
    auto svc = service(c);
    auto before = core::sys::file::list_dir(parent);
    auto o = child({"print", "x"});
    o.cgroup = true;
    auto r = svc->run(Context::background(), o);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == ENOTSUP);
    CHECK(contains(r.error().what(), "cgroup: not supported on the posix_spawn path"));
    auto after = core::sys::file::list_dir(parent);
    REQUIRE(before);
    REQUIRE(after);
    CHECK(ours(*before) == ours(*after));  // the cgroup made for it is removed again
}

TEST_CASE("Cgroup_Fault_Bad", "[process][cgroup]") {
    NEED_CGROUP(parent);
    CORE_LEAK_GUARD();
    SpawnMethodScope m(cp::SpawnMethod::clone3);
    auto c = make_core();
    auto svc = service(c);
    auto o = child({"print", "x"});
    o.cgroup = true;
    SECTION("mkdir") {
        Scoped f("mkdir", EACCES);
        auto r = svc->run(Context::background(), o);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == EACCES);
        CHECK(contains(r.error().what(), "mkdir: " + parent + "/core-process-"));
    }
    SECTION("openat") {
        Scoped f("openat", EMFILE);
        auto r = svc->run(Context::background(), o);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == EMFILE);
    }
    SECTION("clone3 into the cgroup") {
        Scoped f("clone3", EBUSY);
        auto r = svc->run(Context::background(), o);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == EBUSY);
        CHECK(contains(r.error().what(), "clone3 into the cgroup"));
        CHECK(std::string(cp::spawn_method()) == "clone3");  // not switched over for it
    }
    SECTION("cgroup.events unreadable at the end: still finished, bounded") {
        Scoped f("cgroup_read", EIO, -1);
        auto r = svc->run(Context::background(), o);
        CHECK(r);
    }
    SECTION("rmdir: the directory is left, the run still succeeds") {
        Scoped f("rmdir", EBUSY, 1);
        auto r = svc->run(Context::background(), o);
        CHECK(r);
    }
    CHECK(svc->list().empty());
    auto ok = svc->run(Context::background(), o);
    CHECK(ok);
}
