#include "sys/ident.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>

#include "sys/fault.hpp"

namespace core::sys::ident {

namespace {

bool number(std::string_view s, std::uint32_t& out) {
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

struct Named {
    const char* name;
    int resource;
};
constexpr Named kRlimits[] = {
    {"cpu", RLIMIT_CPU},           {"fsize", RLIMIT_FSIZE},
    {"data", RLIMIT_DATA},         {"stack", RLIMIT_STACK},
    {"core", RLIMIT_CORE},         {"rss", RLIMIT_RSS},
    {"nproc", RLIMIT_NPROC},       {"nofile", RLIMIT_NOFILE},
    {"memlock", RLIMIT_MEMLOCK},   {"as", RLIMIT_AS},
    {"locks", RLIMIT_LOCKS},       {"sigpending", RLIMIT_SIGPENDING},
    {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
    {"rtprio", RLIMIT_RTPRIO},     {"rttime", RLIMIT_RTTIME},
};

}  // namespace

Result<User> user(std::string_view name_or_uid) {
    if (int err = fault::hit("getpwnam_r"))
        return fail(E_errno("user", "\"" + std::string(name_or_uid) + "\"", err));
    std::uint32_t id = 0;
    const bool numeric = number(name_or_uid, id);
    passwd pw{};
    passwd* found = nullptr;
    std::vector<char> buf(16384);
    int rc;
    const std::string name(name_or_uid);
    for (;;) {
        rc = numeric ? ::getpwuid_r(id, &pw, buf.data(), buf.size(), &found)
                     : ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
        if (rc != ERANGE || buf.size() > (1u << 22)) break;
        buf.resize(buf.size() * 2);
    }
    if (found) return User{pw.pw_uid, pw.pw_gid, pw.pw_name};
    if (numeric) return User{id, id, {}};  // a bare number needs no entry
    if (rc != 0 && rc != ENOENT && rc != ESRCH)
        return fail(E_errno("user", "\"" + name + "\"", rc));
    return fail(E_errno("user", "\"" + name + "\": no such user", ENOENT));
}

Result<std::uint32_t> group(std::string_view name_or_gid) {
    std::uint32_t id = 0;
    if (number(name_or_gid, id)) return id;
    if (int err = fault::hit("getgrnam_r"))
        return fail(E_errno("group", "\"" + std::string(name_or_gid) + "\"", err));
    ::group gr{};
    ::group* found = nullptr;
    std::vector<char> buf(16384);
    const std::string name(name_or_gid);
    int rc;
    for (;;) {
        rc = ::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found);
        if (rc != ERANGE || buf.size() > (1u << 22)) break;
        buf.resize(buf.size() * 2);
    }
    if (found) return static_cast<std::uint32_t>(gr.gr_gid);
    if (rc != 0 && rc != ENOENT && rc != ESRCH)
        return fail(E_errno("group", "\"" + name + "\"", rc));
    return fail(E_errno("group", "\"" + name + "\": no such group", ENOENT));
}

Result<std::vector<std::uint32_t>> groups_of(const User& u) {
    std::vector<std::uint32_t> out;
    if (u.name.empty()) return out;
    int n = 64;
    std::vector<gid_t> g(static_cast<std::size_t>(n));
    for (int tries = 0; tries < 8; ++tries) {
        int want = n;
        if (::getgrouplist(u.name.c_str(), u.gid, g.data(), &want) >= 0) {
            g.resize(static_cast<std::size_t>(want));
            for (gid_t x : g) out.push_back(x);
            return out;
        }
        n = want > n ? want : n * 2;
        g.resize(static_cast<std::size_t>(n));
    }
    return fail(E_errno("groups", "\"" + u.name + "\"", ERANGE));
}

Result<int> rlimit_resource(std::string_view name) {
    std::string low;
    for (char c : name)
        low.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    if (low.rfind("rlimit_", 0) == 0) low.erase(0, 7);
    for (const auto& r : kRlimits)
        if (low == r.name) return r.resource;
    return fail(Error("rlimit",
                      "unknown resource \"" + std::string(name) +
                          "\" (want nofile, nproc, core, as, stack, cpu, fsize, data, "
                          "memlock, locks, sigpending, msgqueue, nice, rtprio, rttime, rss)",
                      EINVAL));
}

int rlimit_count() noexcept {
    return RLIM_NLIMITS;
}

std::string rlimit_name(int resource) {
    for (const auto& r : kRlimits)
        if (r.resource == resource) return r.name;
    return std::to_string(resource);
}

}  // namespace core::sys::ident
