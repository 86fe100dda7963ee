// Threaded throughput (issue 16): T threads each spawn+wait the libc-free child in a loop for a
// fixed time; spawns per second of all threads together, for T = 1, 2, 8, 32.
#include "common.hpp"

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace bench {

void run_threads(Env& env) {
    const Config& cfg = env.cfg;
    const char* sec = "threads";
    const double seconds = cfg.pick(0.3, 1.0, 3.0);
    const std::string& child = cfg.nolibc.empty() ? cfg.noop : cfg.nolibc;
    raw::Argv noop({child});
    struct V {
        std::string what;
        std::function<core::Result<void>()> fn;
    };
    std::vector<V> vs;
    vs.push_back({"raw vfork+execve+waitpid", [&] { return raw::vfork_wait(noop); }});
    vs.push_back({"raw posix_spawn+waitpid", [&] { return raw::spawn_wait(noop); }});
#if BENCH_HAVE_SERVICE
    proc::RunOptions quiet;
    quiet.command = child;
    quiet.std_out = core::process::Stdio::inherit();
    quiet.std_err = core::process::Stdio::inherit();
    proc::RunOptions captured;
    captured.command = child;
    if (Library* lp = env.lib) {
        vs.push_back({"lib Service::start+wait (capture off)", [&, lp]() -> core::Result<void> {
                          auto p = lp->svc().start(bg(), quiet);
                          if (!p) return fail(p.error());
                          auto info = (*p)->wait();
                          (void)lp->svc().remove((*p)->id());
                          return check_info("lib.start", info);
                      }});
        vs.push_back({"lib Service::run (capture)", [&, lp]() -> core::Result<void> {
                          auto out = lp->svc().run(bg(), captured);
                          if (!out) return fail(out.error());
                          return {};
                      }});
    }
#endif
    // Each variant runs in kChunks short slices, the variants alternating slice by slice, so a
    // drift of the machine's speed (a VM's slow spell) hits them all alike, as the other
    // sections' rounds do. A slice starts its threads afresh: thread start-up is in the rate.
    constexpr int kChunks = 6;
    struct Tally {
        std::uint64_t done = 0;
        double secs = 0;
        double cpu_us = 0;
        double ctxsw = 0;
        std::string error;
        bool skipped = false;
    };
    auto slice = [&](const V& v, int threads, double secs, Tally& t) {
        std::atomic<std::uint64_t> done{0};
        std::atomic<bool> stop{false};
        std::mutex err_mu;
        std::vector<std::thread> ts;
        const UsageSnap u0 = usage_now();
        const auto t0 = Clock::now();
        for (int i = 0; i < threads; ++i) {
            ts.emplace_back([&] {
                while (!stop.load(std::memory_order_relaxed)) {
                    if (auto res = v.fn(); !res) {
                        std::lock_guard lk(err_mu);
                        if (t.error.empty()) t.error = res.error().what();
                        stop = true;
                        return;
                    }
                    done.fetch_add(1, std::memory_order_relaxed);
                }
            });
        }
        const auto end =
            std::min(t0 + std::chrono::duration_cast<Clock::duration>(duration<double>(secs)),
                     env.budget.row_deadline());
        while (Clock::now() < end && !stop.load())
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        stop = true;
        for (auto& th : ts) th.join();
        const UsageSnap u1 = usage_now();
        t.secs += duration<double>(Clock::now() - t0).count();
        t.done += done.load();
        t.cpu_us += u1.cpu_us - u0.cpu_us;
        t.ctxsw += u1.ctxsw - u0.ctxsw;
    };
    for (int threads : {1, 2, 8, 32}) {
        std::vector<Tally> tally(vs.size());
        for (int chunk = 0; chunk < kChunks; ++chunk) {
            for (std::size_t i = 0; i < vs.size(); ++i) {
                // Alternate the order too: no variant always follows the same one.
                const std::size_t k = chunk % 2 == 0 ? i : vs.size() - 1 - i;
                Tally& t = tally[k];
                if (!t.error.empty() || t.skipped) continue;
                if (env.budget.over()) {
                    t.skipped = t.done == 0;
                    continue;
                }
                slice(vs[k], threads, seconds / kChunks, t);
            }
        }
        for (std::size_t i = 0; i < vs.size(); ++i) {
            const Tally& t = tally[i];
            Row r;
            r.section = sec;
            r.name = vs[i].what + ", " + std::to_string(threads) + " threads";
            r.unit = "spawns/s";
            if (vs[i].what.rfind("raw vfork", 0) != 0)
                r.ref = std::string("raw vfork+execve+waitpid, ") + std::to_string(threads) +
                        " threads";
            if (t.skipped) {
                r.skipped = true;
                r.note = "would exceed the --max-seconds budget";
                env.report.add(std::move(r));
                continue;
            }
            const auto n = static_cast<double>(t.done);
            r.n = t.done;
            // A rate over the slices' time together: every statistic column shows it.
            r.median = r.p99 = r.min = r.max = t.secs > 0 ? n / t.secs : 0;
            if (n > 0) {
                r.cpu_us = t.cpu_us / n;
                r.ctxsw = t.ctxsw / n;
            }
            r.error = t.error;
            r.note =
                "per spawn in []; rate over " + std::to_string(kChunks) + " alternating slices";
            env.report.add(std::move(r));
        }
    }
}

}  // namespace bench
