"""ICMP errors and 6.1 hashing on the replay path, in one run: established
replay at N conns on the 7.1 profile (the baseline), on the 6.1 profile
(jhash, one node per conn, include/ipvs_conn61.h), and on the 7.1 profile
with a share of the rows replaced by ICMP errors about those conns
(include/ipvs_icmp.h).

    python bench/bench_icmp.py [--conns 1000000] [--pkts 2000000] [--icmp 0.01]
"""
import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np

import ipvs_py
from ipvs_py.packets import ICMP_DTYPE, PacketBatch
from bench_conn import batch


def net_with(kernel):
    net = ipvs_py.Netns(conn_tab_bits=20, seed=1, kernel=kernel)
    net.restore("-A -t 10.0.0.1:80 -s rr\n" + "".join(
        f"-a -t 10.0.0.1:80 -r 10.0.1.{i}:80 -m\n" for i in range(1, 9)))
    return net


def with_icmp(est, share, seed=3):
    """``est`` with a ``share`` of its rows turned into ICMP port
    unreachables from the client about the reply VIP -> client."""
    cols = est.columns()
    n = len(est)
    rows = np.random.default_rng(seed).random(n) < share
    icmp = np.zeros(n, ICMP_DTYPE)
    icmp["type"][rows] = 3
    icmp["code"][rows] = 3
    icmp["proto"][rows] = 6
    icmp["saddr"][rows] = cols["daddr"][rows]
    icmp["sport"][rows] = cols["dport"][rows]
    icmp["daddr"][rows] = cols["saddr"][rows]
    icmp["dport"][rows] = cols["sport"][rows]
    cols = {k: v.copy() for k, v in cols.items()}
    cols["proto"][rows] = 1
    cols["icmp"] = icmp
    return PacketBatch(cols), int(rows.sum())


def run(kernel, conns, est):
    net = net_with(kernel)
    net.replay(batch(conns, conns, 0x02))
    t0 = time.perf_counter()
    res = net.replay(est)
    dt = time.perf_counter() - t0
    fwd = int((res.codes == 1).sum())
    return len(est) / dt / 1e6, fwd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=1_000_000)
    ap.add_argument("--pkts", type=int, default=2_000_000)
    ap.add_argument("--icmp", type=float, default=0.01)
    a = ap.parse_args()
    est = batch(a.pkts, a.conns, 0x10, seed=2)
    mixed, n_icmp = with_icmp(est, a.icmp)
    base, f0 = run("7.1", a.conns, est)
    print(f"7.1 established replay: {base:.2f} M pkts/s ({f0} forwarded)")
    r61, f1 = run("6.1", a.conns, est)
    print(f"6.1 established replay: {r61:.2f} M pkts/s ({f1} forwarded), "
          f"{r61 / base:.2f}x of 7.1")
    rmix, f2 = run("7.1", a.conns, mixed)
    print(f"7.1 with {n_icmp} ICMP error rows: {rmix:.2f} M pkts/s "
          f"({f2} forwarded), {rmix / base:.2f}x of 7.1")


if __name__ == "__main__":
    main()
