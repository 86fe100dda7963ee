// core::Value: empty, get<T> (null on mismatch), string literals as std::string, integer and
// duration views, type_name.
#include <catch2/catch_test_macros.hpp>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/value.hpp"
#include "guard.hpp"

using core::Value;
using namespace std::chrono_literals;

TEST_CASE("Value_Construct_Good", "[core][value]") {
    CORE_LEAK_GUARD();
    SECTION("string literal is stored as std::string") {
        const Value v = "echo";
        REQUIRE(v.get<std::string>() != nullptr);
        CHECK(*v.get<std::string>() == "echo");
        CHECK(v.get<const char*>() == nullptr);
    }
    SECTION("string_view and char* are stored as std::string") {
        const std::string_view sv = "hi";
        char buf[] = "mutable";
        char* p = buf;
        CHECK(*Value(sv).get<std::string>() == "hi");
        CHECK(*Value(p).get<std::string>() == "mutable");
    }
    SECTION("any copyable type") {
        const Value v = std::vector<std::string>{"a", "b"};
        REQUIRE(v.get<std::vector<std::string>>() != nullptr);
        CHECK(v.get<std::vector<std::string>>()->size() == 2);
        const Value m = std::map<std::string, int>{{"x", 1}};
        CHECK(m.get<std::map<std::string, int>>()->at("x") == 1);
    }
    SECTION("copies are independent") {
        Value a = std::string("one");
        Value b = a;
        a = std::string("two");
        CHECK(*b.get<std::string>() == "one");
        CHECK(*a.get<std::string>() == "two");
    }
}

TEST_CASE("Value_Construct_Bad", "[core][value]") {
    CORE_LEAK_GUARD();
    SECTION("a Value built from a Value is a copy, not a nested Value") {
        const Value inner = 5;
        const Value outer(inner);
        CHECK(outer.get<Value>() == nullptr);
        REQUIRE(outer.get<int>() != nullptr);
        CHECK(*outer.get<int>() == 5);
    }
    SECTION("an empty string literal is an empty string, not an empty Value") {
        const Value v = "";
        CHECK_FALSE(v.empty());
        CHECK(*v.get<std::string>() == "");
    }
}

TEST_CASE("Value_Empty_Good", "[core][value]") {
    CORE_LEAK_GUARD();
    CHECK(Value().empty());
    CHECK_FALSE(Value(0).empty());
    CHECK_FALSE(Value(false).empty());
    CHECK_FALSE(Value(std::string()).empty());
}

TEST_CASE("Value_Empty_Bad", "[core][value]") {
    CORE_LEAK_GUARD();
    const Value v;
    CHECK(v.get<int>() == nullptr);
    CHECK(v.get<std::string>() == nullptr);
    CHECK(v.type() == typeid(void));
    CHECK(v.type_name() == "empty");
    std::int64_t n = 42;
    CHECK_FALSE(v.to_integer(n));
    CHECK(n == 42);
}

TEST_CASE("Value_Get_Good", "[core][value]") {
    CORE_LEAK_GUARD();
    const Value i = 42;
    const Value b = true;
    const Value d = 1.5;
    REQUIRE(i.get<int>() != nullptr);
    CHECK(*i.get<int>() == 42);
    CHECK(*b.get<bool>() == true);
    CHECK(*d.get<double>() == 1.5);
    auto shared = std::make_shared<int>(7);
    const Value p = shared;
    CHECK(**p.get<std::shared_ptr<int>>() == 7);
}

TEST_CASE("Value_Get_Bad", "[core][value]") {
    CORE_LEAK_GUARD();
    const Value i = 42;
    CHECK(i.get<long>() == nullptr);  // exact type only: int is not long
    CHECK(i.get<std::string>() == nullptr);
    CHECK(i.get<bool>() == nullptr);
    const Value s = "42";
    CHECK(s.get<int>() == nullptr);
}

TEST_CASE("Value_Is_Good", "[core][value]") {
    CORE_LEAK_GUARD();
    CHECK(Value("x").is<std::string>());
    CHECK(Value(3u).is<unsigned>());
}

TEST_CASE("Value_Is_Bad", "[core][value]") {
    CORE_LEAK_GUARD();
    CHECK_FALSE(Value("x").is<const char*>());
    CHECK_FALSE(Value().is<int>());
}

TEST_CASE("Value_Type_Good", "[core][value]") {
    CORE_LEAK_GUARD();
    CHECK(Value(1).type() == typeid(int));
    CHECK(Value("s").type() == typeid(std::string));
}

