// core::id(): an identifier unique within this process, "id-<counter>-<6 hex>". Thread-safe.
#pragma once

#include <string>

#include "core/export.hpp"

namespace core {

CORE_API std::string id();

}  // namespace core
