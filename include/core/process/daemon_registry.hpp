// The daemon registry: which daemons run on this machine, as one JSON file per daemon in
// go-process's format, so Go tools read what C++ daemons write and vice versa.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/export.hpp"
#include "core/registry.hpp"
#include "core/result.hpp"

namespace core::process {

// One daemon, as go-process's DaemonEntry (JSON keys: code, daemon, pid, health, project,
// binary, started — RFC 3339 with nanoseconds, UTC when written).
struct DaemonEntry {
    std::string code;    // the owning tool/app code, e.g. "core"
    std::string daemon;  // the daemon's name within code, e.g. "agent"
    int pid = 0;
    std::string health;   // health address "127.0.0.1:PORT", or empty
    std::string project;  // optional
    std::string binary;   // optional
    std::chrono::system_clock::time_point started{};
};

// A registry file list() could not use.
struct RegistryProblem {
    std::string file;  // full path
    Error error;
};

struct ListResult {
    std::vector<DaemonEntry> entries;       // live daemons, sorted by (code, daemon)
    std::vector<RegistryProblem> problems;  // corrupt/unreadable files, skipped (not deleted)
};

// DaemonRegistry mirrors a core::Registry<DaemonEntry> (key "<code>/<daemon>") to a directory,
// one file per daemon. The files are the truth (other processes write them too); the in-memory
// Registry holds what this object last wrote or read. Writes are atomic (temp file in the same
// directory, fsync, rename, fsync of the directory). Thread-safe.
class CORE_API DaemonRegistry {
  public:
    // dir empty: default_dir().
    explicit DaemonRegistry(std::string dir = {});

    // $HOME/.core/daemons, else $TMPDIR/.core/daemons, else /tmp/.core/daemons.
    static std::string default_dir();
    // The file name of an entry: "<code>-<daemon>.json", where '%', '-' and '/' (and control
    // bytes) in code and daemon are percent-encoded, so distinct pairs never share a file;
    // names without them are exactly go-process's.
    static std::string file_name(const std::string& code, const std::string& daemon);

    const std::string& dir() const noexcept { return dir_; }

    // Writes the entry (creating the directory 0700 when missing; file mode 0644).
    // Errors: empty code/daemon, pid <= 0, I/O (ENOSPC…: the previous file stays intact).
    [[nodiscard]] Result<void> register_entry(const DaemonEntry& entry);
    // Removes the entry's file. Errors: not registered (code ENOENT), I/O.
    [[nodiscard]] Result<void> unregister(const std::string& code, const std::string& daemon);
    // Reads the entry's file. A dead PID prunes it and returns not found (code ENOENT).
    // Errors: not found, corrupt file.
    [[nodiscard]] Result<DaemonEntry> get(const std::string& code, const std::string& daemon);
    // Every live entry; corrupt files reported in problems; dead entries pruned (file deleted).
    // Errors: the directory cannot be read (a missing directory is an empty list).
    [[nodiscard]] Result<ListResult> list();

    // The in-memory mirror.
    const Registry<DaemonEntry>& entries() const noexcept { return entries_; }

  private:
    std::string dir_;
    Registry<DaemonEntry> entries_{"daemon.registry"};
};

// go-process's JSON for one entry (pretty-printed, as Go's json.MarshalIndent with 2 spaces).
CORE_API std::string to_json(const DaemonEntry& entry);
// Parses one entry file. Errors name the key: `registry: key "pid": not a number`.
[[nodiscard]] CORE_API Result<DaemonEntry> parse_daemon_entry(const std::string& json);

// RFC 3339 as Go's time.Time marshals it: "2026-03-25T10:00:00.123456789Z" (trailing zeros of
// the fraction dropped, UTC). parse accepts any offset ("+01:00") and 0-9 fraction digits.
CORE_API std::string format_rfc3339(std::chrono::system_clock::time_point t);
[[nodiscard]] CORE_API Result<std::chrono::system_clock::time_point> parse_rfc3339(
    const std::string& s);

}  // namespace core::process
