// detail::OptionKey: one table of keys from which both the "unknown option" check and the
// reading come; and the process actions' table (process.run / exec / start) built on it.
#include <cerrno>
#include <set>
#include <string>

#include "common.hpp"
#include "process/option_keys.hpp"

namespace detail = core::process::detail;
using core::Options;
using core::Result;
using namespace proctest;

namespace {

struct Probe {
    std::string name = "default";
    std::int64_t count = 1;
    int reads = 0;
};

Result<void> read_name(const std::string& op, const Options& in, Probe& p) {
    auto v = in.want_string(op, "name", p.name);
    if (!v) return core::fail(v.error());
    p.name = *v;
    ++p.reads;
    return {};
}

Result<void> read_count(const std::string& op, const Options& in, Probe& p) {
    auto v = in.want_integer(op, "count", p.count);
    if (!v) return core::fail(v.error());
    if (*v < 0) return core::fail(core::Error(op, "option \"count\": negative", EINVAL));
    p.count = *v;
    ++p.reads;
    return {};
}

constexpr detail::OptionKey<Probe> kProbe[] = {
    {"name", "string", read_name},
    {"count", "integer", read_count},
    {"alias", "string"},  // known, read by another key's reader (none here)
};

}  // namespace

TEST_CASE("OptionKeys_ReadOptions_Good", "[process][options]") {
    CORE_LEAK_GUARD();
    const std::span<const detail::OptionKey<Probe>> keys = kProbe;
    SECTION("present keys are read, absent ones keep their default") {
        Probe p;
        const Options in{{"count", 5}};
        REQUIRE(detail::refuse_unknown_options("probe", in, keys));
        REQUIRE(detail::read_options("probe", in, keys, p));
        CHECK(p.name == "default");
        CHECK(p.count == 5);
        CHECK(p.reads == 2);  // every reader runs, in table order
    }
    SECTION("a key without a reader is known") {
        const Options in{{"alias", std::string("x")}, {"name", std::string("n")}};
        REQUIRE(detail::refuse_unknown_options("probe", in, keys));
        Probe p;
        REQUIRE(detail::read_options("probe", in, keys, p));
        CHECK(p.name == "n");
    }
    SECTION("the known list is the table, in order") {
        CHECK(detail::option_key_list(keys) == "name, count, alias");
    }
}

TEST_CASE("OptionKeys_RefuseUnknown_Bad", "[process][options]") {
    CORE_LEAK_GUARD();
    const std::span<const detail::OptionKey<Probe>> keys = kProbe;
    SECTION("an unknown key is named with the known ones") {
        auto r = detail::refuse_unknown_options("probe", Options{{"cuont", 3}}, keys);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == EINVAL);
        CHECK(contains(r.error().what(), "unknown option \"cuont\" (known: name, count, alias)"));
    }
    SECTION("the first failing reader wins") {
        Probe p;
        auto r = detail::read_options("probe", Options{{"name", 7}, {"count", -1}}, keys, p);
        REQUIRE_FALSE(r);
        CHECK(contains(r.error().what(), "\"name\""));
        CHECK(p.reads == 0);
    }
}

TEST_CASE("OptionKeys_RunOptionKeys_Ugly", "[process][options]") {
    CORE_LEAK_GUARD();
    const auto keys = detail::run_option_keys();
    SECTION("names are unique, and a group member follows a key that reads") {
        std::set<std::string> seen;
        bool reader_before = false;
        for (const auto& k : keys) {
            CHECK(seen.insert(k.name).second);
            CHECK(std::string(k.type) != "");
            if (!k.read) CHECK(reader_before);
            reader_before = reader_before || k.read != nullptr;
        }
        CHECK(std::string(keys.front().name) == "command");
    }
    SECTION("parse_options knows exactly the table") {
        auto r = cp::Service::parse_options("process.run", Options{{"command", std::string("true")},
                                                                   {"timout", std::string("1s")}});
        REQUIRE_FALSE(r);
        CHECK(contains(r.error().what(),
                       "unknown option \"timout\" (known: " + detail::option_key_list(keys) + ")"));
        for (const auto& k : keys) CHECK(contains(r.error().what(), k.name));
    }
    SECTION("every stream key is read by the group's reader") {
        auto r =
            cp::Service::parse_options("process.run", Options{{"command", std::string("true")},
                                                              {"keepStdin", true},
                                                              {"stdout", std::string("null")},
                                                              {"stderr", std::string("pipe")}});
        REQUIRE(r);
        CHECK(r->std_in.kind() == cp::Stdio::Kind::pipe);
        CHECK(r->std_out.kind() == cp::Stdio::Kind::null);
        CHECK(r->std_err.kind() == cp::Stdio::Kind::pipe);
        auto clash =
            cp::Service::parse_options("process.run", Options{{"command", std::string("true")},
                                                              {"input", std::string("x")},
                                                              {"stdin", std::string("null")}});
        REQUIRE_FALSE(clash);
        CHECK(contains(clash.error().what(), "option \"stdin\" excludes \"input\""));
    }
}

// One spelling of the environment mode for every surface (process.*, daemon.*, the files).
TEST_CASE("OptionKeys_ParseEnvMode_Bad", "[process]") {
    CORE_LEAK_GUARD();
    CHECK(cp::parse_env_mode("merge").value() == cp::EnvMode::merge);
    CHECK(cp::parse_env_mode("replace").value() == cp::EnvMode::replace);
    auto bad = cp::parse_env_mode("clear");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code() == EINVAL);
    CHECK(contains(bad.error().message(), "\"clear\": want \"merge\" or \"replace\""));
    auto r = cp::Service::parse_options(
        "process.run", Options{{"command", std::string("true")}, {"envMode", std::string("all")}});
    REQUIRE_FALSE(r);
    CHECK(contains(r.error().what(), "option \"envMode\": \"all\": want \"merge\" or \"replace\""));
}
