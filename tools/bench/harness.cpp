#include "harness.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <utility>

namespace bench {

bool Config::wants(std::string_view section) const {
    return only.empty() || only.count(std::string(section)) > 0;
}

const char* Config::mode_name() const {
    return mode == Mode::quick ? "quick" : mode == Mode::full ? "full" : "normal";
}

void fill_stats(Row& row, std::vector<double> samples, bool higher_is_better) {
    row.n = samples.size();
    if (samples.empty()) return;
    std::sort(samples.begin(), samples.end());
    const std::size_t n = samples.size();
    // Nearest-rank percentiles: with few samples the p99 is simply the worst one.
    auto rank = [&](double p) {
        auto k = static_cast<std::size_t>(std::ceil(p * static_cast<double>(n)));
        return samples[std::clamp<std::size_t>(k, 1, n) - 1];
    };
    row.median = n % 2 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
    row.p99 = higher_is_better ? rank(0.01) : rank(0.99);
    row.min = samples.front();
    row.max = samples.back();
}

Budget::Budget(double max_seconds, int rows) {
    if (max_seconds <= 0) return;
    limited_ = true;
    auto total =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(max_seconds));
    end_ = Clock::now() + total;
    row_share_ = total / std::max(rows, 1);
}

Clock::time_point Budget::row_deadline(int rows) const {
    if (!limited_) return Clock::time_point::max();
    return std::min(Clock::now() + row_share_ * std::max(rows, 1), end_);
}

double Budget::remaining() const {
    if (!limited_) return 1e18;
    return std::chrono::duration<double>(end_ - Clock::now()).count();
}

bool Budget::over() const {
    return limited_ && Clock::now() >= end_;
}

SampleFn timed(std::function<core::Result<void>()> fn) {
    return [fn = std::move(fn)]() -> core::Result<double> {
        auto t0 = Clock::now();
        auto r = fn();
        auto t1 = Clock::now();
        if (!r) return core::fail(r.error());
        return std::chrono::duration<double, std::micro>(t1 - t0).count();
    };
}

Row sample(std::string section, std::string name, int n, int warmup, Clock::time_point deadline,
           const SampleFn& fn) {
    Row row;
    row.section = std::move(section);
    row.name = std::move(name);
    row.unit = "us";
    constexpr int min_samples = 3;
    for (int i = 0; i < warmup; ++i) {
        if (Clock::now() >= deadline) break;
        auto r = fn();
        if (!r) {
            row.error = r.error().what();
            return row;
        }
    }
    std::vector<double> samples;
    samples.reserve(static_cast<std::size_t>(std::max(n, 0)));
    for (int i = 0; i < n; ++i) {
        if (i >= min_samples && Clock::now() >= deadline) break;
        auto r = fn();
        if (!r) {
            row.error = r.error().what();
            break;
        }
        samples.push_back(*r);
    }
    fill_stats(row, std::move(samples));
    return row;
}

UsageSnap usage_now() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    UsageSnap u;
    u.cpu_us = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
               static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    u.ctxsw = static_cast<double>(ru.ru_nvcsw + ru.ru_nivcsw);
    return u;
}

std::vector<Row> sample_interleaved(const std::string& section, const std::vector<Variant>& vs,
                                    int n, int warmup, Clock::time_point deadline, int min_rounds) {
    std::vector<Row> rows(vs.size());
    std::vector<std::vector<double>> samples(vs.size());
    std::vector<UsageSnap> used(vs.size());  // summed over the recorded samples
    for (std::size_t k = 0; k < vs.size(); ++k) {
        rows[k].section = section;
        rows[k].name = vs[k].name;
        rows[k].unit = "us";
        rows[k].ref = vs[k].ref;
        rows[k].note = vs[k].note;
        samples[k].reserve(static_cast<std::size_t>(std::max(n, 0)));
    }
    for (int round = -warmup; round < n; ++round) {
        if (round >= min_rounds && Clock::now() >= deadline) break;
        if (round < 0 && Clock::now() >= deadline) continue;
        for (std::size_t k = 0; k < vs.size(); ++k) {
            if (!rows[k].error.empty()) continue;
            const UsageSnap u0 = usage_now();
            auto r = vs[k].fn();
            const UsageSnap u1 = usage_now();
            if (!r) {
                rows[k].error = r.error().what();
                continue;
            }
            if (round >= 0) {
                samples[k].push_back(*r);
                used[k].cpu_us += u1.cpu_us - u0.cpu_us;
                used[k].ctxsw += u1.ctxsw - u0.ctxsw;
            }
        }
    }
    for (std::size_t k = 0; k < vs.size(); ++k) {
        const double n_rec = static_cast<double>(samples[k].size());
        fill_stats(rows[k], std::move(samples[k]));
        if (n_rec > 0) {
            rows[k].cpu_us = used[k].cpu_us / n_rec;
            rows[k].ctxsw = used[k].ctxsw / n_rec;
        }
    }
    return rows;
}

void Report::add(std::vector<Row> rows) {
    for (auto& r : rows) add(std::move(r));
}

Row& Report::add(Row row) {
    rows_.push_back(std::move(row));
    return rows_.back();
}

