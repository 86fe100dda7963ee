// The bench's sleeper child. Static, libc only.
//   sleeper pause   block in pause() until a signal kills it (scale: N idle children)
//   sleeper stdin   write "ready\n" to stdout, then read stdin until EOF and exit 0 (reaping
//                   latency: the bench closes stdin at t0 and times the waiter's wake-up)
#include <unistd.h>

#include <cerrno>
#include <cstring>

int main(int argc, char** argv) {
    if (argc < 2) return 2;
    if (std::strcmp(argv[1], "pause") == 0) {
        for (;;) ::pause();
    }
    if (std::strcmp(argv[1], "stdin") == 0) {
        static const char ready[] = "ready\n";
        if (::write(1, ready, sizeof ready - 1) != static_cast<ssize_t>(sizeof ready - 1)) return 3;
        char buf[256];
        for (;;) {
            ssize_t r = ::read(0, buf, sizeof buf);
            if (r == 0) return 0;
            if (r < 0 && errno != EINTR) return 4;
        }
    }
    return 2;
}
