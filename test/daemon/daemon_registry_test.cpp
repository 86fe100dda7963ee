#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch_test_macros.hpp>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "core/process/daemon_registry.hpp"
#include "guard.hpp"
#include "sys/fault.hpp"
#include "util.hpp"

namespace cp = core::process;
using core::test::TempDir;
namespace chr = std::chrono;

namespace {

std::string slurp(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::trunc);
    f << text;
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

cp::DaemonEntry entry(const std::string& code, const std::string& daemon, int pid = ::getpid()) {
    cp::DaemonEntry e;
    e.code = code;
    e.daemon = daemon;
    e.pid = pid;
    e.health = "127.0.0.1:9100";
    e.project = "/srv/proj";
    e.binary = "/usr/bin/app";
    e.started = chr::system_clock::time_point(chr::nanoseconds(1774432800123456789LL));
    return e;
}

std::size_t count_files(const std::string& dir) {
    std::size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        (void)e;
        ++n;
    }
    return n;
}

}  // namespace

TEST_CASE("DaemonRegistry_Register_Good", "[daemon][registry]") {
    CORE_LEAK_GUARD();
    TempDir tmp;
    const std::string dir = tmp / "reg";  // created on first write
    cp::DaemonRegistry reg(dir);
    REQUIRE(reg.register_entry(entry("core", "agent")));
    const std::string file = dir + "/core-agent.json";  // go-process's name for plain names
    REQUIRE(exists(file));
    CHECK(slurp(file) ==
          "{\n"
          "  \"code\": \"core\",\n"
          "  \"daemon\": \"agent\",\n"
          "  \"pid\": " +
              std::to_string(::getpid()) +
              ",\n"
              "  \"health\": \"127.0.0.1:9100\",\n"
              "  \"project\": \"/srv/proj\",\n"
              "  \"binary\": \"/usr/bin/app\",\n"
              "  \"started\": \"2026-03-25T10:00:00.123456789Z\"\n"
              "}\n");
    auto mode = [](const std::string& p) {
        struct stat st {};
        ::lstat(p.c_str(), &st);
        return st.st_mode & 0777;
    };
    CHECK(mode(dir) == 0700);
    CHECK(mode(file) == 0644);
    CHECK(reg.entries().has("core/agent"));
    CHECK(count_files(dir) == 1);  // no temp file left behind

    SECTION("re-register replaces atomically") {
        auto e = entry("core", "agent");
        e.health = "127.0.0.1:9200";
        REQUIRE(reg.register_entry(e));
        auto got = reg.get("core", "agent");
        REQUIRE(got);
        CHECK(got->health == "127.0.0.1:9200");
        CHECK(count_files(dir) == 1);
    }
    SECTION("unregister removes it") {
        REQUIRE(reg.unregister("core", "agent"));
        CHECK_FALSE(exists(file));
        CHECK_FALSE(reg.entries().has("core/agent"));
        auto again = reg.unregister("core", "agent");
        REQUIRE_FALSE(again);
        CHECK(again.error().code() == ENOENT);
    }
}

TEST_CASE("DaemonRegistry_Register_Bad", "[daemon][registry]") {
    CORE_LEAK_GUARD();
    TempDir tmp;
    cp::DaemonRegistry reg(tmp.path());
    auto e = entry("", "agent");
    auto r = reg.register_entry(e);
    REQUIRE_FALSE(r);
    CHECK(r.error().what() == "registry.register: empty code");
    r = reg.register_entry(entry("core", ""));
    REQUIRE_FALSE(r);
    r = reg.register_entry(entry("core", "agent", 0));
    REQUIRE_FALSE(r);
    CHECK(r.error().what() == "registry.register: pid must be positive");

    SECTION("a directory others may write is refused") {
        const std::string shared = tmp / "shared";
        REQUIRE(::mkdir(shared.c_str(), 0777) == 0);
        REQUIRE(::chmod(shared.c_str(), 0777) == 0);
        cp::DaemonRegistry bad(shared);
        auto w = bad.register_entry(entry("core", "agent"));
        REQUIRE_FALSE(w);
        CHECK(w.error().what().find("unsafe directory") != std::string::npos);
        CHECK(w.error().code() == EPERM);
    }
    SECTION("a symlinked directory is refused") {
        const std::string real = tmp / "real";
        REQUIRE(::mkdir(real.c_str(), 0700) == 0);
        REQUIRE(::symlink(real.c_str(), (tmp / "link").c_str()) == 0);
        cp::DaemonRegistry bad(tmp / "link");
        REQUIRE_FALSE(bad.register_entry(entry("core", "agent")));
        CHECK(count_files(real) == 0);
    }
}

