// go-process's REST routes (lib/control/goapi.cpp) without sockets: a real Supervisor over the
// real process Service, requests straight into Api::handle. One table per route: method, path,
// body → status code and the envelope as go-process's pkg/api/provider.go answers it,
// {"Value":…,"OK":true} or {"Value":{"code":…,"message":…[,"details":…]},"OK":false}.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
#include <nlohmann/json.hpp>

#include "control/api.hpp"
#include "control/goapi.hpp"
#include "core/process/control.hpp"
#include "core/process/managed_process.hpp"
#include "core/process/process.hpp"
#include "guard.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::ContainsSubstring;
using nlohmann::json;
namespace cp = core::process;
namespace ctl = core::control;

namespace {

std::string child() {
    return core::test::child_path();
}

struct Env {
    std::shared_ptr<core::Core> core;
    cp::Service* svc = nullptr;
    std::unique_ptr<cp::Supervisor> sup;
    cp::ControlOptions opts;
    std::unique_ptr<ctl::Api> api;

    Env() {
        auto c = core::Core::create({cp::register_service});
        REQUIRE(c);
        core = *c;
        REQUIRE(core->startup(core::Context::background()));
        svc = core->service<cp::Service>("process").get();
        sup = std::make_unique<cp::Supervisor>(*core, *svc);
        opts.name = "sup";
        opts.socket_path = "unused.sock";
        api = std::make_unique<ctl::Api>(*core, *sup, *svc, opts);
    }
    ~Env() {
        api.reset();
        sup.reset();
        (void)core->shutdown(core::Context::background());
    }
    // The reply as (status, envelope); every /api/process/ reply is an envelope.
    std::pair<int, json> go(const std::string& method, const std::string& target,
                            const std::string& body = {}) const {
        ctl::Request r;
        r.method = method;
        auto t = ctl::parse_target(target);
        REQUIRE(t);
        r.target = std::move(*t);
        r.body = body;
        auto rep = api->handle(r);
        INFO(method << " " << target << " " << body << " -> " << rep.status << " " << rep.body);
        auto j = json::parse(rep.body, nullptr, false);
        REQUIRE(j.is_object());
        REQUIRE(j.contains("OK"));
        REQUIRE(j.contains("Value"));
        REQUIRE(j.size() == 2);
        return {rep.status, j};
    }
    void add_daemon(const std::string& name) {
        cp::DaemonSpec d;
        d.name = name;
        d.command = child();
        d.args = {"sleep", "60000"};
        d.stop_timeout = 2s;
        REQUIRE(sup->add(d));
        REQUIRE(sup->start(name));
        REQUIRE(core::test::eventually([&] {
            auto st = sup->get(name);
            return st && st->pid > 0;
        }));
    }
    // A process started through the Service (as a go-process test does with svc.Start).
    std::shared_ptr<cp::ManagedProcess> spawn(std::vector<std::string> args, bool stdin_pipe) {
        cp::RunOptions o;
        o.command = child();
        o.args = std::move(args);
        if (stdin_pipe) o.std_in = cp::Stdio::pipe();
        o.grace_period = 0ms;
        auto mp = svc->start(core::Context::background(), o);
        REQUIRE(mp);
        return *mp;
    }
};

struct Case {
    const char* method;
    std::string target;
    std::string body;
    int status;
    const char* code;  // the failure's code; nullptr: OK
};

void check_table(const Env& env, const std::vector<Case>& cases) {
    for (const auto& c : cases) {
        auto [st, j] = env.go(c.method, c.target, c.body);
        INFO(c.method << " " << c.target << " " << c.body << " -> " << j.dump());
        CHECK(st == c.status);
        CHECK(j["OK"] == (c.code == nullptr));
        if (c.code) {
            CHECK(j["Value"]["code"] == c.code);
            CHECK(j["Value"]["message"].is_string());
        }
    }
}

}  // namespace

