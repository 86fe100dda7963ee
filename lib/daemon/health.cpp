#include "core/process/health.hpp"

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "http/server.hpp"

namespace core::process {

// The health endpoints on lib/http's server. GET /health runs the checks on their own thread,
// one run at a time whose result answers every request waiting when it ends (single flight): a
// slow check never holds up /ready, the other routes or accepting, and the number of check runs
// in flight is one. The requests wait as deferred replies of the server.
struct HealthServer::Impl {
    HealthOptions opts;

    mutable std::mutex mu;  // guards checks, handlers
    std::vector<std::pair<std::string, HealthCheck>> checks;
    std::map<std::string, HttpHandler> handlers;
    std::atomic<bool> ready{true};

    std::unique_ptr<http::Server> server;  // fixed after construction

    std::mutex check_mu;  // guards the five below
    std::condition_variable check_cv;
    bool check_running = false;  // a run is in flight: new requests join its waiters
    bool check_quit = false;
    std::vector<std::uint64_t> waiting;  // tickets of the requests waiting for the next result
    std::thread check_thread;
    bool thread_started = false;

    void check_loop() {
        std::unique_lock lk(check_mu);
        for (;;) {
            check_cv.wait(lk, [&] { return check_quit || (!check_running && !waiting.empty()); });
            if (check_quit) return;
            check_running = true;
            lk.unlock();
            const Result<void> r = run_checks();
            const http::Response resp = health_response(r);
            lk.lock();
            // Every request that arrived before this run ended is answered by it.
            auto tickets = std::move(waiting);
            waiting.clear();
            check_running = false;
            lk.unlock();
            for (auto t : tickets) server->reply(t, resp);
            lk.lock();
        }
    }

    static http::Response health_response(const Result<void>& r) {
        if (r) return {200, "ok\n"};
        return {503, "unhealthy: " + r.error().what() + "\n"};
    }

    Result<void> run_checks() const {
        std::vector<std::pair<std::string, HealthCheck>> snap;
        {
            std::lock_guard lk(mu);
            snap = checks;
        }
        for (const auto& [name, fn] : snap) {
            Result<void> r;
            // A check is user code: an exception from it is a failed check, never a dead
            // thread (std::terminate).
            try {
                if (fn) r = fn();
            } catch (const std::exception& e) {
                r = fail(E("exception", e.what()));
            } catch (...) {
                r = fail(E("exception", "unknown"));
            }
            if (!r) return fail(E(name, r.error().what()));
        }
        return {};
    }

    void stop_checks();

    // The server thread's router.
    http::Reply route(const http::Request& req, std::uint64_t ticket) {
        if (req.method != "GET" && req.method != "HEAD")
            return {{405, "method not allowed\n"}, false};
        if (req.path == "/health") {
            bool none;
            {
                std::lock_guard lk(mu);
                none = checks.empty();
            }
            // Nothing to run: answered here, without a trip through the checks thread.
            if (none) return {{200, "ok\n"}, false};
            {
                std::lock_guard lk(check_mu);
                waiting.push_back(ticket);
            }
            check_cv.notify_one();
            // The checks outlived the request's time: say so rather than hang up.
            return {{503, "unhealthy: checks still running after " +
                              std::to_string(opts.read_timeout.count()) + "ms\n"},
                    true};
        }
        if (req.path == "/ready") {
            if (ready.load()) return {{200, "ready\n"}, false};
            return {{503, "not ready\n"}, false};
        }
        HttpHandler h;
        {
            std::lock_guard lk(mu);
            auto it = handlers.find(req.path);
            if (it != handlers.end()) h = it->second;
        }
        if (!h) return {{404, "not found\n"}, false};
        try {
            return {h(), false};
        } catch (...) {
            return {{500, "internal error\n"}, false};
        }
    }
};

HealthServer::HealthServer(HealthOptions opts) : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    m.opts = std::move(opts);
    m.ready.store(m.opts.ready);
    if (m.opts.read_timeout <= std::chrono::milliseconds(0))
        m.opts.read_timeout = std::chrono::milliseconds(5000);
    http::ServerOptions so;
    so.addr = m.opts.addr;
    so.name = "health";
    so.head_timeout = m.opts.read_timeout;
    so.max_connections = m.opts.max_connections;
    so.max_partial = m.opts.max_partial;
    so.max_head = m.opts.max_head;
    so.logger = m.opts.logger;
    m.server = std::make_unique<http::Server>(
        std::move(so), [&m](const http::Request& req, std::uint64_t t) { return m.route(req, t); });
}

HealthServer::~HealthServer() {
    stop();
}

Result<void> HealthServer::start() {
    Impl& m = *impl_;
    {
        std::lock_guard clk(m.check_mu);
        if (!m.thread_started) {
            m.check_quit = false;
            m.check_running = false;
            m.waiting.clear();
            try {
                m.check_thread = std::thread([&m] { m.check_loop(); });
            } catch (const std::system_error& e) {
                return fail(
                    Error("health", std::string("start thread: ") + e.what(), e.code().value()));
            }
            m.thread_started = true;
        }
    }
    auto r = m.server->start();
    if (!r && !m.server->running()) m.stop_checks();
    return r;
}

void HealthServer::Impl::stop_checks() {
    Impl& m = *this;
    std::thread ct;
    {
        std::lock_guard clk(m.check_mu);
        m.check_quit = true;
        m.thread_started = false;
        ct = std::move(m.check_thread);
    }
    m.check_cv.notify_one();
    if (ct.joinable()) ct.join();  // after a check that is running returns
}

void HealthServer::stop() {
    impl_->server->stop();
    impl_->stop_checks();
}

bool HealthServer::running() const {
    return impl_->server->running();
}

std::string HealthServer::addr() const {
    return impl_->server->addr();
}

void HealthServer::add_check(const std::string& name, HealthCheck check) {
    std::lock_guard lk(impl_->mu);
    for (auto& [n, fn] : impl_->checks) {
        if (n == name) {
            fn = std::move(check);
            return;
        }
    }
    impl_->checks.emplace_back(name, std::move(check));
}

void HealthServer::add_handler(const std::string& path, HttpHandler handler) {
    std::lock_guard lk(impl_->mu);
    impl_->handlers[path] = std::move(handler);
}

void HealthServer::set_ready(bool ready) {
    impl_->ready.store(ready);
}
bool HealthServer::ready() const {
    return impl_->ready.load();
}
Result<void> HealthServer::check() const {
    return impl_->run_checks();
}

namespace {

Result<void> probe(const char* op, const std::string& addr, const char* path,
                   std::chrono::milliseconds timeout) {
    auto r = http_get(addr, path, timeout);
    if (!r) return fail(Error(op, "", r.error()));
    if (r->status == 200) return {};
    std::string body = r->body;
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
    if (body.size() > 512) body.resize(512);
    return fail(
        E(op, addr + ": status " + std::to_string(r->status) + (body.empty() ? "" : ": " + body)));
}

}  // namespace

Result<void> probe_health(const std::string& addr, std::chrono::milliseconds timeout) {
    return probe("probe.health", addr, "/health", timeout);
}

Result<void> probe_ready(const std::string& addr, std::chrono::milliseconds timeout) {
    return probe("probe.ready", addr, "/ready", timeout);
}

}  // namespace core::process
