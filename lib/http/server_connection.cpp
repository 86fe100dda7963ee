// One connection of core::http::Server (server_impl.hpp): its head read and parsed, the handler
// called, a deferred reply delivered, the response written, the rest drained before the close.
#include <spdlog/spdlog.h>

#include "http/server_impl.hpp"

namespace core::http {

using detail::kDrainCap;

// Turns c into a writer of resp; the connection closes after it.
void Server::Impl::respond(Conn& c, const Response& resp) {
    c.out = format_response(resp, c.head_only);
    c.out_off = 0;
    enter(c, Conn::Phase::writing);
    set_deadline(c);
}

void Server::Impl::dispatch(Conn& c, std::size_t end) {
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
bool Server::Impl::service(Conn& c) {
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
bool Server::Impl::write_reply(Conn& c) {
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
void Server::Impl::deliver(std::uint64_t ticket, const Response& resp) {
    if ((ticket >> 48) != (generation.load() & 0xffff)) return;
    const std::uint64_t tag = ticket & ((std::uint64_t{1} << 48) - 1);
    auto it = conns.find(tag);
    if (it == conns.end() || it->second.phase != Conn::Phase::waiting) return;
    Conn& c = it->second;
    respond(c, resp);
    if (!epoll.modify(c.fd.get(), sys::ev_in, c.tag) || !service(c)) close(tag);
}

void Server::Impl::take_replies() {
    std::vector<std::pair<std::uint64_t, Response>> got;
    {
        std::lock_guard lk(reply_mu);
        got.swap(replies);
    }
    for (const auto& [ticket, resp] : got) deliver(ticket, resp);
}

}  // namespace core::http
