// The health checker: up to kMaxWorkers threads that run the supervisor's health checks (an
// HTTP probe or a command through the process Service, each bounded by its timeout) and report
// each result through a callback. Checks of different daemons run concurrently, so one slow
// check does not delay the others; workers start on demand. Thread-safe; the destructor
// cancels the running checks and joins.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/context.hpp"
#include "core/process/service.hpp"
#include "core/process/supervisor.hpp"

namespace core::process::detail {

class Checker {
  public:
    static constexpr std::size_t kMaxWorkers = 4;
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
    std::size_t idle_ = 0;
    std::vector<Context> current_;  // the running checks' contexts, cancelled on quit
    std::vector<std::thread> threads_;
};

}  // namespace core::process::detail
