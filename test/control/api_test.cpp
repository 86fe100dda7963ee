// The control plane's routes without sockets: the target parser, the body parsers, the event
// messages and the route classes.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include "control/api.hpp"
#include "control/events.hpp"
#include "guard.hpp"

using Catch::Matchers::ContainsSubstring;
namespace ctl = core::control;
namespace cp = core::process;

TEST_CASE("ControlApi_ParseTarget_Good", "[control]") {
    CORE_LEAK_GUARD();
    SECTION("segments and query") {
        auto t = ctl::parse_target("/daemons/web/logs?tail=20&follow=1&stream=stderr");
        REQUIRE(t);
        CHECK(t->path == "/daemons/web/logs");
        CHECK(t->segments == std::vector<std::string>{"daemons", "web", "logs"});
        CHECK(t->query.at("tail") == "20");
        CHECK(t->query.at("follow") == "1");
        CHECK(ctl::query_flag(t->query, "follow"));
        CHECK_FALSE(ctl::query_flag(t->query, "nope"));
    }
    SECTION("percent escapes, empty segments") {
        auto t = ctl::parse_target("//daemons//a%2Db/?x=a+b%21");
        REQUIRE(t);
        CHECK(t->segments == std::vector<std::string>{"daemons", "a-b"});
        CHECK(t->query.at("x") == "a b!");
    }
}

TEST_CASE("ControlApi_ParseTarget_Bad", "[control]") {
    CORE_LEAK_GUARD();
    CHECK_FALSE(ctl::parse_target(""));
    CHECK_FALSE(ctl::parse_target("daemons"));
    CHECK_FALSE(ctl::parse_target("/a%2"));
    CHECK_FALSE(ctl::parse_target("/a%zz"));
    CHECK_FALSE(ctl::parse_target("/a%00b"));
    CHECK_FALSE(ctl::parse_target("/a%2Fb"));  // a '/' inside a name
    std::string deep;
    for (int i = 0; i < 40; ++i) deep += "/x";
    CHECK_FALSE(ctl::parse_target(deep));
}

TEST_CASE("ControlApi_Bodies_Good", "[control]") {
    CORE_LEAK_GUARD();
    auto spec =
        ctl::parse_daemon_body(R"({"name":"web","command":"/bin/true","restart":"always"})");
    REQUIRE(spec);
    CHECK(spec->name == "web");
    CHECK(spec->restart == cp::RestartPolicy::always);
    CHECK(*ctl::parse_signal_body(R"({"signal":"TERM"})") == 15);
    CHECK(*ctl::parse_signal_body(R"({"signal":9})") == 9);
    auto in = ctl::parse_input_body(R"({"input":"a\n","close":true})");
    REQUIRE(in);
    CHECK(in->input == "a\n");
    CHECK(in->close);
    CHECK(*ctl::parse_tail({}, 7) == 7);
    CHECK(*ctl::parse_tail({{"tail", "3"}}, 7) == 3);
    CHECK(ctl::last_lines("a\nb\nc\n", 2) == "b\nc\n");
    CHECK(ctl::last_lines("a\nb\nc", 2) == "b\nc");
    CHECK(ctl::last_lines("a\n", 5) == "a\n");
}

TEST_CASE("ControlApi_Bodies_Bad", "[control]") {
    CORE_LEAK_GUARD();
    auto bad = ctl::parse_daemon_body(R"({"name":"web"})");
    REQUIRE_FALSE(bad);
    CHECK(ctl::status_of(bad.error()) == 400);
    CHECK_FALSE(ctl::parse_daemon_body("[1]"));
    CHECK_FALSE(ctl::parse_daemon_body("{"));
    CHECK_FALSE(ctl::parse_signal_body(R"({"signal":0})"));
    CHECK_FALSE(ctl::parse_signal_body(R"({"signal":true})"));
    CHECK_FALSE(ctl::parse_signal_body(R"({"signal":"NOPE"})"));
    CHECK_FALSE(ctl::parse_input_body(R"({"input":1})"));
    CHECK_FALSE(ctl::parse_input_body(R"({"close":"yes"})"));
    CHECK_FALSE(ctl::parse_tail({{"tail", "-1"}}, 7));
    CHECK_FALSE(ctl::parse_tail({{"tail", "10000000"}}, 7));
    CHECK_FALSE(ctl::parse_tail({{"tail", "3x"}}, 7));
}

TEST_CASE("ControlApi_EventMessage_Good", "[control]") {
    CORE_LEAK_GUARD();
    cp::DaemonStateChanged ch;
    ch.name = "web";
    ch.from = cp::DaemonState::starting;
    ch.to = cp::DaemonState::running;
    ch.pid = 42;
    auto m = ctl::event_message(core::Value(ch));
    REQUIRE(m);
    auto j = nlohmann::json::parse(*m);
    CHECK(j["type"] == "event");
    CHECK(j["channel"] == "daemon.state");
    CHECK(j["processId"] == "web");
    CHECK(j["data"]["to"] == "running");
    CHECK(j["timestamp"].get<std::string>().back() == 'Z');
    cp::ProcessOutput out{"p1", "hello \xff", cp::Stream::stderr_};
    auto o = ctl::event_message(core::Value(out));
    REQUIRE(o);
    CHECK_THAT(*o, ContainsSubstring("\"stream\":\"stderr\""));
    CHECK_FALSE(ctl::event_message(core::Value(std::string("other"))));
}

