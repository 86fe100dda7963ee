#include "core/process/types.hpp"

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
