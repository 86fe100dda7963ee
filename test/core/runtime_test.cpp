#include <catch2/catch_test_macros.hpp>

#include "core/core.hpp"
#include "guard.hpp"

TEST_CASE("Runtime_PermissionModel_Ugly", "[core][runtime]") {
    CORE_LEAK_GUARD();
    auto c = core::Core::create();
    REQUIRE(c);
    auto r = (*c)->process().run(core::Context::background(), "echo", {"hi"});
    REQUIRE_FALSE(r);
    CHECK(r.error().what().find("action not registered: process.run") != std::string::npos);
    CHECK_FALSE((*c)->process().exists());
}