TEST_CASE("ControlApi_Classify_Good", "[control]") {
    CORE_LEAK_GUARD();
    auto req = [](std::string m, std::string t) {
        ctl::Request r;
        r.method = std::move(m);
        r.target = *ctl::parse_target(t);
        return r;
    };
    CHECK(ctl::classify(req("GET", "/health")) == ctl::RouteKind::probe);
    CHECK(ctl::classify(req("GET", "/metrics")) == ctl::RouteKind::probe);
    CHECK(ctl::classify(req("GET", "/events")) == ctl::RouteKind::events);
    CHECK(ctl::classify(req("GET", "/daemons/a/logs?follow=1")) == ctl::RouteKind::follow_logs);
    CHECK(ctl::classify(req("GET", "/daemons/a/logs")) == ctl::RouteKind::plain);
    CHECK(ctl::classify(req("POST", "/daemons/a/stop")) == ctl::RouteKind::plain);
}

TEST_CASE("ControlApi_EventMessages_Good", "[control]") {
    CORE_LEAK_GUARD();
    using nlohmann::json;
    auto parse = [](const std::vector<std::string>& v) {
        std::vector<json> out;
        for (const auto& m : v) out.push_back(json::parse(m));
        return out;
    };
    cp::DaemonStateChanged ch;
    ch.name = "web";
    ch.pid = 42;
    SECTION("daemon changes: ours, then go-process's channel where it has one") {
        struct Case {
            cp::DaemonState from, to;
            const char* go_channel;  // nullptr: daemon.state alone
        };
        using S = cp::DaemonState;
        for (const auto& c : std::vector<Case>{{S::starting, S::running, "process.daemon.started"},
                                               {S::stopping, S::stopped, "process.daemon.stopped"},
                                               {S::running, S::backoff, "process.daemon.stopped"},
                                               {S::stopping, S::starting, "process.daemon.stopped"},
                                               {S::healthy, S::failed, "process.daemon.stopped"},
                                               {S::backoff, S::failed, nullptr},
                                               {S::backoff, S::starting, nullptr},
                                               {S::running, S::healthy, "process.daemon.health"},
                                               {S::healthy, S::unhealthy, "process.daemon.health"},
                                               {S::unhealthy, S::running, nullptr},
                                               {S::running, S::stopping, nullptr}}) {
            ch.from = c.from;
            ch.to = c.to;
            ch.reason = "health: refused";
            auto ms = parse(ctl::event_messages(core::Value(ch), "sup"));
            INFO(cp::to_string(c.from) << " -> " << cp::to_string(c.to));
            REQUIRE(ms.size() == (c.go_channel ? 2u : 1u));
            CHECK(ms[0]["channel"] == "daemon.state");
            if (!c.go_channel) continue;
            const auto& g = ms[1];
            CHECK(g["type"] == "event");
            CHECK(g["channel"] == c.go_channel);
            CHECK_FALSE(g.contains("processId"));  // go-process's emitHubEvent leaves it out
            CHECK(g["data"]["code"] == "sup");
            CHECK(g["data"]["daemon"] == "web");
            CHECK(g["timestamp"].get<std::string>().back() == 'Z');
            if (c.to == S::unhealthy) {
                CHECK(g["data"]["healthy"] == false);
                CHECK(g["data"]["reason"] == "health: refused");
            }
            if (c.to == S::healthy) CHECK(g["data"]["healthy"] == true);
            if (c.to == S::running) CHECK(g["data"]["pid"] == 42);
        }
    }
    SECTION("process events: go-process's payloads, durations in ns, signal names") {
        cp::ProcessExited ex;
        ex.id = "p1";
        ex.exit_code = 3;
        ex.duration = std::chrono::milliseconds(1500);
        ex.error = "exited with code 3";
        auto e = parse(ctl::event_messages(core::Value(ex), "sup"));
        REQUIRE(e.size() == 1);
        CHECK(e[0]["channel"] == "process.exited");
        CHECK(e[0]["processId"] == "p1");
        CHECK(e[0]["data"] == json{{"id", "p1"},
                                   {"exitCode", 3},
                                   {"duration", 1500000000},
                                   {"error", "exited with code 3"}});
        cp::ProcessKilled k{"p1", 9};
        auto kj = parse(ctl::event_messages(core::Value(k), "sup"));
        REQUIRE(kj.size() == 1);
        CHECK(kj[0]["data"] == json{{"id", "p1"}, {"signal", "SIGKILL"}, {"exitCode", -1}});
        cp::ProcessStarted st{"p2", "/bin/echo", {"hi"}, "/tmp", 77};
        auto sj = parse(ctl::event_messages(core::Value(st), "sup"));
        REQUIRE(sj.size() == 1);
        CHECK(sj[0]["channel"] == "process.started");
        CHECK(sj[0]["data"]["pid"] == 77);
        CHECK(sj[0]["data"]["status"] == "running");
        CHECK(sj[0]["data"]["args"] == json::array({"hi"}));
        cp::ProcessOutput out{"p2", "line", cp::Stream::stdout_};
        auto oj = parse(ctl::event_messages(core::Value(out), "sup"));
        REQUIRE(oj.size() == 1);
        CHECK(oj[0]["data"] == json{{"id", "p2"}, {"line", "line"}, {"stream", "stdout"}});
        CHECK(ctl::event_messages(core::Value(std::string("other")), "sup").empty());
    }
}
