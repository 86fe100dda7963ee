// The web dashboard: one HTML page with its script and style inline (no build step, no CDN, no
// request to anywhere but the page's own origin). The page holds no data and no secret, so it
// is served without the token; it asks for the token, keeps it in sessionStorage and sends it
// as `Authorization: Bearer …` on every API call and, for the WebSocket (which a browser cannot
// give headers), as the subprotocol "coreproc.auth.<token in hex>" beside "coreproc.v1". It
// renders daemon names, errors and log lines with textContent only.
#pragma once

#include <string>
#include <string_view>

#include "control/api.hpp"

namespace core::control {

// GET / and GET /dashboard (a trailing slash allowed).
bool is_dashboard(const Request& r);
// The page, its inline <script> and <style> carrying nonce (the CSP's only allowance).
std::string dashboard_html(std::string_view nonce);
// The Content-Security-Policy the page is served with: scripts and styles only with nonce,
// fetch and WebSocket only to its own origin, no images, frames, forms or plugins.
std::string dashboard_csp(std::string_view nonce);

// The WebSocket subprotocols the page offers.
inline constexpr std::string_view kWsProtocol = "coreproc.v1";
inline constexpr std::string_view kWsAuthPrefix = "coreproc.auth.";
// The token from a Sec-WebSocket-Protocol header's "coreproc.auth.<hex>" entry; empty when
// there is none or its hex is malformed.
std::string ws_protocol_token(std::string_view header);
// Whether the header offers "coreproc.v1" (the reply must then name it).
bool ws_offers_protocol(std::string_view header);

}  // namespace core::control
