#include "sys/procstat.hpp"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string_view>

#include "sys/cgroup.hpp"
#include "sys/file.hpp"

namespace core::sys::procstat {

namespace {

constexpr std::size_t kMax = std::size_t{1} << 16;

// The "0::/path" line of a /proc/…/cgroup text; empty without one.
std::string v2_path(std::string_view text) {
    while (!text.empty()) {
        const auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        if (line.substr(0, 3) == "0::") return std::string(line.substr(3));
    }
    return {};
}

bool to_u64(std::string_view s, std::uint64_t& out) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && p != s.data();
}

// "VmRSS:\t  1234 kB" → bytes.
bool vm_rss(std::string_view status, std::uint64_t& bytes) {
    const auto at = status.find("\nVmRSS:");
    if (at == std::string_view::npos) return false;
    std::uint64_t kb = 0;
    if (!to_u64(status.substr(at + 7), kb)) return false;
    bytes = kb * 1024;
    return true;
}

// /proc/PID/stat: "pid (comm) state ppid …"; comm may hold spaces and parentheses, so the
// fields are counted from the last ')'. utime is field 14, stime 15, starttime 22 (1-based).
bool stat_fields(std::string_view stat, std::uint64_t& utime, std::uint64_t& stime,
                 std::uint64_t& start) {
    const auto close = stat.rfind(')');
    if (close == std::string_view::npos) return false;
    std::string_view rest = stat.substr(close + 1);
    int field = 2;  // the text after ')' starts with field 3 (state)
    bool ok_u = false, ok_s = false, ok_t = false;
    while (!rest.empty()) {
        while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
        if (rest.empty()) break;
        ++field;
        const auto sp = rest.find(' ');
        const std::string_view f = rest.substr(0, sp);
        if (field == 14) ok_u = to_u64(f, utime);
        if (field == 15) ok_s = to_u64(f, stime);
        if (field == 22) {
            ok_t = to_u64(f, start);
            break;
        }
        rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp);
    }
    return ok_u && ok_s && ok_t;
}

}  // namespace

Result<Usage> of_pid(int pid) {
    if (pid <= 0) return fail(Error("procstat", "pid must be positive", EINVAL));
    const std::string dir = "/proc/" + std::to_string(pid);
    auto stat = file::read_file(dir + "/stat", kMax);
    if (!stat) return fail(E("procstat", dir + "/stat", stat.error()));
    Usage u;
    std::uint64_t utime = 0, stime = 0, start = 0;
    const long tck = ::sysconf(_SC_CLK_TCK);
    const bool have_stat = stat_fields(*stat, utime, stime, start) && tck > 0;
    if (have_stat) {
        u.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(tck);
        u.cpu_source = "proc";
        if (auto up = file::read_file("/proc/uptime", 256)) {
            double boot = 0;
            const std::string_view t = *up;
            auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), boot);
            (void)p;
            const double began = static_cast<double>(start) / static_cast<double>(tck);
            if (ec == std::errc{} && boot >= began) u.uptime_seconds = boot - began;
        }
    }
    if (auto status = file::read_file(dir + "/status", kMax)) {
        std::uint64_t rss = 0;
        if (vm_rss(*status, rss)) {
            u.memory_bytes = rss;
            u.memory_source = "proc";
        }
    }
    // The cgroup: only one of its own (see the header), and only what its files say.
    auto cg = file::read_file(dir + "/cgroup", kMax);
    auto self = cgroup::self_path();
    auto mount = cgroup::mount_point();
    if (cg && self && mount) {
        u.cgroup = v2_path(*cg);
        if (!u.cgroup.empty() && u.cgroup != *self && u.cgroup != "/") {
            const std::string base = *mount + u.cgroup;
            if (auto mem = file::read_file(base + "/memory.current", 256)) {
                std::uint64_t b = 0;
                if (to_u64(*mem, b)) {
                    u.memory_bytes = b;
                    u.memory_source = "cgroup";
                }
            }
            if (auto cpu = file::read_file(base + "/cpu.stat", 4096)) {
                const long long usec = cgroup::keyed(*cpu, "usage_usec");
                if (usec >= 0) {
                    u.cpu_seconds = static_cast<double>(usec) / 1e6;
                    u.cpu_source = "cgroup";
                }
            }
        }
    }
    return u;
}

}  // namespace core::sys::procstat
