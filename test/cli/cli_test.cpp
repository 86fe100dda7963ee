// coreproc end to end: the tool is spawned through the library itself (the process Service,
// output captured) and judged by its exit code, its output and what it leaves behind. Waits are
// on events (the ManagedProcess's wait) or on conditions with deadlines, never fixed sleeps.
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <map>
#include <sstream>

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
#include <nlohmann/json.hpp>

#include "core/process/health.hpp"
#include "core/process/managed_process.hpp"
#include "core/process/service.hpp"
#include "guard.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::ContainsSubstring;
using core::Context;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string child() {
    return core::test::child_path();
}

// A started Core with the process service, through which coreproc is spawned.
struct Cli {
    std::shared_ptr<core::Core> core;
    core::process::Service* svc = nullptr;

    struct Out {
        int code = -1;       // exit code, or 128+N when killed by signal N
        std::string output;  // coreproc's stdout and stderr, combined
    };

    Cli() {
        REQUIRE(core::test::coreproc_path()[0] != '\0');
        auto c = core::Core::create({core::process::register_service});
        REQUIRE(c);
        core = *c;
        REQUIRE(core->startup(Context::background()));
        svc = core->service<core::process::Service>("process").get();
    }
    ~Cli() { (void)core->shutdown(Context::background()); }

    std::shared_ptr<core::process::ManagedProcess> start(std::vector<std::string> args) {
        core::process::RunOptions o;
        o.command = core::test::coreproc_path();
        o.args = std::move(args);
        auto mp = svc->start(Context::background(), o);
        REQUIRE(mp);
        return *mp;
    }
    static Out finish(const std::shared_ptr<core::process::ManagedProcess>& mp) {
        // coreproc always ends by itself; the deadline only turns a hang into a failure.
        if (!mp->wait_for(60s)) {
            (void)mp->signal(SIGKILL);
            FAIL("coreproc did not end within 60s; output so far:\n" << mp->output());
        }
        const auto info = mp->wait();
        Out out;
        out.code =
            info.status == core::process::Status::exited ? info.exit_code : 128 + info.signal;
        out.output = mp->output();
        return out;
    }
    Out run(std::vector<std::string> args) { return finish(start(std::move(args))); }
};

// A file in a fresh temporary directory, removed with it.
struct TempDir {
    fs::path path;
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "cli-test-XXXXXX").string();
        REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string write(const std::string& name, const std::string& text) const {
        const fs::path p = path / name;
        std::ofstream(p) << text;
        return p.string();
    }
};

bool pid_gone(int pid) {
    // Gone, or a zombie of someone else's waiting to be reaped by init.
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(f, line)) return true;
    const auto close = line.rfind(')');
    return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

// Every "pid N" the output mentions is gone (no daemon or child outlived coreproc).
bool all_pids_gone(const std::string& output) {
    const std::regex pid_re("pid ([0-9]+)");
    for (auto it = std::sregex_iterator(output.begin(), output.end(), pid_re);
         it != std::sregex_iterator(); ++it) {
        const int pid = std::stoi((*it)[1]);
        if (!core::test::eventually([&] { return pid_gone(pid); }, 10s)) {
            UNSCOPED_INFO("pid " << pid << " is still there");
            return false;
        }
    }
    return true;
}

json parse_json(const std::string& text) {
    auto j = json::parse(text, nullptr, false);
    INFO("output: " << text);
    REQUIRE_FALSE(j.is_discarded());
    return j;
}

// A pipeline step running the helper child.
json step(const std::string& name, std::vector<std::string> args,
          std::vector<std::string> after = {}, bool allow_failure = false) {
    json s{{"name", name}, {"command", child()}, {"args", args}};
    if (!after.empty()) s["after"] = after;
    if (allow_failure) s["allow_failure"] = true;
    return s;
}

}  // namespace

TEST_CASE("Cli_Run_Good", "[cli]") {
    CORE_LEAK_GUARD();
    Cli cli;
    SECTION("exit 0 and the output, live") {
        auto r = cli.run({"run", "--", child(), "print", "hello", "world"});
        CHECK(r.code == 0);
        CHECK(r.output == "hello world\n");
    }
    SECTION("--env and --dir reach the command") {
        auto r = cli.run(
            {"run", "--env", "CLI_A=1", "--env", "CLI_B=two", "--", child(), "env", "CLI_B"});
        CHECK(r.code == 0);
        CHECK(r.output == "CLI_B=two\n");
        r = cli.run({"run", "--dir", "/", "--", child(), "cwd"});
        CHECK(r.code == 0);
        CHECK(r.output == "/\n");
    }
    SECTION("--json: a result document with the captured output") {
        auto r = cli.run({"run", "--json", "--", child(), "print", "hi"});
        CHECK(r.code == 0);
        json j = parse_json(r.output);
        CHECK(j["status"] == "exited");
        CHECK(j["exit_code"] == 0);
        CHECK(j["output"] == "hi\n");
        CHECK(j["args"] == json::array({"print", "hi"}));
        CHECK(j["pid"].get<int>() > 0);
    }
    SECTION("--json: stdout and stderr apart, with the CPU the child used") {
        auto r = cli.run({"run", "--json", "--", child(), "interleave", "2"});
        CHECK(r.code == 0);
        json j = parse_json(r.output);
        CHECK(j["stdout"] == "out 0\nout 1\n");
        CHECK(j["stderr"] == "err 0\nerr 1\n");
        CHECK(j.contains("user_cpu_ms"));
        CHECK(j["max_rss_bytes"].get<std::uint64_t>() > 0);
    }
}

TEST_CASE("Cli_RunStdin_Good", "[cli]") {
    CORE_LEAK_GUARD();
    Cli cli;
    SECTION("our stdin is the command's") {
        core::process::RunOptions o;
        o.command = core::test::coreproc_path();
        o.args = {"run", "--", child(), "echo"};
        o.std_in = core::process::Stdio::bytes("piped through\n");
        auto mp = cli.svc->start(Context::background(), o);
        REQUIRE(mp);
        auto r = Cli::finish(*mp);
        CHECK(r.code == 0);
        CHECK(r.output == "piped through\n");
    }
    SECTION("--stdin null: EOF at once, whatever our stdin is") {
        core::process::RunOptions o;
        o.command = core::test::coreproc_path();
        o.args = {"run", "--stdin", "null", "--", child(), "echo"};
        o.std_in = core::process::Stdio::pipe();  // never closed: a read would hang
        auto mp = cli.svc->start(Context::background(), o);
        REQUIRE(mp);
        auto r = Cli::finish(*mp);
        CHECK(r.code == 0);
        CHECK(r.output.empty());
    }
    SECTION("--stdin with a bad value is a usage error") {
        auto r = cli.run({"run", "--stdin", "pipe", "--", child(), "echo"});
        CHECK(r.code == 2);
    }
}

