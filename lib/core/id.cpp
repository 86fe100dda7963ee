#include "core/id.hpp"

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <random>

namespace core {

std::string id() {
    static std::atomic<std::uint64_t> counter{0};
    // The random suffix tells ids of different processes (or runs) apart; the counter makes
    // them unique within this one.
    thread_local std::mt19937_64 rng{std::random_device{}()};
    const std::uint64_t n = counter.fetch_add(1, std::memory_order_relaxed) + 1;
    const unsigned suffix = static_cast<unsigned>(rng() & 0xFFFFFFu);
    char buf[48];
    std::snprintf(buf, sizeof buf, "id-%llu-%06x", static_cast<unsigned long long>(n), suffix);
    return buf;
}

}  // namespace core
