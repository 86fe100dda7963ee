// The pipeline file reader. Strict by design: an unknown key is an Error (a typo such as
// "allow_faliure" would otherwise silently change what the pipeline does).
#include <cerrno>
#include <filesystem>
#include <iterator>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/options.hpp"
#include "core/process/runner.hpp"
#include "json/containment_config.hpp"
#include "json/type_name.hpp"
#include "sys/file.hpp"

namespace core::process {

namespace {

using core::json::type_name;

using nlohmann::json;

constexpr const char* kOp = "pipeline";
// A pipeline file is a handful of steps; anything this large is not one.
constexpr std::size_t kMaxFileBytes = 16u << 20;

// Builds errors that say where: `<source>: steps[2] ("build"): key "after": …`.
struct Where {
    std::string_view source;
    std::size_t index = 0;
    std::string name;

    Error at(std::string_view key, const std::string& what) const {
        std::string msg(source);
        msg += ": steps[" + std::to_string(index) + "]";
        if (!name.empty()) msg += " (\"" + name + "\")";
        if (!key.empty()) msg += ": key \"" + std::string(key) + "\"";
        msg += ": " + what;
        return E(kOp, msg);
    }
};

Result<std::string> want_string(const Where& w, std::string_view key, const json& v) {
    if (!v.is_string()) return fail(w.at(key, std::string("want string, got ") + type_name(v)));
    return v.get<std::string>();
}

Result<std::vector<std::string>> want_strings(const Where& w, std::string_view key, const json& v) {
    if (!v.is_array())
        return fail(w.at(key, std::string("want array of strings, got ") + type_name(v)));
    std::vector<std::string> out;
    out.reserve(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (!v[i].is_string())
            return fail(w.at(
                key, "element " + std::to_string(i) + ": want string, got " + type_name(v[i])));
        out.push_back(v[i].get<std::string>());
    }
    return out;
}

Result<std::vector<std::string>> want_env(const Where& w, std::string_view key, const json& v) {
    if (v.is_object()) {
        std::vector<std::string> out;
        for (auto it = v.begin(); it != v.end(); ++it) {
            if (it.key().empty() || it.key().find('=') != std::string::npos)
                return fail(w.at(key, "bad variable name \"" + it.key() + "\""));
            if (!it->is_string())
                return fail(w.at(key, "\"" + it.key() + "\": want string, got " + type_name(*it)));
            out.push_back(it.key() + "=" + it->get<std::string>());
        }
        return out;
    }
    if (!v.is_array())
        return fail(w.at(
            key, std::string("want array of \"K=V\" strings or an object, got ") + type_name(v)));
    auto list = want_strings(w, key, v);
    if (!list) return list;
    for (const std::string& kv : *list) {
        const auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0) return fail(w.at(key, "\"" + kv + "\": want K=V"));
    }
    return list;
}

Result<std::chrono::milliseconds> want_timeout(const Where& w, std::string_view key,
                                               const json& v) {
    std::chrono::nanoseconds ns{0};
    if (v.is_string()) {
        auto d = parse_duration(v.get<std::string>());
        if (!d) return fail(w.at(key, d.error().message()));
        ns = *d;
    } else if (v.is_number_unsigned()) {
        const auto ms = v.get<std::uint64_t>();
        // Keep the nanosecond count representable.
        if (ms > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max() / 1000000))
            return fail(w.at(key, "duration too large"));
        ns = std::chrono::milliseconds(static_cast<std::int64_t>(ms));
    } else if (v.is_number_integer()) {
        return fail(w.at(key, "negative duration"));
    } else {
        return fail(w.at(key, std::string("want a duration such as \"500ms\", \"2s\", \"1m\" "
                                          "or a number of milliseconds, got ") +
                                  type_name(v)));
    }
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(ns);
    return ms;
}

// What the top-level "defaults" object gives every step.
struct Defaults {
    std::string dir;
    std::vector<std::string> env;
    std::chrono::milliseconds timeout{0};
    json containment = json::object();  // its containment keys, as written (checked)
};

bool is_containment_key(std::string_view key) {
    for (const char* k : detail::containment_config_keys)
        if (key == k) return true;
    return false;
}

