"""Multi-core datapath benchmark (issue 8): flow cache off/on over four
workloads at conn_lfactor -3, 0, +3, and scaling of the multi-threaded
replay from 1 to 2 workers with writer stripes vs one global lock: one
kind of packet per row (established ACKs, new conns on a growing and on
a fixed table, churn) and the four traces whole (the "mix" rows).

    python bench/bench_multicore.py [--flows 100000] [--pkts 1000000]
                                    [--part cache|scaling|all] [--reps 3]

Every ratio is taken within one run (same process, same minute): the
machine is shared, so absolute packets/s move from run to run; the load
average is printed first.  Best of --reps runs per cell.
"""
import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # idle BLAS threads spin
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

import ipvs_py
from ipvs_py import multicore
from ipvs_py._core import conntab
from ipvs_py.packets import PacketBatch
from ipvs_py.workload import generators as g

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import collector_off  # noqa: E402

VIP = "192.0.2.1"


def make_net(lfactor=0, sched="mh", stripes=8, flow_cache=0, min_load=4.0,
             admit=0.1, resize_help="auto", kernel="7.1"):
    """One service, 8 NAT dests; ``kernel="6.1"``: the fixed 2^20-bucket
    table (never resizes), else the resizable one at ``lfactor``."""
    net = ipvs_py.Netns(conn_tab_bits=20, kernel=kernel)
    if kernel != "6.1":
        net.sysctl["conn_lfactor"] = lfactor
    net.restore(f"-A -t {VIP}:80 -s {sched}\n" + "".join(
        f"-a -t {VIP}:80 -r 10.0.1.{i}:80 -m\n" for i in range(1, 9)))
    multicore.configure(net, stripes=stripes, flow_cache=flow_cache,
                        min_load=min_load, admit=admit,
                        resize_help=resize_help)
    return net


