#include "supervisor/notify_hub.hpp"

#include <cstdio>
#include <random>

#include "core/process/supervisor.hpp"
#include "sys/file.hpp"

namespace core::process::detail {

std::optional<std::vector<NotifyField>> parse_notify(const std::string& text) {
    if (text.empty() || text.find('\0') != std::string::npos) return std::nullopt;
    std::vector<NotifyField> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto nl = text.find('\n', pos);
        if (nl == std::string::npos) nl = text.size();
        const std::string line = text.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.empty()) continue;  // sd_notify allows a trailing newline
        const auto eq = line.find('=');
        if (eq == std::string::npos || eq == 0) return std::nullopt;
        for (std::size_t i = 0; i < eq; ++i) {
            const char c = line[i];
            if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
                return std::nullopt;
        }
        out.push_back({line.substr(0, eq), line.substr(eq + 1)});
    }
    if (out.empty()) return std::nullopt;
    return out;
}

Result<std::unique_ptr<NotifyHub>> NotifyHub::create(Deliver deliver) {
    std::unique_ptr<NotifyHub> hub(new NotifyHub(std::move(deliver)));
    auto ep = sys::Epoll::create();
    if (!ep) return fail(ep.error());
    auto wake = sys::EventFd::create();
    if (!wake) return fail(wake.error());
    if (auto r = ep->add(wake->fd(), sys::ev_in, 0); !r) return fail(r.error());
    hub->epoll_.emplace(std::move(*ep));
    hub->wake_.emplace(std::move(*wake));
    // Not guessable: a random part, so only the daemon (told through its environment) finds
    // it; the sender's pid is checked anyway (abstract names are listed in /proc/net/unix).
    std::random_device rd;
    const std::uint64_t r = (std::uint64_t{rd()} << 32) ^ rd();
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(r));
    hub->prefix_ = "@coreproc-notify-" + std::to_string(sys::file::self_pid()) + "-" + hex + "-";
    auto* self = hub.get();
    hub->thread_ = std::thread([self] { self->loop(); });
    return hub;
}

NotifyHub::~NotifyHub() {
    {
        std::lock_guard lk(mu_);
        quit_ = true;
    }
    wake_->signal();
    thread_.join();
}

Result<std::string> NotifyHub::open(const std::string& daemon) {
    std::lock_guard lk(mu_);
    if (auto it = by_name_.find(daemon); it != by_name_.end())
        return socks_.at(it->second)->address;
    const std::uint64_t key = next_key_++;
    auto sock = std::make_shared<Sock>();
    sock->daemon = daemon;
    sock->address = prefix_ + std::to_string(key);
    auto fd = sys::notify::bind(sock->address);
    if (!fd) return fail(fd.error());
    sock->fd = std::move(*fd);
    if (auto r = epoll_->add(sock->fd.get(), sys::ev_in, key); !r) return fail(r.error());
    socks_[key] = sock;
    by_name_[daemon] = key;
    return sock->address;
}

void NotifyHub::close(const std::string& daemon) {
    std::shared_ptr<Sock> gone;
    {
        std::lock_guard lk(mu_);
        auto it = by_name_.find(daemon);
        if (it == by_name_.end()) return;
        gone = socks_.at(it->second);
        (void)epoll_->remove(gone->fd.get());
        socks_.erase(it->second);
        by_name_.erase(it);
    }
    // The loop may still hold it for one read; the last owner closes the descriptor.
}

void NotifyHub::loop() {
    sys::PollEvent evs[16];
    for (;;) {
        auto n = epoll_->wait(evs, 16, -1);
        {
            std::lock_guard lk(mu_);
            if (quit_) return;
        }
        if (!n) return;  // the epoll set itself failed: nothing more can be read
        for (int i = 0; i < *n; ++i) {
            if (evs[i].data == 0) {
                wake_->drain();
                continue;
            }
            std::shared_ptr<Sock> sock;
            {
                std::lock_guard lk(mu_);
                auto it = socks_.find(evs[i].data);
                if (it == socks_.end()) continue;
                sock = it->second;
            }
            // A bounded batch per wake-up, so one chatty daemon cannot starve the others.
            for (int k = 0; k < 64; ++k) {
                auto d = sys::notify::receive(sock->fd.get(), kNotifyMax);
                if (!d || !*d) break;
                deliver_(sock->daemon, std::move(**d));
            }
        }
    }
}

}  // namespace core::process::detail

namespace core::process {

ManagerNotifier ManagerNotifier::from_environment() {
    auto socket = sys::notify::take_env("NOTIFY_SOCKET");
    auto usec = sys::notify::take_env("WATCHDOG_USEC");
    auto pid = sys::notify::take_env("WATCHDOG_PID");
    if (!socket || socket->empty()) return {};
    std::chrono::microseconds watchdog{0};
    bool mine = !pid || *pid == std::to_string(sys::file::self_pid());
    if (usec && mine) {
        try {
            watchdog = std::chrono::microseconds(std::stoll(*usec));
        } catch (...) {
        }
        if (watchdog.count() < 0) watchdog = {};
    }
    return ManagerNotifier(std::move(*socket), watchdog);
}

Result<void> ManagerNotifier::send(std::string_view text) const {
    if (!active()) return {};
    return sys::notify::send(socket_, text);
}

}  // namespace core::process
