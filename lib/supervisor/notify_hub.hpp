// The readiness protocol's receiving side (issue 15 §2): one datagram socket per daemon with
// "notify": true, at an abstract address nobody else is told (NOTIFY_SOCKET in the daemon's
// environment), and one thread that reads them all (an epoll set and an eventfd to wake it)
// and hands each datagram, with the sender's pid from SCM_CREDENTIALS, to a callback. Which
// sender is trusted and what a message means is the Supervisor's business (parse_notify and
// the supervisor thread): the hub only reads, bounds and counts.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/result.hpp"
#include "sys/fd.hpp"
#include "sys/notify.hpp"
#include "sys/poll.hpp"

namespace core::process::detail {

// The protocol's limit: sd_notify datagrams are small; anything longer is dropped whole.
constexpr std::size_t kNotifyMax = 4096;

// One datagram's assignments, in order. A datagram is malformed (nullopt) when it is empty, is
// not valid text (a NUL byte), or has a line that is not KEY=VALUE with KEY of [A-Z0-9_]+.
struct NotifyField {
    std::string key, value;
};
std::optional<std::vector<NotifyField>> parse_notify(const std::string& text);

class NotifyHub {
  public:
    using Deliver = std::function<void(const std::string& daemon, sys::notify::Datagram d)>;
    static Result<std::unique_ptr<NotifyHub>> create(Deliver deliver);
    ~NotifyHub();
    NotifyHub(const NotifyHub&) = delete;
    NotifyHub& operator=(const NotifyHub&) = delete;

    // The daemon's socket (created on first use): its NOTIFY_SOCKET value ("@…").
    Result<std::string> open(const std::string& daemon);
    // Closes the daemon's socket, if any.
    void close(const std::string& daemon);

  private:
    explicit NotifyHub(Deliver deliver) : deliver_(std::move(deliver)) {}
    void loop();

    struct Sock {
        std::string daemon;
        std::string address;
        sys::UniqueFd fd;
    };
    Deliver deliver_;
    std::mutex mu_;
    std::map<std::uint64_t, std::shared_ptr<Sock>> socks_;  // by epoll key (from 1)
    std::map<std::string, std::uint64_t> by_name_;
    std::uint64_t next_key_ = 1;
    std::string prefix_;  // "@coreproc-notify-<pid>-<random>-"
    bool quit_ = false;
    std::optional<sys::Epoll> epoll_;
    std::optional<sys::EventFd> wake_;
    std::thread thread_;
};

}  // namespace core::process::detail
