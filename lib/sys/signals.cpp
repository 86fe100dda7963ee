#include "sys/signals.hpp"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <utility>

#include "sys/fault.hpp"

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

// SIGRTMAX is a glibc function call (it reserves the first real-time signals for itself).
int sig_max() noexcept {
    return SIGRTMAX;
}

namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::toupper(static_cast<unsigned char>(a[i])) !=
            std::toupper(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

std::optional<int> parse_number(std::string_view s) noexcept {
    int n = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return n;
}

}  // namespace

std::optional<int> parse_signal(std::string_view text) noexcept {
    if (text.empty()) return std::nullopt;
    if (std::isdigit(static_cast<unsigned char>(text[0]))) {
        auto n = parse_number(text);
        if (!n || *n < 1 || *n > sig_max()) return std::nullopt;
        return n;
    }
    std::string_view s = text;
    if (s.size() > 3 && iequals(s.substr(0, 3), "SIG")) s.remove_prefix(3);
    // The names signal_name prints (glibc's sigabbrev_np), and SIGIO, which glibc spells POLL.
    for (int sig = 1; sig < SIGRTMIN; ++sig)
        if (const char* abbrev = ::sigabbrev_np(sig); abbrev && iequals(s, abbrev)) return sig;
    if (iequals(s, "IO")) return SIGIO;
    // RTMIN, RTMIN+n, RTMAX, RTMAX-n, as kill(1) spells them.
    if (s.size() >= 5 && (iequals(s.substr(0, 5), "RTMIN") || iequals(s.substr(0, 5), "RTMAX"))) {
        const bool is_min = iequals(s.substr(0, 5), "RTMIN");
        std::string_view rest = s.substr(5);
        int off = 0;
        if (!rest.empty()) {
            if (rest[0] != (is_min ? '+' : '-')) return std::nullopt;
            auto n = parse_number(rest.substr(1));
            if (!n || *n < 0 || *n > 64) return std::nullopt;
            off = *n;
        }
        const int sig = is_min ? SIGRTMIN + off : SIGRTMAX - off;
        if (sig < SIGRTMIN || sig > SIGRTMAX) return std::nullopt;
        return sig;
    }
    return std::nullopt;
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

Result<void> ignore_sigpipe() {
    if (int err = fault::hit("sigaction")) return fail(E_errno("sigaction", "SIGPIPE", err));
    struct sigaction sa {};
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    if (::sigaction(SIGPIPE, &sa, nullptr) != 0)
        return fail(E_errno("sigaction", "SIGPIPE", errno));
    return {};
}

bool blockable_signal(int sig) noexcept {
    // 32 and 33 are glibc's own (cancellation, setxid): sigaddset refuses them.
    return sig >= 1 && sig < NSIG && sig != SIGKILL && sig != SIGSTOP && sig != 32 && sig != 33;
}

namespace {

Result<sigset_t> make_set(const std::vector<int>& sigs, const char* op) {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : sigs) {
        if (!blockable_signal(sig))
            return fail(
                E_errno(op, "signal " + std::to_string(sig) + " cannot be blocked", EINVAL));
        sigaddset(&set, sig);
    }
    return set;
}

}  // namespace

Result<void> block_signals(const std::vector<int>& sigs, std::vector<bool>* was_blocked) {
    auto set = make_set(sigs, "pthread_sigmask");
    if (!set) return fail(set.error());
    sigset_t old;
    if (int rc = ::pthread_sigmask(SIG_BLOCK, &*set, &old); rc != 0)
        return fail(E_errno("pthread_sigmask", "SIG_BLOCK", rc));
    if (was_blocked) {
        was_blocked->clear();
        for (int sig : sigs) was_blocked->push_back(sigismember(&old, sig) == 1);
    }
    return {};
}

void unblock_signals(const std::vector<int>& sigs) noexcept {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : sigs)
        if (blockable_signal(sig)) sigaddset(&set, sig);
    ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

Result<SignalFd> SignalFd::open(const std::vector<int>& sigs) {
    auto set = make_set(sigs, "signalfd");
    if (!set) return fail(set.error());
    if (int err = fault::hit("signalfd")) return fail(E_errno("signalfd", "", err));
    const int fd = ::signalfd(-1, &*set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0) return fail(E_errno("signalfd", "", errno));
    auto owned = adopt_above_stdio(fd);
    if (!owned) return fail(owned.error());
    SignalFd s;
    s.fd_ = std::move(*owned);
    return s;
}

Result<SignalFd> SignalFd::open_blocking(const std::vector<int>& sigs) {
    std::vector<bool> was_blocked;
    if (auto r = block_signals(sigs, &was_blocked); !r) return fail(r.error());
    std::vector<int> unblock;
    for (std::size_t i = 0; i < sigs.size(); ++i)
        if (!was_blocked[i]) unblock.push_back(sigs[i]);
    auto s = open(sigs);
    if (!s) {
        unblock_signals(unblock);
        return fail(s.error());
    }
    s->unblock_ = std::move(unblock);
    return s;
}

SignalFd::SignalFd(SignalFd&& o) noexcept
    : fd_(std::move(o.fd_)), unblock_(std::exchange(o.unblock_, {})) {}

SignalFd& SignalFd::operator=(SignalFd&& o) noexcept {
    if (this != &o) {
        close();
        fd_ = std::move(o.fd_);
        unblock_ = std::exchange(o.unblock_, {});
    }
    return *this;
}

SignalFd::~SignalFd() {
    close();
}

void SignalFd::close() noexcept {
    if (!unblock_.empty()) {
        // Consume what is pending for us before unblocking: a SIGTERM that arrived after
        // Daemon::run decided to return would otherwise be delivered with its default action
        // and kill the host. Only signals pending for this thread or the process are read here.
        if (fd_) {
            while (read() != 0) {
            }
        }
        unblock_signals(unblock_);
        unblock_.clear();
    }
    fd_.reset();
}

int SignalFd::read() noexcept {
    if (!fd_) return 0;
    signalfd_siginfo si{};
    for (;;) {
        const ssize_t n = ::read(fd_.get(), &si, sizeof si);
        if (n == static_cast<ssize_t>(sizeof si)) return static_cast<int>(si.ssi_signo);
        if (n < 0 && errno == EINTR) continue;  // nothing was read: retrying is exact
        return 0;                               // EAGAIN: none pending
    }
}

}  // namespace core::sys
