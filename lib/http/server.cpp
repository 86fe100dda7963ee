#include "http/server.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/log.hpp"
#include "http/endpoint.hpp"
#include "sys/fd.hpp"
#include "sys/net.hpp"
#include "sys/poll.hpp"

namespace core::http {

namespace net = core::sys::net;
using sys::UniqueFd;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::uint64_t kListenTag = 0;
constexpr std::uint64_t kWakeTag = 1;
constexpr std::size_t kDrainCap = 64 * 1024;  // bytes discarded after a reply before closing
constexpr std::chrono::milliseconds kAcceptPause{100};  // after accept fails (EMFILE…)
constexpr int kAcceptBatch = 64;  // accepts per wake-up (the listen fd is level-triggered)
// The kernel caps the backlog at net.core.somaxconn (4096 since Linux 5.4). A short queue is a
// cliff: past it SYNs are dropped and a client waits a whole retransmission timeout (1 s).
constexpr int kBacklog = 4096;
// How long a newcomer that found every live slot taken may take to send its head before it gets
// 503: a prober sends its request with the connect, a slow client does not.
constexpr std::chrono::milliseconds kProbation{1000};

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

}  // namespace

struct Server::Impl {
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

    // --- bookkeeping, O(1) each ---

    std::chrono::milliseconds probation_time() const { return std::min(kProbation, timeout()); }

    // c's deadline becomes now + head_timeout (or the probation time): the latest of its list.
    void set_deadline(Conn& c, bool probation = false) {
        Tags& list = probation ? probations : deadlines;
        c.deadline = Clock::now() + (probation ? probation_time() : timeout());
        if (c.deadline_list) c.deadline_list->erase(c.by_deadline);
        c.by_deadline = list.insert(list.end(), c.tag);
        c.deadline_list = &list;
    }

    void leave_phase_list(Conn& c) {
        if (!c.phase_list) return;
        c.phase_list->erase(c.in_phase);
        c.phase_list = nullptr;
    }

    void put(Conn& c, Tags& list) {
        leave_phase_list(c);
        c.in_phase = list.insert(list.end(), c.tag);
        c.phase_list = &list;
    }

    // Moves c to phase p, keeping the counters and lists right.
    void enter(Conn& c, Conn::Phase p) {
        leave_phase_list(c);
        c.phase = p;
        if (p == Conn::Phase::draining && c.live) {
            c.live = false;
            --live;
        }
        if (p == Conn::Phase::reading)
            put(c, c.live ? partial : room);
        else if (!c.live)
            put(c, closing);
    }

    void close(std::uint64_t tag) {
        auto it = conns.find(tag);
        if (it == conns.end()) return;
        Conn& c = it->second;
        leave_phase_list(c);
        if (c.deadline_list) c.deadline_list->erase(c.by_deadline);
        if (c.live) --live;
        conns.erase(it);  // closes the fd (epoll forgets it)
    }

    std::uint64_t ticket_of(std::uint64_t tag) const {
        // The generation in the top bits: a reply meant for an earlier run (start → stop →
        // start) never reaches a connection of this one that reused the tag.
        return (generation.load() << 48) | tag;
    }

    // --- one connection ---

    // Turns c into a writer of resp; the connection closes after it.
    void respond(Conn& c, const Response& resp) {
        c.out = format_response(resp, c.head_only);
        c.out_off = 0;
        enter(c, Conn::Phase::writing);
        set_deadline(c);
    }

