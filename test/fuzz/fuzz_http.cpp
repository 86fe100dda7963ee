// libFuzzer target: lib/http's request parser (the health server's) (untrusted bytes from the
// network) and the HTTP client's response parser. Invariants checked beyond "no crash, no UB, no
// leak".
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/parser.hpp"

namespace d = core::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);

    const std::size_t end = d::find_head_end(in);
    if (end != std::string_view::npos && end > in.size()) __builtin_trap();

    auto req = d::parse_request(in);
    if (req) {
        // A parsed request is one the router can use safely.
        if (req->method.empty() || req->path.empty() || req->path.front() != '/') __builtin_trap();
        if (req->target.compare(0, req->path.size(), req->path) != 0) __builtin_trap();
        if (req->minor_version != 0 && req->minor_version != 1) __builtin_trap();
        if (req->headers.size() > 100) __builtin_trap();
        for (const auto& [name, value] : req->headers) {
            if (name.empty()) __builtin_trap();
            for (char c : name)
                if (c >= 'A' && c <= 'Z') __builtin_trap();  // names are lower-cased
        }
    } else if (req.error().what().rfind("http: ", 0) != 0) {
        __builtin_trap();  // every rejection is a clean "http: …" Error
    }

    auto resp = d::parse_response(in);
    if (resp && (resp->status < 100 || resp->status > 999)) __builtin_trap();
    (void)d::response_complete(in);
    return 0;
}
