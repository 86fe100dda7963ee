#include "supervisor/checker.hpp"

#include "supervisor/probe.hpp"

namespace core::process::detail {

Checker::Checker(Service& service, Report report) : service_(service), report_(std::move(report)) {}

Checker::~Checker() {
    std::vector<std::thread> threads;
    {
        std::lock_guard lk(mu_);
        quit_ = true;
        for (auto& c : current_) c.cancel();
        threads.swap(threads_);
    }
    cv_.notify_all();
    for (auto& t : threads) t.join();
}

void Checker::submit(std::string name, std::uint64_t generation, HealthSpec spec) {
    {
        std::lock_guard lk(mu_);
        jobs_.push_back(Job{std::move(name), generation, std::move(spec)});
        // A new worker only when every one is busy: bounded by kMaxWorkers (the supervisor
        // has at most one check per daemon in flight, so the queue is bounded too).
        if (idle_ < jobs_.size() && threads_.size() < kMaxWorkers)
            threads_.emplace_back([this] { loop(); });
    }
    cv_.notify_one();
}

Result<void> Checker::run_check(Service& service, const Context& ctx, const HealthSpec& spec) {
    if (!spec.url.empty()) return probe_url(spec.url, spec.timeout);
    RunOptions o;
    o.command = spec.command.at(0);
    o.args.assign(spec.command.begin() + 1, spec.command.end());
    o.timeout = spec.timeout;
    o.grace_period = std::chrono::milliseconds(0);  // a hung check gets SIGKILL at its timeout
    o.kill_group = true;
    o.max_output = 4096;
    auto r = service.run(ctx, o);
    if (!r) return fail(r.error());
    return {};
}

void Checker::loop() {
    std::unique_lock lk(mu_);
    for (;;) {
        ++idle_;
        cv_.wait(lk, [&] { return quit_ || !jobs_.empty(); });
        --idle_;
        if (quit_) return;
        Job job = std::move(jobs_.front());
        jobs_.pop_front();
        // The context bounds the check twice over (with the probe's own timeout): a check
        // never outlives its timeout, and quitting cancels it at once.
        Context ctx = Context::background().with_timeout(job.spec.timeout);
        current_.push_back(ctx);
        lk.unlock();
        Result<void> r = run_check(service_, ctx, job.spec);
        report_(job.name, job.generation, std::move(r));
        lk.lock();
        for (auto it = current_.begin(); it != current_.end(); ++it) {
            if (it->token() == ctx.token()) {
                current_.erase(it);
                break;
            }
        }
    }
}

}  // namespace core::process::detail
