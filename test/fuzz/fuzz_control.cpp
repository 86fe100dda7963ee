// libFuzzer target: the control plane's request parsing. The input is an HTTP request as a
// client would send it; Beast's request parser (the server's, with its limits) reads it, then
// the target parser, the route classifier and every JSON body parser (ours and go-process's)
// get the target and the body. Any input must give a value or an Error, never a crash, a hang, a
// sanitizer report or an exception escaping.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "control/api.hpp"
#include "control/goapi.hpp"

namespace http = boost::beast::http;
namespace ctl = core::control;

namespace {

void bodies(std::string_view body) {
    if (auto spec = ctl::parse_daemon_body(body); spec) {
        if (!core::process::validate(*spec)) std::abort();  // accepted specs are valid ones
    }
    if (auto sig = ctl::parse_signal_body(body); sig && (*sig < 1 || *sig > 64)) std::abort();
    (void)ctl::parse_input_body(body);
    // go-process's bodies (goapi.hpp).
    if (auto o = ctl::parse_go_run_body(body, true); o && o->command.empty()) std::abort();
    if (auto k = ctl::parse_go_kill_body(body); k && k->id.empty() && k->pid <= 0) std::abort();
    if (auto p = ctl::parse_go_pipeline_body(body); p && p->specs.size() > 1000) std::abort();
    if (auto sig = ctl::parse_go_signal_body(body); sig && (*sig < 1 || *sig > 64)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    // The raw input as a body and as a target, too: both reach the parsers unfiltered.
    bodies(text);
    if (auto t = ctl::parse_target(text); t) {
        ctl::Request r;
        r.method = "GET";
        r.target = std::move(*t);
        (void)ctl::classify(r);
        (void)ctl::parse_tail(r.target.query, 10);
    }

    http::request_parser<http::string_body> p;
    p.header_limit(16 * 1024);
    p.body_limit(1 << 20);
    p.eager(true);
    boost::beast::error_code ec;
    p.put(boost::asio::buffer(data, size), ec);
    if (ec || !p.is_done()) return 0;
    const auto& req = p.get();
    auto t = ctl::parse_target(std::string_view(req.target().data(), req.target().size()));
    if (!t) return 0;
    ctl::Request r;
    r.method = std::string(req.method_string());
    r.target = std::move(*t);
    r.body = req.body();
    (void)ctl::classify(r);
    bodies(r.body);
    return 0;
}
