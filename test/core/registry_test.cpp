// core::Registry<T>: thread-safe, insertion-ordered; replace keeps position; seal and lock.
#include <atomic>
#include <catch2/catch_test_macros.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/registry.hpp"
#include "guard.hpp"

using core::Registry;
using Strings = std::vector<std::string>;

TEST_CASE("Registry_Set_Good", "[core][registry]") {
    CORE_LEAK_GUARD();
    Registry<int> r("test");
    REQUIRE(r.set("a", 1));
    REQUIRE(r.set("b", 2));
    REQUIRE(r.set("c", 3));
    REQUIRE(r.set("a", 10));  // replace keeps the position
    CHECK(r.names() == Strings{"a", "b", "c"});
    CHECK(*r.get("a") == 10);
    SECTION("remove then set appends at the end") {
        REQUIRE(r.remove("a"));
        REQUIRE(r.set("a", 11));
        CHECK(r.names() == Strings{"b", "c", "a"});
    }
}

TEST_CASE("Registry_Set_Bad", "[core][registry]") {
    CORE_LEAK_GUARD();
    Registry<int> r("test");
    auto e = r.set("", 1);
    REQUIRE_FALSE(e);
    CHECK(e.error().what() == "test.set: empty name");
    CHECK(r.size() == 0);
}

TEST_CASE("Registry_Get_Good", "[core][registry]") {
    CORE_LEAK_GUARD();
    Registry<std::string> r;
    REQUIRE(r.set("k", "v"));
    auto v = r.get("k");
    REQUIRE(v);
    CHECK(*v == "v");
}

TEST_CASE("Registry_Get_Bad", "[core][registry]") {
    CORE_LEAK_GUARD();
    Registry<int> r("svc");
    auto v = r.get("nope");
    REQUIRE_FALSE(v);
    CHECK(v.error().what() == "svc.get: not found: nope");
    CHECK_FALSE(r.get(""));
}

TEST_CASE("Registry_Has_Good", "[core][registry]") {
    CORE_LEAK_GUARD();
    Registry<int> r;
    REQUIRE(r.set("x", 1));
    CHECK(r.has("x"));
}

TEST_CASE("Registry_Has_Bad", "[core][registry]") {
    CORE_LEAK_GUARD();
    Registry<int> r;
    REQUIRE(r.set("x", 1));
    CHECK_FALSE(r.has("X"));
    CHECK_FALSE(r.has(""));
    REQUIRE(r.remove("x"));
    CHECK_FALSE(r.has("x"));
}

TEST_CASE("Registry_Names_Good", "[core][registry]") {
    CORE_LEAK_GUARD();
    Registry<int> r;
    for (const char* n : {"zeta", "alpha", "mid"}) REQUIRE(r.set(n, 0));
    CHECK(r.names() == Strings{"zeta", "alpha", "mid"});  // insertion order, not sorted
}

TEST_CASE("Registry_Names_Bad", "[core][registry]") {
    CORE_LEAK_GUARD();
    Registry<int> r;
    CHECK(r.names().empty());
    REQUIRE(r.set("a", 1));
    REQUIRE(r.remove("a"));
    CHECK(r.names().empty());
}

TEST_CASE("Registry_Each_Good", "[core][registry]") {
    CORE_LEAK_GUARD();
    Registry<int> r;
    REQUIRE(r.set("a", 1));
    REQUIRE(r.set("b", 2));
    Strings seen;
    int sum = 0;
    r.each([&](const std::string& k, const int& v) {
        seen.push_back(k);
        sum += v;
    });
    CHECK(seen == Strings{"a", "b"});
    CHECK(sum == 3);
}

TEST_CASE("Registry_Each_Bad", "[core][registry]") {
    CORE_LEAK_GUARD();
    Registry<int> r;
    int calls = 0;
    r.each([&](const std::string&, const int&) { ++calls; });
    CHECK(calls == 0);
    SECTION("fn may write to the registry it walks (snapshot, no deadlock)") {
        REQUIRE(r.set("a", 1));
        REQUIRE(r.set("b", 2));
        r.each([&](const std::string& k, const int& v) {
            ++calls;
            REQUIRE(r.set(k + "2", v));
            REQUIRE(r.remove(k));
        });
        CHECK(calls == 2);
        CHECK(r.names() == Strings{"a2", "b2"});
    }
}

