#include "core/process/signal_waiter.hpp"

#include <atomic>

#include "sys/poll.hpp"
#include "sys/signals.hpp"

namespace core::process {

struct SignalWaiter::Impl {
    sys::SignalFd sigs;
    sys::EventFd wake;
    sys::Epoll ep;
};

Result<SignalWaiter> SignalWaiter::open(const std::vector<int>& signals) {
    constexpr const char* op = "signal_waiter.open";
    auto sigs = sys::SignalFd::open(signals);
    if (!sigs) return fail(E(op, "", sigs.error()));
    auto wake = sys::EventFd::create();
    if (!wake) return fail(E(op, "", wake.error()));
    auto ep = sys::Epoll::create();
    if (!ep) return fail(E(op, "", ep.error()));
    if (auto r = ep->add(sigs->fd(), sys::ev_in, 1); !r) return fail(E(op, "", r.error()));
    if (auto r = ep->add(wake->fd(), sys::ev_in, 2); !r) return fail(E(op, "", r.error()));
    SignalWaiter w;
    w.impl_ = std::make_unique<Impl>(Impl{std::move(*sigs), std::move(*wake), std::move(*ep)});
    return w;
}

SignalWaiter::SignalWaiter(SignalWaiter&&) noexcept = default;
SignalWaiter& SignalWaiter::operator=(SignalWaiter&&) noexcept = default;
SignalWaiter::~SignalWaiter() = default;

Result<int> SignalWaiter::wait() {
    for (;;) {
        // A signal that is already pending wins over a notify: it says more.
        if (int s = impl_->sigs.read(); s != 0) return s;
        sys::PollEvent evs[2];
        auto n = impl_->ep.wait(evs, 2, -1);
        if (!n) return fail(E("signal_waiter.wait", "", n.error()));
        for (int i = 0; i < *n; ++i) {
            if (evs[i].data == 1) {
                if (int s = impl_->sigs.read(); s != 0) return s;
            } else if (evs[i].data == 2) {
                impl_->wake.drain();
                return 0;
            }
        }
    }
}

void SignalWaiter::notify() noexcept {
    if (impl_) impl_->wake.signal();
}

int signal_term() noexcept {
    return sys::sig_term();
}
int signal_int() noexcept {
    return sys::sig_int();
}
int signal_hup() noexcept {
    return sys::sig_hup();
}

Result<void> block_signals(const std::vector<int>& signals) {
    if (auto r = sys::block_signals(signals); !r)
        return fail(E("process.block_signals", "", r.error()));
    return {};
}

Result<void> ignore_sigpipe() {
    if (auto r = sys::ignore_sigpipe(); !r) return fail(E("process.ignore_sigpipe", "", r.error()));
    return {};
}

}  // namespace core::process
