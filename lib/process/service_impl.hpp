// Service::Impl, the process service's inside, shared by its sources: service.cpp (run, exec,
// retention, shutdown, pipelines), service_start.cpp (start as named steps), service_plan.cpp
// (the environment, the executable and the stdio plan), service_query.cpp (get, list, kill,
// signal, remove) and service_actions.cpp (the actions and their option readers).
#pragma once

#include <atomic>
#include <condition_variable>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/process/service.hpp"
#include "process/events.hpp"
#include "process/notifier.hpp"
#include "process/reaper.hpp"
#include "process/state.hpp"
#include "sys/fd.hpp"
#include "sys/stdio.hpp"

namespace core::process {

namespace detail {

// An Error for op that keeps a lower layer's text and errno: `process.run: pipe2: Too many…`.
inline Error wrap(const std::string& op, const Error& e) {
    return Error(op, e.what(), e.code());
}

// Out of a resource (processes, memory, descriptors) rather than a bad command.
inline bool is_resource_errno(int e) {
    return e == EAGAIN || e == ENOMEM || e == EMFILE || e == ENFILE;
}

// How much of the output run()'s Error quotes.
inline constexpr std::size_t error_tail = 4096;

// Step 3 of start, resolve (service_plan.cpp): the child's environment under its policy, and
// the executable found on the PATH that applies to it.
struct Resolved {
    std::vector<std::string> env_store;
    std::vector<char*> envp;  // empty: the host's environ as it is
    std::string exe;
};
Result<Resolved> resolve(const std::string& op, const RunOptions& o);

// Step 4 of start, plan stdio (service_plan.cpp): every descriptor the child gets, and the
// parent ends we keep.
struct StdioPlan {
    sys::UniqueFd child_own[3];        // owned sources for 0, 1, 2 (pipe ends, files, dups)
    int child[3] = {-1, -1, -1};       // what is dup2'd onto 0, 1, 2; -1: inherit ours
    sys::UniqueFd out_read, err_read;  // captured stdout / stderr
    sys::UniqueFd in_write;            // stdin pipe (pipe or bytes)
    bool separate_err = false;
    bool pty = false;
    sys::Pty pty_pair;
    std::vector<sys::UniqueFd> pass_own;
    std::vector<int> pass_src, pass_dst;
};
Result<StdioPlan> plan_stdio(const std::string& op, const RunOptions& o, int devnull_fd);

}  // namespace detail

struct Service::Impl {
    Impl(Service& s, Core& c, ServiceOptions o)
        : self(s),
          core(c),
          opts(o),
          events(o.events ? std::make_shared<detail::EventDispatcher>(
                                c.weak_from_this(), c.subscriber_count(), o.max_queued_lines)
                          : nullptr),
          notifier(detail::Notifier::create(o.max_queued_output_bytes)) {}

    Service& self;
    Core& core;
    ServiceOptions opts;
    Registry<std::shared_ptr<ManagedProcess>> managed{"process"};
    std::shared_ptr<detail::EventDispatcher> events;
    std::shared_ptr<detail::Notifier> notifier;

    std::mutex mu;  // guards everything below
    std::condition_variable cv;
    std::shared_ptr<detail::Reaper> reaper;
    bool accepting = true;
    int in_flight = 0;  // start() calls between admission and registration
    sys::UniqueFd devnull;
    std::list<std::string> finished;  // retained finished ids, oldest first
    // Running processes in start order, and the newest process per pid: list(running_only),
    // kill_pid and shutdown cost O(running), not O(retained).
    std::uint64_t next_seq = 0;
    std::map<std::uint64_t, std::shared_ptr<ManagedProcess>> running;
    std::unordered_map<std::string, std::uint64_t> seq_of;
    std::unordered_map<int, std::weak_ptr<ManagedProcess>> by_pid;
    std::unordered_map<std::string, std::list<std::string>::iterator> finished_pos;
    std::atomic<bool> told_fallback{false};

    // start() as named steps (service_start.cpp): validate -> admit -> resolve -> plan stdio ->
    // spawn -> register.
    Result<std::shared_ptr<ManagedProcess>> start(const std::string& op, const Context& ctx,
                                                  const RunOptions& o, bool transient);
    struct Admission {
        std::shared_ptr<detail::Reaper> reaper;
        int devnull_fd = -1;
    };
    // Counts the start in flight (until leave()), creating the reaper and /dev/null on first use.
    // Errors: ESHUTDOWN once shut down; the reaper's or /dev/null's.
    Result<Admission> admit(const std::string& op);
    void leave() noexcept;
    Result<void> spawn(const std::string& op, const RunOptions& o, const detail::Resolved& res,
                       detail::StdioPlan& plan, detail::ProcessState& st, bool new_session);
    Result<std::shared_ptr<ManagedProcess>> register_process(
        const std::string& op, const Context& ctx, const RunOptions& o,
        const std::shared_ptr<detail::ProcessState>& st,
        const std::shared_ptr<detail::Reaper>& reaper_ref);
    Result<std::string> run(const Context& ctx, const RunOptions& o);
    Result<Completed> exec(const std::string& op, const Context& ctx, const RunOptions& o);
    void on_finished(const std::shared_ptr<detail::ProcessState>& st);
    void stop_all(bool deliver_events, const Context* ctx = nullptr);
    void forget_finished(const std::string& id);
};

}  // namespace core::process
