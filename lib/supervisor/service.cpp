// The "daemon" service: the Supervisor behind the daemon.* actions.
#include <cmath>

#include "core/process/supervisor.hpp"
#include "process/option_keys.hpp"

namespace core::process {

namespace {

std::chrono::milliseconds to_ms(std::chrono::nanoseconds d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d);
}

std::string type_error(const std::string& key, const char* want, const Value& v) {
    return "option \"" + key + "\": want " + want + ", got " + v.type_name();
}

// A number held as any arithmetic type.
Result<double> want_number(const std::string& op, const Options& o, const std::string& key,
                           double fallback) {
    auto v = o.get(key);
    if (!v) return fallback;
    if (const auto* d = v->get<double>()) return *d;
    if (const auto* f = v->get<float>()) return static_cast<double>(*f);
    std::int64_t i = 0;
    if (value_to_integer(*v, i)) return static_cast<double>(i);
    return fail(E(op, type_error(key, "number", *v)));
}

Result<unsigned> want_count(const std::string& op, const Options& o, const std::string& key,
                            unsigned fallback) {
    auto n = o.want_integer(op, key, fallback);
    if (!n) return fail(n.error());
    if (*n < 0 || *n > 1000000)
        return fail(
            E(op, "option \"" + key + "\": must be from 0 to 1000000, got " + std::to_string(*n)));
    return static_cast<unsigned>(*n);
}

Result<std::chrono::milliseconds> want_ms(const std::string& op, const Options& o,
                                          const std::string& key,
                                          std::chrono::milliseconds fallback) {
    auto d = o.want_duration(op, key, fallback);
    if (!d) return fail(d.error());
    return to_ms(*d);
}

Result<std::string> want_name(const std::string& op, const Options& o) {
    auto name = o.want_string(op, "name");
    if (!name) return fail(name.error());
    if (name->empty()) return fail(E(op, "option \"name\": missing or empty"));
    return *name;
}

Result<void> only_keys(const std::string& op, const Options& o,
                       std::initializer_list<const char*> known) {
    for (const auto& [key, value] : o.entries()) {
        bool ok = false;
        for (const char* k : known) ok = ok || key == k;
        if (!ok) return fail(E(op, "option \"" + key + "\": unknown option"));
    }
    return {};
}

using Key = detail::OptionKey<DaemonSpec>;
using Out = DaemonSpec;
using In = Options;

Result<void> read_ms(const std::string& op, const In& o, const char* key,
                     std::chrono::milliseconds& dst) {
    auto d = want_ms(op, o, key, dst);
    if (!d) return fail(d.error());
    dst = *d;
    return {};
}
Result<void> read_number(const std::string& op, const In& o, const char* key, double& dst) {
    auto n = want_number(op, o, key, dst);
    if (!n) return fail(n.error());
    dst = *n;
    return {};
}
Result<void> read_count(const std::string& op, const In& o, const char* key, unsigned& dst) {
    auto n = want_count(op, o, key, dst);
    if (!n) return fail(n.error());
    dst = *n;
    return {};
}
Result<void> read_strings(const std::string& op, const In& o, const char* key,
                          std::vector<std::string>& dst) {
    auto list = o.want_strings(op, key);
    if (!list) return fail(list.error());
    dst = *list;
    return {};
}
Result<void> read_string(const std::string& op, const In& o, const char* key, std::string& dst) {
    auto str = o.want_string(op, key, dst);
    if (!str) return fail(str.error());
    dst = *str;
    return {};
}

// The daemon.start keys (a spec given key by key), in reading order: the unknown-option check
// and the reading both come from this one table.
constexpr Key kDaemonKeys[] = {
    {"name", "string",
     [](const std::string& op, const In& o, Out& s) -> Result<void> {
         auto name = want_name(op, o);
         if (!name) return fail(name.error());
         s.name = *name;
         return {};
     }},
    {"command", "string",
     [](const std::string& op, const In& o, Out& s) -> Result<void> {
         auto command = o.want_string(op, "command");
         if (!command) return fail(command.error());
         s.command = *command;
         if (s.command.empty()) return fail(E(op, "option \"command\": missing or empty"));
         return {};
     }},
    {"args", "strings",
     [](const std::string& op, const In& o, Out& s) {
         return read_strings(op, o, "args", s.args);
     }},
    {"dir", "string",
     [](const std::string& op, const In& o, Out& s) { return read_string(op, o, "dir", s.dir); }},
    {"env", "strings",
     [](const std::string& op, const In& o, Out& s) { return read_strings(op, o, "env", s.env); }},
    {"env_mode", "\"merge\" or \"replace\"",
     [](const std::string& op, const In& o, Out& s) -> Result<void> {
         if (!o.has("env_mode")) return {};
         auto mode = o.want_string(op, "env_mode");
         if (!mode) return fail(mode.error());
         auto m = parse_env_mode(*mode);
         if (!m) return fail(Error(op, "option \"env_mode\": " + m.error().message(), EINVAL));
         s.env_mode = *m;
         return {};
     }},
    {"unset_env", "strings",
     [](const std::string& op, const In& o, Out& s) {
         return read_strings(op, o, "unset_env", s.unset_env);
     }},
    {"pid_file", "string",
     [](const std::string& op, const In& o, Out& s) {
         return read_string(op, o, "pid_file", s.pid_file);
     }},
    {"pidfile", "string",
     [](const std::string& op, const In& o, Out& s) {
         return read_string(op, o, "pidfile", s.pid_file);
     }},
    {"restart", "\"no\", \"on-failure\" or \"always\"",
     [](const std::string& op, const In& o, Out& s) -> Result<void> {
         if (!o.has("restart")) return {};
         auto str = o.want_string(op, "restart");
         if (!str) return fail(str.error());
         auto p = parse_restart_policy(*str);
         if (!p) return fail(E(op, "option \"restart\": " + p.error().message()));
         s.restart = *p;
         return {};
     }},
    {"backoff_initial", "duration",
     [](const std::string& op, const In& o, Out& s) {
         return read_ms(op, o, "backoff_initial", s.backoff.initial);
     }},
    {"backoff_factor", "number",
     [](const std::string& op, const In& o, Out& s) {
         return read_number(op, o, "backoff_factor", s.backoff.factor);
     }},
    {"backoff_max", "duration",
     [](const std::string& op, const In& o, Out& s) {
         return read_ms(op, o, "backoff_max", s.backoff.max);
     }},
    {"backoff_jitter", "number",
     [](const std::string& op, const In& o, Out& s) {
         return read_number(op, o, "backoff_jitter", s.backoff.jitter);
     }},
    {"reset_after", "duration",
     [](const std::string& op, const In& o, Out& s) {
         return read_ms(op, o, "reset_after", s.reset_after);
     }},
    {"start_limit_burst", "count",
     [](const std::string& op, const In& o, Out& s) {
         return read_count(op, o, "start_limit_burst", s.start_limit.burst);
     }},
    {"start_limit_interval", "duration",
     [](const std::string& op, const In& o, Out& s) {
         return read_ms(op, o, "start_limit_interval", s.start_limit.interval);
     }},
    {"health_url", "string",
     [](const std::string& op, const In& o, Out& s) {
         return read_string(op, o, "health_url", s.health.url);
     }},
    {"health_command", "strings",
     [](const std::string& op, const In& o, Out& s) {
         return read_strings(op, o, "health_command", s.health.command);
     }},
    {"health_interval", "duration",
     [](const std::string& op, const In& o, Out& s) {
         return read_ms(op, o, "health_interval", s.health.interval);
     }},
    {"health_timeout", "duration",
     [](const std::string& op, const In& o, Out& s) {
         return read_ms(op, o, "health_timeout", s.health.timeout);
     }},
    {"health_failures", "count",
     [](const std::string& op, const In& o, Out& s) {
         return read_count(op, o, "health_failures", s.health.failures);
     }},
    {"health_start_grace", "duration",
     [](const std::string& op, const In& o, Out& s) {
         return read_ms(op, o, "health_start_grace", s.health.start_grace);
     }},
    {"stop_signal", "signal name or number",
     [](const std::string& op, const In& o, Out& s) -> Result<void> {
         auto v = o.get("stop_signal");
         if (!v) return {};
         std::string text;
         std::int64_t n = 0;
         if (const auto* str = v->get<std::string>())
             text = *str;
         else if (value_to_integer(*v, n))
             text = std::to_string(n);
         else
             return fail(E(op, type_error("stop_signal", "signal name or number", *v)));
         auto sig = parse_signal(text);
         if (!sig) return fail(E(op, "option \"stop_signal\": " + sig.error().message()));
         s.stop_signal = *sig;
         return {};
     }},
    {"stop_timeout", "duration",
     [](const std::string& op, const In& o, Out& s) {
         return read_ms(op, o, "stop_timeout", s.stop_timeout);
     }},
    {"after", "strings",
     [](const std::string& op, const In& o, Out& s) {
         return read_strings(op, o, "after", s.after);
     }},
    {"requires", "strings",
     [](const std::string& op, const In& o, Out& s) {
         return read_strings(op, o, "requires", s.requires_);
     }},
    {"notify", "boolean",
     [](const std::string& op, const In& o, Out& s) -> Result<void> {
         auto notify = o.want_boolean(op, "notify", false);
         if (!notify) return fail(notify.error());
         s.notify = *notify;
         return {};
     }},
    {"watchdog", "duration",
     [](const std::string& op, const In& o, Out& s) {
         return read_ms(op, o, "watchdog", s.watchdog);
     }},
    {"start_timeout", "duration",
     [](const std::string& op, const In& o, Out& s) {
         return read_ms(op, o, "start_timeout", s.start_timeout);
     }},
};

std::span<const Key> daemon_keys() noexcept {
    return kDaemonKeys;
}

}  // namespace

