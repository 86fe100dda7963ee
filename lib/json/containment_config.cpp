#include "json/containment_config.hpp"

#include <cerrno>
#include <cmath>

#include "json/type_name.hpp"
#include "sys/signals.hpp"

namespace core::process::detail {

namespace {

using json = nlohmann::json;

Error key_err(const std::string& key, const std::string& why) {
    return Error("", "key \"" + key + "\": " + why, EINVAL);
}
Error want(const std::string& key, const char* what, const json& got) {
    return key_err(key, std::string("want ") + what + ", got " + core::json::type_name(got));
}

Result<std::string> name_or_number(const std::string& key, const json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number_unsigned()) return std::to_string(v.get<std::uint64_t>());
    return fail(want(key, "a name or a number", v));
}

Result<std::uint64_t> size_of(const std::string& key, const json& v) {
    if (v.is_number_unsigned()) return v.get<std::uint64_t>();  // 0: e.g. no swap
    if (v.is_string()) {
        auto s = parse_size(v.get<std::string>());
        if (!s) return fail(key_err(key, s.error().message()));
        return *s;
    }
    return fail(want(key, "a size (\"256M\" or a number of bytes)", v));
}

Result<void> parse_limits(const json& v, Limits& l) {
    if (!v.is_object()) return fail(want("limits", "an object", v));
    for (const auto& [key, value] : v.items()) {
        const std::string k = "limits." + key;
        if (!key.empty() && key[0] == '_') continue;
        if (key == "memory" || key == "memory_swap") {
            auto s = size_of(k, value);
            if (!s) return fail(s.error());
            (key == "memory" ? l.memory_max : l.memory_swap_max) = *s;
        } else if (key == "pids") {
            if (value.is_string() && value.get<std::string>() == "max") {
                l.pids_max = UINT64_MAX;
            } else if (value.is_number_unsigned() && value.get<std::uint64_t>() > 0) {
                l.pids_max = value.get<std::uint64_t>();
            } else {
                return fail(want(k, "a positive integer or \"max\"", value));
            }
        } else if (key == "cpu") {
            if (!value.is_number() || !(value.get<double>() > 0) ||
                !std::isfinite(value.get<double>()))
                return fail(want(k, "a positive number of cores", value));
            l.cpu_max = value.get<double>();
        } else if (key == "io_weight") {
            if (!value.is_number_unsigned() || value.get<std::uint64_t>() < 1 ||
                value.get<std::uint64_t>() > 10000)
                return fail(want(k, "an integer 1…10000", value));
            l.io_weight = static_cast<std::uint32_t>(value.get<std::uint64_t>());
        } else {
            return fail(
                key_err(k, "unknown key (known: memory, memory_swap, pids, cpu, io_weight)"));
        }
    }
    return {};
}

Result<void> parse_rlimits(const json& v, Identity& id) {
    if (!v.is_object()) return fail(want("rlimits", "an object such as {\"nofile\": 4096}", v));
    for (const auto& [key, value] : v.items()) {
        const std::string k = "rlimits." + key;
        if (!key.empty() && key[0] == '_') continue;
        std::string text;
        if (value.is_number_unsigned()) {
            text = std::to_string(value.get<std::uint64_t>());
        } else if (value.is_string()) {
            text = value.get<std::string>();
        } else {
            return fail(want(k, "a number, \"SOFT:HARD\" or \"unlimited\"", value));
        }
        auto r = parse_rlimit(key + "=" + text);
        if (!r) return fail(key_err(k, r.error().message()));
        id.rlimits.push_back(*r);
    }
    return {};
}

}  // namespace

Result<void> parse_containment_keys(const json& v, bool& cgroup, Limits& limits, Identity& id) {
    if (v.contains("cgroup")) {
        if (!v["cgroup"].is_boolean()) return fail(want("cgroup", "a boolean", v["cgroup"]));
        cgroup = v["cgroup"].get<bool>();
    }
    if (v.contains("limits"))
        if (auto r = parse_limits(v["limits"], limits); !r) return fail(r.error());
    if (v.contains("user")) {
        auto t = name_or_number("user", v["user"]);
        if (!t) return fail(t.error());
        std::uint32_t gid = 0;
        std::vector<std::uint32_t> groups;
        auto uid = resolve_user(*t, &gid, &groups);
        if (!uid) return fail(key_err("user", uid.error().message()));
        id.uid = *uid;
        if (!id.gid) id.gid = gid;
        if (!groups.empty() && !id.groups) id.groups = std::move(groups);
    }
    if (v.contains("group")) {
        auto t = name_or_number("group", v["group"]);
        if (!t) return fail(t.error());
        auto gid = resolve_group(*t);
        if (!gid) return fail(key_err("group", gid.error().message()));
        id.gid = *gid;
    }
    if (v.contains("groups")) {
        const json& g = v["groups"];
        if (!g.is_array()) return fail(want("groups", "an array of names or numbers", g));
        std::vector<std::uint32_t> out;
        for (const auto& e : g) {
            auto t = name_or_number("groups", e);
            if (!t) return fail(t.error());
            auto gid = resolve_group(*t);
            if (!gid) return fail(key_err("groups", gid.error().message()));
            out.push_back(*gid);
        }
        id.groups = std::move(out);
    }
    if (v.contains("umask")) {
        const json& u = v["umask"];
        if (!u.is_string()) return fail(want("umask", "an octal string such as \"022\"", u));
        auto m = parse_umask(u.get<std::string>());
        if (!m) return fail(key_err("umask", m.error().message()));
        id.umask = *m;
    }
    if (v.contains("rlimits"))
        if (auto r = parse_rlimits(v["rlimits"], id); !r) return fail(r.error());
    if (v.contains("nice")) {
        const json& n = v["nice"];
        if (!n.is_number_integer() || n.get<std::int64_t>() < -20 || n.get<std::int64_t>() > 19)
            return fail(want("nice", "an integer -20…19", n));
        id.nice = static_cast<int>(n.get<std::int64_t>());
    }
    if (v.contains("no_new_privs")) {
        if (!v["no_new_privs"].is_boolean())
            return fail(want("no_new_privs", "a boolean", v["no_new_privs"]));
        id.no_new_privs = v["no_new_privs"].get<bool>();
    }
    if (v.contains("parent_death_signal")) {
        const json& s = v["parent_death_signal"];
        if (s.is_string()) {
            auto sig = sys::parse_signal(s.get<std::string>());
            if (!sig)
                return fail(key_err("parent_death_signal",
                                    "unknown signal \"" + s.get<std::string>() + "\""));
            id.parent_death_signal = *sig;
        } else if (s.is_number_unsigned() && s.get<std::uint64_t>() < 65) {
            id.parent_death_signal = static_cast<int>(s.get<std::uint64_t>());
        } else {
            return fail(want("parent_death_signal", "a signal name or number", s));
        }
    }
    return {};
}

}  // namespace core::process::detail
