// The targets of issues 6 and 16, judged from the rows of one run.
#include "common.hpp"

#include <cmath>
#include <cstdio>
#include <string_view>
#include <tuple>
#include <utility>

namespace bench {

void judge_targets(const Config& cfg, Report& report) {
    auto ratio_target = [&](std::string name, std::string_view a, std::string_view b,
                            double limit) {
        double q = report.ratio(a, b);
        Target t;
        t.name = std::move(name);
        if (q <= 0) {
            t.status = "N/A";
            t.figure = "not measured";
        } else {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.2fx", q);
            t.figure = buf;
            t.status = q <= limit ? "PASS" : "MISS";
        }
        report.add_target(std::move(t));
        return q;
    };
    auto median = [&](std::string_view name) -> double {
        const Row* r = report.find(name);
        if (!r || r->skipped || r->n == 0 || !r->error.empty()) return -1;
        return r->median;
    };

    double q = ratio_target("Service::start+wait <= 1.15x raw posix_spawn+waitpid",
                            names::lib_start, names::raw_spawn, 1.15);
    {
        Target t;
        t.name = "stretch: Service::start+wait beats raw posix_spawn+waitpid";
        t.status = q <= 0 ? "N/A" : q < 1.0 ? "PASS" : "MISS";
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.2fx", q);
        t.figure = q <= 0 ? "not measured" : buf;
        report.add_target(std::move(t));
    }
    ratio_target("process.run (action, capture) <= 1.30x raw spawn+pipe+read", names::lib_action,
                 names::raw_pipe, 1.30);
    // lib/peer in the peers section's alternating rounds, plain and capture: PASS when both
    // ratios are at most `limit`.
    auto peer_target = [&](std::string name, const char* peer, const char* plain,
                           const char* capture, double limit) {
        const double a = report.ratio(names::lib_plain_peers, plain);
        const double b = report.ratio(names::lib_capture_peers, capture);
        Target t;
        t.name = std::move(name);
        if (a <= 0 || b <= 0) {
            t.status = "N/A";
            t.figure = std::string(peer) + " not measured";
        } else {
            char buf[96];
            std::snprintf(buf, sizeof buf, "lib/%s: %.2fx plain, %.2fx capture", peer, a, b);
            t.figure = buf;
            t.status = a <= limit && b <= limit ? "PASS" : "MISS";
        }
        report.add_target(std::move(t));
    };
    const double faster = std::nextafter(1.0, 0.0);  // "faster than": strictly below 1
    peer_target("faster than Python subprocess.run (plain and capture)", "python", names::py_plain,
                names::py_capture, faster);
    peer_target("faster than Go os/exec (plain and capture)", "go", names::go_plain,
                names::go_capture, faster);
    peer_target("faster than Boost.Process v2 (plain and capture)", "boost", names::boost_plain,
                names::boost_capture, faster);
    {
        const int others = cfg.pick(200, kReapOthersFull, kReapOthersFull);
        const Row* r = report.find(names::reap_lib(others));
        const Row* floor = report.find(names::reap_thread(others));
        Target t;
        t.name = "reaping p50 <= 50 us, p99 <= 1 ms with " + std::to_string(others) + " others";
        if (!r || r->skipped || r->n == 0 || !r->error.empty()) {
            t.status = "N/A";
            t.figure = "not measured";
        } else {
            char buf[128];
            std::snprintf(buf, sizeof buf, "p50 %.1f us, p99 %.1f us", r->median, r->p99);
            t.figure = buf;
            if (floor && floor->n > 0) {
                std::snprintf(buf, sizeof buf, " (raw reaper-thread reference: p50 %.1f, p99 %.1f)",
                              floor->median, floor->p99);
                t.figure += buf;
            }
            t.status = r->median <= 50 && r->p99 <= 1000 ? "PASS" : "MISS";
        }
        report.add_target(std::move(t));
    }
    {
        double q = ratio_target("cost per child flat: N=1000 <= 1.5x N=10", names::scale_lib(1000),
                                names::scale_lib(10), 1.5);
        double raw_q = report.ratio(names::scale_raw(1000), names::scale_raw(10));
        if (q > 0 && raw_q > 0) {
            char buf[64];
            std::snprintf(buf, sizeof buf, " (raw posix_spawn: %.2fx)", raw_q);
            report.last_target().figure += buf;
        }
    }
    {
        double heap = median(names::scale_heap(1000));
        Target t;
        t.name = "memory per managed child <= 8 KiB (heap, N=1000)";
        if (heap < 0) {
            t.status = "N/A";
            t.figure = "not measured";
        } else {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.0f B", heap);
            t.figure = buf;
            t.status = heap <= 8192 ? "PASS" : "MISS";
        }
        report.add_target(std::move(t));
    }
    {
        // Throughput: higher is better, so the ratio is capture / raw >= 0.8.
        double qc = report.ratio(names::out_capture, names::out_raw);
        Target t;
        t.name = "output capture >= 80% of the raw read loop";
        if (qc <= 0) {
            t.status = "N/A";
            t.figure = "not measured";
        } else {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.0f%%", qc * 100);
            t.figure = buf;
            t.status = qc >= 0.8 ? "PASS" : "MISS";
        }
        report.add_target(std::move(t));
    }
    // Issue 16's output targets: throughput ratios (higher is better).
    for (auto [row, label, limit] :
         {std::tuple{names::out_capture, "issue 16: capture >= 0.95x the raw read loop", 0.95},
          std::tuple{names::out_subscriber,
                     "issue 16: ProcessOutput subscriber >= 0.8x the raw read loop", 0.8},
          std::tuple{names::out_batches,
                     "issue 16: ProcessOutputBatch subscriber >= 0.8x the raw read loop", 0.8}}) {
        const double q = report.ratio(row, names::out_raw);
        Target t;
        t.name = label;
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.2fx", q);
        t.figure = q <= 0 ? "not measured" : buf;
        t.status = q <= 0 ? "N/A" : q >= limit ? "PASS" : "MISS";
        report.add_target(std::move(t));
    }
    {
        const std::size_t big_bytes = cfg.pick<std::size_t>(256, 2048, 2048) << 20;
        std::string large = "RSS +" + size_label(big_bytes);
        const Row* r = report.find(names::big(names::lib_start, large));
        ratio_target("big parent: Service::start+wait at " + large + " <= 1.2x small",
                     r ? std::string_view(r->name) : std::string_view("-"),
                     r ? std::string_view(r->ref) : std::string_view("-"), 1.2);
    }
    // Issue 16's spawn-cost targets (stricter than issue 6's above), from the same rows.
    ratio_target("issue 16: Service::start+wait <= 1.05x raw posix_spawn+waitpid", names::lib_start,
                 names::raw_spawn, 1.05);
    ratio_target("issue 16: process.run with capture <= 1.10x raw spawn+pipe+read",
                 names::lib_action, names::raw_pipe, 1.10);
    peer_target("issue 16: <= 0.85x Python (plain and capture)", "python", names::py_plain,
                names::py_capture, 0.85);
    peer_target("issue 16: <= 0.85x Go (plain and capture)", "go", names::go_plain,
                names::go_capture, 0.85);
    {
        // CPU of this process per spawn (every thread of it, the child's own not counted).
        const Row* lib = report.find(names::lib_start);
        const Row* floor = report.find(names::raw_vfork);
        Target t;
        t.name = "issue 16: CPU per start+wait <= 1.15x raw vfork+execve+waitpid";
        if (!lib || !floor || lib->cpu_us <= 0 || floor->cpu_us <= 0 || !lib->error.empty() ||
            !floor->error.empty()) {
            t.status = "N/A";
            t.figure = "not measured";
        } else {
            const double q = lib->cpu_us / floor->cpu_us;
            char buf[128];
            std::snprintf(buf, sizeof buf, "%.2fx (%.1f vs %.1f us)", q, lib->cpu_us,
                          floor->cpu_us);
            t.figure = buf;
            // The floor of any spawner that holds a pidfd from birth, beside it.
            const Row* pidfd = report.find(names::raw_clone);
            if (pidfd && pidfd->cpu_us > 0 && pidfd->error.empty()) {
                std::snprintf(buf, sizeof buf, "; raw clone(VM|VFORK|PIDFD): %.2fx",
                              pidfd->cpu_us / floor->cpu_us);
                t.figure += buf;
            }
            t.status = q <= 1.15 ? "PASS" : "MISS";
        }
        report.add_target(std::move(t));
    }
    {
        const int others = cfg.pick(200, kReapOthersFull, kReapOthersFull);
        ratio_target("issue 16: reaping p50 <= 1.1x a raw pidfd+poll waiter, " +
                         std::to_string(others) + " others",
                     names::reap_lib(others), names::reap_raw(others), 1.1);
    }
    // Issue 16: 8-thread throughput >= 0.9x raw threaded vfork (higher is better).
    if (cfg.wants("threads")) {
        const double q = report.ratio("lib Service::start+wait (capture off), 8 threads",
                                      "raw vfork+execve+waitpid, 8 threads");
        Target t;
        t.name = "issue 16: 8-thread start+wait throughput >= 0.9x raw threaded vfork";
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.2fx", q);
        t.figure = q <= 0 ? "not measured" : buf;
        t.status = q <= 0 ? "N/A" : q >= 0.9 ? "PASS" : "MISS";
        report.add_target(std::move(t));
    }
    // Issue 16's flat-spawn targets, under whatever scheduler this run used.
    if (cfg.wants("flat")) {
        for (const auto& phase : {flat_live_phase(cfg), flat_fds_phase(cfg)}) {
            const bool fds = phase == flat_fds_phase(cfg);
            ratio_target(std::string("start+wait with ") + phase + " <= 1.2x with " + flat_none,
                         names::flat(names::flat_lib, phase),
                         names::flat(names::flat_lib, flat_none), 1.2);
            // The same ratio of the raw rows beside it: what the kernel charges others.
            for (const char* raw_name : {names::flat_raw, names::flat_clone}) {
                const double rq =
                    report.ratio(names::flat(raw_name, phase), names::flat(raw_name, flat_none));
                Target t;
                t.name = std::string("  (reference) ") + raw_name + ", " + phase;
                char buf[64];
                std::snprintf(buf, sizeof buf, "%.2fx", rq);
                t.figure = rq <= 0 ? "not measured" : buf;
                t.status = "-";
                report.add_target(std::move(t));
            }
            (void)fds;
        }
    }
}

}  // namespace bench
