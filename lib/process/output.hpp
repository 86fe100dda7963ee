// Output bookkeeping of one child: a ring that keeps the newest `capacity` bytes (growing
// lazily, never allocated up front) and counts what it dropped, and an incremental line
// splitter for ProcessOutput events. Not synchronised: the owner locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace core::process::detail {

class OutputRing {
  public:
    explicit OutputRing(std::size_t capacity = 0) : cap_(capacity) {}
    void set_capacity(std::size_t capacity) { cap_ = capacity; }

    void append(const char* p, std::size_t n);
    // Oldest to newest.
    std::string str() const;
    // The newest n bytes (fewer when less is kept).
    std::string tail(std::size_t n) const;
    std::size_t size() const noexcept { return buf_.size(); }
    std::uint64_t dropped() const noexcept { return dropped_; }

  private:
    std::string buf_;  // grows up to cap_; once full, a ring whose oldest byte is at head_
    std::size_t cap_ = 0;
    std::size_t head_ = 0;
    bool full_ = false;
    std::uint64_t dropped_ = 0;
};

// Splits a byte stream into lines (without the '\n'; a '\r' is kept: bytes are exact). A line
// longer than max_piece is delivered in pieces of max_piece bytes, so memory stays bounded.
class LineSplitter {
  public:
    explicit LineSplitter(std::size_t max_piece = 1 << 20)
        : max_piece_(max_piece ? max_piece : 1) {}
    void set_max_piece(std::size_t n) { max_piece_ = n ? n : 1; }

    template <class Emit>
    void feed(const char* p, std::size_t n, Emit&& emit) {
        feed_views(p, n, [&](std::string_view line) { emit(std::string(line)); });
    }
    // As feed, but each line is a view, valid only during the call: a caller that keeps the
    // lines copies them where it likes (a ProcessOutputBatch into strings it reuses).
    template <class Emit>
    void feed_views(const char* p, std::size_t n, Emit&& emit) {
        if (mid_line_) {
            // skip() left us inside a line nobody was listening to: its tail is not a line.
            const char* nl = static_cast<const char*>(std::memchr(p, '\n', n));
            if (!nl) return;
            n -= static_cast<std::size_t>(nl - p) + 1;
            p = nl + 1;
            mid_line_ = false;
        }
        while (n > 0) {
            const char* nl = static_cast<const char*>(std::memchr(p, '\n', n));
            const std::size_t seg = nl ? static_cast<std::size_t>(nl - p) : n;
            if (partial_.empty() && nl && seg <= max_piece_) {
                emit(std::string_view(p, seg));  // the common case: a whole line in one chunk
            } else {
                partial_.append(p, seg);
                std::size_t off = 0;
                while (partial_.size() - off > max_piece_) {
                    emit(std::string_view(partial_).substr(off, max_piece_));
                    off += max_piece_;
                }
                partial_.erase(0, off);
                if (nl) {
                    emit(std::string_view(partial_));
                    partial_.clear();
                }
            }
            if (!nl) break;
            n -= seg + 1;
            p = nl + 1;
        }
    }
    // Passes over a chunk nobody listens to (no subscriber): no line is built. Whole lines
    // resume at the first newline after a later feed().
    void skip(const char* p, std::size_t n) noexcept {
        if (n == 0) return;
        partial_.clear();
        mid_line_ = p[n - 1] != '\n';
    }
    // Delivers the last unterminated line, if any.
    template <class Emit>
    void flush(Emit&& emit) {
        if (mid_line_) {
            mid_line_ = false;
            return;
        }
        if (!partial_.empty()) {
            emit(std::move(partial_));
            partial_.clear();
        }
    }

  private:
    std::string partial_;
    std::size_t max_piece_;
    bool mid_line_ = false;  // inside a line whose start was skipped
};

}  // namespace core::process::detail
