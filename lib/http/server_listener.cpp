// The server thread of core::http::Server (server_impl.hpp): its loop, accepting, the caps on
// live, partial, waiting-room and closing connections, and the deadline and phase lists.
#include <spdlog/spdlog.h>

#include "http/server_impl.hpp"

namespace core::http {

using detail::kAcceptBatch;
using detail::kAcceptPause;
using detail::kListenTag;
using detail::kWakeTag;

// c's deadline becomes now + head_timeout (or the probation time): the latest of its list.
void Server::Impl::set_deadline(Conn& c, bool probation) {
    Tags& list = probation ? probations : deadlines;
    c.deadline = Clock::now() + (probation ? probation_time() : timeout());
    if (c.deadline_list) c.deadline_list->erase(c.by_deadline);
    c.by_deadline = list.insert(list.end(), c.tag);
    c.deadline_list = &list;
}

void Server::Impl::leave_phase_list(Conn& c) {
    if (!c.phase_list) return;
    c.phase_list->erase(c.in_phase);
    c.phase_list = nullptr;
}

void Server::Impl::put(Conn& c, Tags& list) {
    leave_phase_list(c);
    c.in_phase = list.insert(list.end(), c.tag);
    c.phase_list = &list;
}

// Moves c to phase p, keeping the counters and lists right.
void Server::Impl::enter(Conn& c, Conn::Phase p) {
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

void Server::Impl::close(std::uint64_t tag) {
    auto it = conns.find(tag);
    if (it == conns.end()) return;
    Conn& c = it->second;
    leave_phase_list(c);
    if (c.deadline_list) c.deadline_list->erase(c.by_deadline);
    if (c.live) --live;
    conns.erase(it);  // closes the fd (epoll forgets it)
}

int Server::Impl::wait_ms(Clock::time_point now) const {
    Clock::time_point next = Clock::time_point::max();
    if (!deadlines.empty()) next = conns.at(deadlines.front()).deadline;
    if (!probations.empty()) next = std::min(next, conns.at(probations.front()).deadline);
    if (accept_paused && resume_accept_at < next) next = resume_accept_at;
    if (next == Clock::time_point::max()) return -1;
    auto left = std::chrono::ceil<std::chrono::milliseconds>(next - now).count();
    return left < 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

void Server::Impl::expire(Clock::time_point now) {
    expire(probations, now);
    expire(deadlines, now);
}

void Server::Impl::expire(Tags& list, Clock::time_point now) {
    // Slow clients: a connection past its deadline is closed, whatever its phase; one
    // waiting for a deferred reply gets its fallback answer first, one on probation 503.
    while (!list.empty()) {
        const std::uint64_t tag = list.front();
        Conn& c = conns.at(tag);
        if (c.deadline > now) break;
        if (c.phase == Conn::Phase::waiting || c.probation) {
            if (c.probation) c.probation = false;
            respond(c, c.phase == Conn::Phase::waiting ? c.on_timeout
                                                       : Response{503, "too many connections\n"});
            if (!epoll.modify(c.fd.get(), sys::ev_in, c.tag) || !service(c)) close(tag);
            continue;  // respond moved it to the back
        }
        SPDLOG_LOGGER_DEBUG(log, "{}: closing a connection after {}ms", opts.name,
                            timeout().count());
        close(tag);
    }
}

void Server::Impl::loop() {
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
bool Server::Impl::evict_half_sent(Tags& list) {
    for (auto tag : list) {
        if (conns.at(tag).in.empty()) continue;
        SPDLOG_LOGGER_DEBUG(log, "{}: closing the oldest half-sent request to make room",
                            opts.name);
        close(tag);
        return true;
    }
    return false;
}

// Live slots freed: the oldest ready connections on probation take them.
void Server::Impl::promote_ready() {
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

void Server::Impl::accept_all() {
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

void Server::Impl::admit(UniqueFd fd) {
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

}  // namespace core::http
