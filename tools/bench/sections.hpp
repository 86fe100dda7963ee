// The sections of coreproc-bench (issue 6, items 1-7; issue 16) and the judgement of their
// targets: one file per section in tools/bench/sections/ (see tools/bench/README.md), sharing
// sections/common.hpp.
#pragma once

#include <memory>
#include <string>

#include "harness.hpp"

namespace bench {

class Library;  // the Core with the process service, opened on first use

// What every section gets: the configuration, the run's budget, the report to fill, and the
// library (null when the process service is not built or failed to start; see lib_error).
struct Env {
    const Config& cfg;
    Budget& budget;
    Report& report;
    Library* lib;
    std::string lib_error;  // why lib is null
};

// Shuts the Core down and frees it.
struct LibraryDeleter {
    void operator()(Library* lib) const;
};
using LibraryPtr = std::unique_ptr<Library, LibraryDeleter>;
// Opens a Core with the process service and starts it; Error when that fails.
core::Result<LibraryPtr> open_library();

// Rows a section adds, for the budget's share per row.
int estimated_rows(const Config& cfg);

void run_spawn(Env& env);      // 1 raw baselines and 2 library spawn-and-wait
void run_peers(Env& env);      // 3 Python subprocess.run, Go os/exec
void run_reap(Env& env);       // 4 reaping latency with 0 and N other children
void run_scale(Env& env);      // 5 N sleeping children: time and memory per child
void run_output(Env& env);     // 6 output throughput
void run_bigparent(Env& env);  // 7 spawn latency at a large parent RSS
void run_threads(Env& env);    // issue 16: spawns/s at 1, 2, 8, 32 threads
void run_flat(Env& env);       // issue 16: spawn cost with K open fds and L live children

// Judges issue 6's targets from the rows of this run.
void judge_targets(const Config& cfg, Report& report);

}  // namespace bench
