// The bench's writer child: `writer BYTES [LINE]` writes BYTES bytes to stdout as lines of LINE
// bytes (newline included; default 100), then exits 0. Static, libc only: the throughput
// measured is the spawner's, not the child's start-up.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace {

char buf[1 << 16];

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return 2;
    long long left = std::atoll(argv[1]);
    long line = argc > 2 ? std::atol(argv[2]) : 100;
    if (left < 0 || line < 1) return 2;
    // Every LINE-th byte of the buffer is a newline and each full write is a whole number of
    // lines, so the stream is LINE-byte lines end to end (for LINE <= 64 KiB).
    std::memset(buf, 'x', sizeof buf);
    for (long i = line - 1; i < static_cast<long>(sizeof buf); i += line) buf[i] = '\n';
    long long chunk =
        static_cast<long long>(sizeof buf) - static_cast<long long>(sizeof buf) % line;
    if (chunk == 0) chunk = sizeof buf;
    while (left > 0) {
        long long n = left < chunk ? left : chunk;
        const char* p = buf;
        while (n > 0) {
            ssize_t w = ::write(1, p, static_cast<size_t>(n));
            if (w < 0) {
                if (errno == EINTR) continue;
                return 3;
            }
            p += w;
            n -= w;
            left -= w;
        }
    }
    return 0;
}
