#include "guard.hpp"

#include <dirent.h>
#include <unistd.h>

#include <catch2/catch_test_macros.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace core::test {

const char* child_path() {
    return CORE_TEST_CHILD;
}
const char* coreproc_path() {
    return CORE_TEST_COREPROC;
}

std::set<int> open_fds() {
    std::set<int> out;
    DIR* d = opendir("/proc/self/fd");
    if (!d) return out;
    const int self = dirfd(d);
    while (dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        int fd = std::atoi(e->d_name);
        if (fd != self) out.insert(fd);
    }
    closedir(d);
    return out;
}

std::set<int> child_pids() {
    std::set<int> out;
    const int me = getpid();
    DIR* d = opendir("/proc");
    if (!d) return out;
    while (dirent* e = readdir(d)) {
        const int pid = std::atoi(e->d_name);
        if (pid <= 0) continue;
        std::ifstream f(std::string("/proc/") + e->d_name + "/stat");
        std::string line;
        if (!std::getline(f, line)) continue;
        // Field 4 is the ppid; the command (field 2) may hold spaces, so parse after ')'.
        auto close = line.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream rest(line.substr(close + 2));
        char state;
        int ppid = 0;
        rest >> state >> ppid;
        if (ppid == me) out.insert(pid);
    }
    closedir(d);
    return out;
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto step = std::chrono::milliseconds(1);
    for (;;) {
        if (pred()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return pred();
        std::this_thread::sleep_for(step);
        if (step < std::chrono::milliseconds(50)) step *= 2;
    }
}

LeakGuard::LeakGuard() : fds_(open_fds()), children_(child_pids()) {}

std::string LeakGuard::leaks(std::chrono::milliseconds timeout) const {
    std::string report;
    eventually(
        [&] {
            report.clear();
            for (int fd : open_fds())
                if (!fds_.count(fd)) {
                    char target[256] = {0};
                    const std::string link = "/proc/self/fd/" + std::to_string(fd);
                    ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
                    report += "fd " + std::to_string(fd) + " (" +
                              (n > 0 ? std::string(target, static_cast<size_t>(n)) : "?") + ") ";
                }
            for (int pid : child_pids())
                if (!children_.count(pid)) report += "child " + std::to_string(pid) + " ";
            return report.empty();
        },
        timeout);
    return report;
}

LeakGuard::~LeakGuard() {
    const std::string l = leaks();
    CHECK(l == "");
}

}  // namespace core::test
