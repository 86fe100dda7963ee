// Real resource limits (issue 7): the service under a low RLIMIT_NOFILE and a low RLIMIT_NPROC,
// each in a probe process of its own (limits_probe) so this runner keeps its limits.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch_test_macros.hpp>
#include <cstdlib>
#include <filesystem>

#include "core/process/process.hpp"
#include "guard.hpp"

namespace cp = core::process;
namespace fs = std::filesystem;

namespace {

struct Probe {
    std::string output;
    int exit_code;
};

Probe run_probe(const std::string& mode, const std::string& helper) {
    auto c = core::Core::create({cp::register_service});
    REQUIRE(c);
    REQUIRE((*c)->startup(core::Context::background()));
    auto svc = (*c)->service<cp::Service>("process");
    cp::RunOptions o;
    o.command = CORE_TEST_LIMITS_PROBE;
    o.args = {mode, helper};
    o.timeout = std::chrono::seconds(120);
    auto p = svc->start(core::Context::background(), o);
    REQUIRE(p);
    auto info = (*p)->wait();
    Probe out{(*p)->output(), info.exit_code};
    REQUIRE((*c)->shutdown(core::Context::background()));
    return out;
}

}  // namespace

TEST_CASE("Limits_Nofile_Bad", "[stress][limits]") {
    CORE_LEAK_GUARD();
    auto probe = run_probe("nofile", core::test::child_path());
    INFO(probe.output);
    CHECK(probe.exit_code == 0);
    CHECK(probe.output.rfind("ok started=", 0) == 0);
    CHECK(probe.output.find("Too many open files") != std::string::npos);
}

TEST_CASE("Limits_Nproc_Bad", "[stress][limits]") {
    CORE_LEAK_GUARD();
    // The probe drops to uid 65534, which must be able to execute the helper: copy it into a
    // world-readable directory of its own.
    char tmpl[] = "/tmp/core-limits-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    const fs::path dir = tmpl;
    ::chmod(dir.c_str(), 0755);
    const fs::path helper = dir / "child";
    fs::copy_file(core::test::child_path(), helper);
    ::chmod(helper.c_str(), 0755);
    auto probe = run_probe("nproc", helper.string());
    fs::remove_all(dir);
    INFO(probe.output);
    if (probe.exit_code == 77) {
        SKIP(probe.output);
    }
    CHECK(probe.exit_code == 0);
    CHECK(probe.output.rfind("ok started=", 0) == 0);
    CHECK(probe.output.find("Resource temporarily unavailable") != std::string::npos);
}
