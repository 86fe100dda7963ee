// Section 5: N sleeping children: time and memory per child.
#include "common.hpp"

#include <cstdio>
#include <utility>
#include <vector>

namespace bench {

void run_scale(Env& env) {
    const Config& cfg = env.cfg;
    const char* sec = "scale";
    std::vector<std::pair<int, int>> plan;  // N, repetitions
    plan.push_back({10, cfg.pick(10, 50, 100)});
    plan.push_back({100, cfg.pick(3, 10, 20)});
    plan.push_back({1000, cfg.pick(1, 3, 5)});
    if (cfg.mode == Config::Mode::full) plan.push_back({10000, 1});
    const std::size_t nofile = raw::raise_nofile();
    raw::Argv sleeper_pause({cfg.sleeper, "pause"});

    double us_per_child = 0;  // raw + library, at the previous N: predicts the next one
    for (auto [count, reps] : plan) {
        const auto N = static_cast<std::size_t>(count);
        const double predicted_s = us_per_child * count * 1e-6;
        if (count > 10 && (env.budget.over() || predicted_s > env.budget.remaining())) {
            for (auto name : {names::scale_raw(count), names::scale_lib(count)})
                env.report.add(
                    skipped_row(sec, name, "us/child", "would exceed the --max-seconds budget"));
            continue;
        }
        if (nofile < N + 256) {
            for (auto name : {names::scale_raw(count), names::scale_lib(count)})
                env.report.add(
                    skipped_row(sec, name, "us/child",
                                "RLIMIT_NOFILE " + std::to_string(nofile) + " is too low for N"));
            continue;
        }
        Row raw_row;
        raw_row.section = sec;
        raw_row.name = names::scale_raw(count);
        raw_row.unit = "us/child";
        if (count > 10) raw_row.ref = names::scale_raw(10);
        raw_row.note = "spawn N, then SIGKILL+waitpid each";
        std::vector<double> raw_per_child;
        Row lib_row;
        lib_row.section = sec;
        lib_row.name = names::scale_lib(count);
        lib_row.unit = "us/child";
        lib_row.ref = count > 10 ? names::scale_lib(10) : names::scale_raw(10);
        std::vector<double> lib_per_child, heap, rss, start_only;

        // Raw and library alternate, repetition by repetition, so load changes hit both.
        for (int rep = 0; rep < reps; ++rep) {
            if (rep > 0 && env.budget.over()) break;
            if (raw_row.error.empty()) {
                RawIdle idle;
                auto t0 = Clock::now();
                auto s = idle.start(sleeper_pause, count);
                auto s2 = idle.stop();
                auto t1 = Clock::now();
                if (!s || !s2)
                    raw_row.error = (!s ? s.error() : s2.error()).what();
                else
                    raw_per_child.push_back(elapsed_us(t0, t1) / count);
            }
#if BENCH_HAVE_SERVICE
            if (env.lib && lib_row.error.empty()) {
                LibIdle idle(*env.lib);
                idle.ps.reserve(N);
                const std::size_t heap0 = raw::heap_bytes();
                const std::size_t rss0 = raw::rss_bytes();
                auto t0 = Clock::now();
                auto s = idle.start(cfg.sleeper, count);
                auto t1 = Clock::now();
                const std::size_t heap1 = raw::heap_bytes();
                const std::size_t rss1 = raw::rss_bytes();
                auto s2 = idle.stop();
                auto t2 = Clock::now();
                if (!s || !s2) {
                    lib_row.error = (!s ? s.error() : s2.error()).what();
                } else {
                    lib_per_child.push_back(elapsed_us(t0, t2) / count);
                    start_only.push_back(elapsed_us(t0, t1) / count);
                    heap.push_back((static_cast<double>(heap1) - static_cast<double>(heap0)) /
                                   count);
                    rss.push_back((static_cast<double>(rss1) - static_cast<double>(rss0)) / count);
                }
            }
#endif
        }
        fill_stats(raw_row, std::move(raw_per_child));
        us_per_child = raw_row.median;
        env.report.add(std::move(raw_row));
        if (!env.lib) {
            env.report.add(skipped_row(sec, names::scale_lib(count), "us/child", env.lib_error));
            continue;
        }
        if (!start_only.empty()) {
            Row tmp;
            fill_stats(tmp, start_only);
            char buf[96];
            std::snprintf(buf, sizeof buf, "start alone %.1f us/child; capture off, SIGKILL",
                          tmp.median);
            lib_row.note = buf;
        }
        fill_stats(lib_row, std::move(lib_per_child));
        us_per_child += lib_row.median;
        env.report.add(std::move(lib_row));
        Row h;
        h.section = sec;
        h.name = names::scale_heap(count);
        fill_stats(h, std::move(heap));
        h.unit = "B/child";
        h.note = "mallinfo2 delta over N running children, every arena";
        env.report.add(std::move(h));
        Row m;
        m.section = sec;
        m.name = names::scale_rss(count);
        fill_stats(m, std::move(rss));
        m.unit = "B/child";
        m.note = "/proc/self/statm delta (page-granular, noisy at small N)";
        env.report.add(std::move(m));
    }
}

}  // namespace bench
