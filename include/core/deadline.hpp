// Deadline arithmetic that saturates instead of overflowing. `now + timeout` with a huge but
// accepted timeout (milliseconds::max(), "9223372036s") overflows the clock's signed count, which
// is undefined behaviour and in practice lands in the past: the child is killed at once, and
// whether smaller huge values do so depends on the machine's uptime. Every deadline the library
// computes goes through saturating_add; a caller's deadline should too. Header-only; constexpr;
// thread-safe.
#pragma once

#include <chrono>
#include <cmath>
#include <limits>
#include <type_traits>

namespace core {

namespace detail {
__extension__ typedef __int128 SatWide;  // holds any int64 count times any int64 ratio term

template <class R>
constexpr R clamp_wide(SatWide v) noexcept {
    constexpr SatWide lo = std::numeric_limits<R>::min();
    constexpr SatWide hi = std::numeric_limits<R>::max();
    return static_cast<R>(v < lo ? lo : (v > hi ? hi : v));
}
}  // namespace detail

// d expressed in To, clamped to To's range: milliseconds::max() as nanoseconds is
// nanoseconds::max(), not a wrapped negative. Truncates toward zero as duration_cast does. A NaN
// floating-point count gives To::zero().
template <class To, class Rep, class Period>
constexpr To saturating_duration_cast(std::chrono::duration<Rep, Period> d) noexcept {
    using ToRep = typename To::rep;
    static_assert(std::is_integral_v<ToRep>, "saturating_duration_cast: integer target only");
    using Conv = std::ratio_divide<Period, typename To::period>;
    if constexpr (std::is_floating_point_v<Rep>) {
        const long double v = static_cast<long double>(d.count()) * Conv::num / Conv::den;
        if (std::isnan(v)) return To::zero();
        if (v >= static_cast<long double>(std::numeric_limits<ToRep>::max())) return To::max();
        if (v <= static_cast<long double>(std::numeric_limits<ToRep>::min())) return To::min();
        return To(static_cast<ToRep>(v));
    } else {
        // |count| < 2^64 and num, den < 2^63: the product fits in 128 bits.
        const detail::SatWide v = static_cast<detail::SatWide>(d.count()) * Conv::num / Conv::den;
        return To(detail::clamp_wide<ToRep>(v));
    }
}

// t + d, or time_point::max() when the sum is later than the clock can hold (time_point::min()
// when earlier), also when d itself does not fit the clock's duration (milliseconds::max(),
// hours::max()). "Effectively never" stays never: a deadline of time_point::max() is one no
// timer reaches.
template <class Clock, class Dur, class Rep, class Period>
constexpr std::chrono::time_point<Clock, Dur> saturating_add(
    std::chrono::time_point<Clock, Dur> t, std::chrono::duration<Rep, Period> d) noexcept {
    using TP = std::chrono::time_point<Clock, Dur>;
    using R = typename Dur::rep;
    static_assert(std::is_integral_v<R>, "saturating_add: integer clock representation only");
    if constexpr (std::is_floating_point_v<Rep>) {
        if (std::isnan(d.count())) return t;
    }
    const Dur step = saturating_duration_cast<Dur>(d);
    const detail::SatWide sum = static_cast<detail::SatWide>(t.time_since_epoch().count()) +
                                static_cast<detail::SatWide>(step.count());
    return TP(Dur(detail::clamp_wide<R>(sum)));
}

// Now plus d on the steady clock, saturated: the deadline for a timeout of d.
template <class Rep, class Period>
std::chrono::steady_clock::time_point deadline_after(
    std::chrono::duration<Rep, Period> d) noexcept {
    return saturating_add(std::chrono::steady_clock::now(), d);
}

}  // namespace core
