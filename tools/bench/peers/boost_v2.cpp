// The Boost.Process v2 peer (issue 16): spawn+wait of the no-op and spawn+capture of the writer's
// 16 bytes, N times each, timed inside this process like the Python and Go peers; prints
// "plain <us>" and "capture <us>" lines. Usage: coreproc-bench-boost NOOP WRITER N.
// Boost 1.81's v2 is header-only but its std::filesystem configuration does not compile (names
// missing from its headers), so it uses boost::filesystem (libboost-filesystem1.81-dev).
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/readable_pipe.hpp>
#include <boost/process/v2.hpp>
#include <boost/process/v2/stdio.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace asio = boost::asio;
namespace bp = boost::process::v2;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s NOOP WRITER N\n", argv[0]);
        return 2;
    }
    const std::string noop = argv[1], writer = argv[2];
    const int n = std::atoi(argv[3]);
    asio::io_context ctx;
    auto us = [](Clock::time_point a, Clock::time_point b) {
        return std::chrono::duration<double, std::micro>(b - a).count();
    };
    for (int i = 0; i < n; ++i) {
        const auto t0 = Clock::now();
        bp::process p(ctx, noop, {});
        const int code = p.wait();
        const auto t1 = Clock::now();
        if (code != 0) return 1;
        std::printf("plain %.3f\n", us(t0, t1));
    }
    for (int i = 0; i < n; ++i) {
        const auto t0 = Clock::now();
        asio::readable_pipe rp(ctx);
        bp::process p(ctx, writer, {"16"}, bp::process_stdio{{}, rp, {}});
        std::string out;
        boost::system::error_code ec;
        asio::read(rp, asio::dynamic_buffer(out), ec);
        const int code = p.wait();
        const auto t1 = Clock::now();
        if (code != 0 || out.size() != 16) return 1;
        std::printf("capture %.3f\n", us(t0, t1));
    }
    return 0;
}
