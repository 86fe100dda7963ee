// detail::Reaper: the one thread of a Service that waits for children. An epoll loop over each
// child's pidfd and output pipes, an eventfd for commands queued by other threads, and one
// timerfd driven by a deadline heap (timeouts, SIGTERM→SIGKILL escalations, bounded drains;
// O(log n) per timer, no scan per exit). Only this thread reaps; signals go through the pidfd
// (or kill(2) on the pid / group) under the state's mutex and only while not reaped, so a
// reaped PID is never signalled. Thread-safe. Sources: reaper.cpp (the thread, its commands and
// loop), reaper_drain.cpp (pipes, input, reap, finish), reaper_timers.cpp (deadlines, polling).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/result.hpp"
#include "process/events.hpp"
#include "process/state.hpp"
#include "sys/poll.hpp"
#include "sys/proc.hpp"

namespace spdlog {
class logger;
}

namespace core::process::detail {

// How long the reaper keeps reading a child's output pipes after the child was reaped while
// something else (a grandchild) still holds them open. After that the pipes are closed and the
// process is finished: run() never hangs on a grandchild.
inline constexpr std::chrono::milliseconds drain_timeout{250};
// The poll period for children without a pidfd (kernel < 5.3, or pidfd_open failed).
inline constexpr std::chrono::milliseconds fallback_poll{10};
// How long a child with nothing for the reaper to read or write (no pipes) stays out of the
// epoll set after it starts. A caller that waits for it within that time reaps it on its own
// thread (help_reap), and the reaper thread never wakes for it: no second wake-up per exit, no
// lock handed between the two threads, no EPOLL_CTL_ADD/DEL. A child nobody waits for is
// enrolled when this has passed, so its exit is learned at most this much later. exit_fd() and
// on_exit() enroll at once.
inline constexpr std::chrono::milliseconds defer_window{2};

class Notifier;

struct ReaperHooks {
    std::shared_ptr<spdlog::logger> log;
    EventDispatcher* events = nullptr;  // null: no events
    bool output_batches = false;        // ProcessOutputBatch per read instead of ProcessOutput
    // Runs on_output chunks and on_exit hooks off this thread (never null once created).
    std::shared_ptr<Notifier> notifier;
    std::function<void(const std::shared_ptr<ProcessState>&)> on_finished;
};

// now + d, or time_point::max() where that would overflow: a huge timeout or grace period
// means "effectively never", not a deadline in the past.
std::chrono::steady_clock::time_point deadline_after(std::chrono::steady_clock::time_point now,
                                                     std::chrono::milliseconds d) noexcept;

// Sends sig to the process (its group with kill_group). Caller holds st.mu. A reaped process:
// success, nothing sent. ESRCH (exited, not yet reaped): success.
Result<void> signal_locked(ProcessState& st, int sig);

class Reaper : public std::enable_shared_from_this<Reaper> {
  public:
    static Result<std::shared_ptr<Reaper>> create(ReaperHooks hooks);
    ~Reaper();
    Reaper(const Reaper&) = delete;
    Reaper& operator=(const Reaper&) = delete;

    // Takes a freshly spawned child under watch (its pidfd, pipes and timeout).
    void watch(std::shared_ptr<ProcessState> st);
    // SIGTERM now (group-wide with kill_group), SIGKILL after the grace period (at once when
    // it is 0). The first request decides the reason. Any thread.
    Result<void> kill(const std::shared_ptr<ProcessState>& st, EndReason why,
                      std::string text = {});
    // Queues kill() onto the reaper thread (from a stop_callback: never blocks).
    void queue_kill(std::weak_ptr<ProcessState> st, EndReason why, std::string text);
    // Queues an immediate SIGKILL (group-wide with kill_group), e.g. when shutdown's context
    // expires before the grace periods do.
    void queue_hard_kill(std::weak_ptr<ProcessState> st);
    // Called by a waiter whose child's pidfd just became readable: when the reaper thread is
    // not at work (its lock is free), reaps st here and now, on the waiter's thread, rather
    // than waiting for the reaper thread's own wake-up. False: not done (busy, not watched yet
    // or not reapable this way); the waiter then waits for the reaper as usual. Any thread.
    bool help_reap(const std::shared_ptr<ProcessState>& st);
    // Called by the run() caller's wait() (a transient child): when the child's pipes are still
    // held out of the epoll set, polls its pidfd and pipes on this thread, reads them with the
    // reaper's own code under its lock, and reaps it, so the reaper thread never wakes for it.
    // Returns once the child is reaped (done, or draining a grandchild's pipes, which go to
    // the reaper thread then). False: not driven here (enrolled already, or another driver);
    // the caller waits as usual. Any thread.
    bool drive(const std::shared_ptr<ProcessState>& st);
    // Puts a child whose pidfd is still out of the epoll set (defer_window) into it now, for
    // a caller that learns of the exit without waiting (exit_fd, on_exit). Any thread.
    void expedite(const std::shared_ptr<ProcessState>& st);
    // Runs fn on the notifier thread, behind everything queued there (or here when none).
    void post_hook(std::function<void()> fn);
    // Children watched and not yet finished.
    std::size_t live() const noexcept { return live_.load(); }
    // Stops the thread once no child is live; joins it.
    void stop();

