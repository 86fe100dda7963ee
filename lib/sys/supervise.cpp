#include "sys/supervise.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>

#include "sys/fault.hpp"

namespace core::sys::sup {

Result<UniqueFd> open_append(const std::string& path, unsigned mode) {
    if (int err = fault::hit("open")) return fail(E_errno("open", path, err));
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
                          static_cast<mode_t>(mode));
    if (fd < 0) return fail(E_errno("open", path, errno));
    return UniqueFd::adopt(fd);
}

Result<std::uint64_t> file_size(int fd) {
    if (int err = fault::hit("fstat")) return fail(E_errno("fstat", "", err));
    struct stat st {};
    if (::fstat(fd, &st) != 0) return fail(E_errno("fstat", "", errno));
    return static_cast<std::uint64_t>(st.st_size);
}

Result<std::size_t> write_once(int fd, std::string_view data) {
    if (int err = fault::hit("write")) return fail(E_errno("write", "", err));
    for (;;) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n >= 0) return static_cast<std::size_t>(n);
        if (errno == EINTR) continue;  // a regular file's write is restartable
        return fail(E_errno("write", "", errno));
    }
}

Result<void> replace_file(const std::string& path, std::string_view data, unsigned mode) {
    const std::string tmp = path + ".tmp";
    if (int err = fault::hit("open")) return fail(E_errno("open", tmp, err));
    const int raw = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                           static_cast<mode_t>(mode));
    if (raw < 0) return fail(E_errno("open", tmp, errno));
    UniqueFd fd = UniqueFd::adopt(raw);
    while (!data.empty()) {
        auto n = write_once(fd.get(), data);
        if (!n) return fail(E("write", tmp, n.error()));
        data.remove_prefix(*n);
    }
    fd.reset();
    if (int err = fault::hit("rename")) return fail(E_errno("rename", tmp, err));
    if (::rename(tmp.c_str(), path.c_str()) != 0) return fail(E_errno("rename", tmp, errno));
    return {};
}

namespace {

// Field n (>= 3) of /proc/<pid>/stat as a number.
std::optional<std::uint64_t> stat_field(int pid, int n) {
    if (pid <= 0) return std::nullopt;
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(f, line)) return std::nullopt;
    // comm (field 2) may hold spaces and parentheses: fields 3… start after the last ')'.
    const auto close = line.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::size_t pos = close + 2;
    for (int field = 3; field < n; ++field) {
        pos = line.find(' ', pos);
        if (pos == std::string::npos) return std::nullopt;
        ++pos;
    }
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(line.data() + pos, line.data() + line.size(), v);
    if (ec != std::errc()) return std::nullopt;
    return v;
}

}  // namespace

std::optional<int> process_group(int pid) {
    auto v = stat_field(pid, 5);
    if (!v) return std::nullopt;
    return static_cast<int>(*v);
}

std::optional<std::uint64_t> process_start_time(int pid) {
    return stat_field(pid, 22);
}

}  // namespace core::sys::sup
