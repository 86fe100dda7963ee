#include "core/process/runner.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>

#include "core/process/managed_process.hpp"
#include "core/process/service.hpp"
#include "core/runtime.hpp"

namespace core::process {

const char* to_string(RunStatus s) noexcept {
    switch (s) {
        case RunStatus::passed:
            return "passed";
        case RunStatus::failed:
            return "failed";
        case RunStatus::skipped:
            return "skipped";
    }
    return "unknown";
}

namespace detail {
namespace {

constexpr const char* kOp = "runner";

std::string quoted(const std::string& s) {
    return "\"" + s + "\"";
}

std::string signal_text(int sig) {
    // sigabbrev_np (glibc >= 2.32, <string.h>) names the signal without <signal.h>.
    const char* abbrev = sigabbrev_np(sig);
    std::string out = "killed by signal " + std::to_string(sig);
    if (abbrev) out += std::string(" (SIG") + abbrev + ")";
    return out;
}

std::string duration_text(std::chrono::milliseconds d) {
    const auto ms = d.count();
    if (ms % 60000 == 0) return std::to_string(ms / 60000) + "m";
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

// Names non-empty and unique, commands non-empty. Returns name → index.
Result<std::unordered_map<std::string, std::size_t>> check_names(
    const std::vector<RunSpec>& specs) {
    std::unordered_map<std::string, std::size_t> index;
    index.reserve(specs.size());
    for (std::size_t i = 0; i < specs.size(); ++i) {
        const RunSpec& s = specs[i];
        if (s.name.empty()) return fail(E(kOp, "step #" + std::to_string(i + 1) + ": empty name"));
        if (s.command.empty()) return fail(E(kOp, "step " + quoted(s.name) + ": empty command"));
        auto [it, fresh] = index.emplace(s.name, i);
        if (!fresh)
            return fail(E(kOp, "duplicate step name " + quoted(s.name) + " (steps #" +
                                   std::to_string(it->second + 1) + " and #" +
                                   std::to_string(i + 1) + ")"));
    }
    return index;
}

// The dependency graph of run_all: deps[i] are the indices spec i waits for (deduplicated).
Result<std::vector<std::vector<std::size_t>>> build_graph(const std::vector<RunSpec>& specs) {
    auto index = check_names(specs);
    if (!index) return fail(index.error());
    std::vector<std::vector<std::size_t>> deps(specs.size());
    for (std::size_t i = 0; i < specs.size(); ++i) {
        for (const std::string& name : specs[i].after) {
            auto it = index->find(name);
            if (it == index->end())
                return fail(E(
                    kOp, "step " + quoted(specs[i].name) + ": unknown dependency " + quoted(name)));
            if (std::find(deps[i].begin(), deps[i].end(), it->second) == deps[i].end())
                deps[i].push_back(it->second);
        }
    }
    // Kahn's algorithm; whatever is left over lies on or behind a cycle.
    std::vector<std::size_t> pending(specs.size());
    std::vector<std::vector<std::size_t>> dependents(specs.size());
    for (std::size_t i = 0; i < specs.size(); ++i) {
        pending[i] = deps[i].size();
        for (std::size_t d : deps[i]) dependents[d].push_back(i);
    }
    std::vector<std::size_t> queue;
    for (std::size_t i = 0; i < specs.size(); ++i)
        if (pending[i] == 0) queue.push_back(i);
    std::size_t done = 0;
    while (!queue.empty()) {
        const std::size_t u = queue.back();
        queue.pop_back();
        ++done;
        for (std::size_t v : dependents[u])
            if (--pending[v] == 0) queue.push_back(v);
    }
    if (done == specs.size()) return deps;
    // Every left-over spec waits for at least one other left-over spec, so following such
    // edges from any of them must come back to a spec already seen: that loop is a cycle.
    std::size_t u = 0;
    while (pending[u] == 0) ++u;
    std::vector<std::size_t> path;
    std::vector<std::size_t> seen_at(specs.size(), SIZE_MAX);
    while (seen_at[u] == SIZE_MAX) {
        seen_at[u] = path.size();
        path.push_back(u);
        for (std::size_t d : deps[u]) {
            if (pending[d] != 0) {
                u = d;
                break;
            }
        }
    }
    std::string text;
    for (std::size_t k = seen_at[u]; k < path.size(); ++k)
        text += quoted(specs[path[k]].name) + " -> ";
    text += quoted(specs[u].name);
    return fail(E(kOp, "dependency cycle: " + text + " (each waits for the next)"));
}

enum class Mode { all, sequential, parallel };

// Runs one batch. Workers (the calling thread plus up to parallel-1 threads) take ready specs
// in input order; a finished spec releases or skips its dependents under mu_; idle workers
// block on cv_ — nothing polls.
class Scheduler {
  public:
    Scheduler(Service& svc, const RunnerOptions& opts, const Context& ctx,
              const std::vector<RunSpec>& specs, std::vector<std::vector<std::size_t>> deps,
              Mode mode)
        : svc_(svc),
          opts_(opts),
          ctx_(ctx),
          specs_(specs),
          mode_(mode),
          results_(specs.size()),
          waiting_(specs.size()),
          finished_flag_(specs.size(), false),
          dependents_(specs.size()) {
        for (std::size_t i = 0; i < specs.size(); ++i) {
            results_[i].name = specs[i].name;
            waiting_[i] = deps[i].size();
            for (std::size_t d : deps[i]) dependents_[d].push_back(i);
            if (waiting_[i] == 0) ready_.insert(i);
        }
    }

    RunAllResult run(std::size_t parallel) {
        const auto t0 = std::chrono::steady_clock::now();
        const std::size_t workers = std::max<std::size_t>(1, std::min(parallel, specs_.size()));
        std::vector<std::thread> threads;
        threads.reserve(workers - 1);
        for (std::size_t k = 1; k < workers; ++k) {
            try {
                threads.emplace_back([this] { work(); });
            } catch (const std::system_error&) {
                break;  // fewer workers (EAGAIN): slower, still correct; the caller works too
            }
        }
        work();
        for (auto& t : threads) t.join();

        RunAllResult out;
        out.results = std::move(results_);
        for (const RunResult& r : out.results) {
            switch (r.status) {
                case RunStatus::passed:
                    ++out.passed;
                    break;
                case RunStatus::failed:
                    ++out.failed;
                    if (r.allowed_failure) ++out.allowed_failures;
                    break;
                case RunStatus::skipped:
                    ++out.skipped;
                    break;
            }
        }
        out.duration = std::chrono::steady_clock::now() - t0;
        return out;
    }

  private:
    void work() {
        std::unique_lock lk(mu_);
        for (;;) {
            cv_.wait(lk, [this] { return !ready_.empty() || finished_ == specs_.size(); });
            if (ready_.empty()) return;
            const std::size_t i = *ready_.begin();
            ready_.erase(ready_.begin());
            std::vector<std::size_t> report;
            std::vector<std::size_t> release;
            if (ctx_.done()) {
                RunResult r;
                r.status = RunStatus::skipped;
                r.error = std::string("not started: ") + ctx_.reason();
                complete(i, std::move(r), report, release);
            } else {
                lk.unlock();
                notify(RunProgress::Kind::started, i);
                RunResult r = execute(specs_[i]);
                lk.lock();
                complete(i, std::move(r), report, release);
            }
            // Finished events go out before the dependents they release become ready, so a
            // progress observer always sees a dependency finish before its dependent starts.
            // results_[k] of a finished spec is never written again: safe to read unlocked.
            lk.unlock();
            for (std::size_t k : report) notify(RunProgress::Kind::finished, k);
            lk.lock();
            if (!release.empty()) {
                ready_.insert(release.begin(), release.end());
                cv_.notify_all();
            }
        }
    }

    void notify(RunProgress::Kind kind, std::size_t i) {
        if (!opts_.on_progress) return;
        RunProgress p;
        p.kind = kind;
        p.index = i;
        p.spec = &specs_[i];
        if (kind == RunProgress::Kind::finished) p.result = &results_[i];
        try {
            opts_.on_progress(p);
        } catch (...) {
            // A throwing callback must not take a worker thread (and the process) down.
        }
    }

    // Under mu_: records i's result, then skips its dependents (transitively) or, when their
    // last dependency is done, appends them to release (the caller makes them ready). Appends
    // every spec finished here to report.
    void complete(std::size_t i, RunResult r, std::vector<std::size_t>& report,
                  std::vector<std::size_t>& release) {
        r.name = specs_[i].name;
        results_[i] = std::move(r);
        finished_flag_[i] = true;
        ++finished_;
        report.push_back(i);
        std::vector<std::size_t> stack{i};
        while (!stack.empty()) {
            const std::size_t u = stack.back();
            stack.pop_back();
            const RunResult& ru = results_[u];
            const bool blocks = ru.status == RunStatus::skipped ||
                                (ru.status == RunStatus::failed && !ru.allowed_failure);
            for (std::size_t v : dependents_[u]) {
                if (finished_flag_[v]) continue;  // already skipped through another dependency
                if (!blocks) {
                    if (--waiting_[v] == 0) release.push_back(v);
                    continue;
                }
                RunResult skipped;
                skipped.name = specs_[v].name;
                skipped.status = RunStatus::skipped;
                if (mode_ == Mode::sequential)
                    skipped.error = "step " + quoted(specs_[u].name) +
                                    (ru.status == RunStatus::skipped ? " was skipped" : " failed");
                else
                    skipped.error = "dependency " + quoted(specs_[u].name) +
                                    (ru.status == RunStatus::skipped ? " was skipped" : " failed");
                results_[v] = std::move(skipped);
                finished_flag_[v] = true;
                ++finished_;
                report.push_back(v);
                stack.push_back(v);
            }
        }
        cv_.notify_all();
    }

    // Runs one spec through the Service and waits for it (a ManagedProcess wait: a condition
    // variable the reaper signals, no polling). The Service rather than the process.run action
    // because run's Value is only the output and its Error only text; the exit code, the signal
    // and a timeout must come back typed.
    RunResult execute(const RunSpec& s) {
        RunResult r;
        r.allowed_failure = false;
        RunOptions o;
        o.command = s.command;
        o.args = s.args;
        o.dir = s.dir;
        o.env = s.env;
        // A step is often a tool that starts its own children (make, a shell script): kill the
        // whole group on timeout or cancellation, so no grandchild outlives the run.
        o.kill_group = true;
        // The timeout is a child context, so the Service kills the group when it expires, and
        // deadline_exceeded() then tells a timeout apart from any other kill.
        const Context run_ctx = s.timeout.count() > 0 ? ctx_.with_timeout(s.timeout) : ctx_;
        const auto t0 = std::chrono::steady_clock::now();
        auto started = svc_.start(run_ctx, o);
        if (!started) {
            r.status = RunStatus::failed;
            r.allowed_failure = s.allow_failure;
            r.error = started.error().what();
            r.duration = std::chrono::steady_clock::now() - t0;
            return r;
        }
        const std::shared_ptr<ManagedProcess>& mp = *started;
        const ProcessInfo info = mp->wait();
        r.output = mp->output();
        (void)svc_.remove(mp->id());  // finished: cannot fail but for a concurrent remove
        r.duration =
            info.duration.count() > 0 ? info.duration : std::chrono::steady_clock::now() - t0;
        r.exit_code = info.status == Status::exited ? info.exit_code : -1;
        r.signal = info.signal;
        if (ctx_.done()) {
            // The caller cancelled: whatever the child did after that is not its own verdict.
            if (info.status == Status::exited && info.exit_code == 0) {
                r.status = RunStatus::passed;
                return r;
            }
            r.status = RunStatus::failed;
            r.error = ctx_.reason();
        } else if (s.timeout.count() > 0 && run_ctx.deadline_exceeded()) {
            r.status = RunStatus::failed;
            r.timed_out = true;
            r.exit_code = -1;
            r.error = "timed out after " + duration_text(s.timeout);
        } else if (info.status == Status::exited) {
            if (info.exit_code == 0) {
                r.status = RunStatus::passed;
                return r;
            }
            r.status = RunStatus::failed;
            r.error = "exited with code " + std::to_string(info.exit_code);
        } else if (info.status == Status::killed) {
            r.status = RunStatus::failed;
            r.error = signal_text(info.signal);
        } else {
            r.status = RunStatus::failed;
            r.error = info.error.empty() ? std::string("failed") : info.error;
        }
        r.allowed_failure = s.allow_failure;
        return r;
    }

    Service& svc_;
    const RunnerOptions& opts_;
    const Context ctx_;
    const std::vector<RunSpec>& specs_;
    const Mode mode_;

    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<RunResult> results_;    // written once per spec, under mu_
    std::vector<std::size_t> waiting_;  // unfinished dependencies per spec
    std::vector<bool> finished_flag_;   // result recorded
    std::vector<std::vector<std::size_t>> dependents_;
    std::set<std::size_t> ready_;  // ordered: ready specs start in input order
    std::size_t finished_ = 0;
};

}  // namespace
}  // namespace detail

Runner::Runner(Service& service, RunnerOptions opts)
    : service_(&service), opts_(std::move(opts)), max_parallel_(opts_.max_parallel) {
    if (max_parallel_ == 0) max_parallel_ = std::max(1u, std::thread::hardware_concurrency());
}

Result<Runner> Runner::create(core::Core& core, RunnerOptions opts) {
    auto svc = core.service<Service>("process");
    if (!svc) return fail(E("runner", "no process service registered (register_service)"));
    return Runner(*svc, std::move(opts));
}

Result<void> Runner::validate(const std::vector<RunSpec>& specs) {
    auto graph = detail::build_graph(specs);
    if (!graph) return fail(graph.error());
    return {};
}

Result<RunAllResult> Runner::run_all(const Context& ctx, const std::vector<RunSpec>& specs) const {
    auto graph = detail::build_graph(specs);
    if (!graph) return fail(graph.error());
    detail::Scheduler s(*service_, opts_, ctx, specs, std::move(*graph), detail::Mode::all);
    return s.run(max_parallel_);
}

Result<RunAllResult> Runner::run_sequential(const Context& ctx,
                                            const std::vector<RunSpec>& specs) const {
    if (auto names = detail::check_names(specs); !names) return fail(names.error());
    // A chain: each spec waits for the one before, so a failure skips the rest.
    std::vector<std::vector<std::size_t>> deps(specs.size());
    for (std::size_t i = 1; i < specs.size(); ++i) deps[i].push_back(i - 1);
    detail::Scheduler s(*service_, opts_, ctx, specs, std::move(deps), detail::Mode::sequential);
    return s.run(1);
}

Result<RunAllResult> Runner::run_parallel(const Context& ctx,
                                          const std::vector<RunSpec>& specs) const {
    if (auto names = detail::check_names(specs); !names) return fail(names.error());
    std::vector<std::vector<std::size_t>> deps(specs.size());
    detail::Scheduler s(*service_, opts_, ctx, specs, std::move(deps), detail::Mode::parallel);
    return s.run(max_parallel_);
}

}  // namespace core::process
