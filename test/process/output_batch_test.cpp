// Batched output events (issue 16, item 3): with ServiceOptions::output_batches the bus gets one
// ProcessOutputBatch per read instead of one ProcessOutput per line; every line arrives once, in
// order, split exactly as ProcessOutput lines are, before the process's ProcessExited; the queue
// bound counts lines.
#include <condition_variable>
#include <mutex>

#include "common.hpp"

using core::Context;
using core::Value;
using namespace proctest;

namespace {

struct BatchLog {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::string> lines;  // "<stream> <line>"
    std::size_t batches = 0;
    std::size_t single_line_events = 0;  // ProcessOutput: must stay 0 with batches on
    bool exited = false;
    std::string id;
    core::Subscription sub;

    explicit BatchLog(core::Core& c) {
        sub = c.subscribe([this](const Value& v) {
            std::lock_guard lk(mu);
            if (const auto* b = v.get<cp::ProcessOutputBatch>()) {
                if (b->id != id) return;
                ++batches;
                for (const auto& l : b->lines)
                    lines.push_back(std::string(cp::to_string(b->stream)) + " " + l);
            } else if (const auto* o = v.get<cp::ProcessOutput>()) {
                if (o->id == id) ++single_line_events;
            } else if (const auto* e = v.get<cp::ProcessExited>()) {
                if (e->id != id) return;
                exited = true;
                cv.notify_all();
            }
        });
    }
    // Starts o and watches it, on a fresh record (lines and exit cleared). Under the lock, so
    // that no event of the new process is judged before its id is known.
    void start(const std::shared_ptr<core::Core>& c, const cp::RunOptions& o) {
        std::lock_guard lk(mu);
        lines.clear();
        exited = false;
        auto p = service(c)->start(Context::background(), o);
        REQUIRE(p);
        id = (*p)->id();
    }
    bool wait_exit() {
        std::unique_lock lk(mu);
        return cv.wait_for(lk, 30s, [&] { return exited; });
    }
};

}  // namespace

TEST_CASE("OutputBatch_Events_Good", "[process]") {
    CORE_LEAK_GUARD();
    cp::ServiceOptions opts;
    opts.output_batches = true;
    auto c = make_core(opts);
    BatchLog log(*c);
    SECTION("many lines: each once, in order, fewer events than lines at most") {
        constexpr int kLines = 5000;
        log.start(c, child({"lines", "5000"}));
        REQUIRE(log.wait_exit());
        std::lock_guard lk(log.mu);
        REQUIRE(log.lines.size() == kLines);
        for (int i = 0; i < kLines; ++i) CHECK(log.lines[i] == "stdout line " + std::to_string(i));
        CHECK(log.batches >= 1);
        CHECK(log.batches <= static_cast<std::size_t>(kLines));
        CHECK(log.single_line_events == 0);
    }
    SECTION("lines of changing length over many reads, twice: exact (recycled strings)") {
        // The reaper assigns a batch's lines into the strings of batches already delivered: a
        // short line after a long one must not keep the long one's tail, a batch with fewer
        // lines must not keep the last one's extras, and a second process reuses the first's.
        auto o = cp::RunOptions{};
        o.command = "/bin/sh";
        o.args = {"-c",
                  "i=0; while [ $i -lt 4000 ]; do printf '%d %.*s\\n' $i $((i % 53)) "
                  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; "
                  "i=$((i+1)); done"};
        for (int round = 0; round < 2; ++round) {
            log.start(c, o);
            REQUIRE(log.wait_exit());
            std::lock_guard lk(log.mu);
            REQUIRE(log.lines.size() == 4000);
            for (int i = 0; i < 4000; ++i)
                CHECK(log.lines[static_cast<std::size_t>(i)] ==
                      "stdout " + std::to_string(i) + " " + std::string(i % 53, 'x'));
        }
    }
    SECTION("stderr on a pipe of its own is batched apart") {
        auto o = child({"stderr", "on stderr"});
        o.std_err = cp::Stdio::pipe();
        log.start(c, o);
        REQUIRE(log.wait_exit());
        std::lock_guard lk(log.mu);
        REQUIRE(log.lines.size() == 1);
        CHECK(log.lines[0] == "stderr on stderr");
    }
}

TEST_CASE("OutputBatch_Bound_Ugly", "[process]") {
    CORE_LEAK_GUARD();
    SECTION("a batch over the queue bound is dropped whole and counted, lifecycle events kept") {
        cp::ServiceOptions opts;
        opts.output_batches = true;
        opts.max_queued_lines = 10;
        auto c = make_core(opts);
        BatchLog log(*c);
        log.start(c, child({"lines", "5000"}));
        REQUIRE(log.wait_exit());
        std::lock_guard lk(log.mu);
        CHECK(log.lines.size() < 5000);
        CHECK(log.single_line_events == 0);
    }
}
