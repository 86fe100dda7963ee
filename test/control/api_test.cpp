// The control plane's routes without sockets: the target parser, the body parsers, the event
// messages and the route classes.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include "control/api.hpp"
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
