// The public signal names (core/process/signals.hpp) over lib/sys's table.
#include "core/process/signals.hpp"

#include "sys/signals.hpp"

namespace core::process {

Result<int> parse_signal(std::string_view text) {
    if (auto sig = sys::parse_signal(text)) return *sig;
    return fail(E("signal", "unknown signal \"" + std::string(text) +
                                "\" (want e.g. SIGTERM, TERM or a number from 1 to " +
                                std::to_string(sys::sig_max()) + ")"));
}

std::string signal_name(int sig) {
    return sys::signal_name(sig);
}

}  // namespace core::process
