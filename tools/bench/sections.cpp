#include "sections.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "raw.hpp"

#if BENCH_HAVE_SERVICE
#include "core/process/process.hpp"
#endif

namespace bench {

namespace {

using core::E;
using core::fail;
using std::chrono::duration;

// Stable row names: the targets and --json consumers look rows up by them.
namespace names {
constexpr const char* raw_spawn = "raw posix_spawn+waitpid";
constexpr const char* raw_vfork = "raw vfork+execve+waitpid";
constexpr const char* raw_fork = "raw fork+execve+waitpid";
constexpr const char* raw_clone = "raw clone(VM|VFORK|PIDFD)+execve+waitid";
constexpr const char* raw_pipe = "raw posix_spawn+pipe+read to EOF (16 B)";
constexpr const char* raw_hygienic = "raw posix_spawn+pipe+closefrom+sigdef+pidfd (16 B)";
constexpr const char* lib_start = "lib Service::start+wait (capture off)";
constexpr const char* lib_start_capture = "lib Service::start+wait (capture on)";
constexpr const char* lib_start_posix = "lib Service::start+wait (capture off, posix_spawn)";
constexpr const char* lib_run = "lib Service::run (capture, 16 B)";
constexpr const char* lib_action = "lib process.run action (Options, capture, 16 B)";
constexpr const char* lib_facade = "lib c.process().run facade (16 B)";
constexpr const char* py_plain = "python subprocess.run([noop])";
constexpr const char* py_capture = "python subprocess.run(capture_output, 16 B)";
constexpr const char* go_plain = "go exec.Command(noop).Run()";
constexpr const char* go_capture = "go exec.Command(writer 16).Output()";
constexpr const char* boost_plain = "boost process::v2 process(noop).wait()";
constexpr const char* boost_capture = "boost process::v2 + readable_pipe (16 B)";
constexpr const char* lib_plain_peers = "lib Service::start+wait (capture off), peer rounds";
constexpr const char* lib_capture_peers = "lib process.run action (16 B), peer rounds";
constexpr const char* out_raw = "raw pipe read loop (64 KiB reads)";
constexpr const char* out_capture = "lib Service::run capture (max_output 1 MiB)";
constexpr const char* out_subscriber = "lib ProcessOutput subscriber (100 B lines)";
constexpr const char* out_batches = "lib ProcessOutputBatch subscriber (100 B lines)";

std::string reap_raw(int others) {
    return "raw pidfd+poll waiter, " + std::to_string(others) + " others alive";
}
std::string reap_thread(int others) {
    return "raw reaper thread+condvar waiter, " + std::to_string(others) + " others alive";
}
std::string reap_lib(int others) {
    return "lib ManagedProcess::wait, " + std::to_string(others) + " others alive";
}
std::string scale_lib(int n) {
    return "lib start+kill+reap per child, N=" + std::to_string(n);
}
std::string scale_raw(int n) {
    return "raw posix_spawn+kill+waitpid per child, N=" + std::to_string(n);
}
[[maybe_unused]] std::string scale_heap(int n) {
    return "lib heap per managed child, N=" + std::to_string(n);
}
[[maybe_unused]] std::string scale_rss(int n) {
    return "lib RSS per managed child, N=" + std::to_string(n);
}
std::string big(const char* what, const std::string& rss) {
    return std::string(what) + ", " + rss;
}
}  // namespace names

constexpr int kReapOthersFull = 1000;

std::string size_label(std::size_t bytes) {
    char buf[32];
    if (bytes >= (std::size_t{1} << 30) && bytes % (std::size_t{1} << 30) == 0)
        std::snprintf(buf, sizeof buf, "%zu GiB", bytes >> 30);
    else
        std::snprintf(buf, sizeof buf, "%zu MiB", bytes >> 20);
    return buf;
}

double elapsed_us(Clock::time_point t0, Clock::time_point t1) {
    return duration<double, std::micro>(t1 - t0).count();
}

Row skipped_row(const char* section, std::string name, std::string unit, std::string why) {
    Row r;
    r.section = section;
    r.name = std::move(name);
    r.unit = std::move(unit);
    r.skipped = true;
    r.note = std::move(why);
    return r;
}

}  // namespace

// ------------------------------------------------------------------------------------------
// The library handle.

#if BENCH_HAVE_SERVICE

namespace proc = core::process;

class Library {
  public:
    explicit Library(std::shared_ptr<core::Core> core) : core_(std::move(core)) {}
    ~Library() { (void)core_->shutdown(core::Context::background()); }
    core::Core& core() { return *core_; }
    proc::Service& svc() { return *svc_; }
    core::Result<void> init() {
        auto ctx = core::Context::background();
        if (auto r = core_->startup(ctx); !r) return r;
        svc_ = core_->service<proc::Service>("process");
        if (!svc_) return fail(E("bench", "no service named \"process\" after startup"));
        return {};
    }

