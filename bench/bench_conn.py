"""Conn path benchmark (issue 6): established-flow replay, new conns/s
(rr, mh), bytes per conn, against a Python dict model in the same run.

    python bench/bench_conn.py [--conns 1000000] [--pkts 2000000]
"""
import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # idle BLAS threads spin
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

import ipvs_py
from ipvs_py._core.conntab import CONN_BYTES
from ipvs_py.packets import PacketBatch


def batch(n, nflows, flags, seed=1, udp=False):
    rng = np.random.default_rng(seed)
    b = PacketBatch.empty(n)
    c = b._cols
    flow = rng.integers(0, nflows, n) if n != nflows else np.arange(n)
    c["proto"][:] = 17 if udp else 6
    c["af"][:] = 2
    ip = (0x0B000000 + (flow >> 4)).astype(">u4").view(np.uint8).reshape(-1, 4)
    c["saddr"][:, :4] = ip
    c["sport"][:] = 1024 + (flow & 15)
    c["daddr"][:, :4] = (10, 0, 0, 1)
    c["dport"][:] = 80
    c["tcp_flags"][:] = flags
    c["time"][:] = 0.0
    c["length"][:] = 100
    return b


def net_with(sched):
    net = ipvs_py.Netns(conn_tab_bits=20, seed=1)
    net.restore(f"-A -t 10.0.0.1:80 -s {sched}\n" + "".join(
        f"-a -t 10.0.0.1:80 -r 10.0.1.{i}:80 -m\n" for i in range(1, 9)))
    return net


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=1_000_000)
    ap.add_argument("--pkts", type=int, default=2_000_000)
    a = ap.parse_args()
    for sched in ("rr", "mh"):
        net = net_with(sched)
        syn = batch(a.conns, a.conns, 0x02)
        t0 = time.perf_counter()
        net.replay(syn)
        dt = time.perf_counter() - t0
        print(f"new conns {sched}: {a.conns / dt / 1e6:.2f} M/s "
              f"({net.conn_count} conns)")
    est = batch(a.pkts, a.conns, 0x10, seed=2)
    t0 = time.perf_counter()
    net.replay(est)
    dt = time.perf_counter() - t0
    print(f"established replay at {net.conn_count} conns: "
          f"{a.pkts / dt / 1e6:.2f} M pkts/s")
    m, n = net._conn.e.memory(), max(net.conn_count, 1)
    print(f"bytes per conn: {m['total'] / n:.1f} all-in = "
          f"{m['conn_slots'] / n:.1f} slots ({CONN_BYTES} a conn) + "
          f"{m['timer_heap'] / n:.1f} timer heap + "
          f"{m['buckets'] / n:.1f} buckets + {m['locks'] / n:.2f} locks")
    # Python dict model: lookup + state + timer write per packet
    pkeys = [(6, bytes(est.saddr[i, :4]), int(est.sport[i]), 80)
            for i in range(min(a.pkts, 500_000))]
    d = {k: [1, 0] for k in set(pkeys)}
    t0 = time.perf_counter()
    for k in pkeys:
        c = d.get(k)
        if c is not None:
            c[0] = 1
            c[1] = 900
    dt = time.perf_counter() - t0
    print(f"python dict model: {len(pkeys) / dt / 1e6:.2f} M pkts/s")
    # plain C table loop: the core table (issue 4) with 16-byte keys, the
    # same flows (hn0 only, no state/timers/stats): batch lookup
    from ipvs_py._core.table import Table
    t = Table(8, 20, -4, key_size=16, profile="conn")
    uniq = np.zeros((a.conns, 16), np.uint8)
    fl = np.arange(a.conns)
    uniq[:, :4] = (0x0B000000 + (fl >> 4)).astype(">u4").view(
        np.uint8).reshape(-1, 4)
    uniq[:, 4:6] = (1024 + (fl & 15)).astype(">u2").view(np.uint8).reshape(-1, 2)
    t.insert_batch(uniq, fl)
    keys = np.ascontiguousarray(uniq[np.random.default_rng(2).integers(
        0, a.conns, a.pkts)])
    t0 = time.perf_counter()
    t.lookup_batch(keys)
    dt = time.perf_counter() - t0
    print(f"plain C table loop (batch lookup, same flows): "
          f"{a.pkts / dt / 1e6:.2f} M lookups/s")


if __name__ == "__main__":
    main()
