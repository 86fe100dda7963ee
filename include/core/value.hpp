// core::Value: a copyable type-erased value (Go's `any`). A string literal is stored as
// std::string. Value is not synchronised: share it between threads only as const.
#pragma once

#include <any>
#include <chrono>
#include <cstdint>
#include <limits>
#include <ratio>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>

#include "core/deadline.hpp"
#include "core/export.hpp"

namespace core {

namespace detail {

template <class T>
struct IsDuration : std::false_type {};
template <class R, class P>
struct IsDuration<std::chrono::duration<R, P>> : std::true_type {};

// Integers in the Go sense: every standard integer type but bool and the character types
// (a char is text, not a count).
template <class T>
inline constexpr bool kIsInteger =
    std::is_integral_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, char> &&
    !std::is_same_v<T, wchar_t> && !std::is_same_v<T, char8_t> && !std::is_same_v<T, char16_t> &&
    !std::is_same_v<T, char32_t>;

using ToInteger = bool (*)(const std::any&, std::int64_t&) noexcept;
// saturate: a duration beyond nanoseconds' range gives nanoseconds::max()/min() instead of false.
using ToDuration = bool (*)(const std::any&, std::chrono::nanoseconds&, bool saturate) noexcept;

// Recorded at construction, while the static type is known, so that Options can read any
// integer or any std::chrono::duration back without listing types.
template <class T>
bool any_to_integer(const std::any& a, std::int64_t& out) noexcept {
    const T* p = std::any_cast<T>(&a);
    if (!p) return false;
    if constexpr (std::is_unsigned_v<T>) {
        if (static_cast<std::uintmax_t>(*p) >
            static_cast<std::uintmax_t>(std::numeric_limits<std::int64_t>::max()))
            return false;  // does not fit: the caller reports a type mismatch or zero
    }
    out = static_cast<std::int64_t>(*p);
    return true;
}

template <class D>
bool any_to_duration(const std::any& a, std::chrono::nanoseconds& out, bool saturate) noexcept {
    const D* p = std::any_cast<D>(&a);
    if (!p) return false;
    // Range-check in long double nanoseconds first: a duration_cast that overflows is UB.
    const long double ns = std::chrono::duration<long double, std::nano>(*p).count();
    constexpr long double kMax = 9223372036854775807.0L;
    if (ns != ns) return false;  // NaN
    if (saturate && !(ns > -kMax && ns < kMax)) {
        out = core::saturating_duration_cast<std::chrono::nanoseconds>(*p);
        return true;
    }
    if (!(ns > -kMax && ns < kMax)) return false;
    if constexpr (std::is_floating_point_v<typename D::rep>)
        out = std::chrono::nanoseconds(static_cast<std::int64_t>(ns));
    else
        out = std::chrono::duration_cast<std::chrono::nanoseconds>(*p);
    return true;
}

template <class T>
constexpr ToInteger integer_hook() noexcept {
    if constexpr (kIsInteger<T>)
        return &any_to_integer<T>;
    else
        return nullptr;
}

template <class T>
constexpr ToDuration duration_hook() noexcept {
    if constexpr (IsDuration<T>::value)
        return &any_to_duration<T>;
    else
        return nullptr;
}

}  // namespace detail

class CORE_API Value {
  public:
    Value() = default;
    Value(const char* s) : v_(std::string(s)) {}
    Value(std::string_view s) : v_(std::string(s)) {}
    template <
        class T, class D = std::decay_t<T>,
        class = std::enable_if_t<!std::is_same_v<D, Value> && !std::is_same_v<D, std::any> &&
                                 !std::is_same_v<D, const char*> && !std::is_same_v<D, char*> &&
                                 !std::is_same_v<D, std::string_view>>>
    Value(T&& v)
        : v_(std::forward<T>(v)),
          to_integer_(detail::integer_hook<D>()),
          to_duration_(detail::duration_hook<D>()) {}

    bool empty() const noexcept { return !v_.has_value(); }
    const std::type_info& type() const noexcept { return v_.type(); }

    // Pointer to the held T, or null when empty or holding another type.
    template <class T>
    const T* get() const noexcept {
        return std::any_cast<T>(&v_);
    }
    // The same, writable: for the owner of a Value that takes its contents apart (moves out of
    // it) once nobody else reads it.
    template <class T>
    T* get() noexcept {
        return std::any_cast<T>(&v_);
    }
    template <class T>
    bool is() const noexcept {
        return get<T>() != nullptr;
    }

    // Any integer type (not bool, not char) that fits in int64 → true and out set.
    bool to_integer(std::int64_t& out) const noexcept {
        return to_integer_ && to_integer_(v_, out);
    }
    // Any std::chrono::duration that fits in int64 nanoseconds → true and out set.
    bool to_duration(std::chrono::nanoseconds& out) const noexcept {
        return to_duration_ && to_duration_(v_, out, false);
    }
    // As to_duration, but a duration too large (or too negative) for int64 nanoseconds gives
    // nanoseconds::max() (min()) instead of false: "effectively never" for a timeout. NaN: false.
    bool to_duration_saturated(std::chrono::nanoseconds& out) const noexcept {
        return to_duration_ && to_duration_(v_, out, true);
    }

    // A short description of the held type, for error messages ("string", "integer", …).
    std::string type_name() const;

  private:
    std::any v_;
    detail::ToInteger to_integer_ = nullptr;
    detail::ToDuration to_duration_ = nullptr;
};

}  // namespace core
