"""Property: an ICMP error never creates or deletes a conn, nor changes a
conn's state, timer or flags (schedule_icmp off); it changes only the
packet counters the kernel's ip_vs_in_stats()/ip_vs_out_stats() change,
for the conn a simple reference finds from the conn list.  With
schedule_icmp on, at most one conn appears and only when none matched."""
import ipaddress

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

import ipvs_py  # noqa: E402
from ipvs_py import IcmpError  # noqa: E402

VIP, RS = ["10.0.0.1", "10.0.0.2"], ["10.0.1.1", "10.0.1.2"]
CLIENTS = ["1.1.1.1", "1.1.1.2"]
PROTOS = {"tcp": 6, "udp": 17, "sctp": 132}
FIRST = {"tcp": "S", "udp": "", "sctp": "INIT"}
FLAG = {"tcp": "-t", "udp": "-u", "sctp": "--sctp-service"}
RULES = "".join(
    f"-A {FLAG[p]} {VIP[0]}:80 -s rr\n"
    f"-a {FLAG[p]} {VIP[0]}:80 -r {RS[0]}:8080 -m\n"
    f"-A {FLAG[p]} {VIP[1]}:80 -s rr\n"
    f"-a {FLAG[p]} {VIP[1]}:80 -r {RS[1]}:80 -g\n" for p in PROTOS)


def raw(a):
    return ipaddress.ip_address(a).packed.ljust(16, b"\0")


def reference(conns, direction, rec, proto_num):
    """The conn an ICMP error about ``rec``'s inner header belongs to, by
    the kernel's rule (inverse lookup), from the model's conn list; and
    whether the error is an error at all."""
    t = rec["type"]
    if direction == "in":
        c_addr, c_port, l_addr, l_port = rec["daddr"], rec["dport"], \
            rec["saddr"], rec["sport"]
    else:
        c_addr, c_port, l_addr, l_port = rec["saddr"], rec["sport"], \
            rec["daddr"], rec["dport"]
    if t not in (3, 4, 11) or rec["flags"] & (0x01 | 0x02 | 0x04 | 0x08):
        return None
    if rec["proto"] not in PROTOS.values():
        return None
    if direction == "in" and rec["proto"] == 17 and rec["flags"] & 0x10:
        return None
    for c in conns:
        (cid, af, proto, ca, cp, va, vp, da, dp, state, flags,
         *_rest) = c
        if flags & 0x1000 or proto != rec["proto"]:
            continue
        if ca != c_addr or cp != c_port:
            continue
        if direction == "in" and (va, vp) == (l_addr, l_port):
            return c
        # out: NAT conns by daddr:dport, DR/TUN conns by vaddr:vport
        if direction == "out" and ((da, dp) if flags & 7 == 0
                                   else (va, vp)) == (l_addr, l_port):
            return c
    return None


connect_op = st.tuples(st.just("connect"), st.sampled_from(list(PROTOS)),
                       st.sampled_from(CLIENTS), st.integers(1000, 1003),
                       st.integers(0, 1))
# mostly errors about a flow that was connected (``flow`` picks one), so
# that most examples hit a conn; the rest are random tuples
icmp_op = st.tuples(
    st.just("icmp"), st.sampled_from(list(PROTOS) + [1, 4]),
    st.sampled_from(CLIENTS), st.integers(1000, 1003), st.integers(0, 1),
    st.sampled_from(["in", "out"]),
    st.sampled_from([3, 3, 4, 11, 11, 0, 5, 8, 12]),
    st.sampled_from([None] * 6 + ["icmp", "inner_ip", "inner_ports"]),
    st.sampled_from([None] * 6 + ["outer", "inner"]),
    st.sampled_from([False] * 5 + [True]),
    st.integers(1, 1500), st.one_of(st.none(), st.integers(0, 50)))
advance_op = st.tuples(st.just("advance"), st.integers(1, 200))


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(st.one_of(connect_op, connect_op, icmp_op, icmp_op,
                              advance_op), max_size=40),
       schedule_icmp=st.booleans(), kernel=st.sampled_from(["7.1", "6.1"]))
def test_icmp_errors_change_only_what_the_kernel_changes(ops, schedule_icmp,
                                                         kernel):
    net = ipvs_py.Netns(seed=5, kernel=kernel)
    net.restore(RULES)
    net.sysctl["schedule_icmp"] = int(schedule_icmp)
    e = net._path().e
    flows = []
    for op in ops:
        if op[0] == "connect":
            _, proto, client, cport, svc = op
            flows.append((proto, client, cport, svc))
            net.packet(proto, client, cport, VIP[svc], 80, FIRST[proto],
                       length=60)
            continue
        if op[0] == "advance":
            net.advance(op[1])
            continue
        (_, proto, client, cport, svc, direction, typ, trunc, frag, bad,
         length, flow) = op
        if flow is not None and flows:
            proto, client, cport, svc = flows[flow % len(flows)]
        inner = ((proto, VIP[svc], 80, client, cport) if direction == "in"
                 else (proto, client, cport, RS[0], 8080) if svc == 0
                 else (proto, client, cport, VIP[1], 80))   # DR: the VIP
        err = IcmpError(typ, 0, inner, trunc, frag, bad)
        rec = {k: v for k, v in zip(
            ("type", "proto", "flags", "saddr", "sport", "daddr", "dport"),
            (typ, PROTOS.get(proto, proto),
             int(err.record(2)["flags"]), raw(inner[1]), inner[2],
             raw(inner[3]), inner[4]))}
        conns_before = sorted(e.conns())
        counters = [e.dest_counters(i) for i in range(len(net._conn._dests))]
        tot = e.tot_counters()
        match = reference(conns_before, direction, rec, None)
        v = net.packet("icmp", client if direction == "in" else "9.9.9.9",
                       0, VIP[svc] if direction == "in" else client, 0,
                       direction=direction, length=length, icmp=err)
        conns_after = sorted(e.conns())
        if match is not None:
            assert v.conn == match[0], v
        if match is None and schedule_icmp and direction == "in" \
                and len(conns_after) == len(conns_before) + 1:
            new = [c for c in conns_after if c not in conns_before]
            assert len(new) == 1 and new[0][9] == 0      # state NONE
            assert v.conn == new[0][0]
            continue
        assert conns_after == conns_before, v
        # counters: only in/out pkts+bytes of the matched conn's dest move
        expect_tot = list(tot)
        for i, before in enumerate(counters):
            after = e.dest_counters(i)
            assert after[:5] == before[:5]      # conn counters, flags
            d_in = d_out = 0
            if match is not None and match[12] == i and v.action == "forward":
                d_in, d_out = (1, 0) if direction == "in" else (0, 1)
            want = list(before)
            want[6] += d_in
            want[7] += d_out
            want[8] += d_in * length
            want[9] += d_out * length
            assert list(after) == want, (i, v)
            expect_tot[1] += d_in
            expect_tot[2] += d_out
            expect_tot[3] += d_in * length
            expect_tot[4] += d_out * length
        assert list(e.tot_counters()) == expect_tot
        if match is None:
            assert v.action in ("pass", "drop") and v.conn is None
