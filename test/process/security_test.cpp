// Security (issue 7 item 6): what a caller passes in `env` reaches the child and nothing else —
// no log line at any level, no Error, no event.
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

#include <sstream>

#include "common.hpp"

using core::Context;
using namespace proctest;

TEST_CASE("Security_EnvSecret_Good", "[process]") {
    CORE_LEAK_GUARD();
    const std::string secret = "s3cr3t-4f1e9b";
    std::ostringstream logs;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(logs);
    auto logger = std::make_shared<spdlog::logger>("security-test", sink);
    logger->set_level(spdlog::level::trace);  // stricter than the "info"
    auto c = make_core();
    c->set_logger(logger);
    std::vector<std::string> seen;  // every event, as text
    std::mutex mu;
    auto sub = c->subscribe([&](const core::Value& v) {
        std::lock_guard lk(mu);
        if (auto* e = v.get<cp::ProcessStarted>()) {
            std::string s = e->command + e->dir;
            for (const auto& a : e->args) s += a;
            seen.push_back(s);
        } else if (auto* x = v.get<cp::ProcessExited>()) {
            seen.push_back(x->error);
        }
    });
    const std::string env_kv = "API_TOKEN=" + secret;
    const auto ctx = Context::background();

    SECTION("the child gets it") {
        auto o = child({"env", "API_TOKEN"});
        o.env = {env_kv};
        auto r = service(c)->run(ctx, o);
        REQUIRE(r);
        CHECK(*r == env_kv + "\n");
    }
    SECTION("failures do not carry it") {
        auto o = child({"exit", "3"});
        o.env = {env_kv};
        auto failed = service(c)->run(ctx, o);
        REQUIRE_FALSE(failed);
        CHECK_FALSE(contains(failed.error().what(), secret));
        o.dir = "/nonexistent-dir-for-security-test";
        auto bad_dir = service(c)->run(ctx, o);
        REQUIRE_FALSE(bad_dir);
        CHECK_FALSE(contains(bad_dir.error().what(), secret));
        o = child({"sleep", "10000"});
        o.env = {env_kv};
        o.timeout = 20ms;
        o.grace_period = 0ms;
        auto timed_out = service(c)->run(ctx, o);
        REQUIRE_FALSE(timed_out);
        CHECK_FALSE(contains(timed_out.error().what(), secret));
        // Through the action too, with the same keys a config file would use.
        auto act = c->action("process.run")
                       .run(ctx, core::Options{{"command", std::string("/nonexistent/binary")},
                                               {"env", std::vector<std::string>{env_kv}}});
        REQUIRE_FALSE(act);
        CHECK_FALSE(contains(act.error().what(), secret));
    }
    sub.reset();
    REQUIRE(c->shutdown(ctx));
    logger->flush();
    CHECK_FALSE(contains(logs.str(), secret));
    std::lock_guard lk(mu);
    for (const auto& s : seen) CHECK_FALSE(contains(s, secret));
}
