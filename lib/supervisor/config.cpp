// The `coreproc supervise` file reader. Strict by design: a typo in a key ("restrat") would
// otherwise silently give the default, so unknown keys are errors; keys starting with '_' are
// ignored so that a file can carry comments.
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <iterator>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "core/options.hpp"
#include "core/process/supervisor.hpp"
#include "json/containment_config.hpp"
#include "json/type_name.hpp"
#include "sys/file.hpp"

namespace core::process {

namespace {

using core::json::type_name;

using json = nlohmann::json;

constexpr const char* kOp = "supervise.config";
constexpr double kMaxMs = 365.0 * 24 * 3600 * 1000;  // as validate(): one year
constexpr std::size_t kMaxFile = 16u << 20;

// Where we are, for messages: `"f.json": daemons[1] ("web")`.
struct Where {
    std::string source;
    std::string daemon;  // empty at the top level

    Error err(const std::string& key, const std::string& why) const {
        std::string m = "\"" + source + "\": ";
        if (!daemon.empty()) m += daemon + ": ";
        m += "key \"" + key + "\": " + why;
        return E(kOp, m);
    }
    Error want(const std::string& key, const char* what, const json& got) const {
        return err(key, std::string("want ") + what + ", got " + type_name(got));
    }
};

bool is_comment(const std::string& key) {
    return !key.empty() && key[0] == '_';
}

Result<void> check_keys(const Where& w, const std::string& prefix, const json& obj,
                        std::initializer_list<const char*> known) {
    for (const auto& [key, value] : obj.items()) {
        if (is_comment(key)) continue;
        bool ok = false;
        for (const char* k : known) ok = ok || key == k;
        if (!ok) {
            std::string list;
            for (const char* k : known) list += (list.empty() ? "" : ", ") + std::string(k);
            return fail(w.err(prefix + key, "unknown key (known: " + list + ")"));
        }
    }
    return {};
}

Result<std::string> get_string(const Where& w, const std::string& key, const json& v) {
    if (!v.is_string()) return fail(w.want(key, "a string", v));
    return v.get<std::string>();
}

Result<std::vector<std::string>> get_strings(const Where& w, const std::string& key,
                                             const json& v) {
    if (!v.is_array()) return fail(w.want(key, "an array of strings", v));
    std::vector<std::string> out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (!v[i].is_string())
            return fail(w.want(key + "[" + std::to_string(i) + "]", "a string", v[i]));
        out.push_back(v[i].get<std::string>());
    }
    return out;
}

Result<std::vector<std::string>> get_env(const Where& w, const std::string& key, const json& v) {
    if (v.is_object()) {
        std::vector<std::string> out;
        for (const auto& [k, val] : v.items()) {
            if (!val.is_string()) return fail(w.want(key + "." + k, "a string", val));
            out.push_back(k + "=" + val.get<std::string>());
        }
        return out;
    }
    if (!v.is_array()) return fail(w.want(key, "an array of \"K=V\" strings or an object", v));
    return get_strings(w, key, v);
}

Result<double> get_number(const Where& w, const std::string& key, const json& v) {
    if (!v.is_number()) return fail(w.want(key, "a number", v));
    const double d = v.get<double>();
    if (!std::isfinite(d)) return fail(w.err(key, "not a finite number"));
    return d;
}

Result<unsigned> get_count(const Where& w, const std::string& key, const json& v,
                           unsigned max = 1000000) {
    if (!v.is_number_integer() && !v.is_number_unsigned())
        return fail(w.want(key, "a whole number", v));
    if (v.is_number_unsigned() ? v.get<std::uint64_t>() > max
                               : (v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > max))
        return fail(w.err(key, "must be from 0 to " + std::to_string(max) + ", got " + v.dump()));
    return static_cast<unsigned>(v.get<std::int64_t>());
}

// "500ms", "2s", "1m" (core::parse_duration) or a number of milliseconds.
Result<std::chrono::milliseconds> get_duration(const Where& w, const std::string& key,
                                               const json& v) {
    double ms = 0;
    if (v.is_string()) {
        auto d = parse_duration(v.get<std::string>());
        if (!d) return fail(w.err(key, d.error().message()));
        ms = static_cast<double>(d->count()) / 1e6;
    } else if (v.is_number()) {
        ms = v.get<double>();
        if (!std::isfinite(ms) || ms < 0)
            return fail(w.err(key, "must be a non-negative duration, got " + v.dump()));
    } else {
        return fail(w.want(key, "a duration (\"500ms\", \"2s\", \"1m\" or milliseconds)", v));
    }
    if (ms > kMaxMs) return fail(w.err(key, "must be at most 365 days, got " + v.dump()));
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::floor(ms)));
}

