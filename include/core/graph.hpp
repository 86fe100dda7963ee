// Dependency graphs of the config readers (the Runner's steps, the Supervisor's daemons): one
// cycle finder for both, so a cycle is found and spelled the same way everywhere. Header-only;
// pure; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace core {

// deps[i]: the nodes node i waits for (indices < deps.size()). Returns an empty vector when the
// graph has no cycle; else one cycle as a path whose last node repeats its first
// ({a, b, a} for a → b → a). Kahn's algorithm: whatever is left over lies on or behind a cycle;
// each left-over node waits for another left-over one, so following those edges from the first
// of them comes back to a node already seen, and that loop is the cycle.
inline std::vector<std::size_t> find_cycle(const std::vector<std::vector<std::size_t>>& deps) {
    const std::size_t n = deps.size();
    std::vector<std::size_t> pending(n);
    std::vector<std::vector<std::size_t>> dependents(n);
    for (std::size_t i = 0; i < n; ++i) {
        pending[i] = deps[i].size();
        for (std::size_t d : deps[i]) dependents[d].push_back(i);
    }
    std::vector<std::size_t> queue;
    for (std::size_t i = 0; i < n; ++i)
        if (pending[i] == 0) queue.push_back(i);
    std::size_t done = 0;
    while (!queue.empty()) {
        const std::size_t u = queue.back();
        queue.pop_back();
        ++done;
        for (std::size_t v : dependents[u])
            if (--pending[v] == 0) queue.push_back(v);
    }
    if (done == n) return {};
    std::size_t u = 0;
    while (pending[u] == 0) ++u;
    std::vector<std::size_t> path;
    std::vector<std::size_t> seen_at(n, SIZE_MAX);
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
    std::vector<std::size_t> cycle(path.begin() + static_cast<std::ptrdiff_t>(seen_at[u]),
                                   path.end());
    cycle.push_back(u);
    return cycle;
}

}  // namespace core
