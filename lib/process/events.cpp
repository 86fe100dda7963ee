#include "process/events.hpp"

#include "core/process/types.hpp"
#include "core/runtime.hpp"
#include "sys/signals.hpp"

namespace core::process::detail {

EventDispatcher::~EventDispatcher() {
    close();
}

void EventDispatcher::close() {
    std::thread t;
    {
        std::lock_guard lk(mu_);
        q_.clear();
        spare_.clear();
        lines_ = 0;
        stop_ = true;
        closed_ = true;
        t = std::move(th_);
    }
    cv_.notify_all();
    if (t.joinable() && t.get_id() != std::this_thread::get_id())
        t.join();
    else if (t.joinable())
        t.detach();
}

void EventDispatcher::emit_counted(Value ev, std::size_t nlines) {
    // Nobody subscribed: the broadcast would reach nobody, so no queueing and no wake-up of the
    // dispatcher thread (on a 2-CPU machine that wake-up was ~5% of a start+wait). A subscriber
    // sees the events emitted after it subscribed, as before.
    if (!wanted()) return;
    std::unique_lock lk(mu_);
    if (closed_) return;
    if (nlines > 0) {
        if (lines_ + nlines > max_lines_) {
            dropped_ += nlines;
            return;
        }
        lines_ += nlines;
    }
    const bool was_empty = q_.empty();
    q_.emplace_back(std::move(ev), nlines);
    if (!running_) {
        // flush_and_stop moved any previous thread out, so th_ is free here.
        stop_ = false;
        running_ = true;
        // The thread owns a reference: if a broadcast drops the Core's last reference, the
        // Service (and our owner) may be destroyed on this very thread, and run() must not be
        // left running on a dead object.
        th_ = std::thread([self = shared_from_this()] { self->run(); });
        return;
    }
    lk.unlock();
    if (was_empty) cv_.notify_one();
}

void EventDispatcher::run() {
    sys::block_all_signals_in_thread();
    std::unique_lock lk(mu_);
    for (;;) {
        cv_.wait(lk, [&] { return stop_ || !q_.empty(); });
        if (q_.empty()) break;  // stop_ and drained
        auto [ev, nlines] = std::move(q_.front());
        q_.pop_front();
        lines_ -= nlines;
        lk.unlock();
        if (auto core = core_.lock()) core->broadcast(ev);  // a slow subscriber delays only us
        // Every subscriber has returned and none holds ev (a copy of a Value is a deep copy):
        // the batch's strings can serve the next one.
        std::vector<std::string> back;
        if (nlines > 0)
            if (auto* b = ev.get<ProcessOutputBatch>()) back = std::move(b->lines);
        const bool keep = !back.empty() && fits_spare(back);
        lk.lock();
        if (keep && spare_.size() < kSpareBatches) spare_.push_back(std::move(back));
    }
    running_ = false;
    spare_.clear();
}

bool EventDispatcher::fits_spare(const std::vector<std::string>& lines) noexcept {
    std::size_t bytes = lines.capacity() * sizeof(std::string);
    for (const auto& l : lines) bytes += l.capacity();
    return bytes <= kSpareBytes;
}

std::vector<std::string> EventDispatcher::take_lines() {
    std::lock_guard lk(mu_);
    if (spare_.empty()) return {};
    std::vector<std::string> v = std::move(spare_.back());
    spare_.pop_back();
    return v;
}

void EventDispatcher::flush_and_stop() {
    std::thread t;
    {
        // Setting stop_ and taking the thread in one critical section: a later emit() either
        // reaches the old thread's queue (drained before it exits) or starts a new thread.
        std::lock_guard lk(mu_);
        stop_ = true;
        t = std::move(th_);
    }
    cv_.notify_all();
    if (!t.joinable()) return;
    if (t.get_id() == std::this_thread::get_id()) {
        // Called from a subscriber (Core::shutdown in a bus handler runs the Service's
        // on_shutdown on this very thread): it cannot join itself, and a join that throws would
        // leave a joinable std::thread to std::terminate in the unwind. Detached instead: stop_
        // is set, so once the subscriber returns, run() delivers what is still queued (the
        // exits of the processes this shutdown killed) and ends; it holds its own reference.
        t.detach();
        return;
    }
    t.join();
}

bool EventDispatcher::wanted() const noexcept {
    return subscribers_ && subscribers_->load(std::memory_order_relaxed) > 0 && !core_.expired();
}

std::uint64_t EventDispatcher::dropped_lines() const {
    std::lock_guard lk(mu_);
    return dropped_;
}

}  // namespace core::process::detail
