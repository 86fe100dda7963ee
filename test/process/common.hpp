// Shared helpers of the process tests: a started Core with the process service, RunOptions for
// the helper child, and small predicates.
#pragma once

#include <signal.h>

#include <catch2/catch_test_macros.hpp>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/process/process.hpp"
#include "guard.hpp"

namespace cp = core::process;
using namespace std::chrono_literals;
using Strings = std::vector<std::string>;

namespace proctest {

inline std::shared_ptr<core::Core> make_core(cp::ServiceOptions opts = {}) {
    auto c = core::Core::create({cp::service_factory(opts)});
    REQUIRE(c);
    REQUIRE((*c)->startup(core::Context::background()));
    return *c;
}

inline std::shared_ptr<cp::Service> service(const std::shared_ptr<core::Core>& c) {
    auto s = c->service<cp::Service>("process");
    REQUIRE(s);
    return s;
}

inline cp::RunOptions child(Strings args) {
    cp::RunOptions o;
    o.command = core::test::child_path();
    o.args = std::move(args);
    return o;
}

inline core::Options child_opts(Strings args) {
    return core::Options{{"command", std::string(core::test::child_path())}, {"args", args}};
}

inline bool contains(const std::string& hay, const std::string& needle) {
    return hay.find(needle) != std::string::npos;
}

// True while pid names a live (not zombie) process.
inline bool alive(int pid) {
    if (::kill(pid, 0) != 0) return false;
    FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
    if (!f) return false;
    char buf[512] = {0};
    const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    std::string s(buf, n);
    auto close = s.rfind(')');
    if (close == std::string::npos || close + 2 >= s.size()) return false;
    return s[close + 2] != 'Z' && s[close + 2] != 'X';
}

// Forces a spawn method for a scope, then puts back the one the run started with (the suite
// runs once as is and once with CORE_PROCESS_SPAWN=posix_spawn).
class SpawnMethodScope {
  public:
    explicit SpawnMethodScope(cp::SpawnMethod m) { cp::set_spawn_method(m); }
    ~SpawnMethodScope() { cp::set_spawn_method(initial()); }
    SpawnMethodScope(const SpawnMethodScope&) = delete;
    SpawnMethodScope& operator=(const SpawnMethodScope&) = delete;

    // The method this run started with, from CORE_PROCESS_SPAWN as the library reads it.
    static cp::SpawnMethod initial() {
        const char* v = std::getenv("CORE_PROCESS_SPAWN");
        if (v && std::string(v) == "posix_spawn") return cp::SpawnMethod::posix_spawn;
        if (v && std::string(v) == "clone3") return cp::SpawnMethod::clone3;
        return cp::SpawnMethod::automatic;
    }
};

}  // namespace proctest
