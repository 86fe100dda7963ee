#include "supervisor/logfile.hpp"

#include <cstdio>
#include <ctime>

#include "sys/file.hpp"
#include "sys/supervise.hpp"

namespace core::process::detail {

namespace {

std::string parent_dir(const std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return {};
    return slash == 0 ? "/" : path.substr(0, slash);
}

std::string err_twin(const std::string& file) {
    const std::string ext = ".log";
    if (file.size() > ext.size() && file.compare(file.size() - ext.size(), ext.size(), ext) == 0)
        return file.substr(0, file.size() - ext.size()) + ".err.log";
    return file + ".err";
}

constexpr auto kReportEvery = std::chrono::seconds(1);

}  // namespace

Result<void> RotatingFile::open() {
    const std::string dir = parent_dir(path_);
    if (!dir.empty())
        if (auto r = sys::file::make_dirs(dir, 0700); !r) return fail(r.error());
    auto fd = sys::sup::open_append(path_, 0640);
    if (!fd) return fail(fd.error());
    auto size = sys::sup::file_size(fd->get());
    if (!size) return fail(size.error());
    fd_ = std::move(*fd);
    size_ = *size;
    return {};
}

Result<void> RotatingFile::rotate() {
    fd_.reset();
    mid_line_ = false;  // the cut line stays in the old file; the new one starts clean
    // <path>.<backups-1> → .<backups>, …, <path> → .1: the rename over the oldest drops it.
    if (backups_ == 0) {
        if (auto r = sys::file::unlink(path_); !r && r.error().code() != ENOENT) return r;
    } else {
        for (unsigned k = backups_; k > 1; --k) {
            auto r = sys::file::rename(path_ + "." + std::to_string(k - 1),
                                       path_ + "." + std::to_string(k));
            if (!r && r.error().code() != ENOENT) return r;
        }
        if (auto r = sys::file::rename(path_, path_ + ".1"); !r && r.error().code() != ENOENT)
            return r;
    }
    return open();
}

Result<void> RotatingFile::write(std::string_view data) {
    if (!fd_)
        if (auto r = open(); !r) return r;
    if (max_size_ > 0 && size_ > 0 && size_ + data.size() > max_size_)
        if (auto r = rotate(); !r) return r;
    // A write that failed part-way (disk full) left part of a line: end it before the next one,
    // so that the next line starts on its own.
    std::string joined;
    if (mid_line_ && size_ > 0) {
        joined.reserve(data.size() + 1);
        joined += '\n';
        joined += data;
        data = joined;
    }
    bool wrote = false;
    while (!data.empty()) {
        auto n = sys::sup::write_once(fd_.get(), data);
        if (!n) {
            if (wrote) mid_line_ = true;
            // No op prefix: the supervisor reports it as "log: <this>".
            return fail(E("", "write \"" + path_ + "\"", n.error()));
        }
        wrote = wrote || *n > 0;
        size_ += *n;
        data.remove_prefix(*n);
    }
    mid_line_ = false;
    return {};
}

LogPaths log_paths(const std::string& name, const LogSpec& spec, const std::string& default_dir) {
    LogPaths p;
    if (!spec.file.empty()) {
        p.out = spec.file;
    } else {
        const std::string dir = !spec.dir.empty() ? spec.dir : default_dir;
        if (dir.empty()) return p;
        p.out = dir + "/" + name + ".log";
    }
    if (spec.separate) p.err = err_twin(p.out);
    return p;
}

std::string rfc3339_ms(std::chrono::system_clock::time_point t) {
    using namespace std::chrono;
    const auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
    const std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms % 1000));
    return buf;
}

LogWriter::LogWriter(std::size_t max_bytes, Problem problem)
    : max_bytes_(max_bytes), problem_(std::move(problem)), thread_([this] { loop(); }) {}

LogWriter::~LogWriter() {
    {
        std::lock_guard lk(mu_);
        quit_ = true;
    }
    cv_.notify_one();
    thread_.join();
}

