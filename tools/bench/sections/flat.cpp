// Flat spawn cost (issue 16, item 1): spawn+wait of the no-op with nothing else open, with K
// unrelated descriptors open in the host, and with L live children managed by the Service.
#include "common.hpp"

#include <map>
#include <vector>

namespace bench {

void run_flat(Env& env) {
    const Config& cfg = env.cfg;
    const char* sec = "flat";
    const int per_phase = cfg.loops(40, 300, 1000);
    const int warm = cfg.pick(3, 10, 20);
    const int K = flat_fds(cfg);
    const int L = flat_live(cfg);
    const std::size_t nofile = raw::raise_nofile();
    // The spawner's own cost: the libc-free child where it was built.
    const std::string& child = cfg.nolibc.empty() ? cfg.noop : cfg.nolibc;
    env.report.note(std::string("flat: child ") +
                    (cfg.nolibc.empty() ? "the static no-op (libc-free child not built)"
                                        : "libc-free (coreproc-bench-nolibc)"));
    raw::Argv noop({child});
    const std::string none = flat_none;
    const std::string fds = flat_fds_phase(cfg);
    const std::string live = flat_live_phase(cfg);

    struct V {
        const char* what;
        SampleFn fn;
    };
    std::vector<V> vs;
    vs.push_back({names::flat_raw, timed([&] { return raw::spawn_wait(noop); })});
    vs.push_back({names::flat_clone, timed([&] { return raw::clone_files_wait(noop); })});
#if BENCH_HAVE_SERVICE
    proc::RunOptions quiet;
    quiet.command = child;
    quiet.std_out = core::process::Stdio::inherit();
    quiet.std_err = core::process::Stdio::inherit();
    if (Library* lp = env.lib) {
        vs.push_back({names::flat_lib, lib_start_wait(*lp, quiet)});
        vs.push_back({names::flat_lib_posix, lib_start_wait_posix(*lp, quiet)});
    }
#endif
    // samples[phase][variant]; errors per variant.
    std::map<std::string, std::vector<std::vector<double>>> samples;
    std::map<std::string, std::vector<UsageSnap>> usage;  // summed over recorded samples
    std::vector<std::string> errors(vs.size());
    auto phase = [&](const std::string& name) {
        auto& into = samples[name];
        into.resize(vs.size());
        auto& used = usage[name];
        used.resize(vs.size());
        const auto deadline = env.budget.row_deadline(static_cast<int>(vs.size()));
        for (int round = 0; round < warm + per_phase; ++round) {
            if (round >= warm + 3 && Clock::now() > deadline) break;
            for (std::size_t i = 0; i < vs.size(); ++i) {
                if (!errors[i].empty()) continue;
                const UsageSnap u0 = usage_now();
                auto r = vs[i].fn();
                const UsageSnap u1 = usage_now();
                if (!r) {
                    errors[i] = r.error().what();
                    continue;
                }
                if (round >= warm) {
                    into[i].push_back(*r);
                    used[i].cpu_us += u1.cpu_us - u0.cpu_us;
                    used[i].ctxsw += u1.ctxsw - u0.ctxsw;
                }
            }
        }
    };
    // Phase order none, fds, none, live, none: the baseline is sampled before and after each
    // loaded phase, so drift hits both (a single opening baseline once ran right after the big
    // parent's 2 GiB went back to the kernel and came out 2.5x slow).
    phase(none);
    std::string fds_skip, live_skip;
    if (nofile < static_cast<std::size_t>(K) + 256) {
        fds_skip = "RLIMIT_NOFILE " + std::to_string(nofile) + " is too low";
    } else if (auto open = raw::OpenFds::open(static_cast<std::size_t>(K)); !open) {
        fds_skip = open.error().what();
    } else {
        phase(fds);
    }
    phase(none);
#if BENCH_HAVE_SERVICE
    if (!env.lib) {
        live_skip = env.lib_error;
    } else if (nofile < static_cast<std::size_t>(L) + 256) {
        live_skip = "RLIMIT_NOFILE " + std::to_string(nofile) + " is too low";
    } else {
        LibIdle idle(*env.lib);
        if (auto st = idle.start(cfg.sleeper, L); !st) {
            live_skip = st.error().what();
        } else {
            phase(live);
        }
    }
#else
    live_skip = "the process service is not built";
#endif
    phase(none);
    for (std::size_t i = 0; i < vs.size(); ++i) {
        for (const auto& ph : {none, fds, live}) {
            Row r;
            r.section = sec;
            r.name = names::flat(vs[i].what, ph);
            r.unit = "us";
            if (ph != none) r.ref = names::flat(vs[i].what, none);
            const std::string& skip = ph == fds ? fds_skip : ph == live ? live_skip : "";
            if (!errors[i].empty()) {
                r.error = errors[i];
            } else if (!skip.empty()) {
                r.skipped = true;
                r.note = skip;
            } else {
                const auto n_rec = static_cast<double>(samples[ph][i].size());
                fill_stats(r, samples[ph][i]);
                if (n_rec > 0) {
                    r.cpu_us = usage[ph][i].cpu_us / n_rec;
                    r.ctxsw = usage[ph][i].ctxsw / n_rec;
                }
            }
            env.report.add(std::move(r));
        }
    }
}

}  // namespace bench
