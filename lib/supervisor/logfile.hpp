// The daemons' log files: one writer thread appends the lines the supervisor hands it through
// a bounded queue, so a slow or full disk never blocks the thread that delivers output (nor,
// behind it, the reaper or a child). Each daemon has a LogSink (its files and counters);
// rotation is by size with numbered backups. Lines that do not fit the queue are dropped and
// counted, then noted in the file; open and write errors are counted and reported, and the
// daemon is never affected. push() and the counters are thread-safe; the files are the writer
// thread's alone.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/process/supervisor.hpp"
#include "sys/fd.hpp"

namespace core::process::detail {

// One file with its rotation; used by the writer thread only.
class RotatingFile {
  public:
    RotatingFile(std::string path, std::uint64_t max_size, unsigned backups)
        : path_(std::move(path)), max_size_(max_size), backups_(backups) {}
    // Appends data (whole lines), rotating first when it would pass max_size. Errors: the
    // open, rename or write failure (the next call tries again).
    Result<void> write(std::string_view data);
    const std::string& path() const noexcept { return path_; }

  private:
    Result<void> open();
    Result<void> rotate();
    std::string path_;
    std::uint64_t max_size_;
    unsigned backups_;
    sys::UniqueFd fd_;
    std::uint64_t size_ = 0;
    bool mid_line_ = false;  // the last write stopped inside a line (disk full)
};

// The two paths a LogSpec gives a daemon ("" when it has no log files).
struct LogPaths {
    std::string out;  // stdout, or both streams
    std::string err;  // stderr when separate
};
LogPaths log_paths(const std::string& name, const LogSpec& spec, const std::string& default_dir);

// RFC 3339 UTC with milliseconds: "2026-12-01T19:30:00.123Z".
std::string rfc3339_ms(std::chrono::system_clock::time_point t);

struct LogSink {
    std::string daemon;
    LogSpec spec;
    LogPaths paths;
    std::atomic<std::uint64_t> dropped{0};
    std::atomic<std::uint64_t> errors{0};
    // Writer thread only, except last_error (under LogWriter's lock).
    std::unique_ptr<RotatingFile> out, err;
    std::uint64_t dropped_noted = 0;  // drops already written into the file as a note
    std::string last_error;
    std::string reported_error;
    std::chrono::steady_clock::time_point reported_at{};
};

class LogWriter {
  public:
    using Problem = std::function<void(const std::string& daemon, const std::string& what)>;
    LogWriter(std::size_t max_bytes, Problem problem);
    // Writes what is queued, then joins.
    ~LogWriter();
    LogWriter(const LogWriter&) = delete;
    LogWriter& operator=(const LogWriter&) = delete;

    // A sink for a daemon; null when the spec and default give it no files.
    std::shared_ptr<LogSink> sink(const std::string& daemon, const LogSpec& spec,
                                  const std::string& default_dir);
    // Queues a line (without its newline); false when it was dropped (queue full).
    bool push(const std::shared_ptr<LogSink>& sink, bool is_err, std::string line,
              std::chrono::system_clock::time_point at);
    std::string last_error(const LogSink& sink) const;
    // Blocks until everything queued so far is written (for tests and orderly shutdown).
    void flush();

  private:
    struct Item {
        std::shared_ptr<LogSink> sink;
        bool is_err;
        std::string line;
        std::chrono::system_clock::time_point at;
    };
    void loop();
    void write(Item& it);
    void note_error(LogSink& s, const std::string& what, std::uint64_t lost);

    std::size_t max_bytes_;
    Problem problem_;
    mutable std::mutex mu_;
    std::condition_variable cv_, idle_cv_;
    std::deque<Item> q_;
    std::size_t bytes_ = 0;
    bool busy_ = false;
    bool quit_ = false;
    std::thread thread_;
};

}  // namespace core::process::detail