TEST_CASE("GoApi_Daemons_Good", "[control]") {
    CORE_LEAK_GUARD();
    Env env;
    env.add_daemon("a");
    SECTION("list: the live ones as DaemonEntry") {
        auto [st, j] = env.go("GET", "/api/process/daemons");
        CHECK(st == 200);
        REQUIRE(j["Value"].size() == 1);
        CHECK(j["Value"][0]["code"] == "sup");
        CHECK(j["Value"][0]["daemon"] == "a");
        CHECK(j["Value"][0]["pid"].get<int>() > 0);
        CHECK(j["Value"][0]["binary"] == child());
        CHECK(j["Value"][0]["started"].get<std::string>().back() == 'Z');
    }
    SECTION("get, health without a check, stop") {
        auto [gs, g] = env.go("GET", "/api/process/daemons/sup/a");
        CHECK(gs == 200);
        CHECK(g["Value"]["daemon"] == "a");
        auto [hs, h] = env.go("GET", "/api/process/daemons/sup/a/health");
        CHECK(hs == 200);
        CHECK(h["OK"] == true);
        CHECK(h["Value"] == json{{"healthy", false},
                                 {"address", ""},
                                 {"reason", "no health endpoint configured"}});
        auto [ss, s] = env.go("POST", "/api/process/daemons/sup/a/stop");
        CHECK(ss == 200);
        CHECK(s["Value"] == json{{"stopped", true}});
        // Stopped: not running any more, as go-process's registry forgets it.
        check_table(env, {{"GET", "/api/process/daemons/sup/a", "", 404, "not_found"}});
        CHECK(env.go("GET", "/api/process/daemons").second["Value"].empty());
    }
}

TEST_CASE("GoApi_Daemons_Bad", "[control]") {
    CORE_LEAK_GUARD();
    Env env;
    env.add_daemon("a");
    check_table(env, {
                         {"GET", "/api/process/daemons/other/a", "", 404, "not_found"},
                         {"GET", "/api/process/daemons/sup/nope", "", 404, "not_found"},
                         {"POST", "/api/process/daemons/sup/nope/stop", "", 404, "not_found"},
                         {"GET", "/api/process/daemons/sup/nope/health", "", 404, "not_found"},
                         {"GET", "/api/process/daemons/sup", "", 404, "not_found"},
                         {"POST", "/api/process/daemons", "", 404, "not_found"},
                         {"GET", "/api/process/daemons/sup/a/stop", "", 404, "not_found"},
                     });
}

TEST_CASE("GoApi_Processes_Good", "[control]") {
    CORE_LEAK_GUARD();
    Env env;
    SECTION("start, get, input, close-stdin, wait, output") {
        json start{{"command", child()}, {"args", {"echo"}}};
        auto [ss, s] = env.go("POST", "/api/process/processes", start.dump());
        REQUIRE(ss == 200);
        const std::string id = s["Value"]["id"];
        CHECK(s["Value"]["running"] == true);
        CHECK(s["Value"]["status"] == "running");
        CHECK(s["Value"]["duration"].is_number_integer());  // time.Duration: nanoseconds
        const std::string base = "/api/process/processes/" + id;
        auto [gs, g] = env.go("GET", base);
        CHECK(gs == 200);
        CHECK(g["Value"]["id"] == id);
        auto [is, in] = env.go("POST", base + "/input", R"({"input":"hello\n"})");
        CHECK(is == 200);
        CHECK(in["Value"] == json{{"written", true}});
        auto [cs, c] = env.go("POST", base + "/close-stdin");
        CHECK(cs == 200);
        CHECK(c["Value"] == json{{"closed", true}});
        auto [ws, w] = env.go("POST", base + "/wait");
        CHECK(ws == 200);
        CHECK(w["Value"]["status"] == "exited");
        CHECK(w["Value"]["exitCode"] == 0);
        CHECK(w["Value"]["running"] == false);
        auto [os, o] = env.go("GET", base + "/output");
        CHECK(os == 200);
        CHECK(o["Value"] == "hello\n");
        // A finished process: kill is a no-op (go-process's kill() sends nothing), signal is
        // "not running", input too.
        check_table(env,
                    {{"POST", base + "/kill", "", 200, nullptr},
                     {"POST", base + "/signal", R"({"signal":"SIGTERM"})", 404, "signal_failed"},
                     {"POST", base + "/input", R"({"input":"x"})", 404, "input_failed"}});
    }
    SECTION("list and ?runningOnly=") {
        auto running = env.spawn({"sleep", "60000"}, false);
        auto done = env.spawn({"exit", "0"}, false);
        done->wait();
        auto ids = [](const json& v) {
            std::vector<std::string> out;
            for (const auto& p : v) out.push_back(p["id"]);
            return out;
        };
        auto [as, all] = env.go("GET", "/api/process/processes");
        CHECK(as == 200);
        CHECK(ids(all["Value"]) == std::vector<std::string>{running->id(), done->id()});
        auto [rs, run] = env.go("GET", "/api/process/processes?runningOnly=true");
        CHECK(rs == 200);
        CHECK(ids(run["Value"]) == std::vector<std::string>{running->id()});
        CHECK(run["Value"][0]["status"] == "running");
        const std::string base = "/api/process/processes/" + running->id();
        auto [ss, s] = env.go("POST", base + "/signal", R"({"signal":"term"})");
        CHECK(ss == 200);
        CHECK(s["Value"] == json{{"signalled", true}});
        running->wait();
        auto other = env.spawn({"sleep", "60000"}, false);
        auto [ks, k] = env.go("POST", "/api/process/processes/" + other->id() + "/kill");
        CHECK(ks == 200);
        CHECK(k["Value"] == json{{"killed", true}});
        other->wait();
    }
    SECTION("kill and signal by pid") {
        auto p = env.spawn({"sleep", "60000"}, false);
        const std::string pid = std::to_string(p->pid());
        CHECK(env.go("POST", "/api/process/processes/" + pid + "/signal", R"({"signal":"15"})")
                  .first == 200);
        p->wait();
        auto q = env.spawn({"sleep", "60000"}, false);
        CHECK(
            env.go("POST", "/api/process/processes/" + std::to_string(q->pid()) + "/kill").first ==
            200);
        q->wait();
    }
    SECTION("run: the output, or run_failed with details") {
        json ok{{"command", child()}, {"args", {"print", "hi", "there"}}};
        auto [rs, r] = env.go("POST", "/api/process/processes/run", ok.dump());
        CHECK(rs == 200);
        CHECK(r["Value"] == "hi there\n");
        json bad{{"command", child()}, {"args", {"exit", "3"}}};
        auto [fs, f] = env.go("POST", "/api/process/processes/run", bad.dump());
        CHECK(fs == 500);
        CHECK(f["Value"]["code"] == "run_failed");
        CHECK_THAT(f["Value"]["message"].get<std::string>(),
                   ContainsSubstring("exited with code 3"));
        CHECK(f["Value"]["details"] == json{{"output", ""}});
    }
}

