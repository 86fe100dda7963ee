#include "http/parser.hpp"

#include <charconv>
#include <cstdint>

namespace core::http {

namespace {

// RFC 9110 tchar.
bool is_tchar(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    switch (c) {
        case '!':
        case '#':
        case '$':
        case '%':
        case '&':
        case '\'':
        case '*':
        case '+':
        case '-':
        case '.':
        case '^':
        case '_':
        case '`':
        case '|':
        case '~':
            return true;
        default:
            return false;
    }
}

bool is_token(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (char c : s)
        if (!is_tchar(c)) return false;
    return true;
}

char lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string to_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = lower(c);
    return out;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Splits off the next line (without "\n" or "\r\n"); false when no full line is left. A lone
// '\r' inside a line is left in it (and rejected by the callers as a control byte).
bool next_line(std::string_view& rest, std::string_view& line) {
    std::size_t nl = rest.find('\n');
    if (nl == std::string_view::npos) {
        if (rest.empty()) return false;
        line = rest;  // last line without terminator
        rest = {};
        return true;
    }
    line = rest.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    rest.remove_prefix(nl + 1);
    return true;
}

tl::unexpected<Error> bad(const std::string& why) {
    return fail(E("http", why));
}

// A byte allowed in a header value: VCHAR, obs-text, SP, HTAB.
bool is_field_byte(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7f);
}

// A byte allowed in an origin-form target (RFC 3986 pchar, '/', '?', and '%'-escapes; we are
// lenient on the exact set but never allow spaces, controls or non-ASCII).
bool is_target_byte(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && c != '#';
}

}  // namespace

std::size_t find_head_end(std::string_view buf) {
    for (std::size_t i = 0; i < buf.size(); ++i) {
        if (buf[i] != '\n') continue;
        // "\n\n" or "\n\r\n" ends the head.
        if (i + 1 < buf.size() && buf[i + 1] == '\n') return i + 2;
        if (i + 2 < buf.size() && buf[i + 1] == '\r' && buf[i + 2] == '\n') return i + 3;
    }
    return std::string_view::npos;
}

Result<Request> parse_request(std::string_view head) {
    std::string_view rest = head;
    std::string_view line;
    // RFC 9112 2.2: a server SHOULD ignore at least one empty line before the request line.
    int skipped = 0;
    do {
        if (!next_line(rest, line)) return bad("empty request");
    } while (line.empty() && ++skipped <= 4);
    if (line.empty()) return bad("empty request");

    Request req;
    const std::size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) return bad("malformed request line");
    const std::size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return bad("malformed request line");
    if (line.find(' ', sp2 + 1) != std::string_view::npos) return bad("malformed request line");
    const std::string_view method = line.substr(0, sp1);
    const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view version = line.substr(sp2 + 1);
    if (!is_token(method)) return bad("malformed method");
    if (target.empty() || target.front() != '/') return bad("target must be an absolute path");
    for (char c : target)
        if (!is_target_byte(c)) return bad("malformed target");
    if (version == "HTTP/1.1") {
        req.minor_version = 1;
    } else if (version == "HTTP/1.0") {
        req.minor_version = 0;
    } else {
        return bad("unsupported version");
    }
    req.method = std::string(method);
    req.target = std::string(target);
    req.path = std::string(target.substr(0, target.find('?')));

    while (next_line(rest, line)) {
        if (line.empty()) break;  // end of head
        if (line.front() == ' ' || line.front() == '\t') return bad("obsolete line folding");
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) return bad("header without colon");
        const std::string_view name = line.substr(0, colon);
        if (!is_token(name)) return bad("malformed header name");
        const std::string_view value = trim_ows(line.substr(colon + 1));
        for (char c : value)
            if (!is_field_byte(c)) return bad("control byte in header value");
        if (req.headers.size() >= 100) return bad("too many headers");
        req.headers.emplace_back(to_lower(name), std::string(value));
    }
    return req;
}

const char* reason_phrase(int status) noexcept {
    switch (status) {
        case 200:
            return "OK";
        case 400:
            return "Bad Request";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 431:
            return "Request Header Fields Too Large";
        case 500:
            return "Internal Server Error";
        case 503:
            return "Service Unavailable";
        default:
            return "Unknown";
    }
}

std::string format_response(const Response& r, bool head_only) {
    std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason_phrase(r.status) +
                      "\r\nContent-Type: " + r.content_type +
                      "\r\nContent-Length: " + std::to_string(r.body.size()) +
                      "\r\nConnection: close\r\n";
    if (r.status == 405) out += "Allow: GET, HEAD\r\n";
    out += "\r\n";
    if (!head_only) out += r.body;
    return out;
}