// The containment keys of a step over the defaults': each key replaces the default's, but the
// entries of "limits" and "rlimits" objects are merged (a step adding "pids" keeps the
// defaults' "memory").
json merge_containment(const json& defaults, const json& step) {
    json out = defaults;
    for (auto it = step.begin(); it != step.end(); ++it) {
        if (!is_containment_key(it.key())) continue;
        const bool merge_entries = it.key() == "limits" || it.key() == "rlimits";
        if (merge_entries && it->is_object() && out.contains(it.key()) &&
            out[it.key()].is_object()) {
            for (auto e = it->begin(); e != it->end(); ++e) out[it.key()][e.key()] = *e;
        } else {
            out[it.key()] = *it;
        }
    }
    return out;
}

// Reads containment keys with the supervise file's reader (one table of keys for both files).
Result<void> read_containment(const json& keys, RunSpec& s) {
    return detail::parse_containment_keys(keys, s.cgroup, s.limits, s.identity);
}

// A relative dir made absolute against base (the pipeline file's directory), when there is one.
std::string resolve_dir(const std::string& dir, std::string_view base) {
    if (dir.empty() || dir.front() == '/' || base.empty()) return dir;
    std::string out(base);
    if (out.back() != '/') out += '/';
    out += dir;
    return out;
}

// One key of a step: its name and the reader that takes its value into the spec (null: read
// elsewhere: "name" first, the containment keys together over the defaults'). The unknown-key
// Error lists this table, so a new key is one line.
struct StepKey {
    const char* name;
    Result<void> (*read)(const Where& w, const json& v, RunSpec& s);
};

Result<void> read_nonempty(const Where& w, const char* key, const json& v, std::string& dst) {
    auto r = want_string(w, key, v);
    if (!r) return fail(r.error());
    if (r->empty()) return fail(w.at(key, "empty"));
    dst = std::move(*r);
    return {};
}

using W = const Where&;
using J = const json&;
using S = RunSpec&;
const StepKey kStepKeys[] = {
    {"name", nullptr},
    {"command", [](W w, J v, S s) { return read_nonempty(w, "command", v, s.command); }},
    {"args",
     [](W w, J v, S s) -> Result<void> {
         auto r = want_strings(w, "args", v);
         if (!r) return fail(r.error());
         s.args = std::move(*r);
         return {};
     }},
    {"shell",
     [](W w, J v, S s) -> Result<void> {
         std::string line;
         if (auto r = read_nonempty(w, "shell", v, line); !r) return r;
         // The one place a shell is used, and only because the step asked for it.
         s.command = "/bin/sh";
         s.args = {"-c", std::move(line)};
         return {};
     }},
    {"dir",
     [](W w, J v, S s) -> Result<void> {
         auto r = want_string(w, "dir", v);
         if (!r) return fail(r.error());
         s.dir = std::move(*r);
         return {};
     }},
    {"env",
     [](W w, J v, S s) -> Result<void> {
         auto r = want_env(w, "env", v);
         if (!r) return fail(r.error());
         // Over the defaults' variables: the child sees the later of two equal names.
         s.env.insert(s.env.end(), r->begin(), r->end());
         return {};
     }},
    {"env_mode",
     [](W w, J v, S s) -> Result<void> {
         auto r = want_string(w, "env_mode", v);
         if (!r) return fail(r.error());
         auto m = parse_env_mode(*r);
         if (!m) return fail(w.at("env_mode", m.error().message()));
         s.env_mode = *m;
         return {};
     }},
    {"unset_env",
     [](W w, J v, S s) -> Result<void> {
         auto r = want_strings(w, "unset_env", v);
         if (!r) return fail(r.error());
         s.unset_env = std::move(*r);
         return {};
     }},
    {"after",
     [](W w, J v, S s) -> Result<void> {
         // A single name is accepted as a one-element list.
         if (v.is_string()) {
             s.after = {v.get<std::string>()};
             return {};
         }
         auto r = want_strings(w, "after", v);
         if (!r) return fail(r.error());
         s.after = std::move(*r);
         return {};
     }},
    {"allow_failure",
     [](W w, J v, S s) -> Result<void> {
         if (!v.is_boolean())
             return fail(w.at("allow_failure", std::string("want boolean, got ") + type_name(v)));
         s.allow_failure = v.get<bool>();
         return {};
     }},
    {"timeout",
     [](W w, J v, S s) -> Result<void> {
         auto r = want_timeout(w, "timeout", v);
         if (!r) return fail(r.error());
         s.timeout = *r;
         return {};
     }},
    {"description",
     [](W w, J v, S s) -> Result<void> {
         if (!v.is_string())
             return fail(w.at("description", std::string("want string, got ") + type_name(v)));
         s.description = v.get<std::string>();
         return {};
     }},
    // containment and identity (issue 13): read together, over the defaults'
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
};

