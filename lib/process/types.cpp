#include "core/process/types.hpp"

#include "process/reaper.hpp"
#include "sys/signals.hpp"

namespace core::process {

const char* to_string(Status s) noexcept {
    switch (s) {
        case Status::pending:
            return "pending";
        case Status::running:
            return "running";
        case Status::exited:
            return "exited";
        case Status::killed:
            return "killed";
        case Status::failed:
            return "failed";
    }
    return "unknown";
}

const char* to_string(Stream s) noexcept {
    return s == Stream::stderr_ ? "stderr" : "stdout";
}

}  // namespace core::process

namespace core::process {

const char* to_string(ExitReason r) noexcept {
    switch (r) {
        case ExitReason::natural:
            return "natural";
        case ExitReason::timeout:
            return "timeout";
        case ExitReason::cancelled:
            return "cancelled";
        case ExitReason::killed:
            return "killed";
        case ExitReason::shutdown:
            return "shutdown";
    }
    return "unknown";
}

const char* to_string(ExitKind k) noexcept {
    switch (k) {
        case ExitKind::exited:
            return "exited";
        case ExitKind::signalled:
            return "signalled";
        case ExitKind::failed_to_start:
            return "failed_to_start";
        case ExitKind::unknown:
            return "unknown";
    }
    return "unknown";
}

Result<EnvMode> parse_env_mode(std::string_view text) {
    if (text == "merge") return EnvMode::merge;
    if (text == "replace") return EnvMode::replace;
    return fail(
        Error("env_mode", "\"" + std::string(text) + "\": want \"merge\" or \"replace\"", EINVAL));
}

const char* to_string(Stdio::Kind k) noexcept {
    switch (k) {
        case Stdio::Kind::null:
            return "null";
        case Stdio::Kind::inherit:
            return "inherit";
        case Stdio::Kind::pipe:
            return "pipe";
        case Stdio::Kind::bytes:
            return "bytes";
        case Stdio::Kind::file:
            return "file";
        case Stdio::Kind::fd:
            return "fd";
        case Stdio::Kind::merge:
            return "merge";
        case Stdio::Kind::pty:
            return "pty";
    }
    return "unknown";
}

std::string format_duration(std::chrono::milliseconds d) {
    const auto ms = d.count();
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

std::string ExitStatus::describe() const {
    std::string out;
    switch (reason) {
        case ExitReason::timeout:
            out = "timed out after " + format_duration(timeout);
            break;
        case ExitReason::cancelled:
            out = detail.empty() ? "context cancelled" : detail;
            break;
        default:
            break;
    }
    if (out.empty()) {
        switch (kind) {
            case ExitKind::exited:
                out = "exited with code " + std::to_string(code);
                break;
            case ExitKind::signalled:
                out = "killed by signal " + std::to_string(signal) + " (" +
                      sys::signal_name(signal) + ")";
                if (core_dumped) out += ", core dumped";
                break;
            case ExitKind::failed_to_start:
                out = "failed to start" + (detail.empty() ? std::string() : ": " + detail);
                break;
            case ExitKind::unknown:
                out = "exit status unknown" + (detail.empty() ? std::string() : ": " + detail);
                break;
        }
        // An accounting verdict (the OOM killer) says more than the bare signal.
        if (!detail.empty() && (kind == ExitKind::exited || kind == ExitKind::signalled))
            out = detail + " (" + out + ")";
    }
    if (output_cut)
        out += "; output cut: a descendant still held the output pipes " +
               format_duration(std::chrono::milliseconds(detail::drain_timeout)) +
               " after the exit";
    return out;
}

}  // namespace core::process
