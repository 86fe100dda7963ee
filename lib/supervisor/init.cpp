// OrphanReaper: PID 1 / subreaper duties for `coreproc supervise --init` (issue 15 §3). The
// reaping rule is sys/reap.hpp's; this is the thread around it: an epoll set over a signalfd
// for SIGCHLD and an eventfd to stop it, a sweep once a second in case a SIGCHLD went to a
// thread that had it unblocked, and a short retry while an exited managed child waits for its
// owner (waitid(P_ALL) shows that one first until it is reaped).
#include <atomic>
#include <thread>

#include "core/process/supervisor.hpp"
#include "sys/file.hpp"
#include "sys/poll.hpp"
#include "sys/reap.hpp"
#include "sys/signals.hpp"
#include "sys/supervise.hpp"

namespace core::process {

struct OrphanReaper::Impl {
    sys::Epoll epoll;
    sys::EventFd wake;
    sys::SignalFd chld;
    std::atomic<bool> quit{false};
    std::atomic<std::uint64_t> reaped{0};
    std::thread thread;

    void loop() {
        sys::PollEvent evs[4];
        int timeout = 0;  // a first pass at once: orphans may be waiting already
        while (!quit.load()) {
            (void)epoll.wait(evs, 4, timeout);
            if (quit.load()) return;
            while (chld.read() != 0) {
            }
            wake.drain();
            auto pass = sys::reap::reap_orphans();
            if (pass) reaped.fetch_add(static_cast<std::uint64_t>(pass->reaped));
            timeout = pass && pass->managed ? 10 : 1000;
        }
    }
};

OrphanReaper::OrphanReaper(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<OrphanReaper>> OrphanReaper::start(bool subreaper) {
    constexpr const char* op = "init";
    if (!sys::reap::pidfds_work())
        return fail(E(op,
                      "this kernel has no pidfds (Linux 5.3+): orphans cannot be reaped "
                      "without risking a managed child's exit"));
    if (subreaper)
        if (auto r = sys::reap::become_subreaper(); !r) return fail(E(op, "subreaper", r.error()));
    auto ep = sys::Epoll::create();
    if (!ep) return fail(E(op, "epoll", ep.error()));
    auto wake = sys::EventFd::create();
    if (!wake) return fail(E(op, "eventfd", wake.error()));
    auto chld = sys::SignalFd::open({sys::reap::sig_chld()});
    if (!chld) return fail(E(op, "signalfd", chld.error()));
    auto impl = std::unique_ptr<Impl>(
        new Impl{std::move(*ep), std::move(*wake), std::move(*chld), {false}, {0}, {}});
    if (auto r = impl->epoll.add(impl->wake.fd(), sys::ev_in, 0); !r) return fail(r.error());
    if (auto r = impl->epoll.add(impl->chld.fd(), sys::ev_in, 1); !r) return fail(r.error());
    auto* raw = impl.get();
    impl->thread = std::thread([raw] { raw->loop(); });
    return std::unique_ptr<OrphanReaper>(new OrphanReaper(std::move(impl)));
}

OrphanReaper::~OrphanReaper() {
    impl_->quit.store(true);
    impl_->wake.signal();
    impl_->thread.join();
}

std::uint64_t OrphanReaper::reaped() const noexcept {
    return impl_->reaped.load();
}

Result<int> OrphanReaper::reap_now() {
    auto pass = sys::reap::reap_orphans();
    if (!pass) return fail(pass.error());
    return pass->reaped;
}

int signal_chld() noexcept {
    return sys::reap::sig_chld();
}

bool running_as_pid1() noexcept {
    return sys::file::self_pid() == 1;
}

}  // namespace core::process