Result<int> get_signal(const Where& w, const std::string& key, const json& v) {
    std::string text;
    if (v.is_string())
        text = v.get<std::string>();
    else if (v.is_number_integer() || v.is_number_unsigned())
        text = v.dump();
    else
        return fail(w.want(key, "a signal name (\"SIGTERM\", \"TERM\") or number", v));
    auto sig = parse_signal(text);
    if (!sig) return fail(w.err(key, sig.error().message()));
    return *sig;
}

Result<void> parse_backoff(const Where& w, const json& v, BackoffPolicy& b) {
    if (!v.is_object()) return fail(w.want("backoff", "an object", v));
    if (auto r = check_keys(w, "backoff.", v, {"initial", "factor", "max", "jitter"}); !r) return r;
    if (v.contains("initial")) {
        auto d = get_duration(w, "backoff.initial", v["initial"]);
        if (!d) return fail(d.error());
        b.initial = *d;
    }
    if (v.contains("max")) {
        auto d = get_duration(w, "backoff.max", v["max"]);
        if (!d) return fail(d.error());
        b.max = *d;
    }
    if (v.contains("factor")) {
        auto n = get_number(w, "backoff.factor", v["factor"]);
        if (!n) return fail(n.error());
        b.factor = *n;
    }
    if (v.contains("jitter")) {
        auto n = get_number(w, "backoff.jitter", v["jitter"]);
        if (!n) return fail(n.error());
        b.jitter = *n;
    }
    return {};
}

Result<void> parse_start_limit(const Where& w, const json& v, StartLimit& s) {
    if (!v.is_object()) return fail(w.want("start_limit", "an object", v));
    if (auto r = check_keys(w, "start_limit.", v, {"burst", "interval"}); !r) return r;
    if (v.contains("burst")) {
        auto n = get_count(w, "start_limit.burst", v["burst"]);
        if (!n) return fail(n.error());
        s.burst = *n;
    }
    if (v.contains("interval")) {
        auto d = get_duration(w, "start_limit.interval", v["interval"]);
        if (!d) return fail(d.error());
        s.interval = *d;
    }
    return {};
}

Result<void> parse_health(const Where& w, const json& v, HealthSpec& h) {
    if (!v.is_object()) return fail(w.want("health", "an object", v));
    if (auto r = check_keys(w, "health.", v,
                            {"url", "command", "interval", "timeout", "failures", "start_grace"});
        !r)
        return r;
    if (v.contains("url")) {
        auto s = get_string(w, "health.url", v["url"]);
        if (!s) return fail(s.error());
        h.url = *s;
    }
    if (v.contains("command")) {
        auto s = get_strings(w, "health.command", v["command"]);
        if (!s) return fail(s.error());
        if (s->empty()) return fail(w.err("health.command", "must not be empty"));
        h.command = *s;
    }
    if (!h.url.empty() && !h.command.empty())
        return fail(w.err("health", "set either \"url\" or \"command\", not both"));
    if (!h.enabled()) return fail(w.err("health", "needs \"url\" or \"command\""));
    for (const char* key : {"interval", "timeout", "start_grace"}) {
        if (!v.contains(key)) continue;
        auto d = get_duration(w, std::string("health.") + key, v[key]);
        if (!d) return fail(d.error());
        if (std::string_view(key) == "interval") h.interval = *d;
        if (std::string_view(key) == "timeout") h.timeout = *d;
        if (std::string_view(key) == "start_grace") h.start_grace = *d;
    }
    if (v.contains("failures")) {
        auto n = get_count(w, "health.failures", v["failures"]);
        if (!n) return fail(n.error());
        h.failures = *n;
    }
    return {};
}

