// Server::Impl, the inside of core::http::Server (server.hpp), shared by its three sources:
//  - server.cpp: the public calls (start binds and starts the thread, stop joins it, reply);
//  - server_listener.cpp: the server thread's loop, accepting, the caps (live, partial,
//    probation, closing), the deadlines and the bookkeeping lists, O(1) each;
//  - server_connection.cpp: one connection: reading and parsing its head, calling the handler,
//    a deferred reply, writing the response and draining.
// Private to lib/http. Threads: the members under "Server thread only" belong to the loop; mu
// and reply_mu guard what their comments say.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "http/server.hpp"
#include "sys/fd.hpp"
#include "sys/net.hpp"
#include "sys/poll.hpp"

namespace core::http {

namespace net = core::sys::net;
using sys::UniqueFd;
using Clock = std::chrono::steady_clock;

namespace detail {

inline constexpr std::uint64_t kListenTag = 0;
inline constexpr std::uint64_t kWakeTag = 1;
inline constexpr std::size_t kDrainCap = 64 * 1024;  // bytes discarded after a reply before closing
inline constexpr std::chrono::milliseconds kAcceptPause{100};  // after accept fails (EMFILE…)
inline constexpr int kAcceptBatch = 64;  // accepts per wake-up (the listen fd is level-triggered)
// The kernel caps the backlog at net.core.somaxconn (4096 since Linux 5.4). A short queue is a
// cliff: past it SYNs are dropped and a client waits a whole retransmission timeout (1 s).
inline constexpr int kBacklog = 4096;
// How long a newcomer that found every live slot taken may take to send its head before it gets
// 503: a prober sends its request with the connect, a slow client does not.
inline constexpr std::chrono::milliseconds kProbation{1000};

using Tags = std::list<std::uint64_t>;

struct Conn {
    UniqueFd fd;
    std::uint64_t tag = 0;
    // reading: the head is still arriving (a "partial" connection); waiting: a deferred reply;
    // writing: the reply is going out; draining: answered, waiting for the client to close.
    enum class Phase { reading, waiting, writing, draining } phase = Phase::reading;
    bool live = true;        // counts against max_connections (false: closing, or on probation)
    bool probation = false;  // came when every live slot was taken: admitted if its head
                             // completes in time and a half-sent one can make room, else 503
    bool want_out = false;   // EPOLLOUT registered (only while a reply is blocked)
    bool head_only = false;
    std::string in;
    std::string out;
    std::size_t out_off = 0;
    std::size_t drained = 0;
    Response on_timeout;  // waiting: the answer if reply() does not come in time
    Clock::time_point deadline;
    Tags* deadline_list = nullptr;  // Impl::deadlines or Impl::probations
    Tags::iterator by_deadline;     // its place there
    Tags* phase_list = nullptr;     // Impl::partial, room, ready or closing (or none)
    Tags::iterator in_phase;        // its place there
    std::size_t head_end = 0;       // ready: the end of its complete head in `in`
};

}  // namespace detail

struct Server::Impl {
    using Conn = detail::Conn;
    using Tags = detail::Tags;

    ServerOptions opts;
    Handler handler;
    std::shared_ptr<spdlog::logger> log;

    mutable std::mutex mu;  // guards bound, running, thread
    std::string bound;
    bool running = false;
    std::thread thread;
    std::atomic<bool> stopping{false};
    std::atomic<std::uint64_t> generation{0};  // bumped by start: tickets of a run carry it

    // Replies from other threads, picked up by the server thread on the wake-up eventfd.
    std::mutex reply_mu;
    std::vector<std::pair<std::uint64_t, Response>> replies;

    // Created by start, used by the server thread, closed by stop after the join.
    UniqueFd listen_fd;
    sys::Epoll epoll;
    sys::EventFd wake;

    // Server thread only.
    std::unordered_map<std::uint64_t, Conn> conns;
    // Every connection is in one of two deadline lists, each in deadline order because each
    // list's deadlines are now + one fixed time: head_timeout, or the probation time.
    Tags deadlines;
    Tags probations;
    Tags partial;  // live connections in reading, oldest first
    Tags room;     // on probation, head still arriving, oldest first
    Tags ready;    // on probation with a complete head, waiting for a live slot, oldest first
    Tags closing;  // connections that no longer count (draining, refusals), oldest first
    bool accept_full = false;  // accepting paused: room + ready at their bound
    std::size_t live = 0;
    std::uint64_t next_tag = 2;
    bool accept_paused = false;
    Clock::time_point resume_accept_at{};

    std::chrono::milliseconds timeout() const { return opts.head_timeout; }

    // --- bookkeeping, O(1) each (server_listener.cpp) ---

    std::chrono::milliseconds probation_time() const {
        return std::min(detail::kProbation, timeout());
    }
    // c's deadline becomes now + head_timeout (or the probation time): the latest of its list.
    void set_deadline(Conn& c, bool probation = false);
    void leave_phase_list(Conn& c);
    void put(Conn& c, Tags& list);
    // Moves c to phase p, keeping the counters and lists right.
    void enter(Conn& c, Conn::Phase p);
    void close(std::uint64_t tag);
    std::uint64_t ticket_of(std::uint64_t tag) const {
        // The generation in the top bits: a reply meant for an earlier run (start → stop →
        // start) never reaches a connection of this one that reused the tag.
        return (generation.load() << 48) | tag;
    }

    // --- one connection (server_connection.cpp) ---

    // Turns c into a writer of resp; the connection closes after it.
    void respond(Conn& c, const Response& resp);
    void dispatch(Conn& c, std::size_t end);
    // Advances one connection; false when it is finished and must be closed.
    bool service(Conn& c);
    // Sends what is left of the reply; on completion half-closes and moves to draining. False
    // when the connection broke.
    bool write_reply(Conn& c);
    // A deferred reply arrived (server thread).
    void deliver(std::uint64_t ticket, const Response& resp);
    void take_replies();

    // --- the loop, accepting and the caps (server_listener.cpp) ---

    int wait_ms(Clock::time_point now) const;
    void expire(Clock::time_point now);
    void expire(Tags& list, Clock::time_point now);
    void loop();
    // Closes the oldest connection of list that has sent part of a head (not a connection that
    // has sent nothing yet: a client about to send, as a loaded client is); false when none.
    // The scan is bounded by the list's cap, not by the number of connections.
    bool evict_half_sent(Tags& list);
    bool evict_partial() { return evict_half_sent(partial); }
    std::size_t room_cap() const { return 4 * opts.max_connections; }
    // Live slots freed: the oldest ready connections on probation take them.
    void promote_ready();
    void accept_all();
    void admit(UniqueFd fd);
    std::size_t partial_cap() const {
        return opts.max_partial == 0 ? opts.max_connections : opts.max_partial;
    }
};

}  // namespace core::http
