// limits_probe: runs the process service under a lowered resource limit, in a process of its
// own so the test runner keeps its limits. Usage: limits_probe nofile|nproc CHILD_HELPER.
// Starts sleepers until start() fails, then checks the failure is a clear Error with the
// expected errno, kills and reaps everything, and checks the Service is still usable and that
// no descriptor leaked. Prints "ok started=<n> error=<what>" and exits 0, or what went wrong and
// exits 1. nproc needs root (it drops to uid/gid 65534, since root ignores RLIMIT_NPROC); without
// root it prints "skip: …" and exits 77.
#include <dirent.h>
#include <grp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/process/process.hpp"

namespace cp = core::process;

namespace {

int count_fds() {
    DIR* d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    while (dirent* e = readdir(d))
        if (e->d_name[0] != '.') ++n;
    closedir(d);
    return n - 1;
}

int fail(const std::string& why) {
    std::printf("FAIL %s\n", why.c_str());
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) return fail("usage: limits_probe nofile|nproc CHILD_HELPER");
    const std::string mode = argv[1];
    const std::string helper = argv[2];
    int want_errno = 0;

    if (mode == "nproc") {
        if (geteuid() != 0) {
            std::printf("skip: RLIMIT_NPROC is only testable as root (to drop to another uid)\n");
            return 77;
        }
        // Root is exempt from RLIMIT_NPROC: become nobody first. The helper must then be
        // executable by nobody, whatever the permissions of the build tree: the caller passes
        // a copy in a world-readable temporary directory.
        rlimit rl{8, 8};
        if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            return fail(std::string("drop privileges: ") + std::strerror(errno));
        if (setrlimit(RLIMIT_NPROC, &rl) != 0)
            return fail(std::string("setrlimit NPROC: ") + std::strerror(errno));
        want_errno = EAGAIN;
    } else if (mode == "nofile") {
        // Room for the Core's own descriptors and a handful of children, not more.
        const rlim_t n = static_cast<rlim_t>(count_fds() + 24);
        rlimit rl{n, n};
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return fail(std::string("setrlimit NOFILE: ") + std::strerror(errno));
        want_errno = EMFILE;
    } else {
        return fail("unknown mode " + mode);
    }

    auto c = core::Core::create({cp::register_service});
    if (!c) return fail("create: " + c.error().what());
    if (auto s = (*c)->startup(core::Context::background()); !s)
        return fail("startup: " + s.error().what());
    auto svc = (*c)->service<cp::Service>("process");
    // One run first, so the reaper's own descriptors (made on first use) are in the baseline.
    cp::RunOptions warm;
    warm.command = helper;
    warm.args = {"exit", "0"};
    if (auto w = svc->run(core::Context::background(), warm); !w)
        return fail("warm-up run: " + w.error().what());
    const int fds_before = count_fds();

    cp::RunOptions o;
    o.command = helper;
    o.args = {"sleep", "30000"};
    o.grace_period = std::chrono::milliseconds(0);
    std::vector<std::shared_ptr<cp::ManagedProcess>> procs;
    core::Error err;
    for (int i = 0; i < 100000; ++i) {
        auto p = svc->start(core::Context::background(), o);
        if (!p) {
            err = p.error();
            break;
        }
        procs.push_back(*p);
    }
    if (err.what().empty()) return fail("start never failed under the limit");
    if (err.code() != want_errno)
        return fail("want errno " + std::to_string(want_errno) + ", got " +
                    std::to_string(err.code()) + ": " + err.what());
    if (err.what().find(helper) == std::string::npos &&
        err.what().find("process") == std::string::npos)
        return fail("error names neither the op nor the command: " + err.what());

    for (auto& p : procs) (void)p->kill();
    for (auto& p : procs) {
        auto info = p->wait();
        if (info.status != cp::Status::killed)
            return fail(std::string("want killed, got ") + cp::to_string(info.status));
    }
    const std::size_t started = procs.size();
    procs.clear();
    svc->clear();

    // Usable again once the children are gone.
    cp::RunOptions echo;
    echo.command = helper;
    echo.args = {"print", "again"};
    auto r = svc->run(core::Context::background(), echo);
    if (!r) return fail("run after the limit: " + r.error().what());
    if (*r != "again\n") return fail("run after the limit: output " + *r);
    if (count_fds() != fds_before)
        return fail("descriptors: " + std::to_string(fds_before) + " before, " +
                    std::to_string(count_fds()) + " after");
    if (auto s = (*c)->shutdown(core::Context::background()); !s)
        return fail("shutdown: " + s.error().what());
    std::printf("ok started=%zu error=%s\n", started, err.what().c_str());
    return 0;
}
