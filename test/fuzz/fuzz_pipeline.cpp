// libFuzzer target: the pipeline file reader (parse_pipeline) and the dependency checks it runs
// (Runner::validate: names, unknown dependencies, cycles). Any input must give a value or an
// Error, never a crash, a hang or an exception; an accepted pipeline must satisfy the
// invariants the Runner relies on.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "core/process/runner.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto specs = core::process::parse_pipeline(text, "fuzz.json");
    if (!specs) {
        // An Error always says what and where.
        if (specs.error().what().rfind("pipeline: fuzz.json", 0) != 0) __builtin_trap();
        return 0;
    }
    std::set<std::string> names;
    for (const auto& s : *specs) {
        if (s.name.empty() || s.command.empty() || s.timeout.count() < 0) __builtin_trap();
        if (!names.insert(s.name).second) __builtin_trap();
        for (const auto& kv : s.env)
            if (kv.find('=') == std::string::npos || kv.front() == '=') __builtin_trap();
    }
    for (const auto& s : *specs)
        for (const auto& dep : s.after)
            if (!names.count(dep)) __builtin_trap();
    if (!core::process::Runner::validate(*specs)) __builtin_trap();
    return 0;
}