TEST_CASE("DaemonRegistry_Register_Ugly", "[daemon][registry]") {
    CORE_LEAK_GUARD();
    TempDir tmp;
    cp::DaemonRegistry reg(tmp.path());
    const std::string file = tmp / "core-agent.json";
    auto old = entry("core", "agent");
    REQUIRE(reg.register_entry(old));
    const std::string before = slurp(file);

    SECTION("names that go-process would collide are distinct files") {
        // go-process: "a/b"+"c" and "a"+"b/c" both became "a-b-c.json"; and with '-' in a name
        // (code "a-b", daemon "c") vs (code "a", daemon "b-c") too.
        REQUIRE(reg.register_entry(entry("a-b", "c")));
        REQUIRE(reg.register_entry(entry("a", "b-c")));
        REQUIRE(reg.register_entry(entry("a/b", "c")));
        REQUIRE(reg.register_entry(entry("a", "b/c")));
        REQUIRE(reg.register_entry(entry("a%2D", "c")));
        CHECK(cp::DaemonRegistry::file_name("a-b", "c") == "a%2Db-c.json");
        CHECK(cp::DaemonRegistry::file_name("a", "b-c") == "a-b%2Dc.json");
        CHECK(cp::DaemonRegistry::file_name("a/b", "c") == "a%2Fb-c.json");
        CHECK(cp::DaemonRegistry::file_name("..", "x") == "%2E%2E-x.json");
        auto l = reg.list();
        REQUIRE(l);
        CHECK(l->problems.empty());
        REQUIRE(l->entries.size() == 6);
        for (const auto& [c, d] : std::vector<std::pair<std::string, std::string>>{
                 {"a-b", "c"}, {"a", "b-c"}, {"a/b", "c"}, {"a", "b/c"}, {"a%2D", "c"}}) {
            auto g = reg.get(c, d);
            REQUIRE(g);
            CHECK(g->code == c);
            CHECK(g->daemon == d);
        }
    }
    SECTION("a full disk on write or fsync leaves the old file intact and no temp file") {
        for (const char* call : {"write", "fsync", "rename", "open"}) {
            INFO(call);
            core::sys::fault::Scoped g(call, ENOSPC);
            auto e = entry("core", "agent");
            e.health = "127.0.0.1:1";
            auto r = reg.register_entry(e);
            REQUIRE_FALSE(r);
            CHECK(r.error().code() == ENOSPC);
            CHECK(r.error().what().find("registry.register: " + file) == 0);
            CHECK(slurp(file) == before);
            CHECK(count_files(tmp.path()) == 1);
        }
    }
}

TEST_CASE("DaemonRegistry_Get_Good", "[daemon][registry]") {
    CORE_LEAK_GUARD();
    TempDir tmp;
    cp::DaemonRegistry reg(tmp.path());
    auto e = entry("core", "agent");
    REQUIRE(reg.register_entry(e));
    cp::DaemonRegistry other(tmp.path());  // another reader of the same directory
    auto g = other.get("core", "agent");
    REQUIRE(g);
    CHECK(g->pid == e.pid);
    CHECK(g->health == e.health);
    CHECK(g->project == e.project);
    CHECK(g->binary == e.binary);
    CHECK(g->started == e.started);
    CHECK(other.entries().has("core/agent"));
}

TEST_CASE("DaemonRegistry_Get_Bad", "[daemon][registry]") {
    CORE_LEAK_GUARD();
    TempDir tmp;
    cp::DaemonRegistry reg(tmp.path());
    auto g = reg.get("core", "nope");
    REQUIRE_FALSE(g);
    CHECK(g.error().what() == "registry.get: not found: core/nope");
    CHECK(g.error().code() == ENOENT);
    SECTION("a dead pid is pruned on get") {
        REQUIRE(reg.register_entry(entry("core", "dead", core::test::dead_pid())));
        auto d = reg.get("core", "dead");
        REQUIRE_FALSE(d);
        CHECK(d.error().code() == ENOENT);
        CHECK(d.error().what().find("entry pruned") != std::string::npos);
        CHECK_FALSE(exists(tmp / "core-dead.json"));
    }
}

