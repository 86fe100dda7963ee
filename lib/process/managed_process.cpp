#include "core/process/managed_process.hpp"

#include <cerrno>
#include <chrono>
#include <thread>

#include "process/cgroup.hpp"
#include "process/reaper.hpp"
#include "process/state.hpp"
#include "sys/io.hpp"
#include "sys/poll.hpp"
#include "sys/signals.hpp"

namespace core::process {

using detail::ProcessState;

ManagedProcess::ManagedProcess(std::shared_ptr<ProcessState> state) : s_(std::move(state)) {}
ManagedProcess::~ManagedProcess() = default;

const std::string& ManagedProcess::id() const noexcept {
    return s_->id;
}
int ManagedProcess::pid() const noexcept {
    return s_->pid;
}
const std::string& ManagedProcess::command() const noexcept {
    return s_->command;
}

Status ManagedProcess::status() const {
    std::lock_guard lk(s_->mu);
    return s_->done ? s_->status
                    : (s_->status == Status::pending ? Status::pending : Status::running);
}

int ManagedProcess::exit_code() const {
    std::lock_guard lk(s_->mu);
    return s_->done ? s_->exit_code : 0;
}

bool ManagedProcess::is_running() const {
    std::lock_guard lk(s_->mu);
    return !s_->done;
}

namespace {
ProcessInfo info_locked(const ProcessState& s) {
    ProcessInfo i;
    i.id = s.id;
    i.pid = s.pid;
    i.command = s.command;
    i.args = s.args;
    i.dir = s.dir;
    i.running = !s.done;
    i.status = s.done ? s.status : Status::running;
    i.exit_code = s.done ? s.exit_code : 0;
    i.signal = s.done ? s.signal : 0;
    i.started_at = s.started_at;
    const auto end = s.done ? s.ended_steady : std::chrono::steady_clock::now();
    i.duration = end - s.started_steady;
    i.output_dropped = static_cast<std::size_t>(s.output.dropped());
    i.error = s.done ? s.error : std::string();
    detail::fill_containment_locked(s, i);
    return i;
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

Result<void> ManagedProcess::kill() {
    auto r = s_->reaper.lock();
    if (!r) return {};  // the Service is gone, and it reaped everything before going
    auto k = r->kill(s_, detail::EndReason::killed);
    if (!k) return fail(E("process.kill", s_->id, k.error()));
    return {};
}

Result<void> ManagedProcess::signal(int sig) {
    if (!sys::valid_signal(sig))
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
void await_exit(const std::shared_ptr<ProcessState>& sp, std::unique_lock<std::mutex>& lk) {
    ProcessState& s = *sp;
    if (s.done || s.reaped || !s.pidfd) return;
    auto copy = s.pidfd.dup();  // under s.mu: the reaper closes s.pidfd under it too
    if (!copy) return;
    lk.unlock();
    auto ready = sys::wait_readable(copy->get(), -1);
    copy->reset();
    if (ready && *ready)
        if (auto r = s.reaper.lock()) (void)r->help_reap(sp);
    lk.lock();
    if (!ready || !*ready) return;
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(300);
    while (!s.done && std::chrono::steady_clock::now() < until) {
        lk.unlock();
        std::this_thread::yield();
        lk.lock();
    }
}
}  // namespace

ProcessInfo ManagedProcess::wait() const {
    std::unique_lock lk(s_->mu);
    await_exit(s_, lk);
    s_->cv.wait(lk, [&] { return s_->done; });
    return info_locked(*s_);
}

bool ManagedProcess::wait_for(std::chrono::nanoseconds timeout) const {
    std::unique_lock lk(s_->mu);
    return s_->cv.wait_for(lk, timeout, [&] { return s_->done; });
}

Result<void> ManagedProcess::write_input(std::string_view bytes) {
    std::lock_guard lk(s_->input_mu);
    if (!s_->keep_stdin)
        return fail(
            Error("process.write_input", s_->id + ": stdin not kept (keep_stdin is off)", EBADF));
    if (!s_->input_fd)
        return fail(Error("process.write_input", s_->id + ": stdin already closed", EBADF));
    auto r = sys::write_all(s_->input_fd.get(), bytes);
    if (!r) {
        // EPIPE: the reader is gone for good; later writes say "already closed".
        if (r.error().code() == EPIPE) s_->input_fd.reset();
        return fail(E("process.write_input", s_->id, r.error()));
    }
    return {};
}

Result<void> ManagedProcess::close_input() {
    std::lock_guard lk(s_->input_mu);
    if (!s_->keep_stdin)
        return fail(
            Error("process.close_input", s_->id + ": stdin not kept (keep_stdin is off)", EBADF));
    s_->input_fd.reset();
    return {};
}

}  // namespace core::process
