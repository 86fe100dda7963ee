// core::Options: ordered key→Value with lenient typed getters (zero values) and checked
// want_* getters for parsers; parse_duration.
#include <catch2/catch_test_macros.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/options.hpp"
#include "guard.hpp"

using core::Options;
using core::Value;
using namespace std::chrono_literals;
using Strings = std::vector<std::string>;

namespace {

std::vector<std::string> keys(const Options& o) {
    std::vector<std::string> out;
    for (const auto& [k, v] : o.entries()) out.push_back(k);
    return out;
}

}  // namespace

TEST_CASE("Options_Construct_Good", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"command", "echo"}, {"args", Strings{"hi"}}, {"timeout", 2s}};
    CHECK(o.size() == 3);
    CHECK(keys(o) == Strings{"command", "args", "timeout"});
    CHECK(o.string("command") == "echo");
    CHECK(o.strings("args") == Strings{"hi"});
    CHECK(o.duration("timeout") == 2s);
}

TEST_CASE("Options_Construct_Bad", "[core][options]") {
    CORE_LEAK_GUARD();
    SECTION("a repeated key keeps its first position and the last value") {
        const Options o{{"a", 1}, {"b", 2}, {"a", 3}};
        CHECK(o.size() == 2);
        CHECK(keys(o) == Strings{"a", "b"});
        CHECK(o.integer("a") == 3);
    }
    SECTION("empty") {
        const Options o{};
        CHECK(o.size() == 0);
        CHECK(o.entries().empty());
    }
}

TEST_CASE("Options_Set_Good", "[core][options]") {
    CORE_LEAK_GUARD();
    Options o;
    o.set("x", 1).set("y", "two").set("z", true);
    CHECK(keys(o) == Strings{"x", "y", "z"});
    o.set("x", "replaced");
    CHECK(keys(o) == Strings{"x", "y", "z"});  // replacing keeps the position
    CHECK(o.string("x") == "replaced");
}

TEST_CASE("Options_Set_Bad", "[core][options]") {
    CORE_LEAK_GUARD();
    Options o;
    SECTION("empty key is a key like any other") {
        o.set("", 1);
        CHECK(o.has(""));
        CHECK(o.integer("") == 1);
    }
    SECTION("an empty Value is present but has no type") {
        o.set("k", Value());
        CHECK(o.has("k"));
        REQUIRE(o.get("k"));
        CHECK(o.get("k")->empty());
        CHECK(o.string("k").empty());
    }
}

TEST_CASE("Options_Get_Good", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"n", 5}};
    auto v = o.get("n");
    REQUIRE(v);
    REQUIRE(v->get<int>() != nullptr);
    CHECK(*v->get<int>() == 5);
}

TEST_CASE("Options_Get_Bad", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"n", 5}};
    auto v = o.get("missing");
    REQUIRE_FALSE(v);
    CHECK(v.error().what() == "options: missing key: missing");
}

TEST_CASE("Options_Has_Good", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"a", 1}};
    CHECK(o.has("a"));
}

TEST_CASE("Options_Has_Bad", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"a", 1}};
    CHECK_FALSE(o.has("A"));  // keys are case-sensitive
    CHECK_FALSE(o.has(""));
    CHECK_FALSE(Options().has("a"));
}

TEST_CASE("Options_Size_Good", "[core][options]") {
    CORE_LEAK_GUARD();
    Options o{{"a", 1}, {"b", 2}};
    CHECK(o.size() == 2);
    o.set("c", 3);
    CHECK(o.size() == 3);
}

TEST_CASE("Options_Size_Bad", "[core][options]") {
    CORE_LEAK_GUARD();
    Options o{{"a", 1}};
    o.set("a", 2);  // replace, not add
    CHECK(o.size() == 1);
    CHECK(Options().size() == 0);
}

TEST_CASE("Options_Remove_Good", "[core][options]") {
    CORE_LEAK_GUARD();
    Options o{{"a", 1}, {"b", 2}, {"c", 3}};
    CHECK(o.remove("b"));
    CHECK(keys(o) == Strings{"a", "c"});
}

TEST_CASE("Options_Remove_Bad", "[core][options]") {
    CORE_LEAK_GUARD();
    Options o{{"a", 1}};
    CHECK_FALSE(o.remove("zzz"));
    CHECK(o.size() == 1);
}

