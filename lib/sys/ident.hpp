// Names of users, groups and resource limits, for the identity options: the user database
// through glibc's reentrant lookups (getpwnam_r, getgrnam_r, getgrouplist; NSS may be consulted),
// in the parent, never in a child. Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace core::sys::ident {

struct User {
    std::uint32_t uid = 0;
    std::uint32_t gid =
        0;             // the primary group (passwd entry); that of uid when numeric and unknown
    std::string name;  // empty for a number without an entry
};

// A user by name or by number ("www-data", "65534"). A number needs no passwd entry (then gid is
// the same number). Errors: ENOENT naming an unknown user; the lookup's errno.
Result<User> user(std::string_view name_or_uid);
// A group by name or number. Errors: ENOENT naming an unknown group.
Result<std::uint32_t> group(std::string_view name_or_gid);
// The supplementary groups of a user (getgrouplist, the primary group included), as initgroups
// would set them; empty when the user has no name.
Result<std::vector<std::uint32_t>> groups_of(const User& u);
// An RLIMIT_* number by name: "nofile", "NOFILE" or "RLIMIT_NOFILE". Errors: EINVAL naming it.
Result<int> rlimit_resource(std::string_view name);
// RLIM_NLIMITS: resource numbers are 0 … rlimit_count() - 1.
int rlimit_count() noexcept;
// The short lower-case name of an RLIMIT_* number ("nofile"), or its number as text.
std::string rlimit_name(int resource);

}  // namespace core::sys::ident
