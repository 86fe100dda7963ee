// Stdio per stream, Command's env policy, PWD, pass_fds, pipelines and the pty: issue 12 §1 and
// issue 18's PWD. Every case runs on both spawn paths (the suite runs twice).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch_test_macros.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "common.hpp"

using namespace proctest;
using core::Context;
using cp::Stdio;

namespace {

std::string temp_dir() {
    char tmpl[] = "/tmp/core-stdio-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    return tmpl;
}

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

void remove_tree(const std::string& dir) {
    std::string cmd = "rm -rf '" + dir + "'";
    REQUIRE(std::system(cmd.c_str()) == 0);
}

}  // namespace

TEST_CASE("Stdio_Pipe_Good", "[process][stdio]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    SECTION("stdout and stderr apart, each its own buffer") {
        auto o = child({"interleave", "3"});
        o.std_err = Stdio::pipe();
        auto r = svc->exec(Context::background(), o);
        REQUIRE(r);
        CHECK(r->std_out == "out 0\nout 1\nout 2\n");
        CHECK(r->std_err == "err 0\nerr 1\nerr 2\n");
        CHECK(r->status.kind == cp::ExitKind::exited);
        CHECK(r->status.code == 0);
        CHECK(r->success());
    }
    SECTION("merge keeps every byte of both in one buffer, each stream in its order") {
        auto o = child({"interleave", "50"});
        auto r = svc->exec(Context::background(), o);
        REQUIRE(r);
        CHECK(r->std_err.empty());
        std::size_t outs = 0, errs = 0, last_out = 0, last_err = 0;
        std::istringstream in(r->std_out);
        std::string line;
        bool ordered = true;
        while (std::getline(in, line)) {
            if (line.rfind("out ", 0) == 0) {
                ordered = ordered && std::stoul(line.substr(4)) == last_out++;
                ++outs;
            } else if (line.rfind("err ", 0) == 0) {
                ordered = ordered && std::stoul(line.substr(4)) == last_err++;
                ++errs;
            }
        }
        CHECK(outs == 50);
        CHECK(errs == 50);
        CHECK(ordered);
    }
    SECTION("each stream bounded with its own exact drop count") {
        auto o = child({"bytes", "10000", "a"});
        o.std_err = Stdio::pipe();
        o.max_output = 1000;
        auto r = svc->exec(Context::background(), o);
        REQUIRE(r);
        CHECK(r->std_out == std::string(1000, 'a'));
        CHECK(r->std_out_dropped == 9000);
        CHECK(r->std_err_dropped == 0);
        auto e = child({"stderr", std::string(3000, 'e')});
        e.std_err = Stdio::pipe();
        e.max_output = 100;
        auto re = svc->exec(Context::background(), e);
        REQUIRE(re);
        CHECK(re->std_err.size() == 100);
        CHECK(re->std_err_dropped == 2901);  // 3000 bytes and a newline
        CHECK(re->std_out.empty());
    }
    SECTION("stdin pipe: write_input then close_input") {
        auto o = child({"echo"});
        o.std_in = Stdio::pipe();
        auto p = svc->start(Context::background(), o);
        REQUIRE(p);
        REQUIRE((*p)->write_input("hello "));
        REQUIRE((*p)->write_input("world"));
        REQUIRE((*p)->close_input());
        (*p)->wait();
        CHECK((*p)->output() == "hello world");
        CHECK((*p)->output(cp::Stream::stdout_) == "hello world");
    }
    SECTION("stdin bytes") {
        auto o = child({"echo"});
        o.std_in = Stdio::bytes(std::string("a\0b", 3));
        auto r = svc->exec(Context::background(), o);
        REQUIRE(r);
        CHECK(r->std_out == std::string("a\0b", 3));
    }
}

