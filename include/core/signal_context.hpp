// core::SignalContext: a Context cancelled when the process receives one of a set of signals
// (SIGINT and SIGTERM by default), as Go's signal.NotifyContext, for CLI hosts whose Ctrl-C must
// stop what they started. The signals are read from a signalfd by one small watcher thread; no
// signal handler is installed. Move-only; destroying it joins the thread and closes the fd.
// context() and signal() are thread-safe.
//
// The rule: the signals must be blocked in EVERY thread of the process, which in practice means
// calling core::block_signals() first thing in main(), before anything starts a thread (threads
// inherit their creator's mask). A process-directed signal goes to any one thread that does not
// block it; in a thread that does not, it keeps its default action (SIGINT, SIGTERM: the
// process dies) and never reaches the signalfd. create() blocks the signals in the calling
// thread; the library's own threads block every signal.
//
//     int main() {
//         if (auto ok = core::block_signals({SIGINT, SIGTERM}); !ok) return 1;
//         auto sc = core::SignalContext::create({SIGINT, SIGTERM});
//         if (!sc) return 1;
//         auto out = c->process().run(sc->context(), "make", {"-j8"});  // Ctrl-C stops make
//         if (sc->signal() != 0) return 128 + sc->signal();  // reason(): "interrupted by SIGINT"
//     }
#pragma once

#include <memory>
#include <vector>

#include "core/context.hpp"
#include "core/export.hpp"
#include "core/result.hpp"

namespace core {

// Blocks sigs in the calling thread (threads it starts afterwards inherit the mask). Call it in
// main() before any thread exists. Errors: EINVAL naming a signal that cannot be blocked
// (SIGKILL, SIGSTOP, glibc's internal 32 and 33, out of range).
[[nodiscard]] CORE_API Result<void> block_signals(const std::vector<int>& sigs);

class CORE_API SignalContext {
  public:
    // Watches sigs (empty: SIGINT and SIGTERM); the context is a child of parent, so it is also
    // done when parent is. Blocks sigs in the calling thread. While it lives, every arrival of
    // one of sigs is consumed (a second Ctrl-C does not kill the host; the first one's cause
    // stays). Errors: EINVAL (a signal that cannot be blocked), the signalfd's, eventfd's or
    // epoll's errno (EMFILE), EAGAIN when the watcher thread cannot start.
    [[nodiscard]] static Result<SignalContext> create(
        std::vector<int> sigs = {}, const Context& parent = Context::background());

    SignalContext(SignalContext&&) noexcept;
    SignalContext& operator=(SignalContext&&) noexcept;
    SignalContext(const SignalContext&) = delete;
    SignalContext& operator=(const SignalContext&) = delete;
    // Stops watching (stop()).
    ~SignalContext();

    // Cancelled when one of the signals arrives (reason() "interrupted by SIGINT", signal() the
    // number) or when the parent is done. Copies stay valid after the SignalContext is gone.
    const Context& context() const noexcept;
    // The first signal that arrived, 0 while none has.
    int signal() const noexcept;
    // Stops the watcher thread (joined; from the watcher thread itself, e.g. in a stop callback
    // of the context, it is detached and ends at once) and closes its descriptors. Signals that
    // arrive afterwards stay pending, as the mask still blocks them; on the thread that called
    // create(), the signals it blocked there are unblocked again once what is pending has been
    // consumed. Idempotent.
    void stop() noexcept;

    struct Impl;

  private:
    explicit SignalContext(std::shared_ptr<Impl> impl) noexcept;
    std::shared_ptr<Impl> impl_;
    Context ctx_;
};

}  // namespace core
