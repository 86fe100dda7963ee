// Value types of the process service: status, options, info and the IPC events.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/export.hpp"
#include "core/process/containment.hpp"

namespace core::process {

enum class Status { pending, running, exited, killed, failed };
CORE_API const char* to_string(Status s) noexcept;

enum class Stream { stdout_, stderr_ };
CORE_API const char* to_string(Stream s) noexcept;

// Why a process ended, besides how: natural (it exited or died on its own), or the end of a
// kill this library started: a timeout, a cancelled Context, kill(), or the Service's shutdown.
enum class ExitReason { natural, timeout, cancelled, killed, shutdown };
CORE_API const char* to_string(ExitReason r) noexcept;

// How a process ended: exited (code), killed by a signal, never started, or unknown (its exit
// status was taken by someone else: a host's waitpid(-1), SIGCHLD set to SIG_IGN; or a process
// adopted without being our child).
enum class ExitKind { exited, signalled, failed_to_start, unknown };
CORE_API const char* to_string(ExitKind k) noexcept;

// The one typed completion of a child (tokio's ExitStatus): the reaper fills it, and everything
// else (Service::run's Error, the Runner, the Supervisor, the CLI, ProcessExited) reads it.
struct ExitStatus {
    using Kind = ExitKind;
    using Reason = ExitReason;
    ExitKind kind = ExitKind::exited;
    int code = 0;    // the exit code (kind exited), else -1
    int signal = 0;  // the terminating signal (kind signalled), else 0
    bool core_dumped = false;
    ExitReason reason = ExitReason::natural;
    std::chrono::milliseconds timeout{0};  // the timeout that expired (reason timeout)
    // A descendant still held the output pipes when the bounded drain after the leader's exit
    // ended (Go's ErrWaitDelay): what it wrote after that is lost.
    bool output_cut = false;
    // Extra words for describe(): the cancellation's reason, why the start failed, or an
    // accounting verdict such as the OOM killer.
    std::string detail;

    // Exited with code 0, for a natural reason, and nothing cut.
    bool success() const noexcept {
        return kind == ExitKind::exited && code == 0 && reason == ExitReason::natural &&
               !output_cut;
    }
    // The one place the end of a process is put into words: "exited with code 3", "killed by
    // signal 9 (SIGKILL)", "timed out after 2s", "context cancelled", "stopped by the process
    // service's shutdown", "failed to start: …"; cut output adds "; output cut: …".
    CORE_API std::string describe() const;
};

// Resource use of the child itself, from the reap (waitid with rusage): CPU times and the
// peak resident set size.
struct Usage {
    std::chrono::microseconds user_cpu{0};
    std::chrono::microseconds system_cpu{0};
    std::uint64_t max_rss_bytes = 0;
};

struct ProcessInfo {
    std::string id;
    int pid = 0;
    std::string command;
    std::vector<std::string> args;
    std::string dir;
    bool running = false;
    Status status = Status::pending;
    int exit_code = 0;  // -1 when killed by a signal
    int signal = 0;     // the signal that killed it, else 0
    std::chrono::system_clock::time_point started_at{};
    std::chrono::nanoseconds duration{0};  // so far, while running
    std::size_t output_dropped = 0;  // bytes dropped from the front of the (stdout/combined) output
    // Set once finished, unless it exited with code 0: "exited with code N", "killed by
    // signal N (SIGX)", "timed out after D", the cancelled context's reason, "output cut", or
    // why the process failed (status failed). Empty while running.
    std::string error;
    ExitStatus exit;                   // once finished (running: the defaults)
    Usage usage;                       // once finished
    std::size_t stderr_dropped = 0;    // with std_err = Stdio::pipe(): bytes dropped from its front
    std::size_t callback_dropped = 0;  // on_output bytes dropped because the queue was full
    // The child's cgroup (a path; empty without one) and what it counted: current memory and
    // CPU while running, the final figures (peak memory, OOM kills) once finished.
    std::string cgroup;
    Accounting accounting;
};

// Where one standard stream of a child goes (reproc's REPROC_REDIRECT_*, tokio's Stdio).
//  null()        /dev/null
//  inherit()     the host's own descriptor 0, 1 or 2
//  pipe()        stdout/stderr: captured into that stream's own bounded buffer (and events);
//                stdin: kept open for ManagedProcess::write_input()/close_input()
//  bytes(s)      stdin only: s is written by the reaper without blocking, then stdin is closed
//  file(p, m)    a file opened by the library (O_CLOEXEC; stdin reads it, stdout/stderr create it
//                0666 & ~umask, truncating or appending); Errors name the path
//  fd(n)         the caller's descriptor, dup'ed at start (the caller keeps and closes theirs)
//  merge()       stderr only: into stdout, in arrival order (the RFC's combined output)
//  pty(r, c)     a new pseudo-terminal, shared by stdin, stdout and stderr (all three must say
//                pty); the child leads a new session with it as its controlling terminal
enum class FileMode { truncate, append };

class CORE_API Stdio {
  public:
    enum class Kind { null, inherit, pipe, bytes, file, fd, merge, pty };

    static Stdio null() { return Stdio(Kind::null); }
    static Stdio inherit() { return Stdio(Kind::inherit); }
    static Stdio pipe() { return Stdio(Kind::pipe); }
    static Stdio bytes(std::string data) {
        Stdio s(Kind::bytes);
        s.text_ = std::move(data);
        return s;
    }
    static Stdio file(std::string path, FileMode mode = FileMode::truncate) {
        Stdio s(Kind::file);
        s.text_ = std::move(path);
        s.mode_ = mode;
        return s;
    }
    static Stdio fd(int fd) {
        Stdio s(Kind::fd);
        s.fd_ = fd;
        return s;
    }
    static Stdio merge() { return Stdio(Kind::merge); }
    static Stdio pty(unsigned short rows = 24, unsigned short cols = 80) {
        Stdio s(Kind::pty);
        s.rows_ = rows;
        s.cols_ = cols;
        return s;
    }

