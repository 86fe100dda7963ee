#include "process/containment.hpp"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>

#include "process/cgroup.hpp"
#include "sys/ident.hpp"
#include "sys/signals.hpp"

namespace core::process {

// ------------------------------------------------------------------ public parsers

Result<std::uint64_t> parse_size(std::string_view text) {
    const std::string shown = "\"" + std::string(text) + "\"";
    if (text == "max" || text == "unlimited" || text == "infinity")
        return std::numeric_limits<std::uint64_t>::max();
    double v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || text.empty() || v < 0 || !std::isfinite(v))
        return fail(Error("size", shown + ": want bytes such as 4096, 64M, 1.5G or max", EINVAL));
    std::string_view unit = text.substr(static_cast<std::size_t>(p - text.data()));
    if (unit.size() >= 2 &&
        (unit.substr(unit.size() - 2) == "iB" || unit.substr(unit.size() - 2) == "ib"))
        unit.remove_suffix(2);
    else if (unit.size() >= 2 && (unit.back() == 'B' || unit.back() == 'b'))
        unit.remove_suffix(1);
    double mul = 1;
    if (unit.empty() || unit == "B" || unit == "b") {
        mul = 1;
    } else if (unit == "k" || unit == "K") {
        mul = 1024.0;
    } else if (unit == "m" || unit == "M") {
        mul = 1024.0 * 1024;
    } else if (unit == "g" || unit == "G") {
        mul = 1024.0 * 1024 * 1024;
    } else if (unit == "t" || unit == "T") {
        mul = 1024.0 * 1024 * 1024 * 1024;
    } else {
        return fail(Error("size", shown + ": unknown unit (want K, M, G or T)", EINVAL));
    }
    const double bytes = v * mul;
    if (bytes >= 1.8e19) return fail(Error("size", shown + ": too large", ERANGE));
    return static_cast<std::uint64_t>(std::llround(bytes));
}

std::string format_size(std::uint64_t b) {
    if (b == std::numeric_limits<std::uint64_t>::max()) return "max";
    const char* units[] = {"", "K", "M", "G", "T"};
    int u = 0;
    while (u < 4 && b != 0 && b % 1024 == 0) {
        b /= 1024;
        ++u;
    }
    return std::to_string(b) + units[u];
}

Result<int> parse_rlimit_resource(std::string_view name) {
    return sys::ident::rlimit_resource(name);
}

Result<Rlimit> parse_rlimit(std::string_view text) {
    const auto eq = text.find('=');
    if (eq == std::string_view::npos)
        return fail(
            Error("rlimit", "\"" + std::string(text) + "\": want NAME=SOFT[:HARD]", EINVAL));
    auto res = sys::ident::rlimit_resource(text.substr(0, eq));
    if (!res) return fail(res.error());
    auto value = [&](std::string_view v) -> Result<std::uint64_t> {
        if (v == "unlimited" || v == "infinity" || v == "max")
            return UINT64_MAX;  // RLIM_INFINITY on Linux
        std::uint64_t n = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (v.empty() || ec != std::errc() || p != v.data() + v.size())
            return fail(Error("rlimit",
                              "\"" + std::string(text) + "\": want a number or unlimited, got \"" +
                                  std::string(v) + "\"",
                              EINVAL));
        return n;
    };
    std::string_view rest = text.substr(eq + 1);
    const auto colon = rest.find(':');
    auto soft = value(rest.substr(0, colon));
    if (!soft) return fail(soft.error());
    std::uint64_t hard = *soft;
    if (colon != std::string_view::npos) {
        auto h = value(rest.substr(colon + 1));
        if (!h) return fail(h.error());
        hard = *h;
    }
    if (*soft > hard)
        return fail(Error("rlimit", "\"" + std::string(text) + "\": soft limit above the hard one",
                          EINVAL));
    return Rlimit{*res, *soft, hard};
}

Result<std::uint32_t> resolve_user(std::string_view name_or_uid, std::uint32_t* primary_gid,
                                   std::vector<std::uint32_t>* groups) {
    auto u = sys::ident::user(name_or_uid);
    if (!u) return fail(u.error());
    if (primary_gid) *primary_gid = u->gid;
    if (groups) {
        auto g = sys::ident::groups_of(*u);
        if (!g) return fail(g.error());
        *groups = std::move(*g);
    }
    return u->uid;
}

Result<std::uint32_t> resolve_group(std::string_view name_or_gid) {
    return sys::ident::group(name_or_gid);
}

Result<std::uint32_t> parse_umask(std::string_view text) {
    std::uint32_t v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v, 8);
    if (text.empty() || ec != std::errc() || p != text.data() + text.size() || v > 0777)
        return fail(
            Error("umask", "\"" + std::string(text) + "\": want octal 000-777, e.g. 022", EINVAL));
    return v;
}