  private:
    std::shared_ptr<core::Core> core_;
    std::shared_ptr<proc::Service> svc_;
};

core::Result<LibraryPtr> open_library() {
    auto c = core::Core::create({proc::register_service});
    if (!c) return fail(c.error());
    LibraryPtr lib(new Library(std::move(*c)));
    if (auto r = lib->init(); !r) return fail(r.error());
    return lib;
}

namespace {

// A second Core whose Service broadcasts ProcessOutputBatch (ServiceOptions::output_batches).
core::Result<LibraryPtr> open_batch_library() {
    proc::ServiceOptions opts;
    opts.output_batches = true;
    auto c = core::Core::create({proc::service_factory(opts)});
    if (!c) return fail(c.error());
    LibraryPtr lib(new Library(std::move(*c)));
    if (auto r = lib->init(); !r) return fail(r.error());
    return lib;
}

const core::Context& bg() {
    static const core::Context ctx = core::Context::background();
    return ctx;
}

core::Result<void> check_info(const char* op, const proc::ProcessInfo& info) {
    if (info.status == proc::Status::exited && info.exit_code == 0) return {};
    return fail(E(op, "child ended " + std::string(proc::to_string(info.status)) + " code " +
                          std::to_string(info.exit_code) + " " + info.error));
}

// Service::start + wait timed; the finished entry is removed after the clock stops.
SampleFn lib_start_wait(Library& lib, proc::RunOptions opts) {
    return [svc = &lib.svc(), opts = std::move(opts)]() -> core::Result<double> {
        auto t0 = Clock::now();
        auto p = svc->start(bg(), opts);
        if (!p) return fail(p.error());
        auto info = (*p)->wait();
        auto t1 = Clock::now();
        (void)svc->remove((*p)->id());
        if (auto r = check_info("lib.start", info); !r) return fail(r.error());
        return elapsed_us(t0, t1);
    };
}

// Events of the processes of this Service, by process id: a subscriber that lets a sample wait
// for *its* process's events, whatever is still queued from earlier ones.
struct EventLog {
    std::mutex mu;
    std::condition_variable cv;
    std::map<std::string, std::size_t> line_bytes;  // ProcessOutput bytes (line + its newline)
    std::set<std::string> exited;                   // ProcessExited seen
    void on(const core::Value& v) {
        if (const auto* o = v.get<proc::ProcessOutput>()) {
            std::lock_guard lk(mu);
            line_bytes[o->id] += o->line.size() + 1;
        } else if (const auto* b = v.get<proc::ProcessOutputBatch>()) {
            std::size_t n = 0;
            for (const auto& l : b->lines) n += l.size() + 1;
            std::lock_guard lk(mu);
            line_bytes[b->id] += n;
        } else if (const auto* e = v.get<proc::ProcessExited>()) {
            {
                std::lock_guard lk(mu);
                exited.insert(e->id);
            }
            cv.notify_all();
        }
    }
    bool wait_exited(const std::string& id, std::chrono::seconds timeout) {
        std::unique_lock lk(mu);
        return cv.wait_for(lk, timeout, [&] { return exited.count(id) > 0; });
    }
    std::size_t bytes_of(const std::string& id) {
        std::lock_guard lk(mu);
        auto it = line_bytes.find(id);
        return it == line_bytes.end() ? 0 : it->second;
    }
};

// Waits until the event dispatcher has delivered (or dropped) everything queued so far: it
// delivers in order, so the ProcessExited of a no-op child started now comes after the backlog.
// Returns how long that took, in ms.
core::Result<double> drain_events(Library& lib, const std::string& noop) {
    EventLog log;
    auto sub = lib.core().subscribe([&log](const core::Value& v) { log.on(v); });
    proc::RunOptions o;
    o.command = noop;
    o.std_out = core::process::Stdio::inherit();
    o.std_err = core::process::Stdio::inherit();
    auto t0 = Clock::now();
    auto p = lib.svc().start(bg(), o);
    if (!p) return fail(p.error());
    (void)(*p)->wait();
    const bool seen = log.wait_exited((*p)->id(), std::chrono::seconds(120));
    auto t1 = Clock::now();
    sub.reset();
    (void)lib.svc().remove((*p)->id());
    if (!seen) return fail(E("lib.events", "event backlog not drained within 120 s"));
    return duration<double, std::milli>(t1 - t0).count();
}

core::Result<void> expect_size(const char* op, std::size_t got, std::size_t want) {
    if (got == want) return {};
    return fail(E(op, "captured " + std::to_string(got) + " bytes, want " + std::to_string(want)));
}

}  // namespace

#else  // !BENCH_HAVE_SERVICE

class Library {};

core::Result<LibraryPtr> open_library() {
    return fail(
        E("bench", "the process service is not built (lib/process defines no core_proc_dep)"));
}

#endif

void LibraryDeleter::operator()(Library* lib) const {
    delete lib;
}

int estimated_rows(const Config& cfg) {
    int rows = 0;
    if (cfg.wants("spawn")) rows += 12;
    if (cfg.wants("peers")) rows += 4;
    if (cfg.wants("reap")) rows += 6;
    if (cfg.wants("scale")) rows += 8;
    if (cfg.wants("output")) rows += 4;
    if (cfg.wants("bigparent")) rows += 7;
    if (cfg.wants("flat")) rows += 12;
    if (cfg.wants("threads")) rows += 16;
    return rows;
}

// ------------------------------------------------------------------------------------------
// 1 and 2: spawn-and-wait.

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
    vs.push_back(
        {names::raw_fork, timed([&] { return raw::fork_wait(noop); }), names::raw_spawn, ""});
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
        vs.push_back({names::lib_start_posix,
                      [inner = lib_start_wait(*lp, quiet),
                       back = std::string(proc::spawn_method()) == "clone3"
                                  ? proc::SpawnMethod::automatic
                                  : proc::SpawnMethod::posix_spawn]() -> core::Result<double> {
                          proc::set_spawn_method(proc::SpawnMethod::posix_spawn);
                          auto r = inner();
                          proc::set_spawn_method(back);
                          return r;
                      },
                      names::raw_spawn, "the fallback: posix_spawn + pidfd_open"});
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
    if (env.lib) return;
    for (const char* name : {names::lib_start, names::lib_start_posix, names::lib_start_capture,
                             names::lib_run, names::lib_action, names::lib_facade})
        env.report.add(skipped_row(sec, name, "us", env.lib_error));
}

