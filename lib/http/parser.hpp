// The HTTP/1.x wire format of lib/http's server and client, as pure functions over bytes so
// they can be fuzzed (test/fuzz/fuzz_http.cpp) and tested without sockets.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/process/http.hpp"
#include "core/result.hpp"

namespace core::http {

using Response = core::process::HttpResponse;

struct Request {
    std::string method;     // "GET"
    std::string target;     // "/health?x=1", as sent
    std::string path;       // "/health": the target without its query
    int minor_version = 1;  // HTTP/1.<minor_version>
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in order
};

// Offset just past the blank line ending the request head ("\r\n\r\n", or "\n\n" from lenient
// clients), or npos when the head is not complete yet.
std::size_t find_head_end(std::string_view buf);

// Parses a request head (request line and header lines, up to and including the blank line,
// or without it). Strict where ambiguity would matter (RFC 9112): method and header names are
// tokens, no whitespace before a header colon, no obs-fold, no control bytes, HTTP/1.0 or 1.1
// only, target in origin form. Errors: "http: <what is wrong>".
Result<Request> parse_request(std::string_view head);

// The wire form of a response: status line, Content-Type, Content-Length, Connection: close.
// head_only leaves the body out (HEAD).
std::string format_response(const Response& r, bool head_only = false);
// The standard reason phrase ("OK", "Not Found", …; "Unknown" otherwise).
const char* reason_phrase(int status) noexcept;

// Parses a complete response (the connection has closed, or Content-Length bytes arrived):
// status line, headers, body by Content-Length, chunked, or to the end. Errors:
// "http: malformed response: <why>".
Result<Response> parse_response(std::string_view raw);
// True when raw already holds a whole response (head plus Content-Length bytes, or the last
// chunk), so the client may stop reading before EOF.
bool response_complete(std::string_view raw);

}  // namespace core::http
