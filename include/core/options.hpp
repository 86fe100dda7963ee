// core::Options: an ordered key→Value map, as core/go's Options. Typed getters return the zero
// value on a missing key or wrong type; code that must reject wrong types uses get() and the
// checked accessors (want_*), which name the key in their Error. Not synchronised.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "core/export.hpp"
#include "core/result.hpp"
#include "core/value.hpp"

namespace core {

class CORE_API Options {
  public:
    using Entry = std::pair<std::string, Value>;

    Options() = default;
    Options(std::initializer_list<Entry> entries);

    // Sets key (replacing keeps its position).
    Options& set(std::string key, Value value);
    // The Value under key; Error "options: missing key: <key>" when absent.
    [[nodiscard]] Result<Value> get(std::string_view key) const;
    bool has(std::string_view key) const noexcept;
    std::size_t size() const noexcept { return entries_.size(); }
    bool remove(std::string_view key);
    const std::vector<Entry>& entries() const noexcept { return entries_; }

    // Lenient typed getters: zero value when missing or of another type.
    std::string string(std::string_view key) const;
    std::int64_t integer(std::string_view key) const;  // any integer type
    bool boolean(std::string_view key) const;
    std::vector<std::string> strings(std::string_view key) const;
    // Any std::chrono::duration of an integer or double rep, or an integer taken as milliseconds.
    std::chrono::nanoseconds duration(std::string_view key) const;

    // Checked getters for parsers: nullopt-free. Missing key → the fallback; present with the
    // wrong type → Error `<op>: option "<key>": want <type>, got <type>`.
    [[nodiscard]] Result<std::string> want_string(std::string_view op, std::string_view key,
                                                  std::string fallback = {}) const;
    [[nodiscard]] Result<std::int64_t> want_integer(std::string_view op, std::string_view key,
                                                    std::int64_t fallback = 0) const;
    [[nodiscard]] Result<bool> want_boolean(std::string_view op, std::string_view key,
                                            bool fallback = false) const;
    [[nodiscard]] Result<std::vector<std::string>> want_strings(std::string_view op,
                                                                std::string_view key) const;
    // Also accepts a string such as "500ms", "2s", "1m"; negative durations are an Error. A
    // typed duration or integer too large for nanoseconds (milliseconds::max()) saturates to
    // nanoseconds::max(); a string beyond it ("9223372037s") is an Error naming the key.
    [[nodiscard]] Result<std::chrono::nanoseconds> want_duration(
        std::string_view op, std::string_view key, std::chrono::nanoseconds fallback = {}) const;

  private:
    const Value* find(std::string_view key) const noexcept;
    std::vector<Entry> entries_;
};

// Integer and duration extraction from a Value, shared by Options and its callers.
CORE_API bool value_to_integer(const Value& v, std::int64_t& out) noexcept;
CORE_API bool value_to_duration(const Value& v, std::chrono::nanoseconds& out) noexcept;
// Parses "500ms", "2s", "1.5s", "1m", "1h", "250us", "10ns"; a bare number is milliseconds.
[[nodiscard]] CORE_API Result<std::chrono::nanoseconds> parse_duration(std::string_view text);

}  // namespace core
