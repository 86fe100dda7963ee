// Section 6: output throughput (raw read loop, capture, the per-line and batch subscribers).
#include "common.hpp"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace bench {

void run_output(Env& env) {
    const Config& cfg = env.cfg;
    const char* sec = "output";
    const std::size_t bytes = cfg.pick<std::size_t>(64, 256, 256) << 20;
    const int reps = cfg.pick(2, 5, 10);
    const std::string size = std::to_string(bytes);
    const std::string label = " [" + size_label(bytes) + "]";
    raw::Argv writer({cfg.writer, size, "100"});
    std::vector<double> delivered;          // share of the bytes the subscriber saw, per sample
    std::vector<double> drain_ms;           // event backlog left behind by a capture sample
    std::vector<double> delivered_batches;  // the same for the batch subscriber

    std::vector<Variant> vs;
    vs.push_back({names::out_raw, timed([&]() -> core::Result<void> {
                      auto got = raw::spawn_read(writer);
                      if (!got) return fail(got.error());
                      if (*got != bytes)
                          return fail(E("raw.output",
                                        "read " + std::to_string(*got) + " bytes, want " + size));
                      return {};
                  }),
                  "", "posix_spawn, 100 B lines" + label});
#if BENCH_HAVE_SERVICE
    proc::RunOptions o;
    o.command = cfg.writer;
    o.args = {size, "100"};
    if (Library* lp = env.lib) {
        // Timed until run() returns (what its caller waits for); the ProcessOutput events it
        // queued are then drained outside the clock, so that the next sample starts clean, and
        // the drain time is reported.
        vs.push_back(
            {names::out_capture,
             [&, lp]() -> core::Result<double> {
                 auto t0 = Clock::now();
                 auto out = lp->svc().run(bg(), o);
                 auto t1 = Clock::now();
                 if (!out) return fail(out.error());
                 auto drained = drain_events(*lp, cfg.noop);
                 if (!drained) return fail(drained.error());
                 drain_ms.push_back(*drained);
                 if (auto c = expect_size("lib.run", out->size(), std::min(bytes, o.max_output));
                     !c)
                     return fail(c.error());
                 return elapsed_us(t0, t1);
             },
             names::out_raw,
             "no subscriber; newest 1 MiB kept: throughput, not retention" + label});
        // Ends at the process's own ProcessExited event: the dispatcher delivers in order, so
        // every line it did not drop has been seen by then. (Under a flood it drops lines
        // rather than block the reaper; the share delivered is reported.) Subscribed only
        // during its own samples, so that the capture row pays nothing for it.
        vs.push_back(
            {names::out_subscriber,
             [&, lp]() -> core::Result<double> {
                 EventLog log;
                 auto sub = lp->core().subscribe([&log](const core::Value& v) { log.on(v); });
                 auto t0 = Clock::now();
                 auto p = lp->svc().start(bg(), o);
                 if (!p) return fail(p.error());
                 auto info = (*p)->wait();
                 const bool exited = log.wait_exited((*p)->id(), std::chrono::seconds(120));
                 auto t1 = Clock::now();
                 sub.reset();
                 (void)lp->svc().remove((*p)->id());
                 if (auto c = check_info("lib.subscriber", info); !c) return fail(c.error());
                 if (!exited)
                     return fail(E("lib.subscriber", "no ProcessExited event within 120 s"));
                 delivered.push_back(static_cast<double>(log.bytes_of((*p)->id())) /
                                     static_cast<double>(bytes));
                 return elapsed_us(t0, t1);
             },
             names::out_raw, "one event per 100 B line, capture on" + label});
    }
    LibraryPtr batch_lib;
    if (env.lib) {
        if (auto bl = open_batch_library(); bl) {
            batch_lib = std::move(*bl);
        } else {
            env.report.note("batch subscriber row skipped: " + bl.error().what());
        }
    }
    if (Library* lp = batch_lib.get()) {
        vs.push_back(
            {names::out_batches,
             [&, lp]() -> core::Result<double> {
                 EventLog log;
                 auto sub = lp->core().subscribe([&log](const core::Value& v) { log.on(v); });
                 auto t0 = Clock::now();
                 auto p = lp->svc().start(bg(), o);
                 if (!p) return fail(p.error());
                 auto info = (*p)->wait();
                 const bool exited = log.wait_exited((*p)->id(), std::chrono::seconds(120));
                 auto t1 = Clock::now();
                 sub.reset();
                 (void)lp->svc().remove((*p)->id());
                 if (auto c = check_info("lib.batches", info); !c) return fail(c.error());
                 if (!exited) return fail(E("lib.batches", "no ProcessExited event within 120 s"));
                 delivered_batches.push_back(static_cast<double>(log.bytes_of((*p)->id())) /
                                             static_cast<double>(bytes));
                 return elapsed_us(t0, t1);
             },
             names::out_raw, "output_batches: one event per read, capture on" + label});
    }
#endif
    // One round at least (each moves the whole size through every variant).
    auto rows = sample_interleaved(sec, vs, reps, 0,
                                   env.budget.row_deadline(static_cast<int>(vs.size())), 1);
    // Durations to MB/s (bytes per µs): the slow tail of the time is the low tail of MB/s.
    for (auto& r : rows) {
        r.unit = "MB/s";
        if (r.n == 0) continue;
        const double b = static_cast<double>(bytes);
        const double min_us = r.min, max_us = r.max;
        r.median = b / r.median;
        r.p99 = b / r.p99;
        r.min = b / max_us;
        r.max = b / min_us;
        if (r.name == names::out_capture && !drain_ms.empty()) {
            Row d;
            fill_stats(d, drain_ms);
            char buf[96];
            std::snprintf(buf, sizeof buf, "; events still queued at return: drained in %.0f ms",
                          d.median);
            r.note += buf;
        }
        if (r.name == names::out_batches && !delivered_batches.empty()) {
            char buf[96];
            std::snprintf(
                buf, sizeof buf, "; lines delivered: %.0f%%..%.0f%% of the output",
                100 * *std::min_element(delivered_batches.begin(), delivered_batches.end()),
                100 * *std::max_element(delivered_batches.begin(), delivered_batches.end()));
            r.note += buf;
        }
        if (r.name == names::out_subscriber && !delivered.empty()) {
            char buf[96];
            std::snprintf(buf, sizeof buf, "; lines delivered: %.0f%%..%.0f%% of the output",
                          100 * *std::min_element(delivered.begin(), delivered.end()),
                          100 * *std::max_element(delivered.begin(), delivered.end()));
            r.note += buf;
        }
    }
    env.report.add(std::move(rows));
    if (env.lib) return;
    for (const char* name : {names::out_capture, names::out_subscriber})
        env.report.add(skipped_row(sec, name, "MB/s", env.lib_error));
}

}  // namespace bench
