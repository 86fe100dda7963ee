// Section 4: reaping latency, alone and with other children alive.
#include "common.hpp"

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>

namespace bench {

namespace {

#if BENCH_HAVE_SERVICE
// Counts "ready" lines of ProcessOutput events, so a sample starts only once the sleeper is
// blocked reading its stdin.
struct ReadyCounter {
    std::mutex mu;
    std::condition_variable cv;
    std::uint64_t count = 0;
    void on(const core::Value& v) {
        const auto* o = v.get<proc::ProcessOutput>();
        if (!o || o->line != "ready") return;
        {
            std::lock_guard lk(mu);
            ++count;
        }
        cv.notify_all();
    }
    bool wait_beyond(std::uint64_t seen, std::chrono::seconds timeout) {
        std::unique_lock lk(mu);
        return cv.wait_for(lk, timeout, [&] { return count > seen; });
    }
    std::uint64_t now() {
        std::lock_guard lk(mu);
        return count;
    }
};

SampleFn lib_reap_sample(Library& library, ReadyCounter& counter, const std::string& sleeper) {
    return [lp = &library, rp = &counter, sleeper]() -> core::Result<double> {
        Library& lib = *lp;
        ReadyCounter& ready = *rp;
        proc::RunOptions o;
        o.command = sleeper;
        o.args = {"stdin"};
        o.std_in = core::process::Stdio::pipe();
        const std::uint64_t seen = ready.now();
        auto p = lib.svc().start(bg(), o);
        if (!p) return fail(p.error());
        auto& mp = **p;
        if (!ready.wait_beyond(seen, std::chrono::seconds(10))) {
            (void)mp.kill();
            (void)mp.wait();
            (void)lib.svc().remove(mp.id());
            return fail(E("lib.reap", "no ProcessOutput \"ready\" event within 10 s"));
        }
        auto t0 = Clock::now();
        auto closed = mp.close_input();
        auto info = mp.wait();
        auto t1 = Clock::now();
        (void)lib.svc().remove(mp.id());
        if (!closed) return fail(closed.error());
        if (auto r = check_info("lib.reap", info); !r) return fail(r.error());
        return elapsed_us(t0, t1);
    };
}
#endif

}  // namespace

void run_reap(Env& env) {
    const Config& cfg = env.cfg;
    const char* sec = "reap";
    const int n = cfg.loops(30, 1000, 3000);
    const int warm = cfg.pick(2, 10, 20);
    const int others = cfg.pick(200, kReapOthersFull, kReapOthersFull);
    raw::Argv sleeper_stdin({cfg.sleeper, "stdin"});
    raw::Argv sleeper_pause({cfg.sleeper, "pause"});
    auto error_row = [&](std::string name, const core::Error& e) {
        Row r;
        r.section = sec;
        r.name = std::move(name);
        r.unit = "us";
        r.error = e.what();
        env.report.add(std::move(r));
    };

    std::vector<Variant> alone{{names::reap_raw(0),
                                [&] { return raw::reap_latency(sleeper_stdin); }, "",
                                "child exit -> waiter wake-up; t0 = close of its stdin"}};
    std::vector<Variant> crowd{{names::reap_raw(others),
                                [&] { return raw::reap_latency(sleeper_stdin); },
                                names::reap_raw(0), ""}};
    auto reaper = raw::ThreadReaper::create();
    if (!reaper) {
        error_row(names::reap_thread(0), reaper.error());
    } else {
        raw::ThreadReaper* tr = reaper->get();
        alone.push_back({names::reap_thread(0), [&, tr] { return tr->reap_latency(sleeper_stdin); },
                         names::reap_raw(0), "reference: a minimal one-reaper-thread design"});
        crowd.push_back({names::reap_thread(others),
                         [&, tr] { return tr->reap_latency(sleeper_stdin); },
                         names::reap_raw(others), ""});
    }
#if BENCH_HAVE_SERVICE
    std::unique_ptr<ReadyCounter> ready;
    core::Subscription sub;
    if (Library* lp = env.lib) {
        ready = std::make_unique<ReadyCounter>();
        sub = lp->core().subscribe([r = ready.get()](const core::Value& v) { r->on(v); });
        alone.push_back({names::reap_lib(0), lib_reap_sample(*lp, *ready, cfg.sleeper),
                         names::reap_thread(0), "keep_stdin; close_input() at t0"});
        crowd.push_back({names::reap_lib(others), lib_reap_sample(*lp, *ready, cfg.sleeper),
                         names::reap_thread(others), ""});
    }
#endif
    env.report.add(sample_interleaved(sec, alone, n, warm,
                                      env.budget.row_deadline(static_cast<int>(alone.size()))));

    // The others: sleepers managed by the Service (its epoll set is what must not slow down),
    // or raw ones when the library is not there. Both waiters run with the same crowd.
    std::string crowd_note = std::to_string(others);
    bool started = false;
#if BENCH_HAVE_SERVICE
    std::unique_ptr<LibIdle> lib_idle;
    if (env.lib) {
        lib_idle = std::make_unique<LibIdle>(*env.lib);
        if (auto s = lib_idle->start(cfg.sleeper, others); !s) {
            error_row(names::reap_lib(others), s.error());
        } else {
            started = true;
            crowd_note += " managed sleepers alive";
        }
    }
#endif
    RawIdle raw_idle;
    if (!env.lib) {
        if (auto s = raw_idle.start(sleeper_pause, others); !s) {
            error_row(names::reap_raw(others), s.error());
        } else {
            started = true;
            crowd_note += " raw sleepers alive";
        }
    }
    if (started) {
        for (auto& v : crowd) v.note = crowd_note;
        env.report.add(sample_interleaved(sec, crowd, n, warm,
                                          env.budget.row_deadline(static_cast<int>(crowd.size()))));
    }
#if BENCH_HAVE_SERVICE
    if (lib_idle)
        if (auto s = lib_idle->stop(); !s) error_row("lib idle children kill", s.error());
    sub.reset();
#endif
    if (auto s = raw_idle.stop(); !s) error_row("raw idle children kill+reap", s.error());
    if (env.lib) return;
    for (int k : {0, others})
        env.report.add(skipped_row(sec, names::reap_lib(k), "us", env.lib_error));
}

}  // namespace bench