    void dispatch(Conn& c, std::size_t end) {
        if (c.probation) {
            // Its head is complete: it takes a free slot or the slot of the oldest half-sent
            // request; with every slot busy it waits for one (not read meanwhile) until its
            // deadline, then gets 503.
            if (live >= opts.max_connections && !evict_partial()) {
                if (!epoll.modify(c.fd.get(), 0, c.tag)) {
                    respond(c, {503, "too many connections\n"});
                    return;
                }
                c.head_end = end;
                put(c, ready);
                set_deadline(c);
                return;
            }
            leave_phase_list(c);
            c.probation = false;
            c.live = true;
            ++live;
        }
        auto req = parse_request(std::string_view(c.in).substr(0, end));
        if (!req) {
            SPDLOG_LOGGER_DEBUG(log, "{}: bad request: {}", opts.name, req.error().what());
            respond(c, {400, "bad request\n"});
            return;
        }
        c.head_only = req->method == "HEAD";
        Reply r;
        // The handler is user code: an exception is a 500, never a dead server thread.
        try {
            r = handler(*req, ticket_of(c.tag));
        } catch (...) {
            r = Reply{{500, "internal error\n"}, false};
        }
        if (!r.deferred) {
            respond(c, r.response);
            return;
        }
        // Nothing more is read from it while it waits: no events but errors.
        if (!epoll.modify(c.fd.get(), 0, c.tag)) {
            respond(c, {500, "internal error\n"});
            return;
        }
        c.on_timeout = std::move(r.response);
        enter(c, Conn::Phase::waiting);
        set_deadline(c);
    }

    // Advances one connection; false when it is finished and must be closed.
    bool service(Conn& c) {
        if (c.phase == Conn::Phase::waiting || c.phase_list == &ready)
            return false;  // no events are asked for: an error or hang-up, it is gone
        if (c.phase == Conn::Phase::reading) {
            char buf[4096];
            // Level-triggered, so stopping early is safe; but read what is there, so a head
            // sent in pieces is parsed as soon as it is complete.
            for (;;) {
                auto n = net::recv_some(c.fd.get(), buf, sizeof buf);
                if (!n) return false;
                if (*n == sys::would_block) return true;
                if (*n == 0) return false;  // client gave up before a full head
                c.in.append(buf, static_cast<std::size_t>(*n));
                const std::size_t end = find_head_end(c.in);
                if (end != std::string::npos && end <= opts.max_head) {
                    dispatch(c, end);
                    if (c.phase == Conn::Phase::waiting || c.phase_list == &ready) return true;
                    break;
                }
                if (c.in.size() > opts.max_head) {
                    respond(c, {431, "request header too large\n"});
                    break;
                }
            }
        }
        if (c.phase == Conn::Phase::writing && !write_reply(c)) return false;
        if (c.phase == Conn::Phase::writing) return true;  // blocked: EPOLLOUT will resume it
        // draining (level-triggered: one read per event is enough; EOF stays readable)
        char buf[4096];
        auto n = net::recv_some(c.fd.get(), buf, sizeof buf);
        if (!n || *n == 0) return false;
        if (*n > 0) c.drained += static_cast<std::size_t>(*n);
        return c.drained <= kDrainCap;
    }

    // Sends what is left of the reply; on completion half-closes and moves to draining. False
    // when the connection broke.
    bool write_reply(Conn& c) {
        while (c.out_off < c.out.size()) {
            auto n = net::send_some(c.fd.get(), std::string_view(c.out).substr(c.out_off));
            if (!n) return false;
            if (*n == sys::would_block) {
                // Level-triggered: ask for writability only while we have bytes to send, or
                // the loop would spin on an always-writable socket.
                if (!c.want_out) {
                    if (!epoll.modify(c.fd.get(), sys::ev_in | sys::ev_out, c.tag)) return false;
                    c.want_out = true;
                }
                return true;
            }
            c.out_off += static_cast<std::size_t>(*n);
        }
        if (c.want_out) {
            if (!epoll.modify(c.fd.get(), sys::ev_in, c.tag)) return false;
            c.want_out = false;
        }
        // Half-close and drain what the client still sends: closing a socket with unread input
        // makes the kernel send RST, which can destroy our reply in flight.
        net::shutdown_write(c.fd.get());
        c.in.clear();
        c.in.shrink_to_fit();
        c.out.clear();
        c.out.shrink_to_fit();
        enter(c, Conn::Phase::draining);
        set_deadline(c);
        return true;
    }

