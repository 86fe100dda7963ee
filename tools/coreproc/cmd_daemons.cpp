// coreproc daemons: the live entries of a daemon registry directory (go-process format). Dead
// entries are pruned by the listing itself; corrupt files are reported on stderr.
#include <iostream>

#include "commands.hpp"
#include "core/process/daemon_registry.hpp"

namespace coreproc {

namespace {

std::string age(std::chrono::system_clock::time_point started) {
    const auto d = std::chrono::system_clock::now() - started;
    if (d.count() < 0) return "-";
    const auto s = std::chrono::duration_cast<std::chrono::seconds>(d).count();
    if (s < 120) return std::to_string(s) + "s";
    if (s < 7200) return std::to_string(s / 60) + "m";
    if (s < 172800) return std::to_string(s / 3600) + "h";
    return std::to_string(s / 86400) + "d";
}

}  // namespace

int cmd_daemons(const Globals& g, const DaemonsArgs& a) {
    core::process::DaemonRegistry reg(a.registry);
    auto listed = reg.list();
    if (!listed) {
        std::cerr << "coreproc daemons: " << listed.error().what() << "\n";
        return kExitUsage;
    }
    for (const auto& p : listed->problems)
        std::cerr << "coreproc daemons: skipped " << p.file << ": " << p.error.what() << "\n";
    if (g.json) {
        nlohmann::json j = nlohmann::json::array();
        for (const auto& e : listed->entries) {
            auto parsed = nlohmann::json::parse(core::process::to_json(e), nullptr, false);
            if (!parsed.is_discarded()) j.push_back(std::move(parsed));
        }
        std::cout << dump(j) << std::endl;
        return kExitOk;
    }
    if (listed->entries.empty()) {
        std::cout << "no live daemons in " << reg.dir() << "\n";
        return kExitOk;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& e : listed->entries)
        rows.push_back({e.code, e.daemon, std::to_string(e.pid), e.health.empty() ? "-" : e.health,
                        age(e.started), e.project.empty() ? "-" : e.project,
                        e.binary.empty() ? "-" : e.binary});
    print_table(std::cout, {"CODE", "DAEMON", "PID", "HEALTH", "UP", "PROJECT", "BINARY"}, rows);
    return kExitOk;
}

}  // namespace coreproc
