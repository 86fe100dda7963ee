#include "process/cgroup.hpp"

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <vector>

#include "process/state.hpp"
#include "sys/cgroup.hpp"
#include "sys/file.hpp"
#include "sys/proc.hpp"
#include "sys/signals.hpp"

namespace core::process::detail {

namespace cg = sys::cgroup;

namespace {

std::atomic<unsigned long> g_serial{0};

bool has_word(std::string_view list, std::string_view word) {
    while (!list.empty()) {
        const auto sp = list.find_first_of(" \n");
        if (list.substr(0, sp) == word) return true;
        if (sp == std::string_view::npos) break;
        list = list.substr(sp + 1);
    }
    return false;
}

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// Makes controller available to the children of the parent cgroup: present in its
// cgroup.controllers and enabled in its cgroup.subtree_control (enabled here if need be).
Result<void> enable_controller(const std::string& parent, int parent_fd, const char* controller,
                               const char* option) {
    auto have = cg::read(parent_fd, "cgroup.controllers");
    if (!have) return fail(have.error());
    if (!has_word(*have, controller)) {
        const std::string list = trimmed(*have);
        return fail(
            Error("cgroup",
                  std::string("option \"") + option + "\" needs the " + controller +
                      " controller, which cgroup " + parent +
                      " does not have (cgroup.controllers: " + (list.empty() ? "none" : list) +
                      "; it must be delegated to this cgroup v2 hierarchy)",
                  EOPNOTSUPP));
    }
    auto on = cg::read(parent_fd, "cgroup.subtree_control");
    if (!on) return fail(on.error());
    if (has_word(*on, controller)) return {};
    if (auto w = cg::write(parent_fd, "cgroup.subtree_control", std::string("+") + controller);
        !w) {
        // EBUSY: the parent has processes of its own (the "no internal processes" rule).
        return fail(E_errno("cgroup",
                            std::string("option \"") + option + "\": enabling the " + controller +
                                " controller in " + parent + "/cgroup.subtree_control",
                            w.error().code()));
    }
    return {};
}

}  // namespace

Result<std::string> find_cgroup_parent(const std::string& configured) {
    auto mount = cg::mount_point();
    if (!mount) return fail(mount.error());
    if (!configured.empty()) {
        std::string p = configured[0] == '/' && configured.rfind(*mount, 0) == 0
                            ? configured
                            : *mount + (configured[0] == '/' ? "" : "/") + configured;
        while (p.size() > 1 && p.back() == '/') p.pop_back();
        if (int err = cg::missing(p + "/cgroup.procs"))
            return fail(E_errno("cgroup", "parent cgroup " + p + " (cgroup_parent)", err));
        return p;
    }
    if (auto self = cg::self_path()) {
        const std::string own = *self == "/" ? *mount : *mount + *self;
        if (cg::writable(own)) return own;
        if (cg::hybrid() && cg::writable(*mount)) return *mount;
        return fail(Error("cgroup",
                          "no writable cgroup to create per-process cgroups in: our own " + own +
                              " is not writable (not delegated); set ServiceOptions::cgroup_parent "
                              "(coreproc: run it in a delegated cgroup, e.g. systemd-run "
                              "--user -p Delegate=yes --scope)",
                          EACCES));
    }
    if (cg::writable(*mount)) return *mount;
    return fail(Error("cgroup", "the cgroup2 mount " + *mount + " is not writable", EACCES));
}

Result<std::shared_ptr<Cgroup>> Cgroup::create(const std::string& parent, const Limits& limits) {
    std::shared_ptr<Cgroup> c(new Cgroup());
    auto pfd = cg::open_dir(parent);
    if (!pfd) return fail(E("cgroup", "parent " + parent, pfd.error()));
    // Controllers first: a refusal then leaves nothing behind.
    struct Need {
        bool want;
        const char* controller;
        const char* option;
    };
    const Need needs[] = {
        {limits.memory_max.has_value(), "memory", "memoryMax"},
        {limits.memory_swap_max.has_value(), "memory", "memorySwapMax"},
        {limits.pids_max.has_value(), "pids", "pidsMax"},
        {limits.cpu_max.has_value(), "cpu", "cpuMax"},
        {limits.io_weight.has_value(), "io", "ioWeight"},
    };
    for (const auto& n : needs)
        if (n.want)
            if (auto e = enable_controller(parent, pfd->get(), n.controller, n.option); !e)
                return fail(e.error());

    const std::string name = "core-process-" + std::to_string(sys::file::self_pid()) + "-" +
                             std::to_string(g_serial.fetch_add(1) + 1);
    c->path_ = parent + "/" + name;
    if (auto m = cg::make(c->path_); !m) return fail(E("cgroup", "create", m.error()));
    auto dir = cg::open_dir(c->path_);
    if (!dir) {
        (void)cg::remove(c->path_);
        c->removed_ = true;
        return fail(E("cgroup", "open", dir.error()));
    }
    c->dir_ = std::move(*dir);
    // From here on the destructor removes the directory on every failure.
    auto events = cg::open_file(c->dir_.get(), "cgroup.events");
    if (!events) return fail(E("cgroup", c->path_, events.error()));
    c->events_ = std::move(*events);

    auto set = [&](const char* file, const std::string& value) -> Result<void> {
        if (auto w = cg::write(c->dir_.get(), file, value); !w)
            return fail(E("cgroup", c->path_, w.error()));
        return {};
    };
    if (limits.memory_max) {
        if (auto r = set("memory.max", std::to_string(*limits.memory_max)); !r)
            return fail(r.error());
        c->memory_text_ = "memory.max " + format_size(*limits.memory_max);
    }
    if (limits.memory_swap_max)
        if (auto r = set("memory.swap.max", std::to_string(*limits.memory_swap_max)); !r)
            return fail(r.error());
    if (limits.pids_max)
        if (auto r = set("pids.max", std::to_string(*limits.pids_max)); !r) return fail(r.error());
    if (limits.cpu_max) {
        constexpr long long period = 100000;  // µs, the kernel's default
        const auto quota = static_cast<long long>(std::llround(*limits.cpu_max * period));
        if (auto r = set("cpu.max", std::to_string(quota < 1000 ? 1000 : quota) + " " +
                                        std::to_string(period));
            !r)
            return fail(r.error());
    }
    if (limits.io_weight)
        if (auto r = set("io.weight", "default " + std::to_string(*limits.io_weight)); !r)
            return fail(r.error());
    return c;
}

Cgroup::~Cgroup() {
    if (removed_ || path_.empty()) return;
    // Last chance: a tree that outlived end_tree's bound may be gone by now.
    events_.reset();
    dir_.reset();
    (void)cg::remove(path_);
}

Result<void> Cgroup::signal_members(int sig) const {
    std::lock_guard lk(mu_);
    return signal_members_locked(sig);
}

Result<void> Cgroup::kill() const {
    std::lock_guard lk(mu_);
    return kill_locked();
}

Result<bool> Cgroup::populated() const {
    std::lock_guard lk(mu_);
    return populated_locked();
}

Accounting Cgroup::account() const {
    std::lock_guard lk(mu_);
    return account_locked();
}

Result<void> Cgroup::signal_members_locked(int sig) const {
    if (!dir_) return {};  // removed: empty
    auto first = cg::procs(dir_.get());
    if (!first) return fail(first.error());
    std::vector<std::pair<int, sys::UniqueFd>> held;
    held.reserve(first->size());
    for (int pid : *first) {
        auto pfd = sys::pidfd_open(pid);
        if (pfd) held.emplace_back(pid, std::move(*pfd));
    }
    auto again = cg::procs(dir_.get());
    if (!again) return fail(again.error());
    for (auto& [pid, pfd] : held) {
        bool still = false;
        for (int p : *again) still = still || p == pid;
        if (still) (void)sys::pidfd_send_signal(pfd.get(), sig);
    }
    return {};
}

Result<void> Cgroup::kill_locked() const {
    if (!dir_) return {};
    auto w = cg::write(dir_.get(), "cgroup.kill", "1");
    if (w) return {};
    if (w.error().code() != ENOENT) return fail(w.error());
    // No cgroup.kill (kernel < 5.14): SIGKILL each member; forks racing with it are caught by
    // the caller's repeated calls while the cgroup stays populated.
    return signal_members_locked(sys::sig_kill());
}

Result<bool> Cgroup::populated_locked() const {
    if (!dir_) return false;
    auto text = cg::read(dir_.get(), "cgroup.events");
    if (!text) return fail(text.error());
    return cg::keyed(*text, "populated") > 0;
}

Accounting Cgroup::account_locked() const {
    Accounting a;
    a.accounted = true;
    auto num = [&](const char* file) -> std::uint64_t {
        auto t = cg::read(dir_.get(), file);
        if (!t) return 0;
        unsigned long long v = 0;
        if (std::sscanf(t->c_str(), "%llu", &v) != 1) return 0;
        return v;
    };
    a.memory_peak = num("memory.peak");
    a.memory_current = num("memory.current");
    if (auto t = cg::read(dir_.get(), "cpu.stat")) {
        const long long u = cg::keyed(*t, "usage_usec");
        if (u > 0) a.cpu_usage = std::chrono::microseconds(u);
    }
    if (auto t = cg::read(dir_.get(), "memory.events")) {
        const long long k = cg::keyed(*t, "oom_kill");
        if (k > 0) a.oom_kills = static_cast<std::uint64_t>(k);
    }
    return a;
}

bool Cgroup::end_tree(Accounting& out) {
    std::lock_guard lk(mu_);
    if (removed_) return true;
    bool empty = false;
    const auto deadline = std::chrono::steady_clock::now() + cgroup_empty_timeout;
    for (int round = 0; round < 8 && !empty; ++round) {
        auto p = populated_locked();
        if (p && !*p) {
            empty = true;
            break;
        }
        (void)kill_locked();
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        // Bounded: each round sleeps in poll(POLLPRI) on cgroup.events until it changes.
        auto w = cg::wait_unpopulated(events_.get(), left);
        empty = w && *w;
        if (!w) break;
    }
    out = account_locked();
    if (!empty) return false;
    if (cg::remove(path_)) {
        removed_ = true;
        events_.reset();
        dir_.reset();
    }
    return removed_;
}

void cgroup_signal(const Cgroup& c, int sig) noexcept {
    try {
        // The stop signals and the SIGCONT that follows them (a stopped member cannot act on
        // SIGTERM until it is continued) reach every member; anything else (SIGHUP, SIGUSR1:
        // a reload the leader hands on as it sees fit) only the leader.
        static const int quit = sys::parse_signal("SIGQUIT").value_or(0);
        if (sig == sys::sig_kill()) {
            (void)c.kill();
        } else if (sig == sys::sig_term() || sig == sys::sig_int() || sig == quit ||
                   sig == sys::sig_cont()) {
            (void)c.signal_members(sig);
        }
    } catch (...) {
        // Out of memory listing members: the leader's own signal and cgroup.kill still follow.
    }
}

void end_cgroup_tree(ProcessState& st) {
    Accounting a;
    if (!st.cgroup->end_tree(a)) {
        // Left for the destructor; the process still finishes (bounded, as the pipe drain).
    }
    std::lock_guard lk(st.mu);
    st.accounting = a;
}

void oom_reason_locked(ProcessState& st) {
    if (st.status != Status::killed || st.signal != sys::sig_kill() || st.accounting.oom_kills == 0)
        return;
    st.error = "killed by the OOM killer";
    if (!st.cgroup->memory_text().empty()) st.error += ": " + st.cgroup->memory_text();
}

void fill_containment_locked(const ProcessState& st, ProcessInfo& info) {
    if (!st.cgroup) return;
    info.cgroup = st.cgroup->path();
    info.accounting = st.is_done() ? st.accounting : st.cgroup->account();
}

}  // namespace core::process::detail
