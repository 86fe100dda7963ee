#include "core/value.hpp"

#include <vector>

namespace core {

std::string Value::type_name() const {
    if (empty()) return "empty";
    const auto& t = v_.type();
    if (t == typeid(std::string)) return "string";
    if (t == typeid(bool)) return "bool";
    if (to_integer_) return "integer";
    if (to_duration_) return "duration";
    if (t == typeid(double) || t == typeid(float)) return "number";
    if (t == typeid(std::vector<std::string>)) return "string list";
    if (t == typeid(char)) return "char";
    return t.name();
}

}  // namespace core
