// Test support shared by every test file.
//
// LeakGuard: declare one at the top of a test (`CORE_LEAK_GUARD();`). When it goes out of scope
// it waits (up to a deadline, polling /proc — a test-only helper) for the process to be back to
// the open descriptors it had and to have no child process (alive or zombie) that it did not
// have, and records a Catch2 CHECK failure naming what leaked.
#pragma once

#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <vector>

namespace core::test {

// Path of the helper program (test/helper/child.cpp) built beside the tests.
const char* child_path();
// Path of the build directory's tools (coreproc), when built.
const char* coreproc_path();

// Open descriptor numbers of this process (excluding the one used to list them).
std::set<int> open_fds();
// PIDs whose parent is this process (alive or zombie).
std::set<int> child_pids();

// Polls pred until it is true or timeout passes; returns pred's last value. For conditions
// the library offers no event for (the state of /proc, a file appearing).
bool eventually(const std::function<bool()>& pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));

class LeakGuard {
  public:
    LeakGuard();
    ~LeakGuard();
    LeakGuard(const LeakGuard&) = delete;
    LeakGuard& operator=(const LeakGuard&) = delete;
    // The leaks now, as text; empty when clean (waits up to timeout for them to clear).
    std::string leaks(std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

  private:
    std::set<int> fds_;
    std::set<int> children_;
};

}  // namespace core::test

#define CORE_LEAK_GUARD_CAT2(a, b) a##b
#define CORE_LEAK_GUARD_CAT(a, b) CORE_LEAK_GUARD_CAT2(a, b)
#define CORE_LEAK_GUARD() ::core::test::LeakGuard CORE_LEAK_GUARD_CAT(core_leak_guard_, __LINE__)
