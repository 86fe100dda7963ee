// `coreproc supervise` as a container's init and towards a Type=notify manager (issue 15 §2-3):
// in a new pid namespace (`unshare --pid --fork --mount-proc`, skipped with its reason where it
// is refused) a daemon that double-forks 100 times leaves no zombie, and SIGTERM to PID 1 stops
// everything with exit 0; --subreaper does the same without a namespace; and a fake manager's
// NOTIFY_SOCKET gets READY=1 and, at the stop, STOPPING=1. coreproc is spawned through the
// library; the test reads the kernel's view in /proc.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch_test_macros.hpp>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

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

std::string slurp(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

struct TmpDir {
    std::string path;
    TmpDir() {
        std::string tmpl = (fs::temp_directory_path() / "cli-init-XXXXXX").string();
        REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TmpDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

struct Host {
    std::shared_ptr<core::Core> core;
    std::shared_ptr<core::process::Service> svc;
    Host() {
        auto c = core::Core::create({core::process::register_service});
        REQUIRE(c);
        core = *c;
        REQUIRE(core->startup(Context::background()));
        svc = core->service<core::process::Service>("process");
    }
    ~Host() { (void)core->shutdown(Context::background()); }
};

// A supervise file with one daemon: the child helper in `args`.
std::string write_file(const TmpDir& dir, const std::vector<std::string>& args,
                       bool notify = false) {
    // restart "no" for the init tests; a notify daemon counts for coreproc's READY=1 only with
    // another policy.
    std::string a;
    for (const auto& x : args) a += (a.empty() ? "\"" : ", \"") + x + "\"";
    const std::string path = dir.path + "/daemons.json";
    std::ofstream(path) << R"({"daemons":[{"name":"d","command":")" << core::test::child_path()
                        << R"(","args":[)" << a << "],\"restart\":\""
                        << (notify ? "on-failure" : "no") << R"(","stop_timeout":"5s")"
                        << (notify ? R"(,"notify":true)" : "") << "}]}";
    return path;
}

std::vector<std::string> supervise_args(const TmpDir& dir, const std::string& file) {
    return {"supervise",       file,       "--log-dir",           dir.path + "/logs", "--registry",
            dir.path + "/reg", "--socket", dir.path + "/ctl.sock"};
}

// A manager's end of NOTIFY_SOCKET: an abstract datagram socket.
struct FakeManager {
    int fd = -1;
    std::string address;
    FakeManager() {
        std::random_device rd;
        address = "@core-init-test-" + std::to_string(rd()) + "-" + std::to_string(rd());
        fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::memcpy(sa.sun_path + 1, address.data() + 1, address.size() - 1);
        const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), len) == 0);
    }
    ~FakeManager() { ::close(fd); }
    // Datagrams until one contains `want`, within the deadline; all of them, joined.
    std::string until(const std::string& want, std::chrono::milliseconds deadline = 20s) {
        std::string seen;
        const auto end = std::chrono::steady_clock::now() + deadline;
        while (seen.find(want) == std::string::npos) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                end - std::chrono::steady_clock::now());
            if (left.count() <= 0) break;
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
            char buf[4096];
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n > 0) seen += std::string(buf, static_cast<std::size_t>(n)) + "|";
        }
        return seen;
    }
};

}  // namespace

