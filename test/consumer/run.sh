#!/usr/bin/env bash
# Builds and runs test/consumer, a separate meson project that pulls core-process in as a
# subproject with `dependency('core-process', fallback: ['core-process', 'core_process_dep'])`.
# The repository is linked in as subprojects/core-process of a fresh temp dir (meson follows the
# symlink; the repository's build dirs are never read), so this checks the tree as committed
# plus local edits. Fails if setup, build or the program fails. Usage: run.sh [c++ compiler].
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/core-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT

cp "$here/meson.build" "$here/main.cpp" "$work/"
mkdir "$work/subprojects"
ln -s "$root" "$work/subprojects/core-process"

[ $# -gt 0 ] && [ -n "$1" ] && export CXX="$1"
# --force-fallback-for: use the subproject even if a core-process.pc is installed system-wide.
# werror for the consumer and for core-process built as a subproject (as CI builds it);
# buildtype plain (no -O, no -g): the quickest compile, this test checks wiring, not speed.
echo "== meson setup (consumer in $work)"
meson setup "$work/build" "$work" --force-fallback-for=core-process --buildtype=plain \
    -Dwerror=true -Dcore-process:werror=true
echo "== ninja"
ninja -C "$work/build"
# As a subproject, core-process must not build its tests or tools.
if ls "$work/build/subprojects/core-process/test" "$work/build/subprojects/core-process/tools" \
    >/dev/null 2>&1; then
    echo "consumer: core-process built its tests or tools as a subproject" >&2
    exit 1
fi
echo "== run"
"$work/build/consumer"
