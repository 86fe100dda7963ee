// coreproc ctl end to end: a real `coreproc supervise` with its control socket in a private
// temporary directory, driven by `coreproc ctl` (both spawned through the library). Exit codes:
// 0 ok, 1 refused, 2 usage, 3 no supervisor.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
#include <nlohmann/json.hpp>

#include "core/process/control.hpp"
#include "core/process/process.hpp"
#include "guard.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::ContainsSubstring;
using nlohmann::json;
namespace cp = core::process;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "ctl-e2e-XXXXXX").string();
        REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string write(const std::string& name, const std::string& text) const {
        std::ofstream(path / name) << text;
        return (path / name).string();
    }
};

json daemon(const std::string& name, std::vector<std::string> args) {
    return json{{"name", name},
                {"command", core::test::child_path()},
                {"args", args},
                {"stop_timeout", "2s"}};
}

struct Tool {
    std::shared_ptr<core::Core> core;
    cp::Service* svc = nullptr;
    std::vector<std::string> env;  // XDG_RUNTIME_DIR for the name lookup

    struct Out {
        int code = -1;
        std::string output;
    };

    Tool() {
        REQUIRE(core::test::coreproc_path()[0] != '\0');
        auto c = core::Core::create({cp::register_service});
        REQUIRE(c);
        core = *c;
        REQUIRE(core->startup(core::Context::background()));
        svc = core->service<cp::Service>("process").get();
    }
    ~Tool() { (void)core->shutdown(core::Context::background()); }

    std::shared_ptr<cp::ManagedProcess> start(std::vector<std::string> args) {
        cp::RunOptions o;
        o.command = core::test::coreproc_path();
        o.args = std::move(args);
        o.env = env;
        auto mp = svc->start(core::Context::background(), o);
        REQUIRE(mp);
        return *mp;
    }
    static Out finish(const std::shared_ptr<cp::ManagedProcess>& mp) {
        if (!mp->wait_for(60s)) {
            (void)mp->signal(SIGKILL);
            FAIL("coreproc did not end within 60s: " << mp->output());
        }
        auto info = mp->wait();
        return Out{info.status == cp::Status::exited ? info.exit_code : 128 + info.signal,
                   mp->output()};
    }
    Out run(std::vector<std::string> args) { return finish(start(std::move(args))); }
};

// A supervisor with two daemons, its socket at dir/NAME.sock; waits for the socket.
struct Supervise {
    Tool& tool;
    std::shared_ptr<cp::ManagedProcess> mp;
    std::string sock;

    Supervise(Tool& t, const TempDir& dir, const std::string& name,
              std::vector<std::string> extra = {})
        : tool(t) {
        json cfg{{"daemons",
                  {daemon("a", {"c-tick", "100000", "20"}), daemon("b", {"sleep", "60000"})}}};
        const std::string file = dir.write(name + ".json", cfg.dump());
        std::vector<std::string> args{"supervise", file, "--registry",
                                      (dir.path / ("reg-" + name)).string()};
        args.insert(args.end(), extra.begin(), extra.end());
        mp = tool.start(args);
        REQUIRE(core::test::eventually(
            [&] {
                std::smatch m;
                const std::string out = mp->output();
                if (!std::regex_search(out, m, std::regex("control socket (\\S+)")))
                    return !mp->is_running();
                sock = m[1];
                return true;
            },
            20s));
        INFO(mp->output());
        REQUIRE_FALSE(sock.empty());
        // Both daemons up.
        REQUIRE(core::test::eventually(
            [&] {
                auto r = cp::ControlClient::unix_socket(sock).request("GET", "/daemons");
                if (!r || r->status != 200) return false;
                auto j = json::parse(r->body, nullptr, false);
                int up = 0;
                for (const auto& d : j) up += d["state"] == "running";
                return up == 2;
            },
            20s));
    }
    ~Supervise() {
        if (mp->is_running()) {
            (void)mp->signal(SIGTERM);
            auto r = Tool::finish(mp);
            CHECK(r.code == 0);
        }
    }
    int pid(const std::string& name) const {
        auto r = cp::ControlClient::unix_socket(sock).request("GET", "/daemons/" + name);
        REQUIRE(r);
        return json::parse(r->body).value("pid", 0);
    }
};

}  // namespace

