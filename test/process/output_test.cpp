// The output ring (newest bytes kept, dropped counted, lazy growth) and the line splitter.
#include <catch2/catch_test_macros.hpp>
#include <string>
#include <vector>

#include "guard.hpp"
#include "process/output.hpp"

using core::process::detail::LineSplitter;
using core::process::detail::OutputRing;

TEST_CASE("OutputRing_Append_Good", "[process]") {
    CORE_LEAK_GUARD();
    OutputRing r(10);
    r.append("abc", 3);
    r.append("defg", 4);
    CHECK(r.str() == "abcdefg");
    CHECK(r.dropped() == 0);
    r.append("hijkl", 5);  // 12 bytes: keeps the newest 10
    CHECK(r.str() == "cdefghijkl");
    CHECK(r.dropped() == 2);
    CHECK(r.tail(3) == "jkl");
    CHECK(r.tail(100) == "cdefghijkl");
    r.append("mn", 2);
    CHECK(r.str() == "efghijklmn");
    CHECK(r.tail(4) == "klmn");
    CHECK(r.tail(9) == "fghijklmn");
    CHECK(r.dropped() == 4);
}

TEST_CASE("OutputRing_Append_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    SECTION("a chunk larger than the cap") {
        OutputRing r(4);
        r.append("xy", 2);
        r.append("0123456789", 10);
        CHECK(r.str() == "6789");
        CHECK(r.dropped() == 8);
    }
    SECTION("cap 0 keeps nothing") {
        OutputRing r(0);
        r.append("abc", 3);
        CHECK(r.str().empty());
        CHECK(r.dropped() == 3);
    }
    SECTION("binary bytes and many wraps") {
        OutputRing r(7);
        std::string all;
        for (int i = 0; i < 1000; ++i) {
            const char b[3] = {static_cast<char>(i), '\0', static_cast<char>(255 - i)};
            r.append(b, 3);
            all.append(b, 3);
            REQUIRE(r.str() == all.substr(all.size() > 7 ? all.size() - 7 : 0));
        }
        CHECK(r.dropped() == all.size() - 7);
    }
    SECTION("memory grows with the output, not with the cap") {
        OutputRing r(std::size_t{1} << 30);
        r.append("small", 5);
        CHECK(r.size() == 5);
    }
}

TEST_CASE("LineSplitter_Feed_Good", "[process]") {
    CORE_LEAK_GUARD();
    LineSplitter s(100);
    std::vector<std::string> lines;
    auto emit = [&](std::string l) { lines.push_back(std::move(l)); };
    s.feed("one\ntw", 6, emit);
    s.feed("o\r\n\nthr", 7, emit);
    CHECK(lines == std::vector<std::string>{"one", "two\r", ""});
    s.flush(emit);
    CHECK(lines.back() == "thr");
    s.flush(emit);
    CHECK(lines.size() == 4);
}

TEST_CASE("LineSplitter_Skip_Good", "[process]") {
    CORE_LEAK_GUARD();
    // Chunks nobody listened to build no line; lines resume whole after the next newline.
    LineSplitter s(100);
    std::vector<std::string> lines;
    auto emit = [&](std::string l) { lines.push_back(std::move(l)); };
    s.feed("par", 3, emit);
    s.skip("tial\nmid", 8);  // the partial "par" and the line start "mid" are dropped
    s.feed("dle\nnext\n", 9, emit);
    CHECK(lines == std::vector<std::string>{"next"});
    s.skip("whole\n", 6);  // ended on a newline: the next feed starts a line
    s.feed("after\ntail", 10, emit);
    s.flush(emit);
    CHECK(lines == std::vector<std::string>{"next", "after", "tail"});
    s.skip("no newline", 10);
    s.flush(emit);  // a skipped tail is not delivered at exit
    CHECK(lines.size() == 3);
}

TEST_CASE("LineSplitter_Feed_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    // A line longer than max_piece arrives in pieces; memory stays bounded.
    LineSplitter s(4);
    std::vector<std::string> lines;
    auto emit = [&](std::string l) { lines.push_back(std::move(l)); };
    s.feed("abcdefghij", 10, emit);
    CHECK(lines == std::vector<std::string>{"abcd", "efgh"});
    s.feed("k\nabcd\n", 7, emit);
    CHECK(lines == std::vector<std::string>{"abcd", "efgh", "ijk", "abcd"});
    s.feed(std::string("\0\n", 2).data(), 2, emit);
    CHECK(lines.back() == std::string(1, '\0'));
}
