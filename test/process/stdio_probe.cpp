// stdio_probe: a host that closed its stdio (fds 0, 1, 2), in a process of its own so the test
// runner keeps its stdio. Usage: stdio_probe service|creators.
//  - service: closes 0-2, starts a Core with the process service and runs `true`; checks that
//    0-2 are still free (none of the library's descriptors landed there), restores stdio with
//    dup2 and checks that `echo hi` and `cat` fed through a stdin pipe still work (issue 18:
//    the reaper's epoll/eventfd used to sit at 0-2 and be replaced by the dup2).
//  - creators: closes 0-2 and calls every descriptor creator of lib/sys once, checking each
//    descriptor is numbered 3 or more and 0-2 stay free.
// The spawn path is the library's: CORE_PROCESS_SPAWN in the environment chooses it. Prints
// "ok" and exits 0, or what went wrong and exits 1. Reports go to a saved copy of stdout.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/process/process.hpp"
#include "sys/fd.hpp"
#include "sys/file.hpp"
#include "sys/io.hpp"
#include "sys/net.hpp"
#include "sys/poll.hpp"
#include "sys/proc.hpp"
#include "sys/signals.hpp"

namespace cp = core::process;
namespace sys = core::sys;

namespace {

int g_out = -1;  // the saved stdout
int g_saved[3] = {-1, -1, -1};

void say(const std::string& s) {
    const std::string line = s + "\n";
    if (::write(g_out, line.data(), line.size()) < 0) {
        // Nowhere else to report: the exit code still says it.
    }
}

int fail(const std::string& why) {
    say("FAIL " + why);
    return 1;
}

// What fd names, for a failure message.
std::string what_is(int fd) {
    char buf[256] = {};
    const std::string link = "/proc/self/fd/" + std::to_string(fd);
    const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("?");
}

// Empty when 0, 1 and 2 are all closed; else which are open and to what.
std::string stdio_taken() {
    std::string s;
    for (int fd = 0; fd < 3; ++fd)
        if (::fcntl(fd, F_GETFD) >= 0) s += " fd " + std::to_string(fd) + " is " + what_is(fd);
    return s;
}

bool save_and_close_stdio() {
    for (int fd = 0; fd < 3; ++fd) {
        g_saved[fd] = ::fcntl(fd, F_DUPFD_CLOEXEC, 100);
        if (g_saved[fd] < 0) return false;
    }
    g_out = g_saved[1];
    for (int fd = 0; fd < 3; ++fd) ::close(fd);
    return true;
}

bool restore_stdio() {
    for (int fd = 0; fd < 3; ++fd)
        if (::dup2(g_saved[fd], fd) != fd) return false;
    return true;
}

int service_mode() {
    auto c = core::Core::create({cp::register_service});
    if (!c) return fail("Core::create: " + c.error().what());
    if (auto s = (*c)->startup(core::Context::background()); !s)
        return fail("startup: " + s.error().what());
    const auto ctx = core::Context::background().with_timeout(std::chrono::seconds(20));
    auto t = (*c)->process().run(ctx, "true");
    if (!t) return fail("run true with stdio closed: " + t.error().what());
    if (auto taken = stdio_taken(); !taken.empty())
        return fail("after the first start, the library holds stdio:" + taken);
    if (!restore_stdio()) return fail(std::string("dup2 back: ") + std::strerror(errno));

    auto hi = (*c)->process().run(ctx, "echo", {"hi"});
    if (!hi) return fail("echo hi after restoring stdio: " + hi.error().what());
    if (*hi != "hi\n") return fail("echo hi gave \"" + *hi + "\"");

    auto svc = (*c)->service<cp::Service>("process");
    if (!svc) return fail("no process service");
    cp::RunOptions o;
    o.command = "cat";
    o.std_in = core::process::Stdio::bytes("through a pipe");
    auto cat = svc->run(ctx, o);
    if (!cat) return fail("cat with input: " + cat.error().what());
    if (*cat != "through a pipe") return fail("cat gave \"" + *cat + "\"");
    if (auto s = (*c)->shutdown(core::Context::background()); !s)
        return fail("shutdown: " + s.error().what());
    return 0;
}

// Checks one creator's descriptor: numbered >= 3, and 0-2 still free.
bool check(const char* what, int fd, std::string& errs) {
    if (fd < 3) {
        errs += std::string(" ") + what + " got fd " + std::to_string(fd) + ";";
        return false;
    }
    if (auto taken = stdio_taken(); !taken.empty()) {
        errs += std::string(" ") + what + ":" + taken + ";";
        return false;
    }
    return true;
}

template <class R>
bool check_result(const char* what, R& r, std::string& errs) {
    if (!r) {
        errs += std::string(" ") + what + ": " + r.error().what() + ";";
        return false;
    }
    return true;
}

int creators_mode() {
    std::string errs;
    {
        auto p = sys::make_pipe();
        if (check_result("make_pipe", p, errs)) {
            check("make_pipe read end", p->read.get(), errs);
            check("make_pipe write end", p->write.get(), errs);
            auto d = p->read.dup();
            if (check_result("UniqueFd::dup", d, errs)) check("UniqueFd::dup", d->get(), errs);
        }
    }
    {
        auto e = sys::Epoll::create();
        if (check_result("Epoll::create", e, errs)) check("Epoll::create", e->fd(), errs);
        auto w = sys::EventFd::create();
        if (check_result("EventFd::create", w, errs)) check("EventFd::create", w->fd(), errs);
        auto t = sys::TimerFd::create();
        if (check_result("TimerFd::create", t, errs)) check("TimerFd::create", t->fd(), errs);
    }
    {
        auto d = sys::open_devnull();
        if (check_result("open_devnull", d, errs)) check("open_devnull", d->get(), errs);
        auto p = sys::pidfd_open(static_cast<int>(::getpid()));
        if (check_result("pidfd_open", p, errs)) check("pidfd_open", p->get(), errs);
    }
    {
        auto r = sys::file::open_read("/proc/self/status");
        if (check_result("file::open_read", r, errs)) check("file::open_read", r->get(), errs);
        auto d = sys::file::open_dir("/");
        if (check_result("file::open_dir", d, errs)) check("file::open_dir", d->get(), errs);
        char dir[] = "/tmp/core-stdio-probe-XXXXXX";
        if (::mkdtemp(dir)) {
            const std::string a = std::string(dir) + "/a", b = std::string(dir) + "/b";
            auto x = sys::file::create_exclusive(a, 0600);
            if (check_result("file::create_exclusive", x, errs))
                check("file::create_exclusive", x->get(), errs);
            auto w = sys::file::open_rw_create(b, 0600);
            if (check_result("file::open_rw_create", w, errs))
                check("file::open_rw_create", w->get(), errs);
            ::unlink(a.c_str());
            ::unlink(b.c_str());
            ::rmdir(dir);
        } else {
            errs += " mkdtemp failed;";
        }
    }
    {
        namespace net = sys::net;
        net::Endpoint ep;
        net::parse_ipv4("127.0.0.1", &ep.addr_be);
        auto l = net::tcp_listen(ep, 4);
        if (check_result("net::tcp_listen", l, errs)) {
            check("net::tcp_listen", l->get(), errs);
            auto port = net::local_port(l->get());
            if (check_result("net::local_port", port, errs)) {
                ep.port = *port;
                bool in_progress = false;
                auto c = net::tcp_connect_start(ep, &in_progress);
                if (check_result("net::tcp_connect_start", c, errs)) {
                    check("net::tcp_connect_start", c->get(), errs);
                    auto ready = sys::wait_readable(l->get(), std::chrono::seconds(10));
                    auto a = net::accept(l->get());
                    if (ready && *ready && check_result("net::accept", a, errs))
                        check("net::accept", a->get(), errs);
                }
            }
        }
        auto s = sys::SignalFd::open_blocking({sys::sig_term(), sys::sig_int()});
        if (check_result("SignalFd::open_blocking", s, errs))
            check("SignalFd::open_blocking", s->fd(), errs);
    }
    if (!errs.empty()) return fail("creators:" + errs);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: stdio_probe service|creators\n");
        return 2;
    }
    const std::string mode = argv[1];
    if (!save_and_close_stdio()) {
        std::fprintf(stderr, "stdio_probe: cannot save stdio: %s\n", std::strerror(errno));
        return 2;
    }
    int rc = 2;
    if (mode == "service") rc = service_mode();
    if (mode == "creators") rc = creators_mode();
    if (rc == 0) say("ok");
    if (rc == 2) say("FAIL unknown mode " + mode);
    return rc;
}
