#include "supervisor/probe.hpp"

#include "core/process/http.hpp"
#include "core/process/pidfile.hpp"

namespace core::process::detail {

Result<PidInfo> probe_pid_file(const std::string& path) {
    return read_pid(path);
}

Result<void> probe_url(const std::string& url, std::chrono::milliseconds timeout) {
    auto r = http_get_url(url, timeout);
    if (!r) return fail(r.error());
    if (r->status < 200 || r->status > 299) {
        std::string body = r->body.substr(0, 200);
        while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
        return fail(E("health", url + ": status " + std::to_string(r->status) +
                                    (body.empty() ? "" : ": " + body)));
    }
    return {};
}

}  // namespace core::process::detail
