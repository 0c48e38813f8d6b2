"""Benchmark of the BPF session fast path (issue 11).

    sudo python bench/bench_bpf.py [--sessions 100000] [--repeat 1000000] [--json]

Measures, on this machine's kernel:

* ns per packet of the tc program, from BPF_PROG_TEST_RUN with ``repeat``
  (the kernel's own average per run), with ``--sessions`` sessions in the
  maps: forward hit (TCP/UDP, IPv4/IPv6), reply hit, and a miss.  The
  harness reruns the program on the same skb, so each hit case installs a
  second session mapping the rewritten tuple back: every run is a hit and a
  full rewrite.
* session install rate: one connection at a time (``on_established``:
  2-4 bpf(2) calls), batched (``install_many``), and a full ``resync``.
* fed from the model (n established conns from replayed handshakes, the
  sessions installed by ``SessionMirror.attach(net)``): ns per packet of
  the model's batch path (``Netns.replay`` of established packets of those
  sessions) next to the program on one of them; the feed's install rate
  batched (the drain after one replay of n ACKs) and one at a time
  (``packet()`` calls that complete a handshake, with and without a feed).
  The event ring's own cost is counted in instructions instead
  (bench/ring_hooks_workload.py): wall clock here cannot resolve it.
"""
import argparse
import dataclasses
import ipaddress
import json
import os
import sys
import time
import timeit

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

import ipvs_py  # noqa: E402
from ipvs_py.bpf.traffic import (flow_packets, flow_tuple,  # noqa: E402
                                 flows_to, measure_hit)
from ipvs_py.workload.generators import ACK, SYN, make_flows  # noqa: E402
from ipvs_py.bpf import (BpfPermissionError, BpfUnsupportedError,  # noqa: E402
                         ConnRecord, FastPath, SessionMirror)
from ipvs_py.bpf import packet as pkt  # noqa: E402

VIP, VIP6 = "10.200.0.1", "fd00:200::1"


