// detail::PidRef: pid + pidfd + reaped as one value, and its rule "never signal after reap".
// Real children of the helper program, spawned through lib/sys as the Service does.
#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <optional>
#include <string>

#include "common.hpp"
#include "process/pidref.hpp"
#include "sys/poll.hpp"
#include "sys/proc.hpp"
#include "sys/spawn.hpp"

namespace sys = core::sys;
using core::process::detail::PidRef;
using namespace proctest;

namespace {

// A helper child in `mode args…`, taken into a PidRef with its pidfd (pidfd = false: by pid).
PidRef spawn_child(std::vector<std::string> args, bool pidfd = true) {
    std::string path = core::test::child_path();
    std::vector<char*> argv{path.data()};
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    sys::SpawnSpec spec;
    spec.path = path.c_str();
    spec.argv = argv.data();
    auto sp = sys::spawn(spec);
    REQUIRE(sp);
    if (!pidfd) return PidRef::take(sp->pid, {});  // sp->pidfd closes here
    if (sp->pidfd) return PidRef::take(sp->pid, std::move(sp->pidfd));
    auto ref = PidRef::open(sp->pid);
    REQUIRE(ref);
    return std::move(*ref);
}

// Reaps ref, waiting (with a deadline) for the child to become reapable.
std::optional<sys::ExitStatus> reap_within_deadline(PidRef& ref) {
    std::optional<sys::ExitStatus> out;
    if (ref.has_pidfd()) {
        auto ready = sys::wait_readable(ref.pidfd(), std::chrono::seconds(30));
        REQUIRE(ready);
        REQUIRE(*ready);
    }
    REQUIRE(core::test::eventually([&] {
        auto w = ref.reap();
        REQUIRE(w);
        if (*w) out = **w;
        return out.has_value();
    }));
    return out;
}

}  // namespace

TEST_CASE("PidRef_Signal_Good", "[process][pidref]") {
    CORE_LEAK_GUARD();
    SECTION("through the pidfd") {
        auto ref = spawn_child({"sleep", "60000"});
        REQUIRE(ref.has_pidfd());
        CHECK(ref.pid() > 0);
        CHECK_FALSE(ref.reaped());
        REQUIRE(ref.signal(0));  // a probe: nothing sent
        REQUIRE(ref.signal(SIGKILL));
        auto st = reap_within_deadline(ref);
        CHECK_FALSE(st->exited);
        CHECK(st->signal == SIGKILL);
        CHECK(ref.reaped());
        ref.mark_reaped();
        CHECK_FALSE(ref.has_pidfd());
    }
    SECTION("by pid, without a pidfd (the fallback)") {
        auto ref = spawn_child({"sleep", "60000"}, false);
        REQUIRE_FALSE(ref.has_pidfd());
        CHECK(ref.pidfd() == -1);
        REQUIRE(ref.signal(SIGTERM));
        auto st = reap_within_deadline(ref);
        CHECK(st->signal == SIGTERM);
        CHECK(ref.reaped());
    }
    SECTION("a copy of the pidfd for a waiter") {
        auto ref = spawn_child({"exit", "4"});
        auto copy = ref.dup_pidfd();
        REQUIRE(copy);
        CHECK(copy->get() != ref.pidfd());
        auto ready = sys::wait_readable(copy->get(), std::chrono::seconds(30));
        REQUIRE(ready);
        CHECK(*ready);
        auto st = reap_within_deadline(ref);
        CHECK(st->exited);
        CHECK(st->code == 4);
    }
}

TEST_CASE("PidRef_Signal_Bad", "[process][pidref]") {
    CORE_LEAK_GUARD();
    auto ref = spawn_child({"exit", "0"});
    const int pid = ref.pid();
    auto st = reap_within_deadline(ref);
    CHECK(st->code == 0);
    // Reaped: the pid may belong to someone else now. Nothing is sent, whatever the target.
    SECTION("signal refuses") {
        auto s = ref.signal(SIGKILL);
        REQUIRE_FALSE(s);
        CHECK(s.error().code() == ESRCH);
        auto g = ref.signal(SIGKILL, true);
        REQUIRE_FALSE(g);
        CHECK(g.error().code() == ESRCH);
        CHECK(contains(s.error().what(), std::to_string(pid)));
    }
    SECTION("a second reap refuses, and so does a peek") {
        auto w = ref.reap();
        REQUIRE_FALSE(w);
        CHECK(w.error().code() == ECHILD);
        auto e = ref.exited();
        REQUIRE(e);
        CHECK_FALSE(*e);
    }
    SECTION("no pidfd to copy once marked") {
        ref.mark_reaped();
        ref.mark_reaped();  // idempotent
        CHECK_FALSE(ref.has_pidfd());
        auto d = ref.dup_pidfd();
        REQUIRE_FALSE(d);
        CHECK(d.error().code() == EBADF);
        CHECK(ref.pid() == pid);  // kept for the record
    }
    SECTION("an empty PidRef signals nobody") {
        PidRef none;
        auto s = none.signal(SIGKILL);
        REQUIRE_FALSE(s);
        CHECK(s.error().code() == ESRCH);
    }
}

TEST_CASE("PidRef_Reap_Ugly", "[process][pidref]") {
    CORE_LEAK_GUARD();
    SECTION("not reapable yet is not an error, and not reaped") {
        auto ref = spawn_child({"sleep", "60000"});
        auto w = ref.reap();
        REQUIRE(w);
        CHECK_FALSE(*w);
        CHECK_FALSE(ref.reaped());
        auto e = ref.exited();
        REQUIRE(e);
        CHECK_FALSE(*e);
        REQUIRE(ref.signal(SIGKILL));
        // Exited but not reaped: the peek says so and leaves the zombie for reap().
        REQUIRE(core::test::eventually([&] {
            auto x = ref.exited();
            return x && *x;
        }));
        CHECK_FALSE(ref.reaped());
        auto st = reap_within_deadline(ref);
        CHECK(st->signal == SIGKILL);
    }
    SECTION("someone else reaped it: the reap fails and still counts") {
        auto ref = spawn_child({"exit", "3"});
        // The host's own waitpid takes our child's exit (what the library must survive).
        int status = 0;
        REQUIRE(::waitpid(ref.pid(), &status, 0) == ref.pid());
        auto w = ref.reap();
        REQUIRE_FALSE(w);
        CHECK(w.error().code() == ECHILD);
        CHECK(ref.reaped());
        CHECK_FALSE(ref.signal(SIGKILL));
        ref.mark_reaped();
    }
}