TEST_CASE("Cli_Run_Bad", "[cli]") {
    CORE_LEAK_GUARD();
    Cli cli;
    SECTION("the child's exit code") {
        CHECK(cli.run({"run", "--", child(), "exit", "3"}).code == 3);
        CHECK(cli.run({"run", "--", child(), "exit", "255"}).code == 255);
    }
    SECTION("killed by signal N: 128+N") {
        auto r = cli.run({"run", "--", child(), "kill-self", "9"});
        CHECK(r.code == 137);
        CHECK_THAT(r.output, ContainsSubstring("killed by signal 9 (SIGKILL)"));
        auto j = parse_json(cli.run({"run", "--json", "--", child(), "kill-self", "15"}).output);
        CHECK(j["status"] == "killed");
        CHECK(j["signal"] == 15);
    }
    SECTION("timeout: 124") {
        auto r = cli.run({"run", "--timeout", "200ms", "--", child(), "sleep", "30000"});
        CHECK(r.code == 124);
        CHECK_THAT(r.output, ContainsSubstring("timed out after 200ms"));
        auto j = parse_json(
            cli.run({"run", "--json", "--timeout", "100ms", "--", child(), "sleep", "30000"})
                .output);
        CHECK(j["status"] == "timeout");
        CHECK(j["timed_out"] == true);
    }
    SECTION("cannot start: 127 and one line on stderr") {
        auto r = cli.run({"run", "--", "/nonexistent/cli-test-command"});
        CHECK(r.code == 127);
        CHECK_THAT(r.output, ContainsSubstring("coreproc run: "));
        CHECK_THAT(r.output, ContainsSubstring("/nonexistent/cli-test-command"));
        CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
        r = cli.run({"run", "--dir", "/nonexistent-dir", "--", child(), "exit", "0"});
        CHECK(r.code == 127);
        CHECK_THAT(r.output, ContainsSubstring("/nonexistent-dir"));
    }
    SECTION("usage errors: 2") {
        auto r = cli.run({"run"});
        CHECK(r.code == 2);
        r = cli.run({"run", "--timeout", "soon", "--", child(), "exit", "0"});
        CHECK(r.code == 2);
        CHECK_THAT(r.output, ContainsSubstring("--timeout"));
        CHECK_THAT(r.output, ContainsSubstring("soon"));
        r = cli.run({"run", "--env", "NOEQUALS", "--", child(), "exit", "0"});
        CHECK(r.code == 2);
        CHECK_THAT(r.output, ContainsSubstring("NOEQUALS"));
        CHECK(cli.run({}).code == 2);
        CHECK(cli.run({"frobnicate"}).code == 2);
        CHECK(cli.run({"--help"}).code == 0);
    }
}

TEST_CASE("Cli_Run_Ugly", "[cli]") {
    CORE_LEAK_GUARD();
    Cli cli;
    SECTION("timeout with --kill-group takes the grandchild holding the pipe too") {
        auto r = cli.run({"run", "--kill-group", "--timeout", "300ms", "--", child(),
                          "grandchild-wait", "30000"});
        CHECK(r.code == 124);
        std::smatch m;
        REQUIRE(std::regex_search(r.output, m, std::regex("gc ([0-9]+)")));
        const int gc = std::stoi(m[1]);
        CHECK(core::test::eventually([&] { return pid_gone(gc); }, 10s));
    }
    SECTION("SIGTERM to coreproc stops the child (SIGTERM, then SIGKILL after --grace)") {
        auto mp = cli.start({"run", "--grace", "200ms", "--", child(), "ignore-term", "30000"});
        REQUIRE(core::test::eventually(
            [&] { return mp->output().find("ready") != std::string::npos; }, 10s));
        REQUIRE(mp->signal(SIGTERM));
        auto r = Cli::finish(mp);
        CHECK(r.code == 137);  // the child ignored SIGTERM and was killed
    }
}

TEST_CASE("Cli_Pipeline_Good", "[cli]") {
    CORE_LEAK_GUARD();
    Cli cli;
    TempDir dir;
    json p{{"steps",
            {step("fetch", {"print", "fetched"}), step("build", {"print", "built"}, {"fetch"}),
             step("test", {"exit", "0"}, {"build"}), step("lint", {"exit", "0"})}}};
    const std::string file = dir.write("ok.json", p.dump());
    SECTION("live states, the summary table, exit 0") {
        auto r = cli.run({"pipeline", file});
        CHECK(r.code == 0);
        CHECK_THAT(r.output, ContainsSubstring("build"));
        CHECK_THAT(r.output, ContainsSubstring("started"));
        CHECK_THAT(r.output, ContainsSubstring("STEP"));
        CHECK_THAT(r.output, ContainsSubstring("4 steps: 4 passed, 0 failed, 0 skipped"));
        // fetch finished before build started.
        CHECK(r.output.find("fetch  passed") < r.output.find("build  started"));
    }
    SECTION("--json and --sequential") {
        auto r = cli.run({"pipeline", "--json", "--sequential", file});
        CHECK(r.code == 0);
        json j = parse_json(r.output);
        CHECK(j["ok"] == true);
        CHECK(j["passed"] == 4);
        CHECK(j["steps"][0]["name"] == "fetch");
        CHECK(j["steps"][0]["output"] == "fetched\n");
    }
}

