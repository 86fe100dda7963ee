#include "supervisor/checker.hpp"

#include "supervisor/probe.hpp"

namespace core::process::detail {

Checker::Checker(Service& service, Report report)
    : service_(service), report_(std::move(report)), thread_([this] { loop(); }) {}

Checker::~Checker() {
    {
        std::lock_guard lk(mu_);
        quit_ = true;
        if (current_) current_->cancel();
    }
    cv_.notify_one();
    thread_.join();
}

void Checker::submit(std::string name, std::uint64_t generation, HealthSpec spec) {
    {
        std::lock_guard lk(mu_);
        jobs_.push_back(Job{std::move(name), generation, std::move(spec)});
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
        cv_.wait(lk, [&] { return quit_ || !jobs_.empty(); });
        if (quit_) return;
        Job job = std::move(jobs_.front());
        jobs_.pop_front();
        // The context bounds the check twice over (with the probe's own timeout): a check
        // never outlives its timeout, and quitting cancels it at once.
        Context ctx = Context::background().with_timeout(job.spec.timeout);
        current_ = ctx;
        lk.unlock();
        Result<void> r = run_check(service_, ctx, job.spec);
        report_(job.name, job.generation, std::move(r));
        lk.lock();
        current_.reset();
    }
}

}  // namespace core::process::detail
