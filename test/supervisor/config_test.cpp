// The `coreproc supervise` file reader: defaults, every key, and an error naming the key for
// each kind of mistake.
#include <unistd.h>
#include <catch2/catch_test_macros.hpp>

#include <cstdio>
#include <fstream>

#include "core/process/supervisor.hpp"
#include "guard.hpp"

using namespace std::chrono_literals;
using core::process::load_supervise_config;
using core::process::parse_supervise_config;
using core::process::RestartPolicy;

namespace {

std::string error_of(const std::string& text) {
    auto r = parse_supervise_config(text, "test.json");
    if (r) return "";
    return r.error().what();
}

bool has(const std::string& hay, const std::string& needle) {
    return hay.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("Config_Parse_Good", "[supervisor]") {
    CORE_LEAK_GUARD();
    SECTION("every key") {
        auto r = parse_supervise_config(R"({
          "_comment": "two daemons",
          "daemons": [
            {"name": "web", "command": "/usr/bin/web", "args": ["--port", "8080"],
             "dir": "/srv", "env": ["A=1", "B=two"], "pidfile": "/run/web.pid",
             "restart": "always",
             "backoff": {"initial": "50ms", "factor": 3, "max": "1m", "jitter": 0.2},
             "reset_after": "30s",
             "start_limit": {"burst": 7, "interval": "20s"},
             "health": {"url": "http://127.0.0.1:8080/health", "interval": "1s",
                        "timeout": 500, "failures": 2, "start_grace": "2s"},
             "stop_signal": "INT", "stop_timeout": "3s"},
            {"name": "worker", "command": "worker", "env": {"K": "V"},
             "health": {"command": ["check", "--quick"]}, "stop_signal": 1}
          ]})");
        REQUIRE(r);
        REQUIRE(r->size() == 2);
        const auto& w = (*r)[0];
        CHECK(w.name == "web");
        CHECK(w.command == "/usr/bin/web");
        CHECK(w.args == std::vector<std::string>{"--port", "8080"});
        CHECK(w.dir == "/srv");
        CHECK(w.env == std::vector<std::string>{"A=1", "B=two"});
        CHECK(w.pid_file == "/run/web.pid");
        CHECK(w.restart == RestartPolicy::always);
        CHECK(w.backoff.initial == 50ms);
        CHECK(w.backoff.factor == 3.0);
        CHECK(w.backoff.max == 60000ms);
        CHECK(w.backoff.jitter == 0.2);
        CHECK(w.reset_after == 30000ms);
        CHECK(w.start_limit.burst == 7);
        CHECK(w.start_limit.interval == 20000ms);
        CHECK(w.health.url == "http://127.0.0.1:8080/health");
        CHECK(w.health.interval == 1000ms);
        CHECK(w.health.timeout == 500ms);
        CHECK(w.health.failures == 2);
        CHECK(w.health.start_grace == 2000ms);
        CHECK(w.stop_signal == 2);
        CHECK(w.stop_timeout == 3000ms);
        const auto& k = (*r)[1];
        CHECK(k.env == std::vector<std::string>{"K=V"});
        CHECK(k.health.command == std::vector<std::string>{"check", "--quick"});
        CHECK(k.stop_signal == 1);
    }
    SECTION("defaults for everything but name and command") {
        auto r = parse_supervise_config(R"({"daemons":[{"name":"a","command":"a"}]})");
        REQUIRE(r);
        REQUIRE(r->size() == 1);
        const auto& d = (*r)[0];
        const core::process::DaemonSpec def;
        CHECK(d.restart == RestartPolicy::on_failure);
        CHECK(d.backoff.initial == def.backoff.initial);
        CHECK(d.backoff.max == def.backoff.max);
        CHECK(d.backoff.factor == def.backoff.factor);
        CHECK(d.backoff.jitter == def.backoff.jitter);
        CHECK(d.start_limit.burst == 5);
        CHECK(d.start_limit.interval == 10000ms);
        CHECK(d.reset_after == 10000ms);
        CHECK_FALSE(d.health.enabled());
        CHECK(d.stop_signal == 15);
        CHECK(d.stop_timeout == 10000ms);
    }
    SECTION("an empty list is valid") {
        auto r = parse_supervise_config(R"({"daemons":[]})");
        REQUIRE(r);
        CHECK(r->empty());
    }
}

TEST_CASE("Config_Parse_Bad", "[supervisor]") {
    CORE_LEAK_GUARD();
    struct Case {
        const char* json;
        std::vector<const char*> want;  // every piece must be in the message
    };
    const std::vector<Case> cases = {
        {R"({"daemons":[{"name":"a","command":"a","restrat":"no"}]})",
         {"test.json", "daemons[0]", "\"a\"", "key \"restrat\"", "unknown key"}},
        {R"({"daemons":[{"name":"a","command":"a"}],"listen":"x"})", {"key \"listen\"", "unknown"}},
        {R"({"daemons":[{"command":"a"}]})", {"daemons[0]", "key \"name\"", "missing"}},
        {R"({"daemons":[{"name":"a"}]})", {"key \"command\"", "missing"}},
        {R"({"daemons":[{"name":"a","command":7}]})", {"key \"command\"", "want a string"}},
        {R"({"daemons":[{"name":"ok","command":"a"},{"name":"b","command":"b","restart":"sometimes"}]})",
         {"daemons[1]", "\"b\"", "key \"restart\"", "sometimes"}},
        {R"({"daemons":[{"name":"a","command":"a","args":["x",1]}]})", {"key \"args[1]\""}},
        {R"({"daemons":[{"name":"a","command":"a","env":"A=1"}]})", {"key \"env\""}},
        {R"({"daemons":[{"name":"a","command":"a","env":["NOEQ"]}]})", {"env", "NOEQ"}},
        {R"({"daemons":[{"name":"a","command":"a","backoff":{"initial":"fast"}}]})",
         {"key \"backoff.initial\"", "fast"}},
        {R"({"daemons":[{"name":"a","command":"a","backoff":{"factor":"2"}}]})",
         {"key \"backoff.factor\"", "want a number"}},
        {R"({"daemons":[{"name":"a","command":"a","backoff":{"factor":0.5}}]})",
         {"\"a\"", "backoff.factor", "got 0.5"}},
        {R"({"daemons":[{"name":"a","command":"a","backoff":{"jitter":2}}]})", {"backoff.jitter"}},
        {R"({"daemons":[{"name":"a","command":"a","backoff":{"maximum":"1s"}}]})",
         {"key \"backoff.maximum\"", "unknown"}},
        {R"({"daemons":[{"name":"a","command":"a","start_limit":{"burst":-1}}]})",
         {"key \"start_limit.burst\""}},
        {R"({"daemons":[{"name":"a","command":"a","start_limit":{"burst":1.5}}]})",
         {"key \"start_limit.burst\"", "whole number"}},
        {R"({"daemons":[{"name":"a","command":"a","health":{}}]})",
         {"key \"health\"", "needs \"url\" or \"command\""}},
        {R"({"daemons":[{"name":"a","command":"a","health":{"url":"http://x/","command":["y"]}}]})",
         {"key \"health\"", "not both"}},
        {R"({"daemons":[{"name":"a","command":"a","health":{"command":[]}}]})",
         {"key \"health.command\"", "empty"}},
        {R"({"daemons":[{"name":"a","command":"a","health":{"url":"https://x/"}}]})",
         {"health.url"}},
        {R"({"daemons":[{"name":"a","command":"a","health":{"url":"http://x/","failures":0}}]})",
         {"health.failures"}},
        {R"({"daemons":[{"name":"a","command":"a","health":{"url":"http://x/","interval":"0s"}}]})",
         {"health.interval"}},
        {R"({"daemons":[{"name":"a","command":"a","stop_signal":"SIGFOO"}]})",
         {"key \"stop_signal\"", "SIGFOO"}},
        {R"({"daemons":[{"name":"a","command":"a","stop_signal":true}]})", {"key \"stop_signal\""}},
        {R"({"daemons":[{"name":"a","command":"a","stop_timeout":"-1s"}]})",
         {"key \"stop_timeout\""}},
        {R"({"daemons":[{"name":"a","command":"a","stop_timeout":"9999h"}]})",
         {"key \"stop_timeout\"", "365 days"}},
        {R"({"daemons":[{"name":"a","command":"a"},{"name":"a","command":"b"}]})",
         {"daemons[1]", "duplicate", "\"a\""}},
        {R"({"daemons":[{"name":"a b","command":"a"}]})", {"name", "letters"}},
        {R"({"daemons":{}})", {"key \"daemons\"", "want an array"}},
        {R"({})", {"key \"daemons\"", "missing"}},
        {R"([])", {"want a JSON object"}},
        {R"({"daemons":[1]})", {"daemons[0]", "want an object"}},
        {R"({"daemons":[{"name":"a","command":"a"})", {"not valid JSON"}},
        {"", {"not valid JSON"}},
    };
    for (const auto& c : cases) {
        const std::string msg = error_of(c.json);
        INFO(c.json);
        INFO(msg);
        REQUIRE_FALSE(msg.empty());
        CHECK(has(msg, "supervise.config"));
        for (const char* w : c.want) CHECK(has(msg, w));
    }
}

TEST_CASE("Config_Parse_Ugly", "[supervisor]") {
    CORE_LEAK_GUARD();
    SECTION("huge numbers are rejected, not overflowed") {
        CHECK(has(error_of(R"({"daemons":[{"name":"a","command":"a","stop_timeout":1e300}]})"),
                  "stop_timeout"));
        CHECK(has(
            error_of(
                R"({"daemons":[{"name":"a","command":"a","start_limit":{"burst":18446744073709551615}}]})"),
            "start_limit.burst"));
        CHECK(
            has(error_of(R"({"daemons":[{"name":"a","command":"a","backoff":{"factor":1e308}}]})"),
                "backoff.factor"));
    }
    SECTION("deep nesting and odd bytes give an error, not a crash") {
        std::string deep(5000, '[');
        CHECK_FALSE(error_of(deep).empty());
        CHECK_FALSE(error_of(std::string("{\"daemons\":[\0]}", 15)).empty());
    }
    SECTION("comment keys are ignored at every level") {
        auto r = parse_supervise_config(
            R"({"_c":1,"daemons":[{"_why":"x","name":"a","command":"a","backoff":{"_n":0}}]})");
        CHECK(r);
    }
}

TEST_CASE("Config_Load_Good", "[supervisor]") {
    CORE_LEAK_GUARD();
    const std::string path = "/tmp/core-sup-config-" + std::to_string(::getpid()) + ".json";
    {
        std::ofstream f(path);
        f << R"({"daemons":[{"name":"a","command":"a","restart":"no"}]})";
    }
    auto r = load_supervise_config(path);
    std::remove(path.c_str());
    REQUIRE(r);
    REQUIRE(r->size() == 1);
    CHECK((*r)[0].restart == RestartPolicy::no);
}

TEST_CASE("Config_Load_Bad", "[supervisor]") {
    CORE_LEAK_GUARD();
    SECTION("a missing file names the path and the errno") {
        auto r = load_supervise_config("/nonexistent/dir/sup.json");
        REQUIRE_FALSE(r);
        CHECK(has(r.error().what(), "/nonexistent/dir/sup.json"));
        CHECK(has(r.error().what(), "No such file or directory"));
    }
    SECTION("an error inside the file names the file") {
        const std::string path = "/tmp/core-sup-bad-" + std::to_string(::getpid()) + ".json";
        {
            std::ofstream f(path);
            f << R"({"daemons":[{"name":"a","command":"a","stop_signal":"NOPE"}]})";
        }
        auto r = load_supervise_config(path);
        std::remove(path.c_str());
        REQUIRE_FALSE(r);
        CHECK(has(r.error().what(), path));
        CHECK(has(r.error().what(), "stop_signal"));
    }
    SECTION("a directory is not a config") {
        auto r = load_supervise_config("/tmp");
        REQUIRE_FALSE(r);
        CHECK(has(r.error().what(), "/tmp"));
    }
}

// ---------------------------------------------------------------- "log" (issue 14, helper B)

TEST_CASE("Config_Log_Good", "[supervisor]") {
    CORE_LEAK_GUARD();
    SECTION("defaults: 10 MiB x 5, merged, no timestamps, the supervisor's directory") {
        auto r = parse_supervise_config(R"({"daemons":[{"name":"a","command":"a"}]})");
        REQUIRE(r);
        const auto& l = r->at(0).log;
        CHECK(l.dir.empty());
        CHECK(l.file.empty());
        CHECK(l.max_size == 10u << 20);
        CHECK(l.backups == 5);
        CHECK_FALSE(l.timestamps);
        CHECK_FALSE(l.separate);
    }
    SECTION("every key, sizes with suffixes") {
        auto r = parse_supervise_config(R"({"daemons":[
            {"name":"a","command":"a","log":{"dir":"/var/log/a","max_size":"512K","backups":2,
             "timestamps":true,"separate":true}},
            {"name":"b","command":"b","log":{"file":"/tmp/b.log","max_size":"1MiB"}},
            {"name":"c","command":"c","log":{"max_size":4096}},
            {"name":"d","command":"d","log":{"max_size":"2G","backups":0}}]})");
        REQUIRE(r);
        CHECK(r->at(0).log.dir == "/var/log/a");
        CHECK(r->at(0).log.max_size == 512u * 1024);
        CHECK(r->at(0).log.backups == 2);
        CHECK(r->at(0).log.timestamps);
        CHECK(r->at(0).log.separate);
        CHECK(r->at(1).log.file == "/tmp/b.log");
        CHECK(r->at(1).log.max_size == 1u << 20);
        CHECK(r->at(2).log.max_size == 4096);
        CHECK(r->at(3).log.max_size == std::uint64_t{2} << 30);
        CHECK(r->at(3).log.backups == 0);
    }
    SECTION("equal specs compare equal; any field differing does not") {
        auto a = parse_supervise_config(R"({"daemons":[{"name":"a","command":"a"}]})");
        auto b = parse_supervise_config(R"({"daemons":[{"name":"a","command":"a"}]})");
        auto c = parse_supervise_config(
            R"({"daemons":[{"name":"a","command":"a","log":{"timestamps":true}}]})");
        auto d = parse_supervise_config(
            R"({"daemons":[{"name":"a","command":"a","health":{"url":"http://127.0.0.1:1/"}}]})");
        REQUIRE((a && b && c && d));
        CHECK(a->at(0) == b->at(0));
        CHECK_FALSE(a->at(0) == c->at(0));
        CHECK_FALSE(a->at(0) == d->at(0));
    }
}

