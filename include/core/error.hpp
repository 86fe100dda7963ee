// core::Error: what failed (op), on what and why (message), the errno if any (code), and the
// Error it wraps (cause). Errors are values: every fallible call returns core::Result<T>.
#pragma once

#include <memory>
#include <string>

#include "core/export.hpp"

namespace core {

class CORE_API Error {
  public:
    Error() = default;
    Error(std::string op, std::string message, int code = 0);
    Error(std::string op, std::string message, const Error& cause, int code = 0);

    // The operation that failed, e.g. "process.run".
    const std::string& op() const noexcept { return op_; }
    // What went wrong on what, e.g. `exec "gti": No such file or directory`.
    const std::string& message() const noexcept { return message_; }
    // errno of the failing call, 0 when none; inherited from the cause when not set here.
    int code() const noexcept;
    // The wrapped Error, or null.
    const Error* cause() const noexcept { return cause_.get(); }
    // "op: message: cause", empty parts left out.
    std::string what() const;

    // A copy of this Error with a different code.
    Error with_code(int code) const;

  private:
    std::string op_;
    std::string message_;
    int code_ = 0;
    std::shared_ptr<const Error> cause_;
};

// Builders, as core.E in core/go.
CORE_API Error E(std::string op, std::string message);
CORE_API Error E(std::string op, std::string message, const Error& cause);
// An Error from an errno value: message gets ": <strerror(err)>" appended; code() is err.
CORE_API Error E_errno(std::string op, std::string message, int err);

}  // namespace core
