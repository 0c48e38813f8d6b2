#!/usr/bin/env bash
# Build the Cython core with AddressSanitizer + UBSan in a scratch copy of
# the tree and run the test suite against it (kernel-VM tests excluded).
#
# Why a copy: an ASan-built extension can only be imported with libasan
# preloaded, so building it in place would break every later plain run.
# Why LD_PRELOAD: the Python binary itself is not instrumented.
# detect_leaks=0: CPython's own allocations at exit drown LeakSanitizer's
# report; the core's memory accounting tests check its own frees.
#
# Usage: bash scripts/asan-test.sh [pytest args...]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/ipvs-asan.XXXXXX)
trap 'rm -rf "$work"' EXIT
# Tracked and untracked-but-not-ignored files, without build products.
(cd "$src" && git ls-files -co --exclude-standard -z) |
    (cd "$src" && xargs -0 cp --parents -t "$work")
cd "$work"
IPVS_PY_SANITIZE=1 python3 setup.py -q build_ext --inplace
for so in ipvs_py/_core/*.so; do
    # grep without -q: -q exits early, ldd gets SIGPIPE and pipefail fails.
    ldd "$so" | grep libasan >/dev/null || { echo "asan: $so is not instrumented" >&2; exit 1; }
done
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
python3 -m pytest -p no:cacheprovider -m "not kernel_vm" "$@"
