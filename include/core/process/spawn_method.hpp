// How every process Service in this process starts children: a process-wide switch, so it has
// a header of its own rather than living in the Service's.
#pragma once

#include "core/export.hpp"

namespace core::process {

//  automatic (default): clone3(CLONE_PIDFD | CLONE_VM | CLONE_VFORK) on a private stack where
//    this build has it (x86-64, not under ASan/TSan) and the kernel allows it; posix_spawn
//    otherwise, and for good after the first refusal (ENOSYS, EPERM: seccomp profiles).
//  clone3: only clone3; a refusal is the start's Error.  posix_spawn: only posix_spawn.
// Both give the child the same hygiene. The environment variable CORE_PROCESS_SPAWN
// (automatic | clone3 | posix_spawn) sets the initial value. Thread-safe.
enum class SpawnMethod { automatic, clone3, posix_spawn };
CORE_API void set_spawn_method(SpawnMethod m) noexcept;
// What the next start uses: "clone3" or "posix_spawn".
CORE_API const char* spawn_method() noexcept;

}  // namespace core::process