std::shared_ptr<LogSink> LogWriter::sink(const std::string& daemon, const LogSpec& spec,
                                         const std::string& default_dir) {
    LogPaths paths = log_paths(daemon, spec, default_dir);
    if (paths.out.empty()) return nullptr;
    auto s = std::make_shared<LogSink>();
    s->daemon = daemon;
    s->spec = spec;
    s->paths = paths;
    s->out = std::make_unique<RotatingFile>(paths.out, spec.max_size, spec.backups);
    if (!paths.err.empty())
        s->err = std::make_unique<RotatingFile>(paths.err, spec.max_size, spec.backups);
    return s;
}

bool LogWriter::push(const std::shared_ptr<LogSink>& sink, bool is_err, std::string line,
                     std::chrono::system_clock::time_point at) {
    {
        std::lock_guard lk(mu_);
        const std::size_t cost = line.size() + 64;
        if (quit_ || bytes_ + cost > max_bytes_) {
            sink->dropped.fetch_add(1, std::memory_order_relaxed);
            return false;
        }
        bytes_ += cost;
        q_.push_back(Item{sink, is_err, std::move(line), at});
    }
    cv_.notify_one();
    return true;
}

std::string LogWriter::last_error(const LogSink& sink) const {
    std::lock_guard lk(mu_);
    return sink.last_error;
}

void LogWriter::flush() {
    std::unique_lock lk(mu_);
    idle_cv_.wait(lk, [&] { return q_.empty() && !busy_; });
}

void LogWriter::note_error(LogSink& s, const std::string& what, std::uint64_t lost) {
    s.errors.fetch_add(lost, std::memory_order_relaxed);
    const auto now = std::chrono::steady_clock::now();
    bool report = false;
    {
        std::lock_guard lk(mu_);
        s.last_error = what;
        if (what != s.reported_error || now - s.reported_at >= kReportEvery) {
            s.reported_error = what;
            s.reported_at = now;
            report = true;
        }
    }
    if (report && problem_) problem_(s.daemon, what);
}

void LogWriter::write(Item& it) {
    LogSink& s = *it.sink;
    RotatingFile* f = it.is_err && s.err ? s.err.get() : s.out.get();
    std::string text;
    const std::uint64_t dropped = s.dropped.load(std::memory_order_relaxed);
    if (dropped > s.dropped_noted) {
        // Noted in the file where the gap is, so a reader knows lines are missing there.
        const std::uint64_t n = dropped - s.dropped_noted;
        s.dropped_noted = dropped;
        text += (s.spec.timestamps ? rfc3339_ms(it.at) + " " : std::string()) +
                "[coreproc: " + std::to_string(n) + " line(s) dropped: log queue full]\n";
        if (problem_) problem_(s.daemon, std::to_string(n) + " log line(s) dropped: queue full");
    }
    if (s.spec.timestamps) {
        text += rfc3339_ms(it.at);
        text += ' ';
    }
    text += it.line;
    text += '\n';
    if (auto r = f->write(text); !r) note_error(s, r.error().what(), 1);
}

void LogWriter::loop() {
    std::unique_lock lk(mu_);
    for (;;) {
        cv_.wait(lk, [&] { return quit_ || !q_.empty(); });
        if (q_.empty()) {
            if (quit_) return;
            continue;
        }
        std::deque<Item> batch;
        batch.swap(q_);
        busy_ = true;
        lk.unlock();
        // The batch's bytes still count against the bound while they are written: a slow disk
        // makes push() drop rather than let the queue grow.
        std::size_t cost = 0;
        for (auto& it : batch) {
            cost += it.line.size() + 64;
            write(it);
        }
        batch.clear();  // drops the sinks' references outside the lock
        lk.lock();
        bytes_ -= cost;
        busy_ = false;
        if (q_.empty()) idle_cv_.notify_all();
    }
}

}  // namespace core::process::detail