Result<DaemonSpec> SupervisorService::parse_options(const std::string& op, const Options& o) {
    if (auto v = o.get("spec")) {
        if (auto r = only_keys(op, o, {"spec", "name"}); !r) return fail(r.error());
        const auto* spec = v->get<DaemonSpec>();
        if (!spec) return fail(E(op, type_error("spec", "DaemonSpec", *v)));
        DaemonSpec out = *spec;
        if (o.has("name")) {
            auto name = want_name(op, o);
            if (!name) return fail(name.error());
            out.name = *name;
        }
        return out;
    }
    if (auto r = detail::refuse_unknown_options<DaemonSpec>(op, o, daemon_keys()); !r)
        return fail(r.error());
    DaemonSpec s;
    if (auto r = detail::read_options<DaemonSpec>(op, o, daemon_keys(), s); !r)
        return fail(r.error());
    if (auto r = validate(s); !r) return fail(E(op, "invalid spec", r.error()));
    return s;
}

SupervisorService::SupervisorService(core::Core& core, SupervisorOptions opts,
                                     std::vector<DaemonSpec> specs)
    : core::Service(core, "daemon"), opts_(std::move(opts)), specs_(std::move(specs)) {}

SupervisorService::~SupervisorService() {
    std::shared_ptr<Supervisor> sup;
    {
        std::lock_guard lk(mu_);
        sup = std::move(sup_);
    }
    // The Supervisor's destructor stops whatever is still running.
}

