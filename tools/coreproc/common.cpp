#include "common.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <ostream>
#include <string_view>
#include <thread>

#include <spdlog/logger.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include "core/process/daemon.hpp"
#include "core/process/service.hpp"
#include "core/process/signal_waiter.hpp"
#include "core/process/supervisor.hpp"

namespace coreproc {

const std::vector<int> kStopSignals{core::process::signal_term(), core::process::signal_int(),
                                    core::process::signal_hup()};

core::Result<void> prepare_signals(bool block) {
    // A closed stdout or stderr (`coreproc supervise f.json | head -1`, a log collector that
    // died) must not kill us by SIGPIPE and orphan what we started: writes fail with EPIPE
    // instead, which iostreams and spdlog's sinks absorb (output stops quietly).
    if (auto ok = core::process::ignore_sigpipe(); !ok) return ok;
    if (!block) return {};
    return core::process::block_signals(kStopSignals);
}

std::shared_ptr<spdlog::logger> make_logger(int verbose) {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto log = std::make_shared<spdlog::logger>("coreproc", std::move(sink));
    log->set_pattern("%^%H:%M:%S.%e %l%$ %v");
    log->set_level(verbose >= 2   ? spdlog::level::debug
                   : verbose == 1 ? spdlog::level::info
                                  : spdlog::level::warn);
    return log;
}

core::Result<std::shared_ptr<core::Core>> start_core(const std::shared_ptr<spdlog::logger>& log) {
    auto core = core::Core::create({core::process::register_service});
    if (!core) return core::fail(core.error());
    (*core)->set_logger(log);
    if (auto ok = (*core)->startup(core::Context::background()); !ok) return core::fail(ok.error());
    return core;
}

int run_interruptible(const std::shared_ptr<spdlog::logger>& log,
                      const std::function<void(const core::Context&)>& work) {
    const core::Context ctx = core::Context::background().with_cancel();
    // SIGHUP too: a closed terminal or a dropped ssh session must stop what we started rather
    // than kill us and leave it behind.
    auto waiter = core::process::SignalWaiter::open(kStopSignals);
    if (!waiter) {
        log->warn("signals will not be handled: {}", waiter.error().what());
        work(ctx);
        return 0;
    }
    std::thread worker([&] {
        work(ctx);
        waiter->notify();
    });
    auto sig = waiter->wait();
    if (!sig) log->warn("waiting for signals: {}", sig.error().what());
    const int s = sig ? *sig : 0;
    if (s != 0) {
        log->info("signal {} received: stopping", core::process::signal_name(s));
        ctx.cancel();
    }
    worker.join();
    return s;
}

std::string dump(const nlohmann::json& j, int indent) {
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string human_duration(std::chrono::nanoseconds d) {
    using namespace std::chrono;
    const auto ms = duration_cast<milliseconds>(d).count();
    char buf[64];
    if (ms < 1000) {
        std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ms));
    } else if (ms < 60000) {
        std::snprintf(buf, sizeof buf, "%.2fs", static_cast<double>(ms) / 1000.0);
    } else {
        std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(ms / 60000),
                      static_cast<long long>((ms % 60000) / 1000));
    }
    return buf;
}

double millis(std::chrono::nanoseconds d) {
    return static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(d).count()) /
           1000.0;
}

void print_table(std::ostream& out, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> width(header.size(), 0);
    auto measure = [&](const std::vector<std::string>& row) {
        for (std::size_t c = 0; c < row.size() && c < width.size(); ++c)
            width[c] = std::max(width[c], row[c].size());
    };
    measure(header);
    for (const auto& r : rows) measure(r);
    auto print = [&](const std::vector<std::string>& row) {
        std::string line;
        for (std::size_t c = 0; c < row.size() && c < width.size(); ++c) {
            line += row[c];
            if (c + 1 < row.size()) line += std::string(width[c] - row[c].size() + 2, ' ');
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out << line << '\n';
    };
    print(header);
    for (const auto& r : rows) print(r);
}

std::string tail_lines(const std::string& text, std::size_t max_lines, const std::string& prefix) {
    std::vector<std::string_view> lines;
    std::string_view rest(text);
    while (!rest.empty()) {
        const std::size_t nl = rest.find('\n');
        lines.push_back(rest.substr(0, nl));
        rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    }
    const std::size_t first = lines.size() > max_lines ? lines.size() - max_lines : 0;
    std::string out;
    for (std::size_t i = first; i < lines.size(); ++i) {
        out += prefix;
        out += lines[i];
        out += '\n';
    }
    return out;
}

std::string self_path() {
    std::error_code ec;
    auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
    return ec ? std::string() : p.string();
}

}  // namespace coreproc