    Kind kind() const noexcept { return kind_; }
    const std::string& data() const noexcept { return text_; }  // bytes()
    const std::string& path() const noexcept { return text_; }  // file()
    FileMode mode() const noexcept { return mode_; }
    int descriptor() const noexcept { return fd_; }  // fd()
    unsigned short rows() const noexcept { return rows_; }
    unsigned short cols() const noexcept { return cols_; }
    bool operator==(const Stdio& o) const = default;

  private:
    explicit Stdio(Kind k) : kind_(k) {}
    Kind kind_;
    std::string text_;
    FileMode mode_ = FileMode::truncate;
    int fd_ = -1;
    unsigned short rows_ = 0, cols_ = 0;
};
CORE_API const char* to_string(Stdio::Kind k) noexcept;

// How Command::env meets the host's environment: merged over it (the default), or replacing
// it (the child sees only what is given). unset_env removes named variables in either mode.
enum class EnvMode { merge, replace };
// The spelling every surface takes (env_mode, envMode): "merge" or "replace". Errors: EINVAL,
// `"x": want "merge" or "replace"` (the caller names its key).
CORE_API Result<EnvMode> parse_env_mode(std::string_view text);

// What to run: the one value RunOptions (and so the Runner's and Supervisor's specs) build on.
struct Command {
    std::string command;            // a name looked up in PATH, or a path
    std::vector<std::string> args;  // argv[1…]; passed verbatim, no shell ever
    std::string dir;                // working directory; empty: inherit (PWD follows dir)
    std::vector<std::string> env;   // "K=V", last wins
    EnvMode env_mode = EnvMode::merge;
    std::vector<std::string> unset_env;  // names removed from the child's environment
    bool operator==(const Command& o) const = default;
};

// One chunk of a child's output, as read (one read, possibly many lines or part of one).
struct OutputChunk {
    std::string_view id;
    Stream stream = Stream::stdout_;
    std::string_view bytes;
};

// An extra descriptor for the child (Python's pass_fds): `child` in the child ← a dup of
// `parent` (the caller keeps theirs). child must be >= 3; everything else is still closed.
struct PassFd {
    int child = -1;
    int parent = -1;
    bool operator==(const PassFd& o) const = default;
};

struct RunOptions : Command {
    std::chrono::milliseconds timeout{0};          // 0: none; on expiry, kill
    std::chrono::milliseconds grace_period{5000};  // SIGTERM→SIGKILL delay; 0: SIGKILL at once
    bool kill_group = false;  // start in a new process group and signal the whole group
    // start: not tied to the caller's context and in a new session (setsid: terminal signals
    // do not reach it; kill() signals its group); still stopped at shutdown. run ignores it.
    bool detach = false;
    // Where each stream goes. The defaults are the RFC's: stdin /dev/null, stdout and stderr
    // captured together in arrival order.
    Stdio std_in = Stdio::null();
    Stdio std_out = Stdio::pipe();
    Stdio std_err = Stdio::merge();
    // Newest bytes kept per captured stream; older ones dropped (counted in ProcessInfo). Also
    // the piece size in which a longer line reaches ProcessOutput events.
    std::size_t max_output = std::size_t{1} << 20;
    std::vector<PassFd> pass_fds;
    // Called off the reaper thread with each chunk of captured output, in order, before the
    // process's on_exit hooks; bounded like the bus (what overflows is dropped and counted).
    std::function<void(const OutputChunk&)> on_output;
    // A cgroup v2 of its own (clone3 path only; see containment.hpp and ServiceOptions::
    // cgroup_parent): born in it, its whole tree killed with cgroup.kill, finished when empty.
    bool cgroup = false;
    Limits limits;      // cgroup limits; any set one implies cgroup
    Identity identity;  // uid, gid, groups, umask, rlimits, nice, no_new_privs, death signal
};

// What Service::exec returns: how the process ended and what it wrote, each stream apart
// (with std_err = merge, std_err is empty and std_out holds both).
struct Completed {
    std::string id;
    int pid = 0;
    ExitStatus status;
    std::string std_out;
    std::string std_err;
    std::chrono::nanoseconds duration{0};
    Usage usage;
    std::size_t std_out_dropped = 0;
    std::size_t std_err_dropped = 0;
    bool success() const noexcept { return status.success(); }
};

// IPC events broadcast on the Core bus (as Values holding these types).
struct ProcessStarted {
    std::string id;
    std::string command;
    std::vector<std::string> args;
    std::string dir;
    int pid = 0;
};
struct ProcessOutput {
    std::string id;
    std::string line;  // without its newline
    Stream stream = Stream::stdout_;
};
// One read's worth of one stream's lines (issue 16, item 3): broadcast instead of one
// ProcessOutput per line when ServiceOptions::output_batches is set. The lines in order, each
// without its newline; a line longer than max_output comes in pieces as with ProcessOutput.
// Batches of one process keep the order of its reads; the queue bound counts their lines.
struct ProcessOutputBatch {
    std::string id;
    Stream stream = Stream::stdout_;
    std::vector<std::string> lines;
};
struct ProcessKilled {
    std::string id;
    int signal = 0;
};
struct ProcessExited {
    std::string id;
    int exit_code = 0;
    std::chrono::nanoseconds duration{0};
    std::string error;  // empty on a clean exit
    ExitStatus status;  // the typed completion (signal, reason, …)
    Usage usage;
};

}  // namespace core::process