TEST_CASE("Stdio_File_Good", "[process][stdio]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    const std::string dir = temp_dir();
    SECTION("stdout created and truncated, then appended; stderr into its own file") {
        const std::string out = dir + "/out.txt", err = dir + "/err.txt";
        auto o = child({"interleave", "2"});
        o.std_out = Stdio::file(out);
        o.std_err = Stdio::file(err);
        REQUIRE(svc->exec(Context::background(), o));
        CHECK(slurp(out) == "out 0\nout 1\n");
        CHECK(slurp(err) == "err 0\nerr 1\n");
        auto a = child({"print", "again"});
        a.std_out = Stdio::file(out, cp::FileMode::append);
        REQUIRE(svc->exec(Context::background(), a));
        CHECK(slurp(out) == "out 0\nout 1\nagain\n");
        auto t = child({"print", "fresh"});
        t.std_out = Stdio::file(out);
        REQUIRE(svc->exec(Context::background(), t));
        CHECK(slurp(out) == "fresh\n");
    }
    SECTION("merge into a file keeps both streams there") {
        const std::string out = dir + "/both.txt";
        auto o = child({"interleave", "1"});
        o.std_out = Stdio::file(out);
        auto r = svc->exec(Context::background(), o);
        REQUIRE(r);
        CHECK(r->std_out.empty());
        const std::string got = slurp(out);
        CHECK(contains(got, "out 0\n"));
        CHECK(contains(got, "err 0\n"));
    }
    SECTION("stdin from a file") {
        const std::string in = dir + "/in.txt";
        {
            std::ofstream f(in);
            f << "from a file";
        }
        auto o = child({"echo"});
        o.std_in = Stdio::file(in);
        auto r = svc->exec(Context::background(), o);
        REQUIRE(r);
        CHECK(r->std_out == "from a file");
    }
    remove_tree(dir);
}

TEST_CASE("Stdio_File_Bad", "[process][stdio]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    const std::string dir = temp_dir();
    SECTION("stdout to a directory: EISDIR naming the option and the path") {
        auto o = child({"print", "x"});
        o.std_out = Stdio::file(dir);
        auto r = svc->exec(Context::background(), o);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == EISDIR);
        CHECK(contains(r.error().what(), "stdout"));
        CHECK(contains(r.error().what(), dir));
    }
    SECTION("stdin from a directory or a missing file") {
        auto o = child({"echo"});
        o.std_in = Stdio::file(dir);
        auto r = svc->exec(Context::background(), o);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == EISDIR);
        o.std_in = Stdio::file(dir + "/missing");
        auto m = svc->exec(Context::background(), o);
        REQUIRE_FALSE(m);
        CHECK(m.error().code() == ENOENT);
        CHECK(contains(m.error().what(), "stdin"));
    }
    SECTION("stream kinds where they do not belong") {
        auto o = child({"print", "x"});
        o.std_out = Stdio::merge();
        auto r = svc->exec(Context::background(), o);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == EINVAL);
        CHECK(contains(r.error().what(), "stdout"));
        auto b = child({"print", "x"});
        b.std_err = Stdio::bytes("x");
        CHECK_FALSE(svc->exec(Context::background(), b));
        auto f = child({"print", "x"});
        f.std_out = Stdio::fd(-1);
        CHECK_FALSE(svc->exec(Context::background(), f));
        auto half = child({"print", "x"});
        half.std_out = Stdio::pty();
        auto h = svc->exec(Context::background(), half);
        REQUIRE_FALSE(h);
        CHECK(contains(h.error().what(), "pty"));
    }
    remove_tree(dir);
}

TEST_CASE("Stdio_Fd_Good", "[process][stdio]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    const std::string dir = temp_dir();
    const std::string path = dir + "/fd.txt";
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    auto o = child({"print", "through an fd"});
    o.std_out = Stdio::fd(fd);
    auto r = svc->exec(Context::background(), o);
    REQUIRE(r);
    // The caller's descriptor is untouched: still open, still ours, still CLOEXEC.
    CHECK(::fcntl(fd, F_GETFD) == FD_CLOEXEC);
    CHECK(::write(fd, "after\n", 6) == 6);
    ::close(fd);
    CHECK(slurp(path) == "through an fd\nafter\n");
    remove_tree(dir);
}