TEST_CASE("Ctl_Commands_Good", "[control][cli]") {
    CORE_LEAK_GUARD();
    Tool tool;
    TempDir dir;
    const std::string run = (dir.path / "run").string();
    Supervise sup(tool, dir, "web", {"--socket", run + "/web.sock"});
    const std::vector<std::string> s{"ctl", "--socket", sup.sock};
    auto ctl = [&](std::vector<std::string> more) {
        std::vector<std::string> args = s;
        args.insert(args.end(), more.begin(), more.end());
        auto r = tool.run(args);
        INFO("ctl " << more[0] << ": " << r.output);
        return r;
    };

    SECTION("status, as a table and as JSON") {
        auto t = ctl({"status"});
        CHECK(t.code == 0);
        CHECK_THAT(t.output, ContainsSubstring("NAME"));
        CHECK_THAT(t.output, ContainsSubstring("running"));
        auto j = ctl({"--json", "status"});
        REQUIRE(j.code == 0);
        CHECK(json::parse(j.output).size() == 2);
    }
    SECTION("restart changes that daemon's pid only; stop and start") {
        const int a1 = sup.pid("a"), b1 = sup.pid("b");
        auto r = ctl({"restart", "a"});
        CHECK(r.code == 0);
        CHECK_THAT(r.output, ContainsSubstring("a: running"));
        CHECK(sup.pid("a") != a1);
        CHECK(sup.pid("b") == b1);
        CHECK(ctl({"stop", "b"}).code == 0);
        CHECK(sup.pid("b") == 0);
        CHECK(ctl({"start", "b"}).code == 0);
        CHECK(sup.pid("b") > 0);
    }
    SECTION("add a file's daemon, remove it") {
        const std::string f = dir.write("extra.json", daemon("c", {"sleep", "60000"}).dump());
        auto a = ctl({"add", f});
        CHECK(a.code == 0);
        CHECK_THAT(a.output, ContainsSubstring("added c"));
        CHECK(sup.pid("c") > 0);
        CHECK(ctl({"add", f}).code == 1);  // exists already
        CHECK(ctl({"remove", "c"}).code == 0);
        CHECK(ctl({"remove", "c"}).code == 1);
    }
    SECTION("logs: the tail, and following") {
        REQUIRE(core::test::eventually([&] {
            return ctl({"logs", "a", "-n", "3"}).output.find("tick 2") != std::string::npos;
        }));
        auto l = ctl({"logs", "a", "-n", "3"});
        CHECK(l.code == 0);
        CHECK(std::count(l.output.begin(), l.output.end(), '\n') == 3);
        // -f keeps going: stopped from here once it has printed more than the tail.
        auto f = tool.start({"ctl", "--socket", sup.sock, "logs", "a", "-f", "-n", "1"});
        CHECK(core::test::eventually([&] {
            const std::string out = f->output();
            return std::count(out.begin(), out.end(), '\n') >= 4;
        }));
        CHECK(f->is_running());
        (void)f->signal(SIGTERM);
        (void)Tool::finish(f);
    }
    SECTION("events: a state change arrives") {
        auto e = tool.start({"ctl", "--socket", sup.sock, "--json", "events"});
        CHECK(core::test::eventually(
            [&] {
                (void)ctl({"restart", "b"});
                return e->output().find("\"daemon.state\"") != std::string::npos;
            },
            20s));
        (void)e->signal(SIGTERM);
        (void)Tool::finish(e);
    }
    SECTION("the supervisor says no: exit 1 with its message") {
        auto r = ctl({"restart", "nope"});
        CHECK(r.code == 1);
        CHECK_THAT(r.output, ContainsSubstring("unknown daemon: nope"));
    }
    SECTION("reload: the file again, by name; a broken file is refused and changes nothing") {
        const int a_pid = sup.pid("a");
        auto ok = ctl({"reload"});
        CHECK(ok.code == 0);
        CHECK(sup.pid("a") == a_pid);  // unchanged: same pid
        dir.write("web.json", "{ not json");
        auto bad = ctl({"reload"});
        CHECK(bad.code == 1);
        CHECK_THAT(bad.output, ContainsSubstring("nothing changed"));
        CHECK(sup.pid("a") == a_pid);
    }
}

