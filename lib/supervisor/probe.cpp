#include "supervisor/probe.hpp"

#if CORE_SUPERVISOR_HAVE_DAEMON
#include "core/process/http.hpp"
#endif

namespace core::process::detail {

#if CORE_SUPERVISOR_HAVE_DAEMON

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

#else

Result<PidInfo> probe_pid_file(const std::string& path) {
    return fail(E("supervisor", "pid file \"" + path + "\": lib/daemon is not built"));
}

Result<void> probe_url(const std::string& url, std::chrono::milliseconds) {
    return fail(E("health", url + ": HTTP probes need lib/daemon, which is not built"));
}

#endif

}  // namespace core::process::detail