TEST_CASE("GoApi_Processes_Bad", "[control]") {
    CORE_LEAK_GUARD();
    Env env;
    auto seven = env.spawn({"exit", "7"}, false);
    seven->wait();
    auto running = env.spawn({"sleep", "60000"}, false);
    const std::string base = "/api/process/processes/" + running->id();
    const std::string cmd = json(child()).dump();
    check_table(
        env,
        {
            {"POST", "/api/process/processes", "", 400, "invalid_request"},
            {"POST", "/api/process/processes", "{}", 400, "invalid_request"},
            {"POST", "/api/process/processes", "[1]", 400, "invalid_request"},
            {"POST", "/api/process/processes", R"({"command":"  "})", 400, "invalid_request"},
            {"POST", "/api/process/processes", R"({"command":5})", 400, "invalid_request"},
            {"POST", "/api/process/processes", R"({"command":"x","args":"a b"})", 400,
             "invalid_request"},
            {"POST", "/api/process/processes", "{\"command\":" + cmd + ",\"timeout\":-1}", 400,
             "invalid_request"},
            {"POST", "/api/process/processes", R"({"command":"/nonexistent/cmd"})", 500,
             "start_failed"},
            {"POST", "/api/process/processes/run", "{}", 400, "invalid_request"},
            {"GET", "/api/process/processes/nope", "", 404, "not_found"},
            {"GET", "/api/process/processes/nope/output", "", 404, "not_found"},
            {"POST", "/api/process/processes/nope/wait", "", 404, "not_found"},
            {"POST", "/api/process/processes/nope/kill", "", 404, "kill_failed"},
            {"POST", "/api/process/processes/nope/close-stdin", "", 404, "close_stdin_failed"},
            {"POST", "/api/process/processes/nope/input", R"({"input":"x"})", 404, "input_failed"},
            {"POST", "/api/process/processes/nope/signal", R"({"signal":"TERM"})", 404,
             "signal_failed"},
            {"POST", base + "/signal", R"({"signal":"SIGNOPE"})", 400, "invalid_signal"},
            {"POST", base + "/signal", "{}", 400, "invalid_signal"},
            {"POST", base + "/signal", "nope", 400, "invalid_request"},
            {"POST", base + "/input", R"({"input":5})", 400, "invalid_request"},
            {"POST", base + "/input", "", 400, "invalid_request"},
            // stdin is /dev/null here: not a pipe to close.
            {"POST", base + "/close-stdin", "", 500, "close_stdin_failed"},
            {"POST", base + "/wait?timeout=x", "", 400, "invalid_request"},
            {"GET", base + "/wait", "", 404, "not_found"},
            {"DELETE", base, "", 404, "not_found"},
            {"GET", "/api/process/nowhere", "", 404, "not_found"},
            {"GET", "/api/process", "", 404, "not_found"},
        });
    SECTION("wait: a non-zero exit is a conflict with the final Info as details") {
        auto [st, j] = env.go("POST", "/api/process/processes/" + seven->id() + "/wait");
        CHECK(st == 409);
        CHECK(j["OK"] == false);
        CHECK(j["Value"]["code"] == "wait_failed");
        CHECK_THAT(j["Value"]["message"].get<std::string>(),
                   ContainsSubstring("process exited with code 7"));
        CHECK(j["Value"]["details"]["status"] == "exited");
        CHECK(j["Value"]["details"]["exitCode"] == 7);
        CHECK(j["Value"]["details"]["id"] == seven->id());
    }
    SECTION("wait: killed") {
        REQUIRE(running->kill());
        auto [st, j] = env.go("POST", base + "/wait");
        CHECK(st == 409);
        CHECK(j["Value"]["message"] == "process was killed: " + running->id());
        CHECK(j["Value"]["details"]["status"] == "killed");
    }
    REQUIRE(running->kill());
    running->wait();
}