def conns(n, family=4):
    """n established masq connections from distinct clients."""
    out = []
    for i in range(n):
        if family == 4:
            c = str(ipaddress.IPv4Address("10.64.0.0") + i // 50000)
            rs = f"10.128.0.{2 + i % 200}"
            out.append(ConnRecord("tcp", c, 1024 + i % 50000, VIP, 80, rs, 8080))
        else:
            c = str(ipaddress.IPv6Address("fd00:64::") + i)
            out.append(ConnRecord("tcp", c, 1024 + i % 50000, VIP6, 80,
                                  "fd00:128::2", 8080))
    return out


def ns_per_packet(fp, mirror, repeat):
    """Program cost per packet, hit and miss cases."""
    cases = {}
    for name, proto, fam in (("fwd_tcp4", "tcp", 4), ("fwd_udp4", "udp", 4),
                             ("fwd_tcp6", "tcp", 6), ("reply_tcp4", "tcp", 4)):
        c, v, d = ("10.1.0.2", "10.9.0.9", "10.2.0.2") if fam == 4 else (
            "fd00:1::2", "fd00:9::9", "fd00:2::2")
        pn = pkt.TCP if proto == "tcp" else pkt.UDP
        a = ConnRecord(proto, c, 40000, v, 80, d, 8080, state="ESTABLISHED")
        mirror.install(a)
        if name.startswith("reply"):
            frame = pkt.frame(pn, d, 8080, c, 40000, b"x" * 64)
        else:
            frame = pkt.frame(pn, c, 40000, v, 80, b"x" * 64)
        cases[name] = measure_hit(fp, mirror, a, frame, repeat)
        mirror.remove(a)
    miss = pkt.frame(pkt.TCP, "10.1.0.3", 40000, "10.9.0.9", 80, b"x" * 64)
    cases["miss_tcp4"] = fp.run(miss, repeat)[2]
    # Floor: the harness plus the program's protocol check and counter.
    arp = pkt.MAC_B + pkt.MAC_A + b"\x08\x06" + bytes(28)
    cases["non_ip"] = fp.run(arp, repeat)[2]
    return cases


def install_rates(n):
    """Sessions per second for single, batched and resync installs."""
    recs = conns(n)
    out = {}
    with FastPath(max_sessions=n) as fp:
        m = SessionMirror(fp)
        t0 = time.perf_counter()
        for r in recs:
            m.on_established(r)
        out["single_per_s"] = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for r in recs:
            m.on_expired(r)
        out["remove_single_per_s"] = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        m.install_many(recs)
        out["batch_per_s"] = n / (time.perf_counter() - t0)
        # The table moved on: a quarter of the connections went, as many
        # new ones (another virtual port) came.
        q = 3 * n // 4
        table = recs[:q] + [dataclasses.replace(r, vport=81) for r in recs[q:]]
        t0 = time.perf_counter()
        res = m.resync(table)
        out["resync_s"] = time.perf_counter() - t0
        out["resync_changes"] = res.installed + res.removed
    return out


def model_net():
    net = ipvs_py.Netns(conn_tab_bits=20, seed=1)
    net.restore(f"-A -t {VIP}:80 -s rr\n" + "".join(
        f"-a -t {VIP}:80 -r 10.128.0.{k}:8080 -m\n" for k in range(2, 6)))
    return net


def model_vs_fastpath(n, repeat):
    """Sessions installed from the model's conn table, then: ns/packet of
    the model's batch path on established packets of those sessions, and
    of the program on one of them (BPF_PROG_TEST_RUN), in one run; plus
    the install rate of the feed, batched (one drain after a replay of n
    ACKs) and one session per packet() call."""
    out = {}
    net = model_net()
    flows = flows_to(n, VIP, 80, seed=1)
    with FastPath(max_sessions=n + 16) as fp:
        mirror = SessionMirror(fp)
        feed = mirror.attach(net, capacity=n)
        path = net._path()
        dests = list(net.replay(flow_packets(flows, SYN, 0.0)).dest)
        path.after_engine = None        # time the drain on its own
        net.replay(flow_packets(flows, ACK, 0.01))
        path.after_engine = feed.drain
        t0 = time.perf_counter()
        feed.drain()
        out["feed_batch_sessions_per_s"] = n / (time.perf_counter() - t0)
        assert len(mirror) == n, (len(mirror), n)
        est = flow_packets(flows, ACK, 0.3)
        out["model_replay_ns"] = min(timeit.repeat(
            lambda: net.replay(est), number=1, repeat=3)) * 1e9 / n
        # The program on a session the model installed: flow 0.
        c, cport, v, vport = flow_tuple(flows, 0)
        d, dport = dests[0]
        rec = ConnRecord("tcp", c, cport, v, vport, d, dport)
        frame = pkt.frame(pkt.TCP, c, cport, v, vport, b"x" * 64)
        assert pkt.parse(fp.run(frame)[1]).daddr == d   # the model's choice
        out["program_ns"] = measure_hit(fp, mirror, rec, frame, repeat)
        feed.detach()
    # One session per packet() call: the ACK that completes a handshake,
    # with and without a feed attached (the difference is the install).
    m = min(n, 20000)
    few = [flow_tuple(flows, i) for i in range(m)]
    rates = {}
    for fed in (False, True):
        net = model_net()
        with FastPath(max_sessions=m + 16) as fp:
            feed = SessionMirror(fp).attach(net) if fed else None
            for c, cport, v, vport in few:
                net.packet("tcp", c, cport, v, vport, "S")
            t0 = time.perf_counter()
            for c, cport, v, vport in few:
                net.packet("tcp", c, cport, v, vport, "A")
            rates[fed] = m / (time.perf_counter() - t0)
            if fed:
                assert len(feed.mirror) == m
                feed.detach()
    out["packet_call_per_s"] = rates[False]
    out["packet_call_fed_per_s"] = rates[True]
    out["feed_single_us_per_session"] = (1 / rates[True] - 1 / rates[False]) * 1e6
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--sessions", type=int, default=100000)
    ap.add_argument("--repeat", type=int, default=1000000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    res = {"sessions": args.sessions, "repeat": args.repeat,
           "kernel": os.uname().release}
    with FastPath(max_sessions=args.sessions + 16) as fp:
        m = SessionMirror(fp)
        m.install_many(conns(args.sessions))
        res["insns"] = fp.insn_count
        res["ns_per_packet"] = ns_per_packet(fp, m, args.repeat)
    res["install"] = install_rates(args.sessions)
    res["model"] = model_vs_fastpath(args.sessions, args.repeat)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"kernel {res['kernel']}, program {res['insns']} insns, "
          f"{args.sessions} sessions in the maps, repeat {args.repeat}")
    for k, v in res["ns_per_packet"].items():
        print(f"  {k:12s} {v:6d} ns/packet  (BPF_PROG_TEST_RUN)")
    ins = res["install"]
    print(f"install one at a time {ins['single_per_s']:,.0f} sessions/s, "
          f"remove {ins['remove_single_per_s']:,.0f}/s, "
          f"batched {ins['batch_per_s']:,.0f}/s, "
          f"resync ({ins['resync_changes']} map changes) {ins['resync_s']*1e3:.1f} ms")
    mo = res["model"]
    print(f"fed from the model ({args.sessions} established conns):")
    print(f"  model Netns.replay, established packets {mo['model_replay_ns']:6.0f} ns/packet")
    print(f"  program on a model-installed session   {mo['program_ns']:6d} ns/packet "
          f"(program/model {mo['program_ns'] / mo['model_replay_ns']:.1f}x)")
    print(f"  feed install, batched (one drain)  {mo['feed_batch_sessions_per_s']:,.0f} sessions/s")
    print(f"  packet() completing a handshake: {mo['packet_call_per_s']:,.0f}/s alone, "
          f"{mo['packet_call_fed_per_s']:,.0f}/s fed "
          f"(+{mo['feed_single_us_per_session']:.1f} us per installed session)")


if __name__ == "__main__":
    try:
        main()
    except (BpfPermissionError, BpfUnsupportedError) as e:
        # Same policy as the tests: the kernel saying no is a skip with
        # its reason, not a failure of `make bench`.
        print(f"bench_bpf skipped: kernel refuses BPF here: {e}")
