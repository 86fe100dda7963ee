// Section 7: spawn latency at a large parent RSS.
#include "common.hpp"

#include <cstdlib>
#include <string_view>
#include <vector>

namespace bench {

void run_bigparent(Env& env) {
    const Config& cfg = env.cfg;
    const char* sec = "bigparent";
    const std::size_t big_bytes = cfg.pick<std::size_t>(256, 2048, 2048) << 20;
    const int n = cfg.loops(20, 100, 300);
    const int warm = cfg.pick(1, 3, 5);
    // The RSS cannot alternate sample by sample, so the phases do: small, big, small, big, …
    // (the block is freed and grown again each cycle), and a drift of the machine's speed
    // during the section hits both sizes alike instead of deciding their ratio.
    const int cycles = cfg.pick(1, 3, 3);
    const int per_phase = std::max(3, n / cycles);
    raw::Argv noop({cfg.noop});
    const std::string small = "RSS " + size_label(raw::rss_bytes() & ~((std::size_t{1} << 20) - 1));
    const std::string large = "RSS +" + size_label(big_bytes);

    struct Series {
        const char* base;  // the row name at normal RSS
        SampleFn fn;
        std::vector<double> samples[2];  // [0] small, [1] big
        std::string error;
    };
    std::vector<Series> series;
    series.push_back({names::raw_spawn, timed([&] { return raw::spawn_wait(noop); }), {}, {}});
    series.push_back({names::raw_fork, timed([&] { return raw::fork_wait(noop); }), {}, {}});
#if BENCH_HAVE_SERVICE
    proc::RunOptions quiet;
    quiet.command = cfg.noop;
    quiet.std_out = core::process::Stdio::inherit();
    quiet.std_err = core::process::Stdio::inherit();
    if (env.lib) series.push_back({names::lib_start, lib_start_wait(*env.lib, quiet), {}, {}});
#endif

    // Within a phase the fork row runs last, after every other row's samples (issue 16): after a
    // fork the parent's pages are write-protected for copy-on-write, so whatever ran next paid
    // the faults of a 2 GiB parent (the library's row always followed raw fork: 1.32-1.40x).
    auto phase = [&](int which, bool forks) {
        std::vector<Variant> vs;
        bool recording = false;
        for (auto& sr : series) {
            if (!sr.error.empty()) continue;
            if ((std::string_view(sr.base) == names::raw_fork) != forks) continue;
            vs.push_back({sr.base,
                          [&sr, which, &recording]() -> core::Result<double> {
                              auto r = sr.fn();
                              if (r && recording) sr.samples[which].push_back(*r);
                              return r;
                          },
                          "", ""});
        }
        for (int w = 0; w < warm; ++w)
            for (auto& v : vs) (void)v.fn();
        recording = true;
        auto rows = sample_interleaved(sec, vs, per_phase, 0,
                                       env.budget.row_deadline(static_cast<int>(vs.size())));
        for (const auto& row : rows)
            for (auto& sr : series)
                if (row.name == sr.base && !row.error.empty()) sr.error = row.error;
    };

    const std::size_t rss0 = raw::rss_bytes();
    for (int c = 0; c < cycles; ++c) {
        phase(0, false);
        phase(0, true);
        // Grow: every page touched, so the RSS is real and fork() must copy its page tables.
        auto* block = static_cast<char*>(std::malloc(big_bytes));
        if (!block) {
            Row r;
            r.section = sec;
            r.name = "grow RSS by " + size_label(big_bytes);
            r.error = "malloc failed";
            env.report.add(std::move(r));
            return;
        }
        volatile char* touch = block;
        const std::size_t page = raw::page_size();
        for (std::size_t i = 0; i < big_bytes; i += page) touch[i] = static_cast<char>(i >> 12);
        if (c == 0)
            env.report.note("bigparent: RSS grew from " + size_label(rss0) + " to " +
                            size_label(raw::rss_bytes()) + "; " + std::to_string(cycles) +
                            " small/big cycles");
        phase(1, false);
        phase(1, true);
        std::free(block);  // an mmap'd chunk: back to the kernel at once
    }
    for (int which = 0; which < 2; ++which) {
        for (auto& sr : series) {
            Row r;
            r.section = sec;
            r.name = names::big(sr.base, which ? large : small);
            r.unit = "us";
            if (which) r.ref = names::big(sr.base, small);
            if (!sr.error.empty()) {
                r.error = sr.error;
            } else {
                fill_stats(r, sr.samples[which]);
            }
            env.report.add(std::move(r));
        }
        if (!env.lib)
            env.report.add(skipped_row(sec, names::big(names::lib_start, which ? large : small),
                                       "us", env.lib_error));
    }
}

}  // namespace bench
