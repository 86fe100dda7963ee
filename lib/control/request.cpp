#include "control/request.hpp"

#include <cerrno>
#include <charconv>

namespace core::control {

using nlohmann::json;

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

Result<std::string> percent_decode(std::string_view s, bool plus_is_space) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= s.size())
                return fail(Error("control", "bad percent escape in the request target", EINVAL));
            const int hi = hex_value(s[i + 1]);
            const int lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0)
                return fail(Error("control", "bad percent escape in the request target", EINVAL));
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    return out;
}

}  // namespace

Result<json> parse_json_object(std::string_view body) {
    json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return fail(Error("control", "body: not valid JSON", EINVAL));
    if (!j.is_object()) return fail(Error("control", "body: want a JSON object", EINVAL));
    return j;
}

Result<Target> parse_target(std::string_view target) {
    if (target.empty() || target.front() != '/')
        return fail(Error("control", "request target must start with '/'", EINVAL));
    Target t;
    const auto q = target.find('?');
    const std::string_view path = target.substr(0, q);
    t.path = std::string(path);
    std::size_t pos = 1;
    while (pos <= path.size()) {
        const auto slash = path.find('/', pos);
        const auto piece =
            path.substr(pos, slash == std::string_view::npos ? path.npos : slash - pos);
        if (!piece.empty()) {
            auto seg = percent_decode(piece, false);
            if (!seg) return fail(seg.error());
            if (seg->find('\0') != std::string::npos || seg->find('/') != std::string::npos)
                return fail(Error("control", "request target: bad path segment", EINVAL));
            t.segments.push_back(std::move(*seg));
            if (t.segments.size() > 32)
                return fail(Error("control", "request target: too many segments", EINVAL));
        }
        if (slash == std::string_view::npos) break;
        pos = slash + 1;
    }
    if (q != std::string_view::npos) {
        std::string_view rest = target.substr(q + 1);
        while (!rest.empty()) {
            const auto amp = rest.find('&');
            const auto kv = rest.substr(0, amp);
            if (!kv.empty()) {
                const auto eq = kv.find('=');
                auto k = percent_decode(kv.substr(0, eq), true);
                if (!k) return fail(k.error());
                std::string v;
                if (eq != std::string_view::npos) {
                    auto dv = percent_decode(kv.substr(eq + 1), true);
                    if (!dv) return fail(dv.error());
                    v = std::move(*dv);
                }
                if (t.query.size() >= 32)
                    return fail(Error("control", "request target: too many parameters", EINVAL));
                t.query[std::move(*k)] = std::move(v);
            }
            if (amp == std::string_view::npos) break;
            rest = rest.substr(amp + 1);
        }
    }
    return t;
}

RouteKind classify(const Request& r) {
    const auto& s = r.target.segments;
    if (s.size() == 1 && (s[0] == "health" || s[0] == "ready" || s[0] == "metrics"))
        return RouteKind::probe;
    if (s.size() == 1 && s[0] == "events" && r.method == "GET") return RouteKind::events;
    if (s.size() == 3 && s[0] == "daemons" && s[2] == "logs" && r.method == "GET" &&
        query_flag(r.target.query, "follow"))
        return RouteKind::follow_logs;
    return RouteKind::plain;
}

Result<cp::DaemonSpec> parse_daemon_body(std::string_view body) {
    auto j = parse_json_object(body);
    if (!j) return fail(j.error());
    const std::string doc = dump(json{{"daemons", json::array({*j})}});
    auto specs = cp::parse_supervise_config(doc, "body");
    if (!specs) return fail(specs.error().with_code(EINVAL));
    if (specs->size() != 1) return fail(Error("control", "body: want one daemon", EINVAL));
    return std::move(specs->front());
}

Result<int> parse_signal_body(std::string_view body) {
    auto j = parse_json_object(body);
    if (!j) return fail(j.error());
    auto it = j->find("signal");
    if (it == j->end()) return fail(Error("control", "body: key \"signal\" is required", EINVAL));
    if (it->is_number_integer()) {
        const auto n = it->get<long long>();
        if (n < 1 || n > 64) return fail(Error("control", "body: signal out of range", EINVAL));
        return static_cast<int>(n);
    }
    if (!it->is_string())
        return fail(Error("control", "body: \"signal\" wants a name or a number", EINVAL));
    auto sig = cp::parse_signal(it->get<std::string>());
    if (!sig) return fail(sig.error().with_code(EINVAL));
    return *sig;
}

Result<InputBody> parse_input_body(std::string_view body) {
    auto j = parse_json_object(body);
    if (!j) return fail(j.error());
    InputBody in;
    if (auto it = j->find("input"); it != j->end()) {
        if (!it->is_string())
            return fail(Error("control", "body: \"input\" wants a string", EINVAL));
        in.input = it->get<std::string>();
    }
    if (auto it = j->find("close"); it != j->end()) {
        if (!it->is_boolean())
            return fail(Error("control", "body: \"close\" wants a boolean", EINVAL));
        in.close = it->get<bool>();
    }
    return in;
}

Result<std::size_t> parse_tail(const std::map<std::string, std::string>& query,
                               std::size_t fallback) {
    auto it = query.find("tail");
    if (it == query.end() || it->second.empty()) return fallback;
    std::size_t n = 0;
    const auto* b = it->second.data();
    const auto* e = b + it->second.size();
    auto [p, ec] = std::from_chars(b, e, n);
    if (ec != std::errc{} || p != e || n > 1000000)
        return fail(Error("control", "tail: want a line count up to 1000000", EINVAL));
    return n;
}

bool query_flag(const std::map<std::string, std::string>& query, const std::string& key) {
    auto it = query.find(key);
    if (it == query.end()) return false;
    const auto& v = it->second;
    return v.empty() || v == "1" || v == "true" || v == "yes";
}

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace core::control
