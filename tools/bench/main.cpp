// coreproc-bench: spawn-and-reap latency, reaping latency, scale, output throughput and
// big-parent spawn cost of the process service, side by side with raw syscall baselines and
// the peers (Python, Go), in one run. See README "Performance" and issue 6.
#include <gnu/libc-version.h>
#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "harness.hpp"
#include "raw.hpp"
#include "sections.hpp"

namespace {

constexpr const char* kSections[] = {"spawn",  "peers",     "reap", "scale",
                                     "output", "bigparent", "flat", "threads"};

void usage(std::FILE* out) {
    std::fprintf(
        out,
        "usage: coreproc-bench [--quick | --full] [--json] [--max-seconds S]\n"
        "                      [--only SECTION,...] [--iterations N] [--realtime]\n"
        "                      [--noop PATH] [--writer PATH] [--sleeper PATH]\n"
        "  --quick          small N and sizes (the CI smoke)\n"
        "  --full           large N, and scale up to 10000 children\n"
        "  --json           print the results as JSON instead of a table\n"
        "  --max-seconds S  bound the run: loops stop early (after 3 samples)\n"
        "  --only LIST      sections: spawn,peers,reap,scale,output,bigparent,flat,threads\n"
        "  --iterations N   N of every latency loop\n"
        "  --realtime       run under SCHED_FIFO 10 (root or CAP_SYS_NICE); threads and\n"
        "                   children inherit it: a loaded machine then disturbs less\n"
        "Exit status: 0 when every measurement ran, 1 when one failed, 2 on bad use.\n");
}

bool parse_args(int argc, char** argv, bench::Config& cfg) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](const char* flag) -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "coreproc-bench: %s needs a value\n", flag);
                return nullptr;
            }
            return argv[++i];
        };
        if (a == "--quick") {
            cfg.mode = bench::Config::Mode::quick;
        } else if (a == "--full") {
            cfg.mode = bench::Config::Mode::full;
        } else if (a == "--json") {
            cfg.json = true;
        } else if (a == "--realtime") {
            cfg.realtime = true;
        } else if (a == "--max-seconds") {
            const char* v = value("--max-seconds");
            if (!v) return false;
            char* end = nullptr;
            cfg.max_seconds = std::strtod(v, &end);
            if (*end != '\0' || cfg.max_seconds < 0) {
                std::fprintf(stderr, "coreproc-bench: --max-seconds: not a number >= 0: %s\n", v);
                return false;
            }
        } else if (a == "--iterations") {
            const char* v = value("--iterations");
            if (!v) return false;
            cfg.iterations = std::atoi(v);
            if (cfg.iterations < 1) {
                std::fprintf(stderr, "coreproc-bench: --iterations: want N >= 1, got %s\n", v);
                return false;
            }
        } else if (a == "--only") {
            const char* v = value("--only");
            if (!v) return false;
            std::string list = v;
            std::size_t start = 0;
            while (start <= list.size()) {
                std::size_t end = list.find(',', start);
                if (end == std::string::npos) end = list.size();
                std::string s = list.substr(start, end - start);
                bool known = false;
                for (const char* k : kSections) known = known || s == k;
                if (!known) {
                    std::fprintf(stderr, "coreproc-bench: --only: unknown section \"%s\"\n",
                                 s.c_str());
                    return false;
                }
                cfg.only.insert(s);
                start = end + 1;
            }
        } else if (a == "--noop" || a == "--writer" || a == "--sleeper") {
            const char* v = value(a.c_str());
            if (!v) return false;
            (a == "--noop" ? cfg.noop : a == "--writer" ? cfg.writer : cfg.sleeper) = v;
        } else if (a == "--help" || a == "-h") {
            usage(stdout);
            std::exit(0);
        } else {
            std::fprintf(stderr, "coreproc-bench: unknown argument \"%s\"\n", a.c_str());
            return false;
        }
    }
    return true;
}

std::string first_line(const char* path) {
    std::ifstream f(path);
    std::string line;
    std::getline(f, line);
    return line;
}

nlohmann::json machine_info() {
    utsname u{};
    ::uname(&u);
    std::string cpu;
    std::ifstream f("/proc/cpuinfo");
    for (std::string line; std::getline(f, line);) {
        if (line.rfind("model name", 0) == 0) {
            cpu = line.substr(line.find(':') + 2);
            break;
        }
    }
    return {
        {"kernel", std::string(u.release)},
        {"glibc", gnu_get_libc_version()},
        {"cpus", std::thread::hardware_concurrency()},
        {"cpu", cpu},
        {"loadavg", first_line("/proc/loadavg")},
        {"compiler", BENCH_COMPILER},
        {"buildtype", BENCH_BUILDTYPE},
        {"static_children", BENCH_STATIC_CHILDREN == 1},
        {"process_service", BENCH_HAVE_SERVICE == 1},
        {"nofile", bench::raw::raise_nofile()},
    };
}

}  // namespace

