// What the sections share (common.hpp): row names, helpers, the library handle, idle children.
#include "common.hpp"

#include <cstdio>

namespace bench {

namespace names {
std::string reap_raw(int others) {
    return "raw pidfd+poll waiter, " + std::to_string(others) + " others alive";
}
std::string reap_thread(int others) {
    return "raw reaper thread+condvar waiter, " + std::to_string(others) + " others alive";
}
std::string reap_lib(int others) {
    return "lib ManagedProcess::wait, " + std::to_string(others) + " others alive";
}
std::string scale_lib(int n) {
    return "lib start+kill+reap per child, N=" + std::to_string(n);
}
std::string scale_raw(int n) {
    return "raw posix_spawn+kill+waitpid per child, N=" + std::to_string(n);
}
std::string scale_heap(int n) {
    return "lib heap per managed child, N=" + std::to_string(n);
}
std::string scale_rss(int n) {
    return "lib RSS per managed child, N=" + std::to_string(n);
}
std::string big(const char* what, const std::string& rss) {
    return std::string(what) + ", " + rss;
}
std::string flat(const char* what, const std::string& phase) {
    return std::string(what) + ", " + phase;
}
}  // namespace names

int flat_fds(const Config& cfg) {
    return cfg.pick(1000, 10000, 10000);
}
int flat_live(const Config& cfg) {
    return cfg.pick(200, 2000, 10000);
}
std::string flat_fds_phase(const Config& cfg) {
    return std::to_string(flat_fds(cfg)) + " unrelated fds open";
}
std::string flat_live_phase(const Config& cfg) {
    return std::to_string(flat_live(cfg)) + " live children";
}

std::string size_label(std::size_t bytes) {
    char buf[32];
    if (bytes >= (std::size_t{1} << 30) && bytes % (std::size_t{1} << 30) == 0)
        std::snprintf(buf, sizeof buf, "%zu GiB", bytes >> 30);
    else
        std::snprintf(buf, sizeof buf, "%zu MiB", bytes >> 20);
    return buf;
}

double elapsed_us(Clock::time_point t0, Clock::time_point t1) {
    return duration<double, std::micro>(t1 - t0).count();
}

Row skipped_row(const char* section, std::string name, std::string unit, std::string why) {
    Row r;
    r.section = section;
    r.name = std::move(name);
    r.unit = std::move(unit);
    r.skipped = true;
    r.note = std::move(why);
    return r;
}

core::Result<void> RawIdle::start(const raw::Argv& a, int n) {
    pids.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        auto pid = raw::spawn_idle(a);
        if (!pid) return fail(pid.error());
        pids.push_back(*pid);
    }
    return {};
}

core::Result<void> RawIdle::stop() {
    core::Result<void> first;
    for (int pid : pids)
        if (auto r = raw::kill_reap(pid); !r && first) first = r;
    pids.clear();
    return first;
}

int estimated_rows(const Config& cfg) {
    int rows = 0;
    if (cfg.wants("spawn")) rows += 13;
    if (cfg.wants("peers")) rows += 4;
    if (cfg.wants("reap")) rows += 6;
    if (cfg.wants("scale")) rows += 8;
    if (cfg.wants("output")) rows += 4;
    if (cfg.wants("bigparent")) rows += 7;
    if (cfg.wants("flat")) rows += 12;
    if (cfg.wants("threads")) rows += 16;
    return rows;
}

void LibraryDeleter::operator()(Library* lib) const {
    delete lib;
}

#if BENCH_HAVE_SERVICE

core::Result<void> Library::init() {
    auto ctx = core::Context::background();
    if (auto r = core_->startup(ctx); !r) return r;
    svc_ = core_->service<proc::Service>("process");
    if (!svc_) return fail(E("bench", "no service named \"process\" after startup"));
    return {};
}

core::Result<LibraryPtr> open_library() {
    auto c = core::Core::create({proc::register_service});
    if (!c) return fail(c.error());
    LibraryPtr lib(new Library(std::move(*c)));
    if (auto r = lib->init(); !r) return fail(r.error());
    return lib;
}

core::Result<LibraryPtr> open_batch_library() {
    proc::ServiceOptions opts;
    opts.output_batches = true;
    auto c = core::Core::create({proc::service_factory(opts)});
    if (!c) return fail(c.error());
    LibraryPtr lib(new Library(std::move(*c)));
    if (auto r = lib->init(); !r) return fail(r.error());
    return lib;
}

const core::Context& bg() {
    static const core::Context ctx = core::Context::background();
    return ctx;
}