  private:
    Reaper() = default;
    struct Cmd {
        enum Kind { watch, kill, hard_kill, timer, expedite, stop } kind;
        std::shared_ptr<ProcessState> st;
        std::weak_ptr<ProcessState> weak;
        EndReason why = EndReason::none;
        std::string text;
        std::chrono::steady_clock::time_point at{};
    };
    struct Timer {
        std::chrono::steady_clock::time_point at;
        enum Kind { timeout, escalate, drain, poll, enroll } kind;
        std::weak_ptr<ProcessState> st;
        bool operator>(const Timer& o) const noexcept { return at > o.at; }
    };
    struct Slot {
        std::shared_ptr<ProcessState> st;
        std::uint32_t gen = 0;
    };
    enum Kind : std::uint64_t {
        k_pidfd = 0,
        k_out = 1,
        k_err = 2,
        k_in = 3,
        k_wake = 4,
        k_timer = 5
    };

    void push(Cmd c);
    static Result<std::optional<sys::ExitStatus>> reap_under_mu(ProcessState& st);
    void loop();
    void run_commands();
    // Registers a new child's pidfd, pipes and timeout. Under work_mu_.
    void take_in(const std::shared_ptr<ProcessState>& st);
    // The pidfd into the epoll set (or the polled list when that fails), and its held pipes;
    // nothing while a driver is at it. Under work_mu_.
    void enroll(const std::shared_ptr<ProcessState>& st);
    // The output pipes held out of the epoll set (pipes_held) into it. Under work_mu_.
    void enroll_pipes(const std::shared_ptr<ProcessState>& st);
    // Enrolls the deferred children older than defer_window (all of them with all=true) and
    // schedules the next pass for the rest. Under work_mu_.
    void enroll_deferred(bool all);
    void on_event(std::uint32_t events, std::uint64_t data);
    void on_exit_ready(const std::shared_ptr<ProcessState>& st);
    void complete_reap(const std::shared_ptr<ProcessState>& st, const Result<sys::ExitStatus>& w);
    // Reads a pipe: once (from epoll) or until it would block (at exit, bounded).
    void read_pipe(const std::shared_ptr<ProcessState>& st, bool err, int max_reads);
    void close_pipe(ProcessState& st, sys::UniqueFd& fd);
    void write_input(const std::shared_ptr<ProcessState>& st);
    void maybe_finish(const std::shared_ptr<ProcessState>& st);
    void finish(const std::shared_ptr<ProcessState>& st);
    void add_timer(Timer t);
    Timer pop_timer();
    void purge_timers();
    void on_timers();
    void poll_children();
    std::uint64_t key(const ProcessState& st, Kind k) const noexcept;
    bool on_reaper_thread() const noexcept;
    void debug(const std::string& msg) const;

    ReaperHooks hooks_;
    sys::Epoll ep_;
    sys::EventFd wake_;
    sys::TimerFd timer_;
    std::thread th_;
    std::thread::id th_id_;
    std::atomic<std::size_t> live_{0};

    std::mutex cmd_mu_;
    std::vector<Cmd> cmds_;

    // Everything below is touched under work_mu_ only: by the reaper thread around each batch of
    // events, or by a waiter in help_reap.
    std::mutex work_mu_;
    // True while the reaper thread holds work_mu_ for a batch of events (which can be long:
    // bounded reads of many pipes). Other holders (a waiter in help_reap, a starter in watch)
    // hold it for a short step, so a thread finding the lock taken by one of them just waits.
    std::atomic<bool> batch_{false};
    std::vector<Slot> slots_;
    std::vector<std::uint32_t> free_slots_;
    // A min-heap (std::push_heap with greater) rather than std::priority_queue, so that entries
    // of finished children can be purged: a timer's weak_ptr would otherwise keep its control
    // block, and the heap its slot, until the deadline (5 s for every escalation).
    std::vector<Timer> timers_;
    std::size_t stale_timers_ = 0;
    std::chrono::steady_clock::time_point armed_at_{};
    bool armed_ = false;
    std::vector<std::shared_ptr<ProcessState>> polled_;
    // Children started with their pidfd kept out of the epoll set (defer_window), oldest first;
    // entries of children reaped meanwhile are dropped at the next pass.
    std::vector<std::weak_ptr<ProcessState>> deferred_;
    bool enroll_scheduled_ = false;
    bool poll_scheduled_ = false;
    bool stop_ = false;
    char buf_[65536];
};

}  // namespace core::process::detail
