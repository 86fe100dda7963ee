// Sections 1 and 2: raw spawn-and-wait baselines and the library's spawn-and-wait.
#include "common.hpp"

#include <optional>
#include <string>
#include <vector>

namespace bench {

void run_spawn(Env& env) {
    const Config& cfg = env.cfg;
    const char* sec = "spawn";
    const int n = cfg.loops(100, 2000, 5000);
    const int warm = cfg.pick(3, 20, 50);
    raw::Argv noop({cfg.noop});
    raw::Argv writer16({cfg.writer, "16"});

    auto read16 = [&writer16](auto fn) {
        return timed([&writer16, fn]() -> core::Result<void> {
            auto r = fn(writer16);
            if (!r) return fail(r.error());
            if (*r != 16) return fail(E("raw", "read " + std::to_string(*r) + " bytes, want 16"));
            return {};
        });
    };

    std::vector<Variant> vs;
    vs.push_back({names::raw_spawn, timed([&] { return raw::spawn_wait(noop); }), "", ""});
    vs.push_back(
        {names::raw_vfork, timed([&] { return raw::vfork_wait(noop); }), names::raw_spawn, ""});
    vs.push_back({names::raw_clone, timed([&] { return raw::clone_pidfd_wait(noop); }),
                  names::raw_spawn, "the stretch path: pidfd from birth"});
    vs.push_back({names::raw_pipe, read16([](const raw::Argv& a) { return raw::spawn_read(a); }),
                  names::raw_spawn, ""});
    vs.push_back({names::raw_hygienic,
                  read16([](const raw::Argv& a) { return raw::spawn_read_hygienic(a); }),
                  names::raw_pipe, "the floor for a careful library"});

    const std::string writer = cfg.writer;
#if BENCH_HAVE_SERVICE
    proc::RunOptions quiet;
    quiet.command = cfg.noop;
    quiet.std_out = core::process::Stdio::inherit();
    quiet.std_err = core::process::Stdio::inherit();
    proc::RunOptions captured;
    captured.command = cfg.noop;
    proc::RunOptions run16;
    run16.command = cfg.writer;
    run16.args = {"16"};
    std::optional<core::Action> action;
    if (Library* lp = env.lib) {
        action.emplace(lp->core().action("process.run"));
        vs.push_back({names::lib_start, lib_start_wait(*lp, quiet), names::raw_spawn,
                      std::string("spawned by ") + proc::spawn_method() +
                          "; entry removed after the clock stops"});
        // The same through the fallback path, for the clone3-vs-posix_spawn figure.
        vs.push_back({names::lib_start_posix, lib_start_wait_posix(*lp, quiet), names::raw_spawn,
                      "the fallback: posix_spawn + pidfd_open"});
        vs.push_back({names::lib_start_capture, lib_start_wait(*lp, captured), names::raw_pipe,
                      "no output: pipes set up and drained"});
        vs.push_back({names::lib_run, timed([&, lp]() -> core::Result<void> {
                          auto out = lp->svc().run(bg(), run16);
                          if (!out) return fail(out.error());
                          return expect_size("lib.run", out->size(), 16);
                      }),
                      names::raw_pipe, ""});
        vs.push_back(
            {names::lib_action, timed([&]() -> core::Result<void> {
                 // Built inside the timed call: parsing Options is part of the cost.
                 core::Options opts{{"command", writer}, {"args", std::vector<std::string>{"16"}}};
                 auto v = action->run(bg(), opts);
                 if (!v) return fail(v.error());
                 const auto* s = v->get<std::string>();
                 if (!s) return fail(E("lib.action", "process.run returned no string"));
                 return expect_size("lib.action", s->size(), 16);
             }),
             names::raw_pipe, "Options built and parsed per call"});
        vs.push_back({names::lib_facade, timed([&, lp]() -> core::Result<void> {
                          auto out = lp->core().process().run(bg(), writer, {"16"});
                          if (!out) return fail(out.error());
                          return expect_size("lib.facade", out->size(), 16);
                      }),
                      names::raw_pipe, ""});
    }
#endif
    const int k = static_cast<int>(vs.size());
    env.report.add(sample_interleaved(sec, vs, n, warm, env.budget.row_deadline(k)));

    // fork() leaves every private page of this process copy-on-write: the next writes to each
    // page fault, charged to whichever sample runs next (in an A/B loop the library spawn
    // after a fork cost 30-40 us more CPU). So fork gets rounds of its own, after the others,
    // with raw posix_spawn sampled beside it as its reference.
    std::vector<Variant> fork_vs;
    fork_vs.push_back(
        {names::raw_spawn_fork_rounds, timed([&] { return raw::spawn_wait(noop); }), "", ""});
    fork_vs.push_back({names::raw_fork, timed([&] { return raw::fork_wait(noop); }),
                       names::raw_spawn_fork_rounds,
                       "rounds of its own: no sample follows a fork"});
    env.report.add(sample_interleaved(sec, fork_vs, n, warm, env.budget.row_deadline(2)));
    if (env.lib) return;
    for (const char* name : {names::lib_start, names::lib_start_posix, names::lib_start_capture,
                             names::lib_run, names::lib_action, names::lib_facade})
        env.report.add(skipped_row(sec, name, "us", env.lib_error));
}

}  // namespace bench
