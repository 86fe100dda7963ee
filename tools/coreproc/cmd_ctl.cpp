// coreproc ctl: a running `coreproc supervise`'s control socket, from another shell.
//   coreproc ctl [--name N | --socket PATH] [--json] status | start NAME | stop NAME |
//       restart NAME | add FILE | remove NAME | reload | logs NAME [-f] [-n N] [--stderr] | events
// `logs -f` follows the daemon's log file across rotation (as `tail -F`) when it has one, else
// the supervisor's stream of its output.
// Exit codes: 0 ok, 1 the supervisor said no (its message on stderr), 2 usage, 3 no supervisor.
#include <cerrno>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "core/process/control.hpp"

namespace coreproc {

namespace cp = core::process;
using nlohmann::json;

namespace {

constexpr int kExitNoSupervisor = 3;

struct Target {
    std::string path;
    int code = kExitOk;  // non-zero: give up with this code (message printed)
};

Target find_socket(const CtlArgs& a) {
    if (!a.socket.empty()) return {a.socket};
    if (!a.name.empty()) return {cp::control_socket_path(a.name)};
    const auto names = cp::control_names();
    if (names.empty()) {
        std::cerr << "coreproc ctl: no supervisor found in " << cp::default_control_dir()
                  << " (start one with `coreproc supervise FILE`, or give --socket)\n";
        return {"", kExitNoSupervisor};
    }
    if (names.size() > 1) {
        std::cerr << "coreproc ctl: several supervisors are running; choose one with --name:";
        for (const auto& n : names) std::cerr << " " << n;
        std::cerr << "\n";
        return {"", kExitUsage};
    }
    return {cp::control_socket_path(names.front())};
}

// The supervisor's {"error": …} message, or the body itself.
std::string error_text(const cp::ControlResponse& r) {
    json j = json::parse(r.body, nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_string())
        return j["error"].get<std::string>();
    if (j.is_object() && j.contains("Error") && j["Error"].is_string())
        return j["Error"].get<std::string>();
    return r.body.empty() ? "HTTP " + std::to_string(r.status) : r.body;
}

int connect_error(const std::string& path, const core::Error& e) {
    const int c = e.code();
    std::cerr << "coreproc ctl: " << path << ": " << e.what() << "\n";
    return (c == ENOENT || c == ECONNREFUSED || c == ENOTDIR) ? kExitNoSupervisor : kExitFailed;
}

std::string str(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end()) return "";
    if (it->is_string()) return it->get<std::string>();
    return it->dump();
}

void print_daemons(const json& arr) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& d : arr) {
        std::string last =
            d.value("exited", false)
                ? (d.value("last_signal", 0) ? cp::signal_name(d.value("last_signal", 0))
                                             : std::to_string(d.value("last_exit_code", 0)))
                : "-";
        rows.push_back({str(d, "name"), str(d, "state"),
                        d.value("pid", 0) ? std::to_string(d.value("pid", 0)) : "-",
                        std::to_string(d.value("restarts", 0u)), last, str(d, "since"),
                        // A notify daemon's STATUS= (issue 15) where no error is to show.
                        str(d, "last_error").empty() && !str(d, "status_text").empty()
                            ? "status: " + str(d, "status_text")
                            : str(d, "last_error")});
    }
    print_table(std::cout, {"NAME", "STATE", "PID", "RESTARTS", "LAST EXIT", "SINCE", "LAST ERROR"},
                rows);
}

int usage(const std::string& msg) {
    std::cerr << "coreproc ctl: " << msg << "\n(run `coreproc ctl --help` for usage)\n";
    return kExitUsage;
}

// One request; prints per `print` on success. Returns the exit code.
int call(const Globals& g, const std::string& path, const std::string& method,
         const std::string& target, const std::string& body,
         const std::function<void(const json&)>& print) {
    auto client = cp::ControlClient::unix_socket(path);
    auto r = client.request(method, target, body);
    if (!r) return connect_error(path, r.error());
    if (r->status >= 300) {
        std::cerr << "coreproc ctl: " << error_text(*r) << "\n";
        return kExitFailed;
    }
    if (g.json) {
        std::cout << r->body << (r->body.empty() || r->body.back() != '\n' ? "\n" : "");
        return kExitOk;
    }
    json j = json::parse(r->body, nullptr, false);
    print(j);
    return kExitOk;
}