std::shared_ptr<Supervisor> SupervisorService::supervisor() const {
    std::lock_guard lk(mu_);
    return sup_;
}

Result<void> SupervisorService::on_startup(const Context&) {
    const std::string op = "daemon.startup";
    auto proc = core().service<process::Service>("process");
    if (!proc)
        return fail(E(op,
                      "the process service is not registered: register it before the daemon "
                      "service (Core::create({process::register_service, "
                      "process::register_daemon_service}))"));
    auto sup = std::make_shared<Supervisor>(core(), *proc, opts_);
    for (const auto& spec : specs_)
        if (auto r = sup->add(spec); !r)
            return fail(E(op, "daemon \"" + spec.name + "\"", r.error()));
    {
        std::lock_guard lk(mu_);
        sup_ = sup;
    }

    // Each handler takes its own reference, so a shutdown racing an action is safe.
    auto need = [this](const std::string& name) -> Result<std::shared_ptr<Supervisor>> {
        auto s = supervisor();
        if (!s) return fail(E(name, "the daemon service is not running"));
        return s;
    };
    auto by_name = [need](const std::string& act, const Options& o,
                          Result<void> (Supervisor::*fn)(const std::string&)) -> Result<Value> {
        auto s = need(act);
        if (!s) return fail(s.error());
        if (auto r = only_keys(act, o, {"name"}); !r) return fail(r.error());
        auto name = want_name(act, o);
        if (!name) return fail(name.error());
        if (fn)
            if (auto r = ((**s).*fn)(*name); !r) return fail(E(act, *name, r.error()));
        auto st = (*s)->get(*name);
        if (!st) return fail(E(act, *name, st.error()));
        return Value(*st);
    };

    Result<void> reg;
    auto add_action = [&](const std::string& name, ActionHandler h) {
        if (reg) reg = core().action(name, std::move(h));
    };
    add_action("daemon.start", [need, by_name](const Context&, const Options& o) -> Result<Value> {
        const std::string act = "daemon.start";
        if (!o.has("command") && !o.has("spec")) return by_name(act, o, &Supervisor::start);
        auto s = need(act);
        if (!s) return fail(s.error());
        auto spec = parse_options(act, o);
        if (!spec) return fail(spec.error());
        const std::string name = spec->name;
        if (auto r = (*s)->add(std::move(*spec)); !r) return fail(E(act, name, r.error()));
        if (auto r = (*s)->start(name); !r) return fail(E(act, name, r.error()));
        auto st = (*s)->get(name);
        if (!st) return fail(E(act, name, st.error()));
        return Value(*st);
    });
    add_action("daemon.stop", [by_name](const Context&, const Options& o) {
        return by_name("daemon.stop", o, &Supervisor::stop);
    });
    add_action("daemon.restart", [by_name](const Context&, const Options& o) {
        return by_name("daemon.restart", o, &Supervisor::restart);
    });
    add_action("daemon.get", [by_name](const Context&, const Options& o) {
        return by_name("daemon.get", o, nullptr);
    });
    add_action("daemon.list", [need](const Context&, const Options& o) -> Result<Value> {
        const std::string act = "daemon.list";
        auto s = need(act);
        if (!s) return fail(s.error());
        if (auto r = only_keys(act, o, {"status"}); !r) return fail(r.error());
        auto status = o.want_boolean(act, "status", false);
        if (!status) return fail(status.error());
        if (*status) return Value((*s)->list());
        return Value((*s)->names());
    });
    if (!reg) return fail(E(op, "registering actions", reg.error()));
    return {};
}

Result<void> SupervisorService::on_shutdown(const Context&) {
    std::shared_ptr<Supervisor> sup;
    {
        std::lock_guard lk(mu_);
        sup = std::move(sup_);
    }
    if (!sup) return {};
    auto r = sup->stop_all();
    sup.reset();  // joins the supervisor's threads (an action holding a copy delays this)
    if (!r) return fail(E("daemon.shutdown", "stopping daemons", r.error()));
    return {};
}

Result<std::shared_ptr<core::Service>> register_daemon_service(core::Core& core) {
    return std::shared_ptr<core::Service>(std::make_shared<SupervisorService>(core));
}

ServiceFactory daemon_service_factory(SupervisorOptions opts, std::vector<DaemonSpec> specs) {
    return [opts = std::move(opts),
            specs = std::move(specs)](core::Core& core) -> Result<std::shared_ptr<core::Service>> {
        return std::shared_ptr<core::Service>(
            std::make_shared<SupervisorService>(core, opts, specs));
    };
}

}  // namespace core::process
