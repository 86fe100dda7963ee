// The dashboard's pieces without a browser: the page's text (nonce, no markup sinks, no
// external URL), the WebSocket subprotocol token, the page's routes, and the procfs/cgroup
// reader behind the memory/CPU columns. The browser test is dashboard_test.py.
#include <unistd.h>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include "control/dashboard.hpp"
#include "guard.hpp"
#include "sys/procstat.hpp"

using Catch::Matchers::ContainsSubstring;
namespace ctl = core::control;
namespace ps = core::sys::procstat;

namespace {

ctl::Request get(const std::string& target, const std::string& method = "GET") {
    ctl::Request r;
    r.method = method;
    auto t = ctl::parse_target(target);
    REQUIRE(t);
    r.target = *t;
    return r;
}

}  // namespace

TEST_CASE("Dashboard_Html_Good", "[dashboard]") {
    CORE_LEAK_GUARD();
    const std::string page = ctl::dashboard_html("n0nc3");
    SECTION("the nonce is on the script and the style, and in the policy") {
        CHECK_THAT(page, ContainsSubstring("<script nonce=\"n0nc3\">"));
        CHECK_THAT(page, ContainsSubstring("<style nonce=\"n0nc3\">"));
        CHECK(page.find("@NONCE@") == std::string::npos);
        const std::string csp = ctl::dashboard_csp("n0nc3");
        CHECK_THAT(csp, ContainsSubstring("script-src 'nonce-n0nc3'"));
        CHECK_THAT(csp, ContainsSubstring("connect-src 'self'"));
        CHECK_THAT(csp, ContainsSubstring("frame-ancestors 'none'"));
    }
    SECTION("no markup sink for data, nothing from another origin") {
        CHECK(page.find("innerHTML") == std::string::npos);
        CHECK(page.find("outerHTML") == std::string::npos);
        CHECK(page.find("insertAdjacentHTML") == std::string::npos);
        CHECK(page.find("document.write") == std::string::npos);
        CHECK(page.find("eval(") == std::string::npos);
        CHECK(page.find("http://") == std::string::npos);
        CHECK(page.find("https://") == std::string::npos);
        CHECK(page.find("src=") == std::string::npos);
    }
    SECTION("the token goes in a header and sessionStorage, never in a URL") {
        CHECK_THAT(page, ContainsSubstring("\"Authorization\"] = \"Bearer \""));
        CHECK_THAT(page, ContainsSubstring("sessionStorage"));
        CHECK(page.find("?token") == std::string::npos);
        CHECK(page.find("localStorage") == std::string::npos);
    }
}

TEST_CASE("Dashboard_IsDashboard_Good", "[dashboard]") {
    CORE_LEAK_GUARD();
    CHECK(ctl::is_dashboard(get("/")));
    CHECK(ctl::is_dashboard(get("/dashboard")));
    CHECK(ctl::is_dashboard(get("/dashboard/")));
    CHECK(ctl::is_dashboard(get("/?x=1")));
}

TEST_CASE("Dashboard_IsDashboard_Bad", "[dashboard]") {
    CORE_LEAK_GUARD();
    CHECK_FALSE(ctl::is_dashboard(get("/", "POST")));
    CHECK_FALSE(ctl::is_dashboard(get("/daemons")));
    CHECK_FALSE(ctl::is_dashboard(get("/dashboard/x")));
    CHECK_FALSE(ctl::is_dashboard(get("/events")));
}

TEST_CASE("Dashboard_WsProtocolToken_Good", "[dashboard]") {
    CORE_LEAK_GUARD();
    SECTION("the hex entry beside coreproc.v1") {
        CHECK(ctl::ws_protocol_token("coreproc.v1, coreproc.auth.616263") == "abc");
        CHECK(ctl::ws_offers_protocol("coreproc.v1, coreproc.auth.616263"));
    }
    SECTION("order, spacing and case of the hex do not matter") {
        CHECK(ctl::ws_protocol_token("coreproc.auth.4A4b ,coreproc.v1") == "JK");
        CHECK(ctl::ws_offers_protocol("x,  coreproc.v1  "));
    }
}

TEST_CASE("Dashboard_WsProtocolToken_Bad", "[dashboard]") {
    CORE_LEAK_GUARD();
    SECTION("no entry, an empty one, odd length, not hex") {
        CHECK(ctl::ws_protocol_token("").empty());
        CHECK(ctl::ws_protocol_token("coreproc.v1").empty());
        CHECK(ctl::ws_protocol_token("coreproc.auth.").empty());
        CHECK(ctl::ws_protocol_token("coreproc.auth.616").empty());
        CHECK(ctl::ws_protocol_token("coreproc.auth.zz").empty());
        CHECK(ctl::ws_protocol_token("coreproc.auth.6g").empty());
    }
    SECTION("too long is refused, not decoded") {
        CHECK(ctl::ws_protocol_token("coreproc.auth." + std::string(2048, 'a')).empty());
    }
    SECTION("coreproc.v1 only as a whole entry") {
        CHECK_FALSE(ctl::ws_offers_protocol("coreproc.v10"));
        CHECK_FALSE(ctl::ws_offers_protocol("xcoreproc.v1"));
        CHECK_FALSE(ctl::ws_offers_protocol(""));
    }
}

TEST_CASE("Procstat_OfPid_Good", "[dashboard]") {
    CORE_LEAK_GUARD();
    SECTION("this process: memory, CPU and uptime, from our cgroup's files or /proc") {
        auto u = ps::of_pid(static_cast<int>(::getpid()));
        REQUIRE(u);
        // Our own cgroup is the "supervisor's": never charged to us, so /proc is the source.
        CHECK(u->memory_source == "proc");
        CHECK(u->cpu_source == "proc");
        CHECK(u->memory_bytes > 0);
        CHECK(u->cpu_seconds >= 0);
        CHECK(u->uptime_seconds >= 0);
    }
}

TEST_CASE("Procstat_OfPid_Bad", "[dashboard]") {
    CORE_LEAK_GUARD();
    CHECK_FALSE(ps::of_pid(0));
    CHECK_FALSE(ps::of_pid(-1));
    // Above the kernel's PID_MAX_LIMIT (4194304): never a process.
    auto gone = ps::of_pid(4194305 + 1000);
    REQUIRE_FALSE(gone);
    CHECK_THAT(std::string(gone.error().what()), ContainsSubstring("/proc/"));
}
