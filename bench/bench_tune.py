"""lfactor tuning benchmark (issue 10): a full sweep of the 17 conn_lfactor
values over 1M new connections, timed by phase, and the cost of the
chain-walk counters.

    python bench/bench_tune.py [--conns 1000000] [--packets-per-conn 3]
    python bench/bench_tune.py --overhead [--conns 1000000]

Target: the sweep in under 2 minutes on the project machine, most of it
inside the nogil core.  "replay" is the time inside ``Netns.replay`` (the
C packet loop, resizes included, plus a few microseconds of Python glue
per slice); "lookup timing" the nogil ``time_lookups`` loops; the rest is
Python: namespace setup, reading counters and the histogram walk.
"""
import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # idle BLAS threads spin
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ipvs_py import workload  # noqa: E402
from ipvs_py.tune import settings_for, sweep  # noqa: E402
from ipvs_py.tune.cli import EXAMPLE_RULES  # noqa: E402
from ipvs_py.tune.measure import new_netns, Setting  # noqa: E402

VIPS = (("192.0.2.10", 80), ("192.0.2.10", 443))


def full_sweep(a):
    t0 = time.perf_counter()
    batch = workload.new_connections(a.conns, packets_per_conn=a.ppc,
                                     rate=1e6, vips=VIPS, seed=1)
    gen = time.perf_counter() - t0
    t1 = time.perf_counter()
    c1 = time.process_time()
    rows = sweep(batch, EXAMPLE_RULES.read_text(), settings_for(),
                 chunks=40, timing_rows=200_000, jobs=a.jobs)
    total = time.perf_counter() - t1
    cpu = time.process_time() - c1
    replay = sum(r.replay_s for r in rows)
    timing = sum(r.timing_s for r in rows)
    print(f"workload: {a.conns:,} conns x {a.ppc} packets = {len(batch):,} "
          f"rows, generated in {gen:.1f} s")
    print(f"{'lfactor':>7} {'buckets':>9} {'walk':>7} {'p99':>5} {'ns':>6} "
          f"{'replay s':>9} {'Mpkt/s':>7}")
    for r in rows:
        print(f"{r.lfactor:>+7d} {r.buckets:>9} {r.walk_mean:>7.2f} "
              f"{r.walk_p99:>5} {r.lookup_ns:>6.0f} {r.replay_s:>9.2f} "
              f"{len(batch) / r.replay_s / 1e6:>7.2f}")
    print(f"sweep of {len(rows)} settings, {a.jobs} at a time: {total:.1f} s "
          f"wall (target < 120 s), {cpu:.1f} s CPU; replay {replay:.1f} s "
          f"and lookup timing {timing:.1f} s (summed over threads): "
          f"{100 * (replay + timing) / (total * a.jobs):.0f}% of the "
          f"sweep's thread time inside the nogil core")


def overhead(a):
    """The walk counters' cost: after one replay of the workload at
    lfactor 0, alternate rounds of the same 100k random hn0 lookups
    (ConnEngine.time_lookups, which goes through iht_lookup) with the
    counters off and on, 30 rounds each; the fastest round of each side
    is the one least disturbed by the rest of the machine."""
    import numpy as np
    batch = workload.new_connections(a.conns, packets_per_conn=a.ppc,
                                     rate=1e6, vips=VIPS, seed=1)
    net = new_netns(EXAMPLE_RULES.read_text(), Setting(0, 20))
    net.replay(batch)
    e = net._path().e
    rows = np.random.default_rng(2).integers(0, len(batch), 100_000,
                                             dtype=np.int64)
    best = {True: float("inf"), False: float("inf")}
    for i in range(60):
        on = bool(i % 2)
        e.count_walks(on)
        best[on] = min(best[on], e.time_lookups(batch, rows)[1] / len(rows))
    e.count_walks(False)
    print(f"hn0 lookups after {len(batch):,} rows at lfactor 0: counters "
          f"off {best[False]:.1f} ns, on {best[True]:.1f} ns per lookup, "
          f"ratio on/off {best[True] / best[False]:.3f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=1_000_000)
    ap.add_argument("--packets-per-conn", dest="ppc", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1,
                    help="settings replayed at once (threads, nogil)")
    ap.add_argument("--overhead", action="store_true",
                    help="measure the walk counters' cost instead")
    a = ap.parse_args()
    (overhead if a.overhead else full_sweep)(a)


if __name__ == "__main__":
    main()
