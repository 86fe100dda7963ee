// libFuzzer target: the `coreproc supervise` config reader. Any input must give a value or an
// Error, never a crash, a hang, a sanitizer report or an exception; every spec it accepts must
// pass validate() (what Supervisor::add checks), and the error must name the source.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/process/supervisor.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto r = core::process::parse_supervise_config(text, "fuzz.json");
    if (!r) {
        if (r.error().what().find("fuzz.json") == std::string::npos) std::abort();
        return 0;
    }
    for (const auto& spec : *r)
        if (!core::process::validate(spec)) std::abort();
    return 0;
}