TEST_CASE("DaemonRegistry_Get_Ugly", "[daemon][registry]") {
    CORE_LEAK_GUARD();
    TempDir tmp;
    cp::DaemonRegistry reg(tmp.path());
    write_file(tmp / "core-agent.json",
               "{\"code\": \"core\", \"daemon\": \"agent\", \"pid\": \"12\"}");
    auto g = reg.get("core", "agent");
    REQUIRE_FALSE(g);
    CHECK(g.error().what() ==
          "registry.get: " + (tmp / "core-agent.json") + ": registry: key \"pid\": not an integer");
    CHECK(exists(tmp / "core-agent.json"));  // a corrupt file is reported, not deleted
}

TEST_CASE("DaemonRegistry_DefaultDir_Good", "[daemon][registry]") {
    CORE_LEAK_GUARD();
    // Environment changes are confined to this test and restored (no other thread reads them).
    auto saved = [](const char* k) -> std::optional<std::string> {
        const char* v = std::getenv(k);
        return v ? std::optional<std::string>(v) : std::nullopt;
    };
    const auto home = saved("HOME"), tmpdir = saved("TMPDIR");
    auto restore = [](const char* k, const std::optional<std::string>& v) {
        if (v)
            ::setenv(k, v->c_str(), 1);
        else
            ::unsetenv(k);
    };
    ::setenv("HOME", "/home/someone", 1);
    ::setenv("TMPDIR", "/var/tmp", 1);
    CHECK(cp::DaemonRegistry::default_dir() == "/home/someone/.core/daemons");
    ::unsetenv("HOME");
    CHECK(cp::DaemonRegistry::default_dir() == "/var/tmp/.core/daemons");
    ::unsetenv("TMPDIR");
    CHECK(cp::DaemonRegistry::default_dir() == "/tmp/.core/daemons");
    ::setenv("HOME", "relative", 1);  // not absolute: ignored
    CHECK(cp::DaemonRegistry::default_dir() == "/tmp/.core/daemons");
    cp::DaemonRegistry reg;
    CHECK(reg.dir() == "/tmp/.core/daemons");
    restore("HOME", home);
    restore("TMPDIR", tmpdir);
}

TEST_CASE("DaemonRegistry_List_Good", "[daemon][registry]") {
    CORE_LEAK_GUARD();
    TempDir tmp;
    cp::DaemonRegistry reg(tmp.path());
    SECTION("missing directory: empty list") {
        cp::DaemonRegistry none(tmp / "missing");
        auto l = none.list();
        REQUIRE(l);
        CHECK(l->entries.empty());
    }
    SECTION("a file written by go-process (Go's exact format) is read back") {
        // What Go's json.MarshalIndent of go-process's DaemonEntry produces (time.Time in
        // RFC 3339 with nanoseconds and the local offset).
        const std::string go =
            "{\n"
            "  \"code\": \"core\",\n"
            "  \"daemon\": \"agent\",\n"
            "  \"pid\": " +
            std::to_string(::getpid()) +
            ",\n"
            "  \"health\": \"127.0.0.1:9100\",\n"
            "  \"project\": \"/home/u/proj\",\n"
            "  \"binary\": \"/usr/local/bin/core-agent\",\n"
            "  \"started\": \"2026-03-25T11:00:00.1234567+01:00\"\n"
            "}";
        write_file(tmp / "core-agent.json", go);
        // Go without indentation and with the keys in another order, fraction-less time.
        write_file(tmp / "core-web.json", "{\"pid\":" + std::to_string(::getpid()) +
                                              ",\"daemon\":\"web\",\"code\":\"core\",\"started\":"
                                              "\"2026-03-25T10:00:00Z\"}");
        auto l = reg.list();
        REQUIRE(l);
        CHECK(l->problems.empty());
        REQUIRE(l->entries.size() == 2);
        const auto& a = l->entries[0];
        CHECK(a.code == "core");
        CHECK(a.daemon == "agent");
        CHECK(a.pid == ::getpid());
        CHECK(a.health == "127.0.0.1:9100");
        CHECK(a.project == "/home/u/proj");
        CHECK(a.binary == "/usr/local/bin/core-agent");
        CHECK(cp::format_rfc3339(a.started) == "2026-03-25T10:00:00.1234567Z");
        CHECK(l->entries[1].daemon == "web");
        CHECK(cp::format_rfc3339(l->entries[1].started) == "2026-03-25T10:00:00Z");
        CHECK(reg.entries().size() == 2);
    }
}

