// ControlClient: synchronous Beast HTTP and WebSocket over a socket made by lib/sys (CLOEXEC),
// one connection per call. Also the control directory and name helpers.
#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "core/process/control.hpp"
#include "sys/file.hpp"
#include "sys/supervise.hpp"
#include "sys/unix_socket.hpp"
#include "sys/watch.hpp"

namespace core::process {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace us = core::sys::unix_socket;
using Protocol = asio::generic::stream_protocol;

std::string default_control_dir() {
    if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x)
        return std::string(x) + "/coreproc";
    const unsigned uid = us::effective_uid();
    if (uid == 0) return "/run/coreproc";
    return "/tmp/coreproc-" + std::to_string(uid);
}

std::string control_socket_path(const std::string& name, const std::string& dir) {
    return (dir.empty() ? default_control_dir() : dir) + "/" + name + ".sock";
}

std::string control_name_from_file(const std::string& path) {
    std::string base = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
    const auto dot = base.rfind('.');
    if (dot != std::string::npos && dot > 0) base.resize(dot);
    return base.empty() ? "coreproc" : base;
}

namespace {

// Where the last n lines of s start (a final newline ends the last line, it starts none).
std::size_t tail_start(const std::string& s, std::size_t n) {
    if (n == 0) return s.size();
    std::size_t end = s.size();
    if (end > 0 && s[end - 1] == '\n') --end;
    std::size_t seen = 0;
    while (end > 0) {
        const std::size_t nl = s.rfind('\n', end - 1);
        if (nl == std::string::npos) return 0;
        if (++seen == n) return nl + 1;
        end = nl;
    }
    return 0;
}

// How far back the first read looks for the tail: a log holds lines, not megabyte records.
constexpr std::uint64_t kTailWindow = std::uint64_t{8} << 20;
constexpr std::size_t kReadPiece = std::size_t{1} << 20;
// The longest wait between two looks at the file, should an inotify event be missed (its queue
// overflowed, the directory was replaced).
constexpr int kRecheckMs = 1000;
constexpr unsigned kMaxBackupsScanned = 16;

class FileFollower {
  public:
    FileFollower(std::string path, const std::function<bool(std::string_view)>& on_data)
        : path_(std::move(path)), on_data_(on_data) {}

    Result<void> run(std::size_t tail) {
        const auto slash = path_.rfind('/');
        const std::string dir =
            slash == std::string::npos ? "." : (slash == 0 ? "/" : path_.substr(0, slash));
        auto watch = sys::DirWatch::create(dir);
        if (!watch) return fail(E("logs", "follow \"" + path_ + "\"", watch.error()));
        auto opened = open_current();
        if (!opened) return fail(opened.error());
        if (*opened) {
            auto first = print_tail(tail);
            if (!first) return fail(first.error());
            if (!*first) return {};
        }
        for (;;) {
            if (fd_) {
                auto more = drain();
                if (!more) return fail(more.error());
                if (!*more) return {};
            }
            auto now = sys::file::lstat_id(path_);
            if (fd_ && now && !(*now == id_)) {
                // Rotated: the writer closes the old file before it renames it and creates the
                // new one, so the old one is complete once the new one exists. Its rest first.
                auto more = drain();
                if (!more) return fail(more.error());
                if (!*more) return {};
                fd_.reset();
                // Rotated more than once since we looked: the files in between are backups
                // newer than ours (<path>.1 … <path>.k-1 when ours is now <path>.k).
                auto missed = read_missed_backups();
                if (!missed) return fail(missed.error());
                if (!*missed) return {};
            }
            if (!fd_) {
                auto o = open_current();
                if (!o) return fail(o.error());
                if (*o) continue;  // the new file's first lines at once
            } else if (now) {
                auto size = sys::sup::file_size(fd_.get());
                if (size && *size < offset_) {
                    // Truncated in place: what is there now is new.
                    if (auto r = sys::seek_to(fd_.get(), 0); !r) return fail(r.error());
                    offset_ = 0;
                    continue;
                }
            }
            auto w = watch->wait(kRecheckMs);
            if (!w) return fail(E("logs", "follow \"" + path_ + "\"", w.error()));
        }
    }

  private:
    // Opens the file now at path_; false when there is none (yet).
    Result<bool> open_current() {
        auto o = sys::file::open_read(path_);
        if (!o) {
            if (o.error().code() == ENOENT) return false;
            return fail(E("logs", "open \"" + path_ + "\"", o.error()));
        }
        auto id = sys::file::fstat_id(o->get());
        if (!id) return fail(E("logs", "fstat \"" + path_ + "\"", id.error()));
        fd_ = std::move(*o);
        id_ = *id;
        offset_ = 0;
        return true;
    }

