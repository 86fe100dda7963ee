// The bench harness: run configuration, the time budget that bounds a run, sampling loops,
// result rows and targets, and their rendering as a table or JSON. Single-threaded: only the
// bench's main thread touches it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.hpp"

namespace bench {

using Clock = std::chrono::steady_clock;

struct Config {
    enum class Mode { quick, normal, full };
    Mode mode = Mode::normal;
    bool json = false;
    bool realtime = false;       // run under SCHED_FIFO (children and threads inherit it)
    double max_seconds = 0;      // 0: unbounded
    int iterations = 0;          // > 0: overrides the N of every latency loop
    std::set<std::string> only;  // empty: every section
    std::string noop, writer, sleeper;
    std::string nolibc;  // the libc-free child; empty: not built (the flat section uses noop)

    bool wants(std::string_view section) const;
    // A count by mode.
    template <class T>
    T pick(T quick, T normal, T full) const {
        return mode == Mode::quick ? quick : mode == Mode::full ? full : normal;
    }
    // The N of a latency loop: --iterations when given, else by mode.
    int loops(int quick, int normal, int full) const {
        return iterations > 0 ? iterations : pick(quick, normal, full);
    }
    const char* mode_name() const;
};

// One measured figure. Latencies are in µs, throughput in MB/s (10^6 bytes per second), memory
// in bytes. For MB/s rows "p99" is the slow tail (the 1st percentile of throughput).
struct Row {
    std::string section;
    std::string name;  // stable key, also used in --json
    std::string unit;  // "us", "us/child", "MB/s", "B/child"
    std::size_t n = 0;
    double median = 0;
    double p99 = 0;
    double min = 0;
    double max = 0;
    std::string ref;    // the row this one is compared with (ratio of medians), if any
    std::string note;   // what the figure includes, or why it was skipped
    std::string error;  // the measurement failed: why
    bool skipped = false;
    // Per sample, when the loop measured them (issue 16): CPU of this process (every thread:
    // the library's reaper and dispatcher included; not the child's), and context switches of
    // this process (voluntary + involuntary). -1: not measured.
    double cpu_us = -1;
    double ctxsw = -1;
};

// This process's CPU time in µs and context switches so far (getrusage RUSAGE_SELF).
struct UsageSnap {
    double cpu_us = 0;
    double ctxsw = 0;
};
UsageSnap usage_now();

// Fills n/median/p99/min/max from samples. higher_is_better: p99 is the low tail.
void fill_stats(Row& row, std::vector<double> samples, bool higher_is_better = false);

// A target of issue 6, judged from the rows of the same run.
struct Target {
    std::string name;    // e.g. "Service::start+wait <= 1.15x raw posix_spawn+waitpid"
    std::string figure;  // the measured figure, printed
    std::string status;  // PASS, MISS, or N/A (a row it needs is missing or failed)
};

// Bounds a run: --max-seconds shared out among the rows of the selected sections.
class Budget {
  public:
    Budget(double max_seconds, int rows);
    // When the sampling loop of `rows` rows must stop (after its minimum samples): now plus
    // their share, never past the end of the run. Far future when unbounded.
    Clock::time_point row_deadline(int rows = 1) const;
    // The run's time is spent: optional heavy work (bigger N) is skipped.
    bool over() const;
    bool limited() const { return limited_; }
    // Seconds left in the run; a very large number when unbounded.
    double remaining() const;

  private:
    bool limited_ = false;
    Clock::time_point end_{};
    Clock::duration row_share_{};
};

// A sample in µs, or the Error that ended the measurement.
using SampleFn = std::function<core::Result<double>()>;
// Wraps fn into a SampleFn that times it with the steady clock.
SampleFn timed(std::function<core::Result<void>()> fn);

// Samples fn up to n times after `warmup` unrecorded calls, stopping at deadline once three
// samples are in. The first Error ends the loop and is recorded in the row.
Row sample(std::string section, std::string name, int n, int warmup, Clock::time_point deadline,
           const SampleFn& fn);

// One variant of an interleaved group: a row to fill from fn's samples.
struct Variant {
    std::string name;
    SampleFn fn;
    std::string ref;   // compared with this row
    std::string note;  // what the figure includes
};

// Samples every variant in rounds (one sample of each per round, in order), so that a change
// of machine load during the loop hits every variant alike and their ratios stay fair. Up to n
// rounds after `warmup` unrecorded ones, stopping at deadline once min_rounds are in. A
// variant whose fn fails records the Error and leaves the rounds; the others go on.
std::vector<Row> sample_interleaved(const std::string& section, const std::vector<Variant>& vs,
                                    int n, int warmup, Clock::time_point deadline,
                                    int min_rounds = 3);

class Report {
  public:
    Row& add(Row row);
    void add(std::vector<Row> rows);
    Row& skip(std::string section, std::string name, std::string unit, std::string why);
    const Row* find(std::string_view name) const;
    // median / the ref row's median; 0 when either is missing, failed or zero.
    double ratio(const Row& row) const;
    double ratio(std::string_view name, std::string_view ref) const;
    bool failed() const;
    void add_target(Target t) { targets_.push_back(std::move(t)); }
    Target& last_target() { return targets_.back(); }
    void note(std::string text) { notes_.push_back(std::move(text)); }

    void print_table(std::FILE* out) const;
    nlohmann::json to_json(const Config& cfg, const nlohmann::json& machine) const;

  private:
    std::vector<Row> rows_;
    std::vector<Target> targets_;
    std::vector<std::string> notes_;
};

}  // namespace bench
