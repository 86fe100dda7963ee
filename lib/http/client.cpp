// The HTTP/1.1 GET client (core/process/http.hpp): one non-blocking socket, one deadline over
// connect, write and read.
#include <chrono>
#include <string>
#include <string_view>

#include "core/process/http.hpp"
#include "http/endpoint.hpp"
#include "http/parser.hpp"
#include "sys/net.hpp"
#include "sys/poll.hpp"

namespace core::process {

namespace net = core::sys::net;
using Clock = std::chrono::steady_clock;
using http::errno_text;
using http::parse_endpoint;
using http::parse_response;
using http::response_complete;

namespace {

std::string ms_text(std::chrono::milliseconds t) {
    return std::to_string(t.count()) + "ms";
}

Error step_error(const std::string& addr, const char* step, const Error& e) {
    return Error("http.get", addr + ": " + step + ": " + errno_text(e), e.code());
}

}  // namespace

Result<HttpResponse> http_get(const std::string& addr, const std::string& path,
                              std::chrono::milliseconds timeout) {
    constexpr std::size_t kMaxResponse = (std::size_t{1} << 20) + 16 * 1024;
    auto ep = parse_endpoint("http.get", addr);
    if (!ep) return tl::unexpected(ep.error());
    if (path.empty() || path.front() != '/')
        return fail(
            Error("http.get", addr + ": path must start with '/': \"" + path + "\"", EINVAL));
    for (char c : path)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
            return fail(Error("http.get", addr + ": bad byte in path", EINVAL));
    const std::string where = net::to_string(*ep);
    const auto deadline = Clock::now() + timeout;
    auto left = [&] {
        auto l = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        return l.count() < 0 ? std::chrono::milliseconds(0) : l;
    };
    auto timed_out = [&](const char* step) {
        return Error("http.get", where + ": " + step + ": timed out after " + ms_text(timeout),
                     ETIMEDOUT);
    };

    bool in_progress = false;
    auto fd = net::tcp_connect_start(*ep, &in_progress);
    if (!fd) return fail(step_error(where, "connect", fd.error()));
    if (in_progress) {
        auto ok = sys::wait_writable(fd->get(), left());
        if (!ok) return fail(step_error(where, "connect", ok.error()));
        if (!*ok) return fail(timed_out("connect"));
        if (auto r = net::connect_result(fd->get()); !r)
            return fail(step_error(where, "connect", r.error()));
    }
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + where +
                            "\r\nUser-Agent: core-process\r\nAccept: */*\r\n"
                            "Connection: close\r\n\r\n";
    std::string_view out = req;
    while (!out.empty()) {
        auto io = net::send_some(fd->get(), out);
        if (!io) return fail(step_error(where, "write", io.error()));
        if (*io == sys::would_block) {
            auto ok = sys::wait_writable(fd->get(), left());
            if (!ok) return fail(step_error(where, "write", ok.error()));
            if (!*ok) return fail(timed_out("write"));
            continue;
        }
        out.remove_prefix(static_cast<std::size_t>(*io));
    }
    std::string raw;
    char buf[8192];
    for (;;) {
        auto io = net::recv_some(fd->get(), buf, sizeof buf);
        if (!io) {
            // A reset after a complete reply (a server closing with our bytes unread) still
            // leaves us a usable answer.
            if (response_complete(raw)) break;
            return fail(step_error(where, "read", io.error()));
        }
        if (*io == 0) break;
        if (*io == sys::would_block) {
            auto ok = sys::wait_readable(fd->get(), left());
            if (!ok) return fail(step_error(where, "read", ok.error()));
            if (!*ok) return fail(timed_out("read"));
            continue;
        }
        raw.append(buf, static_cast<std::size_t>(*io));
        if (raw.size() > kMaxResponse)
            return fail(Error("http.get", where + ": response larger than 1 MiB", EFBIG));
        if (response_complete(raw)) break;
    }
    auto resp = parse_response(raw);
    if (!resp) {
        if (raw.empty())
            return fail(
                Error("http.get", where + ": connection closed without a response", ECONNRESET));
        return fail(Error("http.get", where + ": " + resp.error().message(), EPROTO));
    }
    return resp;
}

Result<HttpResponse> http_get_url(const std::string& url, std::chrono::milliseconds timeout) {
    std::string_view s = url;
    if (s.substr(0, 7) != "http://")
        return fail(Error("http.get", "\"" + url + "\": only http:// URLs are supported", EINVAL));
    s.remove_prefix(7);
    const std::size_t slash = s.find('/');
    const std::string hostport(s.substr(0, slash));
    const std::string path = slash == std::string_view::npos ? "/" : std::string(s.substr(slash));
    return http_get(hostport, path, timeout);
}

}  // namespace core::process
