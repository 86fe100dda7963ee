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
    CHECK_THAT(mp->output(), ContainsSubstring("daemon crasher: running -> backoff"));

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
    o.args = {mode, core::test::coreproc_path(), "-v", "supervise", file, "--registry", registry,
              "--listen", addr};
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

TEST_CASE("Cli_Supervise_Reload_Good", "[cli]") {
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
    CHECK(core::test::eventually(
        [&] { return mp->output().find("reloaded") != std::string::npos; }));

    REQUIRE(mp->signal(SIGTERM));
    auto r = Cli::finish(mp);
    CHECK(r.code == 0);
    for (const auto& [name, pid] : after) CHECK(core::test::eventually([&] { return pid_gone(pid); }));
}

TEST_CASE("Cli_Supervise_Logs_Good", "[cli]") {
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
    CHECK_THAT(mp->output(),
               ContainsSubstring("failed: exited with code 1: OSError: [Errno 98] Address "
                                 "already in use"));
    CHECK(core::test::eventually([&] {
        std::ifstream f(web_log);
        std::string line;
        return std::getline(f, line) && line == "OSError: [Errno 98] Address already in use";
    }));
    CHECK(core::test::eventually([&] {
        std::ifstream f(dir.path / "own.txt");
        std::string line;
        return std::getline(f, line) && line.size() > 25 && line.substr(line.size() - 6) == " hello";
    }));
    REQUIRE(mp->signal(SIGTERM));
    CHECK(Cli::finish(mp).code == 0);
}

TEST_CASE("Cli_Run_Signal_Ugly", "[cli]") {
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
        o.args = {"dead-stdout", core::test::coreproc_path(), "run", "--json", "--", child(),
                  "print", "hi"};
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

TEST_CASE("Cli_Supervise_Survivors_Ugly", "[cli]") {
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
    for (int round = 0; round < 3; ++round) {
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
        if (round < 2) {
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
