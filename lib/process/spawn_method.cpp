// The process-wide spawn method (core/process/spawn_method.hpp) over lib/sys's switch.
#include "core/process/spawn_method.hpp"

#include "sys/spawn.hpp"

namespace core::process {

void set_spawn_method(SpawnMethod m) noexcept {
    switch (m) {
        case SpawnMethod::automatic:
            sys::set_spawn_method(sys::SpawnMethod::automatic);
            break;
        case SpawnMethod::clone3:
            sys::set_spawn_method(sys::SpawnMethod::clone3);
            break;
        case SpawnMethod::posix_spawn:
            sys::set_spawn_method(sys::SpawnMethod::posix_spawn);
            break;
    }
}

const char* spawn_method() noexcept {
    return sys::spawn_method() == sys::SpawnMethod::clone3 ? "clone3" : "posix_spawn";
}

}  // namespace core::process
