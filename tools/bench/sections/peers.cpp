// Section 3: the peers (Python subprocess.run, Go os/exec, Boost.Process v2), alternating with
// the library by chunks.
#include "common.hpp"

#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace bench {

namespace {

// The peers' programs are real files (tools/bench/peers/peer.py, peer.go; boost_v2.cpp is built
// with the bench); meson tells the bench where they are. Each runs N iterations of each of its
// two loops after 3 warm-up calls and prints one line per sample: "plain <µs>" or "capture <µs>".
constexpr const char* kPythonPeer = BENCH_PEER_PY;
constexpr const char* kGoPeer = BENCH_PEER_GO;

bool readable(const std::string& path) {
    return std::ifstream(path).good();
}

struct PeerSamples {
    std::vector<double> plain, capture;
    std::string error;
};

// Parses "<key> <µs>" lines.
void parse_samples(const std::string& out, PeerSamples& into) {
    std::istringstream in(out);
    std::string key;
    double us = 0;
    while (in >> key >> us) {
        if (key == "plain") into.plain.push_back(us);
        if (key == "capture") into.capture.push_back(us);
    }
}

}  // namespace

// The peers run their loops in their own process, so their samples cannot alternate with the
// library's one by one. They alternate by chunks instead: a chunk of the peer's loops, then the
// same number of library samples, and again; a change of load then hits both alike.
void run_peers(Env& env) {
    const Config& cfg = env.cfg;
    const char* sec = "peers";
    const int n = cfg.loops(50, 1000, 3000);
    // Many short chunks, in alternating order, so that the machine's drift (large on a VM: the
    // same row moves by 10-20 % within a minute) hits the peers and the library alike.
    const int chunks = cfg.pick(2, 30, 30);
    const int per_chunk = std::max(n / chunks, 3);

    struct Peer {
        const char* label;
        std::vector<std::string> cmd;  // without the trailing N
        const char* plain;
        const char* capture;
        std::string why_not;  // non-empty: skipped
        std::string dir;      // temporary directory to remove
    };
    std::vector<Peer> peers;
    {
        Peer py{"python3", {}, names::py_plain, names::py_capture, {}, {}};
        std::string python = raw::find_in_path("python3");
        if (python.empty())
            py.why_not = "python3 not found in PATH";
        else if (!readable(kPythonPeer))
            py.why_not = std::string("peer script not found: ") + kPythonPeer;
        else
            py.cmd = {python, kPythonPeer, cfg.noop, cfg.writer};
        peers.push_back(std::move(py));
    }
    {
        Peer go{"go", {}, names::go_plain, names::go_capture, {}, {}};
        std::string gobin = raw::find_in_path("go");
        char dir_template[] = "/tmp/coreproc-bench-go-XXXXXX";
        if (gobin.empty()) {
            go.why_not = "go not found in PATH";
        } else if (!readable(kGoPeer)) {
            go.why_not = std::string("peer program not found: ") + kGoPeer;
        } else if (const char* dir = ::mkdtemp(dir_template); !dir) {
            go.why_not = "mkdtemp failed";
        } else {
            go.dir = dir;
            // Built once, so that compiling is not timed and every chunk starts at once.
            auto built = raw::capture({gobin, "build", "-o", go.dir + "/peer", kGoPeer});
            if (!built)
                go.why_not = "go build failed: " + built.error().what();
            else
                go.cmd = {go.dir + "/peer", cfg.noop, cfg.writer};
        }
        peers.push_back(std::move(go));
    }
    {
        // Built with the bench (tools/bench/peers/boost_v2.cpp) where Boost 1.81's headers and
        // boost_filesystem are found; else skipped, visibly.
        Peer bo{"boost", {}, names::boost_plain, names::boost_capture, {}, {}};
        const std::string peer = BENCH_BOOST_PEER;
        if (peer.empty())
            bo.why_not = "not built (Boost.Process v2 headers or libboost_filesystem missing)";
        else
            bo.cmd = {peer, cfg.noop, cfg.writer};
        peers.push_back(std::move(bo));
    }

    std::vector<PeerSamples> got(peers.size());
    std::vector<double> lib_plain, lib_capture;
    std::string lib_err;
#if BENCH_HAVE_SERVICE
    proc::RunOptions quiet;
    quiet.command = cfg.noop;
    quiet.std_out = core::process::Stdio::inherit();
    quiet.std_err = core::process::Stdio::inherit();
    SampleFn lib_plain_fn, lib_capture_fn;
    std::optional<core::Action> action;
    const std::string writer = cfg.writer;
    if (env.lib) {
        lib_plain_fn = lib_start_wait(*env.lib, quiet);
        action.emplace(env.lib->core().action("process.run"));
        lib_capture_fn = timed([&]() -> core::Result<void> {
            core::Options opts{{"command", writer}, {"args", std::vector<std::string>{"16"}}};
            auto v = action->run(bg(), opts);
            if (!v) return fail(v.error());
            const auto* out = v->get<std::string>();
            return expect_size("lib.action", out ? out->size() : 0, 16);
        });
    }
#endif
    const auto deadline = env.budget.row_deadline(6);
    auto run_peers = [&] {
        for (std::size_t k = 0; k < peers.size(); ++k) {
            if (!peers[k].why_not.empty() || !got[k].error.empty()) continue;
            auto cmd = peers[k].cmd;
            cmd.push_back(std::to_string(per_chunk));
            auto out = raw::capture(cmd);
            if (!out)
                got[k].error = out.error().what();
            else
                parse_samples(*out, got[k]);
        }
    };
    auto run_lib = [&] {
#if BENCH_HAVE_SERVICE
        if (env.lib && lib_err.empty()) {
            for (int i = 0; i < per_chunk && lib_err.empty(); ++i) {
                auto a = lib_plain_fn();
                auto b = a ? lib_capture_fn() : core::Result<double>(fail(a.error()));
                if (!a || !b) {
                    lib_err = (!a ? a.error() : b.error()).what();
                    break;
                }
                lib_plain.push_back(*a);
                lib_capture.push_back(*b);
            }
        }
#endif
    };
    for (int c = 0; c < chunks; ++c) {
        if (c > 0 && Clock::now() >= deadline) break;
        if (c % 2 == 0) {
            run_peers();
            run_lib();
        } else {
            run_lib();
            run_peers();
        }
    }

    for (std::size_t k = 0; k < peers.size(); ++k) {
        const Peer& p = peers[k];
        for (bool plain : {true, false}) {
            const char* name = plain ? p.plain : p.capture;
            if (!p.why_not.empty()) {
                env.report.add(skipped_row(sec, name, "us", p.why_not));
                continue;
            }
            Row r;
            r.section = sec;
            r.name = name;
            r.unit = "us";
            r.ref = plain ? names::raw_spawn : names::raw_pipe;
            r.note = std::string("timed inside ") + p.label + " (" + p.cmd.front() + ")";
            r.error = got[k].error;
            auto& v = plain ? got[k].plain : got[k].capture;
            if (v.empty() && r.error.empty()) r.error = "the peer printed no sample";
            fill_stats(r, v);
            env.report.add(std::move(r));
        }
        if (!p.dir.empty()) {
            std::remove((p.dir + "/peer").c_str());
            std::remove(p.dir.c_str());
        }
    }
    if (!env.lib) {
        for (const char* name : {names::lib_plain_peers, names::lib_capture_peers})
            env.report.add(skipped_row(sec, name, "us", env.lib_error));
        return;
    }
    for (bool plain : {true, false}) {
        Row r;
        r.section = sec;
        r.name = plain ? names::lib_plain_peers : names::lib_capture_peers;
        r.unit = "us";
        r.ref = plain ? names::py_plain : names::py_capture;
        r.note = "alternating with the peers' chunks";
        r.error = lib_err;
        fill_stats(r, plain ? lib_plain : lib_capture);
        env.report.add(std::move(r));
    }
}

}  // namespace bench
