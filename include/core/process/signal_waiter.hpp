// SignalWaiter: a command-line host's wait for the signals it handles (SIGTERM, SIGINT, SIGHUP,
// …), read through a signalfd, that another thread can also end (notify()). One thread calls
// wait(); notify() may be called from any thread or a signal handler. The signals must be
// blocked in every thread: call block_signals() in main() before any thread exists; a signal
// that reaches a thread where it is not blocked keeps its default action.
#pragma once

#include <memory>
#include <vector>

#include "core/export.hpp"
#include "core/result.hpp"

namespace core::process {

class CORE_API SignalWaiter {
  public:
    // Errors: an invalid signal number; signalfd, eventfd or epoll failures.
    [[nodiscard]] static Result<SignalWaiter> open(const std::vector<int>& signals);
    SignalWaiter(SignalWaiter&&) noexcept;
    SignalWaiter& operator=(SignalWaiter&&) noexcept;
    ~SignalWaiter();

    // Blocks until one of the signals arrives (its number) or notify() was called (0; each
    // notify ends one wait). Errors: epoll failures.
    [[nodiscard]] Result<int> wait();
    // Ends the current (or next) wait() with 0. Async-signal-safe.
    void notify() noexcept;

  private:
    struct Impl;
    SignalWaiter() = default;
    std::unique_ptr<Impl> impl_;
};

// Signal numbers for hosts that keep <csignal> out (this project's tools).
CORE_API int signal_term() noexcept;
CORE_API int signal_int() noexcept;
CORE_API int signal_hup() noexcept;

// Blocks signals in the calling thread (threads created afterwards inherit the mask). Errors:
// an invalid signal number, the pthread_sigmask failure.
[[nodiscard]] CORE_API Result<void> block_signals(const std::vector<int>& signals);
// SIGPIPE is ignored process-wide (a write to a closed pipe fails with EPIPE instead of killing
// the process); children still start with every signal at its default. Errors: sigaction.
[[nodiscard]] CORE_API Result<void> ignore_sigpipe();

}  // namespace core::process
