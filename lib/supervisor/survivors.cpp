// The supervisor's state file and what a later supervisor does with it: after a `kill -9` of
// the supervisor its daemons live on (detached, in their own sessions); the next one with the
// same state file finds them by pid and start time, and stops them before starting fresh
// copies, so a crash never leaves two copies of a daemon.
#include <nlohmann/json.hpp>

#include "core/process/supervisor.hpp"
#include "process/pidref.hpp"
#include "supervisor/state.hpp"
#include "sys/file.hpp"
#include "sys/poll.hpp"
#include "sys/proc.hpp"
#include "sys/signals.hpp"
#include "sys/supervise.hpp"

namespace core::process {

namespace detail {

Result<void> write_state_file(const std::string& path, const std::vector<Survivor>& running) {
    nlohmann::json j;
    j["supervisor_pid"] = sys::file::self_pid();
    j["daemons"] = nlohmann::json::array();
    for (const auto& s : running)
        j["daemons"].push_back({{"name", s.name}, {"pid", s.pid}, {"start_time", s.start_time}});
    if (const auto slash = path.rfind('/'); slash != std::string::npos && slash > 0)
        if (auto r = sys::file::make_dirs(path.substr(0, slash), 0700); !r) return r;
    return sys::sup::replace_file(path, j.dump(1) + "\n", 0600);
}

std::uint64_t start_time_of(int pid) {
    return sys::sup::process_start_time(pid).value_or(0);
}

}  // namespace detail

Result<std::vector<Survivor>> find_survivors(const std::string& state_file) {
    constexpr const char* op = "supervisor.find_survivors";
    auto text = sys::file::read_file(state_file, 1u << 20);
    if (!text) {
        if (text.error().code() == ENOENT) return std::vector<Survivor>{};
        return fail(E(op, "read \"" + state_file + "\"", text.error()));
    }
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("daemons") || !j["daemons"].is_array())
        return fail(E(op, "\"" + state_file + "\": not a supervisor state file"));
    std::vector<Survivor> out;
    for (const auto& d : j["daemons"]) {
        if (!d.is_object() || !d.contains("name") || !d["name"].is_string() || !d.contains("pid") ||
            !d["pid"].is_number_integer() || !d.contains("start_time") ||
            !d["start_time"].is_number_unsigned())
            return fail(E(op, "\"" + state_file + "\": malformed entry " + d.dump()));
        Survivor s{d["name"].get<std::string>(), d["pid"].get<int>(),
                   d["start_time"].get<std::uint64_t>()};
        if (s.pid <= 1) continue;
        // The same pid with another start time is a new process that got a recycled pid.
        if (sys::sup::process_start_time(s.pid) == s.start_time) out.push_back(std::move(s));
    }
    return out;
}

Result<void> stop_survivor(const Survivor& s, int stop_signal, std::chrono::milliseconds timeout) {
    const std::string who = "survivor \"" + s.name + "\" (pid " + std::to_string(s.pid) + ")";
    const std::string op = "supervisor.stop_survivor";
    auto ref = detail::PidRef::open(s.pid);
    if (!ref) {
        if (ref.error().code() == ESRCH) return {};  // gone already
        return fail(E(op, who, ref.error()));
    }
    // The pidfd names one process for good; checked after opening it, the start time says it
    // is the daemon (not a recycled pid). Its group is signalled too while it leads one. Not
    // our child: it is never reaped here, only watched through the pidfd.
    if (sys::sup::process_start_time(s.pid) != s.start_time) return {};
    const bool leads_group = sys::sup::process_group(s.pid) == s.pid;
    auto send = [&](int sig) -> Result<void> {
        if (leads_group) (void)ref->signal(sig, true);
        auto r = ref->signal(sig);
        if (!r && r.error().code() != ESRCH) return fail(E(op, who, r.error()));
        return {};
    };
    if (auto r = send(stop_signal); !r) return r;
    if (stop_signal != sys::sig_cont()) (void)send(sys::sig_cont());
    auto gone = sys::wait_readable(ref->pidfd(), timeout);
    if (gone && *gone) return {};
    if (auto r = send(sys::sig_kill()); !r) return r;
    gone = sys::wait_readable(ref->pidfd(), std::chrono::milliseconds(5000));
    if (gone && *gone) return {};
    return fail(E(op, who + ": still running 5s after SIGKILL"));
}

}  // namespace core::process
