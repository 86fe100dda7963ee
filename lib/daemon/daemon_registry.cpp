#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "core/process/daemon_registry.hpp"
#include "sys/fd.hpp"
#include "sys/file.hpp"

namespace core::process {

namespace file = core::sys::file;
using sys::UniqueFd;
using json = nlohmann::json;
namespace chr = std::chrono;

namespace {

constexpr unsigned kDirMode = 0700;   // per-user state; nobody else may plant entries
constexpr unsigned kFileMode = 0644;  // entries hold no secrets; other users' tools may list
constexpr std::size_t kMaxEntryBytes = 64 * 1024;

std::string key_of(const std::string& code, const std::string& daemon) {
    return code + "/" + daemon;
}

bool needs_escape(unsigned char c) noexcept {
    return c == '%' || c == '-' || c == '/' || c < 0x20 || c == 0x7f;
}

std::string escape(const std::string& s) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (unsigned char c : s) {
        if (needs_escape(c)) {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += static_cast<char>(c);
        }
    }
    // "." and ".." would name the directory itself or its parent.
    if (out == ".") return "%2E";
    if (out == "..") return "%2E%2E";
    return out;
}

Error bad_key(const char* key, const std::string& why) {
    return Error("registry", std::string("key \"") + key + "\": " + why, EINVAL);
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

}  // namespace

// --- RFC 3339 ---

std::string format_rfc3339(chr::system_clock::time_point t) {
    // time_point{} stands for Go's zero time.Time, which Go writes as year 1.
    if (t == chr::system_clock::time_point{}) return "0001-01-01T00:00:00Z";
    const auto ns = chr::duration_cast<chr::nanoseconds>(t.time_since_epoch());
    auto day = chr::floor<chr::days>(chr::sys_time<chr::nanoseconds>(ns));
    const chr::year_month_day ymd(day);
    auto rest = chr::sys_time<chr::nanoseconds>(ns) - day;
    const auto h = chr::duration_cast<chr::hours>(rest);
    rest -= h;
    const auto m = chr::duration_cast<chr::minutes>(rest);
    rest -= m;
    const auto s = chr::duration_cast<chr::seconds>(rest);
    rest -= s;
    const long long frac = rest.count();
    char buf[64];
    int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02lld",
                          static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                          static_cast<unsigned>(ymd.day()), static_cast<int>(h.count()),
                          static_cast<int>(m.count()), static_cast<long long>(s.count()));
    std::string out(buf, static_cast<std::size_t>(n));
    if (frac != 0) {
        // Go's RFC3339Nano: up to 9 digits, trailing zeros dropped.
        std::snprintf(buf, sizeof buf, ".%09lld", frac);
        std::string f(buf);
        while (f.back() == '0') f.pop_back();
        out += f;
    }
    out += 'Z';
    return out;
}