TEST_CASE("Stdio_Null_Good", "[process][stdio]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    SECTION("null stdout and stderr: nothing captured, the child writes fine") {
        auto o = child({"interleave", "5"});
        o.std_out = Stdio::null();
        o.std_err = Stdio::null();
        auto r = svc->exec(Context::background(), o);
        REQUIRE(r);
        CHECK(r->std_out.empty());
        CHECK(r->success());
    }
    SECTION("null stdin: EOF at once") {
        auto o = child({"echo"});
        auto r = svc->exec(Context::background(), o);
        REQUIRE(r);
        CHECK(r->std_out.empty());
    }
    SECTION("inherit: the child's stdout is ours") {
        // Our stdout is redirected to a file for the call, so the child's write lands there.
        const std::string dir = temp_dir();
        const std::string path = dir + "/inherit.txt";
        std::fflush(stdout);
        const int saved = ::dup(1);
        const int f = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        REQUIRE(saved >= 0);
        REQUIRE(f >= 0);
        ::dup2(f, 1);
        ::close(f);
        auto o = child({"print", "inherited"});
        o.std_out = Stdio::inherit();
        auto r = svc->exec(Context::background(), o);
        ::dup2(saved, 1);
        ::close(saved);
        REQUIRE(r);
        CHECK(r->std_out.empty());
        CHECK(slurp(path) == "inherited\n");
        remove_tree(dir);
    }
}

TEST_CASE("Command_Env_Good", "[process][stdio]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    ::setenv("CORE_TEST_INHERITED", "yes", 1);
    SECTION("replace: only what is given") {
        auto o = child({"env"});
        o.env = {"ONLY=1"};
        o.env_mode = cp::EnvMode::replace;
        auto r = svc->exec(Context::background(), o);
        REQUIRE(r);
        CHECK(r->std_out == "ONLY=1\n");
    }
    SECTION("unset in merge mode") {
        auto o = child({"env", "CORE_TEST_INHERITED"});
        o.unset_env = {"CORE_TEST_INHERITED"};
        auto r = svc->exec(Context::background(), o);
        REQUIRE(r);
        CHECK(r->std_out == "CORE_TEST_INHERITED=\n");
        auto kept = svc->exec(Context::background(), child({"env", "CORE_TEST_INHERITED"}));
        REQUIRE(kept);
        CHECK(kept->std_out == "CORE_TEST_INHERITED=yes\n");
    }
    SECTION("unset in replace mode, last wins") {
        auto o = child({"env"});
        o.env = {"A=1", "B=2", "A=3"};
        o.env_mode = cp::EnvMode::replace;
        o.unset_env = {"B"};
        auto r = svc->exec(Context::background(), o);
        REQUIRE(r);
        CHECK(r->std_out == "A=3\n");
    }
    ::unsetenv("CORE_TEST_INHERITED");
}

TEST_CASE("Command_Pwd_Good", "[process][stdio]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    SECTION("dir given: PWD names it") {
        auto o = child({"env", "PWD"});
        o.dir = "/tmp";
        auto r = svc->exec(Context::background(), o);
        REQUIRE(r);
        CHECK(r->std_out == "PWD=/tmp\n");
    }
    SECTION("a relative dir: PWD is absolute") {
        char cwd[4096];
        REQUIRE(::getcwd(cwd, sizeof cwd));
        auto o = child({"env", "PWD"});
        o.dir = ".";
        auto r = svc->exec(Context::background(), o);
        REQUIRE(r);
        CHECK(r->std_out == "PWD=" + std::string(cwd) + "/.\n");
    }
    SECTION("an explicit PWD wins") {
        auto o = child({"env", "PWD"});
        o.dir = "/tmp";
        o.env = {"PWD=/elsewhere"};
        auto r = svc->exec(Context::background(), o);
        REQUIRE(r);
        CHECK(r->std_out == "PWD=/elsewhere\n");
    }
    SECTION("no dir: the host's PWD is inherited unchanged") {
        const char* pwd = std::getenv("PWD");
        auto r = svc->exec(Context::background(), child({"env", "PWD"}));
        REQUIRE(r);
        CHECK(r->std_out == "PWD=" + std::string(pwd ? pwd : "") + "\n");
    }
}

TEST_CASE("Command_PassFds_Good", "[process][stdio]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    int p1[2], p2[2];
    REQUIRE(::pipe2(p1, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(p2, O_CLOEXEC) == 0);
    auto o = child({"fds"});
    // 7 <- p1's write end; 3 <- p2's write end (a target below another's source number).
    o.pass_fds = {{7, p1[1]}, {3, p2[1]}};
    auto r = svc->exec(Context::background(), o);
    REQUIRE(r);
    CHECK(r->std_out == "0 1 2 3 7\n");
    for (int fd : {p1[0], p1[1], p2[0], p2[1]}) ::close(fd);
}

TEST_CASE("Command_PassFds_Bad", "[process][stdio]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    auto o = child({"fds"});
    o.pass_fds = {{1, 0}};
    auto r = svc->exec(Context::background(), o);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == EINVAL);
    o.pass_fds = {{5, 1000000}};
    auto bad = svc->exec(Context::background(), o);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code() == EBADF);
    o.pass_fds = {{5, 1}, {5, 2}};
    CHECK_FALSE(svc->exec(Context::background(), o));
}

