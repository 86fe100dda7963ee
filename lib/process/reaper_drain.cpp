// The reaper's side of a child's end: reading its pipes, writing its bytes() input, reaping it,
// the bounded drain after the reap, and finish() (the one place a process becomes done).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <cerrno>

#include "process/cgroup.hpp"
#include "process/notifier.hpp"
#include "process/reaper.hpp"
#include "sys/io.hpp"
#include "sys/signals.hpp"

namespace core::process::detail {

using Clock = std::chrono::steady_clock;

void Reaper::read_pipe(const std::shared_ptr<ProcessState>& st, bool err, int max_reads) {
    sys::UniqueFd& fd = err ? st->err_fd : st->out_fd;
    for (int i = 0; i < max_reads && fd; ++i) {
        auto n = sys::read_some(fd.get(), buf_, sizeof buf_);
        if (!n) {
            debug("process.reaper: " + n.error().what());
            close_pipe(*st, fd);
            return;
        }
        if (*n == sys::would_block) return;
        if (*n == 0) {
            close_pipe(*st, fd);
            return;
        }
        const auto len = static_cast<std::size_t>(*n);
        const Stream stream = err ? Stream::stderr_ : Stream::stdout_;
        bool queued = true;
        if (st->on_output && hooks_.notifier) {
            // One callback per read (a batch of lines), on the notifier thread.
            queued =
                hooks_.notifier->post_output(len, [st, stream, bytes = std::string(buf_, len)] {
                    st->on_output(OutputChunk{st->id, stream, bytes});
                });
        }
        {
            std::lock_guard lk(st->mu);
            if (err && st->separate_err) {
                st->err_output.append(buf_, len);
            } else {
                st->output.append(buf_, len);
            }
            if (!queued) st->callback_dropped += len;
        }
        if (hooks_.events) {
            LineSplitter& sp = err ? st->err_lines : st->out_lines;
            // One line event per line is the costly part of capture (a string, a queue entry
            // and a broadcast each): build none while nobody subscribes.
            if (hooks_.events->wanted() && hooks_.output_batches) {
                // One event for the lines of this read: one queue entry, one broadcast.
                // Into the strings of a delivered batch where there is one: no allocation per
                // line once the stream is steady.
                ProcessOutputBatch batch{st->id, stream, hooks_.events->take_lines()};
                std::size_t nlines = 0;
                sp.feed_views(buf_, len, [&](std::string_view line) {
                    if (nlines < batch.lines.size())
                        batch.lines[nlines].assign(line);
                    else
                        batch.lines.emplace_back(line);
                    ++nlines;
                });
                batch.lines.resize(nlines);
                if (nlines > 0) hooks_.events->emit_counted(Value(std::move(batch)), nlines);
            } else if (hooks_.events->wanted()) {
                sp.feed(buf_, len, [&](std::string line) {
                    hooks_.events->emit(Value(ProcessOutput{st->id, std::move(line), stream}),
                                        true);
                });
            } else {
                sp.skip(buf_, len);
            }
        }
    }
}

void Reaper::close_pipe(ProcessState& st, sys::UniqueFd& fd) {
    if (!fd) return;
    // Explicit EPOLL_CTL_DEL: if the host forked without exec, a copy of this descriptor keeps
    // the open file alive and epoll would keep reporting it after our close. Held pipes (and
    // only output pipes are ever held) were never added.
    if (!st.pipes_held || &fd == &st.in_fd) (void)ep_.remove(fd.get());
    fd.reset();
}

void Reaper::write_input(const std::shared_ptr<ProcessState>& st) {
    while (st->in_fd && st->input_off < st->input.size()) {
        auto n = sys::write_some(st->in_fd.get(), st->input.data() + st->input_off,
                                 st->input.size() - st->input_off);
        if (!n) {  // EPIPE: the child closed stdin without reading everything; not an error
            debug("process.reaper: input: " + n.error().what());
            break;
        }
        if (*n == sys::would_block) return;  // EPOLLOUT will tell us when to go on
        st->input_off += static_cast<std::size_t>(*n);
    }
    // All written (or the reader is gone): closing gives the child its EOF.
    close_pipe(*st, st->in_fd);
    std::string().swap(st->input);
}

void Reaper::on_exit_ready(const std::shared_ptr<ProcessState>& st) {
    // The child's own pipe ends were closed before its exit was signalled (exit_files runs
    // before exit_notify), so what is in the pipes now is all it wrote; read it (bounded: a
    // grandchild may keep writing).
    if (st->cgroup) end_cgroup_tree(*st);  // what is left of the tree dies with the leader
    read_pipe(st, false, 16);
    read_pipe(st, true, 16);
    if (st->kill_group && (st->out_fd || st->err_fd)) {
        // Something else in the group still holds our pipes. The group is one unit with
        // kill_group: kill the leftovers now, while the unreaped leader still pins the group id.
        std::lock_guard lk(st->mu);
        (void)signal_locked(*st, sys::sig_kill());
    }
    auto w = reap_under_mu(*st);
    if (w && !*w) {
        // Readable but not reapable (a ptracer intervened, tokio #7144): not an error. Poll it
        // instead of spinning on a level-triggered pidfd.
        if (!st->polled) {
            if (!st->deferred.load()) (void)ep_.remove(st->ref.pidfd());
            st->deferred.store(false);
            st->polled = true;
            polled_.push_back(st);
            if (!poll_scheduled_) {
                poll_scheduled_ = true;
                add_timer(Timer{Clock::now() + fallback_poll, Timer::poll, {}});
            }
        }
        enroll_pipes(st);  // held by a run() caller's drive: the reaper thread reads them now
        return;
    }
    if (!w) {
        complete_reap(st, fail(w.error()));
    } else {
        complete_reap(st, **w);
    }
    // Reaped with a grandchild still holding the pipes (draining): the reaper thread reads
    // them from here on, whoever reaped. Nothing when finished (the pipes are closed).
    enroll_pipes(st);
}

void Reaper::complete_reap(const std::shared_ptr<ProcessState>& st,
                           const Result<sys::ExitStatus>& w) {
    if (!st->polled && !st->deferred.load() && st->ref.has_pidfd())
        (void)ep_.remove(st->ref.pidfd());
    st->deferred.store(false);
    {
        std::lock_guard lk(st->mu);
        st->ref.mark_reaped();  // closes the pidfd, out of the epoll set now
        st->advance(Phase::reaped);
        st->ended_steady = Clock::now();
        if (!w) {
            // ECHILD: someone else reaped our child (waitpid(-1) or SIGCHLD=SIG_IGN in the host).
            st->status = Status::failed;
            st->exit_code = -1;
            st->error = w.error().what();
        } else if (w->exited) {
            st->status = Status::exited;
            st->exit_code = w->code;
        } else {
            st->exit.core_dumped = w->core_dumped;
            st->status = Status::killed;
            st->exit_code = -1;
            st->signal = w->signal;
        }
    }
    if (w) {
        st->usage.user_cpu = std::chrono::microseconds(w->user_cpu_us);
        st->usage.system_cpu = std::chrono::microseconds(w->system_cpu_us);
        st->usage.max_rss_bytes = w->max_rss_bytes;
    }
    if (!st->out_fd && !st->err_fd) {
        finish(st);
    } else {
        {
            std::lock_guard lk(st->mu);
            st->advance(Phase::draining);
        }
        add_timer(Timer{Clock::now() + drain_timeout, Timer::drain, st});
    }
}

void Reaper::maybe_finish(const std::shared_ptr<ProcessState>& st) {
    if (st->out_fd || st->err_fd) return;
    bool reaped;
    {
        std::lock_guard lk(st->mu);
        reaped = st->is_draining();
    }
    if (reaped) finish(st);
}

namespace {
ExitReason public_reason(EndReason r) noexcept {
    switch (r) {
        case EndReason::timeout:
            return ExitReason::timeout;
        case EndReason::cancelled:
            return ExitReason::cancelled;
        case EndReason::killed:
            return ExitReason::killed;
        case EndReason::shutdown:
            return ExitReason::shutdown;
        case EndReason::none:
            break;
    }
    return ExitReason::natural;
}
}  // namespace

void Reaper::finish(const std::shared_ptr<ProcessState>& st) {
    close_pipe(*st, st->out_fd);
    close_pipe(*st, st->err_fd);
    close_pipe(*st, st->in_fd);
    if (hooks_.events && hooks_.output_batches) {
        for (Stream stream : {Stream::stdout_, Stream::stderr_}) {
            ProcessOutputBatch batch{st->id, stream, {}};
            (stream == Stream::stdout_ ? st->out_lines : st->err_lines)
                .flush([&](std::string line) { batch.lines.push_back(std::move(line)); });
            const std::size_t nlines = batch.lines.size();
            if (nlines > 0) hooks_.events->emit_counted(Value(std::move(batch)), nlines);
        }
    } else if (hooks_.events) {
        st->out_lines.flush([&](std::string line) {
            hooks_.events->emit(Value(ProcessOutput{st->id, std::move(line), Stream::stdout_}),
                                true);
        });
        st->err_lines.flush([&](std::string line) {
            hooks_.events->emit(Value(ProcessOutput{st->id, std::move(line), Stream::stderr_}),
                                true);
        });
    }
    ProcessExited exited;
    int killed_by = 0;
    std::vector<std::function<void(const ProcessInfo&)>> hooks;
    ProcessInfo info;
    {
        std::lock_guard lk(st->mu);
        st->advance(Phase::done);
        st->pty_ctl.reset();
        // The context's callback may be running on another thread: the stop_callback's
        // destructor waits for it, and it takes only the command queue's lock, not st->mu.
        st->on_cancel.reset();
        ExitStatus& x = st->exit;
        x.reason = public_reason(st->reason);
        x.timeout = st->timeout;
        x.output_cut = st->output_cut;
        if (st->status == Status::failed) {
            x.kind = ExitKind::unknown;
            x.code = -1;
            x.detail = st->error;
        } else if (st->status == Status::exited) {
            x.kind = ExitKind::exited;
            x.code = st->exit_code;
        } else {
            x.kind = ExitKind::signalled;
            x.code = -1;
            x.signal = st->signal;
        }
        if (x.reason == ExitReason::cancelled) x.detail = st->reason_text;
        if (st->cgroup && x.kind == ExitKind::signalled) {
            // An OOM kill in the process's cgroup says more than the bare SIGKILL.
            oom_reason_locked(*st);  // sets st->error: "killed by the OOM killer: memory.max 64M"
            if (!st->error.empty()) x.detail = st->error;
        }
        const bool clean = x.kind == ExitKind::exited && x.code == 0 && !x.output_cut &&
                           x.reason != ExitReason::timeout && x.reason != ExitReason::cancelled;
        st->error = clean ? std::string() : x.describe();
        if (st->status == Status::killed && st->kill_requested()) killed_by = st->signal;
        exited.id = st->id;
        exited.exit_code = st->exit_code;
        exited.duration = st->ended_steady - st->started_steady;
        exited.error = st->error;
        exited.status = x;
        exited.usage = st->usage;
        hooks.swap(st->exit_hooks);
        if (!hooks.empty()) info = info_of(*st);
        if (st->exit_event.fd() >= 0) st->exit_event.signal();
    }
    // std_in = pipe: the child is gone, so its stdin is useless. A writer blocked on a full pipe
    // (a grandchild holds its read end) is woken, now that the process is done, and returns an
    // Error; whoever holds input_mu closes the pipe (here, or the writer on its way out).
    st->input_closing.store(true);
    if (st->input_wake.fd() >= 0) st->input_wake.signal();
    {
        std::unique_lock ilk(st->input_mu, std::try_to_lock);
        if (ilk) st->input_fd.reset();
    }
    if (!hooks.empty()) {
        if (hooks_.notifier) {
            hooks_.notifier->post([hooks = std::move(hooks), info = std::move(info)] {
                for (auto& h : hooks) {
                    try {
                        h(info);
                    } catch (...) {
                        // One throwing hook does not keep the others from running.
                    }
                }
            });
        }
    }
    st->cv.notify_all();
    if (hooks_.events) {
        if (killed_by) hooks_.events->emit(Value(ProcessKilled{st->id, killed_by}), false);
        hooks_.events->emit(Value(std::move(exited)), false);
    }
    if (st->slot < slots_.size() && slots_[st->slot].st == st) {
        slots_[st->slot].st.reset();
        ++slots_[st->slot].gen;
        free_slots_.push_back(st->slot);
    }
    stale_timers_ += st->timers_queued;
    st->timers_queued = 0;
    if (stale_timers_ > 32 && stale_timers_ * 2 > timers_.size()) purge_timers();
    live_.fetch_sub(1);
    if (hooks_.on_finished) hooks_.on_finished(st);
}

}  // namespace core::process::detail
