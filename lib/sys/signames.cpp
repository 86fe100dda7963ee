#include "sys/signames.hpp"

#include <csignal>

#include <cctype>
#include <charconv>

namespace core::sys::signames {

namespace {

struct Named {
    const char* name;  // without the SIG prefix
    int number;
};

// The standard Linux signals; real-time ones are spelled RTMIN+n / RTMAX-n or by number.
constexpr Named kSignals[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},       {"QUIT", SIGQUIT}, {"ILL", SIGILL},
    {"TRAP", SIGTRAP}, {"ABRT", SIGABRT},     {"BUS", SIGBUS},   {"FPE", SIGFPE},
    {"KILL", SIGKILL}, {"USR1", SIGUSR1},     {"SEGV", SIGSEGV}, {"USR2", SIGUSR2},
    {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT},
    {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},
    {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},   {"XCPU", SIGXCPU},
    {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH},
    {"IO", SIGIO},     {"PWR", SIGPWR},       {"SYS", SIGSYS},
};

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

int term() noexcept {
    return SIGTERM;
}
int kill() noexcept {
    return SIGKILL;
}
// SIGRTMAX is a glibc function call (it reserves the first real-time signals for itself).
int max() noexcept {
    return SIGRTMAX;
}

std::optional<int> parse(std::string_view text) noexcept {
    if (text.empty()) return std::nullopt;
    if (std::isdigit(static_cast<unsigned char>(text[0]))) {
        auto n = parse_number(text);
        if (!n || *n < 1 || *n > max()) return std::nullopt;
        return n;
    }
    std::string_view s = text;
    if (s.size() > 3 && iequals(s.substr(0, 3), "SIG")) s.remove_prefix(3);
    for (const auto& n : kSignals)
        if (iequals(s, n.name)) return n.number;
    // RTMIN, RTMIN+n, RTMAX, RTMAX-n, as kill(1) spells them.
    if (s.size() >= 5 && (iequals(s.substr(0, 5), "RTMIN") || iequals(s.substr(0, 5), "RTMAX"))) {
        const bool is_min = iequals(s.substr(0, 5), "RTMIN");
        const int base = is_min ? SIGRTMIN : SIGRTMAX;
        std::string_view rest = s.substr(5);
        int off = 0;
        if (!rest.empty()) {
            if (rest[0] != (is_min ? '+' : '-')) return std::nullopt;
            auto n = parse_number(rest.substr(1));
            if (!n || *n < 0 || *n > 64) return std::nullopt;
            off = *n;
        }
        const int sig = is_min ? base + off : base - off;
        if (sig < SIGRTMIN || sig > SIGRTMAX) return std::nullopt;
        return sig;
    }
    return std::nullopt;
}

std::string name(int sig) {
    for (const auto& n : kSignals)
        if (n.number == sig) return std::string("SIG") + n.name;
    return "SIG" + std::to_string(sig);
}

}  // namespace core::sys::signames
