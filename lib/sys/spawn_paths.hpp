// The two ways lib/sys/spawn.cpp starts a child (sys/spawn.hpp), in files of their own:
//  - spawn_posix.cpp: posix_spawn with its attributes and file actions (the fallback);
//  - spawn_clone3.cpp: clone3(CLONE_PIDFD | CLONE_VM | CLONE_VFORK) on a private stack, the
//    child's set-up in raw syscalls, and the low slots that keep its descriptor copy small.
// spawn.cpp chooses between them and turns their failures into Errors. Private to lib/sys.
#pragma once

#include "core/result.hpp"
#include "sys/spawn.hpp"

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define CORE_SPAWN_CLONE3 0
#endif
#endif
#ifndef CORE_SPAWN_CLONE3
#define CORE_SPAWN_CLONE3 1
#endif
#else
// The sanitizers' runtimes cannot follow a CLONE_VM child running our code; other
// architectures would need their own trampoline. posix_spawn serves both.
#define CORE_SPAWN_CLONE3 0
#endif

namespace core::sys::detail {

// The child's identity steps, for errors and the fault seam.
enum class Step { none, rlimit, nice, groups, gid, uid, no_new_privs, pdeathsig };

// The posix_spawn path: the child's pid, or the Error of posix_spawn or of its set-up.
Result<int> spawn_posix(const SpawnSpec& spec);

#if CORE_SPAWN_CLONE3
// Whether the running kernel lets us use the clone3 path (clone3 itself is probed by the first
// spawn): close_range (5.9) is needed in the child, which cannot fall back by itself.
bool close_range_works() noexcept;
// 0 and the child in out (exec_err: the child's errno when it failed before or at exec, then
// reaped, with step/index naming an identity step), or -errno when clone3 was refused and no
// child exists.
long spawn_clone3(const SpawnSpec& spec, Spawned& out, int& exec_err, int& step, int& index);
#endif

}  // namespace core::sys::detail
