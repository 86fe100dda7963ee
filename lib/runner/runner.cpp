#include "core/process/runner.hpp"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>

#include "core/graph.hpp"
#include "core/process/managed_process.hpp"
#include "core/process/service.hpp"
#include "core/process/types.hpp"
#include "core/runtime.hpp"
#include "process/output.hpp"

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
    const auto cycle = core::find_cycle(deps);
    if (cycle.empty()) return deps;
    std::string text;
    for (std::size_t k = 0; k + 1 < cycle.size(); ++k)
        text += quoted(specs[cycle[k]].name) + " -> ";
    text += quoted(specs[cycle.back()].name);
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
          run_ctx_(opts.fail_fast ? ctx.with_cancel() : ctx),
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
            if (run_ctx_.done()) {
                RunResult r;
                r.status = RunStatus::skipped;
                r.error = std::string("not started: ") +
                          (ctx_.done() ? std::string(ctx_.reason()) : stop_reason_);
                r.finished_at = std::chrono::system_clock::now();
                complete(i, std::move(r), report, release);
            } else {
                lk.unlock();
                notify(RunProgress::Kind::started, i);
                RunResult r = execute(i);
                lk.lock();
                // fail_fast: the first failure that counts stops the run (stop_reason_ is set
                // before the cancel, under mu_, so whoever sees run_ctx_ done can read it).
                if (opts_.fail_fast && r.status == RunStatus::failed && !r.allowed_failure &&
                    !run_ctx_.done()) {
                    stop_reason_ = "fail-fast: step " + quoted(specs_[i].name) + " failed";
                    run_ctx_.cancel();
                }
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

    // Runs one spec through the Service and waits for it. The Service rather than the
    // process.run action because run's Value is only the output and its Error only text; the
    // typed completion (ExitStatus), each stream apart and the usage must come back. The end
    // is learnt from the process's own exit hook (ManagedProcess::on_exit), which runs after
    // its last output chunk: so every line of a step is delivered before its finished event,
    // with or without the Service's bus events.
    RunResult execute(std::size_t index) {
        const RunSpec& s = specs_[index];
        RunResult r;
        r.allowed_failure = false;
        r.started_at = std::chrono::system_clock::now();
        r = execute_process(index, s, std::move(r));
        r.finished_at = std::chrono::system_clock::now();
        return r;
    }

    // What one running step's callbacks share with the worker waiting for it. The chunk
    // callback and the exit hook run on the Service's notifier thread; the worker waits on cv.
    struct Step {
        std::mutex mu;
        std::condition_variable cv;
        bool done = false;
        ProcessInfo info;
        OutputRing combined{kMaxOutput};  // both streams in arrival order, under mu
        LineSplitter out{kMaxOutput};     // under the Scheduler's out_mu_
        LineSplitter err{kMaxOutput};
    };

    RunResult execute_process(std::size_t index, const RunSpec& s, RunResult r) {
        RunOptions o;
        static_cast<Command&>(o) = s;
        o.cgroup = s.cgroup;
        o.limits = s.limits;
        o.identity = s.identity;
        // A step is often a tool that starts its own children (make, a shell script): kill the
        // whole group on timeout or cancellation, so no grandchild outlives the run.
        o.kill_group = true;
        // The Service's own timeout, so the completion says why it ended (reason timeout).
        o.timeout = s.timeout;
        // Each stream apart (RunResult::std_out/std_err); the combined view is rebuilt from
        // the chunks in the order they were read.
        o.std_out = Stdio::pipe();
        o.std_err = Stdio::pipe();
        o.max_output = kMaxOutput;
        auto step = std::make_shared<Step>();
        // The Scheduler outlives the callback: execute_process returns only after the exit
        // hook ran, and no chunk of a process comes after its exit hook.
        o.on_output = [this, step, index](const OutputChunk& c) {
            {
                std::lock_guard lk(step->mu);
                step->combined.append(c.bytes.data(), c.bytes.size());
            }
            if (!opts_.on_output) return;
            std::lock_guard lk(out_mu_);
            LineSplitter& split = c.stream == Stream::stderr_ ? step->err : step->out;
            split.feed(c.bytes.data(), c.bytes.size(),
                       [&](std::string line) { deliver(index, line, c.stream); });
        };
        const auto t0 = std::chrono::steady_clock::now();
        auto started = svc_.start(run_ctx_, o);
        if (!started) {
            r.status = RunStatus::failed;
            r.allowed_failure = s.allow_failure;
            r.error = started.error().what();
            r.exit.kind = ExitKind::failed_to_start;
            r.exit.code = -1;
            r.exit.detail = r.error;
            r.duration = std::chrono::steady_clock::now() - t0;
            return r;
        }
        const std::shared_ptr<ManagedProcess>& mp = *started;
        mp->on_exit([this, step, index](const ProcessInfo& info) {
            if (opts_.on_output) {
                // The last line of each stream, if it had no newline.
                std::lock_guard lk(out_mu_);
                step->out.flush([&](std::string l) { deliver(index, l, Stream::stdout_); });
                step->err.flush([&](std::string l) { deliver(index, l, Stream::stderr_); });
            }
            std::lock_guard lk(step->mu);
            step->info = info;
            step->done = true;
            step->cv.notify_all();
        });
        ProcessInfo info;
        {
            // on_exit runs exactly once for every started process: this wait ends.
            std::unique_lock lk(step->mu);
            step->cv.wait(lk, [&] { return step->done; });
            info = std::move(step->info);
            r.output = step->combined.str();
        }
        r.std_out = mp->output(Stream::stdout_);
        r.std_err = mp->output(Stream::stderr_);
        r.std_out_dropped = info.output_dropped;
        r.std_err_dropped = info.stderr_dropped;
        (void)svc_.remove(mp->id());  // finished: cannot fail but for a concurrent remove
        r.exit = info.exit;
        r.usage = info.usage;
        r.duration =
            info.duration.count() > 0 ? info.duration : std::chrono::steady_clock::now() - t0;
        const ExitStatus& x = info.exit;
        r.exit_code = x.kind == ExitKind::exited ? x.code : -1;
        r.signal = x.kind == ExitKind::signalled ? x.signal : 0;
        if (ctx_.done()) {
            // The caller cancelled: whatever the child did after that is not its own verdict.
            if (x.kind == ExitKind::exited && x.code == 0) {
                r.status = RunStatus::passed;
                return r;
            }
            r.status = RunStatus::failed;
            r.error = ctx_.reason();
        } else if (run_ctx_.done() && x.kind != ExitKind::exited) {
            // Stopped by fail_fast (another step failed); an exit of its own keeps its verdict.
            std::lock_guard lk(mu_);
            r.status = RunStatus::failed;
            r.error = "stopped (" + stop_reason_ + ")";
        } else if (x.reason == ExitReason::timeout) {
            r.status = RunStatus::failed;
            r.timed_out = true;
            r.exit_code = -1;
            r.error = "timed out after " + duration_text(s.timeout);
        } else if (x.kind == ExitKind::exited) {
            // Exit 0 passes even when a descendant kept the pipes past the drain (output_cut):
            // the step's own verdict is its exit code, as make's is.
            if (x.code == 0) {
                r.status = RunStatus::passed;
                return r;
            }
            r.status = RunStatus::failed;
            r.error = x.describe();
        } else if (x.kind == ExitKind::signalled) {
            r.status = RunStatus::failed;
            r.error = x.describe();
        } else {
            r.status = RunStatus::failed;
            r.error = info.error.empty() ? x.describe() : info.error;
        }
        r.allowed_failure = s.allow_failure;
        return r;
    }

    // Under out_mu_.
    void deliver(std::size_t index, std::string_view line, Stream stream) {
        RunOutput o;
        o.index = index;
        o.spec = &specs_[index];
        o.line = line;
        o.stream = stream;
        try {
            opts_.on_output(o);
        } catch (...) {
            // As on_progress: a throwing callback must not take the notifier thread down.
        }
    }

    // Newest bytes kept of each stream and of the combined output; also the longest piece of
    // a line given to on_output.
    static constexpr std::size_t kMaxOutput = std::size_t{1} << 20;

    Service& svc_;
    const RunnerOptions& opts_;
    const Context ctx_;
    const Context run_ctx_;  // ctx_, or with fail_fast a child of it cancelled on a failure
    const std::vector<RunSpec>& specs_;
    const Mode mode_;
    std::string stop_reason_;  // why run_ctx_ was cancelled (fail_fast), under mu_

    std::mutex out_mu_;  // serialises on_output calls and the steps' line splitters

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

Result<std::vector<std::size_t>> Runner::order(const std::vector<RunSpec>& specs) {
    auto graph = detail::build_graph(specs);
    if (!graph) return fail(graph.error());
    const auto& deps = *graph;
    std::vector<std::size_t> waiting(specs.size());
    std::vector<std::vector<std::size_t>> dependents(specs.size());
    std::set<std::size_t> ready;
    for (std::size_t i = 0; i < specs.size(); ++i) {
        waiting[i] = deps[i].size();
        for (std::size_t d : deps[i]) dependents[d].push_back(i);
        if (waiting[i] == 0) ready.insert(i);
    }
    std::vector<std::size_t> out;
    out.reserve(specs.size());
    while (!ready.empty()) {
        const std::size_t u = *ready.begin();
        ready.erase(ready.begin());
        out.push_back(u);
        for (std::size_t v : dependents[u])
            if (--waiting[v] == 0) ready.insert(v);
    }
    return out;
}

Result<std::vector<RunSpec>> select_steps(const std::vector<RunSpec>& specs,
                                          const std::vector<std::string>& targets) {
    auto graph = detail::build_graph(specs);
    if (!graph) return fail(graph.error());
    std::unordered_map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < specs.size(); ++i) index.emplace(specs[i].name, i);
    std::vector<bool> wanted(specs.size(), false);
    std::vector<std::size_t> stack;
    for (const std::string& t : targets) {
        auto it = index.find(t);
        if (it == index.end()) {
            std::string known;
            for (const RunSpec& s : specs) known += (known.empty() ? "" : ", ") + s.name;
            return fail(
                E("pipeline", "unknown step " + detail::quoted(t) + " (steps: " + known + ")"));
        }
        stack.push_back(it->second);
    }
    while (!stack.empty()) {
        const std::size_t u = stack.back();
        stack.pop_back();
        if (wanted[u]) continue;
        wanted[u] = true;
        for (std::size_t d : (*graph)[u]) stack.push_back(d);
    }
    std::vector<RunSpec> out;
    for (std::size_t i = 0; i < specs.size(); ++i)
        if (wanted[i]) out.push_back(specs[i]);
    return out;
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
