// core::Result<T>: a value or a core::Error, on tl::expected (no transform_error: tl 1.0).
#pragma once

#include <tl/expected.hpp>

#include "core/error.hpp"
#include "core/value.hpp"

namespace core {

template <class T = Value>
using Result = tl::expected<T, Error>;

// Shorthand for `return core::fail(core::E(...))` inside a function returning Result<T>.
inline tl::unexpected<Error> fail(Error e) {
    return tl::unexpected<Error>(std::move(e));
}

}  // namespace core
