#include "core/error.hpp"

#include <cstring>

namespace core {

Error::Error(std::string op, std::string message, int code)
    : op_(std::move(op)), message_(std::move(message)), code_(code) {}

Error::Error(std::string op, std::string message, const Error& cause, int code)
    : op_(std::move(op)),
      message_(std::move(message)),
      code_(code),
      cause_(std::make_shared<const Error>(cause)) {}

int Error::code() const noexcept {
    if (code_ != 0) return code_;
    return cause_ ? cause_->code() : 0;
}

std::string Error::what() const {
    std::string out = op_;
    auto append = [&out](const std::string& part) {
        if (part.empty()) return;
        if (!out.empty()) out += ": ";
        out += part;
    };
    append(message_);
    if (cause_) append(cause_->what());
    return out;
}

Error Error::with_code(int code) const {
    Error copy = *this;
    copy.code_ = code;
    return copy;
}

Error E(std::string op, std::string message) {
    return Error(std::move(op), std::move(message));
}

Error E(std::string op, std::string message, const Error& cause) {
    return Error(std::move(op), std::move(message), cause);
}

Error E_errno(std::string op, std::string message, int err) {
    char buf[128];
    // GNU strerror_r returns the message (possibly not in buf); it is thread-safe.
    const char* text = strerror_r(err, buf, sizeof buf);
    if (!message.empty()) message += ": ";
    message += text;
    return Error(std::move(op), std::move(message), err);
}

}  // namespace core