int add_file(const Globals& g, const std::string& path, const std::string& file) {
    std::ifstream in(file);
    if (!in) {
        std::cerr << "coreproc ctl: add: cannot read " << file << "\n";
        return kExitUsage;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    json j = json::parse(ss.str(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        std::cerr << "coreproc ctl: add: " << file << ": not a JSON object\n";
        return kExitUsage;
    }
    std::vector<json> daemons;
    if (j.contains("daemons")) {
        if (!j["daemons"].is_array()) {
            std::cerr << "coreproc ctl: add: " << file << ": key \"daemons\": want an array\n";
            return kExitUsage;
        }
        for (const auto& d : j["daemons"]) daemons.push_back(d);
    } else {
        daemons.push_back(j);
    }
    int code = kExitOk;
    for (const auto& d : daemons) {
        const int c = call(g, path, "POST", "/daemons", dump(d, -1), [](const json& r) {
            std::cout << "added " << str(r, "name") << ": " << str(r, "state");
            if (r.value("pid", 0)) std::cout << " (pid " << r.value("pid", 0) << ")";
            std::cout << "\n";
        });
        if (c == kExitNoSupervisor) return c;
        if (c != kExitOk) code = c;
    }
    return code;
}

int logs(const std::string& path, const CtlArgs& a, const std::string& name) {
    std::string target = "/daemons/" + name + "/logs?tail=" + std::to_string(a.lines);
    if (a.err) target += "&stream=stderr";
    auto client = cp::ControlClient::unix_socket(path);
    if (!a.follow) {
        auto r = client.request("GET", target);
        if (!r) return connect_error(path, r.error());
        if (r->status >= 300) {
            std::cerr << "coreproc ctl: " << error_text(*r) << "\n";
            return kExitFailed;
        }
        std::cout << r->body << std::flush;
        return kExitOk;
    }
    const std::function<bool(std::string_view)> print = [&](std::string_view piece) {
        std::cout << piece << std::flush;
        return static_cast<bool>(std::cout);
    };
    // With a log file, follow the file itself, as `tail -F` does: it survives rotation with no
    // line lost or repeated, and shows what the writer really wrote (timestamps included). The
    // supervisor says where it is; without one (or for --stderr of merged files) the
    // supervisor's own stream of the daemon's output is followed.
    auto d = client.request("GET", "/daemons/" + name);
    if (!d) return connect_error(path, d.error());
    if (d->status >= 300) {
        std::cerr << "coreproc ctl: " << error_text(*d) << "\n";
        return kExitFailed;
    }
    const json dj = json::parse(d->body, nullptr, false);
    const std::string file = str(dj, a.err ? "err_log_path" : "log_path");
    if (!file.empty()) {
        auto f = cp::follow_log_file(file, a.lines, print);
        if (!f) {
            std::cerr << "coreproc ctl: " << f.error().what() << "\n";
            return kExitFailed;
        }
        return kExitOk;
    }
    auto st = client.stream(target + "&follow=1", print);
    if (!st) return connect_error(path, st.error());
    if (st->status >= 300) {
        std::cerr << "coreproc ctl: " << error_text(*st) << "\n";
        return kExitFailed;
    }
    return kExitOk;
}

int events(const Globals& g, const std::string& path) {
    auto client = cp::ControlClient::unix_socket(path);
    auto ok = client.events([&](std::string_view msg) {
        if (g.json) {
            std::cout << msg << "\n" << std::flush;
        } else {
            json m = json::parse(msg, nullptr, false);
            if (m.is_object()) {
                std::cout << str(m, "timestamp") << "  " << str(m, "channel") << "  "
                          << str(m, "processId") << "  "
                          << (m.contains("data") ? dump(m["data"], -1) : "") << "\n"
                          << std::flush;
            } else {
                std::cout << msg << "\n" << std::flush;
            }
        }
        return static_cast<bool>(std::cout);
    });
    if (!ok) return connect_error(path, ok.error());
    return kExitOk;
}

void print_state(const json& r) {
    std::cout << str(r, "name") << ": " << str(r, "state");
    if (r.value("pid", 0)) std::cout << " (pid " << r.value("pid", 0) << ")";
    std::cout << "\n";
}

}  // namespace

int cmd_ctl(const Globals& g, const CtlArgs& a) {
    const std::string& act = a.action;
    const auto& args = a.args;
    auto need = [&](std::size_t n) { return args.size() == n; };
    static const char* kActions =
        "status, start NAME, stop NAME, restart NAME, add FILE, remove NAME, reload, logs NAME, "
        "events";
    const bool known = act == "status" || act == "start" || act == "stop" || act == "restart" ||
                       act == "add" || act == "remove" || act == "reload" || act == "logs" ||
                       act == "events";
    if (!known) return usage("unknown action \"" + act + "\" (want one of: " + kActions + ")");
    const bool one = act == "start" || act == "stop" || act == "restart" || act == "add" ||
                     act == "remove" || act == "logs";
    if (one && !need(1)) return usage(act + " takes exactly one argument");
    if (!one && !need(0)) return usage(act + " takes no argument");
    if (!a.socket.empty() && !a.name.empty())
        return usage("--name and --socket exclude each other");

    const Target t = find_socket(a);
    if (t.code != kExitOk) return t.code;

    if (act == "status")
        return call(g, t.path, "GET", "/daemons", "", [](const json& j) { print_daemons(j); });
    if (act == "start" || act == "stop" || act == "restart")
        return call(g, t.path, "POST", "/daemons/" + args[0] + "/" + act, "", print_state);
    if (act == "remove")
        return call(g, t.path, "DELETE", "/daemons/" + args[0], "",
                    [&](const json&) { std::cout << "removed " << args[0] << "\n"; });
    if (act == "reload")
        return call(g, t.path, "POST", "/reload", "",
                    [](const json& j) { std::cout << "reloaded: " << dump(j, -1) << "\n"; });
    if (act == "add") return add_file(g, t.path, args[0]);
    if (act == "logs") return logs(t.path, a, args[0]);
    return events(g, t.path);
}

}  // namespace coreproc
