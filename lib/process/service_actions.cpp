// The process service's actions (process.run, exec, start, kill, list, get) and the reader of
// their options (Service::parse_options).
#include <cerrno>
#include <chrono>

#include "process/containment.hpp"
#include "process/option_keys.hpp"
#include "process/service_impl.hpp"

namespace core::process {

Result<void> Service::on_startup(const Context&) {
    {
        std::lock_guard lk(impl_->mu);
        impl_->accepting = true;
    }
    auto& c = core();
    const std::pair<const char*, ActionHandler> actions[] = {
        {"process.run",
         [this](const Context& ctx, const Options& opts) -> Result<Value> {
             auto o = parse_options("process.run", opts, impl_->opts.lenient_options);
             if (!o) return fail(o.error());
             auto out = run(ctx, *o);
             if (!out) return fail(out.error());
             return Value(std::move(*out));
         }},
        {"process.exec",
         [this](const Context& ctx, const Options& opts) -> Result<Value> {
             auto o = parse_options("process.exec", opts, impl_->opts.lenient_options);
             if (!o) return fail(o.error());
             auto done = impl_->exec("process.exec", ctx, *o);
             if (!done) return fail(done.error());
             return Value(std::move(*done));
         }},
        {"process.start",
         [this](const Context& ctx, const Options& opts) -> Result<Value> {
             auto o = parse_options("process.start", opts, impl_->opts.lenient_options);
             if (!o) return fail(o.error());
             auto p = impl_->start("process.start", ctx, *o, false);
             if (!p) return fail(p.error());
             return Value((*p)->id());
         }},
        {"process.kill",
         [this](const Context&, const Options& opts) -> Result<Value> {
             const std::string op = "process.kill";
             auto id = opts.want_string(op, "id");
             if (!id) return fail(id.error());
             auto pid = opts.want_integer(op, "pid");
             if (!pid) return fail(pid.error());
             if (!id->empty()) {
                 if (auto k = kill(*id); !k) return fail(k.error());
                 return Value();
             }
             if (opts.has("pid")) {
                 if (*pid <= 0 || *pid > 0x3fffffff)
                     return fail(Error(
                         op, "option \"pid\": want a positive pid, got " + std::to_string(*pid),
                         EINVAL));
                 if (auto k = kill_pid(static_cast<int>(*pid)); !k) return fail(k.error());
                 return Value();
             }
             return fail(Error(op, "need option \"id\" or \"pid\"", EINVAL));
         }},
        {"process.list",
         [this](const Context&, const Options& opts) -> Result<Value> {
             auto running = opts.want_boolean("process.list", "runningOnly");
             if (!running) return fail(running.error());
             return Value(list(*running));
         }},
        {"process.get",
         [this](const Context&, const Options& opts) -> Result<Value> {
             auto id = opts.want_string("process.get", "id");
             if (!id) return fail(id.error());
             if (id->empty())
                 return fail(Error("process.get", "option \"id\" is required", EINVAL));
             auto p = get(*id);
             if (!p) return fail(p.error());
             return Value((*p)->info());
         }},
    };
    for (const auto& [name, fn] : actions) {
        if (auto r = c.action(name, fn); !r) return fail(E("process.startup", name, r.error()));
    }
    return {};
}

namespace {

Result<Stdio> parse_stdio(const std::string& op, const char* key, const Value& v) {
    const std::string where = std::string("option \"") + key + "\"";
    if (const auto* s = v.get<Stdio>()) return *s;
    if (const auto* s = v.get<std::string>()) {
        if (*s == "pipe") return Stdio::pipe();
        if (*s == "null") return Stdio::null();
        if (*s == "inherit") return Stdio::inherit();
        if (*s == "merge") return Stdio::merge();
        return fail(Error(op,
                          where + ": unknown stream target \"" + *s +
                              "\" (want pipe, null, inherit, merge or {\"file\": path})",
                          EINVAL));
    }
    if (const auto* o = v.get<Options>()) {
        for (const auto& [k, _] : o->entries())
            if (k != "file" && k != "append")
                return fail(
                    Error(op, where + ": unknown key \"" + k + "\" (known: file, append)", EINVAL));
        auto path = o->want_string(op, "file");
        if (!path) return fail(path.error());
        if (path->empty()) return fail(Error(op, where + ": \"file\" is required", EINVAL));
        auto append = o->want_boolean(op, "append");
        if (!append) return fail(append.error());
        return Stdio::file(*path, *append ? FileMode::append : FileMode::truncate);
    }
    return fail(Error(
        op, where + ": want string or {\"file\": path, \"append\": bool}, got " + v.type_name(),
        EINVAL));
}

}  // namespace

Result<RunOptions> Service::parse_options(const std::string& op, const Options& opts) {
    return parse_options(op, opts, false);
}

namespace {

using Key = detail::OptionKey<RunOptions>;

// Saturating: a duration near nanoseconds::max() stays huge ("never"), not negative.
std::chrono::milliseconds ceil_ms(std::chrono::nanoseconds d) {
    if (d >= std::chrono::nanoseconds::max() - std::chrono::milliseconds(1))
        return std::chrono::duration_cast<std::chrono::milliseconds>(d);
    return std::chrono::ceil<std::chrono::milliseconds>(d);
}

Result<void> read_command(const std::string& op, const Options& in, RunOptions& o) {
    auto command = in.want_string(op, "command");
    if (!command) return fail(command.error());
    if (command->empty()) return fail(Error(op, "option \"command\" is required", EINVAL));
    o.command = std::move(*command);
    return {};
}

Result<void> read_env_mode(const std::string& op, const Options& in, RunOptions& o) {
    auto env_mode = in.want_string(op, "envMode", "merge");
    if (!env_mode) return fail(env_mode.error());
    auto mode = parse_env_mode(*env_mode);
    if (!mode) return fail(Error(op, "option \"envMode\": " + mode.error().message(), EINVAL));
    o.env_mode = *mode;
    return {};
}

// disableCapture, keepStdin, input, stdin, stdout, stderr: go-process's three keys map onto the
// three Stdio choices, and each excludes the stream keys it would contradict.
Result<void> read_streams(const std::string& op, const Options& in, RunOptions& o) {
    auto no_capture = in.want_boolean(op, "disableCapture");
    if (!no_capture) return fail(no_capture.error());
    if (*no_capture) {
        // go-process's disableCapture: the child writes where we write.
        o.std_out = Stdio::inherit();
        o.std_err = Stdio::inherit();
    }
    auto keep = in.want_boolean(op, "keepStdin");
    if (!keep) return fail(keep.error());
    if (in.has("input")) {
        auto input = in.want_string(op, "input");
        if (!input) return fail(input.error());
        if (*keep)
            return fail(
                Error(op, "options \"input\" and \"keepStdin\" exclude each other", EINVAL));
        o.std_in = Stdio::bytes(std::move(*input));
    } else if (*keep) {
        o.std_in = Stdio::pipe();
    }
    for (const char* key : {"stdin", "stdout", "stderr"}) {
        auto v = in.get(key);
        if (!v) continue;
        const std::string k = key;
        if (k == "stdin" && (in.has("input") || *keep))
            return fail(Error(op,
                              std::string("option \"stdin\" excludes \"") +
                                  (in.has("input") ? "input" : "keepStdin") + "\"",
                              EINVAL));
        if (k != "stdin" && *no_capture)
            return fail(Error(op, "option \"" + k + "\" excludes \"disableCapture\"", EINVAL));
        auto st = parse_stdio(op, key, *v);
        if (!st) return fail(st.error());
        (k == "stdin" ? o.std_in : k == "stdout" ? o.std_out : o.std_err) = std::move(*st);
    }
    return {};
}

Result<void> read_max_output(const std::string& op, const Options& in, RunOptions& o) {
    auto max_output = in.want_integer(op, "maxOutput", static_cast<std::int64_t>(o.max_output));
    if (!max_output) return fail(max_output.error());
    if (*max_output < 0)
        return fail(Error(
            op, "option \"maxOutput\": must not be negative, got " + std::to_string(*max_output),
            EINVAL));
    o.max_output = static_cast<std::size_t>(*max_output);
    return {};
}

// The keys of process.run / exec / start, in the order they are read (the first Error wins).
// A new key is one line here: its name, its type in words, and its reader.
constexpr Key kRunKeys[] = {
    {"command", "string", read_command},
    {"args", "string list",
     [](const std::string& op, const Options& in, RunOptions& o) -> Result<void> {
         auto v = in.want_strings(op, "args");
         if (!v) return fail(v.error());
         o.args = std::move(*v);
         return {};
     }},
    {"dir", "string",
     [](const std::string& op, const Options& in, RunOptions& o) -> Result<void> {
         auto v = in.want_string(op, "dir");
         if (!v) return fail(v.error());
         o.dir = std::move(*v);
         return {};
     }},
    {"env", "string list (K=V)",
     [](const std::string& op, const Options& in, RunOptions& o) -> Result<void> {
         auto v = in.want_strings(op, "env");
         if (!v) return fail(v.error());
         o.env = std::move(*v);
         return {};
     }},
    {"envMode", "\"merge\" or \"replace\"", read_env_mode},
    {"unsetEnv", "string list",
     [](const std::string& op, const Options& in, RunOptions& o) -> Result<void> {
         auto v = in.want_strings(op, "unsetEnv");
         if (!v) return fail(v.error());
         o.unset_env = std::move(*v);
         return {};
     }},
    {"timeout", "duration",
     [](const std::string& op, const Options& in, RunOptions& o) -> Result<void> {
         auto v = in.want_duration(op, "timeout");
         if (!v) return fail(v.error());
         o.timeout = ceil_ms(*v);
         return {};
     }},
    {"gracePeriod", "duration",
     [](const std::string& op, const Options& in, RunOptions& o) -> Result<void> {
         auto v = in.want_duration(op, "gracePeriod", o.grace_period);
         if (!v) return fail(v.error());
         o.grace_period = ceil_ms(*v);
         return {};
     }},
    {"killGroup", "boolean",
     [](const std::string& op, const Options& in, RunOptions& o) -> Result<void> {
         auto v = in.want_boolean(op, "killGroup");
         if (!v) return fail(v.error());
         o.kill_group = *v;
         return {};
     }},
    // The stream keys, read together by read_streams.
    {"disableCapture", "boolean", read_streams},
    {"keepStdin", "boolean"},
    {"input", "string"},
    {"stdin", "stream target"},
    {"stdout", "stream target"},
    {"stderr", "stream target"},
    {"maxOutput", "integer (bytes)", read_max_output},
    {"detach", "boolean",
     [](const std::string& op, const Options& in, RunOptions& o) -> Result<void> {
         auto v = in.want_boolean(op, "detach");
         if (!v) return fail(v.error());
         o.detach = *v;
         return {};
     }},
    // Containment and identity (issue 13), read together by detail::parse_containment_options.
    {"cgroup", "boolean", detail::parse_containment_options},
    {"memoryMax", "size"},
    {"memorySwapMax", "size"},
    {"pidsMax", "integer or \"max\""},
    {"cpuMax", "number of cores"},
    {"ioWeight", "integer"},
    {"user", "name or uid"},
    {"group", "name or gid"},
    {"groups", "string list"},
    {"umask", "octal string or integer"},
    {"rlimits", "string list"},
    {"nice", "integer"},
    {"noNewPrivs", "boolean"},
    {"parentDeathSignal", "signal name or boolean"},
};

}  // namespace

std::span<const detail::OptionKey<RunOptions>> detail::run_option_keys() noexcept {
    return kRunKeys;
}

Result<RunOptions> Service::parse_options(const std::string& op, const Options& opts,
                                          bool lenient) {
    const std::span<const Key> keys = kRunKeys;
    if (!lenient) {
        if (auto r = detail::refuse_unknown_options(op, opts, keys); !r) return fail(r.error());
    }
    RunOptions o;
    if (auto r = detail::read_options(op, opts, keys, o); !r) return fail(r.error());
    return o;
}

}  // namespace core::process