namespace {

struct ResponseHead {
    int status = 0;
    std::size_t body_at = 0;
    bool chunked = false;
    bool has_length = false;
    std::size_t length = 0;
};

tl::unexpected<Error> bad_resp(const std::string& why) {
    return fail(E("http", "malformed response: " + why));
}

Result<ResponseHead> parse_response_head(std::string_view raw) {
    const std::size_t end = find_head_end(raw);
    if (end == std::string_view::npos) return bad_resp("incomplete head");
    ResponseHead h;
    h.body_at = end;
    std::string_view rest = raw.substr(0, end);
    std::string_view line;
    if (!next_line(rest, line)) return bad_resp("empty");
    // "HTTP/1.1 200 OK"
    if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ')
        return bad_resp("status line");
    int status = 0;
    auto [p, ec] = std::from_chars(line.data() + 9, line.data() + 12, status);
    if (ec != std::errc() || p != line.data() + 12 || status < 100 || status > 999)
        return bad_resp("status code");
    if (line.size() > 12 && line[12] != ' ') return bad_resp("status line");
    h.status = status;
    while (next_line(rest, line)) {
        if (line.empty()) break;
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) return bad_resp("header without colon");
        const std::string_view name = trim_ows(line.substr(0, colon));
        const std::string_view value = trim_ows(line.substr(colon + 1));
        if (iequals(name, "content-length")) {
            std::size_t n = 0;
            auto [q, ec2] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (ec2 != std::errc() || q != value.data() + value.size() || value.empty())
                return bad_resp("content-length");
            if (h.has_length && n != h.length) return bad_resp("conflicting content-length");
            h.has_length = true;
            h.length = n;
        } else if (iequals(name, "transfer-encoding")) {
            if (iequals(value, "chunked")) {
                h.chunked = true;
            } else if (!iequals(value, "identity")) {
                return bad_resp("unsupported transfer-encoding");
            }
        }
    }
    return h;
}

// Decodes a chunked body; *done tells whether the terminating chunk was seen.
Result<std::string> dechunk(std::string_view body, bool* done) {
    *done = false;
    std::string out;
    for (;;) {
        const std::size_t nl = body.find('\n');
        if (nl == std::string_view::npos) return out;  // size line not complete
        std::string_view size_line = body.substr(0, nl);
        if (!size_line.empty() && size_line.back() == '\r') size_line.remove_suffix(1);
        size_line = size_line.substr(0, size_line.find(';'));  // chunk extensions
        size_line = trim_ows(size_line);
        std::size_t n = 0;
        auto [p, ec] =
            std::from_chars(size_line.data(), size_line.data() + size_line.size(), n, 16);
        if (size_line.empty() || ec != std::errc() || p != size_line.data() + size_line.size())
            return bad_resp("chunk size");
        body.remove_prefix(nl + 1);
        if (n == 0) {
            *done = true;  // trailers, if any, are ignored
            return out;
        }
        if (body.size() < n) {
            out.append(body);
            return out;
        }
        out.append(body.substr(0, n));
        body.remove_prefix(n);
        if (body.substr(0, 2) == "\r\n") {
            body.remove_prefix(2);
        } else if (body.substr(0, 1) == "\n") {
            body.remove_prefix(1);
        } else if (body.empty()) {
            return out;
        } else {
            return bad_resp("chunk terminator");
        }
    }
}

}  // namespace

Result<Response> parse_response(std::string_view raw) {
    auto h = parse_response_head(raw);
    if (!h) return tl::unexpected(h.error());
    Response r;
    r.status = h->status;
    r.content_type.clear();
    std::string_view body = raw.substr(h->body_at);
    if (h->chunked) {
        bool done = false;
        auto b = dechunk(body, &done);
        if (!b) return tl::unexpected(b.error());
        if (!done) return bad_resp("truncated chunked body");
        r.body = std::move(*b);
    } else if (h->has_length) {
        if (body.size() < h->length) return bad_resp("truncated body");
        r.body = std::string(body.substr(0, h->length));
    } else {
        r.body = std::string(body);
    }
    return r;
}

bool response_complete(std::string_view raw) {
    auto h = parse_response_head(raw);
    if (!h) return false;
    std::string_view body = raw.substr(h->body_at);
    if (h->chunked) {
        bool done = false;
        auto b = dechunk(body, &done);
        return b && done;
    }
    if (h->has_length) return body.size() >= h->length;
    return false;
}

}  // namespace core::http