namespace detail {

// ------------------------------------------------------------------ checks and the spec

Result<void> check_containment(const std::string& op, const RunOptions& o) {
    const Identity& id = o.identity;
    if (id.umask && *id.umask > 0777)
        return fail(
            Error(op, "option \"umask\": want 0-0777, got " + std::to_string(*id.umask), EINVAL));
    if (id.nice && (*id.nice < -20 || *id.nice > 19))
        return fail(
            Error(op, "option \"nice\": want -20…19, got " + std::to_string(*id.nice), EINVAL));
    if (id.parent_death_signal < 0 || id.parent_death_signal >= 65)
        return fail(Error(
            op,
            "option \"parentDeathSignal\": not a signal: " + std::to_string(id.parent_death_signal),
            EINVAL));
    for (const auto& r : id.rlimits) {
        if (r.resource < 0 || r.resource >= sys::ident::rlimit_count())
            return fail(Error(
                op, "option \"rlimits\": unknown resource " + std::to_string(r.resource), EINVAL));
        if (r.soft > r.hard)
            return fail(Error(op,
                              "option \"rlimits\": " + sys::ident::rlimit_name(r.resource) +
                                  ": soft limit above the hard one",
                              EINVAL));
    }
    const Limits& l = o.limits;
    if (l.cpu_max && (!(*l.cpu_max > 0) || !std::isfinite(*l.cpu_max)))
        return fail(Error(op, "option \"cpuMax\": want a positive number of cores", EINVAL));
    if (l.io_weight && (*l.io_weight < 1 || *l.io_weight > 10000))
        return fail(Error(
            op, "option \"ioWeight\": want 1…10000, got " + std::to_string(*l.io_weight), EINVAL));
    if (l.pids_max && *l.pids_max == 0)
        return fail(Error(op, "option \"pidsMax\": want at least 1", EINVAL));
    return {};
}

void apply_identity(const Identity& id, IdentitySpec& store, sys::SpawnSpec& spec) {
    if (id.groups) {
        store.groups = *id.groups;
        spec.set_groups = true;
    } else if (id.uid) {
        spec.set_groups = true;  // none: root's supplementary groups must not follow
    }
    spec.groups = store.groups.data();
    spec.ngroups = store.groups.size();
    if (id.gid) spec.gid = static_cast<long>(*id.gid);
    if (id.uid) spec.uid = static_cast<long>(*id.uid);
    if (id.umask) spec.umask = static_cast<int>(*id.umask);
    for (const auto& r : id.rlimits) store.rlimits.push_back({r.resource, r.soft, r.hard});
    spec.rlimits = store.rlimits.data();
    spec.nrlimits = store.rlimits.size();
    if (id.nice) {
        spec.set_nice = true;
        spec.nice = *id.nice;
    }
    spec.no_new_privs = id.no_new_privs;
    spec.parent_death_signal = id.parent_death_signal;
}

Result<std::shared_ptr<Cgroup>> make_cgroup(const std::string& op, const std::string& parent,
                                            const RunOptions& o) {
    auto where = find_cgroup_parent(parent);
    if (!where) return fail(Error(op, where.error().what(), where.error().code()));
    auto c = Cgroup::create(*where, o.limits);
    if (!c) return fail(Error(op, c.error().what(), c.error().code()));
    return c;
}

// ------------------------------------------------------------------ action keys

namespace {

Error bad(const std::string& op, const char* key, const std::string& want, const Value& v) {
    return Error(op, std::string("option \"") + key + "\": want " + want + ", got " + v.type_name(),
                 EINVAL);
}

Error bad_value(const std::string& op, const char* key, const Error& e) {
    return Error(op, std::string("option \"") + key + "\": " + e.message(), e.code());
}

// A string, or an integer given as its text.
Result<std::string> text_or_number(const std::string& op, const char* key, const Value& v) {
    if (auto s = v.get<std::string>()) return *s;
    std::int64_t n = 0;
    if (value_to_integer(v, n)) return std::to_string(n);
    return fail(bad(op, key, "string or integer", v));
}

Result<std::uint64_t> size_of(const std::string& op, const char* key, const Value& v) {
    std::int64_t n = 0;
    if (value_to_integer(v, n)) {
        if (n < 0)  // 0 is a size too: memorySwapMax 0 is "no swap"
            return fail(Error(op, std::string("option \"") + key + "\": want a size >= 0", EINVAL));
        return static_cast<std::uint64_t>(n);
    }
    if (auto s = v.get<std::string>()) {
        auto r = parse_size(*s);
        if (!r) return fail(bad_value(op, key, r.error()));
        return *r;
    }
    return fail(bad(op, key, "size (\"64M\" or bytes)", v));
}

}  // namespace

Result<void> parse_containment_options(const std::string& op, const Options& opts, RunOptions& o) {
    auto cgroup = opts.want_boolean(op, "cgroup", o.cgroup);
    if (!cgroup) return fail(cgroup.error());
    o.cgroup = *cgroup;
    const std::pair<const char*, std::optional<std::uint64_t>*> sizes[] = {
        {"memoryMax", &o.limits.memory_max}, {"memorySwapMax", &o.limits.memory_swap_max}};
    for (auto [key, field] : sizes) {
        if (!opts.has(key)) continue;
        auto v = opts.get(key);
        auto s = size_of(op, key, *v);
        if (!s) return fail(s.error());
        *field = *s;
    }
    if (opts.has("pidsMax")) {
        auto v = opts.get("pidsMax");
        std::int64_t n = 0;
        if (auto s = v->get<std::string>(); s && *s == "max") {
            o.limits.pids_max = std::numeric_limits<std::uint64_t>::max();
        } else if (value_to_integer(*v, n) && n > 0) {
            o.limits.pids_max = static_cast<std::uint64_t>(n);
        } else {
            return fail(
                Error(op, "option \"pidsMax\": want a positive integer or \"max\"", EINVAL));
        }
    }
    if (opts.has("cpuMax")) {
        auto v = opts.get("cpuMax");
        std::int64_t n = 0;
        double d = 0;
        if (auto p = v->get<double>()) {
            d = *p;
        } else if (value_to_integer(*v, n)) {
            d = static_cast<double>(n);
        } else if (auto s = v->get<std::string>()) {
            auto [e, ec] = std::from_chars(s->data(), s->data() + s->size(), d);
            if (ec != std::errc() || e != s->data() + s->size())
                return fail(Error(
                    op, "option \"cpuMax\": want a number of cores, got \"" + *s + "\"", EINVAL));
        } else {
            return fail(bad(op, "cpuMax", "number of cores", *v));
        }
        o.limits.cpu_max = d;
    }
    auto io = opts.want_integer(op, "ioWeight", 0);
    if (!io) return fail(io.error());
    if (opts.has("ioWeight")) o.limits.io_weight = static_cast<std::uint32_t>(*io < 0 ? 0 : *io);

    Identity& id = o.identity;
    if (opts.has("user")) {
        auto t = text_or_number(op, "user", *opts.get("user"));
        if (!t) return fail(t.error());
        std::uint32_t gid = 0;
        std::vector<std::uint32_t> groups;
        auto uid = resolve_user(*t, &gid, &groups);
        if (!uid) return fail(bad_value(op, "user", uid.error()));
        id.uid = *uid;
        if (!id.gid) id.gid = gid;  // the user's own group unless "group" says otherwise
        if (!groups.empty()) id.groups = std::move(groups);
    }
    if (opts.has("group")) {
        auto t = text_or_number(op, "group", *opts.get("group"));
        if (!t) return fail(t.error());
        auto gid = resolve_group(*t);
        if (!gid) return fail(bad_value(op, "group", gid.error()));
        id.gid = *gid;
    }
    if (opts.has("groups")) {
        auto list = opts.want_strings(op, "groups");
        if (!list) return fail(list.error());
        std::vector<std::uint32_t> g;
        for (const auto& name : *list) {
            auto n = resolve_group(name);
            if (!n) return fail(bad_value(op, "groups", n.error()));
            g.push_back(*n);
        }
        id.groups = std::move(g);
    }
    if (opts.has("umask")) {
        auto v = opts.get("umask");
        std::int64_t n = 0;
        if (auto s = v->get<std::string>()) {
            auto m = parse_umask(*s);
            if (!m) return fail(bad_value(op, "umask", m.error()));
            id.umask = *m;
        } else if (value_to_integer(*v, n) && n >= 0 && n <= 0777) {
            id.umask = static_cast<std::uint32_t>(n);
        } else {
            return fail(bad(op, "umask", "octal string such as \"022\"", *v));
        }
    }
    if (opts.has("rlimits")) {
        auto list = opts.want_strings(op, "rlimits");
        if (!list) return fail(list.error());
        for (const auto& s : *list) {
            auto r = parse_rlimit(s);
            if (!r) return fail(bad_value(op, "rlimits", r.error()));
            id.rlimits.push_back(*r);
        }
    }
    if (opts.has("nice")) {
        auto n = opts.want_integer(op, "nice");
        if (!n) return fail(n.error());
        id.nice = static_cast<int>(*n);
    }
    auto nnp = opts.want_boolean(op, "noNewPrivs", id.no_new_privs);
    if (!nnp) return fail(nnp.error());
    id.no_new_privs = *nnp;
    if (opts.has("parentDeathSignal")) {
        auto v = opts.get("parentDeathSignal");
        std::int64_t n = 0;
        if (auto s = v->get<std::string>()) {
            auto sig = sys::parse_signal(*s);
            if (!sig)
                return fail(Error(op, "option \"parentDeathSignal\": unknown signal \"" + *s + "\"",
                                  EINVAL));
            id.parent_death_signal = *sig;
        } else if (auto b = v->get<bool>()) {
            id.parent_death_signal = *b ? sys::sig_kill() : 0;
        } else if (value_to_integer(*v, n)) {
            id.parent_death_signal = static_cast<int>(n);
        } else {
            return fail(bad(op, "parentDeathSignal", "signal name or number", *v));
        }
    }
    return check_containment(op, o);
}

}  // namespace detail
}  // namespace core::process