TEST_CASE("Value_Type_Bad", "[core][value]") {
    CORE_LEAK_GUARD();
    CHECK(Value().type() == typeid(void));
    CHECK(Value(1).type() != typeid(long));
}

TEST_CASE("Value_ToInteger_Good", "[core][value]") {
    CORE_LEAK_GUARD();
    std::int64_t n = 0;
    SECTION("int") {
        CHECK((Value(-3).to_integer(n) && n == -3));
    }
    SECTION("unsigned char") {
        CHECK((Value(static_cast<unsigned char>(200)).to_integer(n) && n == 200));
    }
    SECTION("int8_t") {
        CHECK((Value(static_cast<std::int8_t>(-8)).to_integer(n) && n == -8));
    }
    SECTION("uint16_t") {
        CHECK((Value(static_cast<std::uint16_t>(65535)).to_integer(n) && n == 65535));
    }
    SECTION("long long") {
        CHECK((Value(-9000000000LL).to_integer(n) && n == -9000000000LL));
    }
    SECTION("size_t") {
        CHECK((Value(std::size_t{77}).to_integer(n) && n == 77));
    }
    SECTION("int64 max") {
        const auto max = std::numeric_limits<std::int64_t>::max();
        CHECK((Value(static_cast<std::uint64_t>(max)).to_integer(n) && n == max));
    }
}

TEST_CASE("Value_ToInteger_Bad", "[core][value]") {
    CORE_LEAK_GUARD();
    std::int64_t n = 5;
    CHECK_FALSE(Value(true).to_integer(n));  // bool is not an integer
    CHECK_FALSE(Value('a').to_integer(n));   // nor is a char
    CHECK_FALSE(Value(1.0).to_integer(n));   // nor a double
    CHECK_FALSE(Value("12").to_integer(n));  // nor a numeric string
    CHECK_FALSE(Value(5ms).to_integer(n));   // nor a duration
    CHECK_FALSE(Value(std::numeric_limits<std::uint64_t>::max()).to_integer(n));  // overflow
    CHECK(n == 5);
}

TEST_CASE("Value_ToDuration_Good", "[core][value]") {
    CORE_LEAK_GUARD();
    std::chrono::nanoseconds d{};
    CHECK((Value(1500ms).to_duration(d) && d == 1500ms));
    CHECK((Value(2s).to_duration(d) && d == 2s));
    CHECK((Value(std::chrono::minutes(3)).to_duration(d) && d == 180s));
    CHECK((Value(std::chrono::days(1)).to_duration(d) && d == 24h));
    CHECK((Value(std::chrono::duration<double>(0.25)).to_duration(d) && d == 250ms));
    CHECK((Value(std::chrono::duration<int, std::ratio<1, 10>>(3)).to_duration(d) && d == 300ms));
    CHECK((Value(std::chrono::duration<float, std::milli>(2.0f)).to_duration(d) && d == 2ms));
}

TEST_CASE("Value_ToDuration_Bad", "[core][value]") {
    CORE_LEAK_GUARD();
    std::chrono::nanoseconds d{7};
    CHECK_FALSE(Value(5).to_duration(d));  // an integer is not a duration here (Options decides)
    CHECK_FALSE(Value("5s").to_duration(d));
    CHECK_FALSE(Value(std::chrono::hours::max()).to_duration(d));  // does not fit in ns
    CHECK_FALSE(Value(std::chrono::duration<double>(std::numeric_limits<double>::quiet_NaN()))
                    .to_duration(d));
    CHECK_FALSE(Value(std::chrono::duration<double>(std::numeric_limits<double>::infinity()))
                    .to_duration(d));
    CHECK(d == std::chrono::nanoseconds{7});
}

TEST_CASE("Value_TypeName_Good", "[core][value]") {
    CORE_LEAK_GUARD();
    CHECK(Value("s").type_name() == "string");
    CHECK(Value(true).type_name() == "bool");
    CHECK(Value(1).type_name() == "integer");
    CHECK(Value(std::uint8_t{1}).type_name() == "integer");
    CHECK(Value(1.5).type_name() == "number");
    CHECK(Value(std::vector<std::string>{}).type_name() == "string list");
    CHECK(Value(1s).type_name() == "duration");
    CHECK(Value(std::chrono::duration<double>(1)).type_name() == "duration");
}

TEST_CASE("Value_TypeName_Bad", "[core][value]") {
    CORE_LEAK_GUARD();
    CHECK(Value().type_name() == "empty");
    CHECK(Value('c').type_name() == "char");
    struct Custom {};
    CHECK_FALSE(Value(Custom{}).type_name().empty());  // some non-empty description
}