TEST_CASE("Ctl_Commands_Bad", "[control][cli]") {
    CORE_LEAK_GUARD();
    Tool tool;
    TempDir dir;
    SECTION("no supervisor: exit 3") {
        auto r = tool.run({"ctl", "--socket", (dir.path / "none.sock").string(), "status"});
        CHECK(r.code == 3);
        tool.env = {"XDG_RUNTIME_DIR=" + dir.path.string()};
        auto n = tool.run({"ctl", "status"});
        CHECK(n.code == 3);
        CHECK_THAT(n.output, ContainsSubstring("no supervisor found"));
    }
    SECTION("usage: exit 2") {
        CHECK(tool.run({"ctl", "--socket", "x", "frobnicate"}).code == 2);
        CHECK(tool.run({"ctl", "--socket", "x", "restart"}).code == 2);
        CHECK(tool.run({"ctl", "--socket", "x", "status", "extra"}).code == 2);
    }
}

TEST_CASE("Ctl_Names_Ugly", "[control][cli]") {
    CORE_LEAK_GUARD();
    Tool tool;
    TempDir dir;
    tool.env = {"XDG_RUNTIME_DIR=" + dir.path.string()};
    Supervise one(tool, dir, "alpha");
    CHECK(one.sock == (dir.path / "coreproc" / "alpha.sock").string());
    // The only one: found without --name.
    CHECK(tool.run({"ctl", "status"}).code == 0);
    SECTION("a second supervisor of the same name is refused, the first one untouched") {
        TempDir other;
        json cfg{{"daemons", {daemon("z", {"sleep", "60000"})}}};
        const std::string file = other.write("alpha.json", cfg.dump());
        auto r = tool.run({"supervise", file, "--registry", (other.path / "reg").string()});
        CHECK(r.code == 1);
        CHECK_THAT(r.output, ContainsSubstring("another supervisor is running as alpha"));
        CHECK(tool.run({"ctl", "--name", "alpha", "status"}).code == 0);
    }
    SECTION("two supervisors: ctl needs --name and lists them") {
        Supervise two(tool, dir, "beta");
        auto r = tool.run({"ctl", "status"});
        CHECK(r.code == 2);
        CHECK_THAT(r.output, ContainsSubstring("alpha beta"));
        CHECK(tool.run({"ctl", "--name", "beta", "status"}).code == 0);
    }
    SECTION("SIGTERM removes the socket") {
        (void)one.mp->signal(SIGTERM);
        CHECK(Tool::finish(one.mp).code == 0);
        CHECK_FALSE(fs::exists(one.sock));
        CHECK(tool.run({"ctl", "status"}).code == 3);
    }
}

// --- issue 14 leftovers (helper J): `ctl logs -f` follows the log file across rotation, the
// log drop and error counters in /metrics, and a full disk that never stops the daemon ---

namespace {

// A supervisor of one config, its control socket at dir/run/NAME.sock; waits for the socket.
struct SuperviseCfg {
    Tool& tool;
    std::shared_ptr<cp::ManagedProcess> mp;
    std::string sock;