Result<chr::system_clock::time_point> parse_rfc3339(const std::string& text) {
    auto bad = [&](const char* why) {
        return fail(Error("rfc3339", "\"" + text.substr(0, 64) + "\": " + why, EINVAL));
    };
    const std::string_view s = text;
    // YYYY-MM-DDTHH:MM:SS
    if (s.size() < 20) return bad("too short");
    auto num = [&](std::size_t at, std::size_t len, int* out) {
        int v = 0;
        for (std::size_t i = at; i < at + len; ++i) {
            if (!is_digit(s[i])) return false;
            v = v * 10 + (s[i] - '0');
        }
        *out = v;
        return true;
    };
    int Y, M, D, hh, mm, ss;
    if (!num(0, 4, &Y) || s[4] != '-' || !num(5, 2, &M) || s[7] != '-' || !num(8, 2, &D) ||
        (s[10] != 'T' && s[10] != 't') || !num(11, 2, &hh) || s[13] != ':' || !num(14, 2, &mm) ||
        s[16] != ':' || !num(17, 2, &ss))
        return bad("not RFC 3339");
    if (hh > 23 || mm > 59 || ss > 60) return bad("time out of range");
    const chr::year_month_day ymd{chr::year{Y}, chr::month{static_cast<unsigned>(M)},
                                  chr::day{static_cast<unsigned>(D)}};
    if (!ymd.ok()) return bad("no such date");
    std::size_t i = 19;
    long long frac = 0;
    if (i < s.size() && s[i] == '.') {
        ++i;
        int digits = 0;
        while (i < s.size() && is_digit(s[i])) {
            if (digits < 9) {
                frac = frac * 10 + (s[i] - '0');
            }
            ++digits;
            ++i;
        }
        if (digits == 0) return bad("empty fraction");
        for (int d = digits; d < 9; ++d) frac *= 10;
    }
    long long offset_s = 0;
    if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
        ++i;
    } else if (i + 6 == s.size() && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int oh, om;
        if (!num(i + 1, 2, &oh) || !num(i + 4, 2, &om) || oh > 23 || om > 59)
            return bad("bad offset");
        offset_s = (oh * 3600LL + om * 60LL) * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return bad("missing time zone");
    }
    if (i != s.size()) return bad("trailing bytes");
    if (Y == 1 && M == 1 && D == 1 && hh == 0 && mm == 0 && ss == 0 && frac == 0 && offset_s == 0)
        return chr::system_clock::time_point{};  // Go's zero time
    // system_clock counts int64 nanoseconds: about 1678..2261. Outside that, refuse.
    if (Y < 1678 || Y > 2261) return bad("year out of range");
    const auto days = chr::sys_days(ymd).time_since_epoch();
    const long long secs =
        chr::duration_cast<chr::seconds>(days).count() + hh * 3600LL + mm * 60LL + ss - offset_s;
    const auto d = chr::seconds(secs) + chr::nanoseconds(frac);
    return chr::system_clock::time_point(chr::duration_cast<chr::system_clock::duration>(d));
}

// --- JSON ---

std::string to_json(const DaemonEntry& e) {
    // Keys in go-process's struct order; dump(2) matches json.MarshalIndent(v, "", "  ").
    json j = json::object();
    j["code"] = e.code;
    j["daemon"] = e.daemon;
    j["pid"] = e.pid;
    j["health"] = e.health;
    j["project"] = e.project;
    j["binary"] = e.binary;
    j["started"] = format_rfc3339(e.started);
    // nlohmann sorts object keys; build the text by hand from dumped values to keep Go's order.
    std::string out = "{\n";
    const char* keys[] = {"code", "daemon", "pid", "health", "project", "binary", "started"};
    for (std::size_t i = 0; i < std::size(keys); ++i) {
        out += "  \"";
        out += keys[i];
        out += "\": ";
        out += j[keys[i]].dump(-1, ' ', false, json::error_handler_t::replace);
        out += i + 1 < std::size(keys) ? ",\n" : "\n";
    }
    out += "}\n";
    return out;
}