// A number of bytes, or "512K", "10M", "1G" (powers of 1024; a trailing "B"/"iB" allowed).
Result<std::uint64_t> get_size(const Where& w, const std::string& key, const json& v) {
    constexpr std::uint64_t kMax = std::uint64_t{1} << 50;
    if (v.is_number_unsigned() || (v.is_number_integer() && v.get<std::int64_t>() >= 0)) {
        const auto n = v.get<std::uint64_t>();
        if (n > kMax) return fail(w.err(key, "too large: " + v.dump()));
        return n;
    }
    if (!v.is_string()) return fail(w.want(key, "a size (bytes, or \"512K\", \"10M\", \"1G\")", v));
    std::string t = v.get<std::string>();
    for (const char* suffix : {"iB", "B"})
        if (t.size() > std::strlen(suffix) &&
            t.compare(t.size() - std::strlen(suffix), std::string::npos, suffix) == 0) {
            t.resize(t.size() - std::strlen(suffix));
            break;
        }
    std::uint64_t mult = 1;
    if (!t.empty()) {
        switch (t.back()) {
            case 'K':
            case 'k':
                mult = 1u << 10;
                break;
            case 'M':
            case 'm':
                mult = 1u << 20;
                break;
            case 'G':
            case 'g':
                mult = 1u << 30;
                break;
            default:
                break;
        }
        if (mult != 1) t.pop_back();
    }
    std::uint64_t n = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
    if (t.empty() || ec != std::errc() || p != t.data() + t.size())
        return fail(
            w.err(key, "want a size (bytes, or \"512K\", \"10M\", \"1G\"), got " + v.dump()));
    if (n > kMax / mult) return fail(w.err(key, "too large: " + v.dump()));
    return n * mult;
}

Result<void> parse_log(const Where& w, const json& v, LogSpec& l) {
    if (!v.is_object()) return fail(w.want("log", "an object", v));
    if (auto r = check_keys(w, "log.", v,
                            {"dir", "file", "max_size", "backups", "timestamps", "separate"});
        !r)
        return r;
    for (const char* key : {"dir", "file"}) {
        if (!v.contains(key)) continue;
        auto str = get_string(w, std::string("log.") + key, v[key]);
        if (!str) return fail(str.error());
        if (str->empty()) return fail(w.err(std::string("log.") + key, "must not be empty"));
        (std::string_view(key) == "dir" ? l.dir : l.file) = *str;
    }
    if (!l.dir.empty() && !l.file.empty())
        return fail(w.err("log", "set either \"dir\" or \"file\", not both"));
    if (v.contains("max_size")) {
        auto n = get_size(w, "log.max_size", v["max_size"]);
        if (!n) return fail(n.error());
        l.max_size = *n;
    }
    if (v.contains("backups")) {
        auto n = get_count(w, "log.backups", v["backups"], 1000);
        if (!n) return fail(n.error());
        l.backups = *n;
    }
    for (const char* key : {"timestamps", "separate"}) {
        if (!v.contains(key)) continue;
        if (!v[key].is_boolean())
            return fail(w.want(std::string("log.") + key, "true or false", v[key]));
        (std::string_view(key) == "timestamps" ? l.timestamps : l.separate) = v[key].get<bool>();
    }
    return {};
}

// One key of a daemon in the supervise file: its name and the reader that takes its value
// into the spec (null: read elsewhere, "name" first and the containment keys together by
// parse_containment_keys). The unknown-key Error lists this table, so a new key is one line.
struct FileKey {
    const char* name;
    Result<void> (*read)(const Where& w, const json& v, DaemonSpec& s);
};

