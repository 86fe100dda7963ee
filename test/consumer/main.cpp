// The consumer program: uses the public API only, through the umbrella headers. First a Core
// without the process service (the facade refuses: the permission model), then one with it
// (echo runs). Exit 0 and print "consumer ok" when the library behaves; else say what failed.
#include <core/core.hpp>
#include <core/process/process.hpp>
#include <cstdio>
#include <string>

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
    if (ok) return;
    std::fprintf(stderr, "consumer: FAILED: %s\n", what);
    ++failures;
}

}  // namespace

int main() {
    auto created = core::Core::create();
    if (!created) {
        std::fprintf(stderr, "consumer: Core::create: %s\n", created.error().what().c_str());
        return 1;
    }
    auto& c = **created;
    const auto ctx = core::Context::background().with_timeout(std::chrono::seconds(10));

    // No process service is registered here: the facade says so and refuses (the permission
    // model), instead of running anything.
    expect(!c.process().exists(), "process().exists() is false without the process service");
    auto run = c.process().run(ctx, "echo", {"hi"});
    expect(!run, "process().run fails without the process service");
    if (!run) {
        const std::string what = run.error().what();
        expect(what.find("action not registered: process.run") != std::string::npos,
               "the Error says `action not registered: process.run`");
    }

    // Actions registered by the consumer work through the same Core.
    auto reg = c.action("consumer.greet",
                        [](const core::Context&, const core::Options& o) -> core::Result<> {
                            return "hello " + o.string("who");
                        });
    expect(static_cast<bool>(reg), "registering an action");
    auto greet = c.action("consumer.greet").run(ctx, core::Options{{"who", "subproject"}});
    expect(greet && greet->get<std::string>() && *greet->get<std::string>() == "hello subproject",
           "running a registered action");

    // With the process service registered, the same facade runs echo.
    auto with = core::Core::create({core::process::register_service});
    if (!with) {
        std::fprintf(stderr, "consumer: Core::create: %s\n", with.error().what().c_str());
        return 1;
    }
    auto& p = **with;
    auto started = p.startup(ctx);
    expect(static_cast<bool>(started), "startup with the process service");
    expect(p.process().exists(), "process().exists() is true with the process service");
    auto echo = p.process().run(ctx, "echo", {"hi"});
    if (!echo) std::fprintf(stderr, "consumer: echo: %s\n", echo.error().what().c_str());
    expect(echo && *echo == "hi\n", "process().run(echo hi) returns \"hi\\n\"");
    auto stopped = p.shutdown(ctx);
    expect(static_cast<bool>(stopped), "shutdown with the process service");

    if (failures != 0) return 1;
    std::printf("consumer ok: without the service: %s; with it: echo printed %s",
                run ? "ran" : run.error().what().c_str(), echo ? echo->c_str() : "nothing\n");
    return 0;
}