// ------------------------------------------------------------------------------------------
// 3: peers.

namespace {

// Each peer runs N iterations of each of its two loops after 3 warm-up calls and prints one
// line per sample: "plain <µs>" or "capture <µs>".
constexpr const char* kPythonScript = R"PY(
import subprocess, sys, time
noop, writer, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def bench(key, fn):
    for _ in range(3):
        fn()
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        print(key, (time.perf_counter_ns() - t) / 1000)
def capture():
    out = subprocess.run([writer, "16"], capture_output=True, check=True).stdout
    assert len(out) == 16
bench("plain", lambda: subprocess.run([noop], check=True))
bench("capture", capture)
sys.stdout.flush()
)PY";

constexpr const char* kGoProgram = R"GO(package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"
)

func bench(key string, n int, fn func() error) {
	for i := 0; i < 3+n; i++ {
		t := time.Now()
		if err := fn(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if i >= 3 {
			fmt.Println(key, float64(time.Since(t).Nanoseconds())/1000)
		}
	}
}

func main() {
	noop, writer := os.Args[1], os.Args[2]
	n, _ := strconv.Atoi(os.Args[3])
	bench("plain", n, func() error { return exec.Command(noop).Run() })
	bench("capture", n, func() error {
		out, err := exec.Command(writer, "16").Output()
		if err == nil && len(out) != 16 {
			err = fmt.Errorf("got %d bytes", len(out))
		}
		return err
	})
}
)GO";

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
        else
            py.cmd = {python, "-c", kPythonScript, cfg.noop, cfg.writer};
        peers.push_back(std::move(py));
    }
    {
        Peer go{"go", {}, names::go_plain, names::go_capture, {}, {}};
        std::string gobin = raw::find_in_path("go");
        char dir_template[] = "/tmp/coreproc-bench-go-XXXXXX";
        if (gobin.empty()) {
            go.why_not = "go not found in PATH";
        } else if (const char* dir = ::mkdtemp(dir_template); !dir) {
            go.why_not = "mkdtemp failed";
        } else {
            go.dir = dir;
            std::ofstream(go.dir + "/main.go") << kGoProgram;
            // Built once, so that compiling is not timed and every chunk starts at once.
            auto built =
                raw::capture({gobin, "build", "-o", go.dir + "/peer", go.dir + "/main.go"});
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
            std::remove((p.dir + "/main.go").c_str());
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

// ------------------------------------------------------------------------------------------
// 4: reaping latency.

namespace {

// Idle children started raw, killed and reaped on destruction.
struct RawIdle {
    std::vector<int> pids;
    core::Result<void> start(const raw::Argv& a, int n) {
        pids.reserve(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) {
            auto pid = raw::spawn_idle(a);
            if (!pid) return fail(pid.error());
            pids.push_back(*pid);
        }
        return {};
    }
    core::Result<void> stop() {
        core::Result<void> first;
        for (int pid : pids)
            if (auto r = raw::kill_reap(pid); !r && first) first = r;
        pids.clear();
        return first;
    }
    ~RawIdle() { (void)stop(); }
};

#if BENCH_HAVE_SERVICE
// Idle children started by the Service (capture off), killed and reaped on stop().
struct LibIdle {
    Library& lib;
    std::vector<std::shared_ptr<proc::ManagedProcess>> ps;
    explicit LibIdle(Library& l) : lib(l) {}
    core::Result<void> start(const std::string& sleeper, int n) {
        proc::RunOptions o;
        o.command = sleeper;
        o.args = {"pause"};
        o.std_out = core::process::Stdio::inherit();
        o.std_err = core::process::Stdio::inherit();
        o.grace_period = std::chrono::milliseconds(0);
        ps.reserve(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) {
            auto p = lib.svc().start(bg(), o);
            if (!p) return fail(p.error());
            ps.push_back(std::move(*p));
        }
        return {};
    }
    core::Result<void> stop() {
        core::Result<void> first;
        for (auto& p : ps)
            if (auto r = p->kill(); !r && first) first = r;
        for (auto& p : ps) (void)p->wait();
        ps.clear();
        lib.svc().clear();
        return first;
    }
    ~LibIdle() { (void)stop(); }
};

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

// ------------------------------------------------------------------------------------------
// 5: scale.

void run_scale(Env& env) {
    const Config& cfg = env.cfg;
    const char* sec = "scale";
    std::vector<std::pair<int, int>> plan;  // N, repetitions
    plan.push_back({10, cfg.pick(10, 50, 100)});
    plan.push_back({100, cfg.pick(3, 10, 20)});
    plan.push_back({1000, cfg.pick(1, 3, 5)});
    if (cfg.mode == Config::Mode::full) plan.push_back({10000, 1});
    const std::size_t nofile = raw::raise_nofile();
    raw::Argv sleeper_pause({cfg.sleeper, "pause"});

    double us_per_child = 0;  // raw + library, at the previous N: predicts the next one
    for (auto [count, reps] : plan) {
        const auto N = static_cast<std::size_t>(count);
        const double predicted_s = us_per_child * count * 1e-6;
        if (count > 10 && (env.budget.over() || predicted_s > env.budget.remaining())) {
            for (auto name : {names::scale_raw(count), names::scale_lib(count)})
                env.report.add(
                    skipped_row(sec, name, "us/child", "would exceed the --max-seconds budget"));
            continue;
        }
        if (nofile < N + 256) {
            for (auto name : {names::scale_raw(count), names::scale_lib(count)})
                env.report.add(
                    skipped_row(sec, name, "us/child",
                                "RLIMIT_NOFILE " + std::to_string(nofile) + " is too low for N"));
            continue;
        }
        Row raw_row;
        raw_row.section = sec;
        raw_row.name = names::scale_raw(count);
        raw_row.unit = "us/child";
        if (count > 10) raw_row.ref = names::scale_raw(10);
        raw_row.note = "spawn N, then SIGKILL+waitpid each";
        std::vector<double> raw_per_child;
        Row lib_row;
        lib_row.section = sec;
        lib_row.name = names::scale_lib(count);
        lib_row.unit = "us/child";
        lib_row.ref = count > 10 ? names::scale_lib(10) : names::scale_raw(10);
        std::vector<double> lib_per_child, heap, rss, start_only;

        // Raw and library alternate, repetition by repetition, so load changes hit both.
        for (int rep = 0; rep < reps; ++rep) {
            if (rep > 0 && env.budget.over()) break;
            if (raw_row.error.empty()) {
                RawIdle idle;
                auto t0 = Clock::now();
                auto s = idle.start(sleeper_pause, count);
                auto s2 = idle.stop();
                auto t1 = Clock::now();
                if (!s || !s2)
                    raw_row.error = (!s ? s.error() : s2.error()).what();
                else
                    raw_per_child.push_back(elapsed_us(t0, t1) / count);
            }
#if BENCH_HAVE_SERVICE
            if (env.lib && lib_row.error.empty()) {
                LibIdle idle(*env.lib);
                idle.ps.reserve(N);
                const std::size_t heap0 = raw::heap_bytes();
                const std::size_t rss0 = raw::rss_bytes();
                auto t0 = Clock::now();
                auto s = idle.start(cfg.sleeper, count);
                auto t1 = Clock::now();
                const std::size_t heap1 = raw::heap_bytes();
                const std::size_t rss1 = raw::rss_bytes();
                auto s2 = idle.stop();
                auto t2 = Clock::now();
                if (!s || !s2) {
                    lib_row.error = (!s ? s.error() : s2.error()).what();
                } else {
                    lib_per_child.push_back(elapsed_us(t0, t2) / count);
                    start_only.push_back(elapsed_us(t0, t1) / count);
                    heap.push_back((static_cast<double>(heap1) - static_cast<double>(heap0)) /
                                   count);
                    rss.push_back((static_cast<double>(rss1) - static_cast<double>(rss0)) / count);
                }
            }
#endif
        }
        fill_stats(raw_row, std::move(raw_per_child));
        us_per_child = raw_row.median;
        env.report.add(std::move(raw_row));
        if (!env.lib) {
            env.report.add(skipped_row(sec, names::scale_lib(count), "us/child", env.lib_error));
            continue;
        }
        if (!start_only.empty()) {
            Row tmp;
            fill_stats(tmp, start_only);
            char buf[96];
            std::snprintf(buf, sizeof buf, "start alone %.1f us/child; capture off, SIGKILL",
                          tmp.median);
            lib_row.note = buf;
        }
        fill_stats(lib_row, std::move(lib_per_child));
        us_per_child += lib_row.median;
        env.report.add(std::move(lib_row));
        Row h;
        h.section = sec;
        h.name = names::scale_heap(count);
        fill_stats(h, std::move(heap));
        h.unit = "B/child";
        h.note = "mallinfo2 delta over N running children, every arena";
        env.report.add(std::move(h));
        Row m;
        m.section = sec;
        m.name = names::scale_rss(count);
        fill_stats(m, std::move(rss));
        m.unit = "B/child";
        m.note = "/proc/self/statm delta (page-granular, noisy at small N)";
        env.report.add(std::move(m));
    }
}

// ------------------------------------------------------------------------------------------
// Flat spawn cost (issue 16, item 1): spawn+wait of the no-op with nothing else open, with K
// unrelated descriptors open in the host, and with L live children managed by the Service.

namespace {
namespace names {
std::string flat(const char* what, const std::string& phase) {
    return std::string(what) + ", " + phase;
}
constexpr const char* flat_raw = "raw posix_spawn+waitpid";
constexpr const char* flat_clone = "raw clone(VM|VFORK|FILES)+unshare+execve";
constexpr const char* flat_lib = "lib Service::start+wait (clone3)";
constexpr const char* flat_lib_posix = "lib Service::start+wait (posix_spawn)";
}  // namespace names
int flat_fds(const Config& cfg) {
    return cfg.pick(1000, 10000, 10000);  // unrelated open descriptors
}
int flat_live(const Config& cfg) {
    return cfg.pick(200, 2000, 10000);  // live children (capture off: one pidfd each)
}
const std::string flat_none = "nothing else open";
std::string flat_fds_phase(const Config& cfg) {
    return std::to_string(flat_fds(cfg)) + " unrelated fds open";
}
std::string flat_live_phase(const Config& cfg) {
    return std::to_string(flat_live(cfg)) + " live children";
}
}  // namespace

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
        vs.push_back({names::flat_lib_posix,
                      [inner = lib_start_wait(*lp, quiet),
                       back = std::string(proc::spawn_method()) == "clone3"
                                  ? proc::SpawnMethod::automatic
                                  : proc::SpawnMethod::posix_spawn]() -> core::Result<double> {
                          proc::set_spawn_method(proc::SpawnMethod::posix_spawn);
                          auto r = inner();
                          proc::set_spawn_method(back);
                          return r;
                      }});
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
    // Phase order none, fds, none, live: the baseline is sampled before and after the first
    // loaded phase, so drift hits both.
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

// ------------------------------------------------------------------------------------------
// Threaded throughput (issue 16): T threads each spawn+wait the libc-free child in a loop for a
// fixed time; spawns per second of all threads together, for T = 1, 2, 8, 32.

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

// ------------------------------------------------------------------------------------------
// 6: output throughput.

void run_output(Env& env) {
    const Config& cfg = env.cfg;
    const char* sec = "output";
    const std::size_t bytes = cfg.pick<std::size_t>(64, 256, 256) << 20;
    const int reps = cfg.pick(2, 5, 10);
    const std::string size = std::to_string(bytes);
    const std::string label = " [" + size_label(bytes) + "]";
    raw::Argv writer({cfg.writer, size, "100"});
    std::vector<double> delivered;          // share of the bytes the subscriber saw, per sample
    std::vector<double> drain_ms;           // event backlog left behind by a capture sample
    std::vector<double> delivered_batches;  // the same for the batch subscriber

    std::vector<Variant> vs;
    vs.push_back({names::out_raw, timed([&]() -> core::Result<void> {
                      auto got = raw::spawn_read(writer);
                      if (!got) return fail(got.error());
                      if (*got != bytes)
                          return fail(E("raw.output",
                                        "read " + std::to_string(*got) + " bytes, want " + size));
                      return {};
                  }),
                  "", "posix_spawn, 100 B lines" + label});
#if BENCH_HAVE_SERVICE
    proc::RunOptions o;
    o.command = cfg.writer;
    o.args = {size, "100"};
    if (Library* lp = env.lib) {
        // Timed until run() returns (what its caller waits for); the ProcessOutput events it
        // queued are then drained outside the clock, so that the next sample starts clean, and
        // the drain time is reported.
        vs.push_back(
            {names::out_capture,
             [&, lp]() -> core::Result<double> {
                 auto t0 = Clock::now();
                 auto out = lp->svc().run(bg(), o);
                 auto t1 = Clock::now();
                 if (!out) return fail(out.error());
                 auto drained = drain_events(*lp, cfg.noop);
                 if (!drained) return fail(drained.error());
                 drain_ms.push_back(*drained);
                 if (auto c = expect_size("lib.run", out->size(), std::min(bytes, o.max_output));
                     !c)
                     return fail(c.error());
                 return elapsed_us(t0, t1);
             },
             names::out_raw,
             "no subscriber; newest 1 MiB kept: throughput, not retention" + label});
        // Ends at the process's own ProcessExited event: the dispatcher delivers in order, so
        // every line it did not drop has been seen by then. (Under a flood it drops lines
        // rather than block the reaper; the share delivered is reported.) Subscribed only
        // during its own samples, so that the capture row pays nothing for it.
        vs.push_back(
            {names::out_subscriber,
             [&, lp]() -> core::Result<double> {
                 EventLog log;
                 auto sub = lp->core().subscribe([&log](const core::Value& v) { log.on(v); });
                 auto t0 = Clock::now();
                 auto p = lp->svc().start(bg(), o);
                 if (!p) return fail(p.error());
                 auto info = (*p)->wait();
                 const bool exited = log.wait_exited((*p)->id(), std::chrono::seconds(120));
                 auto t1 = Clock::now();
                 sub.reset();
                 (void)lp->svc().remove((*p)->id());
                 if (auto c = check_info("lib.subscriber", info); !c) return fail(c.error());
                 if (!exited)
                     return fail(E("lib.subscriber", "no ProcessExited event within 120 s"));
                 delivered.push_back(static_cast<double>(log.bytes_of((*p)->id())) /
                                     static_cast<double>(bytes));
                 return elapsed_us(t0, t1);
             },
             names::out_raw, "one event per 100 B line, capture on" + label});
    }
    LibraryPtr batch_lib;
    if (env.lib) {
        if (auto bl = open_batch_library(); bl) {
            batch_lib = std::move(*bl);
        } else {
            env.report.note("batch subscriber row skipped: " + bl.error().what());
        }
    }
    if (Library* lp = batch_lib.get()) {
        vs.push_back(
            {names::out_batches,
             [&, lp]() -> core::Result<double> {
                 EventLog log;
                 auto sub = lp->core().subscribe([&log](const core::Value& v) { log.on(v); });
                 auto t0 = Clock::now();
                 auto p = lp->svc().start(bg(), o);
                 if (!p) return fail(p.error());
                 auto info = (*p)->wait();
                 const bool exited = log.wait_exited((*p)->id(), std::chrono::seconds(120));
                 auto t1 = Clock::now();
                 sub.reset();
                 (void)lp->svc().remove((*p)->id());
                 if (auto c = check_info("lib.batches", info); !c) return fail(c.error());
                 if (!exited) return fail(E("lib.batches", "no ProcessExited event within 120 s"));
                 delivered_batches.push_back(static_cast<double>(log.bytes_of((*p)->id())) /
                                             static_cast<double>(bytes));
                 return elapsed_us(t0, t1);
             },
             names::out_raw, "output_batches: one event per read, capture on" + label});
    }
#endif
    // One round at least (each moves the whole size through every variant).
    auto rows = sample_interleaved(sec, vs, reps, 0,
                                   env.budget.row_deadline(static_cast<int>(vs.size())), 1);
    // Durations to MB/s (bytes per µs): the slow tail of the time is the low tail of MB/s.
    for (auto& r : rows) {
        r.unit = "MB/s";
        if (r.n == 0) continue;
        const double b = static_cast<double>(bytes);
        const double min_us = r.min, max_us = r.max;
        r.median = b / r.median;
        r.p99 = b / r.p99;
        r.min = b / max_us;
        r.max = b / min_us;
        if (r.name == names::out_capture && !drain_ms.empty()) {
            Row d;
            fill_stats(d, drain_ms);
            char buf[96];
            std::snprintf(buf, sizeof buf, "; events still queued at return: drained in %.0f ms",
                          d.median);
            r.note += buf;
        }
        if (r.name == names::out_batches && !delivered_batches.empty()) {
            char buf[96];
            std::snprintf(
                buf, sizeof buf, "; lines delivered: %.0f%%..%.0f%% of the output",
                100 * *std::min_element(delivered_batches.begin(), delivered_batches.end()),
                100 * *std::max_element(delivered_batches.begin(), delivered_batches.end()));
            r.note += buf;
        }
        if (r.name == names::out_subscriber && !delivered.empty()) {
            char buf[96];
            std::snprintf(buf, sizeof buf, "; lines delivered: %.0f%%..%.0f%% of the output",
                          100 * *std::min_element(delivered.begin(), delivered.end()),
                          100 * *std::max_element(delivered.begin(), delivered.end()));
            r.note += buf;
        }
    }
    env.report.add(std::move(rows));
    if (env.lib) return;
    for (const char* name : {names::out_capture, names::out_subscriber})
        env.report.add(skipped_row(sec, name, "MB/s", env.lib_error));
}

// ------------------------------------------------------------------------------------------
// 7: big parent.

void run_bigparent(Env& env) {
    const Config& cfg = env.cfg;
    const char* sec = "bigparent";
    const std::size_t big_bytes = cfg.pick<std::size_t>(256, 2048, 2048) << 20;
    const int n = cfg.loops(20, 100, 300);
    const int warm = cfg.pick(1, 3, 5);
    // The RSS cannot alternate sample by sample, so the phases do: small, big, small, big, …
    // (the block is freed and grown again each cycle), and a drift of the machine's speed
    // during the section hits both sizes alike instead of deciding their ratio.
    const int cycles = cfg.pick(1, 3, 3);
    const int per_phase = std::max(3, n / cycles);
    raw::Argv noop({cfg.noop});
    const std::string small = "RSS " + size_label(raw::rss_bytes() & ~((std::size_t{1} << 20) - 1));
    const std::string large = "RSS +" + size_label(big_bytes);

    struct Series {
        const char* base;  // the row name at normal RSS
        SampleFn fn;
        std::vector<double> samples[2];  // [0] small, [1] big
        std::string error;
    };
    std::vector<Series> series;
    series.push_back({names::raw_spawn, timed([&] { return raw::spawn_wait(noop); }), {}, {}});
    series.push_back({names::raw_fork, timed([&] { return raw::fork_wait(noop); }), {}, {}});
#if BENCH_HAVE_SERVICE
    proc::RunOptions quiet;
    quiet.command = cfg.noop;
    quiet.std_out = core::process::Stdio::inherit();
    quiet.std_err = core::process::Stdio::inherit();
    if (env.lib) series.push_back({names::lib_start, lib_start_wait(*env.lib, quiet), {}, {}});
#endif

    // Within a phase the fork row runs last, after every other row's samples (issue 16): after a
    // fork the parent's pages are write-protected for copy-on-write, so whatever ran next paid
    // the faults of a 2 GiB parent (the library's row always followed raw fork: 1.32-1.40x).
    auto phase = [&](int which, bool forks) {
        std::vector<Variant> vs;
        bool recording = false;
        for (auto& sr : series) {
            if (!sr.error.empty()) continue;
            if ((std::string_view(sr.base) == names::raw_fork) != forks) continue;
            vs.push_back({sr.base,
                          [&sr, which, &recording]() -> core::Result<double> {
                              auto r = sr.fn();
                              if (r && recording) sr.samples[which].push_back(*r);
                              return r;
                          },
                          "", ""});
        }
        for (int w = 0; w < warm; ++w)
            for (auto& v : vs) (void)v.fn();
        recording = true;
        auto rows = sample_interleaved(sec, vs, per_phase, 0,
                                       env.budget.row_deadline(static_cast<int>(vs.size())));
        for (const auto& row : rows)
            for (auto& sr : series)
                if (row.name == sr.base && !row.error.empty()) sr.error = row.error;
    };

    const std::size_t rss0 = raw::rss_bytes();
    for (int c = 0; c < cycles; ++c) {
        phase(0, false);
        phase(0, true);
        // Grow: every page touched, so the RSS is real and fork() must copy its page tables.
        auto* block = static_cast<char*>(std::malloc(big_bytes));
        if (!block) {
            Row r;
            r.section = sec;
            r.name = "grow RSS by " + size_label(big_bytes);
            r.error = "malloc failed";
            env.report.add(std::move(r));
            return;
        }
        volatile char* touch = block;
        const std::size_t page = raw::page_size();
        for (std::size_t i = 0; i < big_bytes; i += page) touch[i] = static_cast<char>(i >> 12);
        if (c == 0)
            env.report.note("bigparent: RSS grew from " + size_label(rss0) + " to " +
                            size_label(raw::rss_bytes()) + "; " + std::to_string(cycles) +
                            " small/big cycles");
        phase(1, false);
        phase(1, true);
        std::free(block);  // an mmap'd chunk: back to the kernel at once
    }
    for (int which = 0; which < 2; ++which) {
        for (auto& sr : series) {
            Row r;
            r.section = sec;
            r.name = names::big(sr.base, which ? large : small);
            r.unit = "us";
            if (which) r.ref = names::big(sr.base, small);
            if (!sr.error.empty()) {
                r.error = sr.error;
            } else {
                fill_stats(r, sr.samples[which]);
            }
            env.report.add(std::move(r));
        }
        if (!env.lib)
            env.report.add(skipped_row(sec, names::big(names::lib_start, which ? large : small),
                                       "us", env.lib_error));
    }
}

// ------------------------------------------------------------------------------------------
// The targets of issue 6.

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
    for (auto [peer, label] :
         {std::pair{"python", "Python subprocess.run"}, std::pair{"go", "Go os/exec"},
          std::pair{"boost", "Boost.Process v2"}}) {
        const std::string_view pv = peer;
        const char* pp = pv == "python" ? names::py_plain
                         : pv == "go"   ? names::go_plain
                                        : names::boost_plain;
        const char* pc = pv == "python" ? names::py_capture
                         : pv == "go"   ? names::go_capture
                                        : names::boost_capture;
        double a = report.ratio(names::lib_plain_peers, pp);
        double b = report.ratio(names::lib_capture_peers, pc);
        Target t;
        t.name = std::string("faster than ") + label + " (plain and capture)";
        if (a <= 0 || b <= 0) {
            t.status = "N/A";
            t.figure = std::string(peer) + " not measured";
        } else {
            char buf[96];
            std::snprintf(buf, sizeof buf, "lib/%s: %.2fx plain, %.2fx capture", peer, a, b);
            t.figure = buf;
            t.status = a < 1 && b < 1 ? "PASS" : "MISS";
        }
        report.add_target(std::move(t));
    }
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