TEST_CASE("Config_Log_Bad", "[supervisor]") {
    CORE_LEAK_GUARD();
    const std::vector<std::pair<const char*, std::vector<const char*>>> cases = {
        {R"({"daemons":[{"name":"a","command":"a","log":{"dir":"/x","file":"/y"}}]})",
         {"key \"log\"", "either"}},
        {R"({"daemons":[{"name":"a","command":"a","log":{"rotate":true}}]})",
         {"key \"log.rotate\"", "unknown key"}},
        {R"({"daemons":[{"name":"a","command":"a","log":{"max_size":"big"}}]})",
         {"key \"log.max_size\"", "big"}},
        {R"({"daemons":[{"name":"a","command":"a","log":{"max_size":-1}}]})",
         {"key \"log.max_size\""}},
        {R"({"daemons":[{"name":"a","command":"a","log":{"max_size":100}}]})",
         {"log.max_size", "1024"}},
        {R"({"daemons":[{"name":"a","command":"a","log":{"backups":"5"}}]})",
         {"key \"log.backups\""}},
        {R"({"daemons":[{"name":"a","command":"a","log":{"timestamps":"yes"}}]})",
         {"key \"log.timestamps\"", "true or false"}},
        {R"({"daemons":[{"name":"a","command":"a","log":{"dir":""}}]})",
         {"key \"log.dir\"", "empty"}},
        {R"({"daemons":[{"name":"a","command":"a","log":"/var/log"}]})",
         {"key \"log\"", "an object"}},
    };
    for (const auto& [text, want] : cases) {
        const std::string e = error_of(text);
        INFO(text << "\n-> " << e);
        CHECK_FALSE(e.empty());
        for (const char* w : want) CHECK(has(e, w));
    }
}

