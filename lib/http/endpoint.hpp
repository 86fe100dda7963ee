// Addresses for lib/http's server and client: "host:port" (or "http://host:port") with host an
// IPv4 literal, "localhost" or empty (127.0.0.1), and the errno text of a lib/sys Error.
#pragma once

#include <string>

#include "core/result.hpp"
#include "sys/net.hpp"

namespace core::http {

// "host:port" → Endpoint. Errors (EINVAL, under op): "\"x\": bad address (want host:port)",
// "… (port must be 0-65535)", "… (host must be an IPv4 address or localhost)".
Result<sys::net::Endpoint> parse_endpoint(const std::string& op, const std::string& addr);

// The strerror part of a sys error ("bind: 1.2.3.4:5: Permission denied" → "Permission
// denied"), so callers can say the address once.
std::string errno_text(const Error& e);

}  // namespace core::http