Result<DaemonEntry> parse_daemon_entry(const std::string& text) {
    if (text.size() > kMaxEntryBytes) return fail(Error("registry", "entry too large", EFBIG));
    json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return fail(Error("registry", "not valid JSON", EINVAL));
    if (!j.is_object()) return fail(Error("registry", "not a JSON object", EINVAL));
    DaemonEntry e;
    auto str = [&](const char* key, std::string* out, bool required) -> Result<void> {
        auto it = j.find(key);
        if (it == j.end() || it->is_null()) {
            if (required) return fail(bad_key(key, "missing"));
            return {};
        }
        if (!it->is_string()) return fail(bad_key(key, "not a string"));
        *out = it->get_ref<const std::string&>();
        return {};
    };
    if (auto r = str("code", &e.code, true); !r) return tl::unexpected(r.error());
    if (auto r = str("daemon", &e.daemon, true); !r) return tl::unexpected(r.error());
    if (auto r = str("health", &e.health, false); !r) return tl::unexpected(r.error());
    if (auto r = str("project", &e.project, false); !r) return tl::unexpected(r.error());
    if (auto r = str("binary", &e.binary, false); !r) return tl::unexpected(r.error());
    if (e.code.empty()) return fail(bad_key("code", "empty"));
    if (e.daemon.empty()) return fail(bad_key("daemon", "empty"));
    auto pid = j.find("pid");
    if (pid == j.end()) return fail(bad_key("pid", "missing"));
    if (!pid->is_number_integer()) return fail(bad_key("pid", "not an integer"));
    if (pid->is_number_unsigned()) {
        const auto v = pid->get<std::uint64_t>();
        if (v == 0 || v > 0x7fffffffULL) return fail(bad_key("pid", "out of range"));
        e.pid = static_cast<int>(v);
    } else {
        const auto v = pid->get<std::int64_t>();
        if (v <= 0 || v > 0x7fffffffLL) return fail(bad_key("pid", "out of range"));
        e.pid = static_cast<int>(v);
    }
    std::string started;
    if (auto r = str("started", &started, false); !r) return tl::unexpected(r.error());
    if (!started.empty()) {
        auto t = parse_rfc3339(started);
        if (!t) return fail(bad_key("started", t.error().message()));
        e.started = *t;
    }
    return e;
}

// --- DaemonRegistry ---

DaemonRegistry::DaemonRegistry(std::string dir)
    : dir_(dir.empty() ? default_dir() : std::move(dir)) {
    while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
}

std::string DaemonRegistry::default_dir() {
    // std::getenv: the registry is read at start-up, not while other threads change the
    // environment (setenv in a multithreaded host is its own bug).
    for (const char* var : {"HOME", "TMPDIR"}) {
        const char* v = std::getenv(var);
        if (v && v[0] == '/') return std::string(v) + "/.core/daemons";
    }
    return "/tmp/.core/daemons";
}

std::string DaemonRegistry::file_name(const std::string& code, const std::string& daemon) {
    return escape(code) + "-" + escape(daemon) + ".json";
}

Result<void> DaemonRegistry::register_entry(const DaemonEntry& entry) {
    constexpr const char* op = "registry.register";
    if (entry.code.empty()) return fail(Error(op, "empty code", EINVAL));
    if (entry.daemon.empty()) return fail(Error(op, "empty daemon name", EINVAL));
    if (entry.pid <= 0) return fail(Error(op, "pid must be positive", EINVAL));
    if (auto r = file::make_dirs(dir_, kDirMode); !r) return fail(E(op, dir_, r.error()));
    // A shared fallback like /tmp/.core/daemons could have been planted by another user.
    if (auto r = file::check_private_dir(dir_); !r)
        return fail(E(op, "unsafe directory", r.error()));
    const std::string final_path = dir_ + "/" + file_name(entry.code, entry.daemon);
    // A unique temp name in the same directory (rename is atomic only within a file system).
    static std::atomic<unsigned> seq{0};
    const std::string tmp = dir_ + "/." + file_name(entry.code, entry.daemon) + ".tmp." +
                            std::to_string(file::self_pid()) + "." + std::to_string(seq++);
    auto fd = file::create_exclusive(tmp, kFileMode);
    if (!fd) return fail(E(op, final_path, fd.error()));
    Result<void> w = file::write_all(fd->get(), to_json(entry));
    if (w) w = file::fsync(fd->get());
    fd->reset();
    if (w) w = file::rename(tmp, final_path);
    if (!w) {
        // The previous file (if any) is untouched: only the temp file was written.
        (void)file::unlink(tmp);
        return fail(E(op, final_path, w.error()));
    }
    // Make the rename itself durable. A failure here leaves a complete file either way.
    if (auto dfd = file::open_dir(dir_); dfd) {
        if (auto r = file::fsync(dfd->get()); !r) return fail(E(op, dir_, r.error()));
    }
    (void)entries_.set(key_of(entry.code, entry.daemon), entry);
    return {};
}

