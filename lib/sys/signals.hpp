// The one signals header: signal numbers for code outside lib/sys (which may not include
// <csignal>), names and parsing, per-thread masks, SIGPIPE, and the signalfd. Stateless but for
// SignalFd; every function is thread-safe. Fault-seamed as "signalfd", "sigaction".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "sys/fd.hpp"

namespace core::sys {

int sig_term() noexcept;
int sig_kill() noexcept;
int sig_int() noexcept;
int sig_hup() noexcept;
int sig_pipe() noexcept;
int sig_usr1() noexcept;
int sig_usr2() noexcept;
int sig_stop() noexcept;
int sig_cont() noexcept;

// "SIGKILL" for 9, "SIGRTMIN+2" for realtime ones, "signal N" when unknown.
std::string signal_name(int sig);
// 1 <= sig < NSIG.
bool valid_signal(int sig) noexcept;
// The highest valid signal number (SIGRTMAX).
int sig_max() noexcept;
// "SIGTERM", "TERM", "term", "SIGRTMIN+2", "RTMAX-1" or a decimal number in [1, sig_max()];
// nullopt otherwise. The inverse of signal_name for named signals.
std::optional<int> parse_signal(std::string_view text) noexcept;

// Blocks every signal in the calling thread. Library threads call it first so that the host's
// handlers never run on them and a SIGPIPE from a write to a closed pipe stays pending (and is
// consumed) instead of killing the host.
void block_all_signals_in_thread() noexcept;
// Blocks sigs in the calling thread (pthread_sigmask SIG_BLOCK); threads it creates afterwards
// inherit the mask. *was_blocked (when given) gets, per signal, whether it was blocked before.
// Errors: EINVAL naming a signal that cannot be blocked (SIGKILL, SIGSTOP, glibc's 32 and 33,
// out of range).
Result<void> block_signals(const std::vector<int>& sigs, std::vector<bool>* was_blocked = nullptr);
// Unblocks sigs in the calling thread.
void unblock_signals(const std::vector<int>& sigs) noexcept;
// Whether sig can be waited for with a signalfd (1 <= sig < NSIG, not SIGKILL, SIGSTOP, 32, 33).
bool blockable_signal(int sig) noexcept;

// SIGPIPE's disposition becomes SIG_IGN process-wide: a write to a closed pipe fails with EPIPE
// instead of killing the host. Children get the default back (spawn resets dispositions).
Result<void> ignore_sigpipe();

// A signalfd for a set of signals (CLOEXEC, non-blocking, above fd 2), the only one in the
// library. Move-only; one reader.
//  - open() changes no signal mask: the signals must be blocked in every thread, or one
//    delivered to a thread that does not block it gets its default action instead of reaching
//    the descriptor.
//  - open_blocking() also blocks them in the calling thread for the SignalFd's lifetime (what
//    Daemon::run needs); its destructor, which must run on that thread, first drains what is
//    pending (so unblocking cannot deliver a signal the signalfd was meant to consume), then
//    unblocks the signals that were not blocked before.
class SignalFd {
  public:
    // Errors: EINVAL (a signal blockable_signal refuses), signalfd's errno (EMFILE, ENOMEM).
    static Result<SignalFd> open(const std::vector<int>& sigs);
    // As open, blocking sigs in the calling thread until destruction. Errors: as open.
    static Result<SignalFd> open_blocking(const std::vector<int>& sigs);
    SignalFd() = default;
    SignalFd(SignalFd&& o) noexcept;
    SignalFd& operator=(SignalFd&& o) noexcept;
    SignalFd(const SignalFd&) = delete;
    SignalFd& operator=(const SignalFd&) = delete;
    ~SignalFd();

    int fd() const noexcept { return fd_.get(); }
    // The next pending signal's number, 0 when none is pending (never blocks).
    int read() noexcept;

  private:
    void close() noexcept;
    UniqueFd fd_;
    std::vector<int> unblock_;  // open_blocking: the signals to unblock on destruction
};

// Consumes a pending SIGPIPE aimed at the calling thread, if any (after an EPIPE while SIGPIPE was
// blocked in this thread). Never blocks.
void consume_pending_sigpipe() noexcept;

}  // namespace core::sys
