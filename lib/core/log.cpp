#include "core/log.hpp"

#include <mutex>

#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

namespace core {

namespace {
std::mutex g_mu;
std::shared_ptr<spdlog::logger>& slot() {
    static std::shared_ptr<spdlog::logger> logger;
    return logger;
}
std::shared_ptr<spdlog::logger> null_logger() {
    // Never registered with spdlog's global registry.
    static const auto l = std::make_shared<spdlog::logger>(
        "core-process", std::make_shared<spdlog::sinks::null_sink_mt>());
    return l;
}
}  // namespace

std::shared_ptr<spdlog::logger> default_logger() {
    std::lock_guard lk(g_mu);
    auto& l = slot();
    return l ? l : null_logger();
}

void set_default_logger(std::shared_ptr<spdlog::logger> logger) {
    std::lock_guard lk(g_mu);
    slot() = std::move(logger);
}

}  // namespace core
