// coreproc-loadgen: closed-loop HTTP load on the health server (issue 16 item 5). N clients,
// each connect → GET /health → read to EOF → close → again, for a fixed time, on one epoll
// thread; optional slowloris clients that send half a head and hold it. By default the target
// is an in-process HealthServer with its default limits; --addr aims at another one.
//
//   coreproc-loadgen                         # 1, 64 and 1000 connections, 3 s each
//   coreproc-loadgen -c 64 -s 10 --slowloris 500
//   coreproc-loadgen --addr 127.0.0.1:8080 -c 1000
//
// One line per run: connections, req/s, 200s, other statuses, errors (connect failures, resets,
// closes without a reply), p50/p99 latency of a whole request. Built on lib/sys like the rest
// of tools/ (no raw syscalls here).
//
// The floor: with the in-process server, each count also runs against a bare server on the same
// calls (one epoll thread: accept, read to the blank line, one send of the same response,
// close; no caps, no deadlines, no handler), and the runs alternate in halves (health, floor,
// floor, health) so the machine's drift falls on both. What the floor reaches is what this
// machine and this client can show; `health/floor` is the server's own cost.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/process/health.hpp"
#include "http/endpoint.hpp"
#include "http/parser.hpp"
#include "sys/fd.hpp"
#include "sys/net.hpp"
#include "sys/poll.hpp"

namespace {

namespace net = core::sys::net;
namespace sys = core::sys;
using Clock = std::chrono::steady_clock;

struct Client {
    sys::UniqueFd fd;
    bool connecting = false;
    bool slow = false;
    std::size_t sent = 0;
    std::string in;
    Clock::time_point started;
};

struct Totals {
    std::size_t ok = 0, other = 0, errors = 0;
    std::vector<double> lat_us;
};

const std::string kRequest =
    "GET /health HTTP/1.1\r\nHost: loadgen\r\nUser-Agent: coreproc-loadgen\r\n"
    "Connection: close\r\n\r\n";
const std::string kSlowHead = "GET /health HTTP/1.1\r\nHost: loadgen\r\nX-Slow: ";

class Load {
  public:
    Load(net::Endpoint ep, sys::Epoll& ep_set) : ep_(ep), epoll_(ep_set) {}

    bool open(std::uint64_t tag, Client& c) {
        bool in_progress = false;
        auto fd = net::tcp_connect_start(ep_, &in_progress);
        if (!fd) return false;
        c.fd = std::move(*fd);
        c.connecting = in_progress;
        c.sent = 0;
        c.in.clear();
        c.started = Clock::now();
        // Writable first: connected (or the connect's outcome known), then the request goes.
        return static_cast<bool>(epoll_.add(c.fd.get(), sys::ev_out, tag));
    }

    // Advances one client on an event; false when its connection is done (reply or error).
    bool step(Client& c, std::uint64_t tag, Totals& t) {
        if (c.connecting) {
            if (!net::connect_result(c.fd.get())) return fail(c, t);
            c.connecting = false;
        }
        const std::string& msg = c.slow ? kSlowHead : kRequest;
        if (c.sent < msg.size()) {
            auto n = net::send_some(c.fd.get(), std::string_view(msg).substr(c.sent));
            if (!n) return fail(c, t);
            if (*n > 0) c.sent += static_cast<std::size_t>(*n);
            if (c.sent == msg.size())
                if (!epoll_.modify(c.fd.get(), sys::ev_in, tag)) return fail(c, t);
            return true;
        }
        char buf[4096];
        for (;;) {
            auto n = net::recv_some(c.fd.get(), buf, sizeof buf);
            if (!n) return c.slow ? false : done(c, t);  // a reset after the reply still counts
            if (*n == sys::would_block) return true;
            if (*n == 0) return c.slow ? false : done(c, t);
            c.in.append(buf, static_cast<std::size_t>(*n));
        }
    }

  private:
    bool done(Client& c, Totals& t) {
        if (c.in.rfind("HTTP/1.", 0) != 0) return fail(c, t);
        if (c.in.compare(9, 3, "200") == 0)
            ++t.ok;
        else
            ++t.other;
        t.lat_us.push_back(
            std::chrono::duration<double, std::micro>(Clock::now() - c.started).count());
        return false;
    }
    bool fail(Client&, Totals& t) {
        ++t.errors;
        return false;
    }

    net::Endpoint ep_;
    sys::Epoll& epoll_;
};

// The raw floor: the least an HTTP/1.1 server on these calls can do per connection.
class FloorServer {
  public:
    ~FloorServer() { stop(); }

