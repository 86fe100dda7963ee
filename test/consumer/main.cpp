// The consumer program: uses the public API only, through <core/core.hpp>. Exit 0 and print
// "consumer ok" when the library behaves; print what went wrong and exit 1 otherwise.
#include <core/core.hpp>
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

    if (failures != 0) return 1;
    std::printf("consumer ok: %s\n", run ? "ran" : run.error().what().c_str());
    return 0;
}
