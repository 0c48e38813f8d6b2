"""Hypothesis: random packet sequences keep the conn table's invariants
(issue 6).  Separate module: wheel-build runs skip hypothesis."""
import ipaddress

import pytest

hyp = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

import ipvs_py  # noqa: E402

RULES = ("-A -t 10.0.0.1:80 -s {s}\n"
         "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m\n"
         "-a -t 10.0.0.1:80 -r 10.0.1.2:8080 -m -x 3\n"
         "-a -t 10.0.0.1:80 -r 10.0.1.3:80 -g\n"
         "-A -u 10.0.0.1:53 -s sh\n-a -u 10.0.0.1:53 -r 10.0.1.1:53 -m\n"
         "-A -t 10.0.0.2:443 -s rr -p 30 -M 255.255.255.0\n"
         "-a -t 10.0.0.2:443 -r 10.0.1.1:443 -m\n"
         "-a -t 10.0.0.2:443 -r 10.0.1.2:443 -m\n")

packet = st.tuples(
    st.sampled_from(["tcp", "udp"]),
    st.integers(0, 5),                      # client
    st.integers(1000, 1003),                # client port
    st.sampled_from([("10.0.0.1", 80), ("10.0.0.1", 53),
                     ("10.0.0.2", 443)]),
    st.sampled_from(["S", "A", "FA", "R", "SA", "PA"]),
    st.sampled_from([0, 0, 1, 30, 200]),    # seconds before the packet
    st.booleans())                          # reply from the real server


def _check(net):
    e = net._conn.e
    conns = e.conns()
    # every masq conn is findable in both directions
    for (cid, af, proto, ca, cp, va, vp, da, dp, state, flags, *_r) in conns:
        if flags & 0x1000:
            continue
        assert e.lookup_in(af, proto, ca, cp, va, vp) == cid
        if flags & 7 == 0:
            assert e.lookup_out(af, proto, ca, cp, da, dp) == cid
    # dest counters equal the conns present
    counts = {}
    for c in conns:
        did, flags = c[12], c[10]
        k = ("p" if flags & 0x1000 else "i" if flags & 0x100 else "a")
        counts[(did, k)] = counts.get((did, k), 0) + 1
    for d, i in net._conn._dest_ids.items():
        assert d.activeconns == counts.get((i, "a"), 0)
        assert d.inactconns == counts.get((i, "i"), 0)
        assert d.persistconns == counts.get((i, "p"), 0)
    assert net.conn_count == len(conns)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["rr", "wlc", "lc"]), st.lists(packet, max_size=60))
def test_invariants_and_no_leaks(sched, pkts):
    net = ipvs_py.Netns(seed=1)
    net.restore(RULES.format(s=sched))
    net._path()
    for proto, c, cport, (vip, vport), flags, wait, reply in pkts:
        if proto == "udp":
            vip, vport, flags = "10.0.0.1", 53, 0
        net.advance(wait)
        caddr = "1.1.1.%d" % c
        tmpl = [r for r in net._conn.e.conns() if r[10] & 0x1000]
        v = net.packet(proto, caddr, cport, vip, vport, flags)
        if v.action == "forward" and vip == "10.0.0.2" and tmpl \
                and v.conn is not None and flags == "S":
            # persistence: while the client /24's template lives, every
            # new conn goes to the template's real server
            did = tmpl[0][12]
            assert v.dest == net._conn._dest_tuple(did)
        if reply and v.dest is not None:
            net.packet(proto, v.dest[0], v.dest[1], caddr, cport, "SA",
                       direction="out")
        _check(net)
    net.advance(100000)
    assert net.conn_count == 0
    for svc in net.services():
        for d in svc.dests:
            assert (d.activeconns, d.inactconns, d.persistconns,
                    d.refcnt) == (0, 0, 0, 0)