TEST_CASE("Registry_Remove_Good", "[core][registry]") {
    CORE_LEAK_GUARD();
    Registry<int> r;
    REQUIRE(r.set("a", 1));
    REQUIRE(r.set("b", 2));
    REQUIRE(r.remove("a"));
    CHECK(r.names() == Strings{"b"});
    CHECK(r.size() == 1);
}

TEST_CASE("Registry_Remove_Bad", "[core][registry]") {
    CORE_LEAK_GUARD();
    Registry<int> r("reg");
    auto e = r.remove("ghost");
    REQUIRE_FALSE(e);
    CHECK(e.error().what() == "reg.remove: not found: ghost");
}

TEST_CASE("Registry_RemoveIf_Good", "[core][registry]") {
    CORE_LEAK_GUARD();
    Registry<int> r;
    for (int i = 0; i < 6; ++i) REQUIRE(r.set("k" + std::to_string(i), i));
    CHECK(r.remove_if([](const std::string&, const int& v) { return v % 2 == 0; }) == 3);
    CHECK(r.names() == Strings{"k1", "k3", "k5"});
}

TEST_CASE("Registry_RemoveIf_Bad", "[core][registry]") {
    CORE_LEAK_GUARD();
    Registry<int> r;
    CHECK(r.remove_if([](const std::string&, const int&) { return true; }) == 0);
    REQUIRE(r.set("a", 1));
    CHECK(r.remove_if([](const std::string&, const int&) { return false; }) == 0);
    CHECK(r.size() == 1);
}

TEST_CASE("Registry_Size_Good", "[core][registry]") {
    CORE_LEAK_GUARD();
    Registry<int> r;
    REQUIRE(r.set("a", 1));
    REQUIRE(r.set("b", 1));
    CHECK(r.size() == 2);
}

TEST_CASE("Registry_Size_Bad", "[core][registry]") {
    CORE_LEAK_GUARD();
    Registry<int> r;
    CHECK(r.size() == 0);
    REQUIRE(r.set("a", 1));
    REQUIRE(r.set("a", 2));
    CHECK_FALSE(r.set("", 3));
    CHECK(r.size() == 1);
}

TEST_CASE("Registry_Seal_Good", "[core][registry]") {
    CORE_LEAK_GUARD();
    Registry<int> r;
    REQUIRE(r.set("a", 1));
    r.seal();
    CHECK(r.sealed());
    REQUIRE(r.set("a", 2));  // existing keys may still be replaced
    CHECK(*r.get("a") == 2);
    REQUIRE(r.remove("a"));  // and removed
}

TEST_CASE("Registry_Seal_Bad", "[core][registry]") {
    CORE_LEAK_GUARD();
    Registry<int> r("reg");
    r.seal();
    auto e = r.set("new", 1);
    REQUIRE_FALSE(e);
    CHECK(e.error().what() == "reg.set: registry is sealed: new");
    CHECK_FALSE(r.has("new"));
}

TEST_CASE("Registry_Lock_Good", "[core][registry]") {
    CORE_LEAK_GUARD();
    Registry<int> r;
    REQUIRE(r.set("a", 1));
    r.lock();
    CHECK(r.locked());
    CHECK(*r.get("a") == 1);  // reads still work
    CHECK(r.names() == Strings{"a"});
}

TEST_CASE("Registry_Lock_Bad", "[core][registry]") {
    CORE_LEAK_GUARD();
    Registry<int> r("reg");
    REQUIRE(r.set("a", 1));
    r.lock();
    auto s = r.set("a", 2);
    REQUIRE_FALSE(s);
    CHECK(s.error().what() == "reg.set: registry is locked: a");
    auto n = r.set("b", 2);
    REQUIRE_FALSE(n);
    auto d = r.remove("a");
    REQUIRE_FALSE(d);
    CHECK(d.error().what() == "reg.remove: registry is locked: a");
    CHECK(*r.get("a") == 1);
}

