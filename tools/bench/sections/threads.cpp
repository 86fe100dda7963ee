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
    for (int threads : {1, 2, 8, 32}) {
        for (const auto& v : vs) {
            Row r;
            r.section = sec;
            r.name = v.what + ", " + std::to_string(threads) + " threads";
            r.unit = "spawns/s";
            if (v.what.rfind("raw vfork", 0) != 0)
                r.ref = std::string("raw vfork+execve+waitpid, ") + std::to_string(threads) +
                        " threads";
            if (env.budget.over()) {
                r.skipped = true;
                r.note = "would exceed the --max-seconds budget";
                env.report.add(std::move(r));
                continue;
            }
            std::atomic<std::uint64_t> done{0};
            std::atomic<bool> stop{false};
            std::mutex err_mu;
            std::string error;
            std::vector<std::thread> ts;
            const UsageSnap u0 = usage_now();
            const auto t0 = Clock::now();
            for (int t = 0; t < threads; ++t) {
                ts.emplace_back([&] {
                    while (!stop.load(std::memory_order_relaxed)) {
                        if (auto res = v.fn(); !res) {
                            std::lock_guard lk(err_mu);
                            if (error.empty()) error = res.error().what();
                            stop = true;
                            return;
                        }
                        done.fetch_add(1, std::memory_order_relaxed);
                    }
                });
            }
            const auto end = std::min(
                t0 + std::chrono::duration_cast<Clock::duration>(duration<double>(seconds)),
                env.budget.row_deadline());
            while (Clock::now() < end && !stop.load())
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            stop = true;
            for (auto& th : ts) th.join();
            const double secs = duration<double>(Clock::now() - t0).count();
            const UsageSnap u1 = usage_now();
            const auto n = static_cast<double>(done.load());
            r.n = static_cast<std::size_t>(n);
            // A rate over the whole interval: every statistic column shows it.
            r.median = r.p99 = r.min = r.max = n / secs;
            if (n > 0) {
                r.cpu_us = (u1.cpu_us - u0.cpu_us) / n;
                r.ctxsw = (u1.ctxsw - u0.ctxsw) / n;
            }
            r.error = error;
            r.note = "per spawn in []; rate over the whole interval";
            env.report.add(std::move(r));
        }
    }
}

}  // namespace bench
