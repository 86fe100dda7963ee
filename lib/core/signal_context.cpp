#include "core/signal_context.hpp"

#include <atomic>
#include <mutex>
#include <system_error>
#include <thread>

#include "sys/poll.hpp"
#include "sys/signals.hpp"

namespace core {

Result<void> block_signals(const std::vector<int>& sigs) {
    if (auto r = sys::block_signals(sigs); !r) return fail(E("block_signals", "", r.error()));
    return {};
}

struct SignalContext::Impl {
    explicit Impl(Context c) : ctx(std::move(c)) {}

    Context ctx;
    std::vector<int> sigs;
    // The signals create() blocked in the creating thread (they were not blocked before): stop()
    // on that thread unblocks them again.
    std::vector<int> unblock_on_stop;
    std::thread::id creator;
    sys::SignalFd sfd;
    sys::EventFd wake;
    sys::Epoll ep;
    std::atomic<int> fired{0};
    std::atomic<bool> quit{false};
    std::mutex mu;  // th and stopped
    std::thread th;
    bool stopped = false;

    static constexpr std::uint64_t kSignalTag = 0;
    static constexpr std::uint64_t kWakeTag = 1;

    void run() {
        // The signals are read from the descriptor, never delivered here; nor is anything else.
        sys::block_all_signals_in_thread();
        sys::PollEvent evs[2];
        while (!quit.load(std::memory_order_acquire)) {
            auto n = ep.wait(evs, 2, -1);
            if (!n) return;  // epoll itself failed (EBADF, ENOMEM): nothing left to wait with
            for (int i = 0; i < *n; ++i) {
                if (evs[i].data == kWakeTag) return;  // stop()
                // Consume every pending one: one arrival of a standard signal is pending at most
                // once, so a burst of Ctrl-C is a single read.
                while (const int sig = sfd.read()) {
                    int none = 0;
                    fired.compare_exchange_strong(none, sig, std::memory_order_acq_rel);
                    // Runs the context's stop callbacks here (the Service kills what it started
                    // under it); one of them may stop() us, which then detaches this thread.
                    ctx.cancel_by_signal(sig);
                    if (quit.load(std::memory_order_acquire)) return;
                }
            }
        }
    }

    void stop() noexcept {
        std::thread t;
        {
            std::lock_guard lk(mu);
            if (stopped) return;
            stopped = true;
            t = std::move(th);
        }
        quit.store(true, std::memory_order_release);
        wake.signal();
        if (t.joinable()) {
            if (t.get_id() == std::this_thread::get_id()) {
                // From a stop callback on the watcher itself: it cannot join itself. It returns
                // as soon as the callback does (quit is set) and holds its own reference to us.
                t.detach();
                return;
            }
            t.join();
        }
        // Consume what is pending before unblocking, so a signal this context was meant to take
        // is not delivered with its default action (it would kill the host).
        while (sfd.read() != 0) {
        }
        if (std::this_thread::get_id() == creator && !unblock_on_stop.empty())
            sys::unblock_signals(unblock_on_stop);
        // The descriptors go with the last reference (ours, the thread's is gone with it).
    }
};

Result<SignalContext> SignalContext::create(std::vector<int> sigs, const Context& parent) {
    const std::string op = "signal_context";
    if (sigs.empty()) sigs = {sys::sig_int(), sys::sig_term()};
    std::vector<bool> was_blocked;
    if (auto b = sys::block_signals(sigs, &was_blocked); !b) return fail(E(op, "", b.error()));
    auto impl = std::make_shared<Impl>(parent.with_cancel());
    impl->sigs = sigs;
    impl->creator = std::this_thread::get_id();
    for (std::size_t i = 0; i < sigs.size(); ++i)
        if (!was_blocked[i]) impl->unblock_on_stop.push_back(sigs[i]);
    // From here on a failure unblocks what we blocked (nothing can be pending for a descriptor
    // that does not exist yet: a signal that arrived meanwhile is the host's, as before).
    auto undo = [&](Error e) -> Result<SignalContext> {
        sys::unblock_signals(impl->unblock_on_stop);
        return fail(E(op, "", e));
    };
    auto sfd = sys::SignalFd::open(sigs);
    if (!sfd) return undo(sfd.error());
    impl->sfd = std::move(*sfd);
    auto wake = sys::EventFd::create();
    if (!wake) return undo(wake.error());
    impl->wake = std::move(*wake);
    auto ep = sys::Epoll::create();
    if (!ep) return undo(ep.error());
    impl->ep = std::move(*ep);
    if (auto a = impl->ep.add(impl->sfd.fd(), sys::ev_in, Impl::kSignalTag); !a)
        return undo(a.error());
    if (auto a = impl->ep.add(impl->wake.fd(), sys::ev_in, Impl::kWakeTag); !a)
        return undo(a.error());
    try {
        // The thread holds a reference: a stop() from its own stop callback detaches it.
        impl->th = std::thread([self = impl] { self->run(); });
    } catch (const std::system_error& ex) {
        return undo(Error("std::thread", ex.what(), EAGAIN));
    }
    return SignalContext(std::move(impl));
}

SignalContext::SignalContext(std::shared_ptr<Impl> impl) noexcept
    : impl_(std::move(impl)), ctx_(impl_->ctx) {}

SignalContext::SignalContext(SignalContext&& o) noexcept
    : impl_(std::move(o.impl_)), ctx_(o.ctx_) {}

SignalContext& SignalContext::operator=(SignalContext&& o) noexcept {
    if (this != &o) {
        stop();
        impl_ = std::move(o.impl_);
        ctx_ = o.ctx_;
    }
    return *this;
}

SignalContext::~SignalContext() {
    stop();
}

const Context& SignalContext::context() const noexcept {
    return ctx_;
}

int SignalContext::signal() const noexcept {
    return impl_ ? impl_->fired.load(std::memory_order_acquire) : 0;
}

void SignalContext::stop() noexcept {
    if (impl_) impl_->stop();
}

}  // namespace core