const StepKey* find_step_key(const std::string& name) {
    for (const auto& k : kStepKeys)
        if (name == k.name) return &k;
    return nullptr;
}

std::string step_key_list() {
    std::string list;
    for (const auto& k : kStepKeys) list += (list.empty() ? "" : ", ") + std::string(k.name);
    return list;
}

Result<RunSpec> parse_step(const Where& where, const json& step, const Defaults& defaults) {
    Where w = where;
    if (!step.is_object())
        return fail(w.at({}, std::string("want object, got ") + type_name(step)));
    RunSpec s;
    // The name first, so every later error can carry it.
    if (auto it = step.find("name"); it != step.end()) {
        auto name = want_string(w, "name", *it);
        if (!name) return fail(name.error());
        if (name->empty()) return fail(w.at("name", "empty"));
        s.name = *name;
        w.name = *name;
    } else {
        return fail(w.at("name", "missing (every step needs a unique name)"));
    }
    const bool has_command = step.find("command") != step.end();
    const bool has_shell = step.find("shell") != step.end();
    if (has_shell && has_command)
        return fail(w.at("shell", "not with \"command\" (shell runs /bin/sh -c LINE itself)"));
    if (has_shell && step.find("args") != step.end())
        return fail(w.at("args", "not with \"shell\" (put the arguments in the shell line)"));
    if (!has_command && !has_shell)
        return fail(w.at("command", "missing (or give \"shell\": a /bin/sh command line)"));
    s.dir = defaults.dir;
    s.env = defaults.env;
    s.timeout = defaults.timeout;
    for (auto it = step.begin(); it != step.end(); ++it) {
        const StepKey* k = find_step_key(it.key());
        if (!k) return fail(w.at(it.key(), "unknown key (known: " + step_key_list() + ")"));
        if (k->read)
            if (auto r = k->read(w, *it, s); !r) return fail(r.error());
    }
    // The step's own keys first, alone, so that an error names the step's key as written.
    json own = json::object();
    for (auto it = step.begin(); it != step.end(); ++it)
        if (is_containment_key(it.key())) own[it.key()] = *it;
    if (!own.empty()) {
        RunSpec probe;
        if (auto r = read_containment(own, probe); !r) return fail(w.at({}, r.error().message()));
    }
    if (auto r = read_containment(merge_containment(defaults.containment, step), s); !r)
        return fail(w.at({}, r.error().message()));
    return s;
}

Result<Defaults> parse_defaults(const std::string& src, const json& v) {
    if (!v.is_object())
        return fail(
            E(kOp, src + ": key \"defaults\": want object, got " + std::string(type_name(v))));
    Defaults d;
    auto at = [&](std::string_view key, const std::string& what) {
        return E(kOp, src + ": defaults: key \"" + std::string(key) + "\": " + what);
    };
    for (auto it = v.begin(); it != v.end(); ++it) {
        const std::string& key = it.key();
        const json& x = *it;
        // A Where whose error text is rewritten below: the readers only know step positions.
        Where w{src, 0, {}};
        auto rewrite = [&](const Error& e) {
            const std::string prefix = src + ": steps[0]: key \"" + key + "\": ";
            std::string msg = e.message();
            if (msg.rfind(prefix, 0) == 0) msg.erase(0, prefix.size());
            return at(key, msg);
        };
        if (key == "dir") {
            auto r = want_string(w, key, x);
            if (!r) return fail(rewrite(r.error()));
            d.dir = std::move(*r);
        } else if (key == "env") {
            auto r = want_env(w, key, x);
            if (!r) return fail(rewrite(r.error()));
            d.env = std::move(*r);
        } else if (key == "timeout") {
            auto r = want_timeout(w, key, x);
            if (!r) return fail(rewrite(r.error()));
            d.timeout = *r;
        } else if (is_containment_key(key)) {
            d.containment[key] = x;
        } else {
            return fail(at(key,
                           "unknown key (known: dir, env, timeout, cgroup, limits, user, group, "
                           "groups, umask, rlimits, nice, no_new_privs, parent_death_signal)"));
        }
    }
    if (!d.containment.empty()) {
        RunSpec probe;
        if (auto r = read_containment(d.containment, probe); !r)
            return fail(E(kOp, src + ": defaults: " + r.error().message()));
    }
    return d;
}

}  // namespace