TEST_CASE("Options_Entries_Good", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"b", 1}, {"a", "x"}};
    const auto& e = o.entries();
    REQUIRE(e.size() == 2);
    CHECK(e[0].first == "b");
    CHECK(*e[0].second.get<int>() == 1);
    CHECK(e[1].first == "a");
    CHECK(*e[1].second.get<std::string>() == "x");
}

TEST_CASE("Options_Entries_Bad", "[core][options]") {
    CORE_LEAK_GUARD();
    Options o{{"a", 1}};
    CHECK(o.remove("a"));
    CHECK(o.entries().empty());
    CHECK(Options().entries().empty());
}

TEST_CASE("Options_String_Good", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"s", "text"}, {"owned", std::string("own")}};
    CHECK(o.string("s") == "text");
    CHECK(o.string("owned") == "own");
}

TEST_CASE("Options_String_Bad", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"n", 5}};
    CHECK(o.string("n").empty());        // wrong type → zero value
    CHECK(o.string("missing").empty());  // missing → zero value
}

TEST_CASE("Options_Integer_Good", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"int", 1},
                    {"long", 2L},
                    {"ull", 3ULL},
                    {"i8", static_cast<std::int8_t>(-4)},
                    {"u16", static_cast<std::uint16_t>(5)},
                    {"size", std::size_t{6}},
                    {"neg", -7LL}};
    CHECK(o.integer("int") == 1);
    CHECK(o.integer("long") == 2);
    CHECK(o.integer("ull") == 3);
    CHECK(o.integer("i8") == -4);
    CHECK(o.integer("u16") == 5);
    CHECK(o.integer("size") == 6);
    CHECK(o.integer("neg") == -7);
}

TEST_CASE("Options_Integer_Bad", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"s", "5"}, {"b", true}, {"d", 2.5}, {"huge", UINT64_MAX}};
    CHECK(o.integer("s") == 0);
    CHECK(o.integer("b") == 0);
    CHECK(o.integer("d") == 0);
    CHECK(o.integer("huge") == 0);  // does not fit in int64
    CHECK(o.integer("missing") == 0);
}

TEST_CASE("Options_Boolean_Good", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"yes", true}, {"no", false}};
    CHECK(o.boolean("yes"));
    CHECK_FALSE(o.boolean("no"));
}

TEST_CASE("Options_Boolean_Bad", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"one", 1}, {"str", "true"}};
    CHECK_FALSE(o.boolean("one"));
    CHECK_FALSE(o.boolean("str"));
    CHECK_FALSE(o.boolean("missing"));
}

TEST_CASE("Options_Strings_Good", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"args", Strings{"-c", "echo hi"}}, {"none", Strings{}}};
    CHECK(o.strings("args") == Strings{"-c", "echo hi"});
    CHECK(o.strings("none").empty());
}

TEST_CASE("Options_Strings_Bad", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"one", "single"}, {"ints", std::vector<int>{1, 2}}};
    CHECK(o.strings("one").empty());
    CHECK(o.strings("ints").empty());
    CHECK(o.strings("missing").empty());
}

TEST_CASE("Options_Duration_Good", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"ms", 250ms},
                    {"s", 2s},
                    {"min", std::chrono::minutes(1)},
                    {"dbl", std::chrono::duration<double>(0.5)},
                    {"int_ms", 1500},
                    {"u_ms", 20u}};
    CHECK(o.duration("ms") == 250ms);
    CHECK(o.duration("s") == 2s);
    CHECK(o.duration("min") == 60s);
    CHECK(o.duration("dbl") == 500ms);
    CHECK(o.duration("int_ms") == 1500ms);  // an integer is milliseconds
    CHECK(o.duration("u_ms") == 20ms);
}

TEST_CASE("Options_Duration_Bad", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"str", "2s"}, {"b", true}, {"huge", std::chrono::hours::max()}};
    CHECK(o.duration("str") == 0ns);  // lenient getter: strings are for want_duration
    CHECK(o.duration("b") == 0ns);
    CHECK(o.duration("huge") == 0ns);
    CHECK(o.duration("missing") == 0ns);
}

TEST_CASE("Options_WantString_Good", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"dir", "/tmp"}};
    auto r = o.want_string("process.run", "dir");
    REQUIRE(r);
    CHECK(*r == "/tmp");
    auto fb = o.want_string("process.run", "missing", "fallback");
    REQUIRE(fb);
    CHECK(*fb == "fallback");
}