Row& Report::skip(std::string section, std::string name, std::string unit, std::string why) {
    Row row;
    row.section = std::move(section);
    row.name = std::move(name);
    row.unit = std::move(unit);
    row.skipped = true;
    row.note = std::move(why);
    return add(std::move(row));
}

const Row* Report::find(std::string_view name) const {
    for (const auto& r : rows_)
        if (r.name == name) return &r;
    return nullptr;
}

double Report::ratio(std::string_view name, std::string_view ref) const {
    const Row* a = find(name);
    const Row* b = find(ref);
    if (!a || !b || a->skipped || b->skipped || !a->error.empty() || !b->error.empty()) return 0;
    if (a->n == 0 || b->n == 0 || b->median == 0) return 0;
    return a->median / b->median;
}

double Report::ratio(const Row& row) const {
    return row.ref.empty() ? 0 : ratio(row.name, row.ref);
}

bool Report::failed() const {
    return std::any_of(rows_.begin(), rows_.end(), [](const Row& r) { return !r.error.empty(); });
}

namespace {

std::string fmt_num(double v) {
    char buf[32];
    if (v >= 1000)
        std::snprintf(buf, sizeof buf, "%.0f", v);
    else if (v >= 10)
        std::snprintf(buf, sizeof buf, "%.1f", v);
    else
        std::snprintf(buf, sizeof buf, "%.2f", v);
    return buf;
}

}  // namespace

void Report::print_table(std::FILE* out) const {
    std::string section;
    std::fprintf(out, "%-58s %7s %10s %10s  %-8s %s\n", "measurement", "n", "median", "p99", "unit",
                 "vs / note");
    for (const auto& r : rows_) {
        if (r.section != section) {
            section = r.section;
            std::fprintf(out, "\n[%s]\n", section.c_str());
        }
        if (r.skipped) {
            std::fprintf(out, "%-58s %7s %10s %10s  %-8s skipped: %s\n", r.name.c_str(), "-", "-",
                         "-", r.unit.c_str(), r.note.c_str());
            continue;
        }
        if (!r.error.empty() && r.n == 0) {
            std::fprintf(out, "%-58s %7s %10s %10s  %-8s ERROR: %s\n", r.name.c_str(), "-", "-",
                         "-", r.unit.c_str(), r.error.c_str());
            continue;
        }
        std::string tail;
        if (double q = ratio(r); q > 0) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.2fx ", q);
            tail = buf + r.ref;
        }
        if (r.cpu_us >= 0) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "[cpu %s us, %s csw /sample]", fmt_num(r.cpu_us).c_str(),
                          fmt_num(r.ctxsw).c_str());
            tail += (tail.empty() ? "" : " ") + std::string(buf);
        }
        if (!r.note.empty()) tail += (tail.empty() ? "" : "; ") + r.note;
        if (!r.error.empty()) tail += (tail.empty() ? "ERROR: " : "; ERROR: ") + r.error;
        std::fprintf(out, "%-58s %7zu %10s %10s  %-8s %s\n", r.name.c_str(), r.n,
                     fmt_num(r.median).c_str(), fmt_num(r.p99).c_str(), r.unit.c_str(),
                     tail.c_str());
    }
    if (!targets_.empty()) {
        std::fprintf(out, "\nTargets (issues 6 and 16; ratios from this run)\n");
        for (const auto& t : targets_)
            std::fprintf(out, "  %-5s %-62s %s\n", t.status.c_str(), t.name.c_str(),
                         t.figure.c_str());
    }
    if (!notes_.empty()) {
        std::fprintf(out, "\nNotes\n");
        for (const auto& n : notes_) std::fprintf(out, "  - %s\n", n.c_str());
    }
}

nlohmann::json Report::to_json(const Config& cfg, const nlohmann::json& machine) const {
    nlohmann::json j;
    j["mode"] = cfg.mode_name();
    j["max_seconds"] = cfg.max_seconds;
    j["machine"] = machine;
    auto& rows = j["rows"] = nlohmann::json::array();
    for (const auto& r : rows_) {
        nlohmann::json o{{"section", r.section}, {"name", r.name}, {"unit", r.unit}, {"n", r.n},
                         {"median", r.median},   {"p99", r.p99},   {"min", r.min},   {"max", r.max},
                         {"skipped", r.skipped}};
        if (!r.ref.empty()) {
            o["ref"] = r.ref;
            o["ratio"] = ratio(r);
        }
        if (!r.note.empty()) o["note"] = r.note;
        if (r.cpu_us >= 0) o["cpu_us_per_sample"] = r.cpu_us;
        if (r.ctxsw >= 0) o["ctxsw_per_sample"] = r.ctxsw;
        if (!r.error.empty()) o["error"] = r.error;
        rows.push_back(std::move(o));
    }
    auto& targets = j["targets"] = nlohmann::json::array();
    for (const auto& t : targets_)
        targets.push_back({{"target", t.name}, {"figure", t.figure}, {"status", t.status}});
    j["notes"] = notes_;
    j["ok"] = !failed();
    return j;
}

}  // namespace bench
