// Test-only helpers for the daemon tests: a temporary directory and a spawned helper process
// with pipes (raw POSIX on purpose: tests may, and these must not depend on the process
// Service under test elsewhere).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

extern char** environ;

namespace core::test {

class TempDir {
  public:
    TempDir() {
        std::string tmpl = std::filesystem::temp_directory_path() / "core-daemon-test-XXXXXX";
        char* p = ::mkdtemp(tmpl.data());
        if (p) path_ = p;
    }
    ~TempDir() {
        std::error_code ec;
        if (!path_.empty()) std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }

  private:
    std::string path_;
};

// A child process with its stdin and stdout on pipes. The destructor kills (SIGKILL) and reaps
// it if the test did not.
class Spawned {
  public:
    Spawned(const std::string& exe, const std::vector<std::string>& args) {
        int in[2], out[2];
        if (::pipe2(in, O_CLOEXEC) != 0) return;
        if (::pipe2(out, O_CLOEXEC) != 0) {
            ::close(in[0]);
            ::close(in[1]);
            return;
        }
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        std::vector<std::string> argv_s{exe};
        argv_s.insert(argv_s.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : argv_s) argv.push_back(a.data());
        argv.push_back(nullptr);
        // An empty mask and default dispositions: the test thread may have signals blocked.
        posix_spawnattr_t at;
        posix_spawnattr_init(&at);
        sigset_t none, def;
        sigemptyset(&none);
        sigemptyset(&def);
        sigaddset(&def, SIGTERM);
        sigaddset(&def, SIGINT);
        sigaddset(&def, SIGPIPE);
        posix_spawnattr_setsigmask(&at, &none);
        posix_spawnattr_setsigdefault(&at, &def);
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        if (::posix_spawn(&pid_, exe.c_str(), &fa, &at, argv.data(), environ) != 0) pid_ = -1;
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&at);
        ::close(in[0]);
        ::close(out[1]);
        stdin_ = in[1];
        stdout_ = out[0];
    }
    ~Spawned() {
        close_stdin();
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            (void)wait();
        }
        if (stdout_ >= 0) ::close(stdout_);
    }
    Spawned(const Spawned&) = delete;
    Spawned& operator=(const Spawned&) = delete;

    int pid() const { return pid_; }
    void close_stdin() {
        if (stdin_ >= 0) ::close(stdin_);
        stdin_ = -1;
    }
    // One line from stdout (without '\n'); empty on EOF or timeout.
    std::string read_line(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            if (auto nl = buf_.find('\n'); nl != std::string::npos) {
                std::string line = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                return line;
            }
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return {};
            pollfd p{stdout_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
            char b[512];
            ssize_t n = ::read(stdout_, b, sizeof b);
            if (n <= 0) {
                std::string rest = std::move(buf_);
                buf_.clear();
                return rest;
            }
            buf_.append(b, static_cast<std::size_t>(n));
        }
    }
    // Waits for exit; returns the raw wait status (-1 if already reaped).
    int wait() {
        if (pid_ <= 0) return -1;
        int st = 0;
        while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
        return st;
    }

  private:
    pid_t pid_ = -1;
    int stdin_ = -1;
    int stdout_ = -1;
    std::string buf_;
};

// The daemon test helper program (test/daemon/daemon_helper.cpp).
inline const char* daemon_helper_path() {
    return CORE_TEST_DAEMON_HELPER;
}

// A PID that certainly names no process: a child that exited and was reaped. (PIDs are not
// reused until the counter wraps, far beyond a test's life.)
inline int dead_pid() {
    pid_t pid = -1;
    char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
    if (::posix_spawn(&pid, "/bin/true", nullptr, nullptr, argv, environ) != 0) return 999999;
    int st;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return pid;
}

}  // namespace core::test