    SuperviseCfg(Tool& t, const TempDir& dir, const std::string& name, const json& cfg,
                 std::vector<std::string> prefix = {})
        : tool(t) {
        const std::string file = dir.write(name + ".json", cfg.dump());
        std::vector<std::string> args{"supervise",  file,
                                      "--registry", (dir.path / ("reg-" + name)).string(),
                                      "--socket",   (dir.path / "run" / (name + ".sock")).string()};
        if (!prefix.empty()) {
            // The supervisor under another program (unshare): it comes first, coreproc after.
            cp::RunOptions o;
            o.command = prefix.front();
            o.args.assign(prefix.begin() + 1, prefix.end());
            o.args.push_back(core::test::coreproc_path());
            o.args.insert(o.args.end(), args.begin(), args.end());
            auto started = tool.svc->start(core::Context::background(), o);
            REQUIRE(started);
            mp = *started;
        } else {
            mp = tool.start(args);
        }
        REQUIRE(core::test::eventually(
            [&] {
                std::smatch m;
                const std::string out = mp->output();
                if (!std::regex_search(out, m, std::regex("control socket (\\S+)")))
                    return !mp->is_running();
                sock = m[1];
                return true;
            },
            20s));
        INFO(mp->output());
        if (prefix.empty()) REQUIRE_FALSE(sock.empty());  // else the caller decides (SKIP)
    }
    ~SuperviseCfg() {
        if (mp->is_running()) {
            (void)mp->signal(SIGTERM);
            (void)Tool::finish(mp);
        }
    }
    json daemon_status(const std::string& name) const {
        auto r = cp::ControlClient::unix_socket(sock).request("GET", "/daemons/" + name);
        if (!r || r->status != 200) return json();
        return json::parse(r->body, nullptr, false);
    }
    std::string metrics() const {
        auto r = cp::ControlClient::unix_socket(sock).request("GET", "/metrics");
        return r && r->status == 200 ? r->body : std::string();
    }
};

// The value of one sample line of a Prometheus text body; -1 when it is not there.
double sample(const std::string& body, const std::string& series) {
    std::istringstream in(body);
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
    return -1;
}

// The numbers N of "tick N" lines, in order.
std::vector<long> ticks(const std::string& text) {
    std::vector<long> out;
    const std::regex re("tick ([0-9]+)");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator();
         ++it)
        out.push_back(std::stol((*it)[1]));
    return out;
}

}  // namespace

TEST_CASE("Ctl_LogsFollow_Good", "[control][cli]") {
    CORE_LEAK_GUARD();
    Tool tool;
    TempDir dir;
    const std::string log = (dir.path / "logs" / "a.log").string();
    // A tick every 2 ms into a file rotated every 4 KiB (~500 lines): several rotations while
    // ctl follows.
    json d = daemon("a", {"c-tick", "100000000", "2"});
    d["log"] = {{"file", log}, {"max_size", 4096}, {"backups", 3}};
    SuperviseCfg sup(tool, dir, "follow", json{{"daemons", {d}}});
    REQUIRE(core::test::eventually([&] { return fs::exists(log); }, 20s));
    CHECK(sup.daemon_status("a")["log_path"] == log);

    auto f = tool.start({"ctl", "--socket", sup.sock, "logs", "a", "-f", "-n", "5"});
    // Until it has followed past two rotations (a .2 backup exists) and 300 lines more.
    REQUIRE(core::test::eventually([&] { return fs::exists(log + ".2"); }, 30s));
    const std::size_t seen = ticks(f->output()).size();
    REQUIRE(core::test::eventually([&] { return ticks(f->output()).size() >= seen + 300; }, 30s));
    CHECK(f->is_running());
    (void)f->signal(SIGTERM);
    (void)Tool::finish(f);
    const std::vector<long> got = ticks(f->output());
    REQUIRE(got.size() > 300);
    // No line lost and none repeated: consecutive numbers from the first to the last.
    long gaps = 0, dups = 0;
    for (std::size_t i = 1; i < got.size(); ++i) {
        if (got[i] <= got[i - 1]) ++dups;
        if (got[i] > got[i - 1] + 1) ++gaps;
    }
    INFO("first " << got.front() << ", last " << got.back() << ", " << got.size() << " lines");
    CHECK(gaps == 0);
    CHECK(dups == 0);
    CHECK(got.back() - got.front() + 1 == static_cast<long>(got.size()));
}

