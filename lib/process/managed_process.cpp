#include "core/process/managed_process.hpp"

#include <cerrno>
#include <chrono>
#include <functional>
#include <thread>

#include "process/cgroup.hpp"
#include "process/reaper.hpp"
#include "process/state.hpp"
#include "sys/io.hpp"
#include "sys/poll.hpp"
#include "sys/signals.hpp"
#include "sys/stdio.hpp"

namespace core::process {

using detail::ProcessState;

ManagedProcess::ManagedProcess(std::shared_ptr<ProcessState> state) : s_(std::move(state)) {}
ManagedProcess::~ManagedProcess() = default;

const std::string& ManagedProcess::id() const noexcept {
    return s_->id;
}
int ManagedProcess::pid() const noexcept {
    return s_->ref.pid();
}
const std::string& ManagedProcess::command() const noexcept {
    return s_->command;
}

Status ManagedProcess::status() const {
    std::lock_guard lk(s_->mu);
    return s_->is_done() ? s_->status
                         : (s_->status == Status::pending ? Status::pending : Status::running);
}

int ManagedProcess::exit_code() const {
    std::lock_guard lk(s_->mu);
    return s_->is_done() ? s_->exit_code : 0;
}

bool ManagedProcess::is_running() const {
    std::lock_guard lk(s_->mu);
    return !s_->is_done();
}

ProcessInfo detail::info_of(const ProcessState& s) {
    ProcessInfo i;
    i.id = s.id;
    i.pid = s.ref.pid();
    i.command = s.command;
    i.args = s.args;
    i.dir = s.dir;
    i.running = !s.is_done();
    i.status = s.is_done() ? s.status : Status::running;
    i.exit_code = s.is_done() ? s.exit_code : 0;
    i.signal = s.is_done() ? s.signal : 0;
    i.started_at = s.started_at;
    const auto end = s.is_done() ? s.ended_steady : std::chrono::steady_clock::now();
    i.duration = end - s.started_steady;
    i.output_dropped = static_cast<std::size_t>(s.output.dropped());
    i.stderr_dropped = static_cast<std::size_t>(s.err_output.dropped());
    i.callback_dropped = static_cast<std::size_t>(s.callback_dropped);
    i.error = s.is_done() ? s.error : std::string();
    if (s.is_done()) {
        i.exit = s.exit;
        i.usage = s.usage;
    }
    detail::fill_containment_locked(s, i);
    return i;
}

namespace {
ProcessInfo info_locked(const ProcessState& s) {
    return detail::info_of(s);
}
}  // namespace

ProcessInfo ManagedProcess::info() const {
    std::lock_guard lk(s_->mu);
    return info_locked(*s_);
}

std::string ManagedProcess::output() const {
    std::lock_guard lk(s_->mu);
    return s_->output.str();
}

std::string ManagedProcess::output(Stream s) const {
    std::lock_guard lk(s_->mu);
    if (s == Stream::stderr_) return s_->err_output.str();
    return s_->output.str();
}

ExitStatus ManagedProcess::exit_status() const {
    std::lock_guard lk(s_->mu);
    return s_->is_done() ? s_->exit : ExitStatus{};
}

void ManagedProcess::on_exit(std::function<void(const ProcessInfo&)> fn) {
    if (!fn) return;
    ProcessInfo now;
    bool pending = false;
    {
        std::lock_guard lk(s_->mu);
        if (!s_->is_done()) {
            // finish() takes the hooks under the same lock: each runs exactly once, there.
            s_->exit_hooks.push_back(std::move(fn));
            pending = true;
        } else {
            now = info_locked(*s_);
        }
    }
    if (pending) {
        // Nobody may wait: the exit must be learned from the pidfd at once, not after the
        // reaper's defer window.
        if (auto r = s_->reaper.lock()) r->expedite(s_);
        return;
    }
    // Already finished. With an on_output callback, chunks may still be queued on the
    // notifier: the hook goes behind them there, keeping "after every chunk". Otherwise at
    // once, on the caller's thread.
    if (s_->on_output) {
        if (auto r = s_->reaper.lock()) {
            r->post_hook([fn = std::move(fn), now = std::move(now)] { fn(now); });
            return;
        }
    }
    fn(now);
}

Result<void> ManagedProcess::resize(unsigned short rows, unsigned short cols) {
    std::lock_guard lk(s_->mu);
    if (!s_->pty_ctl) {
        if (s_->is_done()) return {};  // finished: nothing to resize, as kill() of a finished one
        return fail(Error("process.resize", s_->id + ": not started with Stdio::pty()", ENOTTY));
    }
    if (auto r = sys::resize_pty(s_->pty_ctl.get(), rows, cols); !r)
        return fail(E("process.resize", s_->id, r.error()));
    return {};
}

Result<int> ManagedProcess::exit_fd() const {
    int fd;
    bool done;
    {
        std::lock_guard lk(s_->mu);
        if (s_->exit_event.fd() < 0) {
            auto ev = sys::EventFd::create();
            if (!ev) return fail(E("process.exit_fd", s_->id, ev.error()));
            s_->exit_event = std::move(*ev);
            if (s_->is_done()) s_->exit_event.signal();
        }
        fd = s_->exit_event.fd();
        done = s_->is_done();
    }
    // The caller polls this descriptor instead of waiting: learn the exit from the pidfd at once.
    if (!done)
        if (auto r = s_->reaper.lock()) r->expedite(s_);
    return fd;
}

Result<void> ManagedProcess::kill() {
    auto r = s_->reaper.lock();
    if (!r) return {};  // the Service is gone, and it reaped everything before going
    auto k = r->kill(s_, detail::EndReason::killed);
    if (!k) return fail(E("process.kill", s_->id, k.error()));
    return {};
}

Result<void> ManagedProcess::signal(int sig) {
    // 0 probes liveness as kill(2) does: nothing is sent; success for a live child and for
    // a finished one (which is never signalled, so "gone" is not an error here: see is_running).
    if (sig != 0 && !sys::valid_signal(sig))
        return fail(Error("process.signal", "invalid signal " + std::to_string(sig), EINVAL));
    std::lock_guard lk(s_->mu);
    auto r = detail::signal_locked(*s_, sig);
    if (!r) return fail(E("process.signal", s_->id, r.error()));
    return {};
}

namespace {
// The reaper learns of the exit from the pidfd, reaps, and wakes the waiters: two wake-ups in
// a row, each a cross-CPU IPI (tens of us on a VM). Instead the waiter sleeps on its own copy of
// the pidfd, so the kernel wakes it and the reaper at the same moment; the first one running
// does the reaping (help_reap: the reaper's own code under its lock), and a waiter that finds
// the reaper thread already at it waits on the CPU for a short while (yielding). Falls through
// to the condition variable (the only way when there is no pidfd) on any error, or when the
// end takes longer (pipes still held by a grandchild).
void await_exit(const std::shared_ptr<ProcessState>& sp, std::unique_lock<std::mutex>& lk,
                std::chrono::milliseconds timeout) {
    ProcessState& s = *sp;
    if (s.is_done() || s.ref.reaped() || !s.ref.has_pidfd()) return;
    auto copy = s.ref.dup_pidfd();  // under s.mu: the reaper closes the pidfd under it too
    if (!copy) return;
    lk.unlock();
    auto ready = sys::wait_readable(copy->get(), timeout);
    copy->reset();
    if (ready && *ready)
        if (auto r = s.reaper.lock()) (void)r->help_reap(sp);
    lk.lock();
    if (!ready || !*ready) return;
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(300);
    while (!s.is_done() && std::chrono::steady_clock::now() < until) {
        lk.unlock();
        std::this_thread::yield();
        lk.lock();
    }
}
}  // namespace

ProcessInfo ManagedProcess::wait() const {
    // run()'s own wait: its caller reads the pipes and reaps on this thread (Reaper::drive).
    if (s_->transient)
        if (auto r = s_->reaper.lock()) (void)r->drive(s_);
    std::unique_lock lk(s_->mu);
    await_exit(s_, lk, sys::forever);
    s_->cv.wait(lk, [&] { return s_->is_done(); });
    return info_locked(*s_);
}

bool ManagedProcess::wait_for(std::chrono::nanoseconds timeout) const {
    using Clock = std::chrono::steady_clock;
    const auto now = Clock::now();
    // A timeout past the clock's end is no deadline at all (as wait()).
    const auto until = timeout >= Clock::time_point::max() - now
                           ? Clock::time_point::max()
                           : now + std::chrono::duration_cast<Clock::duration>(timeout);
    std::unique_lock lk(s_->mu);
    if (timeout > std::chrono::milliseconds(1)) {
        // As wait(), on the pidfd for most of the time (a deferred child is reaped here), then
        // on the condition variable for what is left.
        await_exit(s_, lk,
                   std::chrono::duration_cast<std::chrono::milliseconds>(timeout) -
                       std::chrono::milliseconds(1));
    }
    return s_->cv.wait_until(lk, until, [&] { return s_->is_done(); });
}

Result<void> ManagedProcess::write_input(std::string_view bytes) {
    std::lock_guard lk(s_->input_mu);
    if (!s_->keep_stdin)
        return fail(Error("process.write_input", s_->id + ": stdin not kept (std_in is not a pipe)",
                          EBADF));
    if (!s_->input_fd)
        return fail(Error("process.write_input", s_->id + ": stdin already closed", EBADF));
    // Non-blocking writes, waiting for room together with input_wake: the process finishing
    // or close_input() on another thread ends the wait, even when a grandchild holds the pipe's
    // read end and never reads.
    while (!bytes.empty()) {
        if (s_->input_closing.load()) {
            s_->input_fd.reset();
            return fail(Error("process.write_input",
                              s_->id + ": stdin closed (the process finished or close_input)",
                              EPIPE));
        }
        auto n = sys::write_some_nosigpipe(s_->input_fd.get(), bytes.data(), bytes.size());
        if (!n) {
            // EPIPE: the reader is gone for good; later writes say "already closed".
            if (n.error().code() == EPIPE) s_->input_fd.reset();
            return fail(E("process.write_input", s_->id, n.error()));
        }
        if (*n == sys::would_block) {
            auto w = sys::wait_writable_or_woken(s_->input_fd.get(), s_->input_wake.fd());
            if (!w) return fail(E("process.write_input", s_->id, w.error()));
            continue;  // writable, hung up (the write says EPIPE) or woken (checked above)
        }
        bytes.remove_prefix(static_cast<std::size_t>(*n));
    }
    return {};
}

Result<void> ManagedProcess::close_input() {
    if (!s_->keep_stdin)
        return fail(Error("process.close_input", s_->id + ": stdin not kept (std_in is not a pipe)",
                          EBADF));
    // Wake a writer blocked on a full pipe first, or the lock below waits for it forever.
    s_->input_closing.store(true);
    if (s_->input_wake.fd() >= 0) s_->input_wake.signal();
    std::lock_guard lk(s_->input_mu);
    s_->input_fd.reset();
    return {};
}

}  // namespace core::process
