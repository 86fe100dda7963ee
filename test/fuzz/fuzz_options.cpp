// Fuzzes action option parsing: Options built from arbitrary bytes (every process.* key, with
// values of every type an embedder or a config file might put there) through
// Service::parse_options, plus core::parse_duration on arbitrary text. Invariants: no crash, no
// sanitizer report; a success has a command; a failure names its op.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/options.hpp"
#include "core/process/service.hpp"

namespace {

const char* const kKeys[] = {"command", "args",        "dir",       "env",
                             "timeout", "gracePeriod", "killGroup", "disableCapture",
                             "input",   "maxOutput",   "detach",    "id",
                             "pid",     "runningOnly", "keepStdin", "unknown"};

struct Reader {
    const std::uint8_t* p;
    std::size_t n;
    std::uint8_t byte() {
        if (n == 0) return 0;
        --n;
        return *p++;
    }
    std::string str() {
        const std::size_t len = std::min<std::size_t>(byte() % 32, n);
        std::string s(reinterpret_cast<const char*>(p), len);
        p += len;
        n -= len;
        return s;
    }
    std::int64_t i64() {
        std::int64_t v = 0;
        for (int i = 0; i < 8; ++i) v = (v << 8) | byte();
        return v;
    }
};

core::Value value(Reader& r) {
    switch (r.byte() % 10) {
        case 0:
            return core::Value(r.str());
        case 1:
            return core::Value(static_cast<int>(r.i64()));
        case 2:
            return core::Value(r.i64());
        case 3:
            return core::Value(static_cast<bool>(r.byte() & 1));
        case 4: {
            std::vector<std::string> v;
            for (int i = r.byte() % 5; i > 0; --i) v.push_back(r.str());
            return core::Value(v);
        }
        case 5:
            return core::Value(std::chrono::milliseconds(r.i64()));
        case 6:
            return core::Value(std::chrono::seconds(static_cast<int>(r.i64())));
        case 7:
            return core::Value(static_cast<double>(r.i64()) / 7.0);
        case 8:
            return core::Value(static_cast<unsigned long>(r.i64()));
        default:
            return core::Value();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Reader r{data, size};
    core::Options opts;
    for (int i = r.byte() % 12; i > 0 && r.n > 0; --i)
        opts.set(kKeys[r.byte() % (sizeof kKeys / sizeof kKeys[0])], value(r));
    auto parsed = core::process::Service::parse_options("process.run", opts);
    if (parsed) {
        if (parsed->command.empty()) __builtin_trap();
    } else if (parsed.error().op().empty()) {
        __builtin_trap();
    }
    // The duration parser on the raw bytes as text.
    std::string text(reinterpret_cast<const char*>(data), std::min<std::size_t>(size, 64));
    auto d = core::parse_duration(text);
    if (d && d->count() < 0) __builtin_trap();
    // The lenient getters never fail, whatever is stored.
    for (const char* k : kKeys) {
        (void)opts.string(k);
        (void)opts.integer(k);
        (void)opts.boolean(k);
        (void)opts.strings(k);
        (void)opts.duration(k);
    }
    return 0;
}