TEST_CASE("Registry_Sealed_Good", "[core][registry]") {
    CORE_LEAK_GUARD();
    Registry<int> r;
    r.seal();
    CHECK(r.sealed());
    CHECK_FALSE(r.locked());
}

TEST_CASE("Registry_Sealed_Bad", "[core][registry]") {
    CORE_LEAK_GUARD();
    Registry<int> r;
    CHECK_FALSE(r.sealed());
    r.lock();
    CHECK_FALSE(r.sealed());  // lock does not imply seal's flag
}

TEST_CASE("Registry_Locked_Good", "[core][registry]") {
    CORE_LEAK_GUARD();
    Registry<int> r;
    r.lock();
    CHECK(r.locked());
}

TEST_CASE("Registry_Locked_Bad", "[core][registry]") {
    CORE_LEAK_GUARD();
    Registry<int> r;
    CHECK_FALSE(r.locked());
    REQUIRE(r.set("a", 1));
    r.seal();
    CHECK_FALSE(r.locked());  // sealed is not locked: replacing still works
    CHECK(r.set("a", 2));
}

TEST_CASE("Registry_Set_Ugly", "[core][registry]") {
    CORE_LEAK_GUARD();
    // 8 threads hammer one registry: each owns keys t<t>-<i>, adds them, replaces them, reads,
    // lists and walks, and removes the even ones; a shared key is replaced by everybody.
    Registry<int> r("hammer");
    REQUIRE(r.set("shared", -1));
    constexpr int kThreads = 8;
    constexpr int kKeys = 300;
    std::atomic<bool> go{false};
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            while (!go.load()) std::this_thread::yield();
            const std::string prefix = "t" + std::to_string(t) + "-";
            for (int i = 0; i < kKeys; ++i) {
                const std::string k = prefix + std::to_string(i);
                if (!r.set(k, i)) ++failures;
                if (!r.set(k, i * 10)) ++failures;
                auto g = r.get(k);
                if (!g || *g != i * 10) ++failures;
                if (!r.set("shared", t)) ++failures;
                if (i % 16 == 0) {
                    const auto names = r.names();
                    if (names.empty() || names.front() != "shared") ++failures;
                    r.each([&](const std::string& name, const int&) {
                        if (name.empty()) ++failures;
                    });
                    (void)r.size();
                }
            }
            for (int i = 0; i < kKeys; i += 2)
                if (!r.remove(prefix + std::to_string(i))) ++failures;
        });
    }
    go = true;
    for (auto& th : threads) th.join();
    CHECK(failures == 0);
    CHECK(r.size() == 1 + kThreads * kKeys / 2);
    const auto names = r.names();
    REQUIRE(names.size() == r.size());
    CHECK(names.front() == "shared");  // replaced thousands of times, still first
    // Each thread's surviving keys appear in the order that thread inserted them.
    for (int t = 0; t < kThreads; ++t) {
        const std::string prefix = "t" + std::to_string(t) + "-";
        int last = -1;
        for (const auto& n : names) {
            if (n.rfind(prefix, 0) != 0) continue;
            const int i = std::stoi(n.substr(prefix.size()));
            CHECK(i % 2 == 1);
            CHECK(i > last);
            CHECK(*r.get(n) == i * 10);
            last = i;
        }
    }
}

TEST_CASE("Registry_Seal_Ugly", "[core][registry]") {
    CORE_LEAK_GUARD();
    // seal() and lock() while 8 writers run: once each returns, its rule holds at once.
    constexpr int kThreads = 8;
    Registry<int> r2;
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int t = 0; t < kThreads; ++t) {
        writers.emplace_back([&, t] {
            for (int i = 0; !stop.load(); ++i)
                (void)r2.set("w" + std::to_string(t) + "-" + std::to_string(i % 50), i);
        });
    }
    // CHECK, not REQUIRE: the writers must be joined whatever happens.
    CHECK(core::test::eventually([&] { return r2.size() >= 8; }));
    r2.seal();
    const std::size_t sealed_size = r2.size();
    r2.lock();
    const auto before = r2.names();
    CHECK(r2.size() == sealed_size);  // sealed: no key was added after seal() returned
    stop = true;
    for (auto& th : writers) th.join();
    CHECK(r2.names() == before);  // locked: nothing changed afterwards
}
