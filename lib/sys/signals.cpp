#include "sys/signals.hpp"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include <cerrno>

namespace core::sys {

int sig_term() noexcept {
    return SIGTERM;
}
int sig_kill() noexcept {
    return SIGKILL;
}
int sig_int() noexcept {
    return SIGINT;
}
int sig_hup() noexcept {
    return SIGHUP;
}
int sig_pipe() noexcept {
    return SIGPIPE;
}
int sig_usr1() noexcept {
    return SIGUSR1;
}
int sig_usr2() noexcept {
    return SIGUSR2;
}
int sig_stop() noexcept {
    return SIGSTOP;
}
int sig_cont() noexcept {
    return SIGCONT;
}

bool valid_signal(int sig) noexcept {
    return sig >= 1 && sig < NSIG;
}

std::string signal_name(int sig) {
    if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
        return sig == SIGRTMIN ? "SIGRTMIN" : "SIGRTMIN+" + std::to_string(sig - SIGRTMIN);
    }
    // sigabbrev_np (glibc 2.32) gives the name without the SIG prefix, or null.
    if (const char* abbrev = ::sigabbrev_np(sig)) return std::string("SIG") + abbrev;
    return "signal " + std::to_string(sig);
}

void block_all_signals_in_thread() noexcept {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
}

void consume_pending_sigpipe() noexcept {
    sigset_t pending;
    sigemptyset(&pending);
    if (sigpending(&pending) != 0 || sigismember(&pending, SIGPIPE) != 1) return;
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    const timespec zero{0, 0};
    // A process-directed SIGPIPE pending elsewhere may be taken here too; SIGPIPE is only ever
    // sent by the kernel to the writing thread, so that is no loss. EINTR: nothing to retry, the
    // signal stays pending and the next call takes it.
    (void)sigtimedwait(&pipe_only, nullptr, &zero);
}

}  // namespace core::sys