    // A deferred reply arrived (server thread).
    void deliver(std::uint64_t ticket, const Response& resp) {
        if ((ticket >> 48) != (generation.load() & 0xffff)) return;
        const std::uint64_t tag = ticket & ((std::uint64_t{1} << 48) - 1);
        auto it = conns.find(tag);
        if (it == conns.end() || it->second.phase != Conn::Phase::waiting) return;
        Conn& c = it->second;
        respond(c, resp);
        if (!epoll.modify(c.fd.get(), sys::ev_in, c.tag) || !service(c)) close(tag);
    }

    void take_replies() {
        std::vector<std::pair<std::uint64_t, Response>> got;
        {
            std::lock_guard lk(reply_mu);
            got.swap(replies);
        }
        for (const auto& [ticket, resp] : got) deliver(ticket, resp);
    }

    // --- the loop ---

    int wait_ms(Clock::time_point now) const {
        Clock::time_point next = Clock::time_point::max();
        if (!deadlines.empty()) next = conns.at(deadlines.front()).deadline;
        if (!probations.empty()) next = std::min(next, conns.at(probations.front()).deadline);
        if (accept_paused && resume_accept_at < next) next = resume_accept_at;
        if (next == Clock::time_point::max()) return -1;
        auto left = std::chrono::ceil<std::chrono::milliseconds>(next - now).count();
        return left < 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
    }

    void expire(Clock::time_point now) {
        expire(probations, now);
        expire(deadlines, now);
    }

    void expire(Tags& list, Clock::time_point now) {
        // Slow clients: a connection past its deadline is closed, whatever its phase; one
        // waiting for a deferred reply gets its fallback answer first, one on probation 503.
        while (!list.empty()) {
            const std::uint64_t tag = list.front();
            Conn& c = conns.at(tag);
            if (c.deadline > now) break;
            if (c.phase == Conn::Phase::waiting || c.probation) {
                if (c.probation) c.probation = false;
                respond(c, c.phase == Conn::Phase::waiting
                               ? c.on_timeout
                               : Response{503, "too many connections\n"});
                if (!epoll.modify(c.fd.get(), sys::ev_in, c.tag) || !service(c)) close(tag);
                continue;  // respond moved it to the back
            }
            SPDLOG_LOGGER_DEBUG(log, "{}: closing a connection after {}ms", opts.name,
                                timeout().count());
            close(tag);
        }
    }

    void loop() {
        sys::PollEvent evs[64];
        while (!stopping.load()) {
            const auto now = Clock::now();
            if (accept_paused && !accept_full && now >= resume_accept_at) {
                if (epoll.add(listen_fd.get(), sys::ev_in, kListenTag))
                    accept_paused = false;
                else
                    resume_accept_at = now + kAcceptPause;
            }
            auto n = epoll.wait(evs, 64, wait_ms(now));
            if (!n) {
                SPDLOG_LOGGER_DEBUG(log, "{}: {}", opts.name, n.error().what());
                break;  // epoll itself broke: nothing sensible left to do but stop serving
            }
            for (int i = 0; i < *n; ++i) {
                const std::uint64_t tag = evs[i].data;
                if (tag == kWakeTag) {
                    wake.drain();
                    take_replies();
                    continue;
                }
                if (tag == kListenTag) {
                    accept_all();
                    continue;
                }
                auto it = conns.find(tag);
                if (it == conns.end()) continue;
                if (!service(it->second)) close(tag);
            }
            expire(Clock::now());
            promote_ready();
        }
        conns.clear();
        deadlines.clear();
        probations.clear();
        partial.clear();
        room.clear();
        ready.clear();
        closing.clear();
        accept_full = false;
        live = 0;
    }