    // The last `tail` lines (from at most kTailWindow before the end); false: on_data said stop.
    Result<bool> print_tail(std::size_t tail) {
        auto size = sys::sup::file_size(fd_.get());
        if (!size) return fail(E("logs", "\"" + path_ + "\"", size.error()));
        if (*size > kTailWindow) {
            if (auto r = sys::seek_to(fd_.get(), *size - kTailWindow); !r) return fail(r.error());
            offset_ = *size - kTailWindow;
        }
        std::string all;
        for (;;) {
            auto s = sys::read_upto(fd_.get(), kReadPiece);
            if (!s) return fail(E("logs", "read \"" + path_ + "\"", s.error()));
            if (s->empty()) break;
            offset_ += s->size();
            all += *s;
        }
        const std::size_t from = tail_start(all, tail);
        if (from >= all.size()) return true;
        return on_data_(std::string_view(all).substr(from));
    }

    // After a rotation: finds the file we followed among the backups (<path>.1, .2, …) and
    // reads, oldest first, every backup newer than it. False: on_data said stop.
    Result<bool> read_missed_backups() {
        unsigned ours = 0;
        for (unsigned k = 1; k <= kMaxBackupsScanned && ours == 0; ++k) {
            auto id = sys::file::lstat_id(path_ + "." + std::to_string(k));
            if (!id) break;
            if (*id == id_) ours = k;
        }
        for (unsigned k = ours; k > 1; --k) {
            auto o = sys::file::open_read(path_ + "." + std::to_string(k - 1));
            if (!o) continue;  // rotated away meanwhile: lost, as tail -F would lose it
            for (;;) {
                auto piece = sys::read_upto(o->get(), kReadPiece);
                if (!piece) return fail(E("logs", "read \"" + path_ + "\"", piece.error()));
                if (piece->empty()) break;
                if (!on_data_(*piece)) return false;
            }
        }
        return true;
    }

    // Everything from the offset to the end; false: on_data said stop.
    Result<bool> drain() {
        for (;;) {
            auto s = sys::read_upto(fd_.get(), kReadPiece);
            if (!s) return fail(E("logs", "read \"" + path_ + "\"", s.error()));
            if (s->empty()) return true;
            offset_ += s->size();
            if (!on_data_(*s)) return false;
        }
    }

    std::string path_;
    const std::function<bool(std::string_view)>& on_data_;
    sys::UniqueFd fd_;
    sys::file::FileId id_{};
    std::uint64_t offset_ = 0;
};

}  // namespace

Result<void> follow_log_file(const std::string& path, std::size_t tail,
                             const std::function<bool(std::string_view)>& on_data) {
    FileFollower f(path, on_data);
    return f.run(tail);
}

std::vector<std::string> control_names(const std::string& dir) {
    std::vector<std::string> out;
    const std::string d = dir.empty() ? default_control_dir() : dir;
    auto names = core::sys::file::list_dir(d);
    if (!names) return out;
    const std::string suffix = ".sock";
    for (const auto& n : *names) {
        if (n.size() <= suffix.size() ||
            n.compare(n.size() - suffix.size(), suffix.size(), suffix) != 0)
            continue;
        auto kind = us::path_kind(d + "/" + n);
        if (kind && *kind == us::PathKind::socket)
            out.push_back(n.substr(0, n.size() - suffix.size()));
    }
    std::sort(out.begin(), out.end());
    return out;
}

ControlClient ControlClient::unix_socket(std::string path) {
    ControlClient c;
    c.path_ = std::move(path);
    return c;
}

ControlClient ControlClient::tcp(std::string host, unsigned port, std::string token) {
    ControlClient c;
    c.host_ = std::move(host);
    c.port_ = port;
    c.token_ = std::move(token);
    return c;
}

namespace {

struct Connected {
    asio::io_context io{1};
    Protocol::socket sock{io};
};

Result<void> open(Connected& c, const std::string& path, const std::string& host, unsigned port) {
    auto fd = path.empty() ? us::tcp_connect(host, port) : us::connect(path);
    if (!fd) return fail(fd.error());
    boost::system::error_code ec;
    const Protocol proto =
        path.empty() ? Protocol(asio::ip::tcp::v4()) : Protocol(asio::local::stream_protocol());
    c.sock.assign(proto, fd->get(), ec);
    if (ec) return fail(Error("control", "assign: " + ec.message()));
    (void)fd->release();  // owned by the socket now
    return {};
}

Error io_error(const char* what, const boost::system::error_code& ec) {
    return Error("control", std::string(what) + ": " + ec.message(), EIO);
}

}  // namespace