TEST_CASE("DaemonRegistry_List_Bad", "[daemon][registry]") {
    CORE_LEAK_GUARD();
    TempDir tmp;
    cp::DaemonRegistry reg(tmp.path());
    REQUIRE(reg.register_entry(entry("core", "agent")));
    write_file(tmp / "broken-json.json", "{\"code\": \"x\", ");
    write_file(tmp / "wrong-types.json", "[1, 2, 3]");
    write_file(tmp / "bad-time.json",
               "{\"code\":\"a\",\"daemon\":\"b\",\"pid\":1,\"started\":\"yesterday\"}");
    write_file(tmp / "notes.txt", "not an entry");
    auto l = reg.list();
    REQUIRE(l);
    REQUIRE(l->entries.size() == 1);
    CHECK(l->entries[0].daemon == "agent");
    REQUIRE(l->problems.size() == 3);
    CHECK(l->problems[0].file == tmp / "bad-time.json");
    CHECK(l->problems[0].error.what().find("key \"started\"") != std::string::npos);
    CHECK(l->problems[1].error.what() == "registry: not valid JSON");
    CHECK(l->problems[2].error.what() == "registry: not a JSON object");
    CHECK(exists(tmp / "broken-json.json"));  // reported, left for a human
}

TEST_CASE("DaemonRegistry_List_Ugly", "[daemon][registry]") {
    CORE_LEAK_GUARD();
    TempDir tmp;
    cp::DaemonRegistry reg(tmp.path());
    REQUIRE(reg.register_entry(entry("core", "alive")));
    REQUIRE(reg.register_entry(entry("core", "dead", core::test::dead_pid())));
    auto l = reg.list();
    REQUIRE(l);
    REQUIRE(l->entries.size() == 1);
    CHECK(l->entries[0].daemon == "alive");
    CHECK_FALSE(exists(tmp / "core-dead.json"));  // pruned
    CHECK_FALSE(reg.entries().has("core/dead"));
    // Removed by another process: gone from the in-memory mirror at the next list().
    REQUIRE(::unlink((tmp / "core-alive.json").c_str()) == 0);
    CHECK(reg.entries().has("core/alive"));
    REQUIRE(reg.list());
    CHECK(reg.entries().size() == 0);
    SECTION("list fails clearly when the directory is unreadable") {
        core::sys::fault::Scoped g("opendir", EACCES);
        auto f = reg.list();
        REQUIRE_FALSE(f);
        CHECK(f.error().what().find("registry.list: " + tmp.path()) == 0);
    }
}

TEST_CASE("DaemonRegistry_Rfc3339_Ugly", "[daemon][registry]") {
    CORE_LEAK_GUARD();
    using cp::parse_rfc3339;
    auto t = parse_rfc3339("2026-03-25T10:00:00.123456789Z");
    REQUIRE(t);
    CHECK(cp::format_rfc3339(*t) == "2026-03-25T10:00:00.123456789Z");
    auto off = parse_rfc3339("2026-03-25T05:30:00-04:30");
    REQUIRE(off);
    CHECK(cp::format_rfc3339(*off) == "2026-03-25T10:00:00Z");
    auto zero = parse_rfc3339("0001-01-01T00:00:00Z");  // Go's zero time
    REQUIRE(zero);
    CHECK(*zero == chr::system_clock::time_point{});
    CHECK(cp::format_rfc3339(chr::system_clock::time_point{}) == "0001-01-01T00:00:00Z");
    for (const char* bad :
         {"", "2026-02-30T00:00:00Z", "2026-03-25 10:00:00Z", "2026-03-25T10:00:00",
          "2026-03-25T10:00:00.Z", "9999-01-01T00:00:00Z", "2026-03-25T25:00:00Z",
          "2026-03-25T10:00:00+0100", "2026-03-25T10:00:00Zjunk"}) {
        INFO(bad);
        CHECK_FALSE(parse_rfc3339(bad));
    }
}
