#include "sys/cgroup.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>

#include "sys/fault.hpp"
#include "sys/file.hpp"

namespace core::sys::cgroup {

namespace {

using Clock = std::chrono::steady_clock;

// /proc/self/mountinfo fields: id parent major:minor root mount-point options [optional…] -
// fstype source super-options. Returns the mount point of lines whose fstype is fstype.
std::vector<std::string> mounts_of(std::string_view fstype) {
    std::vector<std::string> out;
    auto text = file::read_file("/proc/self/mountinfo", std::size_t{1} << 22);
    if (!text) return out;
    std::string_view all = *text;
    while (!all.empty()) {
        const auto nl = all.find('\n');
        std::string_view line = all.substr(0, nl);
        all = nl == std::string_view::npos ? std::string_view{} : all.substr(nl + 1);
        const auto sep = line.find(" - ");
        if (sep == std::string_view::npos) continue;
        std::string_view tail = line.substr(sep + 3);
        if (tail.substr(0, tail.find(' ')) != fstype) continue;
        // The mount point is the fifth field; octal escapes (\040 for a space) decoded.
        std::string_view f = line;
        for (int i = 0; i < 4; ++i) {
            const auto sp = f.find(' ');
            if (sp == std::string_view::npos) break;
            f = f.substr(sp + 1);
        }
        f = f.substr(0, f.find(' '));
        std::string mp;
        for (std::size_t i = 0; i < f.size(); ++i) {
            if (f[i] == '\\' && i + 3 < f.size()) {
                const int v = (f[i + 1] - '0') * 64 + (f[i + 2] - '0') * 8 + (f[i + 3] - '0');
                mp.push_back(static_cast<char>(v));
                i += 3;
            } else {
                mp.push_back(f[i]);
            }
        }
        out.push_back(std::move(mp));
    }
    return out;
}

}  // namespace

Result<std::string> mount_point() {
    auto m = mounts_of("cgroup2");
    if (m.empty())
        return fail(E_errno("cgroup", "no cgroup2 file system in /proc/self/mountinfo", ENOENT));
    return m.front();
}

bool hybrid() {
    return !mounts_of("cgroup").empty();
}

Result<std::string> self_path() {
    auto text = file::read_file("/proc/self/cgroup", 1 << 16);
    if (!text) return fail(text.error());
    std::string_view all = *text;
    while (!all.empty()) {
        const auto nl = all.find('\n');
        std::string_view line = all.substr(0, nl);
        all = nl == std::string_view::npos ? std::string_view{} : all.substr(nl + 1);
        if (line.substr(0, 3) == "0::") return std::string(line.substr(3));
    }
    return fail(E_errno("cgroup", "no v2 entry in /proc/self/cgroup", ENOENT));
}

Result<void> make(const std::string& path) {
    if (int err = fault::hit("mkdir")) return fail(E_errno("mkdir", path, err));
    if (::mkdir(path.c_str(), 0755) != 0) return fail(E_errno("mkdir", path, errno));
    return {};
}

Result<void> remove(const std::string& path) {
    if (int err = fault::hit("rmdir")) return fail(E_errno("rmdir", path, err));
    if (::rmdir(path.c_str()) != 0 && errno != ENOENT) return fail(E_errno("rmdir", path, errno));
    return {};
}

Result<UniqueFd> open_dir(const std::string& path) {
    if (int err = fault::hit("openat")) return fail(E_errno("open", path, err));
    const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return fail(E_errno("open", path, errno));
    return UniqueFd::adopt(fd);
}

int missing(const std::string& path) noexcept {
    return ::access(path.c_str(), F_OK) == 0 ? 0 : errno;
}

bool writable(const std::string& path) {
    return ::access(path.c_str(), W_OK) == 0 &&
           ::access((path + "/cgroup.procs").c_str(), W_OK) == 0;
}

Result<UniqueFd> open_file(int dirfd, const char* name) {
    if (int err = fault::hit("openat")) return fail(E_errno("open", name, err));
    // Kernfs files: no EINTR on open.
    const int fd = ::openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(E_errno("open", name, errno));
    return UniqueFd::adopt(fd);
}

Result<std::string> read(int dirfd, const char* name) {
    auto fd = open_file(dirfd, name);
    if (!fd) return fail(fd.error());
    if (int err = fault::hit("cgroup_read")) return fail(E_errno("read", name, err));
    auto text = file::read_all(fd->get(), std::size_t{1} << 22);
    if (!text) return fail(E_errno("read", name, text.error().code()));
    return text;
}

Result<void> write(int dirfd, const char* name, std::string_view value) {
    if (int err = fault::hit("cgroup_write")) return fail(E_errno("write", name, err));
    const int fd = ::openat(dirfd, name, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fail(E_errno("open", name, errno));
    UniqueFd owned = UniqueFd::adopt(fd);
    ssize_t n;
    // A kernfs write is not interrupted part-way; EINTR before it started is safe to retry.
    do {
        n = ::write(fd, value.data(), value.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return fail(E_errno("write", std::string(name) + " \"" + std::string(value) + "\"", errno));
    return {};
}

long long keyed(std::string_view text, std::string_view key) {
    while (!text.empty()) {
        const auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        if (line.size() > key.size() && line.substr(0, key.size()) == key &&
            line[key.size()] == ' ') {
            long long v = -1;
            auto rest = line.substr(key.size() + 1);
            std::from_chars(rest.data(), rest.data() + rest.size(), v);
            return v;
        }
    }
    return -1;
}

Result<std::vector<int>> procs(int dirfd) {
    auto text = read(dirfd, "cgroup.procs");
    if (!text) return fail(text.error());
    std::vector<int> out;
    const char* p = text->data();
    const char* end = p + text->size();
    while (p < end) {
        int v = 0;
        auto [next, ec] = std::from_chars(p, end, v);
        if (ec == std::errc()) out.push_back(v);
        p = next;
        while (p < end && (*p == '\n' || *p == ' ')) ++p;
        if (ec != std::errc()) ++p;
    }
    return out;
}

Result<bool> wait_unpopulated(int events_fd, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    char buf[256];
    for (;;) {
        if (int err = fault::hit("cgroup_read")) return fail(E_errno("read", "cgroup.events", err));
        // pread from 0: the file is regenerated on each read; a kernfs read is not interrupted.
        const ssize_t n = ::pread(events_fd, buf, sizeof buf - 1, 0);
        if (n < 0) return fail(E_errno("read", "cgroup.events", errno));
        if (keyed(std::string_view(buf, static_cast<std::size_t>(n)), "populated") == 0)
            return true;
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) return false;
        if (int err = fault::hit("poll")) return fail(E_errno("poll", "cgroup.events", err));
        pollfd p{events_fd, POLLPRI, 0};
        // EINTR: the loop re-reads the file and recomputes the time left.
        if (::poll(&p, 1, static_cast<int>(left.count())) < 0 && errno != EINTR)
            return fail(E_errno("poll", "cgroup.events", errno));
    }
}

}  // namespace core::sys::cgroup
