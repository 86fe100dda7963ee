#include "core/value.hpp"

#include <chrono>
#include <cstdint>
#include <vector>

namespace core {

std::string Value::type_name() const {
    if (empty()) return "empty";
    const auto& t = v_.type();
    if (t == typeid(std::string)) return "string";
    if (t == typeid(bool)) return "bool";
    if (t == typeid(int) || t == typeid(long) || t == typeid(long long) ||
        t == typeid(unsigned) || t == typeid(unsigned long) || t == typeid(unsigned long long) ||
        t == typeid(short) || t == typeid(unsigned short))
        return "integer";
    if (t == typeid(double) || t == typeid(float)) return "number";
    if (t == typeid(std::vector<std::string>)) return "string list";
    if (t == typeid(std::chrono::nanoseconds) || t == typeid(std::chrono::microseconds) ||
        t == typeid(std::chrono::milliseconds) || t == typeid(std::chrono::seconds) ||
        t == typeid(std::chrono::minutes) || t == typeid(std::chrono::hours))
        return "duration";
    return t.name();
}

}  // namespace core
