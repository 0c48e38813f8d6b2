"""Packet-path cost with everything in cache, for comparing two checkouts
(e.g. before and after a change to the table core such as the detached
walk counters of iht_walkstats.h):

    python bench/replay_cost.py /path/to/checkout-a
    python bench/replay_cost.py /path/to/checkout-b

Each run builds 10,000 NAT conns at conn_lfactor 0, then replays 100,000
ACKs to random ones of them 40 times and prints the fastest round in ns
per packet.  Alternate the two checkouts a few times: the machine is
shared, the fastest rounds are the comparable ones.
"""
import os
import sys
import time

tree = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                       os.path.dirname(os.path.dirname(__file__)))
sys.path.insert(0, tree)

import numpy as np  # noqa: E402

import ipvs_py  # noqa: E402
from ipvs_py import workload  # noqa: E402
from ipvs_py.packets import PacketBatch  # noqa: E402

rules = open(os.path.join(tree, "ipvs_py/examples/lb.rules")).read()
syn = workload.new_connections(10_000, packets_per_conn=1, rate=1e6,
                               vips=(("192.0.2.10", 80),), seed=1)
net = ipvs_py.Netns(conn_tab_bits=20)
net.sysctl["conn_lfactor"] = 0
net.restore(rules)
net.replay(syn)
idx = np.random.default_rng(1).integers(0, len(syn), 100_000)
cols = syn.take(idx).columns()
cols["tcp_flags"] = np.full(len(idx), 0x10, np.uint8)        # ACK
cols["time"] = np.full(len(idx), float(syn.time[-1]))
ack = PacketBatch(cols)
best = float("inf")
for _ in range(40):
    t0 = time.perf_counter()
    net.replay(ack)
    best = min(best, time.perf_counter() - t0)
print(f"{ipvs_py.__file__}: {best / len(ack) * 1e9:.1f} ns/packet")