    bool start() {
        net::Endpoint any;
        net::parse_ipv4("127.0.0.1", &any.addr_be);
        auto l = net::tcp_listen(any, 4096);
        auto e = sys::Epoll::create();
        auto w = sys::EventFd::create();
        if (!l || !e || !w) return false;
        auto port = net::local_port(l->get());
        if (!port) return false;
        listen_ = std::move(*l);
        epoll_.emplace(std::move(*e));
        wake_.emplace(std::move(*w));
        ep_ = any;
        ep_.port = *port;
        if (!epoll_->add(listen_.get(), sys::ev_in, kListen) ||
            !epoll_->add(wake_->fd(), sys::ev_in, kWake))
            return false;
        thread_ = std::thread([this] { loop(); });
        return true;
    }
    void stop() {
        if (!thread_.joinable()) return;
        wake_->signal();
        thread_.join();
        conns_.clear();
    }
    net::Endpoint endpoint() const { return ep_; }

  private:
    static constexpr std::uint64_t kListen = ~std::uint64_t{0};
    static constexpr std::uint64_t kWake = ~std::uint64_t{0} - 1;
    struct Conn {
        sys::UniqueFd fd;
        std::string in;
    };

    void loop() {
        const std::string reply = core::http::format_response({200, "ok\n"});
        std::vector<sys::PollEvent> evs(256);
        for (;;) {
            auto n = epoll_->wait(evs.data(), static_cast<int>(evs.size()), -1);
            if (!n) return;
            for (int i = 0; i < *n; ++i) {
                const std::uint64_t tag = evs[static_cast<std::size_t>(i)].data;
                if (tag == kWake) return;
                if (tag == kListen) {
                    for (int k = 0; k < 64; ++k) {
                        auto fd = net::accept(listen_.get());
                        if (!fd || !*fd) break;
                        const int raw = fd->get();
                        if (!epoll_->add(raw, sys::ev_in, static_cast<std::uint64_t>(raw)))
                            continue;
                        conns_[raw] = Conn{std::move(*fd), {}};
                    }
                    continue;
                }
                auto it = conns_.find(static_cast<int>(tag));
                if (it == conns_.end()) continue;
                Conn& c = it->second;
                char buf[4096];
                auto r = net::recv_some(c.fd.get(), buf, sizeof buf);
                if (r && *r == sys::would_block) continue;
                if (r && *r > 0) {
                    c.in.append(buf, static_cast<std::size_t>(*r));
                    if (core::http::find_head_end(c.in) == std::string::npos) continue;
                    (void)net::send_some(c.fd.get(), reply);  // fits any socket buffer
                }
                (void)epoll_->remove(c.fd.get());
                conns_.erase(it);  // closes
            }
        }
    }