TEST_CASE("Ctl_LogMetrics_Ugly", "[control][cli]") {
    CORE_LEAK_GUARD();
    Tool tool;
    TempDir dir;
    SECTION("a log that cannot be written (/dev/full): counted, the daemon keeps running") {
        json d = daemon("a", {"c-tick", "100000000", "5"});
        d["log"] = {{"file", "/dev/full"}, {"max_size", 0}};
        SuperviseCfg sup(tool, dir, "full", json{{"daemons", {d}}});
        REQUIRE(core::test::eventually(
            [&] {
                return sample(sup.metrics(),
                              "coreproc_daemon_log_write_errors_total{daemon=\"a\"}") > 5;
            },
            20s));
        const json st = sup.daemon_status("a");
        CHECK(st["state"] == "running");
        CHECK(st["restarts"] == 0);
        const std::string m = sup.metrics();
        CHECK(sample(m, "coreproc_daemon_log_dropped_lines_total{daemon=\"a\"}") >= 0);
        CHECK(sample(m, "coreproc_log_write_errors_total") > 5);
        CHECK(m.find("# TYPE coreproc_daemon_log_write_errors_total counter") != std::string::npos);
        // The bus's own drops are there too (none here: nothing subscribes slowly).
        CHECK(m.find("# TYPE coreproc_events_dropped_lines_total counter") != std::string::npos);
        CHECK(sample(m, "coreproc_events_dropped_lines_total") == 0);
    }
    SECTION("a full disk (a 64 KiB tmpfs): counted, and the log resumes when space returns") {
        if (::geteuid() != 0 || !fs::exists("/usr/bin/unshare"))
            SKIP("needs root and unshare(1) to mount a private tmpfs");
        const fs::path mnt = dir.path / "small";
        fs::create_directories(mnt);
        json d = daemon("a", {"c-tick", "100000000", "2"});
        d["log"] = {{"file", (mnt / "a.log").string()}, {"max_size", 0}};
        // The supervisor in a mount namespace of its own, where `small` is a 64 KiB tmpfs that
        // a filler file nearly fills; the test reaches it through /proc/PID/root.
        const std::string setup = "mount -t tmpfs -o size=64k tmpfs '" + mnt.string() +
                                  "' && head -c 61440 /dev/zero > '" + (mnt / "filler").string() +
                                  "' && exec \"$@\"";
        SuperviseCfg sup(
            tool, dir, "tmpfs", json{{"daemons", {d}}},
            {"/usr/bin/unshare", "-m", "--propagation", "private", "/bin/sh", "-c", setup, "sh"});
        if (sup.sock.empty()) SKIP("could not mount a tmpfs: " << sup.mp->output());
        const std::string series = "coreproc_daemon_log_write_errors_total{daemon=\"a\"}";
        REQUIRE(core::test::eventually([&] { return sample(sup.metrics(), series) > 0; }, 30s));
        CHECK(sup.daemon_status("a")["state"] == "running");
        // Space returns: the writer carries on by itself.
        const fs::path inside = fs::path("/proc") / std::to_string(sup.mp->pid()) / "root";
        const fs::path filler = inside / fs::relative(mnt / "filler", "/");
        const fs::path logf = inside / fs::relative(mnt / "a.log", "/");
        REQUIRE(fs::remove(filler));
        const double errors = sample(sup.metrics(), series);
        const auto size0 = fs::file_size(logf);
        REQUIRE(core::test::eventually([&] { return fs::file_size(logf) > size0 + 1000; }, 30s));
        // Written again, and (with the space freed) no new errors for what it wrote.
        CHECK(sample(sup.metrics(), series) >= errors);
        CHECK(sup.daemon_status("a")["state"] == "running");
        CHECK(sup.daemon_status("a")["restarts"] == 0);
    }
}