TEST_CASE("GoApi_Singular_Good", "[control]") {
    CORE_LEAK_GUARD();
    Env env;
    json start{{"command", child()}, {"args", {"echo"}}};
    auto [ss, s] = env.go("POST", "/api/process/process/start", start.dump());
    REQUIRE(ss == 200);
    REQUIRE(s["Value"].is_string());  // the RFC's process.start answers the id alone
    const std::string id = s["Value"];
    auto [ls, l] = env.go("GET", "/api/process/process/list");
    CHECK(ls == 200);
    CHECK(l["Value"] == json::array({id}));
    CHECK(env.go("GET", "/api/process/process/list?runningOnly=1").second["Value"] ==
          json::array({id}));
    const std::string base = "/api/process/process/" + id;
    CHECK(env.go("GET", base).second["Value"]["id"] == id);
    CHECK(env.go("POST", base + "/input", R"({"input":"one\n"})").first == 200);
    CHECK(env.go("POST", base + "/close-stdin").first == 200);
    auto [ws, w] = env.go("POST", base + "/wait");
    CHECK(ws == 200);
    CHECK(w["Value"]["exitCode"] == 0);
    CHECK(env.go("GET", base + "/output").second["Value"] == "one\n");
    json run{{"command", child()}, {"args", {"print", "x"}}};
    CHECK(env.go("POST", "/api/process/process/run", run.dump()).second["Value"] == "x\n");

    auto victim = env.spawn({"sleep", "60000"}, false);
    auto [ks, k] = env.go("POST", "/api/process/process/kill", json{{"id", victim->id()}}.dump());
    CHECK(ks == 200);
    CHECK(k["Value"] == json{{"killed", true}});
    victim->wait();
    auto by_pid = env.spawn({"sleep", "60000"}, false);
    CHECK(env.go("POST", "/api/process/process/kill", json{{"pid", by_pid->pid()}}.dump()).first ==
          200);
    by_pid->wait();
    auto sig = env.spawn({"sleep", "60000"}, false);
    CHECK(env.go("POST", "/api/process/process/" + sig->id() + "/signal", R"({"signal":"SIGKILL"})")
              .first == 200);
    sig->wait();
    check_table(env,
                {
                    {"POST", "/api/process/process/kill", "{}", 400, "invalid_request"},
                    {"POST", "/api/process/process/kill", "", 400, "invalid_request"},
                    {"POST", "/api/process/process/kill", R"({"id":"nope"})", 404, "kill_failed"},
                    {"POST", "/api/process/process/start", "{}", 400, "invalid_request"},
                    {"GET", "/api/process/process/nope", "", 404, "not_found"},
                    {"POST", "/api/process/process/" + id + "/kill", "", 404, "not_found"},
                    {"POST", "/api/process/process/list", "", 404, "not_found"},
                });
}