core::Result<void> check_info(const char* op, const proc::ProcessInfo& info) {
    if (info.status == proc::Status::exited && info.exit_code == 0) return {};
    return fail(E(op, "child ended " + std::string(proc::to_string(info.status)) + " code " +
                          std::to_string(info.exit_code) + " " + info.error));
}

core::Result<void> expect_size(const char* op, std::size_t got, std::size_t want) {
    if (got == want) return {};
    return fail(E(op, "captured " + std::to_string(got) + " bytes, want " + std::to_string(want)));
}

SampleFn lib_start_wait(Library& lib, proc::RunOptions opts) {
    return [svc = &lib.svc(), opts = std::move(opts)]() -> core::Result<double> {
        auto t0 = Clock::now();
        auto p = svc->start(bg(), opts);
        if (!p) return fail(p.error());
        auto info = (*p)->wait();
        auto t1 = Clock::now();
        (void)svc->remove((*p)->id());
        if (auto r = check_info("lib.start", info); !r) return fail(r.error());
        return elapsed_us(t0, t1);
    };
}

SampleFn lib_start_wait_posix(Library& lib, proc::RunOptions opts) {
    return [inner = lib_start_wait(lib, std::move(opts)),
            back = std::string(proc::spawn_method()) == "clone3"
                       ? proc::SpawnMethod::automatic
                       : proc::SpawnMethod::posix_spawn]() -> core::Result<double> {
        proc::set_spawn_method(proc::SpawnMethod::posix_spawn);
        auto r = inner();
        proc::set_spawn_method(back);
        return r;
    };
}

void EventLog::on(const core::Value& v) {
    if (const auto* o = v.get<proc::ProcessOutput>()) {
        std::lock_guard lk(mu);
        line_bytes[o->id] += o->line.size() + 1;
    } else if (const auto* b = v.get<proc::ProcessOutputBatch>()) {
        std::size_t n = 0;
        for (const auto& l : b->lines) n += l.size() + 1;
        std::lock_guard lk(mu);
        line_bytes[b->id] += n;
    } else if (const auto* e = v.get<proc::ProcessExited>()) {
        {
            std::lock_guard lk(mu);
            exited.insert(e->id);
        }
        cv.notify_all();
    }
}

bool EventLog::wait_exited(const std::string& id, std::chrono::seconds timeout) {
    std::unique_lock lk(mu);
    return cv.wait_for(lk, timeout, [&] { return exited.count(id) > 0; });
}

std::size_t EventLog::bytes_of(const std::string& id) {
    std::lock_guard lk(mu);
    auto it = line_bytes.find(id);
    return it == line_bytes.end() ? 0 : it->second;
}

core::Result<double> drain_events(Library& lib, const std::string& noop) {
    EventLog log;
    auto sub = lib.core().subscribe([&log](const core::Value& v) { log.on(v); });
    proc::RunOptions o;
    o.command = noop;
    o.std_out = core::process::Stdio::inherit();
    o.std_err = core::process::Stdio::inherit();
    auto t0 = Clock::now();
    auto p = lib.svc().start(bg(), o);
    if (!p) return fail(p.error());
    (void)(*p)->wait();
    const bool seen = log.wait_exited((*p)->id(), std::chrono::seconds(120));
    auto t1 = Clock::now();
    sub.reset();
    (void)lib.svc().remove((*p)->id());
    if (!seen) return fail(E("lib.events", "event backlog not drained within 120 s"));
    return duration<double, std::milli>(t1 - t0).count();
}

core::Result<void> LibIdle::start(const std::string& sleeper, int n) {
    proc::RunOptions o;
    o.command = sleeper;
    o.args = {"pause"};
    o.std_out = core::process::Stdio::inherit();
    o.std_err = core::process::Stdio::inherit();
    o.grace_period = std::chrono::milliseconds(0);
    ps.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        auto p = lib.svc().start(bg(), o);
        if (!p) return fail(p.error());
        ps.push_back(std::move(*p));
    }
    return {};
}

core::Result<void> LibIdle::stop() {
    core::Result<void> first;
    for (auto& p : ps)
        if (auto r = p->kill(); !r && first) first = r;
    for (auto& p : ps) (void)p->wait();
    ps.clear();
    lib.svc().clear();
    return first;
}

#else  // !BENCH_HAVE_SERVICE

core::Result<LibraryPtr> open_library() {
    return fail(
        E("bench", "the process service is not built (lib/process defines no core_proc_dep)"));
}

#endif

}  // namespace bench