TEST_CASE("Options_WantString_Bad", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"dir", 5}};
    auto r = o.want_string("process.run", "dir");
    REQUIRE_FALSE(r);
    CHECK(r.error().what() == "process.run: option \"dir\": want string, got integer");
}

TEST_CASE("Options_WantInteger_Good", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"pid", 1234L}};
    auto r = o.want_integer("process.kill", "pid");
    REQUIRE(r);
    CHECK(*r == 1234);
    auto fb = o.want_integer("process.kill", "missing", -1);
    REQUIRE(fb);
    CHECK(*fb == -1);
}

TEST_CASE("Options_WantInteger_Bad", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"pid", "1234"}};
    auto r = o.want_integer("process.kill", "pid");
    REQUIRE_FALSE(r);
    CHECK(r.error().what() == "process.kill: option \"pid\": want integer, got string");
}

TEST_CASE("Options_WantBoolean_Good", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"detach", true}};
    auto r = o.want_boolean("process.start", "detach");
    REQUIRE(r);
    CHECK(*r);
    auto fb = o.want_boolean("process.start", "missing", true);
    REQUIRE(fb);
    CHECK(*fb);
}

TEST_CASE("Options_WantBoolean_Bad", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"detach", 1}};
    auto r = o.want_boolean("process.start", "detach");
    REQUIRE_FALSE(r);
    CHECK(r.error().what() == "process.start: option \"detach\": want bool, got integer");
}

TEST_CASE("Options_WantStrings_Good", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"args", Strings{"a", "b"}}};
    auto r = o.want_strings("process.run", "args");
    REQUIRE(r);
    CHECK(*r == Strings{"a", "b"});
    auto missing = o.want_strings("process.run", "env");
    REQUIRE(missing);
    CHECK(missing->empty());
}

TEST_CASE("Options_WantStrings_Bad", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"args", "a b"}};
    auto r = o.want_strings("process.run", "args");
    REQUIRE_FALSE(r);
    CHECK(r.error().what() == "process.run: option \"args\": want string list, got string");
}

TEST_CASE("Options_WantDuration_Good", "[core][options]") {
    CORE_LEAK_GUARD();
    const Options o{{"d", 3s}, {"ms", 250}, {"text", "1.5s"}};
    auto d = o.want_duration("process.run", "d");
    REQUIRE(d);
    CHECK(*d == 3s);
    auto ms = o.want_duration("process.run", "ms");
    REQUIRE(ms);
    CHECK(*ms == 250ms);
    auto text = o.want_duration("process.run", "text");
    REQUIRE(text);
    CHECK(*text == 1500ms);
    auto fb = o.want_duration("process.run", "missing", 9s);
    REQUIRE(fb);
    CHECK(*fb == 9s);
}

TEST_CASE("Options_WantDuration_Bad", "[core][options]") {
    CORE_LEAK_GUARD();
    SECTION("wrong type") {
        const Options o{{"timeout", true}};
        auto r = o.want_duration("process.run", "timeout");
        REQUIRE_FALSE(r);
        CHECK(r.error().what() == "process.run: option \"timeout\": want duration, got bool");
    }
    SECTION("negative") {
        const Options o{{"timeout", -5s}};
        auto r = o.want_duration("process.run", "timeout");
        REQUIRE_FALSE(r);
        CHECK(r.error().what() == "process.run: option \"timeout\": negative duration");
    }
    SECTION("unparsable string names the key and the text") {
        const Options o{{"timeout", "soon"}};
        auto r = o.want_duration("process.run", "timeout");
        REQUIRE_FALSE(r);
        CHECK(r.error().what().find("process.run: option \"timeout\"") == 0);
        CHECK(r.error().what().find("\"soon\"") != std::string::npos);
    }
}

TEST_CASE("Options_ValueToInteger_Good", "[core][options]") {
    CORE_LEAK_GUARD();
    std::int64_t n = 0;
    CHECK((core::value_to_integer(Value(42u), n) && n == 42));
}

TEST_CASE("Options_ValueToInteger_Bad", "[core][options]") {
    CORE_LEAK_GUARD();
    std::int64_t n = 0;
    CHECK_FALSE(core::value_to_integer(Value("42"), n));
    CHECK_FALSE(core::value_to_integer(Value(), n));
}

