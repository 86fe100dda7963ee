// What the sections of coreproc-bench share (one file per section in tools/bench/sections/):
// the stable row names the sections fill and judge_targets looks up, small helpers, the library
// handle with its sample functions, and the sets of idle children. Internal to the bench; used
// only by its main thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "harness.hpp"
#include "raw.hpp"
#include "sections.hpp"

#if BENCH_HAVE_SERVICE
#include "core/process/process.hpp"
#endif

namespace bench {

using core::E;
using core::fail;
using std::chrono::duration;

// Stable row names: the targets and --json consumers look rows up by them.
namespace names {
inline constexpr const char* raw_spawn = "raw posix_spawn+waitpid";
inline constexpr const char* raw_vfork = "raw vfork+execve+waitpid";
inline constexpr const char* raw_fork = "raw fork+execve+waitpid";
inline constexpr const char* raw_spawn_fork_rounds = "raw posix_spawn+waitpid, fork rounds";
inline constexpr const char* raw_clone = "raw clone(VM|VFORK|PIDFD)+execve+waitid";
inline constexpr const char* raw_pipe = "raw posix_spawn+pipe+read to EOF (16 B)";
inline constexpr const char* raw_hygienic = "raw posix_spawn+pipe+closefrom+sigdef+pidfd (16 B)";
inline constexpr const char* lib_start = "lib Service::start+wait (capture off)";
inline constexpr const char* lib_start_capture = "lib Service::start+wait (capture on)";
inline constexpr const char* lib_start_posix = "lib Service::start+wait (capture off, posix_spawn)";
inline constexpr const char* lib_run = "lib Service::run (capture, 16 B)";
inline constexpr const char* lib_action = "lib process.run action (Options, capture, 16 B)";
inline constexpr const char* lib_facade = "lib c.process().run facade (16 B)";
inline constexpr const char* py_plain = "python subprocess.run([noop])";
inline constexpr const char* py_capture = "python subprocess.run(capture_output, 16 B)";
inline constexpr const char* go_plain = "go exec.Command(noop).Run()";
inline constexpr const char* go_capture = "go exec.Command(writer 16).Output()";
inline constexpr const char* boost_plain = "boost process::v2 process(noop).wait()";
inline constexpr const char* boost_capture = "boost process::v2 + readable_pipe (16 B)";
inline constexpr const char* lib_plain_peers = "lib Service::start+wait (capture off), peer rounds";
inline constexpr const char* lib_capture_peers = "lib process.run action (16 B), peer rounds";
inline constexpr const char* out_raw = "raw pipe read loop (64 KiB reads)";
inline constexpr const char* out_capture = "lib Service::run capture (max_output 1 MiB)";
inline constexpr const char* out_subscriber = "lib ProcessOutput subscriber (100 B lines)";
inline constexpr const char* out_batches = "lib ProcessOutputBatch subscriber (100 B lines)";
inline constexpr const char* flat_raw = "raw posix_spawn+waitpid";
inline constexpr const char* flat_clone = "raw clone(VM|VFORK|FILES)+unshare+execve";
inline constexpr const char* flat_lib = "lib Service::start+wait (clone3)";
inline constexpr const char* flat_lib_posix = "lib Service::start+wait (posix_spawn)";

std::string reap_raw(int others);
std::string reap_thread(int others);
std::string reap_lib(int others);
std::string scale_lib(int n);
std::string scale_raw(int n);
std::string scale_heap(int n);
std::string scale_rss(int n);
std::string big(const char* what, const std::string& rss);
std::string flat(const char* what, const std::string& phase);
}  // namespace names

// The reap section's crowd of other children (normal and full runs; quick runs use 200).
inline constexpr int kReapOthersFull = 1000;

// The flat section's phases (its rows and judge_targets name them alike).
int flat_fds(const Config& cfg);   // unrelated open descriptors
int flat_live(const Config& cfg);  // live children (capture off: one pidfd each)
inline const std::string flat_none = "nothing else open";
std::string flat_fds_phase(const Config& cfg);
std::string flat_live_phase(const Config& cfg);

// "256 MiB", "2 GiB".
std::string size_label(std::size_t bytes);
double elapsed_us(Clock::time_point t0, Clock::time_point t1);
// A row that was not measured, and why.
Row skipped_row(const char* section, std::string name, std::string unit, std::string why);

// Idle children started raw, killed and reaped on destruction.
struct RawIdle {
    std::vector<int> pids;
    core::Result<void> start(const raw::Argv& a, int n);
    core::Result<void> stop();
    ~RawIdle() { (void)stop(); }
};

#if BENCH_HAVE_SERVICE

namespace proc = core::process;

// The Core with the process service (open_library), or a second one (open_batch_library).
class Library {
  public:
    explicit Library(std::shared_ptr<core::Core> core) : core_(std::move(core)) {}
    ~Library() { (void)core_->shutdown(core::Context::background()); }
    core::Core& core() { return *core_; }
    proc::Service& svc() { return *svc_; }
    core::Result<void> init();

  private:
    std::shared_ptr<core::Core> core_;
    std::shared_ptr<proc::Service> svc_;
};

// A second Core whose Service broadcasts ProcessOutputBatch (ServiceOptions::output_batches).
core::Result<LibraryPtr> open_batch_library();

const core::Context& bg();

core::Result<void> check_info(const char* op, const proc::ProcessInfo& info);
core::Result<void> expect_size(const char* op, std::size_t got, std::size_t want);

// Service::start + wait timed; the finished entry is removed after the clock stops.
SampleFn lib_start_wait(Library& lib, proc::RunOptions opts);
// The same through the fallback path (posix_spawn + pidfd_open) for the length of one sample,
// for the clone3-vs-posix_spawn figure; the process-wide method is put back afterwards.
SampleFn lib_start_wait_posix(Library& lib, proc::RunOptions opts);

// Events of the processes of this Service, by process id: a subscriber that lets a sample wait
// for *its* process's events, whatever is still queued from earlier ones.
struct EventLog {
    std::mutex mu;
    std::condition_variable cv;
    std::map<std::string, std::size_t> line_bytes;  // ProcessOutput bytes (line + its newline)
    std::set<std::string> exited;                   // ProcessExited seen
    void on(const core::Value& v);
    bool wait_exited(const std::string& id, std::chrono::seconds timeout);
    std::size_t bytes_of(const std::string& id);
};

// Waits until the event dispatcher has delivered (or dropped) everything queued so far: it
// delivers in order, so the ProcessExited of a no-op child started now comes after the backlog.
// Returns how long that took, in ms.
core::Result<double> drain_events(Library& lib, const std::string& noop);

// Idle children started by the Service (capture off), killed and reaped on stop().
struct LibIdle {
    Library& lib;
    std::vector<std::shared_ptr<proc::ManagedProcess>> ps;
    explicit LibIdle(Library& l) : lib(l) {}
    core::Result<void> start(const std::string& sleeper, int n);
    core::Result<void> stop();
    ~LibIdle() { (void)stop(); }
};

#else  // !BENCH_HAVE_SERVICE

class Library {};

#endif

}  // namespace bench
