"""Benchmark: ns per hash, batch API vs plain C loop vs Python-level calls.

Run:  python bench/bench_hashing.py [--keys N]

For each kernel hash used by IPVS it prints, measured in one run (best of
``--repeat``): the plain C loop over the same inline function compiled with
the same flags; the Cython batch API; one call through the Python wrapper;
and, where they apply, the ``siphash24`` package and Python's ``hash()`` of
a tuple.  The issue's target is batch/C <= 1.3.
"""
import argparse
import ctypes
import os
import sys

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ipvs_py import hashing  # noqa: E402
import _cbuild  # noqa: E402
from _timing import best_of  # noqa: E402

P = ctypes.c_void_p


def ptr(a):
    return a.ctypes.data_as(P)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=2_000_000)
    ap.add_argument("--scalar-keys", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args(argv)
    n, m, r = args.keys, args.scalar_keys, args.repeat

    lib = _cbuild.load("hashloop")
    rng = np.random.default_rng(42)
    key = bytes(range(16))
    kwords = np.frombuffer(key, dtype=np.uint64).copy()
    w64_2 = rng.integers(0, 2**64 - 1, size=(n, 2), dtype=np.uint64)
    w64_4 = rng.integers(0, 2**64 - 1, size=(n, 4), dtype=np.uint64)
    w32_3 = rng.integers(0, 2**32 - 1, size=(n, 3), dtype=np.uint32)
    w32_1 = np.ascontiguousarray(w32_3[:, 0])
    o64 = np.empty(n, np.uint64)
    o32 = np.empty(n, np.uint32)
    s64 = [tuple(map(int, row)) for row in w64_2[:m]]
    s32 = [tuple(map(int, row)) for row in w32_3[:m]]

    import siphash24
    raw16 = [w64_2[i].tobytes() for i in range(m)]

    rows = []

    def add(name, c_loop, batch, scalar, extra=None):
        c = best_of(c_loop, r) / n * 1e9
        b = best_of(batch, r) / n * 1e9
        s = best_of(scalar, max(1, r // 2)) / m * 1e9
        rows.append((name, c, b, s, extra))

    add("siphash_2u64",
        lambda: lib.loop_siphash_2u64(ptr(w64_2), ctypes.c_size_t(n), ptr(kwords), ptr(o64)),
        lambda: hashing.siphash_u64_batch(w64_2, key, out=o64),
        lambda: [hashing.siphash_2u64(a, b, key) for a, b in s64],
        {"siphash24 pkg": best_of(lambda: [siphash24.siphash24(x, key=key).intdigest()
                                        for x in raw16], 3) / m * 1e9,
         "hash(tuple)": best_of(lambda: [hash(t) for t in s64], 3) / m * 1e9})
    add("siphash_4u64",
        lambda: lib.loop_siphash_4u64(ptr(w64_4), ctypes.c_size_t(n), ptr(kwords), ptr(o64)),
        lambda: hashing.siphash_u64_batch(w64_4, key, out=o64),
        lambda: [hashing.siphash_4u64(a, b, a, b, key) for a, b in s64])
    add("hsiphash_3u32",
        lambda: lib.loop_hsiphash_3u32(ptr(w32_3), ctypes.c_size_t(n), ptr(kwords), ptr(o32)),
        lambda: hashing.hsiphash_u32_batch(w32_3, key, out=o32),
        lambda: [hashing.hsiphash_3u32(a, b, c, key) for a, b, c in s32])
    add("jhash_3words",
        lambda: lib.loop_jhash_3words(ptr(w32_3), ctypes.c_size_t(n), ctypes.c_uint32(7), ptr(o32)),
        lambda: hashing.jhash_words_batch(w32_3, 7, out=o32),
        lambda: [hashing.jhash_3words(a, b, c, 7) for a, b, c in s32],
        {"hash(tuple)": best_of(lambda: [hash(t) for t in s32], 3) / m * 1e9})
    add("hash_32",
        lambda: lib.loop_hash_32(ptr(w32_1), ctypes.c_size_t(n), ctypes.c_uint(8), ptr(o32)),
        lambda: hashing.hash_32_batch(w32_1, 8, out=o32),
        lambda: [hashing.hash_32(a, 8) for a, _, _ in s32])

    t = Table(title=f"ns per hash ({n:,} keys batch, {m:,} scalar calls, best of {r})")
    for col in ("function", "plain C loop", "batch API", "batch / C",
                "Python wrapper", "others"):
        t.add_column(col, justify="left" if col in ("function", "others") else "right",
                     no_wrap=col == "function")
    for name, c, b, s, extra in rows:
        others = ", ".join(f"{k} {v:.0f}" for k, v in (extra or {}).items())
        t.add_row(name, f"{c:.2f}", f"{b:.2f}", f"{b / c:.2f}x", f"{s:.0f}", others)
    Console().print(t)
    worst = max(rows, key=lambda row: row[2] / row[1])
    print(f"worst batch/C ratio: {worst[2] / worst[1]:.2f} ({worst[0]}; "
          f"target <= 1.3)")


if __name__ == "__main__":
    main()
