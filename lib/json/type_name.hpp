// lib/json: the JSON helpers shared by the library's config readers: the pipeline file
// (lib/runner) and the supervise config (lib/supervisor). A
// component of its own (core_json, which brings nlohmann_json along), because the readers live
// in components that may not include each other.
#pragma once

#include <nlohmann/json.hpp>

namespace core::json {

// The name of a JSON value's type, for config errors ("want string, got integer"): null,
// object, array, string, boolean, integer (signed or unsigned) or number (floating).
const char* type_name(const nlohmann::json& j) noexcept;

}  // namespace core::json
