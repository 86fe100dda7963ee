#include "containment_flags.hpp"

#include <CLI/CLI.hpp>

#include <cerrno>
#include <charconv>
#include <cmath>

#include "core/process/containment.hpp"

namespace coreproc {

void add_containment_flags(CLI::App& run, ContainmentArgs& a) {
    run.add_flag("--cgroup", a.cgroup,
                 "Run in a cgroup v2 of its own: the whole tree is killed and waited for");
    run.add_option("--memory-max", a.memory_max, "cgroup memory.max (64M, 1G); implies --cgroup");
    run.add_option("--pids-max", a.pids_max, "cgroup pids.max (tasks); implies --cgroup");
    run.add_option("--cpu-max", a.cpu_max, "cgroup cpu.max in cores (1.5); implies --cgroup");
    run.add_option("--user", a.user, "Run as this user (name or uid; its group and groups too)");
    run.add_option("--group", a.group, "Run with this group (name or gid)");
    run.add_option("--umask", a.umask, "The command's umask (octal, e.g. 027)");
    run.add_option("--rlimit", a.rlimits, "A resource limit NAME=SOFT[:HARD], e.g. nofile=64")
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    run.add_option("--nice", a.nice, "The command's nice value (-20…19)");
}

std::string apply_containment_flags(const ContainmentArgs& a, core::process::RunOptions& o) {
    namespace cp = core::process;
    o.cgroup = a.cgroup;
    if (!a.memory_max.empty()) {
        auto s = cp::parse_size(a.memory_max);
        if (!s) return "--memory-max: " + s.error().message();
        o.limits.memory_max = *s;
    }
    if (!a.pids_max.empty()) {
        if (a.pids_max == "max") {
            o.limits.pids_max = UINT64_MAX;
        } else {
            std::uint64_t n = 0;
            auto [p, ec] =
                std::from_chars(a.pids_max.data(), a.pids_max.data() + a.pids_max.size(), n);
            if (ec != std::errc() || p != a.pids_max.data() + a.pids_max.size() || n == 0)
                return "--pids-max: want a positive integer or max, got \"" + a.pids_max + "\"";
            o.limits.pids_max = n;
        }
    }
    if (!a.cpu_max.empty()) {
        double d = 0;
        auto [p, ec] = std::from_chars(a.cpu_max.data(), a.cpu_max.data() + a.cpu_max.size(), d);
        if (ec != std::errc() || p != a.cpu_max.data() + a.cpu_max.size() || !(d > 0) ||
            !std::isfinite(d))
            return "--cpu-max: want a positive number of cores, got \"" + a.cpu_max + "\"";
        o.limits.cpu_max = d;
    }
    if (!a.user.empty()) {
        std::uint32_t gid = 0;
        std::vector<std::uint32_t> groups;
        auto uid = cp::resolve_user(a.user, &gid, &groups);
        if (!uid) return "--user: " + uid.error().message();
        o.identity.uid = *uid;
        o.identity.gid = gid;
        if (!groups.empty()) o.identity.groups = std::move(groups);
    }
    if (!a.group.empty()) {
        auto gid = cp::resolve_group(a.group);
        if (!gid) return "--group: " + gid.error().message();
        o.identity.gid = *gid;
    }
    if (!a.umask.empty()) {
        auto m = cp::parse_umask(a.umask);
        if (!m) return "--umask: " + m.error().message();
        o.identity.umask = *m;
    }
    for (const auto& r : a.rlimits) {
        auto l = cp::parse_rlimit(r);
        if (!l) return "--rlimit: " + l.error().message();
        o.identity.rlimits.push_back(*l);
    }
    if (!a.nice.empty()) {
        int n = 0;
        auto [p, ec] = std::from_chars(a.nice.data(), a.nice.data() + a.nice.size(), n);
        if (ec != std::errc() || p != a.nice.data() + a.nice.size() || n < -20 || n > 19)
            return "--nice: want -20…19, got \"" + a.nice + "\"";
        o.identity.nice = n;
    }
    return {};
}

}  // namespace coreproc
