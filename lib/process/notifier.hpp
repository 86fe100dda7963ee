// detail::Notifier: the thread on which a Service runs its callers' callbacks (ManagedProcess
// on_exit hooks and RunOptions::on_output chunks), so that no user code ever runs on the
// reaper thread and a slow callback never delays another child's reaping. FIFO: a process's
// output chunks come before its exit hooks. Output is bounded in queued bytes (a chunk over
// the bound is refused, and the caller counts it); exit hooks are never dropped (at most one
// task per process). The thread starts with the first task. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace core::process::detail {

class Notifier : public std::enable_shared_from_this<Notifier> {
  public:
    static std::shared_ptr<Notifier> create(std::size_t max_queued_bytes);
    ~Notifier();
    Notifier(const Notifier&) = delete;
    Notifier& operator=(const Notifier&) = delete;

    // Queues an output chunk's callback; false (nothing queued) when `bytes` more would pass
    // the bound, or after stop().
    bool post_output(std::size_t bytes, std::function<void()> fn);
    // Queues a task that is never dropped (exit hooks). After stop(), or when no thread can be
    // started, runs it on the calling thread instead.
    void post(std::function<void()> fn);
    // Runs what is queued, then ends the thread and joins it. From the Notifier's own thread
    // (a callback that shuts its Service down) it only asks the thread to end after the
    // current task: nothing joins itself.
    void stop();

  private:
    explicit Notifier(std::size_t max) : max_bytes_(max) {}
    struct Task {
        std::function<void()> fn;
        std::size_t bytes = 0;
    };
    bool enqueue(Task t, bool bounded);
    void loop();

    const std::size_t max_bytes_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Task> q_;
    std::size_t bytes_ = 0;
    bool stop_ = false;
    bool started_ = false;
    std::thread th_;
    std::thread::id th_id_;
};

}  // namespace core::process::detail
