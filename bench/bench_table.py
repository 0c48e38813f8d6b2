"""Benchmark of the resizable table (issue 4).  Plain script, prints tables.

    python bench/bench_table.py              # 1M entries
    python bench/bench_table.py --big        # also 10M (needs ~6 GB, minutes)

Measures, best of ``--repeat`` runs (table, C and dict runs interleaved), in
one process so ratios compare like with like:

1. batch lookup of hits (all keys, shuffled) at lfactor -3, 0, +3:
   ns/lookup of ``Table.lookup_batch`` vs a Python ``dict`` with the same
   16-byte keys (``list(map(d.__getitem__, keys))``, its fastest form) vs a
   plain C chained table (bench/c/chained.c, same siphash, same bucket
   count, compiled by bench/_cbuild.py with setup.py's flags, via ctypes);
2. a resize of a 1M-entry table (grow 2^20 -> 2^21 and shrink back):
   total time, and the longest single lookup of a reader thread running
   meanwhile (``Table.probe_lookups``: every lookup timed, no GIL);
3. bytes per entry: all table memory, and the table's own overhead
   (buckets + node + locks) without the payload (key + value).

Timing asserts live here, never in the tests.  The machine is shared: run
it when it is quiet, and read ratios rather than absolute numbers.
"""
import argparse
import ctypes
import gc
import os
import sys
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

sys.path.insert(0, HERE)
import _cbuild  # noqa: E402
from _timing import best_of  # noqa: E402

from ipvs_py._core import table as T  # noqa: E402


def build_baseline():
    """bench/c/chained.c built with setup.py's flags (bench/_cbuild.py)."""
    lib = _cbuild.load("chained")
    lib.ct_new.restype = ctypes.c_void_p
    lib.ct_new.argtypes = [ctypes.c_uint64]
    lib.ct_insert.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                              ctypes.c_void_p, ctypes.c_uint64]
    lib.ct_lookup.restype = ctypes.c_uint64
    lib.ct_lookup.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                              ctypes.c_void_p, ctypes.c_uint64]
    lib.ct_free.argtypes = [ctypes.c_void_p]
    return lib


def make_keys(n, seed=1):
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 2**63, size=(n, 2), dtype=np.uint64)
    keys[:, 1] = np.arange(n, dtype=np.uint64)       # all distinct
    return np.ascontiguousarray(keys)


def bench_lookups(n, lib, repeat, lfactors=(-3, 0, 3)):
    keys = make_keys(n)
    values = np.arange(n, dtype=np.uint64)
    probe = np.ascontiguousarray(keys[np.random.default_rng(2).permutation(n)])
    pvals = values[np.random.default_rng(2).permutation(n)]
    max_bits = 27
    t = T.Table(8, max_bits, 0)
    t0 = time.perf_counter()
    t.insert_batch(keys, values)
    build = time.perf_counter() - t0

    kb = keys.view(np.uint8).reshape(n, 16)
    key_list = [bytes(r) for r in kb]
    d = dict(zip(key_list, values.tolist()))
    probe_list = [key_list[i] for i in
                  np.random.default_rng(2).permutation(n)]

    rows = []
    for lf in lfactors:
        t.lfactor = lf
        size = t.size
        v, f = t.lookup_batch(probe)
        assert f.all() and (v == pvals).all()
        ct = lib.ct_new(size)
        lib.ct_insert(ct, keys.ctypes.data, values.ctypes.data, n)
        out = np.empty(n, dtype=np.uint64)
        assert lib.ct_lookup(ct, probe.ctypes.data, out.ctypes.data, n) == n
        # Interleave the three so load changes on this shared machine hit
        # all of them alike; keep each one's best.
        ours = base = dict_s = float("inf")
        for _ in range(repeat):
            ours = min(ours, best_of(lambda: t.lookup_batch(probe), 1))
            base = min(base, best_of(lambda: lib.ct_lookup(
                ct, probe.ctypes.data, out.ctypes.data, n), 1))
            dict_s = min(dict_s, best_of(
                lambda: list(map(d.__getitem__, probe_list)), 1))
        lib.ct_free(ct)
        m = t.memory()
        rows.append((lf, size, ours / n * 1e9, base / n * 1e9,
                     dict_s / n * 1e9, m["total"] / n,
                     (m["buckets"] + m["locks"] + T.NODE_BYTES * n) / n))
    print(f"\n== batch lookup of hits, n={n:,} (build {build:.2f} s) ==")
    print(f"{'lfactor':>7} {'buckets':>11} {'table ns':>9} {'C ns':>7} "
          f"{'dict ns':>8} {'vs C':>6} {'vs dict':>8} {'B/entry':>8} "
          f"{'ovh B/e':>8}")
    for lf, size, ours, base, dns, bpe, ovh in rows:
        print(f"{lf:>7} {size:>11,} {ours:>9.1f} {base:>7.1f} {dns:>8.1f} "
              f"{ours / base:>6.2f} {dns / ours:>7.1f}x {bpe:>8.1f} "
              f"{ovh:>8.1f}")
    del d, key_list, probe_list, t
    gc.collect()


