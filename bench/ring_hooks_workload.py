"""The workload behind the event-ring cost figures in docs/bpf.md.

Wall clock on a shared 2-core machine cannot see a few instructions per
connection, so the hooks of include/ipvs_events.h are costed by counting
instructions under callgrind, inside ConnEngine.replay/run_timers only:

    PYTHONPATH=TREE valgrind --tool=callgrind \\
        '--toggle-collect=*ConnEngine_*replay' \\
        '--toggle-collect=*ConnEngine_*run_timers' \\
        python bench/ring_hooks_workload.py {off|on} 20000

with TREE a built checkout of main (baseline, no hooks) or of this branch
(ring off: engine->events is NULL; ring on: every event recorded).  It
uses only APIs that main has (Netns, PacketBatch, make_flows, replay), and
does not add its own tree to sys.path, so one copy runs against both.

The workload: n new TCP conns (SYN), their ACK (-> ESTABLISHED: one UP
event each with the ring on), another ACK, then expiry by advance() (one
DOWN event each).
"""
import sys

import numpy as np

import ipvs_py
from ipvs_py.packets import PacketBatch
from ipvs_py.workload.generators import ACK, SYN, make_flows

VIP = "10.200.0.1"


def main(mode, n):
    flows = make_flows(n, np.random.default_rng(2), vips=((VIP, 80),))

    def packets(flags, t):
        return PacketBatch.from_columns(
            proto=np.full(n, 6, np.uint8), saddr=flows.caddr,
            sport=flows.cport, daddr=flows.vaddr, dport=flows.vport,
            tcp_flags=np.full(n, flags, np.uint8), time=t, length=100)

    net = ipvs_py.Netns(conn_tab_bits=16, seed=1)
    net.restore(f"-A -t {VIP}:80 -s rr\n" + "".join(
        f"-a -t {VIP}:80 -r 10.128.0.{k}:80 -m\n" for k in range(2, 6)))
    e = net._path().e
    if mode == "on":
        e.events_on(2 * n)
    for flags, t in ((SYN, 0.0), (ACK, 0.01), (ACK, 0.02)):
        net.replay(packets(flags, t))
    net.advance(1000)
    if mode == "on":
        print(len(e.events_drain()[0]) // 64, "events")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("off", "on"):
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]))
