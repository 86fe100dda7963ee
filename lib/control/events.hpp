// The control plane's live events: bus Values as go-process WebSocket messages (its
// pkg/api/websocket.go hubMessage, {"type":"event","channel":…,"processId":…,"data":…,
// "timestamp":…}), for the /events WebSocket. No Boost here: built and tested without sockets.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/value.hpp"

namespace core::control {

// A bus Value as its messages. Process events keep go-process's channels
// (process.started/output/exited/killed) and payloads (provider.go's forwardProcessEvent); a
// daemon state change gives our "daemon.state" message (the dashboard's and `ctl events`') and,
// where go-process has one, its own: process.daemon.started (now running), .stopped (its
// process gone: stopped, failed, backoff, or restarting), .health (now healthy or unhealthy). code:
// the supervisor's name (a go-process daemon's "code"). Empty for any other Value.
std::vector<std::string> event_messages(const core::Value& v, const std::string& code);

// The first of event_messages(v, ""); nullopt for a Value that is none of DaemonStateChanged,
// ProcessStarted, ProcessOutput, ProcessExited, ProcessKilled.
std::optional<std::string> event_message(const core::Value& v);

}  // namespace core::control
