#include "process/phase.hpp"

#include <cassert>

namespace core::process::detail {

bool advance_phase(Phase& phase, Phase to) noexcept {
    const bool ok = phase_allowed(phase, to);
    assert(ok && "illegal process phase transition");
    if (ok) phase = to;
    return ok;
}

}  // namespace core::process::detail