Result<void> read_string_key(const Where& w, const char* key, const json& v, std::string& dst) {
    auto str = get_string(w, key, v);
    if (!str) return fail(str.error());
    dst = *str;
    return {};
}
Result<void> read_strings_key(const Where& w, const char* key, const json& v,
                              std::vector<std::string>& dst) {
    auto list = get_strings(w, key, v);
    if (!list) return fail(list.error());
    dst = std::move(*list);
    return {};
}
Result<void> read_ms_key(const Where& w, const char* key, const json& v,
                         std::chrono::milliseconds& dst) {
    auto d = get_duration(w, key, v);
    if (!d) return fail(d.error());
    dst = *d;
    return {};
}

using W = const Where&;
using J = const json&;
using S = DaemonSpec&;
const FileKey kDaemonKeys[] = {
    {"name", nullptr},
    {"command", [](W w, J v, S s) { return read_string_key(w, "command", v, s.command); }},
    {"args", [](W w, J v, S s) { return read_strings_key(w, "args", v, s.args); }},
    {"dir", [](W w, J v, S s) { return read_string_key(w, "dir", v, s.dir); }},
    {"env",
     [](W w, J v, S s) -> Result<void> {
         auto list = get_env(w, "env", v);
         if (!list) return fail(list.error());
         s.env = std::move(*list);
         return {};
     }},
    {"env_mode",
     [](W w, J v, S s) -> Result<void> {
         auto mode = get_string(w, "env_mode", v);
         if (!mode) return fail(mode.error());
         auto m = parse_env_mode(*mode);
         if (!m) return fail(w.err("env_mode", m.error().message()));
         s.env_mode = *m;
         return {};
     }},
    {"unset_env", [](W w, J v, S s) { return read_strings_key(w, "unset_env", v, s.unset_env); }},
    {"pidfile", [](W w, J v, S s) { return read_string_key(w, "pidfile", v, s.pid_file); }},
    {"pid_file", [](W w, J v, S s) { return read_string_key(w, "pid_file", v, s.pid_file); }},
    {"restart",
     [](W w, J v, S s) -> Result<void> {
         auto str = get_string(w, "restart", v);
         if (!str) return fail(str.error());
         auto p = parse_restart_policy(*str);
         if (!p) return fail(w.err("restart", p.error().message()));
         s.restart = *p;
         return {};
     }},
    {"backoff", [](W w, J v, S s) { return parse_backoff(w, v, s.backoff); }},
    {"reset_after", [](W w, J v, S s) { return read_ms_key(w, "reset_after", v, s.reset_after); }},
    {"start_limit", [](W w, J v, S s) { return parse_start_limit(w, v, s.start_limit); }},
    {"health", [](W w, J v, S s) { return parse_health(w, v, s.health); }},
    {"stop_signal",
     [](W w, J v, S s) -> Result<void> {
         auto sig = get_signal(w, "stop_signal", v);
         if (!sig) return fail(sig.error());
         s.stop_signal = *sig;
         return {};
     }},
    {"stop_timeout",
     [](W w, J v, S s) { return read_ms_key(w, "stop_timeout", v, s.stop_timeout); }},
    {"log", [](W w, J v, S s) { return parse_log(w, v, s.log); }},
    // containment and identity (issue 13): parse_containment_keys reads them together
    {"cgroup", nullptr},
    {"limits", nullptr},
    {"user", nullptr},
    {"group", nullptr},
    {"groups", nullptr},
    {"umask", nullptr},
    {"rlimits", nullptr},
    {"nice", nullptr},
    {"no_new_privs", nullptr},
    {"parent_death_signal", nullptr},
    // dependencies and readiness (issue 15)
    {"after", [](W w, J v, S s) { return read_strings_key(w, "after", v, s.after); }},
    {"requires", [](W w, J v, S s) { return read_strings_key(w, "requires", v, s.requires_); }},
    {"notify",
     [](W w, J v, S s) -> Result<void> {
         if (!v.is_boolean()) return fail(w.want("notify", "true or false", v));
         s.notify = v.get<bool>();
         return {};
     }},
    {"watchdog", [](W w, J v, S s) { return read_ms_key(w, "watchdog", v, s.watchdog); }},
    {"start_timeout",
     [](W w, J v, S s) { return read_ms_key(w, "start_timeout", v, s.start_timeout); }},
};

