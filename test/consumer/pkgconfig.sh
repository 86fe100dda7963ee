#!/usr/bin/env bash
# Proves the installed core-process.pc is usable: `meson install --destdir` of the build into a
# temp dir, then compile, link and run a tiny program with nothing but
# `pkg-config --cflags --libs core-process` against that staged install. The .pc names the
# final prefix (e.g. /usr/local); PKG_CONFIG_SYSROOT_DIR maps it into the staging dir.
# Usage: pkgconfig.sh BUILD_DIR [CXX [SANITIZE]]   (SANITIZE as meson's b_sanitize, or none)
set -euo pipefail
build=${1:?usage: pkgconfig.sh BUILD_DIR [CXX [SANITIZE]]}
cxx=${2:-c++}
sanitize=${3:-none}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/core-pkgconfig.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest=$work/stage

fail() { echo "pkgconfig: $*" >&2; exit 1; }

echo "== meson install --destdir $dest"
# --no-rebuild: meson test already built everything; a ninja run from inside a test would race.
meson install -C "$build" --no-rebuild --quiet --destdir "$dest" >"$work/install.log" 2>&1 ||
    { cat "$work/install.log" >&2; fail "meson install failed"; }

pc=$(find "$dest" -name core-process.pc -print -quit)
[ -n "$pc" ] || fail "no core-process.pc was installed"
echo "== $pc"
cat "$pc"

# The .pc must not point into the source or build tree.
src_root=$(cd "$here/../.." && pwd)
if grep -Fq -e "$src_root" -e "$(cd "$build" && pwd)" "$pc"; then
    fail "core-process.pc refers to the source or build tree"
fi

export PKG_CONFIG_PATH="$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PKG_CONFIG_SYSROOT_DIR="$dest"
pkg-config --exists --print-errors core-process || fail "pkg-config cannot resolve core-process"
flags=$(pkg-config --cflags --libs core-process)
echo "== pkg-config --cflags --libs core-process: $flags"
case "$flags" in
    *"-I$dest/"*) ;;
    *) fail "cflags do not point at the installed headers" ;;
esac
# Variables come back with the sysroot already applied.
libdir=$(pkg-config --variable=libdir core-process)
[ -e "$libdir/libcore-process.so" ] || fail "libdir $libdir holds no libcore-process.so"

cat >"$work/prog.cpp" <<'CPP'
#include <core/core.hpp>
#include <core/process/process.hpp>  // every installed header must compile on its own
#include <cstdio>
int main() {
    auto c = core::Core::create();
    if (!c) return 1;
    if ((*c)->process().exists()) return 2;
    auto r = (*c)->process().run(core::Context::background(), "echo", {"hi"});
    if (r) return 3;
    std::printf("pkg-config consumer ok: %s\n", r.error().what().c_str());
    return 0;
}
CPP

san=()
[ "$sanitize" != none ] && [ -n "$sanitize" ] && san=("-fsanitize=$sanitize")
echo "== $cxx -std=c++20 prog.cpp \$(pkg-config --cflags --libs core-process)"
# shellcheck disable=SC2086  # flags is a word list by design
$cxx -std=c++20 -Wall -Wextra -Wpedantic -Werror "${san[@]}" "$work/prog.cpp" -o "$work/prog" \
    $flags || fail "compiling against the installed .pc failed"
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$work/prog" ||
    fail "the program linked through pkg-config failed"