TEST_CASE("Cli_Pipeline_Bad", "[cli]") {
    CORE_LEAK_GUARD();
    Cli cli;
    TempDir dir;
    SECTION("a failing step fails the pipeline, an allowed failure does not") {
        json p{{"steps",
                {step("prepare", {"exit", "0"}), step("flaky", {"exit", "1"}, {"prepare"}, true),
                 step("after-flaky", {"print", "ran"}, {"flaky"}), step("broken", {"exit", "5"}),
                 step("after-broken", {"exit", "0"}, {"broken"})}}};
        auto r = cli.run({"pipeline", "--json", dir.write("p.json", p.dump())});
        CHECK(r.code == 1);
        json j = parse_json(r.output);
        CHECK(j["ok"] == false);
        CHECK(j["passed"] == 2);
        CHECK(j["failed"] == 2);
        CHECK(j["allowed_failures"] == 1);
        CHECK(j["skipped"] == 1);
        CHECK(j["steps"][1]["status"] == "failed");
        CHECK(j["steps"][1]["allowed_failure"] == true);
        CHECK(j["steps"][2]["status"] == "passed");
        CHECK(j["steps"][3]["exit_code"] == 5);
        CHECK(j["steps"][4]["status"] == "skipped");

        // The same without the hard failure: only the allowed one fails, exit 0.
        json ok{{"steps",
                 {step("prepare", {"exit", "0"}), step("flaky", {"exit", "1"}, {"prepare"}, true),
                  step("after-flaky", {"print", "ran"}, {"flaky"})}}};
        r = cli.run({"pipeline", dir.write("ok.json", ok.dump())});
        CHECK(r.code == 0);
        CHECK_THAT(r.output, ContainsSubstring("failed (allowed)"));
        CHECK_THAT(r.output, ContainsSubstring("1 failed (1 allowed)"));
    }
    SECTION("bad files: exit 2 and a message naming the file and the key") {
        auto r = cli.run({"pipeline", (dir.path / "missing.json").string()});
        CHECK(r.code == 2);
        CHECK_THAT(r.output, ContainsSubstring("missing.json"));
        CHECK_THAT(r.output, ContainsSubstring("No such file or directory"));

        const std::string typo = dir.write(
            "typo.json", R"({"steps": [{"name": "a", "command": "true", "allow_faliure": true}]})");
        r = cli.run({"pipeline", typo});
        CHECK(r.code == 2);
        CHECK_THAT(r.output, ContainsSubstring(typo + ": steps[0] (\"a\"): key \"allow_faliure\""));

        const std::string cycle =
            dir.write("cycle.json", R"({"steps": [{"name": "a", "command": "true", "after": "b"},
                                        {"name": "b", "command": "true", "after": "a"}]})");
        r = cli.run({"pipeline", cycle});
        CHECK(r.code == 2);
        CHECK_THAT(r.output, ContainsSubstring("dependency cycle"));

        r = cli.run({"pipeline", dir.write("broken.json", "{\"steps\": [")});
        CHECK(r.code == 2);
        CHECK_THAT(r.output, ContainsSubstring("invalid JSON"));
    }
}

TEST_CASE("Cli_Supervise_Good", "[cli]") {
    CORE_LEAK_GUARD();
    Cli cli;
    TempDir dir;
    const std::string registry = (dir.path / "registry").string();
    json cfg{{"daemons",
              {{{"name", "steady"},
                {"command", child()},
                {"args", {"sleep", "60000"}},
                {"restart", "always"},
                {"stop_timeout", "2s"}},
               {{"name", "crasher"},
                {"command", child()},
                {"args", {"fail-after", "50", "3"}},
                {"restart", "on-failure"},
                {"backoff", {{"initial", "20ms"}, {"factor", 2}, {"max", "100ms"}, {"jitter", 0}}},
                {"start_limit", {{"burst", 1000}, {"interval", "10s"}}},
                {"stop_timeout", "2s"}}}}};
    const std::string file = dir.write("daemons.json", cfg.dump());
    auto mp = cli.start({"supervise", file, "--registry", registry});

    // The bound address is printed first.
    std::string addr;
    REQUIRE(core::test::eventually(
        [&] {
            std::smatch m;
            const std::string out = mp->output();
            if (!std::regex_search(out, m, std::regex("listening on http://([0-9.]+:[0-9]+)")))
                return false;
            addr = m[1];
            return true;
        },
        10s));

    // The crasher is restarted again and again; /status shows it (read with the library's
    // HTTP client).
    int steady_pid = 0;
    json status;
    const bool restarted = core::test::eventually(
        [&] {
            auto resp = core::process::http_get(addr, "/status", 2s);
            if (!resp || resp->status != 200) return false;
            status = json::parse(resp->body, nullptr, false);
            if (status.is_discarded()) return false;
            unsigned crasher_restarts = 0;
            for (const auto& d : status["daemons"]) {
                if (d["name"] == "crasher") crasher_restarts = d["restarts"].get<unsigned>();
                if (d["name"] == "steady" && d["state"] == "running")
                    steady_pid = d["pid"].get<int>();
            }
            return crasher_restarts >= 3 && steady_pid > 0;
        },
        15s);
    INFO("status: " << status.dump() << "\noutput: " << mp->output());
    REQUIRE(restarted);
    for (const auto& d : status["daemons"]) {
        if (d["name"] == "steady" && d["pid"] == steady_pid) {
            // Its memory and CPU now (issue 13): from /proc of the daemon without a cgroup.
            CHECK(d["memory_bytes"].is_number());
            CHECK(d["memory_bytes"].get<double>() > 0);
            CHECK(d["memory_source"] == "proc");
            CHECK(d["cpu_seconds"].is_number());
            CHECK(d["cpu_source"] == "proc");
        }
        if (d["name"] != "crasher") continue;
        if (!d["last_exit"].is_null()) CHECK(d["last_exit"]["code"] == 3);
    }
    auto health = core::process::http_get(addr, "/health", 2s);
    REQUIRE(health);
    CHECK(health->status == 200);
    // The crasher flaps, so between its runs not every restartable daemon is running: /ready
    // answers 503 then.
    CHECK(core::test::eventually(
        [&] {
            auto ready = core::process::http_get(addr, "/ready", 2s);
            return ready && ready->status == 503;
        },
        10s));
    CHECK(core::test::eventually([&] {
        return mp->output().find("daemon crasher: running -> backoff") != std::string::npos;
    }));

    // The registry has the steady daemon's entry; `coreproc daemons` lists it.
    auto listed = cli.run({"daemons", "--registry", registry, "--json"});
    CHECK(listed.code == 0);
    json entries = parse_json(listed.output);
    bool found = false;
    for (const auto& e : entries)
        if (e["daemon"] == "steady" && e["code"] == "coreproc") found = e["pid"] == steady_pid;
    CHECK(found);

    // SIGTERM: every daemon stopped, exit 0, nothing left.
    REQUIRE(mp->signal(SIGTERM));
    auto r = Cli::finish(mp);
    INFO("output: " << r.output);
    CHECK(r.code == 0);
    CHECK_THAT(r.output, ContainsSubstring("stopping every daemon"));
    CHECK(core::test::eventually([&] { return pid_gone(steady_pid); }, 10s));
    CHECK(all_pids_gone(r.output));  // every crasher incarnation too
    auto after = cli.run({"daemons", "--registry", registry, "--json"});
    CHECK(parse_json(after.output).empty());
}

