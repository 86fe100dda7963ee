// core::id(): "id-<counter>-<6 hex>", unique within the process, across threads.
#include <catch2/catch_test_macros.hpp>
#include <cstdint>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/id.hpp"
#include "guard.hpp"

namespace {

const std::regex kIdFormat("^id-([1-9][0-9]*)-[0-9a-f]{6}$");

std::uint64_t counter_of(const std::string& id) {
    std::smatch m;
    REQUIRE(std::regex_match(id, m, kIdFormat));
    return std::stoull(m[1].str());
}

}  // namespace

TEST_CASE("Id_Id_Good", "[core][id]") {
    CORE_LEAK_GUARD();
    const std::string a = core::id();
    const std::string b = core::id();
    CHECK(std::regex_match(a, kIdFormat));
    CHECK(std::regex_match(b, kIdFormat));
    CHECK(a != b);
    CHECK(counter_of(b) > counter_of(a));
}

TEST_CASE("Id_Id_Bad", "[core][id]") {
    CORE_LEAK_GUARD();
    // id() takes no input; what can go wrong is the format (a short hex suffix when the random
    // part is small, a counter that repeats) — check every one of many ids.
    std::set<std::string> seen;
    std::uint64_t last = 0;
    for (int i = 0; i < 20000; ++i) {
        const std::string id = core::id();
        std::smatch m;
        REQUIRE(std::regex_match(id, m, kIdFormat));
        const std::uint64_t n = std::stoull(m[1].str());
        REQUIRE(n > last);
        last = n;
        REQUIRE(seen.insert(id).second);
    }
}

TEST_CASE("Id_Id_Ugly", "[core][id]") {
    CORE_LEAK_GUARD();
    constexpr int kThreads = 8;
    constexpr int kPerThread = 5000;
    std::vector<std::vector<std::string>> out(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&out, t] {
            out[static_cast<std::size_t>(t)].reserve(kPerThread);
            for (int i = 0; i < kPerThread; ++i)
                out[static_cast<std::size_t>(t)].push_back(core::id());
        });
    }
    for (auto& th : threads) th.join();
    std::set<std::string> all;
    std::set<std::uint64_t> counters;
    for (const auto& v : out) {
        for (const auto& id : v) {
            REQUIRE(std::regex_match(id, kIdFormat));
            all.insert(id);
            counters.insert(counter_of(id));
        }
    }
    CHECK(all.size() == static_cast<std::size_t>(kThreads * kPerThread));
    // The counter alone is unique: the random suffix is never what keeps ids apart.
    CHECK(counters.size() == static_cast<std::size_t>(kThreads * kPerThread));
}
