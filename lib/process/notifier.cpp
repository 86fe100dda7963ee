#include "process/notifier.hpp"

#include <system_error>

#include "sys/signals.hpp"

namespace core::process::detail {

std::shared_ptr<Notifier> Notifier::create(std::size_t max_queued_bytes) {
    return std::shared_ptr<Notifier>(new Notifier(max_queued_bytes));
}

Notifier::~Notifier() {
    stop();
}

bool Notifier::post_output(std::size_t bytes, std::function<void()> fn) {
    return enqueue(Task{std::move(fn), bytes}, true);
}

void Notifier::post(std::function<void()> fn) {
    if (!enqueue(Task{fn, 0}, false)) {
        // Stopped, or no thread could be started: the hook must still run exactly once.
        try {
            fn();
        } catch (...) {
            // A throwing callback is isolated, as on the thread.
        }
    }
}

bool Notifier::enqueue(Task t, bool bounded) {
    std::unique_lock lk(mu_);
    if (stop_) return false;
    if (bounded && bytes_ + t.bytes > max_bytes_) return false;
    if (!started_) {
        try {
            // The thread holds a reference: a callback may drop the Service's last one.
            th_ = std::thread([self = shared_from_this()] { self->loop(); });
        } catch (const std::system_error&) {
            return false;
        }
        th_id_ = th_.get_id();
        started_ = true;
    }
    bytes_ += t.bytes;
    q_.push_back(std::move(t));
    lk.unlock();
    cv_.notify_one();
    return true;
}

void Notifier::loop() {
    // User callbacks never see the host's signal handlers' effects differently from the
    // reaper: signals are for the host's own threads.
    sys::block_all_signals_in_thread();
    std::unique_lock lk(mu_);
    for (;;) {
        cv_.wait(lk, [&] { return stop_ || !q_.empty(); });
        if (q_.empty()) break;  // stop_ and nothing left
        Task t = std::move(q_.front());
        q_.pop_front();
        bytes_ -= t.bytes;
        lk.unlock();
        try {
            t.fn();
        } catch (...) {
            // A throwing callback must not take the thread (and every later hook) with it.
        }
        t.fn = nullptr;  // release what it captured outside the lock
        lk.lock();
    }
}

void Notifier::stop() {
    std::unique_lock lk(mu_);
    stop_ = true;
    lk.unlock();
    cv_.notify_all();
    if (!th_.joinable()) return;
    if (std::this_thread::get_id() == th_id_) {
        th_.detach();  // runs out after the current task; it holds its own reference
        return;
    }
    th_.join();
    // Usable again (a Service started after its shutdown): the next task starts a new thread.
    lk.lock();
    stop_ = false;
    started_ = false;
}

}  // namespace core::process::detail