TEST_CASE("Init_Pid1_Good", "[cli][init]") {
    CORE_LEAK_GUARD();
    Host host;
    {
        // Can this machine make a pid namespace? (root, or unprivileged user namespaces.)
        core::process::RunOptions probe;
        probe.command = "unshare";
        probe.args = {"--pid", "--fork", "--mount-proc", "true"};
        auto r = host.svc->run(Context::background(), probe);
        if (!r) SKIP("unshare --pid --fork --mount-proc refused here: " << r.error().what());
    }
    TmpDir dir;
    const std::string file = write_file(dir, {"f-orphans", "100"});
    core::process::RunOptions o;
    o.command = "unshare";
    o.args = {"--pid", "--fork", "--mount-proc", core::test::coreproc_path()};
    for (auto& a : supervise_args(dir, file)) o.args.push_back(a);
    auto started = host.svc->start(Context::background(), o);
    REQUIRE(started);
    auto mp = *started;

    // unshare's child is PID 1 of the namespace: coreproc.
    int init = 0;
    REQUIRE(core::test::eventually(
        [&] {
            auto kids = children_of(mp->pid(), false);
            if (kids.size() == 1) init = *kids.begin();
            return init != 0;
        },
        20s));
    const std::string log = dir.path + "/logs/d.log";
    REQUIRE(core::test::eventually(
        [&] { return slurp(log).find("orphaned 100") != std::string::npos; }, 30s));
    INFO(mp->output());
    // 100 orphans came to PID 1 and exited; none is left a zombie.
    CHECK(core::test::eventually([&] { return children_of(init, true).empty(); }, 20s));
    const auto daemons = children_of(init, false);
    CHECK(daemons.size() == 1);  // the daemon itself, alive

    REQUIRE(::kill(init, SIGTERM) == 0);
    REQUIRE(mp->wait_for(30s));
    const auto info = mp->wait();
    CHECK(info.status == core::process::Status::exited);
    CHECK(info.exit_code == 0);  // what a container runtime expects after a clean stop
    for (int pid : daemons) CHECK(stat_of(pid).state == '?');
}

TEST_CASE("Init_Subreaper_Good", "[cli][init]") {
    CORE_LEAK_GUARD();
    Host host;
    TmpDir dir;
    const std::string file = write_file(dir, {"f-orphans", "20"});
    core::process::RunOptions o;
    o.command = core::test::coreproc_path();
    o.args = supervise_args(dir, file);
    o.args.push_back("--subreaper");
    auto started = host.svc->start(Context::background(), o);
    REQUIRE(started);
    auto mp = *started;
    const std::string log = dir.path + "/logs/d.log";
    REQUIRE(core::test::eventually(
        [&] { return slurp(log).find("orphaned 20") != std::string::npos; }, 30s));
    INFO(mp->output());
    CHECK(core::test::eventually([&] { return children_of(mp->pid(), true).empty(); }, 20s));
    REQUIRE(mp->signal(SIGTERM));
    REQUIRE(mp->wait_for(30s));
    CHECK(mp->wait().exit_code == 0);
}

TEST_CASE("Init_NotifyParent_Good", "[cli][init]") {
    CORE_LEAK_GUARD();
    Host host;
    TmpDir dir;
    FakeManager manager;
    // The daemon speaks the protocol too, to its own (private) socket: coreproc is ready only
    // once it said READY=1; and it must not see coreproc's NOTIFY_SOCKET.
    const std::string file = write_file(dir, {"f-notify", "sleep:200", "READY=1"}, true);
    core::process::RunOptions o;
    o.command = core::test::coreproc_path();
    o.args = supervise_args(dir, file);
    o.env = {"NOTIFY_SOCKET=" + manager.address};
    auto started = host.svc->start(Context::background(), o);
    REQUIRE(started);
    auto mp = *started;
    const std::string got = manager.until("READY=1");
    INFO(got << "\n" << mp->output());
    CHECK(got.find("READY=1") != std::string::npos);
    CHECK(got.find("STATUS=1 of 1 daemons up") != std::string::npos);
    REQUIRE(mp->signal(SIGTERM));
    const std::string bye = manager.until("STOPPING=1");
    CHECK(bye.find("STOPPING=1") != std::string::npos);
    REQUIRE(mp->wait_for(30s));
    CHECK(mp->wait().exit_code == 0);
}