TEST_CASE("Cli_Supervise_Bad", "[cli]") {
    CORE_LEAK_GUARD();
    Cli cli;
    TempDir dir;
    SECTION("missing file") {
        auto r = cli.run({"supervise", (dir.path / "nope.json").string()});
        CHECK(r.code == 2);
        CHECK_THAT(r.output, ContainsSubstring("nope.json"));
    }
    SECTION("invalid config: the file, the daemon and the key") {
        const std::string bad_restart = dir.write(
            "restart.json",
            R"({"daemons": [{"name": "web", "command": "sleep", "restart": "sometimes"}]})");
        auto r = cli.run({"supervise", bad_restart});
        CHECK(r.code == 2);
        CHECK_THAT(r.output, ContainsSubstring("restart.json"));
        CHECK_THAT(r.output, ContainsSubstring("restart"));
        CHECK_THAT(r.output, ContainsSubstring("sometimes"));

        const std::string no_command = dir.write("nocmd.json", R"({"daemons": [{"name": "web"}]})");
        r = cli.run({"supervise", no_command});
        CHECK(r.code == 2);
        CHECK_THAT(r.output, ContainsSubstring("command"));

        const std::string bad_duration = dir.write(
            "dur.json",
            R"({"daemons": [{"name": "web", "command": "sleep", "stop_timeout": "forever"}]})");
        r = cli.run({"supervise", bad_duration});
        CHECK(r.code == 2);
        CHECK_THAT(r.output, ContainsSubstring("stop_timeout"));

        r = cli.run({"supervise", dir.write("empty.json", R"({"daemons": []})")});
        CHECK(r.code == 2);
    }
    SECTION("an address that cannot be listened on") {
        const std::string ok = dir.write(
            "ok.json", R"({"daemons": [{"name": "web", "command": "sleep", "args": ["60"]}]})");
        auto r = cli.run({"supervise", ok, "--listen", "not-an-address"});
        CHECK(r.code == 2);
        CHECK_THAT(r.output, ContainsSubstring("not-an-address"));
    }
}

TEST_CASE("Cli_Daemons_Good", "[cli]") {
    CORE_LEAK_GUARD();
    Cli cli;
    TempDir dir;
    auto r = cli.run({"daemons", "--registry", dir.path.string()});
    CHECK(r.code == 0);
    CHECK_THAT(r.output, ContainsSubstring("no live daemons"));
    r = cli.run({"daemons", "--registry", dir.path.string(), "--json"});
    CHECK(r.code == 0);
    CHECK(parse_json(r.output) == json::array());
}

TEST_CASE("Cli_Demo_Good", "[cli]") {
    CORE_LEAK_GUARD();
    Cli cli;
    TempDir dir;
    auto r = cli.run({"demo", "--registry", dir.path.string()});
    INFO("output: " << r.output);
    CHECK(r.code == 0);
    CHECK_THAT(r.output, ContainsSubstring("daemon flaky: "));
    CHECK_THAT(r.output, ContainsSubstring("-> failed"));
    CHECK_THAT(r.output, ContainsSubstring("pipeline ok"));
    CHECK_THAT(r.output, ContainsSubstring("process.kill"));
    CHECK_THAT(r.output, ContainsSubstring("0 process(es) were still running at shutdown"));
    CHECK(all_pids_gone(r.output));
    // The demo's daemons are gone: the registry it used holds no live entry.
    auto listed = cli.run({"daemons", "--registry", dir.path.string(), "--json"});
    CHECK(parse_json(listed.output).empty());
}

// ---------------------------------------------------------------- issue 14 (helper B): never
// orphan on a closed stdout/stderr or SIGHUP, reload on SIGHUP, daemons' log files

namespace {

// A TCP port on 127.0.0.1 where nothing listens now (bound then closed).
int free_port() {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(s);
    return ntohs(a.sin_port);
}

// /status of a supervisor, or a discarded json when it does not answer.
json status_of(const std::string& addr) {
    auto resp = core::process::http_get(addr, "/status", 2s);
    if (!resp || resp->status != 200) return json(json::value_t::discarded);
    return json::parse(resp->body, nullptr, false);
}

// name → pid of every daemon that is running.
std::map<std::string, int> running_pids(const json& status) {
    std::map<std::string, int> out;
    if (status.is_discarded()) return out;
    for (const auto& d : status["daemons"])
        if (d["state"] == "running") out[d["name"].get<std::string>()] = d["pid"].get<int>();
    return out;
}

json daemon_cfg(const std::string& name, std::vector<std::string> args) {
    return json{{"name", name},
                {"command", child()},
                {"args", args},
                {"restart", "always"},
                {"stop_timeout", "2s"}};
}

// The pids whose parent is pid.
std::vector<int> children_of(int pid) {
    std::vector<int> out;
    for (const auto& e : fs::directory_iterator("/proc")) {
        const std::string n = e.path().filename().string();
        if (n.empty() || !std::isdigit(static_cast<unsigned char>(n[0]))) continue;
        std::ifstream f(e.path() / "stat");
        std::string line;
        if (!std::getline(f, line)) continue;
        const auto close = line.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream rest(line.substr(close + 2));
        std::string state;
        int ppid = 0;
        rest >> state >> ppid;
        if (ppid == pid) out.push_back(std::stoi(n));
    }
    return out;
}

}  // namespace

// --- pipelines for real work and a CLI that fits the shell (issue 17) ---

