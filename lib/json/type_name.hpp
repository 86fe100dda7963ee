// The name of a JSON value's type, for config errors ("want string, got integer"). Shared by
// the pipeline reader (lib/runner) and the supervise config reader (lib/supervisor). Header
// only: the components that include it already link nlohmann_json.
#pragma once

#include <nlohmann/json.hpp>

namespace core::json {

// null, object, array, string, boolean, integer (signed or unsigned) or number (floating).
inline const char* type_name(const nlohmann::json& j) noexcept {
    switch (j.type()) {
        case nlohmann::json::value_t::null:
            return "null";
        case nlohmann::json::value_t::object:
            return "object";
        case nlohmann::json::value_t::array:
            return "array";
        case nlohmann::json::value_t::string:
            return "string";
        case nlohmann::json::value_t::boolean:
            return "boolean";
        case nlohmann::json::value_t::number_integer:
        case nlohmann::json::value_t::number_unsigned:
            return "integer";
        case nlohmann::json::value_t::number_float:
            return "number";
        default:
            return "value";
    }
}

}  // namespace core::json
