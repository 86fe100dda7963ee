// core::Error and its builders: op/message/code/cause/what, E(), E_errno(), with_code().
#include <catch2/catch_test_macros.hpp>
#include <cerrno>
#include <cstring>
#include <string>

#include "core/error.hpp"
#include "guard.hpp"

using core::E;
using core::E_errno;
using core::Error;

TEST_CASE("Error_Op_Good", "[core][error]") {
    CORE_LEAK_GUARD();
    const Error e("process.run", "exec \"gti\"", ENOENT);
    CHECK(e.op() == "process.run");
}

TEST_CASE("Error_Op_Bad", "[core][error]") {
    CORE_LEAK_GUARD();
    SECTION("default-constructed Error has empty parts") {
        const Error e;
        CHECK(e.op().empty());
        CHECK(e.message().empty());
        CHECK(e.code() == 0);
        CHECK(e.cause() == nullptr);
        CHECK(e.what().empty());
    }
    SECTION("empty op is kept empty, not invented") {
        const Error e = E("", "boom");
        CHECK(e.op().empty());
        CHECK(e.what() == "boom");
    }
}

TEST_CASE("Error_Message_Good", "[core][error]") {
    CORE_LEAK_GUARD();
    const Error e = E("options", "missing key: command");
    CHECK(e.message() == "missing key: command");
}

TEST_CASE("Error_Message_Bad", "[core][error]") {
    CORE_LEAK_GUARD();
    const Error e = E("options", "");
    CHECK(e.message().empty());
    CHECK(e.what() == "options");
}

TEST_CASE("Error_Code_Good", "[core][error]") {
    CORE_LEAK_GUARD();
    SECTION("own code") {
        CHECK(Error("op", "msg", EMFILE).code() == EMFILE);
    }
    SECTION("inherited from the cause when not set") {
        const Error inner("pipe2", "make pipe", EMFILE);
        const Error outer = E("process.run", "spawn", inner);
        CHECK(outer.code() == EMFILE);
    }
    SECTION("own code wins over the cause's") {
        const Error inner("pipe2", "make pipe", EMFILE);
        const Error outer("process.run", "spawn", inner, EINVAL);
        CHECK(outer.code() == EINVAL);
    }
}

TEST_CASE("Error_Code_Bad", "[core][error]") {
    CORE_LEAK_GUARD();
    CHECK(E("op", "no errno here").code() == 0);
    CHECK(E("op", "wraps", E("inner", "no errno either")).code() == 0);
}

TEST_CASE("Error_Cause_Good", "[core][error]") {
    CORE_LEAK_GUARD();
    const Error inner = E("inner", "why");
    const Error outer = E("outer", "what", inner);
    REQUIRE(outer.cause() != nullptr);
    CHECK(outer.cause()->op() == "inner");
    CHECK(outer.cause()->message() == "why");
    SECTION("a copy shares an equal cause") {
        const Error copy = outer;  // NOLINT(performance-unnecessary-copy-initialization)
        REQUIRE(copy.cause() != nullptr);
        CHECK(copy.what() == outer.what());
    }
    SECTION("three levels") {
        const Error top = E("top", "t", outer);
        REQUIRE(top.cause() != nullptr);
        REQUIRE(top.cause()->cause() != nullptr);
        CHECK(top.cause()->cause()->op() == "inner");
        CHECK(top.what() == "top: t: outer: what: inner: why");
    }
}

TEST_CASE("Error_Cause_Bad", "[core][error]") {
    CORE_LEAK_GUARD();
    CHECK(E("op", "msg").cause() == nullptr);
    CHECK(Error("op", "msg", 5).cause() == nullptr);
}

TEST_CASE("Error_What_Good", "[core][error]") {
    CORE_LEAK_GUARD();
    CHECK(E("process.run", "exec \"gti\": No such file or directory").what() ==
          "process.run: exec \"gti\": No such file or directory");
    CHECK(E("a", "b", E("c", "d")).what() == "a: b: c: d");
}

TEST_CASE("Error_What_Bad", "[core][error]") {
    CORE_LEAK_GUARD();
    SECTION("empty message left out") {
        CHECK(E("op", "", E("c", "d")).what() == "op: c: d");
    }
    SECTION("empty op left out") {
        CHECK(E("", "msg", E("c", "d")).what() == "msg: c: d");
    }
    SECTION("empty cause left out") {
        CHECK(E("op", "msg", Error()).what() == "op: msg");
    }
    SECTION("everything empty") {
        CHECK(E("", "", Error()).what().empty());
    }
}

TEST_CASE("Error_E_Good", "[core][error]") {
    CORE_LEAK_GUARD();
    const Error e = E("core.action", "empty action name");
    CHECK(e.op() == "core.action");
    CHECK(e.message() == "empty action name");
    CHECK(e.code() == 0);
    const Error w = E("core.create", "factory 0 failed", e);
    REQUIRE(w.cause() != nullptr);
    CHECK(w.what() == "core.create: factory 0 failed: core.action: empty action name");
}

TEST_CASE("Error_E_Bad", "[core][error]") {
    CORE_LEAK_GUARD();
    // Wrong input to a builder is still a usable Error, never a crash.
    const Error e = E("", "");
    CHECK(e.what().empty());
    const Error w = E("", "", e);
    REQUIRE(w.cause() != nullptr);
    CHECK(w.what().empty());
}

TEST_CASE("Error_EErrno_Good", "[core][error]") {
    CORE_LEAK_GUARD();
    const Error e = E_errno("process.run", "exec \"gti\"", ENOENT);
    CHECK(e.code() == ENOENT);
    CHECK(e.what() == "process.run: exec \"gti\": No such file or directory");
    SECTION("empty message gives just the errno text") {
        CHECK(E_errno("pipe2", "", EMFILE).what() == "pipe2: Too many open files");
    }
}

TEST_CASE("Error_EErrno_Bad", "[core][error]") {
    CORE_LEAK_GUARD();
    SECTION("unknown errno still gives a message and keeps the code") {
        const Error e = E_errno("op", "call", 99999);
        CHECK(e.code() == 99999);
        CHECK(e.what().rfind("op: call: ", 0) == 0);
        CHECK(e.what().size() > std::string("op: call: ").size());
    }
    SECTION("errno 0") {
        const Error e = E_errno("op", "call", 0);
        CHECK(e.code() == 0);
        CHECK(e.what().rfind("op: call: ", 0) == 0);
    }
}

TEST_CASE("Error_WithCode_Good", "[core][error]") {
    CORE_LEAK_GUARD();
    const Error e = E("op", "msg", E("inner", "x"));
    const Error c = e.with_code(ETIMEDOUT);
    CHECK(c.code() == ETIMEDOUT);
    CHECK(c.what() == e.what());
    CHECK(e.code() == 0);  // the original is unchanged
}

TEST_CASE("Error_WithCode_Bad", "[core][error]") {
    CORE_LEAK_GUARD();
    // Clearing the code falls back to the cause's code, as for an Error built without one.
    const Error e("op", "msg", Error("inner", "x", EIO), EPERM);
    CHECK(e.with_code(0).code() == EIO);
    CHECK(Error("op", "msg", 7).with_code(0).code() == 0);
}
