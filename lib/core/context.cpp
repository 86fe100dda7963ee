#include "core/context.hpp"

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sys/signals.hpp"

namespace core {

namespace {
enum Cause : int { kNone = 0, kCancelled = 1, kDeadline = 2, kSignal = 3 };

// "interrupted by SIGINT" for every signal number, built once and never freed: reason() hands
// out pointers into it that must outlive every Context.
const char* signal_reason(int sig) {
    static const std::vector<std::string>* table = [] {
        auto* t = new std::vector<std::string>();
        for (int s = 0; s <= sys::sig_max(); ++s)
            t->push_back("interrupted by " +
                         (s == 0 ? std::string("a signal") : sys::signal_name(s)));
        return t;
    }();
    if (sig < 0 || static_cast<std::size_t>(sig) >= table->size()) return (*table)[0].c_str();
    return (*table)[static_cast<std::size_t>(sig)].c_str();
}
}  // namespace

struct Context::State {
    std::stop_source src;
    std::shared_ptr<State> parent;              // keeps the chain alive for deadline()
    std::optional<Clock::time_point> deadline;  // effective: min(own, parent's)
    std::atomic<int> cause{kNone};
    // With cause kSignal: the signal. Written before cause is published (release), read after
    // cause was seen as kSignal (acquire).
    std::atomic<int> sig{0};
    // Registered on the parent's token: cancels us when the parent is cancelled.
    std::unique_ptr<std::stop_callback<std::function<void()>>> on_parent;

    void stop(int why, int signo = 0) {
        int expected = kNone;
        if (why == kSignal) {
            // Only the first cause counts: a signal after a cancel or a deadline changes nothing.
            if (cause.load(std::memory_order_acquire) == kNone)
                sig.store(signo, std::memory_order_relaxed);
        }
        cause.compare_exchange_strong(expected, why, std::memory_order_acq_rel);
        src.request_stop();
    }
};

namespace {

// One thread for every context deadline, started on first use. It holds only weak references,
// so an abandoned context costs an entry until its deadline. Leaked on purpose: a detached
// thread must never see it destroyed at exit.
class DeadlineTimer {
  public:
    static DeadlineTimer& instance() {
        static DeadlineTimer* t = new DeadlineTimer();
        return *t;
    }

    void add(Context::Clock::time_point when, std::weak_ptr<Context::State> s) {
        std::lock_guard lk(mu_);
        if (!started_) {
            std::thread([this] { loop(); }).detach();
            started_ = true;
        }
        const bool earliest = queue_.empty() || when < queue_.begin()->first;
        queue_.emplace(when, std::move(s));
        if (earliest) cv_.notify_one();
    }

  private:
    void loop() {
        // A library thread: the host's signal handlers must not run here, and a signal the host
        // waits for with a signalfd (SignalContext) must not be delivered here instead.
        sys::block_all_signals_in_thread();
        std::unique_lock lk(mu_);
        for (;;) {
            if (queue_.empty()) {
                cv_.wait(lk);
                continue;
            }
            auto it = queue_.begin();
            if (Context::Clock::now() < it->first) {
                cv_.wait_until(lk, it->first);
                continue;
            }
            auto weak = std::move(it->second);
            queue_.erase(it);
            lk.unlock();
            // Stop callbacks run here, outside our lock: they may add new deadlines.
            if (auto s = weak.lock()) s->stop(kDeadline);
            lk.lock();
        }
    }

    std::mutex mu_;
    std::condition_variable cv_;
    std::multimap<Context::Clock::time_point, std::weak_ptr<Context::State>> queue_;
    bool started_ = false;
};

std::shared_ptr<Context::State> make_child(const std::shared_ptr<Context::State>& parent,
                                           std::optional<Context::Clock::time_point> deadline) {
    // time_point::max() is "never" (saturating_add's answer for a huge timeout): no timer entry,
    // and deadline() says there is none.
    if (deadline && *deadline == Context::Clock::time_point::max()) deadline.reset();
    auto s = std::make_shared<Context::State>();
    s->parent = parent;
    s->deadline = parent->deadline;
    if (deadline && (!s->deadline || *deadline < *s->deadline)) s->deadline = deadline;
    std::weak_ptr<Context::State> weak = s;
    std::weak_ptr<Context::State> pweak = parent;
    // Runs at once if the parent is already stopped.
    s->on_parent = std::make_unique<std::stop_callback<std::function<void()>>>(
        parent->src.get_token(), std::function<void()>([weak, pweak] {
            auto child = weak.lock();
            if (!child) return;
            auto p = pweak.lock();
            const int why = p ? p->cause.load(std::memory_order_acquire) : kCancelled;
            child->stop(why, why == kSignal ? p->sig.load(std::memory_order_relaxed) : 0);
        }));
    if (s->deadline) {
        if (Context::Clock::now() >= *s->deadline)
            s->stop(kDeadline);
        else
            DeadlineTimer::instance().add(*s->deadline, weak);
    }
    return s;
}

}  // namespace

Context Context::background() {
    // The root: its source is never stopped.
    static const std::shared_ptr<State> root = std::make_shared<State>();
    return Context(root);
}

Context Context::with_cancel() const {
    return Context(make_child(s_, std::nullopt));
}

Context Context::with_timeout(std::chrono::nanoseconds d) const {
    const auto now = Clock::now();
    // Any d <= 0 is a deadline already passed; one too far away to represent saturates to
    // time_point::max(), which make_child takes as no deadline at all.
    if (d <= std::chrono::nanoseconds::zero()) return Context(make_child(s_, now));
    return Context(make_child(s_, saturating_add(now, d)));
}

Context Context::with_deadline(Clock::time_point deadline) const {
    return Context(make_child(s_, deadline));
}

void Context::cancel() const {
    // The background root is shared by every caller: it cannot be cancelled.
    if (!s_->parent) return;
    s_->stop(kCancelled);
}

bool Context::done() const {
    if (s_->src.stop_requested()) return true;
    return s_->deadline && Clock::now() >= *s_->deadline;
}

bool Context::deadline_exceeded() const {
    if (s_->cause.load() == kDeadline) return true;
    return s_->cause.load() == kNone && s_->deadline && Clock::now() >= *s_->deadline;
}

std::optional<Context::Clock::time_point> Context::deadline() const {
    return s_->deadline;
}

std::stop_token Context::token() const {
    return s_->src.get_token();
}

void Context::cancel_by_signal(int sig) const {
    if (!s_->parent) return;  // the shared background root
    s_->stop(kSignal, sig);
}

int Context::signal() const {
    if (s_->cause.load(std::memory_order_acquire) != kSignal) return 0;
    return s_->sig.load(std::memory_order_relaxed);
}

const char* Context::reason() const {
    if (!done()) return "";
    if (s_->cause.load(std::memory_order_acquire) == kSignal) return signal_reason(signal());
    return deadline_exceeded() ? "context deadline exceeded" : "context cancelled";
}

}  // namespace core
