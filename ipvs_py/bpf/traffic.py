"""Established TCP flows in the model, and the program's cost on them, for
the demo and the benchmark.

The model's TCP state machine (ip_vs_proto_tcp.c, input direction) takes
a conn from SYN_RECV to ESTABLISHED on the client's ACK, so a SYN batch
followed by an ACK batch of the same flows opens them all; a feed attached
to the Netns installs them as sessions.  Flows come from
:func:`ipvs_py.workload.generators.make_flows` (distinct clients/ports).
"""
import dataclasses
import ipaddress

import numpy as np

from ..packets import PacketBatch
from ..workload.generators import ACK, SYN, make_flows

__all__ = ["flows_to", "flow_packets", "open_flows", "flow_tuple",
           "measure_hit"]


def flows_to(n, vip, vport, seed=0):
    """``n`` distinct TCP flows from random clients to ``vip:vport``."""
    return make_flows(n, np.random.default_rng(seed), vips=((vip, vport),))


def flow_packets(flows, flags, t=0.0):
    """One client->VIP packet per flow with TCP ``flags`` at time ``t``."""
    n = len(flows)
    return PacketBatch.from_columns(
        proto=np.full(n, flows.proto, np.uint8), saddr=flows.caddr,
        sport=flows.cport, daddr=flows.vaddr, dport=flows.vport,
        tcp_flags=np.full(n, flags, np.uint8), time=t, length=100)


def open_flows(net, flows, t=0.0):
    """Replay each flow's SYN, then its ACK (10 ms later): every flow is an
    ESTABLISHED conn afterwards.  Returns the real server of each flow."""
    res = net.replay(flow_packets(flows, SYN, t))
    dests = list(res.dest)
    net.replay(flow_packets(flows, ACK, t + 0.01))
    return dests


def flow_tuple(flows, i):
    """``(client, cport, vip, vport)`` of flow ``i`` as strings/ints."""
    return (str(ipaddress.IPv4Address(int(flows.caddr[i]))),
            int(flows.cport[i]), str(ipaddress.IPv4Address(int(flows.vaddr[i]))),
            int(flows.vport[i]))


def measure_hit(fastpath, mirror, conn, frame, repeat):
    """ns per packet of the program on ``frame``, a packet of the installed
    session ``conn``, over ``repeat`` BPF_PROG_TEST_RUN runs.

    The harness reruns the program on the same skb, so a second session is
    installed for the rewritten tuple (mapping it back) and every run is a
    hit and a full rewrite; it is removed afterwards.  Raises RuntimeError
    if not every run hit.
    """
    partner = dataclasses.replace(conn, vaddr=conn.daddr, vport=conn.dport,
                                  daddr=conn.vaddr, dport=conn.vport)
    mirror.install(partner)
    try:
        before = fastpath.stats()
        ns = fastpath.run(frame, repeat)[2]
        after = fastpath.stats()
    finally:
        mirror.remove(partner)
    hits = sum(after[k] - before[k] for k in ("in", "out"))
    if hits != repeat:
        raise RuntimeError(f"only {hits} of {repeat} runs hit a session")
    return ns
