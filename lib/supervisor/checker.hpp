// The health checker: one thread that runs the supervisor's health checks one at a time (an
// HTTP probe or a command through the process Service, each bounded by its timeout) and
// reports each result through a callback. Thread-safe; the destructor cancels a running check
// and joins.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "core/context.hpp"
#include "core/process/service.hpp"
#include "core/process/supervisor.hpp"

namespace core::process::detail {

class Checker {
  public:
    using Report =
        std::function<void(const std::string& name, std::uint64_t generation, Result<void> result)>;
    Checker(Service& service, Report report);
    ~Checker();
    Checker(const Checker&) = delete;
    Checker& operator=(const Checker&) = delete;

    void submit(std::string name, std::uint64_t generation, HealthSpec spec);

    // Runs one check now on the calling thread (the checker's body; also used by tests).
    static Result<void> run_check(Service& service, const Context& ctx, const HealthSpec& spec);

  private:
    struct Job {
        std::string name;
        std::uint64_t generation;
        HealthSpec spec;
    };
    void loop();

    Service& service_;
    Report report_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Job> jobs_;
    bool quit_ = false;
    std::optional<Context> current_;  // the running check's context, cancelled on quit
    std::thread thread_;
};

}  // namespace core::process::detail