const FileKey* find_key(const std::string& name) {
    for (const auto& k : kDaemonKeys)
        if (name == k.name) return &k;
    return nullptr;
}

std::string daemon_key_list() {
    std::string list;
    for (const auto& k : kDaemonKeys) list += (list.empty() ? "" : ", ") + std::string(k.name);
    return list;
}

Result<DaemonSpec> parse_daemon(const std::string& source, std::size_t index, const json& v) {
    Where w{source, "daemons[" + std::to_string(index) + "]"};
    if (!v.is_object())
        return fail(w.err("daemons[" + std::to_string(index) + "]",
                          std::string("want an object, got ") + type_name(v)));
    DaemonSpec s;
    if (!v.contains("name")) return fail(w.err("name", "missing"));
    auto name = get_string(w, "name", v["name"]);
    if (!name) return fail(name.error());
    s.name = *name;
    w.daemon += " (\"" + s.name + "\")";

    for (const auto& [key, value] : v.items()) {
        if (is_comment(key)) continue;
        const FileKey* k = find_key(key);
        if (!k) return fail(w.err(key, "unknown key (known: " + daemon_key_list() + ")"));
        if (k->read)
            if (auto r = k->read(w, value, s); !r) return fail(r.error());
    }
    if (!v.contains("command")) return fail(w.err("command", "missing"));
    if (auto r = core::process::detail::parse_containment_keys(v, s.cgroup, s.limits, s.identity);
        !r)
        return fail(E(kOp, "\"" + source + "\": " + w.daemon + ": " + r.error().message()));
    // The semantic checks (ranges, name characters, …) are validate()'s, as for add().
    if (auto r = validate(s); !r)
        return fail(E(kOp, "\"" + source + "\": " + w.daemon + ": " + r.error().message()));
    return s;
}

}  // namespace

Result<std::vector<DaemonSpec>> parse_supervise_config(std::string_view json_text,
                                                       std::string_view source) {
    const std::string src(source);
    const Where top{src, ""};
    json doc;
    try {
        doc = json::parse(json_text);
    } catch (const json::exception& ex) {
        return fail(E(kOp, "\"" + src + "\": not valid JSON: " + ex.what()));
    }
    if (!doc.is_object())
        return fail(E(kOp, "\"" + src + "\": want a JSON object {\"daemons\": [...]}, got " +
                               std::string(type_name(doc))));
    if (auto r = check_keys(top, "", doc, {"daemons"}); !r) return fail(r.error());
    if (!doc.contains("daemons")) return fail(top.err("daemons", "missing"));
    const json& list = doc["daemons"];
    if (!list.is_array()) return fail(top.want("daemons", "an array", list));

    std::vector<DaemonSpec> out;
    std::set<std::string> seen;
    for (std::size_t i = 0; i < list.size(); ++i) {
        auto spec = parse_daemon(src, i, list[i]);
        if (!spec) return fail(spec.error());
        if (!seen.insert(spec->name).second)
            return fail(E(kOp, "\"" + src + "\": daemons[" + std::to_string(i) +
                                   "]: key \"name\": "
                                   "duplicate daemon name \"" +
                                   spec->name + "\""));
        out.push_back(std::move(*spec));
    }
    // Unknown names and cycles are the file's problem, refused before anything starts.
    if (auto r = validate_dependencies(out); !r)
        return fail(E(kOp, "\"" + src + "\": " + r.error().message()));
    return out;
}

Result<std::vector<DaemonSpec>> load_supervise_config(const std::string& path) {
    auto text = sys::file::read_file(path, kMaxFile);
    if (!text) {
        const int err = text.error().code();
        if (err == EFBIG) return fail(E(kOp, "\"" + path + "\": larger than 16 MiB"));
        return fail(E_errno(kOp, "open \"" + path + "\"", err != 0 ? err : EIO));
    }
    return parse_supervise_config(*text, path);
}

}  // namespace core::process
