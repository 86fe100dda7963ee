#include "http/endpoint.hpp"

#include <charconv>
#include <string_view>

namespace core::http {

// "host:port" → Endpoint; host is an IPv4 literal, "localhost" or empty (127.0.0.1).
Result<sys::net::Endpoint> parse_endpoint(const std::string& op, const std::string& addr) {
    std::string_view s = addr;
    if (s.substr(0, 7) == "http://") s.remove_prefix(7);
    const std::size_t colon = s.rfind(':');
    if (colon == std::string_view::npos)
        return fail(Error(op, "\"" + addr + "\": bad address (want host:port)", EINVAL));
    std::string host(s.substr(0, colon));
    const std::string_view port_s = s.substr(colon + 1);
    unsigned port = 0;
    auto [p, ec] = std::from_chars(port_s.data(), port_s.data() + port_s.size(), port);
    if (port_s.empty() || ec != std::errc() || p != port_s.data() + port_s.size() || port > 65535)
        return fail(Error(op, "\"" + addr + "\": bad address (port must be 0-65535)", EINVAL));
    if (host.empty() || host == "localhost") host = "127.0.0.1";
    sys::net::Endpoint ep;
    if (!sys::net::parse_ipv4(host, &ep.addr_be))
        return fail(
            Error(op, "\"" + addr + "\": bad address (host must be an IPv4 address or localhost)",
                  EINVAL));
    ep.port = static_cast<std::uint16_t>(port);
    return ep;
}

// The strerror part of a sys error ("bind: 1.2.3.4:5: Permission denied" → "Permission
// denied"), so callers can say the address once.
std::string errno_text(const Error& e) {
    const std::string& msg = e.message();
    const std::size_t at = msg.rfind(": ");
    return at == std::string::npos ? msg : msg.substr(at + 2);
}

}  // namespace core::http