namespace {

// The [Service] keys of the README's sample unit (the ```ini block).
std::map<std::string, std::string> readme_unit() {
    const std::string text = slurp(COREPROC_README);
    const auto begin = text.find("```ini\n");
    REQUIRE(begin != std::string::npos);
    const auto end = text.find("```", begin + 7);
    REQUIRE(end != std::string::npos);
    std::istringstream in(text.substr(begin + 7, end - begin - 7));
    std::map<std::string, std::string> keys;
    std::string line, section;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        if (line[0] == '[') {
            section = line;
            continue;
        }
        const auto eq = line.find('=');
        if (section == "[Service]" && eq != std::string::npos)
            keys[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return keys;
}

std::vector<std::string> words(const std::string& s) {
    std::istringstream in(s);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

}  // namespace

// The README's sample unit, run the way systemd runs it (there is no systemd here): its
// ExecStart with NOTIFY_SOCKET and WATCHDOG_USEC set, Type=notify (started once READY=1 comes),
// WatchdogSec (WATCHDOG=1 arrives; the period is shortened to 2 s for the test), ExecReload
// with $MAINPID (RELOADING=1, then READY=1 again), and KillMode=mixed (SIGTERM to the main
// process only; it must stop its daemons itself well within TimeoutStopSec, or systemd would
// SIGKILL them).
TEST_CASE("Init_SystemdUnit_Good", "[cli][init]") {
    CORE_LEAK_GUARD();
    const auto unit = readme_unit();
    REQUIRE(unit.count("ExecStart"));
    CHECK(unit.at("Type") == "notify");
    CHECK(unit.at("KillMode") == "mixed");
    CHECK(unit.at("ExecReload") == "/bin/kill -HUP $MAINPID");
    REQUIRE(unit.count("TimeoutStopSec"));
    REQUIRE(unit.count("WatchdogSec"));
    const auto stop_limit = std::chrono::seconds(std::stoi(unit.at("TimeoutStopSec")));

    Host host;
    TmpDir dir;
    FakeManager manager;
    const std::string file = write_file(dir, {"sleep", "600000"});
    // ExecStart, with this build's coreproc and file, a free port, and this test's directories.
    auto argv = words(unit.at("ExecStart"));
    REQUIRE(argv.size() >= 3);
    CHECK(argv[0] == "/usr/local/bin/coreproc");
    CHECK(argv[1] == "supervise");
    core::process::RunOptions o;
    o.command = core::test::coreproc_path();
    for (std::size_t i = 1; i < argv.size(); ++i) {
        std::string a = argv[i];
        if (a == "/etc/coreproc/daemons.json") a = file;
        if (a.rfind("127.0.0.1:", 0) == 0) a = "127.0.0.1:0";
        o.args.push_back(a);
    }
    CHECK(std::find(o.args.begin(), o.args.end(), file) != o.args.end());
    for (const auto& a : supervise_args(dir, file))
        if (a != "supervise" && a != file) o.args.push_back(a);
    o.env = {"NOTIFY_SOCKET=" + manager.address, "WATCHDOG_USEC=2000000"};
    auto started = host.svc->start(Context::background(), o);
    REQUIRE(started);
    auto mp = *started;
    const int main_pid = mp->pid();

    const std::string up = manager.until("READY=1");
    INFO(up << "\n" << mp->output());
    REQUIRE(up.find("READY=1") != std::string::npos);
    CHECK(up.find("STATUS=1 of 1 daemons up") != std::string::npos);
    const auto daemons = children_of(main_pid, false);
    REQUIRE(daemons.size() == 1);

    CHECK(manager.until("WATCHDOG=1", 10s).find("WATCHDOG=1") != std::string::npos);

    // ExecReload, $MAINPID substituted as systemd does.
    auto reload = words(unit.at("ExecReload"));
    for (auto& w : reload)
        if (w == "$MAINPID") w = std::to_string(main_pid);
    core::process::RunOptions r;
    r.command = reload[0];
    r.args.assign(reload.begin() + 1, reload.end());
    REQUIRE(host.svc->run(Context::background(), r));
    const std::string again = manager.until("RELOADING=1");
    CHECK(again.find("RELOADING=1") != std::string::npos);
    const auto after_reload = again.substr(again.find("RELOADING=1"));
    CHECK((after_reload.find("READY=1") != std::string::npos ||
           manager.until("READY=1").find("READY=1") != std::string::npos));
    CHECK(children_of(main_pid, false) == daemons);  // an unchanged file: the same daemon

    // KillMode=mixed: SIGTERM to the main process alone.
    REQUIRE(::kill(main_pid, SIGTERM) == 0);
    CHECK(manager.until("STOPPING=1").find("STOPPING=1") != std::string::npos);
    REQUIRE(mp->wait_for(stop_limit));
    CHECK(mp->wait().exit_code == 0);
    for (int pid : daemons) CHECK(gone(pid));  // nothing left for systemd's SIGKILL
}
