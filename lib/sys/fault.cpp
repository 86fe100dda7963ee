#include "sys/fault.hpp"

#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>

namespace core::sys::fault {

namespace detail {
std::atomic<int> g_armed{0};
}

namespace {
struct Rule {
    int err = 0;
    int count = 0;  // < 0: forever
    int skip = 0;
    int fired = 0;
};
std::mutex g_mu;
std::unordered_map<std::string, Rule>& rules() {
    static auto* r = new std::unordered_map<std::string, Rule>();  // leaked: used at exit
    return *r;
}
void recount() {
    int n = 0;
    for (const auto& [k, r] : rules())
        if (r.count != 0) ++n;
    detail::g_armed.store(n, std::memory_order_relaxed);
}
}  // namespace

int detail::hit_slow(std::string_view call) noexcept {
    std::lock_guard lk(g_mu);
    auto it = rules().find(std::string(call));
    if (it == rules().end() || it->second.count == 0) return 0;
    Rule& r = it->second;
    if (r.skip > 0) {
        --r.skip;
        return 0;
    }
    if (r.count > 0) --r.count;
    ++r.fired;
    const int err = r.err;
    if (r.count == 0) recount();
    return err;
}

void arm(std::string_view call, int err, int count, int skip) {
    std::lock_guard lk(g_mu);
    rules()[std::string(call)] = Rule{err, count, skip, 0};
    recount();
}

void disarm(std::string_view call) {
    std::lock_guard lk(g_mu);
    if (call.empty()) {
        rules().clear();
    } else if (auto it = rules().find(std::string(call)); it != rules().end()) {
        it->second.count = 0;
    }
    recount();
}

int fired(std::string_view call) {
    std::lock_guard lk(g_mu);
    auto it = rules().find(std::string(call));
    return it == rules().end() ? 0 : it->second.fired;
}

Scoped::Scoped(std::string_view call, int err, int count, int skip) {
    const std::size_t n = std::min(call.size(), sizeof call_ - 1);
    std::memcpy(call_, call.data(), n);
    call_[n] = '\0';
    arm(call, err, count, skip);
}

Scoped::~Scoped() {
    disarm(call_);
}

}  // namespace core::sys::fault
