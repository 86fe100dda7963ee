#include "process/output.hpp"

#include <algorithm>

namespace core::process::detail {

void OutputRing::append(const char* p, std::size_t n) {
    if (n == 0) return;
    if (cap_ == 0) {
        dropped_ += n;
        return;
    }
    if (n >= cap_) {
        // Only the newest cap_ bytes of this chunk survive, and nothing older.
        dropped_ += buf_.size() + (n - cap_);
        buf_.assign(p + (n - cap_), cap_);
        head_ = 0;
        full_ = true;
        return;
    }
    if (!full_) {
        const std::size_t room = cap_ - buf_.size();
        const std::size_t k = std::min(room, n);
        if (buf_.capacity() < buf_.size() + k) {
            // Grow geometrically but never past the cap: memory follows the output's size.
            buf_.reserve(std::min(cap_, std::max(buf_.size() + k, buf_.capacity() * 2)));
        }
        buf_.append(p, k);
        p += k;
        n -= k;
        if (buf_.size() == cap_) {
            full_ = true;
            head_ = 0;
        }
        if (n == 0) return;
    }
    // Full: overwrite the oldest bytes.
    dropped_ += n;
    while (n > 0) {
        const std::size_t k = std::min(n, cap_ - head_);
        std::memcpy(&buf_[head_], p, k);
        head_ = (head_ + k) % cap_;
        p += k;
        n -= k;
    }
}

std::string OutputRing::str() const {
    if (!full_ || head_ == 0) return buf_;
    std::string out;
    out.reserve(buf_.size());
    out.append(buf_, head_, std::string::npos);
    out.append(buf_, 0, head_);
    return out;
}

std::string OutputRing::tail(std::size_t n) const {
    if (n >= buf_.size()) return str();
    if (!full_ || head_ == 0) return buf_.substr(buf_.size() - n);
    // Newest byte is at head_-1; the tail spans [head_-n, head_) modulo size.
    std::string out;
    out.reserve(n);
    if (n <= head_) {
        out.append(buf_, head_ - n, n);
    } else {
        const std::size_t from_end = n - head_;
        out.append(buf_, buf_.size() - from_end, from_end);
        out.append(buf_, 0, head_);
    }
    return out;
}

}  // namespace core::process::detail