Result<void> DaemonRegistry::unregister(const std::string& code, const std::string& daemon) {
    constexpr const char* op = "registry.unregister";
    if (code.empty() || daemon.empty()) return fail(Error(op, "empty code or daemon name", EINVAL));
    (void)entries_.remove(key_of(code, daemon));
    const std::string path = dir_ + "/" + file_name(code, daemon);
    if (auto r = file::unlink(path); !r) {
        if (r.error().code() == ENOENT)
            return fail(Error(op, "not registered: " + key_of(code, daemon), ENOENT));
        return fail(E(op, path, r.error()));
    }
    return {};
}

namespace {

Result<DaemonEntry> read_entry(const std::string& path) {
    auto fd = file::open_read(path);
    if (!fd) return tl::unexpected(fd.error());
    auto text = file::read_all(fd->get(), kMaxEntryBytes);
    if (!text) return tl::unexpected(text.error());
    return parse_daemon_entry(*text);
}

// Removes a dead daemon's file. It is read again first: between our first read and now, a new
// instance may have registered under the same name (an atomic rename over the old file), and
// its entry must survive. What remains is a window of one read and one unlink.
void prune(const std::string& path, int dead_pid) {
    auto again = read_entry(path);
    if (again && again->pid == dead_pid && !file::process_alive(dead_pid)) (void)file::unlink(path);
}

}  // namespace

Result<DaemonEntry> DaemonRegistry::get(const std::string& code, const std::string& daemon) {
    constexpr const char* op = "registry.get";
    const std::string key = key_of(code, daemon);
    const std::string path = dir_ + "/" + file_name(code, daemon);
    auto e = read_entry(path);
    if (!e) {
        if (e.error().code() == ENOENT) {
            (void)entries_.remove(key);
            return fail(Error(op, "not found: " + key, ENOENT));
        }
        return fail(E(op, path, e.error()));
    }
    if (!file::process_alive(e->pid)) {
        prune(path, e->pid);
        (void)entries_.remove(key);
        return fail(Error(
            op, "not found: " + key + " (pid " + std::to_string(e->pid) + " is gone; entry pruned)",
            ENOENT));
    }
    (void)entries_.set(key, *e);
    return e;
}

Result<ListResult> DaemonRegistry::list() {
    constexpr const char* op = "registry.list";
    ListResult out;
    auto names = file::list_dir(dir_);
    if (!names) {
        if (names.error().code() == ENOENT) return out;
        return fail(E(op, dir_, names.error()));
    }
    std::sort(names->begin(), names->end());
    for (const std::string& name : *names) {
        // Our temp files start with '.'; anything not *.json is not an entry.
        if (name.empty() || name.front() == '.') continue;
        if (name.size() < 6 || name.compare(name.size() - 5, 5, ".json") != 0) continue;
        const std::string path = dir_ + "/" + name;
        auto e = read_entry(path);
        if (!e) {
            if (e.error().code() == ENOENT) continue;  // removed meanwhile
            out.problems.push_back({path, e.error()});
            continue;
        }
        const std::string key = key_of(e->code, e->daemon);
        if (!file::process_alive(e->pid)) {
            prune(path, e->pid);
            (void)entries_.remove(key);
            continue;
        }
        (void)entries_.set(key, *e);
        out.entries.push_back(std::move(*e));
    }
    std::sort(out.entries.begin(), out.entries.end(), [](const auto& a, const auto& b) {
        return std::tie(a.code, a.daemon) < std::tie(b.code, b.daemon);
    });
    // The mirror follows the directory: entries other processes removed go from memory too.
    std::set<std::string> live;
    for (const auto& e : out.entries) live.insert(key_of(e.code, e.daemon));
    entries_.remove_if(
        [&](const std::string& key, const DaemonEntry&) { return !live.count(key); });
    return out;
}

}  // namespace core::process
