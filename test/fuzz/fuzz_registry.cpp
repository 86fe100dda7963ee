// libFuzzer target: the daemon registry's entry reader (files anyone with access to the
// directory, or a Go tool, may have written) and RFC 3339 times. A parsed entry must survive
// a write/read round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/process/daemon_registry.hpp"

namespace cp = core::process;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string in(reinterpret_cast<const char*>(data), size);

    auto e = cp::parse_daemon_entry(in);
    if (e) {
        if (e->code.empty() || e->daemon.empty() || e->pid <= 0) __builtin_trap();
        auto again = cp::parse_daemon_entry(cp::to_json(*e));
        if (!again) __builtin_trap();
        if (again->code != e->code || again->daemon != e->daemon || again->pid != e->pid ||
            again->health != e->health || again->project != e->project ||
            again->binary != e->binary || again->started != e->started)
            __builtin_trap();
        (void)cp::DaemonRegistry::file_name(e->code, e->daemon);
    }

    auto t = cp::parse_rfc3339(in);
    if (t) {
        auto back = cp::parse_rfc3339(cp::format_rfc3339(*t));
        if (!back || *back != *t) __builtin_trap();
    }
    return 0;
}