namespace {

// coreproc started with a working directory of its own (the pipeline file lives elsewhere).
std::shared_ptr<core::process::ManagedProcess> start_in(Cli& cli, const std::string& cwd,
                                                        std::vector<std::string> args) {
    core::process::RunOptions o;
    o.command = core::test::coreproc_path();
    o.args = std::move(args);
    o.dir = cwd;
    auto mp = cli.svc->start(Context::background(), o);
    REQUIRE(mp);
    return *mp;
}

json shell_step(const std::string& name, const std::string& line) {
    return json{{"name", name}, {"shell", line}};
}

std::string read_text(const std::string& path) {
    std::ifstream f(path);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// The long flags a `--help` text lists ("--dry-run", …).
std::vector<std::string> long_flags(const std::string& help) {
    std::vector<std::string> out;
    const std::regex flag_re("(^|[ ,])(--[a-z][a-z-]+)");
    for (auto it = std::sregex_iterator(help.begin(), help.end(), flag_re);
         it != std::sregex_iterator(); ++it)
        out.push_back((*it)[2]);
    return out;
}

}  // namespace

TEST_CASE("Cli_Supervise_Ugly", "[cli]") {
    CORE_LEAK_GUARD();
    Cli cli;
    TempDir dir;
    const std::string registry = (dir.path / "registry").string();
    json cfg{{"daemons",
              {daemon_cfg("steady", {"sleep", "60000"}),
               {{"name", "crasher"},
                {"command", child()},
                {"args", {"fail-after", "30", "3"}},
                {"backoff", {{"initial", "10ms"}, {"max", "20ms"}, {"jitter", 0}}},
                {"start_limit", {{"burst", 0}}},
                {"stop_timeout", "2s"}}}}};
    const std::string file = dir.write("d.json", cfg.dump());
    const std::string addr = "127.0.0.1:" + std::to_string(free_port());
    const std::string mode = GENERATE(as<std::string>{}, "dead-stdout", "dead-stderr");
    INFO(mode);
    // -v: the state changes are logged on stderr too, so each stream is written all along.
    core::process::RunOptions o;
    o.command = child();
    o.args = {mode,     core::test::coreproc_path(),
              "-v",     "supervise",
              file,     "--registry",
              registry, "--listen",
              addr};
    auto sup = cli.svc->start(Context::background(), o);
    REQUIRE(sup);
    // Alive after many writes to the dead pipe: the crasher's restarts are each a line.
    json st;
    const bool alive = core::test::eventually(
        [&] {
            st = status_of(addr);
            if (st.is_discarded()) return false;
            for (const auto& d : st["daemons"])
                if (d["name"] == "crasher" && d["restarts"].get<unsigned>() >= 5) return true;
            return false;
        },
        20s);
    INFO("status: " << st.dump() << "\noutput: " << (*sup)->output());
    REQUIRE(alive);
    const auto pids = running_pids(st);
    REQUIRE(pids.count("steady"));
    REQUIRE((*sup)->signal(SIGTERM));
    auto r = Cli::finish(*sup);
    INFO("output: " << r.output);
    CHECK(r.code == 0);
    CHECK(core::test::eventually([&] { return pid_gone(pids.at("steady")); }, 10s));
}

TEST_CASE("Cli_SuperviseReload_Good", "[cli]") {
    CORE_LEAK_GUARD();
    Cli cli;
    TempDir dir;
    const std::string registry = (dir.path / "registry").string();
    json cfg{{"daemons",
              {daemon_cfg("same", {"sleep", "60000"}), daemon_cfg("changes", {"sleep", "60000"}),
               daemon_cfg("goes", {"sleep", "60000"})}}};
    const std::string file = dir.write("r.json", cfg.dump());
    const std::string addr = "127.0.0.1:" + std::to_string(free_port());
    auto mp = cli.start({"supervise", file, "--registry", registry, "--listen", addr});
    std::map<std::string, int> before;
    REQUIRE(core::test::eventually(
        [&] {
            before = running_pids(status_of(addr));
            return before.size() == 3;
        },
        15s));

    // SIGHUP with a file that does not parse: nothing changes, the failure is reported.
    dir.write("r.json", "{\"daemons\": [");
    REQUIRE(mp->signal(SIGHUP));
    REQUIRE(core::test::eventually(
        [&] { return mp->output().find("reload failed") != std::string::npos; }, 10s));
    json st = status_of(addr);
    CHECK(running_pids(st) == before);
    CHECK(st["reload"]["ok"] == false);

    json next{{"daemons",
               {daemon_cfg("same", {"sleep", "60000"}), daemon_cfg("changes", {"sleep", "50000"}),
                daemon_cfg("new", {"sleep", "60000"})}}};
    dir.write("r.json", next.dump());
    REQUIRE(mp->signal(SIGHUP));
    std::map<std::string, int> after;
    const bool applied = core::test::eventually(
        [&] {
            after = running_pids(status_of(addr));
            return after.size() == 3 && after.count("new") && !after.count("goes") &&
                   after.count("changes") && after["changes"] != before["changes"];
        },
        15s);
    INFO("output: " << mp->output());
    REQUIRE(applied);
    CHECK(after["same"] == before["same"]);
    CHECK(pid_gone(before["goes"]));
    // /status's "reload" is written once apply() has returned, just after the last start.
    CHECK(core::test::eventually([&] {
        st = status_of(addr);
        return !st.is_discarded() && st["reload"].is_object() && st["reload"]["ok"] == true;
    }));
    CHECK(st["reload"]["added"] == json{"new"});
    CHECK(
        core::test::eventually([&] { return mp->output().find("reloaded") != std::string::npos; }));

    REQUIRE(mp->signal(SIGTERM));
    auto r = Cli::finish(mp);
    CHECK(r.code == 0);
    for (const auto& [name, pid] : after)
        CHECK(core::test::eventually([&] { return pid_gone(pid); }));
}

TEST_CASE("Cli_SuperviseLogs_Good", "[cli]") {
    CORE_LEAK_GUARD();
    Cli cli;
    TempDir dir;
    const std::string registry = (dir.path / "state" / "registry").string();
    json cfg{{"daemons",
              {{{"name", "web"},
                {"command", child()},
                {"args", {"print-fail", "OSError: [Errno 98] Address already in use"}},
                {"restart", "no"}},
               {{"name", "own"},
                {"command", child()},
                {"args", {"print", "hello"}},
                {"restart", "no"},
                {"log", {{"file", (dir.path / "own.txt").string()}, {"timestamps", true}}}}}}};
    const std::string file = dir.write("logs.json", cfg.dump());
    const std::string addr = "127.0.0.1:" + std::to_string(free_port());
    auto mp = cli.start({"supervise", file, "--registry", registry, "--listen", addr});
    // The default log directory is beside the registry: <registry>/../logs/<file stem>.
    const fs::path web_log = dir.path / "state" / "logs" / "logs" / "web.log";
    json st;
    const bool failed = core::test::eventually(
        [&] {
            st = status_of(addr);
            if (st.is_discarded()) return false;
            for (const auto& d : st["daemons"])
                if (d["name"] == "web" && d["state"] == "failed") return true;
            return false;
        },
        15s);
    INFO("status: " << st.dump() << "\noutput: " << mp->output());
    REQUIRE(failed);
    for (const auto& d : st["daemons"]) {
        if (d["name"] != "web") continue;
        CHECK(d["last_lines"].back() == "OSError: [Errno 98] Address already in use");
        CHECK(d["log"]["path"] == web_log.string());
    }
    // The state is visible in /status a moment before the supervisor's own line reaches its
    // stdout (and our capture of it).
    CHECK(core::test::eventually([&] {
        return mp->output().find(
                   "failed: exited with code 1: OSError: [Errno 98] Address "
                   "already in use") != std::string::npos;
    }));
    INFO("output: " << mp->output());
    CHECK(core::test::eventually([&] {
        std::ifstream f(web_log);
        std::string line;
        return std::getline(f, line) && line == "OSError: [Errno 98] Address already in use";
    }));
    CHECK(core::test::eventually([&] {
        std::ifstream f(dir.path / "own.txt");
        std::string line;
        return std::getline(f, line) && line.size() > 25 &&
               line.substr(line.size() - 6) == " hello";
    }));
    REQUIRE(mp->signal(SIGTERM));
    CHECK(Cli::finish(mp).code == 0);
}

TEST_CASE("Cli_RunSignal_Ugly", "[cli]") {
    CORE_LEAK_GUARD();
    Cli cli;
    TempDir dir;
    SECTION("run: SIGHUP stops the command as SIGTERM does") {
        auto mp = cli.start({"run", "--", child(), "sleep", "60000"});
        std::vector<int> kids;
        REQUIRE(core::test::eventually([&] {
            kids = children_of(mp->pid());
            return !kids.empty();
        }));
        REQUIRE(mp->signal(SIGHUP));
        auto r = Cli::finish(mp);
        INFO("output: " << r.output);
        CHECK(r.code != 0);
        for (int pid : kids) CHECK(core::test::eventually([&] { return pid_gone(pid); }));
    }
    SECTION("pipeline: SIGHUP stops the running steps") {
        json p{{"steps", {step("long", {"sleep", "60000"})}}};
        const std::string file = dir.write("p.json", p.dump());
        auto mp = cli.start({"pipeline", file});
        std::vector<int> kids;
        REQUIRE(core::test::eventually([&] {
            kids = children_of(mp->pid());
            return !kids.empty();
        }));
        REQUIRE(mp->signal(SIGHUP));
        auto r = Cli::finish(mp);
        INFO("output: " << r.output);
        CHECK(r.code == 128 + SIGHUP);
        for (int pid : kids) CHECK(core::test::eventually([&] { return pid_gone(pid); }));
    }
    SECTION("run: a dead stdout does not kill coreproc before its command ends") {
        core::process::RunOptions o;
        o.command = child();
        o.args = {
            "dead-stdout", core::test::coreproc_path(), "run", "--json", "--", child(), "print",
            "hi"};
        auto mp = cli.svc->start(Context::background(), o);
        REQUIRE(mp);
        auto r = Cli::finish(*mp);
        CHECK(r.code == 0);  // not 141 (SIGPIPE)
    }
}

namespace {

// Processes whose command line is exactly argv (as /proc/<pid>/cmdline says), zombies aside.
std::vector<int> processes_with(const std::vector<std::string>& argv) {
    std::string want;
    for (const auto& a : argv) want += a + '\0';
    std::vector<int> out;
    for (const auto& e : fs::directory_iterator("/proc")) {
        const std::string n = e.path().filename().string();
        if (n.empty() || !std::isdigit(static_cast<unsigned char>(n[0]))) continue;
        std::ifstream f(e.path() / "cmdline");
        std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        if (cmd == want && !pid_gone(std::stoi(n))) out.push_back(std::stoi(n));
    }
    return out;
}

}  // namespace

TEST_CASE("Cli_SuperviseSurvivors_Ugly", "[cli]") {
    CORE_LEAK_GUARD();
    Cli cli;
    TempDir dir;
    const std::string registry = (dir.path / "registry").string();
    // A sleep length no other test uses: the daemon's command line is its fingerprint.
    const std::string ms = std::to_string(600000 + ::getpid() % 1000);
    json cfg{{"daemons", {daemon_cfg("only", {"sleep", ms})}}};
    const std::string file = dir.write("s.json", cfg.dump());
    const std::vector<std::string> argv{child(), "sleep", ms};
    int last_pid = 0;
    // Twenty in a row, as the issue asks: a race between the state file and the spawn shows
    // only now and then.
    constexpr int rounds = 20;
    for (int round = 0; round < rounds; ++round) {
        INFO("round " << round);
        const std::string addr = "127.0.0.1:" + std::to_string(free_port());
        auto mp = cli.start({"supervise", file, "--registry", registry, "--listen", addr});
        std::map<std::string, int> pids;
        REQUIRE(core::test::eventually(
            [&] {
                pids = running_pids(status_of(addr));
                return pids.count("only") && pids["only"] != last_pid;
            },
            15s));
        // Exactly one copy: the one the earlier (killed) supervisor left was stopped first.
        CHECK(core::test::eventually([&] { return processes_with(argv).size() == 1; }));
        CHECK(processes_with(argv) == std::vector<int>{pids["only"]});
        if (round > 0) {
            CHECK(pid_gone(last_pid));
            CHECK_THAT(mp->output(), ContainsSubstring("left running by an earlier supervisor"));
        }
        last_pid = pids["only"];
        // The state file records it (written right after the spawn).
        const fs::path state = dir.path / "logs" / "s" / "supervisor.state";
        CHECK(core::test::eventually([&] {
            std::ifstream f(state);
            std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
            return text.find("\"pid\": " + std::to_string(last_pid)) != std::string::npos;
        }));
        if (round < rounds - 1) {
            REQUIRE(mp->signal(SIGKILL));  // no chance to stop anything
            (void)Cli::finish(mp);
            CHECK_FALSE(pid_gone(last_pid));  // the survivor
        } else {
            REQUIRE(mp->signal(SIGTERM));
            CHECK(Cli::finish(mp).code == 0);
        }
    }
    CHECK(core::test::eventually([&] { return processes_with(argv).empty(); }));
    for (int pid : processes_with(argv)) ::kill(pid, SIGKILL);  // a failed run leaves none
}

TEST_CASE("Cli_PipelineOutput_Good", "[cli][pipeline]") {
    CORE_LEAK_GUARD();
    Cli cli;
    TempDir dir;
    SECTION("a step's lines appear, prefixed with its name, while it still runs") {
        const std::string fifo = (dir.path / "go").string();
        REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
        json p{{"steps", {step("slow", {"print-fifo", "early line", fifo})}}};
        auto mp = cli.start({"pipeline", dir.write("p.json", p.dump())});
        REQUIRE(core::test::eventually(
            [&] { return mp->output().find("slow | early line") != std::string::npos; }, 20s));
        CHECK(mp->output().find("slow  passed") == std::string::npos);  // still running
        {
            std::ofstream go(fifo);  // opening the FIFO lets the step end
        }
        auto r = Cli::finish(mp);
        CHECK(r.code == 0);
        CHECK(r.output.find("slow | early line") < r.output.find("slow  passed"));
        // Not a terminal: plain lines, no escape sequences.
        CHECK(r.output.find('\x1b') == std::string::npos);
    }
    SECTION("passed steps' output by default; --quiet: failures and the summary only") {
        json p{{"steps",
                {step("hello", {"print", "hello-output"}),
                 step("oops", {"output-exit", "4", "0"}, {"hello"})}}};
        const std::string file = dir.write("q.json", p.dump());
        auto r = cli.run({"pipeline", file});
        CHECK(r.code == 1);
        CHECK_THAT(r.output, ContainsSubstring("hello | hello-output"));
        CHECK_THAT(r.output, ContainsSubstring("oops  | END"));
        r = cli.run({"pipeline", "--quiet", file});
        CHECK(r.code == 1);
        CHECK_THAT(r.output, !ContainsSubstring("hello-output"));
        CHECK_THAT(r.output, !ContainsSubstring("started"));
        CHECK_THAT(r.output, ContainsSubstring("oops   failed"));
        CHECK_THAT(r.output, ContainsSubstring("2 steps: 1 passed, 1 failed, 0 skipped"));
        CHECK_THAT(r.output, ContainsSubstring("--- oops (failed), last lines of output"));
    }
    SECTION("--json: RFC 3339 start and end times, null start for a skipped step") {
        json p{{"steps", {step("a", {"exit", "1"}), step("b", {"exit", "0"}, {"a"})}}};
        auto r = cli.run({"pipeline", "--json", dir.write("j.json", p.dump())});
        CHECK(r.code == 1);
        json j = parse_json(r.output);
        const std::regex rfc3339(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
        CHECK(std::regex_match(j["steps"][0]["started_at"].get<std::string>(), rfc3339));
        CHECK(std::regex_match(j["steps"][0]["finished_at"].get<std::string>(), rfc3339));
        CHECK(j["steps"][0]["started_at"] <= j["steps"][0]["finished_at"]);
        CHECK(j["steps"][1]["started_at"].is_null());
        CHECK(std::regex_match(j["steps"][1]["finished_at"].get<std::string>(), rfc3339));
    }
}

TEST_CASE("Cli_PipelineView_Good", "[cli][pipeline]") {
    CORE_LEAK_GUARD();
    Cli cli;
    TempDir dir;
    // script(1) gives coreproc a pseudo-terminal as stdout: the live view draws (escape
    // sequences, the progress count) and the summary follows it.
    json p{{"steps", {step("one", {"print", "from-one"}), step("two", {"exit", "0"}, {"one"})}}};
    const std::string file = dir.write("tty.json", p.dump());
    core::process::RunOptions o;
    o.command = "script";
    o.args = {"-qfec", std::string(core::test::coreproc_path()) + " pipeline " + file, "/dev/null"};
    o.env = {"TERM=xterm", "NO_COLOR="};
    auto mp = cli.svc->start(Context::background(), o);
    REQUIRE(mp);
    auto r = Cli::finish(*mp);
    CHECK(r.code == 0);
    CHECK_THAT(r.output, ContainsSubstring("\x1b["));
    CHECK_THAT(r.output, ContainsSubstring("running"));
    CHECK_THAT(r.output, ContainsSubstring("from-one"));
    CHECK_THAT(r.output, ContainsSubstring("2 steps: 2 passed, 0 failed, 0 skipped"));
    SECTION("--plain on a terminal: no live view") {
        o.args[1] += " --plain";
        auto mp2 = cli.svc->start(Context::background(), o);
        REQUIRE(mp2);
        auto r2 = Cli::finish(*mp2);
        CHECK(r2.code == 0);
        CHECK(r2.output.find('\x1b') == std::string::npos);
        CHECK_THAT(r2.output, !ContainsSubstring("running,"));
    }
}

TEST_CASE("Cli_PipelineDefaults_Good", "[cli][pipeline]") {
    CORE_LEAK_GUARD();
    Cli cli;
    TempDir dir;
    fs::create_directory(dir.path / "work");
    json p{
        {"description", "defaults, file-relative dirs, shell"},
        {"defaults", {{"dir", "work"}, {"env", {{"CLI_D", "from-defaults"}}}, {"timeout", "20s"}}},
        {"steps",
         {step("where", {"cwd"}), step("env", {"env", "CLI_D"}),
          json{{"name", "over"},
               {"command", child()},
               {"args", {"env", "CLI_D"}},
               {"env", {{"CLI_D", "from-step"}}},
               {"dir", "/"},
               {"description", "a step's own dir and env win"}},
          shell_step("shell", "echo $((40 + 2)) >&2")}}};
    const std::string file = dir.write("d.json", p.dump());
    // From another working directory: "work" still means the one beside the file.
    auto r = Cli::finish(start_in(cli, "/", {"pipeline", "--json", file}));
    REQUIRE(r.code == 0);
    json j = parse_json(r.output);
    CHECK(j["steps"][0]["output"] == fs::canonical(dir.path / "work").string() + "\n");
    CHECK(j["steps"][1]["output"] == "CLI_D=from-defaults\n");
    CHECK(j["steps"][2]["output"] == "CLI_D=from-step\n");
    CHECK(j["steps"][2]["description"] == "a step's own dir and env win");
    CHECK(j["steps"][3]["output"] == "42\n");
    CHECK(j["steps"][3]["command"] == "/bin/sh");
}

TEST_CASE("Cli_PipelineDefaults_Bad", "[cli][pipeline]") {
    CORE_LEAK_GUARD();
    Cli cli;
    TempDir dir;
    SECTION("an empty pipeline is an error") {
        const std::string file = dir.write("empty.json", R"({"steps": []})");
        auto r = cli.run({"pipeline", file});
        CHECK(r.code == 2);
        CHECK_THAT(r.output,
                   ContainsSubstring("coreproc pipeline: " + file + ": key \"steps\": empty"));
    }
    SECTION("shell with command; bad defaults; the prefix says each thing once") {
        const std::string both = dir.write(
            "both.json", R"({"steps": [{"name": "a", "shell": "true", "command": "true"}]})");
        auto r = cli.run({"pipeline", both});
        CHECK(r.code == 2);
        CHECK_THAT(r.output, ContainsSubstring("steps[0] (\"a\"): key \"shell\": not with"));
        CHECK_THAT(r.output, !ContainsSubstring("pipeline: pipeline"));
        const std::string bad = dir.write(
            "bad.json",
            R"({"defaults": {"timeout": "soon"}, "steps": [{"name": "a", "command": "x"}]})");
        r = cli.run({"pipeline", bad});
        CHECK(r.code == 2);
        CHECK_THAT(r.output,
                   ContainsSubstring(bad + ": defaults: key \"timeout\": not a duration"));
        const std::string unknown = dir.write(
            "unk.json", R"({"defaults": {"cwd": "/"}, "steps": [{"name": "a", "command": "x"}]})");
        r = cli.run({"pipeline", unknown});
        CHECK(r.code == 2);
        CHECK_THAT(r.output, ContainsSubstring("defaults: key \"cwd\": unknown key"));
    }
}

TEST_CASE("Cli_PipelineTargets_Good", "[cli][pipeline]") {
    CORE_LEAK_GUARD();
    Cli cli;
    TempDir dir;
    json p{{"steps",
            {step("configure", {"exit", "0"}), step("build", {"exit", "0"}, {"configure"}),
             step("check", {"exit", "0"}, {"build"}), step("docs", {"exit", "0"})}}};
    const std::string file = dir.write("t.json", p.dump());
    SECTION("a target runs with its dependencies only") {
        auto r = cli.run({"pipeline", "--json", file, "build"});
        CHECK(r.code == 0);
        json j = parse_json(r.output);
        REQUIRE(j["steps"].size() == 2);
        CHECK(j["steps"][0]["name"] == "configure");
        CHECK(j["steps"][1]["name"] == "build");
    }
    SECTION("--dry-run prints the order and runs nothing") {
        auto r = cli.run({"pipeline", "--dry-run", file, "check", "docs"});
        CHECK(r.code == 0);
        CHECK_THAT(r.output, ContainsSubstring("4 steps"));
        // Row starts, not bare words: the step's command is a path that may contain
        // "build" or "check" (CI checks out under /check/.../build).
        const auto row = [&](const std::string& n, const std::string& name) {
            return r.output.find("\n" + n + "  " + name);
        };
        CHECK(row("1", "configure") != std::string::npos);
        CHECK(row("1", "configure") < row("2", "build"));
        CHECK(row("2", "build") < row("3", "check"));
        CHECK(row("3", "check") < row("4", "docs"));
        CHECK_THAT(r.output, !ContainsSubstring("started"));
        r = cli.run({"pipeline", "--dry-run", "--json", file});
        json j = parse_json(r.output);
        REQUIRE(j["order"].size() == 4);
        CHECK(j["order"][1]["name"] == "build");
        CHECK(j["order"][3]["name"] == "docs");  // ready ones in file order
    }
    SECTION("an unknown target: exit 2, named") {
        auto r = cli.run({"pipeline", file, "chekc"});
        CHECK(r.code == 2);
        CHECK_THAT(r.output,
                   ContainsSubstring("coreproc pipeline: " + file + ": unknown step \"chekc\""));
        CHECK_THAT(r.output, !ContainsSubstring("pipeline: pipeline"));
    }
}

TEST_CASE("Cli_PipelineFailFast_Good", "[cli][pipeline]") {
    CORE_LEAK_GUARD();
    Cli cli;
    TempDir dir;
    // Two workers: "long" and "bad" run, "queued" waits for a free worker.
    json p{{"steps",
            {step("long", {"sleep", "30000"}), step("bad", {"fail-after", "100", "1"}),
             step("queued", {"exit", "0"})}}};
    const std::string file = dir.write("ff.json", p.dump());
    auto r = cli.run({"pipeline", "--json", "--fail-fast", "-j", "2", file});
    CHECK(r.code == 1);
    json j = parse_json(r.output);
    CHECK(j["steps"][0]["status"] == "failed");
    CHECK_THAT(j["steps"][0]["error"].get<std::string>(),
               ContainsSubstring("fail-fast: step \"bad\" failed"));
    CHECK(j["steps"][0]["duration_ms"].get<double>() < 25000);
    CHECK(j["steps"][1]["exit_code"] == 1);
    CHECK(j["steps"][2]["status"] == "skipped");
    CHECK_THAT(j["steps"][2]["error"].get<std::string>(),
               ContainsSubstring("not started: fail-fast"));
}

TEST_CASE("Cli_Flags_Good", "[cli]") {
    CORE_LEAK_GUARD();
    Cli cli;
    TempDir dir;
    SECTION("-v and -vv before or after the subcommand") {
        json p{{"steps", {step("a", {"exit", "0"})}}};
        const std::string file = dir.write("v.json", p.dump());
        CHECK(cli.run({"-v", "pipeline", file}).code == 0);
        CHECK(cli.run({"pipeline", file, "-v"}).code == 0);
        CHECK(cli.run({"pipeline", "-vv", file}).code == 0);
        CHECK(cli.run({"run", "-v", "--", child(), "exit", "0"}).code == 0);
        CHECK(cli.run({"daemons", "-v", "--registry", (dir.path / "reg").string()}).code == 0);
    }
    SECTION("--version: the meson project version") {
        auto r = cli.run({"--version"});
        CHECK(r.code == 0);
        CHECK(std::regex_search(r.output, std::regex(R"(^coreproc \d+\.\d+\.\d+\n$)")));
    }
    SECTION("every subcommand's --help has an example") {
        for (const char* sub : {"run", "pipeline", "supervise", "daemons", "demo"}) {
            INFO(sub);
            auto r = cli.run({sub, "--help"});
            CHECK(r.code == 0);
            CHECK_THAT(r.output, ContainsSubstring("Example"));
            CHECK_THAT(r.output, ContainsSubstring(std::string("coreproc ") + sub));
        }
    }
}

TEST_CASE("Cli_Completion_Good", "[cli]") {
    CORE_LEAK_GUARD();
    Cli cli;
    const std::string bash_file = std::string(COREPROC_COMPLETION_DIR) + "/coreproc.bash";
    const std::string zsh_file = std::string(COREPROC_COMPLETION_DIR) + "/_coreproc";
    SECTION("the bash file parses and registers the completion") {
        core::process::RunOptions o;
        o.command = "bash";
        o.args = {"-n", bash_file};
        auto mp = cli.svc->start(Context::background(), o);
        REQUIRE(mp);
        auto r = Cli::finish(*mp);
        CHECK(r.code == 0);
        CHECK(r.output.empty());
        o.args = {"--norc", "-c", "source \"$0\" && complete -p coreproc", bash_file};
        mp = cli.svc->start(Context::background(), o);
        REQUIRE(mp);
        r = Cli::finish(*mp);
        CHECK(r.code == 0);
        CHECK(r.output == "complete -F _coreproc coreproc\n");
    }
    SECTION("the zsh file parses (zsh is no build dependency: checked where installed)") {
        if (!fs::exists("/usr/bin/zsh") && !fs::exists("/bin/zsh")) return;
        core::process::RunOptions o;
        o.command = "zsh";
        o.args = {"-n", zsh_file};
        auto mp = cli.svc->start(Context::background(), o);
        REQUIRE(mp);
        auto r = Cli::finish(*mp);
        CHECK(r.code == 0);
        CHECK(r.output.empty());
    }
    SECTION("both files know every long flag of every subcommand") {
        const std::string bash_text = read_text(bash_file);
        const std::string zsh_text = read_text(zsh_file);
        REQUIRE_FALSE(bash_text.empty());
        REQUIRE_FALSE(zsh_text.empty());
        for (const char* sub : {"run", "pipeline", "supervise", "daemons", "demo"}) {
            CHECK_THAT(bash_text, ContainsSubstring(sub));
            CHECK_THAT(zsh_text, ContainsSubstring(sub));
            const auto help = cli.run({sub, "--help"}).output;
            for (const auto& flag : long_flags(help)) {
                INFO(sub << " " << flag);
                CHECK_THAT(bash_text, ContainsSubstring(flag));
                CHECK_THAT(zsh_text, ContainsSubstring(flag));
            }
        }
        for (const auto& flag : long_flags(cli.run({"--help"}).output)) {
            INFO(flag);
            CHECK_THAT(bash_text, ContainsSubstring(flag));
            CHECK_THAT(zsh_text, ContainsSubstring(flag));
        }
    }
}
