// The event dispatcher of one Service: the reaper hands it ProcessStarted/Output/Killed/Exited
// Values and never waits; one thread broadcasts them on the Core bus in FIFO order (so the
// events of one process stay in order). The queue is bounded for output lines: when subscribers
// fall behind by more than max_queued_lines lines, further lines are dropped (counted), never
// the lifecycle events. Owned by std::shared_ptr (its thread holds one). Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/value.hpp"

namespace core {
class Core;
}

namespace core::process::detail {

class EventDispatcher : public std::enable_shared_from_this<EventDispatcher> {
  public:
    // Holds the Core weakly: a Core being destroyed (its bus goes before its services) is
    // never called. wanted() reads the bus's subscriber count without locking the Core: on the
    // reaper thread that lock could be the Core's last reference, and dropping it would
    // destroy the Service, and the Reaper, under the reaper's own feet (seen under TSan).
    EventDispatcher(std::weak_ptr<Core> core, std::shared_ptr<const std::atomic<int>> subscribers,
                    std::size_t max_queued_lines) noexcept
        : core_(std::move(core)),
          subscribers_(std::move(subscribers)),
          max_lines_(max_queued_lines) {}
    ~EventDispatcher();  // discards what is queued: the Core may be gone
    EventDispatcher(const EventDispatcher&) = delete;
    EventDispatcher& operator=(const EventDispatcher&) = delete;

    // Queues ev; a line (is_line) is dropped when too many lines are queued. Starts the thread
    // on first use. Drops ev at once when nobody is subscribed to the bus.
    void emit(Value ev, bool is_line) { emit_counted(std::move(ev), is_line ? 1 : 0); }
    // Queues ev holding `lines` output lines (a ProcessOutputBatch; 0: a lifecycle event): the
    // whole batch is dropped (its lines counted) when it would take the queue past the bound.
    void emit_counted(Value ev, std::size_t lines);
    // Delivers everything queued so far, then stops the thread (emit() restarts it). From the
    // dispatcher thread itself (a subscriber shutting the Core down) it cannot wait: the thread
    // is detached and delivers the rest once the subscriber returns.
    void flush_and_stop();
    std::uint64_t dropped_lines() const;
    // The lines of a ProcessOutputBatch already delivered, its strings kept, or an empty
    // vector: the reaper assigns the next batch's lines into those strings, so a steady stream
    // allocates (and the dispatcher thread frees) no string per line. A third of the batch
    // subscriber's CPU was those allocations and their cross-thread frees.
    std::vector<std::string> take_lines();
    // Is anyone subscribed to the Core's bus? When not, the reaper builds no ProcessOutput.
    bool wanted() const noexcept;
    // Discards what is queued, stops the thread and drops every later emit (the Core may be
    // going away).
    void close();

  private:
    void run();
    static bool fits_spare(const std::vector<std::string>& lines) noexcept;
    std::weak_ptr<Core> core_;
    std::shared_ptr<const std::atomic<int>> subscribers_;
    std::size_t max_lines_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::pair<Value, std::size_t>> q_;  // an event and the lines it holds
    // Delivered batches' line vectors for take_lines: at most kSpareBatches, each holding at
    // most kSpareBytes of string capacity (the memory kept is bounded whatever the lines were).
    static constexpr std::size_t kSpareBatches = 4;
    static constexpr std::size_t kSpareBytes = 256 * 1024;
    std::vector<std::vector<std::string>> spare_;
    std::size_t lines_ = 0;
    std::uint64_t dropped_ = 0;
    bool stop_ = false;
    bool running_ = false;
    bool closed_ = false;
    std::thread th_;
};

}  // namespace core::process::detail
