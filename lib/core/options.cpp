#include "core/options.hpp"

#include <charconv>
#include <cmath>
#include <limits>

namespace core {

namespace {

Error type_error(std::string_view op, std::string_view key, std::string_view want,
                 const Value& got) {
    return E(std::string(op), "option \"" + std::string(key) + "\": want " + std::string(want) +
                                  ", got " + got.type_name());
}

}  // namespace

bool value_to_integer(const Value& v, std::int64_t& out) noexcept {
    return v.to_integer(out);
}

bool value_to_duration(const Value& v, std::chrono::nanoseconds& out) noexcept {
    if (v.to_duration(out)) return true;
    // A bare integer is milliseconds, as in core/go's option maps built from JSON.
    using std::chrono::milliseconds;
    using std::chrono::nanoseconds;
    constexpr std::int64_t kMaxMs =
        std::chrono::duration_cast<milliseconds>(nanoseconds::max()).count();
    std::int64_t ms = 0;
    if (!v.to_integer(ms) || ms > kMaxMs || ms < -kMaxMs) return false;
    out = std::chrono::milliseconds(ms);
    return true;
}

Result<std::chrono::nanoseconds> parse_duration(std::string_view text) {
    const std::string op = "parse_duration";
    if (text.empty()) return fail(E(op, "empty duration"));
    double number = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (ec != std::errc() || ptr == text.data())
        return fail(
            E(op, "not a duration: \"" + std::string(text) + "\" (want e.g. 500ms, 2s, 1m)"));
    std::string_view unit(ptr, static_cast<std::size_t>(text.data() + text.size() - ptr));
    double ns_per = 0;
    if (unit.empty() || unit == "ms")
        ns_per = 1e6;
    else if (unit == "ns")
        ns_per = 1;
    else if (unit == "us" || unit == "µs")
        ns_per = 1e3;
    else if (unit == "s")
        ns_per = 1e9;
    else if (unit == "m")
        ns_per = 60e9;
    else if (unit == "h")
        ns_per = 3600e9;
    else
        return fail(
            E(op, "unknown unit in \"" + std::string(text) + "\" (want ns, us, ms, s, m or h)"));
    if (!std::isfinite(number) || number < 0)
        return fail(E(op, "negative or invalid duration: \"" + std::string(text) + "\""));
    const double ns = number * ns_per;
    // 2^63 exactly: int64's max is not a double, and (double)INT64_MAX rounds up to 2^63, so a
    // `>` test let "9223372036.854775808s" through to a cast that overflows (UB).
    constexpr double kLimit = 9223372036854775808.0;
    if (ns >= kLimit)
        return fail(E(op, "duration too large: \"" + std::string(text) +
                              "\" (at most 9223372036s, about 292 years)"));
    return std::chrono::nanoseconds(static_cast<std::int64_t>(ns));
}

Options::Options(std::initializer_list<Entry> entries) {
    for (const auto& [k, v] : entries) set(k, v);
}

Options& Options::set(std::string key, Value value) {
    for (auto& [k, v] : entries_) {
        if (k == key) {
            v = std::move(value);
            return *this;
        }
    }
    entries_.emplace_back(std::move(key), std::move(value));
    return *this;
}

const Value* Options::find(std::string_view key) const noexcept {
    for (const auto& [k, v] : entries_)
        if (k == key) return &v;
    return nullptr;
}

Result<Value> Options::get(std::string_view key) const {
    if (const Value* v = find(key)) return *v;
    return fail(E("options", "missing key: " + std::string(key)));
}

bool Options::has(std::string_view key) const noexcept {
    return find(key) != nullptr;
}

bool Options::remove(std::string_view key) {
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
        if (it->first == key) {
            entries_.erase(it);
            return true;
        }
    }
    return false;
}

std::string Options::string(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return {};
    if (const auto* s = v->get<std::string>()) return *s;
    return {};
}

std::int64_t Options::integer(std::string_view key) const {
    const Value* v = find(key);
    std::int64_t out = 0;
    if (v && value_to_integer(*v, out)) return out;
    return 0;
}

bool Options::boolean(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return false;
    if (const auto* b = v->get<bool>()) return *b;
    return false;
}

std::vector<std::string> Options::strings(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return {};
    if (const auto* s = v->get<std::vector<std::string>>()) return *s;
    return {};
}

std::chrono::nanoseconds Options::duration(std::string_view key) const {
    const Value* v = find(key);
    std::chrono::nanoseconds out{0};
    if (v && value_to_duration(*v, out)) return out;
    return std::chrono::nanoseconds{0};
}

Result<std::string> Options::want_string(std::string_view op, std::string_view key,
                                         std::string fallback) const {
    const Value* v = find(key);
    if (!v || v->empty()) return fallback;
    if (const auto* s = v->get<std::string>()) return *s;
    return fail(type_error(op, key, "string", *v));
}

Result<std::int64_t> Options::want_integer(std::string_view op, std::string_view key,
                                           std::int64_t fallback) const {
    const Value* v = find(key);
    if (!v || v->empty()) return fallback;
    std::int64_t out = 0;
    if (value_to_integer(*v, out)) return out;
    return fail(type_error(op, key, "integer", *v));
}

Result<bool> Options::want_boolean(std::string_view op, std::string_view key, bool fallback) const {
    const Value* v = find(key);
    if (!v || v->empty()) return fallback;
    if (const auto* b = v->get<bool>()) return *b;
    return fail(type_error(op, key, "bool", *v));
}

Result<std::vector<std::string>> Options::want_strings(std::string_view op,
                                                       std::string_view key) const {
    const Value* v = find(key);
    if (!v || v->empty()) return std::vector<std::string>{};
    if (const auto* s = v->get<std::vector<std::string>>()) return *s;
    return fail(type_error(op, key, "string list", *v));
}

Result<std::chrono::nanoseconds> Options::want_duration(std::string_view op, std::string_view key,
                                                        std::chrono::nanoseconds fallback) const {
    const Value* v = find(key);
    if (!v || v->empty()) return fallback;
    std::chrono::nanoseconds out{0};
    // A typed duration or an integer of milliseconds too large for nanoseconds saturates to
    // nanoseconds::max(): "effectively never", which deadlines then keep (core::saturating_add).
    std::int64_t ms = 0;
    bool got = v->to_duration_saturated(out);
    if (!got && v->to_integer(ms)) {
        out = saturating_duration_cast<std::chrono::nanoseconds>(std::chrono::milliseconds(ms));
        got = true;
    }
    if (got) {
        if (out.count() < 0)
            return fail(
                E(std::string(op), "option \"" + std::string(key) + "\": negative duration"));
        return out;
    }
    if (const auto* s = v->get<std::string>()) {
        auto parsed = parse_duration(*s);
        if (!parsed)
            return fail(E(std::string(op), "option \"" + std::string(key) + "\"", parsed.error()));
        return *parsed;
    }
    return fail(type_error(op, key, "duration", *v));
}

}  // namespace core
