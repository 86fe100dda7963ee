// The steps "resolve" and "plan stdio" of Service::Impl::start: what the child's environment
// and executable are, and which descriptor each of its streams gets.
#include <algorithm>
#include <string_view>
#include <unordered_map>

#include "process/service_impl.hpp"
#include "sys/io.hpp"
#include "sys/proc.hpp"
#include "sys/spawn.hpp"
#include "sys/stdio.hpp"

namespace core::process::detail {

Result<Resolved> resolve(const std::string& op, const RunOptions& o) {
    Resolved r;
    std::vector<std::string> overrides = o.env;
    // PWD names the child's directory, not ours (Go 1.19, go.dev/issue/50599): shells and
    // build tools trust it. An explicit PWD in env wins.
    if (!o.dir.empty()) {
        bool explicit_pwd = false;
        for (const auto& kv : o.env) explicit_pwd = explicit_pwd || kv.compare(0, 4, "PWD=") == 0;
        if (!explicit_pwd) {
            std::string abs = o.dir;
            if (abs[0] != '/') {
                auto cwd = sys::current_dir();
                if (!cwd) return fail(E(op, "dir \"" + o.dir + "\"", cwd.error()));
                abs = *cwd + (cwd->back() == '/' ? "" : "/") + o.dir;
            }
            overrides.push_back("PWD=" + abs);
        }
    }
    const bool custom =
        !overrides.empty() || !o.unset_env.empty() || o.env_mode == EnvMode::replace;
    const char* path_var = nullptr;
    if (custom) {
        if (o.env_mode == EnvMode::replace) {
            // Last wins, first position kept, as merge_env does over the host's environment.
            std::unordered_map<std::string, std::size_t> at;
            for (const auto& kv : overrides) {
                auto [it, added] = at.emplace(kv.substr(0, kv.find('=')), r.env_store.size());
                if (added) {
                    r.env_store.push_back(kv);
                } else {
                    r.env_store[it->second] = kv;
                }
            }
        } else {
            r.env_store = sys::merge_env(overrides);
        }
        if (!o.unset_env.empty()) {
            std::erase_if(r.env_store, [&](const std::string& kv) {
                const std::string_view name = std::string_view(kv).substr(0, kv.find('='));
                for (const auto& u : o.unset_env)
                    if (name == u) return true;
                return false;
            });
        }
        r.envp.reserve(r.env_store.size() + 1);
        for (auto& kv : r.env_store) {
            r.envp.push_back(kv.data());
            if (kv.compare(0, 5, "PATH=") == 0) path_var = kv.c_str() + 5;
        }
        r.envp.push_back(nullptr);
    } else {
        path_var = sys::parent_getenv("PATH");
    }
    // glibc's execvp default when PATH is unset.
    if (!path_var) path_var = "/bin:/usr/bin";

    // The working directory is checked before spawning: glibc reports a failed chdir with the
    // same errno as a missing program (node #45279), so name the culprit ourselves.
    if (!o.dir.empty()) {
        if (auto d = sys::check_dir(o.dir); !d)
            return fail(E_errno(op, "dir \"" + o.dir + "\"", d.error().code()));
    }
    auto exe = sys::find_executable(o.command, path_var, o.dir);
    if (!exe) return fail(E_errno(op, "exec \"" + o.command + "\"", exe.error().code()));
    r.exe = std::move(*exe);
    return r;
}

Result<StdioPlan> plan_stdio(const std::string& op, const RunOptions& o, int devnull_fd) {
    using K = Stdio::Kind;
    StdioPlan p;
    const char* keys[3] = {"stdin", "stdout", "stderr"};
    auto wrap_key = [&](int n, const Error& e) {
        return Error(op, std::string("option \"") + keys[n] + "\": " + e.what(), e.code());
    };
    if (o.std_in.kind() == K::pty) {
        auto pt = sys::open_pty(o.std_in.rows(), o.std_in.cols());
        if (!pt) return fail(wrap_key(0, pt.error()));
        auto slave = sys::open_pty_slave(pt->slave_path);
        if (!slave) return fail(wrap_key(0, slave.error()));
        p.pty = true;
        for (int n = 0; n < 3; ++n) p.child[n] = slave->get();
        p.child_own[0] = std::move(*slave);
        p.pty_pair = std::move(*pt);
        return p;
    }
    auto one = [&](int n, const Stdio& s) -> Result<void> {
        switch (s.kind()) {
            case K::null:
                p.child[n] = devnull_fd;
                return {};
            case K::inherit:
                p.child[n] = -1;
                return {};
            case K::pipe:
            case K::bytes: {
                auto pp = sys::make_pipe();
                if (!pp) return fail(wrap_key(n, pp.error()));
                if (n == 0) {
                    // Ours is non-blocking either way: the reaper writes bytes() without
                    // blocking; write_input() waits for room together with a wake-up.
                    if (auto nb = sys::set_nonblocking(pp->write.get()); !nb)
                        return fail(wrap_key(n, nb.error()));
                    p.in_write = std::move(pp->write);
                    p.child_own[n] = std::move(pp->read);
                } else {
                    if (auto nb = sys::set_nonblocking(pp->read.get()); !nb)
                        return fail(wrap_key(n, nb.error()));
                    (n == 1 ? p.out_read : p.err_read) = std::move(pp->read);
                    p.child_own[n] = std::move(pp->write);
                }
                p.child[n] = p.child_own[n].get();
                return {};
            }
            case K::file: {
                auto f = sys::open_stdio_file(s.path(), n != 0, s.mode() == FileMode::append);
                if (!f) return fail(wrap_key(n, f.error()));
                p.child_own[n] = std::move(*f);
                p.child[n] = p.child_own[n].get();
                return {};
            }
            case K::fd: {
                // Our own dup: the caller may close theirs as soon as start returns.
                auto d = sys::dup_at_least(s.descriptor(), 3);
                if (!d) return fail(wrap_key(n, d.error()));
                p.child_own[n] = std::move(*d);
                p.child[n] = p.child_own[n].get();
                return {};
            }
            case K::merge:
            case K::pty:
                break;
        }
        return {};
    };
    if (auto r = one(0, o.std_in); !r) return fail(r.error());
    if (auto r = one(1, o.std_out); !r) return fail(r.error());
    if (o.std_err.kind() == K::merge) {
        if (o.std_out.kind() == K::pipe) {
            // A pipe of its own feeding the same buffer: arrival order is kept per read, and
            // ProcessOutput events still say which stream a line came from.
            if (auto r = one(2, Stdio::pipe()); !r) return fail(r.error());
        } else if (p.child[1] >= 0) {
            p.child[2] = p.child[1];
        } else {
            // stdout inherited: stderr goes where our stdout goes.
            auto d = sys::dup_at_least(1, 3);
            if (d) {
                p.child_own[2] = std::move(*d);
                p.child[2] = p.child_own[2].get();
            }  // our fd 1 is closed: the child's 2 stays ours, as inherit
        }
    } else {
        p.separate_err = o.std_err.kind() == K::pipe;
        if (auto r = one(2, o.std_err); !r) return fail(r.error());
    }
    if (!o.pass_fds.empty()) {
        // Sources above every target, so the child's dup2s cannot clobber one another.
        int max_dst = 2;
        for (const auto& pf : o.pass_fds) max_dst = std::max(max_dst, pf.child);
        for (const auto& pf : o.pass_fds) {
            auto d = sys::dup_at_least(pf.parent, max_dst + 1);
            if (!d)
                return fail(Error(
                    op,
                    "option \"passFds\": fd " + std::to_string(pf.parent) + ": " + d.error().what(),
                    d.error().code()));
            p.pass_src.push_back(d->get());
            p.pass_dst.push_back(pf.child);
            p.pass_own.push_back(std::move(*d));
        }
    }
    return p;
}

}  // namespace core::process::detail
