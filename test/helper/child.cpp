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
//   (helper A: descriptors, signals)
//   proc-sigs                print the kernel's view of its signals, the SigBlk and SigIgn lines
//                            of /proc/self/status (which sigaction cannot show for glibc's
//                            internal 32 and 33), as "SigBlk: <hex> SigIgn: <hex>"
//   --- containment and identity (issue 13) ---
//   ids                      print "uid gid groups…" (real ids; groups space-separated)
//   umask                    print the umask in octal (e.g. "027")
//   rlimit NAME              print "soft hard" of RLIMIT_NAME (nofile, nproc, core; -1: infinity)
//   nice                     print the nice value
//   nnp                      print the NoNewPrivs flag (0/1)
//   pdeathsig                print the parent-death signal (0: none)
//   setsid-tree MS           fork a grandchild that calls setsid, forks again and sleeps MS (both
//                            hold stdout); print "tree <gc> <ggc>" once both exist; sleep MS
//   alloc MB                 allocate and touch MB MiB, print "allocated", exit 0
//   forks N                  fork N sleeping children (60 s); print how many forks succeeded
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
//   print-fail TEXT          write TEXT and a newline to stderr, exit 1
//   dead-stdout PATH ARG…    exec PATH with stdout a pipe whose read end is closed
//   dead-stderr PATH ARG…    the same for stderr
//   --- dependencies, readiness, PID 1 (issue 15) ---
//   f-touch-after MS FILE    sleep MS, create FILE, then sleep 60 s (a slow dependency)
//   f-exists FILE            exit 0 when FILE exists, else 1 (a health command)
//   f-notify STEP…           speak sd_notify to $NOTIFY_SOCKET, one STEP after the other, then
//                            sleep 60 s. STEP: a message ("READY=1", "STATUS=up", several
//                            lines with \n as "\\n"), sleep:MS, ping:MS:N (WATCHDOG=1 N times
//                            every MS), other:MSG (sent by a forked child: another pid),
//                            big:N (an N-byte datagram), mainpid (MAINPID= of a forked child
//                            that stays, so the tree has it), exit:N
//   f-orphans N              N times: fork a child that forks a grandchild and exits (the
//                            grandchild, re-parented, exits at once); then sleep 60 s
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
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
void out(const std::string& s) {
    write_all(1, s.data(), s.size());
}

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
            struct sigaction sa {};
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
    // --- process model (lead): rusage, terminals ---
    if (mode == "burn") {
        // burn MS MB: touches MB MiB, then spins on the CPU for MS ms of its own CPU time.
        const long mb = num(3, 0);
        std::vector<char> mem(static_cast<size_t>(mb) << 20);
        for (size_t i = 0; i < mem.size(); i += 4096) mem[i] = 1;
        const long ms = num(2, 0);
        timespec t0{}, t{};
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
        volatile unsigned long x = 0;
        for (;;) {
            for (int i = 0; i < 100000; ++i) x = x + static_cast<unsigned long>(i);
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
            if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= ms) break;
        }
        out("burnt " + std::to_string(mem.size()) + "\n");
        return 0;
    }
    if (mode == "tty") {
        // "tty I O E ROWSxCOLS SID": isatty of 0, 1, 2, the window size, whether we lead a session
        struct winsize ws {};
        const bool sized = ioctl(1, TIOCGWINSZ, &ws) == 0;
        out("tty " + std::to_string(isatty(0)) + " " + std::to_string(isatty(1)) + " " +
            std::to_string(isatty(2)) + " " +
            (sized ? std::to_string(ws.ws_row) + "x" + std::to_string(ws.ws_col) : "none") + " " +
            std::to_string(getsid(0) == getpid()) + "\n");
        return 0;
    }
    if (mode == "winch") {
        // Waits for SIGWINCH (up to MS), then prints the new size.
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGWINCH);
        sigprocmask(SIG_BLOCK, &set, nullptr);
        out("ready\n");
        timespec to{num(2, 10000) / 1000, (num(2, 10000) % 1000) * 1000000};
        if (sigtimedwait(&set, nullptr, &to) != SIGWINCH) return 3;
        struct winsize ws {};
        ioctl(1, TIOCGWINSZ, &ws);
        out("size " + std::to_string(ws.ws_row) + "x" + std::to_string(ws.ws_col) + "\n");
        return 0;
    }
    // ---- helper A: descriptors, signals ----
    if (mode == "proc-sigs") {
        FILE* f = std::fopen("/proc/self/status", "r");
        if (!f) return 5;
        char line[256];
        std::string blk = "?", ign = "?";
        while (std::fgets(line, sizeof line, f)) {
            std::string l(line);
            while (!l.empty() && (l.back() == '\n' || l.back() == ' ' || l.back() == '\t'))
                l.pop_back();
            const auto tab = l.find_first_of("\t ");
            if (tab == std::string::npos) continue;
            const auto start = l.find_first_not_of("\t ", tab);
            if (start == std::string::npos) continue;
            const std::string value = l.substr(start);
            if (l.compare(0, 7, "SigBlk:") == 0) blk = value;
            if (l.compare(0, 7, "SigIgn:") == 0) ign = value;
        }
        std::fclose(f);
        out("SigBlk: " + blk + " SigIgn: " + ign + "\n");
        return 0;
    }
    // --- containment and identity (issue 13) ---
    if (mode == "ids") {
        std::string s = std::to_string(getuid()) + " " + std::to_string(getgid());
        gid_t g[256];
        const int n = getgroups(256, g);
        for (int i = 0; i < n; ++i) s += " " + std::to_string(g[i]);
        out(s + "\n");
        return 0;
    }
    if (mode == "umask") {
        const mode_t m = ::umask(0);
        char buf[8];
        std::snprintf(buf, sizeof buf, "%03o", static_cast<unsigned>(m));
        out(std::string(buf) + "\n");
        return 0;
    }
    if (mode == "rlimit") {
        const std::string n = arg(2) ? arg(2) : "nofile";
        const int res = n == "nproc" ? RLIMIT_NPROC : n == "core" ? RLIMIT_CORE : RLIMIT_NOFILE;
        rlimit rl{};
        getrlimit(res, &rl);
        auto v = [](rlim_t x) {
            return x == RLIM_INFINITY ? std::string("-1") : std::to_string(x);
        };
        out(v(rl.rlim_cur) + " " + v(rl.rlim_max) + "\n");
        return 0;
    }
    if (mode == "nice") {
        errno = 0;
        const int n = getpriority(PRIO_PROCESS, 0);
        out(std::to_string(n) + "\n");
        return 0;
    }
    if (mode == "nnp") {
        out(std::to_string(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)) + "\n");
        return 0;
    }
    if (mode == "pdeathsig") {
        int sig = 0;
        prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0);
        out(std::to_string(sig) + "\n");
        return 0;
    }
    if (mode == "setsid-tree") {
        const long ms = num(2, 60000);
        int p[2];
        if (pipe(p) != 0) return 5;
        if (fork() == 0) {
            setsid();
            const pid_t ggc = fork();
            if (ggc == 0) {
                sleep_ms(ms);
                std::_Exit(0);
            }
            const std::string line =
                "tree " + std::to_string(getpid()) + " " + std::to_string(ggc) + "\n";
            write_all(p[1], line.data(), line.size());
            sleep_ms(ms);
            std::_Exit(0);
        }
        ::close(p[1]);
        char buf[128];
        const ssize_t n = ::read(p[0], buf, sizeof buf);
        if (n > 0) write_all(1, buf, static_cast<size_t>(n));
        sleep_ms(ms);
        return 0;
    }
    if (mode == "alloc") {
        const size_t mb = static_cast<size_t>(num(2, 1));
        std::vector<char*> blocks;
        for (size_t i = 0; i < mb; ++i) {
            char* b = static_cast<char*>(std::malloc(1 << 20));
            if (!b) return 6;
            std::memset(b, 1, 1 << 20);
            blocks.push_back(b);
        }
        out("allocated\n");
        return 0;
    }
    if (mode == "forks") {
        const long n = num(2, 1);
        long ok = 0;
        for (long i = 0; i < n; ++i) {
            const pid_t pid = fork();
            if (pid == 0) {
                sleep_ms(60000);
                std::_Exit(0);
            }
            if (pid > 0) ++ok;
        }
        out(std::to_string(ok) + "\n");
        return 0;
    }
    // --- supervisor logs and a CLI whose stdout/stderr is a dead pipe (issue 14, helper B) ---
    if (mode == "print-fail") {  // TEXT on stderr, exit 1 (a daemon that cannot bind)
        const std::string e = std::string(arg(2) ? arg(2) : "") + "\n";
        write_all(2, e.data(), e.size());
        return 1;
    }
    if (mode == "dead-stdout" || mode == "dead-stderr") {  // exec argv[2…] with fd 1 or 2 a
        int p[2];                                          // pipe whose reader is gone
        if (argc < 3 || ::pipe(p) != 0) return usage();
        ::close(p[0]);
        const int target = mode == "dead-stdout" ? 1 : 2;
        ::dup2(p[1], target);
        ::close(p[1]);
        ::execv(argv[2], argv + 2);
        return 127;
    }

    // --- control plane (lib/control, test/control) ---
    // c-tick COUNT MS: prints "tick I" COUNT times, MS apart, then sleeps until killed.
    if (mode == "c-tick") {
        const long n = num(2, 1);
        for (long i = 0; i < n; ++i) {
            out("tick " + std::to_string(i) + "\n");
            sleep_ms(num(3, 100));
        }
        for (;;) sleep_ms(1000);
    }
    // c-unix-get UID PATH: as user UID, GET /health over the Unix socket PATH; prints the
    // response (or "connect: <errno text>" and exits 3).
    if (mode == "c-unix-get") {
        if (::setuid(static_cast<uid_t>(num(2, 65534))) != 0) {
            out(std::string("setuid: ") + std::strerror(errno) + "\n");
            return 4;
        }
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", arg(3) ? arg(3) : "");
        if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
            out(std::string("connect: ") + std::strerror(errno) + "\n");
            return 3;
        }
        const char* req = "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        // The server may refuse (and close) before reading: no SIGPIPE, read its answer anyway.
        (void)::send(fd, req, std::strlen(req), MSG_NOSIGNAL);
        char buf[4096];
        for (;;) {
            ssize_t k = ::read(fd, buf, sizeof buf);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) break;
            write_all(1, buf, static_cast<size_t>(k));
        }
        ::close(fd);
        return 0;
    }
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
    // --- dependencies, readiness, PID 1 (issue 15) ---
    if (mode == "f-touch-after") {
        if (!arg(3)) return usage();
        sleep_ms(num(2, 0));
        const int fd = ::open(arg(3), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) return 3;
        ::close(fd);
        sleep_ms(60000);
        return 0;
    }
    if (mode == "f-exists") return arg(2) && ::access(arg(2), F_OK) == 0 ? 0 : 1;
    if (mode == "f-notify") {
        const char* path = std::getenv("NOTIFY_SOCKET");
        if (!path || !*path) return 5;
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::string p = path;
        if (p.size() >= sizeof a.sun_path) return 6;
        std::memcpy(a.sun_path, p.data(), p.size());
        if (p[0] == '@') a.sun_path[0] = '\0';
        const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + p.size());
        const int s = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        auto send = [&](const std::string& m) {
            (void)::sendto(s, m.data(), m.size(), 0, reinterpret_cast<sockaddr*>(&a), len);
        };
        auto unescape = [](std::string m) {
            for (std::size_t i; (i = m.find("\\n")) != std::string::npos;) m.replace(i, 2, "\n");
            return m;
        };
        for (int i = 2; i < argc; ++i) {
            const std::string step = argv[i];
            if (step.rfind("sleep:", 0) == 0) {
                sleep_ms(std::atol(step.c_str() + 6));
            } else if (step.rfind("ping:", 0) == 0) {
                const long ms = std::atol(step.c_str() + 5);
                const auto colon = step.find(':', 5);
                const long n = colon == std::string::npos ? 1 : std::atol(step.c_str() + colon + 1);
                for (long k = 0; k < n; ++k) {
                    send("WATCHDOG=1");
                    sleep_ms(ms);
                }
            } else if (step.rfind("other:", 0) == 0) {
                const pid_t pid = fork();
                if (pid == 0) {
                    send(unescape(step.substr(6)));
                    std::_Exit(0);
                }
                int st = 0;
                (void)::waitpid(pid, &st, 0);
            } else if (step.rfind("big:", 0) == 0) {
                send(std::string(static_cast<std::size_t>(std::atol(step.c_str() + 4)), 'x'));
            } else if (step == "mainpid") {
                const pid_t pid = fork();
                if (pid == 0) {
                    sleep_ms(60000);
                    std::_Exit(0);
                }
                send("MAINPID=" + std::to_string(pid));
            } else if (step.rfind("exit:", 0) == 0) {
                return static_cast<int>(std::atol(step.c_str() + 5));
            } else {
                send(unescape(step));
            }
        }
        sleep_ms(60000);
        return 0;
    }
    if (mode == "f-orphans") {
        const long n = num(2, 1);
        for (long k = 0; k < n; ++k) {
            const pid_t pid = fork();
            if (pid == 0) {
                if (fork() == 0) std::_Exit(0);  // the orphan: re-parented, then it exits
                std::_Exit(0);
            }
            int st = 0;
            if (pid > 0) (void)::waitpid(pid, &st, 0);
        }
        out("orphaned " + std::to_string(n) + "\n");
        sleep_ms(60000);
        return 0;
    }
    return usage();
}
