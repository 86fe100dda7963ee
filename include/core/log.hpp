// Logging: the library logs only through an injected spdlog logger, never spdlog's global
// registry. The default is an unregistered logger with a null sink. Thread-safe.
#pragma once

#include <memory>

#include "core/export.hpp"

namespace spdlog {
class logger;
}

namespace core {

// The library-wide default logger (null sink unless set_default_logger was called).
CORE_API std::shared_ptr<spdlog::logger> default_logger();
// Replaces the library-wide default; null restores the null-sink logger.
CORE_API void set_default_logger(std::shared_ptr<spdlog::logger> logger);

}  // namespace core