    // Closes the oldest connection of list that has sent part of a head (not a connection that
    // has sent nothing yet: a client about to send, as a loaded client is); false when none.
    // The scan is bounded by the list's cap, not by the number of connections.
    bool evict_half_sent(Tags& list) {
        for (auto tag : list) {
            if (conns.at(tag).in.empty()) continue;
            SPDLOG_LOGGER_DEBUG(log, "{}: closing the oldest half-sent request to make room",
                                opts.name);
            close(tag);
            return true;
        }
        return false;
    }
    bool evict_partial() { return evict_half_sent(partial); }

    std::size_t room_cap() const { return 4 * opts.max_connections; }

    // Live slots freed: the oldest ready connections on probation take them.
    void promote_ready() {
        while (!ready.empty() && live < opts.max_connections) {
            const std::uint64_t tag = ready.front();
            Conn& c = conns.at(tag);
            leave_phase_list(c);
            c.probation = false;
            c.live = true;
            ++live;
            if (!epoll.modify(c.fd.get(), sys::ev_in, c.tag)) {
                close(tag);
                continue;
            }
            dispatch(c, c.head_end);
            if (c.phase == Conn::Phase::writing && !write_reply(c)) close(tag);
        }
        if (accept_full && !accept_paused && room.size() + ready.size() < room_cap()) {
            if (epoll.add(listen_fd.get(), sys::ev_in, kListenTag)) accept_full = false;
        }
    }

    void accept_all() {
        // A bounded batch: clients that reconnect as fast as we answer would otherwise keep
        // this loop from ever returning to epoll_wait, and the closes of finished connections
        // (and stop()) would never be seen.
        for (int batch = 0; batch < kAcceptBatch; ++batch) {
            auto fd = net::accept(listen_fd.get());
            if (!fd) {
                // EMFILE, ENFILE, ENOMEM…: the pending connection stays queued and the
                // level-triggered listen fd would make epoll_wait return at once, forever. Stop
                // watching it for a moment (a deadline in the loop, not a sleep), then retry.
                SPDLOG_LOGGER_DEBUG(log, "{}: {}; pausing accepts", opts.name, fd.error().what());
                if (epoll.remove(listen_fd.get())) {
                    accept_paused = true;
                    resume_accept_at = Clock::now() + kAcceptPause;
                }
                return;
            }
            if (!fd->valid()) return;
            admit(std::move(*fd));
            if (live >= opts.max_connections && room.size() + ready.size() >= room_cap() &&
                !evict_half_sent(room)) {
                // The waiting room is full of clients that have sent nothing or a whole head:
                // let the kernel's accept queue hold the rest until slots free up.
                if (epoll.remove(listen_fd.get())) accept_full = true;
                return;
            }
        }
    }

    void admit(UniqueFd fd) {
        // Closing connections hold descriptors too: past a hard bound the oldest are closed.
        while (closing.size() >= 4 * opts.max_connections) close(closing.front());
        const bool probation = live >= opts.max_connections;
        const std::uint64_t tag = next_tag++;
        if (!epoll.add(fd.get(), sys::ev_in, tag)) return;  // fd closes; the client sees a drop
        Conn c;
        c.fd = std::move(fd);
        c.tag = tag;
        c.live = !probation;
        c.probation = probation;
        auto [it, ok] = conns.emplace(tag, std::move(c));
        (void)ok;
        Conn& conn = it->second;
        set_deadline(conn, probation);
        // On probation it is not live: it waits in the room (bounded) for its head, and its
        // refusal is a reply that goes out and drains like any other (a bare close would reset
        // the client).
        if (!probation) ++live;
        enter(conn, Conn::Phase::reading);
        if (!service(conn)) {
            close(tag);
            return;
        }
        if (conn.phase == Conn::Phase::reading && conn.live && partial.size() > partial_cap())
            evict_partial();
    }

    std::size_t partial_cap() const {
        return opts.max_partial == 0 ? opts.max_connections : opts.max_partial;
    }
};