Result<std::vector<RunSpec>> parse_pipeline(std::string_view json_text, std::string_view source,
                                            std::string_view base_dir) {
    const std::string src = source.empty() ? std::string("pipeline") : std::string(source);
    json doc;
    try {
        doc = json::parse(json_text.begin(), json_text.end());
    } catch (const json::exception& e) {
        // e.what() is "[json.exception.parse_error.101] parse error at line 3, column 5: …";
        // the bracketed id helps nobody.
        std::string what = e.what();
        if (auto close = what.find("] ");
            what.rfind("[json.", 0) == 0 && close != std::string::npos)
            what.erase(0, close + 2);
        return fail(E(kOp, src + ": invalid JSON: " + what));
    }
    if (!doc.is_object())
        return fail(E(kOp, src + ": want a JSON object {\"steps\": [...]}, got " +
                               std::string(type_name(doc))));
    const json* steps = nullptr;
    Defaults defaults;
    for (auto it = doc.begin(); it != doc.end(); ++it) {
        if (it.key() == "steps") {
            steps = &*it;
        } else if (it.key() == "defaults") {
            auto d = parse_defaults(src, *it);
            if (!d) return fail(d.error());
            defaults = std::move(*d);
        } else if (it.key() == "description") {
            if (!it->is_string())
                return fail(E(kOp, src + ": key \"description\": want string, got " +
                                       std::string(type_name(*it))));
        } else {
            return fail(E(kOp, src + ": key \"" + it.key() +
                                   "\": unknown key (known: description, defaults, steps)"));
        }
    }
    if (!steps) return fail(E(kOp, src + ": key \"steps\": missing"));
    if (!steps->is_array())
        return fail(
            E(kOp, src + ": key \"steps\": want array, got " + std::string(type_name(*steps))));
    // Running nothing and reporting success would hide a broken generator or a wrong file.
    if (steps->empty())
        return fail(E(kOp, src + ": key \"steps\": empty (a pipeline needs at least one step)"));
    std::vector<RunSpec> specs;
    specs.reserve(steps->size());
    for (std::size_t i = 0; i < steps->size(); ++i) {
        Where w{src, i, {}};
        auto s = parse_step(w, (*steps)[i], defaults);
        if (!s) return fail(s.error());
        s->dir = resolve_dir(s->dir, base_dir);
        specs.push_back(std::move(*s));
    }
    // Names, dependencies and cycles: report them as the file's problem, before anything runs.
    if (auto ok = Runner::validate(specs); !ok)
        return fail(E(kOp, src + ": " + ok.error().message()));
    return specs;
}

Result<std::vector<RunSpec>> load_pipeline(const std::string& path) {
    auto text = sys::file::read_file(path, kMaxFileBytes);
    if (!text) {
        const int err = text.error().code();
        if (err == EFBIG)
            return fail(E(kOp, path + ": larger than " + std::to_string(kMaxFileBytes >> 20) +
                                   " MiB; not a pipeline file"));
        return fail(E_errno(kOp, "open \"" + path + "\"", err != 0 ? err : EIO));
    }
    // The file's directory, absolute, so a relative "dir" means the same from any cwd.
    std::error_code ec;
    std::filesystem::path base = std::filesystem::absolute(path, ec).parent_path();
    if (ec) base.clear();
    return parse_pipeline(*text, path, base.string());
}

}  // namespace core::process