    sys::UniqueFd listen_;
    std::optional<sys::Epoll> epoll_;
    std::optional<sys::EventFd> wake_;
    net::Endpoint ep_;
    std::unordered_map<int, Conn> conns_;
    std::thread thread_;
};

struct RunResult {
    Totals t;
    double secs = 0;
    std::size_t slow_alive = 0;
};

// Adds one run of the closed loop at ep (seconds long) to `into`; false on an epoll failure.
bool run_once(net::Endpoint ep, std::size_t conns, std::size_t slow, double seconds,
              RunResult& into) {
    auto epoll = sys::Epoll::create();
    if (!epoll) {
        std::fprintf(stderr, "loadgen: %s\n", epoll.error().what().c_str());
        return false;
    }
    std::vector<Client> clients(conns + slow);
    Load load(ep, *epoll);
    Totals& t = into.t;
    // The slowloris clients first, so that they hold their slots before the load starts.
    for (std::size_t i = conns; i < clients.size(); ++i) {
        clients[i].slow = true;
        if (!load.open(i, clients[i])) ++t.errors;
    }
    const auto start = Clock::now();
    const auto end =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    for (std::size_t i = 0; i < conns; ++i)
        if (!load.open(i, clients[i])) ++t.errors;
    std::vector<sys::PollEvent> evs(256);
    while (Clock::now() < end) {
        auto n = epoll->wait(evs.data(), static_cast<int>(evs.size()), 50);
        if (!n) {
            std::fprintf(stderr, "loadgen: %s\n", n.error().what().c_str());
            return false;
        }
        for (int i = 0; i < *n; ++i) {
            const std::size_t idx = evs[static_cast<std::size_t>(i)].data;
            Client& c = clients[idx];
            if (!c.fd) continue;
            if (load.step(c, idx, t)) continue;
            c.fd.reset();
            if (!c.slow && Clock::now() < end && !load.open(idx, c)) ++t.errors;
        }
    }
    into.secs += std::chrono::duration<double>(Clock::now() - start).count();
    const std::size_t slow_alive = static_cast<std::size_t>(
        std::count_if(clients.begin() + static_cast<std::ptrdiff_t>(conns), clients.end(),
                      [](const Client& c) { return static_cast<bool>(c.fd); }));
    into.slow_alive = slow_alive;
    return true;
}

// Issue 16: the health server holds 20 000 req/s from 1 to 1000 connections.
constexpr double kTargetRps = 20000;

double report(const char* server, std::size_t conns, std::size_t slow, RunResult& r) {
    Totals& t = r.t;
    std::sort(t.lat_us.begin(), t.lat_us.end());
    auto pct = [&](double p) {
        if (t.lat_us.empty()) return 0.0;
        return t
            .lat_us[std::min(t.lat_us.size() - 1,
                             static_cast<std::size_t>(p * static_cast<double>(t.lat_us.size())))];
    };
    const double rps = r.secs > 0 ? static_cast<double>(t.ok + t.other) / r.secs : 0;
    std::printf(
        "server=%s connections=%zu slowloris=%zu seconds=%.1f req/s=%.0f ok=%zu other_status=%zu "
        "errors=%zu p50_us=%.0f p99_us=%.0f slowloris_still_open=%zu\n",
        server, conns, slow, r.secs, rps, t.ok, t.other, t.errors, pct(0.50), pct(0.99),
        r.slow_alive);
    std::fflush(stdout);
    return rps;
}

void usage() {
    std::fprintf(stderr,
                 "usage: coreproc-loadgen [-c N[,N…]] [-s SECONDS] [--slowloris K] "
                 "[--addr HOST:PORT] [--max-connections N] [--no-floor]\n"
                 "  -c              concurrent clients per run (default 1,64,1000)\n"
                 "  -s              seconds per run (default 3)\n"
                 "  --slowloris     extra clients that send half a head and hold it (default 0)\n"
                 "  --addr          target server (default: an in-process HealthServer)\n"
                 "  --max-connections  the in-process server's cap (default: its default, 64)\n"
                 "  --no-floor      skip the bare floor server run beside the in-process one\n");
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::size_t> counts{1, 64, 1000};
    double seconds = 3;
    std::size_t slow = 0;
    std::string addr;
    std::size_t max_conns = 0;
    bool floor = true;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage();
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "-c") {
            counts.clear();
            std::string v = next();
            for (std::size_t p = 0; p <= v.size();) {
                const std::size_t q = std::min(v.find(',', p), v.size());
                counts.push_back(std::strtoul(v.substr(p, q - p).c_str(), nullptr, 10));
                p = q + 1;
            }
        } else if (a == "-s") {
            seconds = std::strtod(next().c_str(), nullptr);
        } else if (a == "--slowloris") {
            slow = std::strtoul(next().c_str(), nullptr, 10);
        } else if (a == "--addr") {
            addr = next();
        } else if (a == "--max-connections") {
            max_conns = std::strtoul(next().c_str(), nullptr, 10);
        } else if (a == "--no-floor") {
            floor = false;
        } else {
            usage();
            return 2;
        }
    }
    std::size_t most = slow;
    for (auto c : counts) most = std::max(most, c + slow);
    // Both ends of every connection live in this process when the server is in-process.
    if (auto lim = sys::raise_open_files_limit(2 * most + 256); !lim || *lim < 2 * most + 64)
        std::fprintf(stderr, "loadgen: warning: RLIMIT_NOFILE too low for %zu connections\n", most);
    core::process::HealthOptions ho;
    if (max_conns) ho.max_connections = max_conns;
    core::process::HealthServer server(ho);
    FloorServer floor_server;
    if (addr.empty()) {
        if (auto r = server.start(); !r) {
            std::fprintf(stderr, "loadgen: %s\n", r.error().what().c_str());
            return 1;
        }
        addr = server.addr();
        if (floor && !floor_server.start()) {
            std::fprintf(stderr, "loadgen: the floor server did not start\n");
            return 1;
        }
    } else {
        floor = false;  // the floor runs beside an in-process server only
    }
    auto ep = core::http::parse_endpoint("loadgen", addr);
    if (!ep) {
        std::fprintf(stderr, "loadgen: %s\n", ep.error().what().c_str());
        return 2;
    }
    for (auto c : counts) {
        RunResult health, bare;
        if (!floor) {
            if (!run_once(*ep, c, slow, seconds, health)) return 1;
            report("health", c, slow, health);
            continue;
        }
        // health, floor, floor, health: each half of the time.
        const double half = seconds / 2;
        if (!run_once(*ep, c, slow, half, health) ||
            !run_once(floor_server.endpoint(), c, slow, half, bare) ||
            !run_once(floor_server.endpoint(), c, slow, half, bare) ||
            !run_once(*ep, c, slow, half, health))
            return 1;
        const double h = report("health", c, slow, health);
        const double f = report("floor", c, slow, bare);
        std::printf("connections=%zu health/floor=%.2f\n", c, f > 0 ? h / f : 0.0);
        // Issue 16's target, judged here as the bench judges its own; with the floor beside it
        // when the machine itself cannot show the figure.
        if (slow == 0) {
            const bool pass = h >= kTargetRps;
            std::printf("target: health server >= %.0f req/s at %zu connections: %s (%.0f req/s",
                        kTargetRps, c, pass ? "PASS" : "MISS", h);
            if (!pass && f > 0 && f < kTargetRps)
                std::printf("; the bare floor reaches %.0f: below what this machine shows", f);
            std::printf(")\n");
        }
        std::fflush(stdout);
    }
    return 0;
}