TEST_CASE("GoApi_Pipelines_Good", "[control]") {
    CORE_LEAK_GUARD();
    Env env;
    const json specs = json::array(
        {json{{"name", "a"}, {"command", child()}, {"args", {"print", "A"}}},
         json{{"name", "b"}, {"command", child()}, {"args", {"exit", "1"}}, {"after", {"a"}}},
         json{{"name", "c"}, {"command", child()}, {"args", {"print", "C"}}, {"after", {"b"}}}});
    SECTION("all (the default): dependency order, a failure skips its dependents") {
        auto [st, j] = env.go("POST", "/api/process/pipelines/run", json{{"specs", specs}}.dump());
        CHECK(st == 200);
        const auto& v = j["Value"];
        CHECK(v["passed"] == 1);
        CHECK(v["failed"] == 1);
        CHECK(v["skipped"] == 1);
        CHECK(v["duration"].is_number_integer());
        REQUIRE(v["results"].size() == 3);
        CHECK(v["results"][0]["name"] == "a");
        CHECK(v["results"][0]["output"] == "A\n");
        CHECK(v["results"][0]["exitCode"] == 0);
        CHECK(v["results"][0]["spec"]["command"] == child());
        CHECK(v["results"][1]["exitCode"] == 1);
        CHECK_FALSE(v["results"][1].contains("error"));  // an exit code is not an Error there
        CHECK(v["results"][2]["skipped"] == true);
    }
    SECTION("sequential and parallel, any case") {
        CHECK(env.go("POST", "/api/process/pipelines/run",
                     json{{"mode", " Sequential "}, {"specs", specs}}.dump())
                  .second["Value"]["skipped"] == 1);
        CHECK(env.go("POST", "/api/process/pipelines/run",
                     json{{"mode", "parallel"}, {"specs", specs}}.dump())
                  .second["Value"]["passed"] == 2);
    }
}

TEST_CASE("GoApi_Pipelines_Bad", "[control]") {
    CORE_LEAK_GUARD();
    Env env;
    const std::string dup = json{{"specs", json::array({json{{"name", "a"}, {"command", "x"}},
                                                        json{{"name", "a"}, {"command", "x"}}})}}
                                .dump();
    check_table(
        env, {
                 {"POST", "/api/process/pipelines/run", "nope", 400, "invalid_request"},
                 {"POST", "/api/process/pipelines/run", R"({"specs":{}})", 400, "invalid_request"},
                 {"POST", "/api/process/pipelines/run", R"({"specs":[{"args":"x"}]})", 400,
                  "invalid_request"},
                 {"POST", "/api/process/pipelines/run", R"({"mode":"bogus"})", 400, "invalid_mode"},
                 {"POST", "/api/process/pipelines/run", dup, 400, "pipeline_failed"},
                 {"GET", "/api/process/pipelines/run", "", 404, "not_found"},
             });
}

TEST_CASE("GoApi_Bodies_Good", "[control]") {
    CORE_LEAK_GUARD();
    auto o = ctl::parse_go_run_body(
        R"({"command":"ls","args":["-l"],"env":["A=1"],"timeout":1500000,"gracePeriod":2000000000,
            "killGroup":true,"detach":true,"disableCapture":false})",
        true);
    REQUIRE(o);
    CHECK(o->command == "ls");
    CHECK(o->args == std::vector<std::string>{"-l"});
    CHECK(o->timeout == 2ms);  // 1.5 ms rounded up: never "none"
    CHECK(o->grace_period == 2000ms);
    CHECK(o->kill_group);
    CHECK(o->detach);
    auto defaults = ctl::parse_go_run_body(R"({"command":"ls"})", false);
    REQUIRE(defaults);
    CHECK(defaults->grace_period == 0ms);  // go-process's zero GracePeriod: SIGKILL at once
    CHECK(defaults->timeout == 0ms);
    auto k = ctl::parse_go_kill_body(R"({"id":"123"})");
    REQUIRE(k);
    CHECK(k->pid == 123);  // an id that reads as a pid is one too, as go-process's pidFromString
    CHECK(*ctl::parse_go_signal_body(R"({"signal":"sigint"})") == 2);
    CHECK(*ctl::parse_go_signal_body(R"({"signal":" 9 "})") == 9);
    auto p = ctl::parse_go_pipeline_body("{}");
    REQUIRE(p);
    CHECK(p->mode == "all");
    CHECK_FALSE(p->bad_mode);
    auto f = nlohmann::json::parse(ctl::dump(ctl::go_fail("x", "y", json{{"a", 1}})));
    CHECK(f == json{{"Value", {{"code", "x"}, {"message", "y"}, {"details", {{"a", 1}}}}},
                    {"OK", false}});
    CHECK(ctl::go_fail("x", "y")["Value"].size() == 2);  // details omitted when empty
}
