// core::Value: a copyable type-erased value (Go's `any`). A string literal is stored as
// std::string. Value is not synchronised: share it between threads only as const.
#pragma once

#include <any>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>

#include "core/export.hpp"

namespace core {

class CORE_API Value {
public:
    Value() = default;
    Value(const char* s) : v_(std::string(s)) {}
    Value(std::string_view s) : v_(std::string(s)) {}
    template <class T, class D = std::decay_t<T>,
              class = std::enable_if_t<!std::is_same_v<D, Value> && !std::is_same_v<D, std::any> &&
                                       !std::is_same_v<D, const char*> &&
                                       !std::is_same_v<D, char*> &&
                                       !std::is_same_v<D, std::string_view>>>
    Value(T&& v) : v_(std::forward<T>(v)) {}

    bool empty() const noexcept { return !v_.has_value(); }
    const std::type_info& type() const noexcept { return v_.type(); }

    // Pointer to the held T, or null when empty or holding another type.
    template <class T>
    const T* get() const noexcept {
        return std::any_cast<T>(&v_);
    }
    template <class T>
    bool is() const noexcept {
        return get<T>() != nullptr;
    }

    // A short description of the held type, for error messages ("string", "int", …).
    std::string type_name() const;

private:
    std::any v_;
};

}  // namespace core
