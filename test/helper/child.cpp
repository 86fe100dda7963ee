// The helper program the tests spawn: one binary with named modes, so tests never rely on
// shell one-liners. Usage: child <mode> [args…]. Modes:
//   sleep MS                 sleep MS milliseconds, exit 0
//   exit N                   exit with status N
//   print TEXT…              write the args joined by spaces and a newline to stdout
//   stderr TEXT              write TEXT and a newline to stderr
//   echo                     copy stdin to stdout until EOF
//   bytes N [CHAR]           write N bytes (default 'x') to stdout, no newline
//   line N                   write one line of N 'y' bytes plus a newline
//   lines N                  write N numbered lines "line <i>"
//   binary                   write all 256 byte values twice, then "\r\n\0end"
//   interleave N             alternate N lines on stdout and stderr, flushing each
//   ignore-term MS           ignore SIGTERM, print "ready", sleep MS
//   grandchild MS            fork a grandchild that sleeps MS holding stdout/stderr; print
//                            "gc <pid>", exit 0 at once
//   grandchild-wait MS       as grandchild, but the child also sleeps MS (same group)
//   env [NAME]               print NAME=value (or every variable, one per line)
//   cwd                      print the working directory
//   fds                      print the open descriptors, space-separated (excluding the dir fd)
//   sigmask                  print the blocked signal numbers, space-separated ("" if none)
//   sigign                   print the signals whose disposition is SIG_IGN
//   argv                     print each argument on its own line, as received
//   crash                    raise SIGSEGV
//   kill-self SIG            raise signal SIG
//   pid                      print its pid and process group
//   fail-after MS N          sleep MS, then exit N
//   output-exit N COUNT      write COUNT bytes 'o' then "END\n" to stdout, exit N
//   http-health PORT         (daemon tests) serve "GET /health" → 200 on 127.0.0.1:PORT forever
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

void write_all(int fd, const char* p, size_t n) {
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            std::_Exit(3);
        }
        p += w;
        n -= static_cast<size_t>(w);
    }
}
void out(const std::string& s) { write_all(1, s.data(), s.size()); }

