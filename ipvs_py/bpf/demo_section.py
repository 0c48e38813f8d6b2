"""The ``ipvs-py demo`` section on the BPF fast path: the model's Cython
path next to the tc program, on sessions the model itself installed.

Needs root and a kernel that allows BPF; otherwise it prints one line
saying why it is skipped.
"""
import timeit

from rich.table import Table

from ..netns import Netns
from ..workload.generators import ACK
from . import ConnRecord, FastPath, SessionMirror
from . import packet as pkt
from .errors import BpfBuildError, BpfPermissionError, BpfUnsupportedError
from .traffic import flow_packets, flow_tuple, flows_to, measure_hit, open_flows

VIP = "192.0.2.80"
RULES = f"-A -t {VIP}:80 -s rr\n" + "".join(
    f"-a -t {VIP}:80 -r 10.128.0.{k}:8080 -m\n" for k in range(2, 6))


def fastpath_section(console, n=20000, repeat=200000):
    """Open ``n`` flows in the model, let the feed install them, and time
    both paths on their established packets."""
    console.rule("[bold]BPF session fast path (seed 004)")
    try:
        fp = FastPath(max_sessions=n + 16)
    except (BpfPermissionError, BpfUnsupportedError, BpfBuildError,
            FileNotFoundError) as e:
        console.print(f"fast path skipped: BPF is not available here ({e})",
                      markup=False)
        return
    with fp:
        net = Netns(conn_tab_bits=20, seed=1)
        net.restore(RULES)
        mirror = SessionMirror(fp)
        feed = mirror.attach(net, capacity=n)
        flows = flows_to(n, VIP, 80, seed=1)
        dests = open_flows(net, flows)
        est = flow_packets(flows, ACK, 1.0)
        model_ns = min(timeit.repeat(lambda: net.replay(est), number=1,
                                     repeat=3)) * 1e9 / n
        c, cport, v, vport = flow_tuple(flows, 0)
        d, dport = dests[0]
        frame = pkt.frame(pkt.TCP, c, cport, v, vport, b"GET /")
        out = pkt.parse(fp.run(frame)[1])
        rec = ConnRecord("tcp", c, cport, v, vport, d, dport)
        prog_ns = measure_hit(fp, mirror, rec, frame, repeat)

        t = Table(title=f"{n:,} flows opened in the model (SYN, ACK); the "
                        f"feed installed {feed.stats.installs:,} sessions")
        for col in ("path", "per established packet", "ns/packet"):
            t.add_column(col, justify="right" if col == "ns/packet" else "left")
        t.add_row("model, Cython (Netns.replay)",
                  "conn lookup, TCP state, timers, counters", f"{model_ns:.0f}")
        t.add_row("tc program (BPF_PROG_TEST_RUN)",
                  "map lookup, NAT rewrite, checksums", f"{prog_ns}")
        console.print(t)
        ok = "valid" if out.ip_csum_ok and out.l4_csum_ok else "BAD"
        console.print(f"flow 0: {c}:{cport} -> {v}:{vport} leaves the "
                      f"program as -> {out.daddr}:{out.dport} (the model "
                      f"chose {d}:{dport}); checksums {ok}", markup=False)
        net.advance(901)        # TCP ESTABLISHED times out after 900 s
        console.print(f"after 901 s of model time the conns expired: "
                      f"{len(mirror)} sessions left in the maps "
                      f"({feed.stats.removals:,} removed)")
        feed.detach()
