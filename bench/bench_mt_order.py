"""Does a replay's speed depend on what ran before it?  (issue 8)

    python bench/bench_mt_order.py [--seq 1111122222121212] [--flows 200000]
                                   [--pkts 2000000] [--stripes 8]

One warmed-up net (bench_multicore's established ACKs), then one replay
per character of --seq, in that order: 1..9 = that many workers, 0 =
the single-threaded replay().  Per run: packets/s, wall, user and system
CPU (system time here is mostly page faults: this VM zeroes fresh pages
at ~1 GB/s), minor page faults of the process, and from the run's
mt_stats the phases (setup, workers, finish; the rest of the wall time is
the Python layer) and the worker threads' CPU and page faults.

Before the fixes of docs/multicore.md ("Why one worker's rate depended
on the run before it") a 1-worker run right after another 1-worker run
page-faulted ~2k pages (20-70 ms of system time) that it did not after a
2-worker run.  Runs on an old build print what they have (no phases).
"""
import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_multicore as bm                       # noqa: E402


def one_run(net, batch, workers):
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    net.replay(batch, workers=workers)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    st = (getattr(net._path(), "mt_stats", None) or {}) if workers else {}
    return (wall, r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime,
            r1.ru_minflt - r0.ru_minflt, st)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seq", default="1111122222121212")
    ap.add_argument("--flows", type=int, default=200_000)
    ap.add_argument("--pkts", type=int, default=2_000_000)
    ap.add_argument("--stripes", type=int, default=8)
    a = ap.parse_args()
    if not a.seq or any(ch not in "0123456789" for ch in a.seq):
        ap.error(f"--seq takes digits (0 = replay(), N = N workers), "
                 f"got {a.seq!r}")
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    est = bm.established(a.flows, a.pkts, 7)
    net = bm.make_net(0, stripes=a.stripes)
    net.replay(bm.syns(a.flows, 8))
    net.replay(est, workers=2)                     # warm up, as the bench
    print(f"{'run':>3} {'Mpps':>6} {'wall':>6} {'user':>6} {'sys':>5} "
          f"{'faults':>6} | {'setup':>5} {'workers':>7} {'finish':>6} "
          f"{'python':>6} {'wkr cpu':>7} {'wkr flt':>7}   (ms)")
    for ch in a.seq:
        workers = int(ch) or None
        wall, user, sys_, flt, st = one_run(net, est, workers)
        line = (f"{ch:>3} {len(est) / wall / 1e6:>6.2f} {wall * 1e3:>6.1f} "
                f"{user * 1e3:>6.1f} {sys_ * 1e3:>5.1f} {flt:>6d} |")
        if "run_ns" in st:
            eng = st["setup_ns"] + st["run_ns"] + st["finish_ns"]
            line += (f" {st['setup_ns'] / 1e6:>5.1f} {st['run_ns'] / 1e6:>7.1f}"
                     f" {st['finish_ns'] / 1e6:>6.1f}"
                     f" {(wall * 1e9 - eng) / 1e6:>6.1f}"
                     f" {st['workers_cpu_ns'] / 1e6:>7.1f}"
                     f" {st['workers_minflt']:>7d}")
        print(line, flush=True)
    print("load average after:",
          " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