Result<ControlResponse> ControlClient::request(
    const std::string& method, const std::string& target, const std::string& body,
    const std::vector<std::pair<std::string, std::string>>& headers) const {
    Connected c;
    if (auto ok = open(c, path_, host_, port_); !ok) return fail(ok.error());
    http::request<http::string_body> req;
    req.method_string(method);
    req.target(target);
    req.version(11);
    bool has_host = false;
    for (const auto& [k, v] : headers) {
        if (beast::iequals(k, "host")) has_host = true;
        req.set(k, v);
    }
    if (!has_host)
        req.set(http::field::host,
                path_.empty() ? host_ + ":" + std::to_string(port_) : "localhost");
    if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
    req.set(http::field::connection, "close");
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    boost::system::error_code ec;
    http::write(c.sock, req, ec);
    if (ec) return fail(io_error("write", ec));
    beast::flat_buffer buf;
    http::response_parser<http::string_body> p;
    p.body_limit(std::uint64_t{256} << 20);
    http::read(c.sock, buf, p, ec);
    if (ec) return fail(io_error("read", ec));
    auto& res = p.get();
    ControlResponse out;
    out.status = static_cast<int>(res.result_int());
    out.content_type = std::string(res[http::field::content_type]);
    out.body = std::move(res.body());
    return out;
}

Result<ControlResponse> ControlClient::stream(
    const std::string& target, const std::function<bool(std::string_view)>& on_data) const {
    Connected c;
    if (auto ok = open(c, path_, host_, port_); !ok) return fail(ok.error());
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, path_.empty() ? host_ + ":" + std::to_string(port_) : "localhost");
    if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
    req.set(http::field::connection, "close");
    boost::system::error_code ec;
    http::write(c.sock, req, ec);
    if (ec) return fail(io_error("write", ec));
    beast::flat_buffer buf;
    http::response_parser<http::buffer_body> p;
    p.body_limit(boost::none);
    http::read_header(c.sock, buf, p, ec);
    if (ec) return fail(io_error("read", ec));
    ControlResponse out;
    out.status = static_cast<int>(p.get().result_int());
    out.content_type = std::string(p.get()[http::field::content_type]);
    const bool good = out.status >= 200 && out.status < 300;
    char tmp[8192];
    while (!p.is_done()) {
        p.get().body().data = tmp;
        p.get().body().size = sizeof tmp;
        // read_some: hand over what has arrived (read() would wait to fill tmp).
        http::read_some(c.sock, buf, p, ec);
        if (ec == http::error::need_buffer) ec = {};
        if (ec) {
            if (ec == http::error::end_of_stream || ec == asio::error::eof) break;
            return fail(io_error("read", ec));
        }
        const std::size_t n = sizeof tmp - p.get().body().size;
        if (n == 0) continue;
        if (!good) {
            if (out.body.size() < (std::size_t{1} << 20)) out.body.append(tmp, n);
        } else if (!on_data(std::string_view(tmp, n))) {
            break;
        }
    }
    return out;
}

Result<void> ControlClient::events(const std::function<bool(std::string_view)>& on_message) const {
    Connected c;
    if (auto ok = open(c, path_, host_, port_); !ok) return fail(ok.error());
    websocket::stream<Protocol::socket&> ws(c.sock);
    const std::string token = token_;
    ws.set_option(websocket::stream_base::decorator([token](websocket::request_type& req) {
        if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    }));
    websocket::response_type res;
    boost::system::error_code ec;
    ws.handshake(res, path_.empty() ? host_ + ":" + std::to_string(port_) : "localhost", "/events",
                 ec);
    if (ec) {
        const int status = static_cast<int>(res.result_int());
        return fail(Error(
            "control",
            "GET /events: " + (status ? std::to_string(status) + " " + res.body() : ec.message())));
    }
    beast::flat_buffer buf;
    for (;;) {
        ws.read(buf, ec);
        if (ec == websocket::error::closed) return {};
        if (ec == asio::error::eof || ec == asio::error::connection_reset)
            return fail(Error("control", "events: the supervisor closed the connection", EPIPE));
        if (ec) return fail(io_error("read", ec));
        const std::string msg = beast::buffers_to_string(buf.data());
        buf.consume(buf.size());
        if (!on_message(msg)) break;
    }
    ws.close(websocket::close_code::normal, ec);
    return {};
}

}  // namespace core::process
