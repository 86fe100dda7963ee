// detail::OptionKey<T>: one key of an options surface (an action's Options) as one line of a
// table: its name, the type it takes, and the function that reads it into T. The "unknown
// option (known: …)" check and the reading both come from the same table, so adding a key is
// one line, and a key cannot be read without being known or known without being read.
// Generic over T (RunOptions here); any surface reading core::Options can use it.
#pragma once

#include <cerrno>
#include <span>
#include <string>

#include "core/error.hpp"
#include "core/options.hpp"
#include "core/process/types.hpp"
#include "core/result.hpp"

namespace core::process::detail {

template <class T>
struct OptionKey {
    const char* name;
    const char* type;  // what it takes, in words: "string", "duration", "boolean", …
    // Reads the key into out, absent or present (absent: the default, or an Error when the key
    // is required). Null: read by the reader of an earlier key of its group (keys that exclude
    // or depend on one another, such as input / keepStdin / stdin, are read together).
    Result<void> (*read)(const std::string& op, const Options& in, T& out) = nullptr;
};

// "a, b, c": the table's names in table order.
template <class T>
std::string option_key_list(std::span<const OptionKey<T>> keys) {
    std::string list;
    for (const auto& k : keys) list += (list.empty() ? "" : ", ") + std::string(k.name);
    return list;
}

// Refuses the first key of in that the table does not know: `unknown option "timout" (known:
// …)`, EINVAL.
template <class T>
Result<void> refuse_unknown_options(const std::string& op, const Options& in,
                                    std::span<const OptionKey<T>> keys) {
    for (const auto& [key, _] : in.entries()) {
        bool known = false;
        for (const auto& k : keys) known = known || key == k.name;
        if (known) continue;
        return fail(Error(
            op, "unknown option \"" + key + "\" (known: " + option_key_list(keys) + ")", EINVAL));
    }
    return {};
}

// Runs every reader in table order into out; the first Error wins.
template <class T>
Result<void> read_options(const std::string& op, const Options& in,
                          std::span<const OptionKey<T>> keys, T& out) {
    for (const auto& k : keys) {
        if (!k.read) continue;
        if (auto r = k.read(op, in, out); !r) return fail(r.error());
    }
    return {};
}

// The table of process.run / process.exec / process.start (service_actions.cpp), in reading
// order: Service::parse_options comes from it, and so does the list its Error names.
std::span<const OptionKey<RunOptions>> run_option_keys() noexcept;

}  // namespace core::process::detail
