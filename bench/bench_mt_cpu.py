"""CPU time of the multi-core replay against the single-threaded replay
(issue 8), on bench_multicore.py's traces.

    python bench/bench_mt_cpu.py [--flows 200000] [--pkts 2000000] [--reps 7]

CPU seconds (time.process_time: every thread of the process, kernel time
included) move less with the shared machine's load than wall time, so
they show what the machinery costs: 1 worker against replay() on
established flows, and replay() / 1 worker / 2 workers on new conns.
Best of --reps, the modes interleaved rep by rep.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_multicore as bm                       # noqa: E402


def cpu_of(fn):
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flows", type=int, default=200_000)
    ap.add_argument("--pkts", type=int, default=2_000_000)
    ap.add_argument("--reps", type=int, default=7)
    a = ap.parse_args()
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    est = bm.established(a.flows, a.pkts, 7)
    opening = bm.syns(a.flows, 8)
    net = bm.make_net(0)
    net.replay(opening)
    net.replay(est, workers=1)                     # warm both paths up
    net.replay(est)
    best = {}
    for _ in range(a.reps):
        for label, workers in (("replay()", None), ("1 worker", 1)):
            r = cpu_of(lambda: net.replay(est, workers=workers))
            best[label] = min(best.get(label, r), r)
    print(f"{len(est)} established ACKs, CPU ms (wall ms): " + ", ".join(
        f"{k} {v[0] * 1e3:.0f} ({v[1] * 1e3:.0f})" for k, v in best.items())
        + f"; 1 worker / replay() {best['1 worker'][0] / best['replay()'][0]:.2f}")
    best = {}
    for _ in range(a.reps):
        for label, workers in (("replay()", None), ("1 worker", 1),
                               ("2 workers", 2)):
            fresh = bm.make_net(0)
            r = cpu_of(lambda: fresh.replay(opening, workers=workers))
            best[label] = min(best.get(label, r), r)
    print(f"{len(opening)} SYNs (fresh net), CPU ms (wall ms): " + ", ".join(
        f"{k} {v[0] * 1e3:.0f} ({v[1] * 1e3:.0f})" for k, v in best.items()))
    print("load average after:", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