int main(int argc, char** argv) {
    bench::Config cfg;
    cfg.noop = BENCH_NOOP;
    cfg.writer = BENCH_WRITER;
    cfg.sleeper = BENCH_SLEEPER;
    cfg.nolibc = BENCH_NOLIBC;
    if (!cfg.nolibc.empty() && ::access(cfg.nolibc.c_str(), X_OK) != 0) cfg.nolibc.clear();
    if (!parse_args(argc, argv, cfg)) {
        usage(stderr);
        return 2;
    }
    for (const std::string* p : {&cfg.noop, &cfg.writer, &cfg.sleeper}) {
        if (::access(p->c_str(), X_OK) != 0) {
            std::fprintf(stderr, "coreproc-bench: child %s: %s\n", p->c_str(),
                         std::strerror(errno));
            return 2;
        }
    }

    // Before any thread exists: threads created later (the reaper, the event dispatcher) and
    // every child inherit the policy.
    if (cfg.realtime) {
        sched_param sp{};
        sp.sched_priority = 10;
        if (::sched_setscheduler(0, SCHED_FIFO, &sp) != 0) {
            std::fprintf(stderr, "coreproc-bench: --realtime: sched_setscheduler: %s\n",
                         std::strerror(errno));
            return 2;
        }
    }
    nlohmann::json machine = machine_info();
    machine["scheduler"] = cfg.realtime ? "SCHED_FIFO 10" : "SCHED_OTHER";
    if (!cfg.json) {
        char max_text[48];
        std::snprintf(max_text, sizeof max_text, ", max %g s", cfg.max_seconds);
        std::printf(
            "coreproc-bench: mode %s%s; %s; kernel %s; glibc %s; %u cpus; %s %s; load %s\n"
            "%s; children %s; medians and p99 in the unit shown; 'vs' = ratio of medians\n\n",
            cfg.mode_name(), cfg.max_seconds > 0 ? max_text : "",
            machine["cpu"].get<std::string>().c_str(), machine["kernel"].get<std::string>().c_str(),
            gnu_get_libc_version(), std::thread::hardware_concurrency(), BENCH_COMPILER,
            BENCH_BUILDTYPE, machine["loadavg"].get<std::string>().c_str(),
            cfg.realtime ? "SCHED_FIFO 10" : "SCHED_OTHER",
            BENCH_STATIC_CHILDREN ? "static (no dynamic loader)" : "DYNAMIC (sanitizer build)");
        std::fflush(stdout);
    }

    bench::Report report;
    bench::Budget budget(cfg.max_seconds, bench::estimated_rows(cfg));
    bench::LibraryPtr lib;
    std::string lib_error;
    bool wants_lib = false;
    for (const char* s :
         {"spawn", "peers", "reap", "scale", "output", "bigparent", "flat", "threads"})
        wants_lib = wants_lib || cfg.wants(s);
    if (wants_lib) {
        if (auto l = bench::open_library(); l) {
            lib = std::move(*l);
        } else {
            lib_error = l.error().what();
            report.note("library rows skipped: " + lib_error);
        }
    }

    bench::Env env{cfg, budget, report, lib.get(), lib_error};
    using Fn = void (*)(bench::Env&);
    const std::pair<const char*, Fn> sections[] = {
        {"spawn", bench::run_spawn},
        {"peers", bench::run_peers},
        {"reap", bench::run_reap},
        {"scale", bench::run_scale},
        {"output", bench::run_output},
        {"flat", bench::run_flat},
        {"threads", bench::run_threads},
        // Last: freeing its 2 GiB keeps the kernel busy for a while after it ends.
        {"bigparent", bench::run_bigparent},
    };
    const auto t0 = bench::Clock::now();
    for (auto [name, fn] : sections) {
        if (!cfg.wants(name)) continue;
        const auto s0 = bench::Clock::now();
        fn(env);
        char buf[96];
        std::snprintf(buf, sizeof buf, "section %s took %.2f s", name,
                      std::chrono::duration<double>(bench::Clock::now() - s0).count());
        report.note(buf);
    }
    lib.reset();
    char total[64];
    std::snprintf(total, sizeof total, "total %.2f s",
                  std::chrono::duration<double>(bench::Clock::now() - t0).count());
    report.note(total);
    bench::judge_targets(cfg, report);

    if (cfg.json) {
        std::printf("%s\n", report.to_json(cfg, machine).dump(2).c_str());
    } else {
        report.print_table(stdout);
    }
    return report.failed() ? 1 : 0;
}