def _realtime(cpu):
    """Run the calling thread SCHED_FIFO on ``cpu`` (``--rt``): other
    processes of a shared box then cannot deschedule it, so a slow lookup
    is the table's doing, not the OS's.  Returns False where refused."""
    try:
        os.sched_setaffinity(0, {cpu})
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        return True
    except (OSError, AttributeError):
        return False


def bench_resize(n, repeat, rt=False):
    keys = make_keys(n, seed=3)
    t = T.Table(8, 24, 0, auto_resize=False)
    t.insert_batch(keys, np.arange(n, dtype=np.uint64))
    t.resize_to(20)
    sample = np.ascontiguousarray(keys[:: max(1, n // 100000)])
    print(f"\n== resize of a {n:,}-entry table, 1 reader thread probing "
          f"single lookups ==")
    print("(max lookup: slowest single lookup, OS preemption included; "
          "mover wait: longest\n time a lookup spent retrying because an "
          "entry was being moved)")
    print(f"{'resize':>14} {'total ms':>9} {'lookups':>9} {'misses':>7} "
          f"{'max lookup us':>13} {'>=64us':>7} {'p99.9 us':>9} "
          f"{'retries':>8} {'mover wait us':>13}")
    alone = []
    for target_bits in ([21, 20] * repeat):
        t0 = time.perf_counter()
        t.resize_to(target_bits)
        alone.append(time.perf_counter() - t0)
    print(f"{'no reader':>14} {min(alone) * 1e3:>9.1f}  (best of "
          f"{len(alone)} resizes 2^20<->2^21 with no other thread)")
    for target_bits in ([21, 20] * repeat):
        res = {}
        before = t.resizes
        t.reset_wait_stats()

        def reader():
            if rt:
                res["rt"] = _realtime(1)
            res.update(t.probe_lookups(sample, 30.0, before + 1))

        th = threading.Thread(target=reader)
        th.start()
        time.sleep(0.05)                         # reader is running
        if rt:
            old = (os.sched_getaffinity(0), os.sched_getscheduler(0),
                   os.sched_getparam(0))
            _realtime(0)
        t0 = time.perf_counter()
        t.resize_to(target_bits)
        total = time.perf_counter() - t0
        if rt:
            os.sched_setscheduler(0, old[1], old[2])
            os.sched_setaffinity(0, old[0])
        th.join()
        if rt and not res.get("rt"):
            print("(--rt refused by the kernel: timings include preemption)")
        hist = res["log2_ns"]
        cum, p999 = 0, 0
        for i, c in enumerate(hist):
            cum += c
            if cum >= res["lookups"] * 0.999:
                p999 = 2 ** (i + 1) / 1000
                break
        slow = sum(hist[16:])
        print(f"{'2^%d->2^%d' % (20 if target_bits == 21 else 21, target_bits):>14} "
              f"{total * 1e3:>9.1f} {res['lookups']:>9,} {res['misses']:>7} "
              f"{res['max_ns'] / 1000:>13.1f} {slow:>7} {p999:>9.2f} "
              f"{t.info()['read_retries']:>8} "
              f"{t.info()['max_wait_ns'] / 1000:>13.1f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--big", action="store_true", help="also 10M entries")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--n", type=int, default=1 << 20)
    ap.add_argument("--lfactors", default="-3,0,3")
    ap.add_argument("--no-resize", action="store_true")
    ap.add_argument("--rt", action="store_true",
                    help="resize bench: reader and mover SCHED_FIFO on their "
                         "own CPUs, so other processes cannot deschedule them")
    ap.add_argument("--no-lookups", action="store_true",
                    help="skip the batch lookup bench")
    args = ap.parse_args()
    lib = build_baseline()
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, "
          f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}")
    lfs = [int(x) for x in args.lfactors.split(",")]
    if not args.no_lookups:
        bench_lookups(args.n, lib, args.repeat, lfs)
    if args.big and not args.no_lookups:
        bench_lookups(10_000_000, lib, max(1, args.repeat - 1), lfs)
    if not args.no_resize:
        bench_resize(1 << 20, args.repeat, rt=args.rt)


if __name__ == "__main__":
    main()
