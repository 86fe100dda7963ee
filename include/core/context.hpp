// core::Context: cancellation and deadline, on std::stop_source. A Context is a cheap handle
// (copies share state). Cancelling a parent cancels its children; a child never cancels its
// parent. A deadline also cancels: the token fires when it passes (one shared timer thread,
// started on first use). All calls are thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <stop_token>

#include "core/deadline.hpp"
#include "core/export.hpp"

namespace core {

class CORE_API Context {
  public:
    using Clock = std::chrono::steady_clock;

    // A context that is never cancelled and has no deadline.
    static Context background();

    // A child cancelled with this one, or by its own cancel().
    Context with_cancel() const;
    // A child that is also cancelled once d has elapsed (d <= 0: already done). A d too large
    // for the clock (nanoseconds::max()) saturates: no deadline at all, never an overflow.
    Context with_timeout(std::chrono::nanoseconds d) const;
    // As with_timeout for any duration type (milliseconds::max(), hours): converted with
    // saturation, so a huge d means no deadline instead of an overflowed, early one.
    template <class Rep, class Period>
    Context with_timeout(std::chrono::duration<Rep, Period> d) const {
        return with_timeout(saturating_duration_cast<std::chrono::nanoseconds>(d));
    }
    // A child with an absolute deadline (the earlier of its parent's and this one).
    // Clock::time_point::max() (what saturating_add gives for "never") is no deadline.
    Context with_deadline(Clock::time_point deadline) const;

    // Cancels this context and its children. Idempotent.
    void cancel() const;
    // Cancels this context and its children as signal sig would (what a SignalContext does
    // when sig arrives; also for hosts that read their signals themselves): signal() then
    // returns sig and reason() says "interrupted by SIGINT". No-op on background(), and when
    // already done (the first cause stays).
    void cancel_by_signal(int sig) const;
    // True once cancelled, by cancel(), a parent, or the deadline.
    bool done() const;
    // True when done because the deadline passed (as Go's DeadlineExceeded).
    bool deadline_exceeded() const;
    // The effective deadline (the earliest in the chain), if any.
    std::optional<Clock::time_point> deadline() const;
    std::stop_token token() const;

    // The signal that cancelled this context (cancel_by_signal, a SignalContext, or a parent
    // cancelled so), else 0.
    int signal() const;

    // "context cancelled", "context deadline exceeded" or "interrupted by SIGINT"; empty while
    // not done. The text lives as long as the program.
    const char* reason() const;

    struct State;

  private:
    explicit Context(std::shared_ptr<State> s) : s_(std::move(s)) {}
    std::shared_ptr<State> s_;
};

}  // namespace core