// A daemon's Command is the process model's (issue 12): env_mode and unset_env as RunOptions.
TEST_CASE("Config_EnvMode_Good", "[supervisor]") {
    CORE_LEAK_GUARD();
    auto r = parse_supervise_config(R"({"daemons":[
        {"name":"a","command":"a","env":["ONLY=1"],"env_mode":"replace"},
        {"name":"b","command":"b","unset_env":["HOME","LANG"]},
        {"name":"c","command":"c","env_mode":"merge"}]})");
    REQUIRE(r);
    REQUIRE(r->size() == 3);
    CHECK((*r)[0].env_mode == core::process::EnvMode::replace);
    CHECK((*r)[0].env == std::vector<std::string>{"ONLY=1"});
    CHECK((*r)[1].env_mode == core::process::EnvMode::merge);
    CHECK((*r)[1].unset_env == std::vector<std::string>{"HOME", "LANG"});
    CHECK((*r)[2].env_mode == core::process::EnvMode::merge);
}

TEST_CASE("Config_EnvMode_Bad", "[supervisor]") {
    CORE_LEAK_GUARD();
    auto e = error_of(R"({"daemons":[{"name":"a","command":"a","env_mode":"clear"}]})");
    CHECK(has(e, "key \"env_mode\""));
    CHECK(has(e, "\"clear\": want \"merge\" or \"replace\""));
    e = error_of(R"({"daemons":[{"name":"a","command":"a","unset_env":"HOME"}]})");
    CHECK(has(e, "key \"unset_env\""));
}