def workloads(flows, pkts):
    """The four traffic shapes of the issue, ~``pkts`` packets each."""
    span = pkts / 100_000.0                    # seconds at 100 kpps
    slow_n = flows // 5
    slow = g.long_short_mix(slow_n, 0, duration=span, long_interval=1.0,
                            seed=4)            # 1 pkt/s per slow flow
    trains = g.bursty(max(1, (pkts - len(slow)) // 16), mean_train=16,
                      rate=(pkts - len(slow)) / 16 / span, seed=5)
    return {
        "uniform": g.uniform(pkts, flows, seed=1),
        "zipf1.1": g.zipf(pkts, flows, s=1.1, seed=2),
        "bursty": g.bursty(pkts // 16, mean_train=16,
                           rate=pkts / 16 / span, seed=3),
        "trains+slow": PacketBatch.concat([trains, slow]),
    }


def keep_best(best, key, r):
    """Keep ``r`` (a tuple whose first item is a time) as ``best[key]``
    if it is the fastest so far."""
    if key not in best or r[0] < best[key][0]:
        best[key] = r


def run_cache(a):
    print(f"\n## Flow cache ({a.flows} flows, ~{a.pkts} packets; single "
          f"thread; 4 entries, admit 0.1 s)")
    print("mode: off | on = consulted only while conns > 4 x buckets "
          "(the seed's rule) | forced = always consulted")
    print(f"{'workload':12} {'lf':>3} {'conns/bkt':>9} {'off Mpps':>9} "
          f"{'on Mpps':>8} {'on hit%':>7} {'forced Mpps':>11} "
          f"{'forced hit%':>11} {'forced/off':>10}")
    for name, b in workloads(a.flows, a.pkts).items():
        for lf in (-3, 0, 3):
            modes = (("off", {}), ("on", {"flow_cache": 4}),
                     ("forced", {"flow_cache": 4, "min_load": 0.0}))

            def one(kw):
                net = make_net(lf, **kw)
                t0 = time.perf_counter()
                net.replay(b)
                dt = time.perf_counter() - t0
                e = net._path().e
                st = conntab.flow_cache_stats(e)
                look = st["hits"] + st["misses"] + st["bypassed"]
                size = e.table_info()[0]
                return dt, st["hits"] / max(1, look), e.nconns / size
            # modes interleaved rep by rep, best of reps each: the load of
            # the shared machine drifts, and this keeps it off the ratios
            cells = {}
            for _ in range(a.reps):
                for mode, kw in modes:
                    keep_best(cells, mode, one(kw))
            off, on, fo = cells["off"], cells["on"], cells["forced"]
            mpps = lambda c: len(b) / c[0] / 1e6   # noqa: E731
            print(f"{name:12} {lf:>3} {off[2]:>9.2f} {mpps(off):>9.2f} "
                  f"{mpps(on):>8.2f} {100 * on[1]:>7.1f} {mpps(fo):>11.2f} "
                  f"{100 * fo[1]:>11.1f} {off[0] / fo[0]:>10.2f}")


def established(nflows, pkts, seed):
    """ACKs of ``nflows`` established flows in random order."""
    rng = np.random.default_rng(seed)
    b = PacketBatch.empty(pkts)
    c = b._cols
    flow = rng.integers(0, nflows, pkts)
    c["proto"][:] = 6
    c["af"][:] = 2
    ip = (0xC6120000 + (flow >> 4)).astype(">u4").view(np.uint8)
    c["saddr"][:, :4] = ip.reshape(-1, 4)
    c["sport"][:] = 1024 + (flow & 15)
    c["daddr"][:, :4] = (192, 0, 2, 1)
    c["dport"][:] = 80
    c["tcp_flags"][:] = 0x10
    c["time"][:] = 1.0
    c["length"][:] = 100
    return b


def syns(nflows, seed):
    b = established(nflows, nflows, seed)
    b._cols["saddr"][:, :4] = (0xC6120000 + (np.arange(nflows) >> 4)).astype(
        ">u4").view(np.uint8).reshape(-1, 4)
    b._cols["sport"][:] = 1024 + (np.arange(nflows) & 15)
    b._cols["tcp_flags"][:] = 0x02
    b._cols["time"][:] = 0.0
    return b


def timed(net, batch, workers):
    """One replay: (wall s, process CPU s, the run's mt_stats or {}).

    With the collector out of the way (_timing.collector_off): when a
    dropped Netns still waited for the collector with its conn memory,
    the next fresh net took new pages, whose first touch (a 2 MiB huge
    page zeroed on this VM's slow path) fell inside the timed run: 1
    worker, 200,000 SYNs on a fixed table, 78-80 ms instead of 21-23 ms."""
    with collector_off():
        c0, t0 = time.process_time(), time.perf_counter()
        if isinstance(batch, multicore.RssQueues):
            net.replay_queues(batch)
        else:
            net.replay(batch, workers=workers)
        wall = time.perf_counter() - t0
    st = net._path().mt_stats if workers else {}
    return wall, time.process_time() - c0, dict(st or {})


def run_established(a, est, opening, stripes, label):
    """Established ACKs on one warmed-up net: 1 worker, 2 workers and
    replay() interleaved rep by rep, then 1 worker back to back (the
    order effect of docs/multicore.md: its rate must not depend on what
    ran before it)."""
    net = make_net(0, stripes=stripes)
    net.replay(opening)
    net.replay(est, workers=2)      # warm up: ESTABLISHED, pages touched
    best = {}
    for _ in range(a.reps):         # interleaved: the load drifts
        keep_best(best, "1w", timed(net, est, 1))
        keep_best(best, "2w", timed(net, est, 2))
        keep_best(best, "replay", timed(net, est, None))
    for _ in range(a.reps):
        keep_best(best, "1w b2b", timed(net, est, 1))
    _print_row("established ACKs", label, best, len(est))
    return best


def _print_row(workload, label, best, n):
    """One row of the scaling table from the best (wall, cpu, mt_stats)
    of each mode ("1w b2b" optional)."""
    w1, w2, rp = best["1w"], best["2w"], best["replay"]
    b2b = f"{n / best['1w b2b'][0] / 1e6:>8.2f}" if "1w b2b" in best else \
        f"{'-':>8}"
    # cpu/wall: how much of the 2-worker run both threads had a CPU;
    # rcpu: the workers' CPU on their own rows, 2 workers / 1 (what
    # sharing the engine costs per packet; the waits are left out)
    wcpu = sum(w2[2]["rows_cpu_ns"]) / max(1, sum(w1[2]["rows_cpu_ns"]))
    print(f"{workload:18} {label:>11} {n / w1[0] / 1e6:>8.2f} {b2b} "
          f"{n / w2[0] / 1e6:>8.2f} {n / rp[0] / 1e6:>8.2f} "
          f"{w1[0] / w2[0]:>7.2f} {rp[0] / w2[0]:>7.2f} "
          f"{w2[1] / w2[0]:>8.2f} {wcpu:>6.2f}")


def _fresh_runs(a, batch, new_net, workload, label):
    """``batch`` on a net from ``new_net()`` each time, 1 and 2 workers and
    replay() interleaved rep by rep; prints the row, returns the best.
    Also 2 workers fed the trace already split into two RSS queues
    (multicore.rss_queues, split outside the timing as a NIC splits it):
    printed as a second row against the same 1-worker and replay() runs."""
    best = {}
    queues = multicore.rss_queues(new_net(), batch, 2)
    for _ in range(a.reps):
        for key, workers, trace in (("1w", 1, batch), ("2w", 2, batch),
                                    ("2q", 2, queues),
                                    ("replay", None, batch)):
            keep_best(best, key, timed(new_net(), trace, workers))
    _print_row(workload, label, best, len(batch))
    _print_row("  2 RSS queues", label, dict(best, **{"2w": best["2q"]}),
               len(batch))
    return best


def run_new_conns(a, opening, stripes, label):
    """New conns (SYN) on a fresh net each time: the table grows from 2^8
    buckets, so the resize thread's rebuilds share the 2 CPUs."""
    return _fresh_runs(a, opening, lambda: make_net(0, stripes=stripes),
                       "new conns (SYN)", label)


def run_new_conns_fixed(a, opening, stripes, label):
    """New conns on a fresh kernel="6.1" net: one fixed table, no
    rebuilds, so the row shows what inserts alone cost two workers."""
    return _fresh_runs(a, opening,
                       lambda: make_net(0, stripes=stripes, kernel="6.1"),
                       "new, fixed table", label)


def run_mix(a, mixes, stripes, label):
    """The flow-cache part's four traffic shapes (new conns and their
    later packets mixed, as a trace holds them) on a fresh kernel="6.1"
    net each time: what the scaling is for whole traces rather than for
    one kind of packet, without the rebuilds of a growing table."""
    for name, batch in mixes.items():
        _fresh_runs(a, batch,
                    lambda: make_net(0, stripes=stripes, kernel="6.1"),
                    f"mix {name}", label)


def run_churn(a, opening, stripes, label):
    """New conns in steady state: a net holding ``opening``'s conns (SYN
    sent at t=0, so they expire at 60 s) gets as many SYNs of new clients
    over 61..62 s; every new conn replaces an expiring one, the count
    stays put and the table never resizes.  This isolates what inserts
    and deletes cost two workers from the resize thread's share of the
    CPUs (see docs/multicore.md)."""
    n = len(opening)
    fresh = syns(n, 9)
    fresh._cols["saddr"][:, 0] = 100             # clients not yet seen
    fresh._cols["time"][:] = 61.0 + np.arange(n) / n

    def holding_opening():
        net = make_net(0, stripes=stripes)
        net.replay(opening)
        return net
    best = _fresh_runs(a, fresh, holding_opening, "churn (SYN+expiry)", label)
    st = best["2w"][2]
    print(f"{'':18} {'':>11} 2w: setup {st['setup_ns'] / 1e6:.1f} ms "
          f"(due timers handed out), workers {st['run_ns'] / 1e6:.1f} ms, "
          f"resizes {st['bg_resizes']}")


def run_scaling(a):
    print(f"\n## Scaling 1 -> 2 workers (mh, NAT, lfactor 0; {a.flows} "
          f"flows, {a.pkts} ACKs; best of {a.reps})")
    print("1w: 1 worker interleaved with the other modes; 1w b2b: 1 worker "
          "run back to back; x1w / xrep: 2-worker speed-up over 1 worker "
          "(interleaved) / over replay(); cpu/wall: CPUs the 2-worker run "
          "had; rcpu: workers' CPU on their rows, 2 workers / 1")
    print(f"{'workload':18} {'locks':>11} {'1w Mpps':>8} {'1w b2b':>8} "
          f"{'2w Mpps':>8} {'replay':>8} {'x1w':>7} {'xrep':>7} "
          f"{'cpu/wall':>8} {'rcpu':>6}")
    est = established(a.flows, a.pkts, 7)
    opening = syns(a.flows, 8)
    rows = a.only.split(",") if a.only else ROWS
    mixes = workloads(a.flows, a.pkts) if "mix" in rows else {}
    for label, stripes in (("stripes 8", 8), ("global lock", 1)):
        best = (run_established(a, est, opening, stripes, label)
                if "established" in rows else None)
        if "new" in rows:
            run_new_conns(a, opening, stripes, label)
        if "new-fixed" in rows:
            run_new_conns_fixed(a, opening, stripes, label)
        if "churn" in rows:
            run_churn(a, opening, stripes, label)
        if "mix" in rows:
            run_mix(a, mixes, stripes, label)
        if best:
            _print_phases(best["2w"])


def _print_phases(w2):
    """Where the 2-worker established run's wall time went."""
    st = w2[2]
    print(f"{'':18} {'':>11} 2w phases, ms: wall {w2[0] * 1e3:.1f} = "
          f"setup {st['setup_ns'] / 1e6:.1f} + workers "
          f"{st['run_ns'] / 1e6:.1f} + finish "
          f"{st['finish_ns'] / 1e6:.1f} + Python "
          f"{(w2[0] * 1e9 - st['setup_ns'] - st['run_ns'] - st['finish_ns']) / 1e6:.1f}"
          f"; on their rows, wall "
          + "/".join(f"{x / 1e6:.1f}" for x in st["rows_ns"])
          + ", CPU "
          + "/".join(f"{x / 1e6:.1f}" for x in st["rows_cpu_ns"]))


def run_resize_help(a):
    """New conns on a fresh (growing) net, 1 and 2 workers, with the
    workers moving chunks of the rebuilds (resize_help) on and off,
    interleaved rep by rep."""
    print(f"\n## Workers helping rebuilds (new conns, {a.flows} SYNs on a "
          f"fresh net, stripes 8; best of {a.reps})")
    opening = syns(a.flows, 8)
    modes = [(w, h) for w in (1, 2) for h in (False, True)]
    best = {}
    for _ in range(a.reps):
        for workers, help_ in modes:
            keep_best(best, (workers, help_),
                      timed(make_net(0, resize_help=help_), opening,
                            workers))
    print(f"{'workers':>7} {'resize_help':>11} {'Mpps':>6} {'cpu/wall':>8} "
          f"{'helped buckets':>14}")
    for workers, help_ in modes:
        wall, cpu, st = best[workers, help_]
        print(f"{workers:>7} {str(help_):>11} {a.flows / wall / 1e6:>6.2f} "
              f"{cpu / wall:>8.2f} {st['helped_buckets']:>14}")


def run_ceiling(a):
    """1 -> 2 threads of plain C loops that write nothing in common
    (bench/c/scaling_ceiling.c): the most this machine gives the scaling
    rows above."""
    import ctypes
    from _cbuild import load
    lib = load("scaling_ceiling")
    lib.ceiling_run.restype = ctypes.c_double
    lib.ceiling_run.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_size_t)
    print(f"\n## Ceiling: plain C loops, nothing written in common (best of "
          f"{a.reps})")
    print(f"{'loop':34} {'1 thread s':>10} {'2 threads s':>11} "
          f"{'speed-up':>8}")
    # "trace": the replay's access pattern without its packet path (one
    # trace's columns shared, rows split by client hash, a random RMW a
    # row): the two threads share the n rows, in the others each does n
    for mode, name, n in ((0, "compute (xorshift)", 200_000_000),
                          (1, "memory (random RMW, 64 MiB each)",
                           20_000_000),
                          (2, "trace columns split by client", 4_000_000)):
        t1 = t2 = float("inf")
        for _ in range(a.reps):         # interleaved: the load drifts
            t1 = min(t1, lib.ceiling_run(mode, 1, n))
            t2 = min(t2, lib.ceiling_run(mode, 2, n))
        if min(t1, t2) < 0:
            raise RuntimeError("scaling_ceiling: no memory or no thread")
        share = 1 if mode == 2 else 2       # work of 2 threads / of 1
        print(f"{name:34} {t1:>10.3f} {t2:>11.3f} {share * t1 / t2:>8.2f}")


ROWS = ("established", "new", "new-fixed", "churn", "mix")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flows", type=int, default=100_000)
    ap.add_argument("--pkts", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--part", choices=("cache", "scaling", "resize-help",
                                       "ceiling", "all"), default="all")
    ap.add_argument("--only", metavar="ROWS",
                    help="scaling rows to run, comma-separated, of "
                         + ", ".join(ROWS) + " (default: all)")
    a = ap.parse_args()
    bad = set(a.only.split(",")) - set(ROWS) if a.only else set()
    if bad:
        ap.error(f"--only: unknown row(s) {', '.join(sorted(bad))}; "
                 f"choose from {', '.join(ROWS)}")
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()),
          f"({os.cpu_count()} CPUs)")
    if a.part in ("scaling", "all"):
        run_scaling(a)
    if a.part in ("resize-help", "all"):
        run_resize_help(a)
    if a.part in ("ceiling", "all"):
        run_ceiling(a)
    if a.part in ("cache", "all"):
        run_cache(a)
    print("load average after:", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