void sleep_ms(long ms) {
    timespec ts{ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int usage() {
    std::fprintf(stderr, "child: unknown or incomplete mode\n");
    return 2;
}

void spawn_grandchild(long ms) {
    pid_t pid = fork();
    if (pid == 0) {
        sleep_ms(ms);
        std::_Exit(0);
    }
    out("gc " + std::to_string(pid) + "\n");
}

int serve_health(int port) {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return 4;
    ::listen(s, 16);
    for (;;) {
        int c = ::accept4(s, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        char buf[1024];
        (void)::read(c, buf, sizeof buf);
        const char* resp = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
        write_all(c, resp, std::strlen(resp));
        ::close(c);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage();
    const std::string mode = argv[1];
    auto arg = [&](int i) -> const char* { return i < argc ? argv[i] : nullptr; };
    auto num = [&](int i, long def) -> long { return arg(i) ? std::atol(arg(i)) : def; };

    if (mode == "sleep") {
        sleep_ms(num(2, 1000));
        return 0;
    }
    if (mode == "exit") return static_cast<int>(num(2, 0));
    if (mode == "print") {
        std::string s;
        for (int i = 2; i < argc; ++i) {
            if (i > 2) s += ' ';
            s += argv[i];
        }
        out(s + "\n");
        return 0;
    }
    if (mode == "stderr") {
        std::string s = std::string(arg(2) ? arg(2) : "") + "\n";
        write_all(2, s.data(), s.size());
        return 0;
    }
    if (mode == "echo") {
        char buf[65536];
        for (;;) {
            ssize_t n = ::read(0, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            write_all(1, buf, static_cast<size_t>(n));
        }
        return 0;
    }
    if (mode == "bytes") {
        long n = num(2, 0);
        char c = arg(3) ? arg(3)[0] : 'x';
        std::vector<char> buf(65536, c);
        while (n > 0) {
            size_t k = static_cast<size_t>(std::min<long>(n, static_cast<long>(buf.size())));
            write_all(1, buf.data(), k);
            n -= static_cast<long>(k);
        }
        return 0;
    }
    if (mode == "line") {
        std::string s(static_cast<size_t>(num(2, 0)), 'y');
        s += '\n';
        out(s);
        return 0;
    }
    if (mode == "lines") {
        long n = num(2, 0);
        std::string s;
        for (long i = 0; i < n; ++i) s += "line " + std::to_string(i) + "\n";
        out(s);
        return 0;
    }
    if (mode == "binary") {
        std::string s;
        for (int r = 0; r < 2; ++r)
            for (int b = 0; b < 256; ++b) s.push_back(static_cast<char>(b));
        s.append("\r\n\0end", 6);
        out(s);
        return 0;
    }
    if (mode == "interleave") {
        long n = num(2, 1);
        for (long i = 0; i < n; ++i) {
            std::string o = "out " + std::to_string(i) + "\n";
            std::string e = "err " + std::to_string(i) + "\n";
            write_all(1, o.data(), o.size());
            write_all(2, e.data(), e.size());
        }
        return 0;
    }
    if (mode == "ignore-term") {
        signal(SIGTERM, SIG_IGN);
        out("ready\n");
        sleep_ms(num(2, 60000));
        return 0;
    }
    if (mode == "grandchild") {
        spawn_grandchild(num(2, 60000));
        return 0;
    }
    if (mode == "grandchild-wait") {
        spawn_grandchild(num(2, 60000));
        sleep_ms(num(2, 60000));
        return 0;
    }
    if (mode == "env") {
        if (arg(2)) {
            const char* v = std::getenv(arg(2));
            out(std::string(arg(2)) + "=" + (v ? v : "") + "\n");
        } else {
            for (char** e = environ; *e; ++e) out(std::string(*e) + "\n");
        }
        return 0;
    }
    if (mode == "cwd") {
        char buf[4096];
        if (!getcwd(buf, sizeof buf)) return 5;
        out(std::string(buf) + "\n");
        return 0;
    }
    if (mode == "fds") {
        DIR* d = opendir("/proc/self/fd");
        if (!d) return 5;
        const int self = dirfd(d);
        std::string s;
        while (dirent* e = readdir(d)) {
            if (e->d_name[0] == '.') continue;
            if (std::atoi(e->d_name) == self) continue;
            if (!s.empty()) s += ' ';
            s += e->d_name;
        }
        closedir(d);
        out(s + "\n");
        return 0;
    }
    if (mode == "sigmask") {
        sigset_t set;
        sigprocmask(SIG_SETMASK, nullptr, &set);
        std::string s;
        for (int sig = 1; sig < NSIG; ++sig)
            if (sigismember(&set, sig) == 1) s += (s.empty() ? "" : " ") + std::to_string(sig);
        out(s + "\n");
        return 0;
    }
    if (mode == "sigign") {
        std::string s;
        for (int sig = 1; sig < NSIG; ++sig) {
            struct sigaction sa{};
            if (sigaction(sig, nullptr, &sa) == 0 && sa.sa_handler == SIG_IGN)
                s += (s.empty() ? "" : " ") + std::to_string(sig);
        }
        out(s + "\n");
        return 0;
    }
    if (mode == "argv") {
        for (int i = 2; i < argc; ++i) out(std::string(argv[i]) + "\n");
        return 0;
    }
    if (mode == "crash") {
        raise(SIGSEGV);
        return 1;
    }
    if (mode == "kill-self") {
        raise(static_cast<int>(num(2, SIGKILL)));
        return 1;
    }
    if (mode == "pid") {
        out(std::to_string(getpid()) + " " + std::to_string(getpgrp()) + "\n");
        return 0;
    }
    if (mode == "fail-after") {
        sleep_ms(num(2, 0));
        return static_cast<int>(num(3, 1));
    }
    if (mode == "output-exit") {
        std::string s(static_cast<size_t>(num(3, 0)), 'o');
        s += "END\n";
        out(s);
        return static_cast<int>(num(2, 1));
    }
    if (mode == "http-health") return serve_health(static_cast<int>(num(2, 0)));
    // --- pipelines and CLI (issue 17) ---
    // print-fifo TEXT FIFO: prints TEXT, then waits until a writer opens FIFO and closes it
    // (the test's "go on"), so a test can see a line while the step is still running.
    if (mode == "print-fifo") {
        out(std::string(arg(2) ? arg(2) : "") + "\n");
        if (!arg(3)) return usage();
        const int fd = ::open(arg(3), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return 3;
        char buf[64];
        while (::read(fd, buf, sizeof buf) > 0) {
        }
        ::close(fd);
        return 0;
    }
    return usage();
}
