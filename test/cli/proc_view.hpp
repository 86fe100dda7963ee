// The kernel's view of processes for the CLI tests, read from /proc: a process's state and
// parent, whether it is gone, and its children. Header-only.
#pragma once

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace core::test::proc {

struct Stat {
    int ppid = 0;
    char state = '?';
};

// /proc/<pid>/stat's state and parent; state '?' when the process is gone.
inline Stat stat_of(int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    Stat s;
    if (!std::getline(f, line)) return s;
    const auto close = line.rfind(')');
    if (close == std::string::npos || close + 2 >= line.size()) return s;
    std::istringstream rest(line.substr(close + 2));
    rest >> s.state >> s.ppid;
    return s;
}

// Gone: no such process, or a zombie nobody reaped yet (it runs no more).
inline bool gone(int pid) {
    const char st = stat_of(pid).state;
    return st == '?' || st == 'Z' || st == 'X';
}

// The children of pid: the live ones, or with `zombies` the zombies.
inline std::set<int> children_of(int pid, bool zombies = false) {
    std::set<int> out;
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
        const std::string name = e.path().filename().string();
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
        const int p = std::stoi(name);
        const Stat s = stat_of(p);
        if (s.ppid != pid || s.state == '?') continue;
        if ((s.state == 'Z') == zombies) out.insert(p);
    }
    return out;
}

}  // namespace core::test::proc
