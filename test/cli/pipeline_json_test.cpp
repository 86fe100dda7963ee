// coreproc pipeline --json with the typed process model (issue 17 via issue 12): each step's
// stdout and stderr apart, its ExitStatus as an "exit_status" object (as process.exec's
// Completed::status), its usage, and every key the document had before. coreproc is spawned
// through the library; its stdout alone is the JSON document.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <signal.h>
#include <stdlib.h>

#include <catch2/catch_test_macros.hpp>
#include <nlohmann/json.hpp>

#include "core/process/managed_process.hpp"
#include "core/process/service.hpp"
#include "guard.hpp"

using namespace std::chrono_literals;
using core::Context;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// coreproc's stdout (stderr discarded: the JSON document is alone there) and exit code.
struct Ran {
    int code = -1;
    std::string out;
};

Ran run_coreproc(std::vector<std::string> args) {
    auto c = core::Core::create({core::process::register_service});
    REQUIRE(c);
    std::shared_ptr<core::Core> core = *c;
    REQUIRE(core->startup(Context::background()));
    auto* svc = core->service<core::process::Service>("process").get();
    REQUIRE(svc != nullptr);
    core::process::RunOptions o;
    o.command = core::test::coreproc_path();
    o.args = std::move(args);
    o.std_err = core::process::Stdio::null();
    auto mp = svc->start(Context::background(), o);
    REQUIRE(mp);
    if (!(*mp)->wait_for(60s)) {
        (void)(*mp)->signal(SIGKILL);
        FAIL("coreproc did not end within 60s");
    }
    const auto info = (*mp)->wait();
    Ran r;
    r.code = info.status == core::process::Status::exited ? info.exit_code : 128 + info.signal;
    r.out = (*mp)->output();
    (void)core->shutdown(Context::background());
    return r;
}

struct Dir {
    fs::path path;
    Dir() {
        std::string tmpl = (fs::temp_directory_path() / "pipeline-json-XXXXXX").string();
        REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~Dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string write(const std::string& name, const std::string& text) const {
        const fs::path p = path / name;
        std::ofstream(p) << text;
        return p.string();
    }
};

json step(const std::string& name, std::vector<std::string> args,
          std::vector<std::string> after = {}) {
    json s{{"name", name}, {"command", core::test::child_path()}, {"args", args}};
    if (!after.empty()) s["after"] = after;
    return s;
}

const json& by_name(const json& doc, const std::string& name) {
    for (const auto& s : doc["steps"])
        if (s["name"] == name) return s;
    FAIL("no step " << name << " in " << doc.dump());
    return doc;
}

}  // namespace

TEST_CASE("PipelineJson_Steps_Good", "[cli][pipeline]") {
    CORE_LEAK_GUARD();
    Dir dir;
    json p{{"steps",
            {step("both", {"interleave", "2"}), step("three", {"output-exit", "3", "0"}),
             step("signal", {"kill-self", "9"}), step("late", {"exit", "0"}, {"three"})}}};
    auto r = run_coreproc({"pipeline", "--json", dir.write("p.json", p.dump())});
    CHECK(r.code == 1);
    json doc = json::parse(r.out, nullptr, false);
    INFO("output: " << r.out);
    REQUIRE_FALSE(doc.is_discarded());
    SECTION("stdout and stderr apart, the combined output kept") {
        const json& s = by_name(doc, "both");
        CHECK(s["stdout"] == "out 0\nout 1\n");
        CHECK(s["stderr"] == "err 0\nerr 1\n");
        CHECK(s["output"].get<std::string>().size() == 24);
        CHECK(s["stdout_dropped"] == 0);
        CHECK(s["stderr_dropped"] == 0);
        CHECK(s["exit_status"]["kind"] == "exited");
        CHECK(s["exit_status"]["code"] == 0);
        CHECK(s["exit_status"]["reason"] == "natural");
        CHECK(s["exit_status"]["success"] == true);
        CHECK(s["usage"]["max_rss_bytes"].get<std::uint64_t>() > 0);
    }
    SECTION("a non-zero exit and a signal, typed") {
        const json& t = by_name(doc, "three");
        CHECK(t["exit_status"]["kind"] == "exited");
        CHECK(t["exit_status"]["code"] == 3);
        CHECK(t["exit_status"]["description"] == "exited with code 3");
        CHECK(t["stdout"] == "END\n");
        const json& k = by_name(doc, "signal");
        CHECK(k["exit_status"]["kind"] == "signalled");
        CHECK(k["exit_status"]["signal"] == 9);
        CHECK(k["exit_status"]["signal_name"] == "SIGKILL");
        CHECK(k["exit_status"]["code"] == -1);
    }
    SECTION("a skipped step: null exit_status and usage") {
        const json& l = by_name(doc, "late");
        CHECK(l["status"] == "skipped");
        CHECK(l["exit_status"].is_null());
        CHECK(l["usage"].is_null());
        CHECK(l["stdout"] == "");
    }
    SECTION("the keys from before are all still there") {
        for (const char* key :
             {"name", "command", "args", "status", "allowed_failure", "exit_code", "signal",
              "timed_out", "duration_ms", "started_at", "finished_at", "output", "error"})
            CHECK(by_name(doc, "three").contains(key));
        CHECK(by_name(doc, "three")["exit_code"] == 3);
        CHECK(by_name(doc, "signal")["signal"] == 9);
        for (const char* key :
             {"file", "ok", "passed", "failed", "allowed_failures", "skipped", "duration_ms"})
            CHECK(doc.contains(key));
    }
}

TEST_CASE("PipelineJson_Steps_Bad", "[cli][pipeline]") {
    CORE_LEAK_GUARD();
    Dir dir;
    json p{{"steps",
            {{{"name", "missing"}, {"command", "/nonexistent/coreproc-test-no-such-program"}},
             {{"name", "slow"},
              {"command", core::test::child_path()},
              {"args", {"sleep", "60000"}},
              {"timeout", "200ms"}}}}};
    auto r = run_coreproc({"pipeline", "--json", dir.write("p.json", p.dump())});
    CHECK(r.code == 1);
    json doc = json::parse(r.out, nullptr, false);
    INFO("output: " << r.out);
    REQUIRE_FALSE(doc.is_discarded());
    SECTION("a program that cannot start: failed_to_start with the reason") {
        const json& m = by_name(doc, "missing");
        CHECK(m["status"] == "failed");
        CHECK(m["exit_status"]["kind"] == "failed_to_start");
        CHECK(m["exit_status"]["detail"].get<std::string>().find("No such file") !=
              std::string::npos);
    }
    SECTION("a timeout: reason timeout, and timed_out as before") {
        const json& s = by_name(doc, "slow");
        CHECK(s["timed_out"] == true);
        CHECK(s["exit_status"]["reason"] == "timeout");
        CHECK(s["exit_status"]["timeout_ms"] == 200);
        CHECK(s["exit_status"]["kind"] == "signalled");
        CHECK(s["error"] == "timed out after 200ms");
    }
}
