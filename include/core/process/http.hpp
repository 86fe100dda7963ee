// The HTTP/1.1 client of the library (lib/http) and the response type it shares with the
// servers: what the Supervisor's health probes and `coreproc` use to send a GET, with no
// dependency on the daemon side (HealthServer, in core/process/health.hpp).
#pragma once

#include <chrono>
#include <string>

#include "core/export.hpp"
#include "core/result.hpp"

namespace core::process {

struct HttpResponse {
    int status = 0;
    std::string body;
    std::string content_type = "text/plain; charset=utf-8";  // server side only
};

// A minimal HTTP/1.0-style GET client (Connection: close). addr is "host:port" or
// "http://host:port"; host an IPv4 literal or "localhost". One deadline covers connect, write
// and read. The body is capped at 1 MiB. Errors name the address and the step:
// "http.get: 127.0.0.1:9: connect: Connection refused", "...: timed out after 500ms",
// "...: malformed response".
[[nodiscard]] CORE_API Result<HttpResponse> http_get(const std::string& addr,
                                                     const std::string& path,
                                                     std::chrono::milliseconds timeout);
// As http_get with a full URL "http://host:port/path" (path defaults to "/").
[[nodiscard]] CORE_API Result<HttpResponse> http_get_url(const std::string& url,
                                                         std::chrono::milliseconds timeout);

}  // namespace core::process
