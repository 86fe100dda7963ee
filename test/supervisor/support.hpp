// What the Supervisor's tests share: a log of every DaemonStateChanged with waits on it, a Core
// with the process service started (optionally with ServiceOptions), and a daemon spec running
// test/helper/child.cpp with small, exact backoffs. Header-only; every wait has a deadline.
#pragma once

#include <catch2/catch_test_macros.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/process/process.hpp"
#include "core/process/supervisor.hpp"
#include "guard.hpp"

namespace core::test::sup {

using namespace std::chrono_literals;

inline constexpr auto kWait = std::chrono::seconds(20);  // a deadline, not an expectation

// Every DaemonStateChanged seen on the bus, with a way to wait for a condition on them.
class EventLog {
  public:
    void push(const core::process::DaemonStateChanged& ev) {
        {
            std::lock_guard lk(mu_);
            evs_.push_back(ev);
        }
        cv_.notify_all();
    }
    std::vector<core::process::DaemonStateChanged> events() const {
        std::lock_guard lk(mu_);
        return evs_;
    }
    std::vector<core::process::DaemonStateChanged> of(const std::string& name) const {
        std::vector<core::process::DaemonStateChanged> out;
        for (const auto& e : events())
            if (e.name == name) out.push_back(e);
        return out;
    }
    // Waits until `name` has entered `state` at least n times.
    bool wait(const std::string& name, core::process::DaemonState state, std::size_t n = 1,
              std::chrono::milliseconds timeout = kWait) {
        std::unique_lock lk(mu_);
        return cv_.wait_for(lk, timeout, [&] { return count_locked(name, state) >= n; });
    }
    std::size_t count(const std::string& name, core::process::DaemonState state) const {
        std::lock_guard lk(mu_);
        return count_locked(name, state);
    }
    // The position of the n-th (from 1) entry of `name` into `state`; SIZE_MAX if none.
    std::size_t index(const std::string& name, core::process::DaemonState state,
                      std::size_t n = 1) const {
        std::lock_guard lk(mu_);
        for (std::size_t i = 0; i < evs_.size(); ++i)
            if (evs_[i].name == name && evs_[i].to == state && --n == 0) return i;
        return SIZE_MAX;
    }

  private:
    std::size_t count_locked(const std::string& name, core::process::DaemonState state) const {
        std::size_t n = 0;
        for (const auto& e : evs_)
            if (e.name == name && e.to == state) ++n;
        return n;
    }
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<core::process::DaemonStateChanged> evs_;
};

// A Core with the process service started, and the bus watched for DaemonStateChanged.
struct Env {
    std::shared_ptr<core::Core> core;
    std::shared_ptr<core::process::Service> svc;
    EventLog log;
    core::Subscription sub;

    explicit Env(std::vector<core::ServiceFactory> extra = {},
                 std::optional<core::process::ServiceOptions> so = std::nullopt) {
        std::vector<core::ServiceFactory> fs{
            so ? core::process::service_factory(*so)
               : core::ServiceFactory(core::process::register_service)};
        for (auto& f : extra) fs.push_back(std::move(f));
        auto c = core::Core::create(fs);
        REQUIRE(c);
        core = *c;
        sub = core->subscribe([this](const core::Value& v) {
            if (const auto* ev = v.get<core::process::DaemonStateChanged>()) log.push(*ev);
        });
        REQUIRE(core->startup(core::Context::background()));
        svc = core->service<core::process::Service>("process");
        REQUIRE(svc);
    }
    ~Env() {
        sub.reset();
        (void)core->shutdown(core::Context::background());
    }
};

// A daemon running the test helper in mode `args`, with exact backoffs (jitter 0) and a start
// limit that never gets in the way.
inline core::process::DaemonSpec child_spec(const std::string& name,
                                            std::vector<std::string> args) {
    core::process::DaemonSpec s;
    s.name = name;
    s.command = core::test::child_path();
    s.args = std::move(args);
    s.backoff = {10ms, 2.0, 10000ms, 0.0};
    s.start_limit = {100, 60000ms};
    s.stop_timeout = 5000ms;
    return s;
}

inline bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace core::test::sup
