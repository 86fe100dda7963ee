// Fault injection: the seam through which tests make any lib/sys wrapper fail (as {fmt}'s
// posix-mock). Each wrapper calls `fault::hit("name")` first; when armed for that name it
// returns the errno to fail with. Disarmed, the cost is one relaxed atomic load.
// Thread-safe. Names are the wrapped call's: "pipe2", "spawn" (either method), "clone3",
// "posix_spawn", "pidfd_open", "waitid", "epoll_wait", "read", "write", "open", "fsync",
// "rename", "flock", "socket", "accept4", …
#pragma once

#include <atomic>
#include <string_view>

namespace core::sys::fault {

namespace detail {
extern std::atomic<int> g_armed;
int hit_slow(std::string_view call) noexcept;
}  // namespace detail

// 0 when the call should proceed; otherwise the errno to fail it with.
inline int hit(std::string_view call) noexcept {
    if (detail::g_armed.load(std::memory_order_relaxed) == 0) return 0;
    return detail::hit_slow(call);
}

// Makes the next `count` calls of `call` fail with err (count < 0: until disarmed),
// after letting `skip` calls through.
void arm(std::string_view call, int err, int count = 1, int skip = 0);
// Disarms call, or every call when empty.
void disarm(std::string_view call = {});
// How many times call was failed since it was armed.
int fired(std::string_view call);

// RAII: arms in the constructor, disarms that call in the destructor.
class Scoped {
  public:
    Scoped(std::string_view call, int err, int count = 1, int skip = 0);
    ~Scoped();
    Scoped(const Scoped&) = delete;
    Scoped& operator=(const Scoped&) = delete;

  private:
    char call_[32];
};

}  // namespace core::sys::fault