TEST_CASE("Options_ValueToDuration_Good", "[core][options]") {
    CORE_LEAK_GUARD();
    std::chrono::nanoseconds d{};
    CHECK((core::value_to_duration(Value(5s), d) && d == 5s));
    CHECK((core::value_to_duration(Value(5), d) && d == 5ms));
}

TEST_CASE("Options_ValueToDuration_Bad", "[core][options]") {
    CORE_LEAK_GUARD();
    std::chrono::nanoseconds d{};
    CHECK_FALSE(core::value_to_duration(Value("5s"), d));
    // An integer count of milliseconds that overflows nanoseconds is refused, not wrapped.
    CHECK_FALSE(core::value_to_duration(Value(INT64_MAX), d));
}

TEST_CASE("Options_ParseDuration_Good", "[core][options]") {
    CORE_LEAK_GUARD();
    struct Case {
        const char* text;
        std::chrono::nanoseconds want;
    };
    const Case cases[] = {{"500ms", 500ms}, {"2s", 2s},     {"1.5s", 1500ms},
                          {"1m", 60s},      {"1h", 3600s},  {"250us", 250us},
                          {"10ns", 10ns},   {"750", 750ms}, {"0", 0ns}};
    for (const auto& c : cases) {
        INFO(c.text);
        auto r = core::parse_duration(c.text);
        REQUIRE(r);
        CHECK(*r == c.want);
    }
}

TEST_CASE("Options_ParseDuration_Bad", "[core][options]") {
    CORE_LEAK_GUARD();
    for (const char* text : {"", "soon", "5 s", "5sec", "-1s", "nan", "inf", "ms", "1e30h"}) {
        INFO(text);
        auto r = core::parse_duration(text);
        REQUIRE_FALSE(r);
        CHECK(r.error().op() == "parse_duration");
        CHECK_FALSE(r.error().message().empty());
    }
}

// Issue 12 §4: huge but accepted durations. A typed or integer duration beyond nanoseconds
// saturates ("effectively never"); a string beyond it is an Error naming the key; nothing
// overflows (before: "9223372036.854775808s" was cast from 2^63 and came back negative).
TEST_CASE("Options_WantDuration_Ugly", "[core][options]") {
    CORE_LEAK_GUARD();
    SECTION("typed durations too large for nanoseconds saturate") {
        const Options o{{"ms", std::chrono::milliseconds::max()},
                        {"h", std::chrono::hours::max()},
                        {"dbl", std::chrono::duration<double>(1e300)},
                        {"int_ms", INT64_MAX}};
        for (const char* key : {"ms", "h", "dbl", "int_ms"}) {
            INFO(key);
            auto r = o.want_duration("process.run", key);
            REQUIRE(r);
            CHECK(*r == std::chrono::nanoseconds::max());
        }
    }
    SECTION("a typed duration too negative is still a negative duration") {
        const Options o{{"timeout", std::chrono::milliseconds::min()}};
        auto r = o.want_duration("process.run", "timeout");
        REQUIRE_FALSE(r);
        CHECK(r.error().what() == "process.run: option \"timeout\": negative duration");
    }
    SECTION("the largest string that fits parses exactly") {
        const Options o{{"timeout", "9223372036s"}};
        auto r = o.want_duration("process.run", "timeout");
        REQUIRE(r);
        CHECK(*r == std::chrono::seconds(9223372036));
    }
    SECTION("a string beyond the range is an Error naming the key") {
        for (const char* text : {"9223372037s", "9223372036.854775808s", "2562048h", "1e19ns"}) {
            INFO(text);
            const Options o{{"timeout", text}};
            auto r = o.want_duration("process.run", "timeout");
            REQUIRE_FALSE(r);
            CHECK(r.error().what().find("process.run: option \"timeout\"") == 0);
            CHECK(r.error().what().find("duration too large") != std::string::npos);
        }
    }
}

TEST_CASE("Options_ParseDuration_Ugly", "[core][options]") {
    CORE_LEAK_GUARD();
    // 2^63 ns exactly is one past the range: refused, never cast.
    auto edge = core::parse_duration("9223372036854775808ns");
    REQUIRE_FALSE(edge);
    CHECK(edge.error().what().find("duration too large") != std::string::npos);
    auto below = core::parse_duration("9223372036854774784ns");  // the largest double below 2^63
    REQUIRE(below);
    CHECK(below->count() == 9223372036854774784LL);
}
