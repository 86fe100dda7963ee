// The coreproc subcommands: each takes its parsed flags and returns the process exit code.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common.hpp"
#include "containment_flags.hpp"

namespace coreproc {

struct RunArgs {
    std::string dir;
    std::vector<std::string> env;
    std::string timeout;  // a duration, empty: none
    std::string grace;    // SIGTERM→SIGKILL delay on timeout/interrupt, empty: the default
    bool kill_group = false;
    std::string stdin_mode = "inherit";  // inherit | null
    std::vector<std::string> command;    // CMD ARG…
    ContainmentArgs contain;             // --cgroup, --memory-max, --user, … (issue 13)
};
int cmd_run(const Globals& g, const RunArgs& a);

struct PipelineArgs {
    std::string file;
    std::vector<std::string> targets;  // steps to run with their dependencies; empty: all
    std::size_t jobs = 0;              // 0: hardware threads
    bool sequential = false;
    bool fail_fast = false;  // after the first failure, start nothing more, stop what runs
    bool dry_run = false;    // print the order, run nothing
    bool quiet = false;      // only failures and the summary
    bool plain = false;      // no live view even on a terminal
};
int cmd_pipeline(const Globals& g, const PipelineArgs& a);

struct SuperviseArgs {
    std::string file;
    std::string listen = "127.0.0.1:0";
    std::string registry;  // empty: the default registry directory
    std::string code = "coreproc";
    std::string log_dir;  // empty: beside the registry (see cmd_supervise.cpp)
    // The control plane (lib/control): socket path or name, optional loopback TCP listener.
    std::string socket;          // empty: <control dir>/<name>.sock
    std::string name;            // empty: the file's base name without extension
    std::string control_listen;  // empty: no TCP control listener
    bool allow_remote = false;
    std::string token_file;
    // PID 1 duties (issue 15): reap orphans; --init is automatic when coreproc is PID 1.
    bool init = false;
    bool subreaper = false;
};
int cmd_supervise(const Globals& g, const SuperviseArgs& a);

struct DaemonsArgs {
    std::string registry;
};
int cmd_daemons(const Globals& g, const DaemonsArgs& a);

// coreproc ctl: see cmd_ctl.cpp.
struct CtlArgs {
    std::string name;
    std::string socket;
    std::string action;
    std::vector<std::string> args;
    bool follow = false;     // logs -f
    std::size_t lines = 10;  // logs -n
    bool err = false;        // logs --stderr
};
int cmd_ctl(const Globals& g, const CtlArgs& a);

struct DemoArgs {
    std::string registry;  // empty: a temporary directory
};
int cmd_demo(const Globals& g, const DemoArgs& a);

}  // namespace coreproc