Server::Server(ServerOptions opts, Handler handler) : impl_(std::make_unique<Impl>()) {
    impl_->opts = std::move(opts);
    impl_->handler = std::move(handler);
    impl_->log = impl_->opts.logger ? impl_->opts.logger : core::default_logger();
    if (impl_->opts.max_connections == 0) impl_->opts.max_connections = 1;
    if (impl_->opts.max_head < 64) impl_->opts.max_head = 64;
    if (impl_->opts.head_timeout <= std::chrono::milliseconds(0))
        impl_->opts.head_timeout = std::chrono::milliseconds(5000);
}

Server::~Server() {
    stop();
}

Result<void> Server::start() {
    Impl& m = *impl_;
    const std::string& op = m.opts.name;
    std::lock_guard lk(m.mu);
    if (m.running) return fail(E(op, "already started on " + m.bound));
    const std::string want = m.opts.addr.empty() ? "127.0.0.1:0" : m.opts.addr;
    auto ep = parse_endpoint(op, want);
    if (!ep) return fail(Error(op, "listen " + ep.error().message(), EINVAL));
    auto listen = net::tcp_listen(*ep, kBacklog);
    if (!listen)
        return fail(Error(op, "listen " + net::to_string(*ep) + ": " + errno_text(listen.error()),
                          listen.error().code()));
    auto port = net::local_port(listen->get());
    if (!port) return fail(E(op, "listen " + want, port.error()));
    auto epoll = sys::Epoll::create();
    if (!epoll) return fail(E(op, "start", epoll.error()));
    auto wake = sys::EventFd::create();
    if (!wake) return fail(E(op, "start", wake.error()));
    if (auto r = epoll->add(listen->get(), sys::ev_in, kListenTag); !r)
        return fail(E(op, "start", r.error()));
    if (auto r = epoll->add(wake->fd(), sys::ev_in, kWakeTag); !r)
        return fail(E(op, "start", r.error()));
    net::Endpoint bound = *ep;
    bound.port = *port;
    m.bound = net::to_string(bound);
    m.listen_fd = std::move(*listen);
    m.epoll = std::move(*epoll);
    m.wake = std::move(*wake);
    m.stopping.store(false);
    m.accept_paused = false;
    m.generation.store((m.generation.load() + 1) & 0xffff);
    {
        std::lock_guard rlk(m.reply_mu);
        m.replies.clear();
    }
    try {
        m.thread = std::thread([&m] { m.loop(); });
    } catch (const std::system_error& e) {
        m.listen_fd.reset();
        m.epoll = {};
        m.wake = {};
        return fail(Error(op, std::string("start thread: ") + e.what(), e.code().value()));
    }
    m.running = true;
    SPDLOG_LOGGER_DEBUG(m.log, "{}: listening on {}", op, m.bound);
    unsigned char octets[4];
    std::memcpy(octets, &bound.addr_be, sizeof octets);  // network order: first octet first
    if (octets[0] != 127)
        m.log->warn(
            "{}: listening on {}, which is not a loopback address: every route can be reached "
            "from other hosts",
            op, m.bound);
    return {};
}

void Server::stop() {
    Impl& m = *impl_;
    std::thread t;
    {
        std::lock_guard lk(m.mu);
        if (!m.running) return;
        m.running = false;
        t = std::move(m.thread);
    }
    m.stopping.store(true);
    m.wake.signal();
    if (t.joinable()) t.join();
    // The loop's connections closed when it returned; now the shared descriptors.
    m.listen_fd.reset();
    m.epoll = {};
    m.wake = {};
}

bool Server::running() const {
    std::lock_guard lk(impl_->mu);
    return impl_->running;
}

std::string Server::addr() const {
    std::lock_guard lk(impl_->mu);
    return impl_->running ? impl_->bound : impl_->opts.addr;
}

void Server::reply(std::uint64_t ticket, Response resp) {
    Impl& m = *impl_;
    std::lock_guard lk(m.mu);  // the wake fd lives while running, and only under mu it is sure
    if (!m.running) return;
    {
        std::lock_guard rlk(m.reply_mu);
        m.replies.emplace_back(ticket, std::move(resp));
    }
    m.wake.signal();
}

}  // namespace core::http