TEST_CASE("Service_StartPipeline_Good", "[process][stdio]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    SECTION("a | b | c passes bytes through") {
        auto a = child({"lines", "3"});
        auto b = child({"echo"});
        auto last = child({"echo"});
        auto p = svc->start_pipeline(Context::background(), {a, b, last});
        REQUIRE(p);
        REQUIRE(p->processes.size() == 3);
        const cp::ExitStatus st = p->wait();
        CHECK(st.success());
        CHECK(p->processes[2]->output() == "line 0\nline 1\nline 2\n");
        for (auto& m : p->processes) REQUIRE(svc->remove(m->id()));
    }
    SECTION("pipefail: a failing middle stage decides the status") {
        auto a = child({"lines", "3"});
        auto mid = child({"output-exit", "3", "0"});
        auto last = child({"echo"});
        auto p = svc->start_pipeline(Context::background(), {a, mid, last});
        REQUIRE(p);
        const cp::ExitStatus st = p->wait();
        CHECK(st.kind == cp::ExitKind::exited);
        CHECK(st.code == 3);
        auto each = p->statuses();
        REQUIRE(each.size() == 3);
        CHECK(each[2].code == 0);
        CHECK(each[1].code == 3);
        CHECK(p->processes[2]->output() == "END\n");
        for (auto& m : p->processes) REQUIRE(svc->remove(m->id()));
    }
}

TEST_CASE("Service_StartPipeline_Bad", "[process][stdio]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    CHECK_FALSE(svc->start_pipeline(Context::background(), {}));
    cp::RunOptions missing;
    missing.command = "/nonexistent/core-process-test";
    auto p = svc->start_pipeline(Context::background(), {child({"sleep", "60000"}), missing});
    REQUIRE_FALSE(p);
    CHECK(p.error().code() == ENOENT);
    CHECK(contains(p.error().what(), "stage 1"));
    CHECK(svc->list(true).empty());  // the started stage was killed and reaped
}

TEST_CASE("Stdio_Pty_Good", "[process][stdio]") {
    CORE_LEAK_GUARD();
    auto c = make_core();
    auto svc = service(c);
    SECTION("the child sees a terminal of the given size and leads a session") {
        auto o = child({"tty"});
        o.std_in = o.std_out = o.std_err = Stdio::pty(33, 101);
        auto r = svc->exec(Context::background(), o);
        REQUIRE(r);
        CHECK(r->std_out == "tty 1 1 1 33x101 1\r\n");  // the terminal's ONLCR adds the \r
    }
    SECTION("resize reaches the child as SIGWINCH") {
        auto o = child({"winch", "10000"});
        o.std_in = o.std_out = o.std_err = Stdio::pty(10, 20);
        auto p = svc->start(Context::background(), o);
        REQUIRE(p);
        REQUIRE(core::test::eventually([&] { return contains((*p)->output(), "ready"); }));
        REQUIRE((*p)->resize(50, 132));
        (*p)->wait();
        CHECK(contains((*p)->output(), "size 50x132"));
        CHECK((*p)->exit_status().code == 0);
        CHECK((*p)->resize(1, 1));  // finished: nothing to do
    }
    SECTION("write_input goes to the terminal") {
        auto o = child({"echo"});
        o.std_in = o.std_out = o.std_err = Stdio::pty();
        auto p = svc->start(Context::background(), o);
        REQUIRE(p);
        REQUIRE((*p)->write_input("typed\n"));
        REQUIRE(core::test::eventually([&] { return contains((*p)->output(), "typed"); }));
        REQUIRE((*p)->write_input(std::string(1, '\x04')));  // ^D: EOF on the terminal
        (*p)->wait();
        CHECK((*p)->exit_status().code == 0);
    }
    SECTION("not a pty: resize refused") {
        auto p = svc->start(Context::background(), child({"sleep", "60000"}));
        REQUIRE(p);
        auto r = (*p)->resize(1, 1);
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == ENOTTY);
        REQUIRE((*p)->kill());
        (*p)->wait();
    }
}
