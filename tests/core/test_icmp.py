"""ICMP errors related to a conn (include/ipvs_icmp.h): one test per branch
of ip_vs_in_icmp()/_v6() and ip_vs_out_icmp()/_v6() (Linux 6.1
net/netfilter/ipvs/ip_vs_core.c), on both kernel profiles."""
import pytest

import ipvs_py
from ipvs_py import IcmpError, PacketBatch

V4 = dict(client="1.1.1.1", vip="10.0.0.1", rs="10.0.1.1", other="9.9.9.9")
V6 = dict(client="2001:db8::1", vip="2001:db8:1::1", rs="2001:db8:2::1",
          other="2001:db8:9::9")
PORTS = {"tcp": (80, 8080), "udp": (53, 5353), "sctp": (3868, 3869)}
FIRST = {"tcp": "S", "udp": "", "sctp": "INIT"}
FWD = {"nat": "-m", "dr": "-g", "tun": "-i"}


def make(fwd="nat", af=V4, kernel="7.1", proto="tcp", **sysctl):
    net = ipvs_py.Netns(seed=3, kernel=kernel)
    vport, rport = PORTS[proto]
    vip = f"[{af['vip']}]" if ":" in af["vip"] else af["vip"]
    rs = f"[{af['rs']}]" if ":" in af["rs"] else af["rs"]
    flag = {"tcp": "-t", "udp": "-u", "sctp": "--sctp-service"}[proto]
    net.restore(f"-A {flag} {vip}:{vport} -s rr\n"
                f"-a {flag} {vip}:{vport} -r {rs}:{rport} {FWD[fwd]}\n")
    for k, v in sysctl.items():
        net.sysctl[k] = v
    return net


def connect(net, af=V4, proto="tcp", cport=4000):
    vport = PORTS[proto][0]
    v = net.packet(proto, af["client"], cport, af["vip"], vport, FIRST[proto],
                   length=60)
    assert v.action == "forward"
    return v


def icmp_name(af):
    return "icmpv6" if ":" in af["client"] else "icmp"


def err_in(net, af=V4, proto="tcp", cport=4000, type=3, code=4, length=576,
           **kw):
    """An error from the client side about VIP:vport -> client:cport."""
    return net.packet(icmp_name(af), af["client"], 0, af["vip"], 0,
                      length=length,
                      icmp=IcmpError(type, code, (proto, af["vip"],
                                                  PORTS[proto][0],
                                                  af["client"], cport), **kw))


def err_out(net, af=V4, proto="tcp", cport=4000, type=3, code=4, length=100,
            **kw):
    """An error towards the client about client:cport -> RS:rport."""
    return net.packet(icmp_name(af), af["other"], 0, af["client"], 0,
                      direction="out", length=length,
                      icmp=IcmpError(type, code, (proto, af["client"], cport,
                                                  af["rs"], PORTS[proto][1]),
                                     **kw))


def stats(net, proto="tcp"):
    svc = next(iter(net.svc_table.walk()))
    d = svc.dests[0]
    return ((svc.stats.inpkts, svc.stats.inbytes, svc.stats.outpkts,
             svc.stats.outbytes),
            (d.stats.inpkts, d.stats.inbytes, d.stats.outpkts,
             d.stats.outbytes),
            (net.tot_stats.inpkts, net.tot_stats.outpkts))


def conns(net):
    return sorted(net._conn.e.conns())


KERNELS = pytest.mark.parametrize("kernel", ["7.1", "6.1"])


@KERNELS
@pytest.mark.parametrize("af", [V4, V6], ids=["v4", "v6"])
@pytest.mark.parametrize("proto", ["tcp", "udp", "sctp"])
def test_nat_error_goes_to_the_real_server_and_counts_in(kernel, af, proto):
    net = make("nat", af, kernel, proto)
    c = connect(net, af, proto)
    net.advance(1)      # a put() would move the timer: it must not
    before_conns, before = conns(net), stats(net)
    v = err_in(net, af, proto, type=3 if ":" not in af["client"] else 2)
    assert (v.action, v.dest, v.conn) == ("forward", c.dest, c.conn)
    assert v.reason.startswith("NAT:") and f"conn {c.conn} " in v.reason
    svc, dst, tot = stats(net)
    assert svc == (before[0][0] + 1, before[0][1] + 576) + before[0][2:]
    assert dst == (before[1][0] + 1, before[1][1] + 576) + before[1][2:]
    assert tot == (before[2][0] + 1, before[2][1])
    assert conns(net) == before_conns       # state, timer, flags untouched


@pytest.mark.parametrize("type", [3, 4, 11])
def test_ipv4_error_types(type):
    net = make()
    c = connect(net)
    assert err_in(net, type=type).conn == c.conn


@pytest.mark.parametrize("type", [0, 5, 8, 12, 13, 14, 40])
def test_ipv4_other_types_are_not_related(type):
    net = make()
    connect(net)
    before = stats(net)
    v = err_in(net, type=type)
    assert (v.action, v.dest, v.conn) == ("pass", None, None)
    assert "not an ICMP error" in v.reason
    assert stats(net) == before


@pytest.mark.parametrize("type", [1, 2, 3, 4, 100])
def test_ipv6_error_types_are_those_below_128(type):
    net = make(af=V6)
    c = connect(net, V6)
    assert err_in(net, V6, type=type).conn == c.conn


@pytest.mark.parametrize("type", [128, 129, 133, 135])
def test_ipv6_informational_types_pass(type):
    net = make(af=V6)
    connect(net, V6)
    before = stats(net)
    assert err_in(net, V6, type=type).action == "pass"
    assert stats(net) == before


@KERNELS
@pytest.mark.parametrize("fwd", ["dr", "tun"])
def test_direct_conns_get_the_error_as_it_is_and_count_in_pkts(kernel, fwd):
    net = make(fwd, kernel=kernel, proto="udp")
    c = connect(net, proto="udp")
    in_pkts = net._conn.conn_info(c.conn)[-1]
    before = stats(net)
    v = err_in(net, proto="udp", type=11, code=0)
    assert (v.action, v.dest, v.conn) == ("forward", c.dest, c.conn)
    assert v.reason.startswith("DR/TUN")
    assert net._conn.conn_info(c.conn)[-1] == in_pkts + 1
    assert stats(net)[1][0] == before[1][0] + 1


def test_error_for_unknown_conn_passes():
    net = make()
    connect(net)
    before, before_conns = stats(net), conns(net)
    v = err_in(net, cport=4001)
    assert (v.action, v.conn) == ("pass", None)
    assert "no connection" in v.reason
    assert stats(net) == before and conns(net) == before_conns


def test_inner_header_not_inverted_is_not_found():
    """The inner packet must be VIP -> client; client -> VIP is no match."""
    net = make()
    connect(net)
    v = net.packet("icmp", "1.1.1.1", 0, "10.0.0.1", 0, icmp=IcmpError(
        3, 4, ("tcp", "1.1.1.1", 4000, "10.0.0.1", 80)))
    assert v.action == "pass" and v.conn is None


@KERNELS
@pytest.mark.parametrize("af", [V4, V6], ids=["v4", "v6"])
def test_out_nat_error_is_translated_and_counts_out(kernel, af):
    net = make("nat", af, kernel)
    c = connect(net, af)
    before, before_conns = stats(net), conns(net)
    v = err_out(net, af)
    assert (v.action, v.dest, v.conn) == ("forward", c.dest, c.conn)
    assert v.reason.startswith("NAT reply side")
    svc, dst, tot = stats(net)
    assert svc == before[0][:2] + (before[0][2] + 1, before[0][3] + 100)
    assert tot == (before[2][0], before[2][1] + 1)
    assert conns(net) == before_conns


@KERNELS
def test_out_error_of_a_dr_conn_is_left_alone(kernel):
    net = make("dr", kernel=kernel)
    connect(net)
    before = stats(net)
    v = err_out(net)
    assert v.action == "pass"
    assert stats(net) == before


@KERNELS
def test_out_error_about_a_dr_request_to_the_vip_is_counted(kernel):
    """Since 5.10 ip_vs_conn_out_get() finds a DR/TUN conn from VIP:vport:
    an error quoting client:cport -> VIP:vport (the director's own, or
    a DR real server's) is counted and passed on unchanged."""
    net = make("dr", kernel=kernel)
    c = connect(net)
    before, before_conns = stats(net), conns(net)
    v = net.packet("icmp", "10.0.0.1", 0, "1.1.1.1", 0, direction="out",
                   length=56, icmp=IcmpError(3, 4, ("tcp", "1.1.1.1", 4000,
                                                    "10.0.0.1", 80)))
    assert (v.action, v.conn) == ("forward", c.conn)
    assert v.reason.startswith("reply side of a DR/TUN conn")
    assert stats(net)[0][2:] == (before[0][2] + 1, before[0][3] + 56)
    assert conns(net) == before_conns


def test_out_non_error_and_unknown_conn_pass():
    net = make()
    connect(net)
    assert err_out(net, type=0).action == "pass"
    assert err_out(net, cport=4444).action == "pass"


@pytest.mark.parametrize("direction", ["in", "out"])
@pytest.mark.parametrize("af", [V4, V6], ids=["v4", "v6"])
def test_truncated_icmp_header_is_dropped(direction, af):
    net = make(af=af)
    connect(net, af)
    before = stats(net)
    f = err_in if direction == "in" else err_out
    v = f(net, af, truncated="icmp")
    assert v.action == "drop" and "cut short" in v.reason
    assert stats(net) == before


@pytest.mark.parametrize("direction", ["in", "out"])
@pytest.mark.parametrize("trunc", ["inner_ip", "inner_ports"])
def test_truncated_inner_header_passes(direction, trunc):
    net = make()
    connect(net)
    before = stats(net)
    f = err_in if direction == "in" else err_out
    v = f(net, truncated=trunc)
    assert (v.action, v.conn) == ("pass", None)
    assert stats(net) == before


def test_inner_header_may_be_omitted_only_when_cut_off():
    net = make()
    v = net.packet("icmp", "1.1.1.1", 0, "10.0.0.1", 0,
                   icmp=IcmpError(3, 4, truncated="inner_ip"))
    assert v.action == "pass"
    with pytest.raises(ValueError, match="inner"):
        net.packet("icmp", "1.1.1.1", 0, "10.0.0.1", 0, icmp=IcmpError(3, 4))


def test_ipv4_fragment_is_held_for_reassembly_whatever_its_type():
    net = make()
    connect(net)
    for t in (3, 8):
        v = err_in(net, type=t, fragment="outer")
        assert v.action == "drop" and "reassembly" in v.reason


def test_ipv6_fragment_header_drops_errors_not_info():
    net = make(af=V6)
    connect(net, V6)
    assert err_in(net, V6, type=1, fragment="outer").action == "drop"
    assert err_in(net, V6, type=128, fragment="outer").action == "pass"


def test_inner_fragment_ipv4_tcp_still_looked_up():
    """IPv4 reads ports even from a non-first fragment (dont_defrag 0)."""
    net = make()
    c = connect(net)
    assert err_in(net, fragment="inner").conn == c.conn


def test_inner_fragment_ipv4_udp_is_ignored():
    """A non-first UDP fragment may be one of our UDP tunnel packets:
    ip_vs_in_icmp() accepts it before any lookup."""
    net = make(proto="udp")
    connect(net, proto="udp")
    v = err_in(net, proto="udp", fragment="inner")
    assert (v.action, v.conn) == ("pass", None)
    # the reply side has no such rule (ip_vs_out_icmp)
    net2 = make(proto="udp")
    c = connect(net2, proto="udp")
    assert err_out(net2, proto="udp", fragment="inner").conn == c.conn


def test_inner_fragment_ipv6_is_ignored():
    net = make(af=V6)
    connect(net, V6)
    assert err_in(net, V6, fragment="inner").action == "pass"


def test_bad_checksum():
    net = make()
    c = connect(net)
    before = stats(net)
    v = err_in(net, bad_checksum=True)
    assert (v.action, v.conn) == ("drop", c.conn)
    assert stats(net) == before
    assert err_out(net, bad_checksum=True).action == "drop"
    assert stats(net) == before
    # ip_vs_in_icmp_v6 has no checksum test
    net6 = make(af=V6)
    connect(net6, V6)
    assert err_in(net6, V6, bad_checksum=True).action == "forward"
    # handle_response_icmp checks only NAT conns
    dr = make("dr")
    connect(dr)
    assert err_out(dr, bad_checksum=True).action == "pass"


@pytest.mark.parametrize("inner_proto", [1, 4, 47, 50])
def test_inner_protocols_ipvs_does_not_balance_pass(inner_proto):
    net = make()
    connect(net)
    v = net.packet("icmp", "1.1.1.1", 0, "10.0.0.1", 0, icmp=IcmpError(
        3, 4, (inner_proto, "10.0.0.1", 80, "1.1.1.1", 4000)))
    assert (v.action, v.conn) == ("pass", None)


def test_unavailable_dest_forwards_without_stats():
    net = make()
    c = connect(net)
    svc = next(iter(net.svc_table.walk()))
    d = svc.dests[0]
    net.restore("-d -t 10.0.0.1:80 -r 10.0.1.1:8080\n")
    before = (d.stats.inpkts, svc.stats.inpkts, net.tot_stats.inpkts)
    v = err_in(net)
    assert (v.action, v.conn) == ("forward", c.conn)
    assert (d.stats.inpkts, svc.stats.inpkts, net.tot_stats.inpkts) == before


def test_schedule_icmp_makes_an_inactive_conn():
    net = make(schedule_icmp=1)
    v = err_in(net, cport=4321, length=100)
    assert v.action == "forward" and v.dest == ("10.0.1.1", 8080)
    rows = net.proc_ip_vs_conn().splitlines()[1:]
    assert len(rows) == 1
    # state NONE, ip_vs_conn_new()'s 3 s timeout, inactive on the dest
    assert rows[0].split()[1:] == ["01010101", "10E1", "0A000001", "0050",
                                   "0A000101", "1F90", "NONE", "3"]
    d = next(iter(net.svc_table.walk())).dests[0]
    assert (d.activeconns, d.inactconns) == (0, 1)
    assert d.stats.conns == 1 and d.stats.inpkts == 1
    net.advance(4)
    assert net.proc_ip_vs_conn().splitlines()[1:] == []


def test_schedule_icmp_without_service_or_ports():
    net = make(schedule_icmp=1)
    v = net.packet("icmp", "1.1.1.1", 0, "10.0.0.9", 0, icmp=IcmpError(
        3, 4, ("tcp", "10.0.0.9", 80, "1.1.1.1", 4000)))
    assert v.action == "pass" and net._conn.e.nconns == 0
    v = err_in(net, truncated="inner_ports")
    assert v.action == "drop" and net._conn.e.nconns == 0


def test_schedule_icmp_off_by_default():
    net = make()
    assert err_in(net).action == "pass"
    assert net._conn.e.nconns == 0


def test_replay_equals_packet_row_by_row():
    rows = [("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "S", 0.0),
            ("icmp", "1.1.1.1", 0, "10.0.0.1", 0, "", 0.5, 0, 576, "in",
             IcmpError(3, 4, ("tcp", "10.0.0.1", 80, "1.1.1.1", 4000))),
            ("icmp", "1.1.1.1", 0, "10.0.0.1", 0, "", 0.6, 0, 84, "in",
             IcmpError(8, 0, ("tcp", "10.0.0.1", 80, "1.1.1.1", 4000))),
            ("icmp", "9.9.9.9", 0, "1.1.1.1", 0, "", 0.7, 0, 100, "out",
             IcmpError(11, 0, ("tcp", "1.1.1.1", 4000, "10.0.1.1", 8080))),
            ("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "A", 1.0),
            ("icmp", "1.1.1.1", 0, "10.0.0.1", 0, "", 1.5, 0, 576, "in",
             IcmpError(3, 4, ("tcp", "10.0.0.1", 80, "1.1.1.1", 4000),
                       bad_checksum=True))]
    a, b = make(), make()
    res = a.replay(PacketBatch.from_rows(rows))
    for i, row in enumerate(rows):
        b.advance(row[6] - b.now)
        kw = dict(length=row[8], direction=row[9], icmp=row[10]) \
            if len(row) > 7 else {}
        v = b.packet(*row[:6], **kw)
        assert (res.action[i], res.dest[i]) == (v.action, v.dest), i
    assert list(res.action) == ["forward", "forward", "pass", "forward",
                                "forward", "drop"]
    assert stats(a) == stats(b) and conns(a) == conns(b)


def test_icmp_records_keep_their_u2_fields_aligned():
    """conntab_icmp.pxi reads the port fields as uint16: every record of
    a column (and of a slice) must keep them 2-byte aligned (UBSan)."""
    from ipvs_py.packets import ICMP_DTYPE
    assert ICMP_DTYPE.itemsize % 2 == 0
    for name in ("sport", "dport", "tsport", "tdport"):
        assert ICMP_DTYPE.fields[name][1] % 2 == 0, name


def test_batch_columns_and_slicing_keep_the_icmp_column():
    rows = [("udp", "1.1.1.1", 5, "10.0.0.1", 53, "", 0.0),
            ("icmpv6", "2001:db8::1", 0, "2001:db8:1::1", 0, "", 1.0, 0, 0,
             "in", IcmpError(2, 0, ("udp", "2001:db8:1::1", 53,
                                    "2001:db8::1", 5)))]
    b = PacketBatch.from_rows(rows)
    assert b.icmp is not None and b.icmp["type"].tolist() == [0, 2]
    assert b[1].proto == "icmpv6" and int(b[1].icmp["dport"]) == 5
    assert b[1:].icmp["type"].tolist() == [2]
    assert PacketBatch.from_rows(rows[:1]).icmp is None
    both = PacketBatch.concat([PacketBatch.from_rows(rows[:1]), b])
    assert both.icmp["type"].tolist() == [0, 0, 2]
    again = PacketBatch.from_columns(
        **{k: getattr(b, k) for k in ("proto", "af", "saddr", "sport", "daddr",
                                      "dport", "time")}, icmp=b.icmp)
    assert again.icmp.tobytes() == b.icmp.tobytes()


@pytest.mark.parametrize("row, msg", [
    (("icmp", "1.1.1.1", 0, "10.0.0.1", 0, "", 0.0), "IcmpError"),
    (("icmp", "2001:db8::1", 0, "2001:db8::2", 0, "", 0.0, 0, 0, "in",
      IcmpError(1)), "does not match"),
    (("tcp", "1.1.1.1", 1, "10.0.0.1", 80, "S", 0.0, 0, 0, "in",
      IcmpError(3)), "only ICMP rows"),
    (("icmp", "1.1.1.1", 0, "10.0.0.1", 0, "", 0.0, 0, 0, "in",
      IcmpError(300, 0, ("tcp", "1.1.1.1", 1, "2.2.2.2", 2))), "type"),
    (("icmp", "1.1.1.1", 0, "10.0.0.1", 0, "", 0.0, 0, 0, "in",
      IcmpError(3, 0, ("tcp", "1.1.1.1", 1, "2001:db8::1", 2))), "family"),
    (("icmp", "1.1.1.1", 0, "10.0.0.1", 0, "", 0.0, 0, 0, "in",
      IcmpError(3, 0, ("tcp", "1.1.1.1", 1, "2.2.2.2", 70000))), "dport"),
    (("icmp", "1.1.1.1", 0, "10.0.0.1", 0, "", 0.0, 0, 0, "in",
      IcmpError(3, 0, ("tcp", "1.1.1.1", 1, "2.2.2.2", 2),
                truncated="half")), "truncated"),
    (("icmp", "1.1.1.1", 0, "10.0.0.1", 0, "", 0.0, 0, 0, "in",
      IcmpError(3, 0, ("bogus", "1.1.1.1", 1, "2.2.2.2", 2))), "inner protocol"),
])
def test_bad_rows_name_the_row_and_the_field(row, msg):
    with pytest.raises(ValueError, match=msg) as ei:
        PacketBatch.from_rows([row])
    assert str(ei.value).startswith("row 0:")


def test_bad_packet_changes_nothing():
    net = make()
    connect(net)
    before, before_conns = stats(net), conns(net)
    with pytest.raises(ValueError, match="IcmpError"):
        net.packet("icmp", "1.1.1.1", 0, "10.0.0.1", 0)
    with pytest.raises(ValueError, match="direction"):
        net.packet("icmp", "1.1.1.1", 0, "10.0.0.1", 0, direction="up",
                   icmp=IcmpError(3, 4, ("tcp", "10.0.0.1", 80, "1.1.1.1",
                                         4000)))
    with pytest.raises(ValueError, match="protocol"):
        net.packet("tcp", "1.1.1.1", 1, "10.0.0.1", 80,
                   icmp=IcmpError(3, 4, ("tcp", "10.0.0.1", 80, "1.1.1.1", 1)))
    assert stats(net) == before and conns(net) == before_conns


def test_multicore_replay_refuses_icmp_rows():
    net = make()
    b = PacketBatch.from_rows([
        ("icmp", "1.1.1.1", 0, "10.0.0.1", 0, "", 0.0, 0, 0, "in",
         IcmpError(3, 4, ("tcp", "10.0.0.1", 80, "1.1.1.1", 4000)))])
    with pytest.raises(ValueError, match="single-threaded"):
        net.replay(b, workers=2)


# -- errors about IPIP packets the director tunnelled (ip_vs_in_icmp's
#    IPIP branch) --------------------------------------------------------

TUN_RULES = ("-A -t 10.0.0.1:80 -s rr\n"
             "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -i\n"
             "-A -t 10.0.0.2:80 -s rr\n"
             "-a -t 10.0.0.2:80 -r 10.0.1.2:80 -i --tun-type gre\n"
             "-A -t 10.0.0.3:80 -s rr\n"
             "-a -t 10.0.0.3:80 -r 10.0.1.3:80 -m\n")


def tun_net(**sysctl):
    net = ipvs_py.Netns(seed=3, kernel="6.1")
    net.restore(TUN_RULES)
    for k, v in sysctl.items():
        net.sysctl[k] = v
    return net


def ipip_err(net, rs="10.0.1.1", vip="10.0.0.1", cport=4000, type=3, code=4,
             length=20 + 8 + 20 + 20 + 8, **kw):
    """An error to the director about its tunnel packet to ``rs``."""
    kw.setdefault("tunneled", ("tcp", "1.1.1.1", cport, vip, 80))
    return net.packet("icmp", "10.0.1.9", 0, "10.0.1.254", 0, length=length,
                      icmp=IcmpError(type, code,
                                     (4, "10.0.1.254", 0, rs, 0), **kw))


def test_ipip_frag_needed_is_relayed_to_the_client_and_counts_out():
    net = tun_net()
    c = net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "S", length=60)
    before = conns(net)
    v = ipip_err(net)
    assert (v.action, v.dest, v.conn) == ("forward", c.dest, c.conn)
    assert v.reason.startswith("IPIP: the director sends the client")
    svc = net.get_service("tcp", "10.0.0.1", 80)
    # ip_vs_out_stats() of the request pulled out of the error (28 bytes),
    # then of the director's own error (56) in its LOCAL_OUT hook
    assert (svc.stats.inpkts, svc.stats.outpkts, svc.stats.outbytes) == \
        (1, 2, 28 + 56)
    assert conns(net) == before


def test_ipip_frag_needed_without_df_is_consumed():
    net = tun_net()
    c = net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "S")
    v = ipip_err(net, df=False)
    assert (v.action, v.conn) == ("drop", c.conn)
    assert net.get_service("tcp", "10.0.0.1", 80).stats.outpkts == 0
    # other types are relayed whatever DF says
    assert ipip_err(net, type=11, code=0, df=False).action == "forward"


@pytest.mark.parametrize("rs, vip", [("10.0.1.2", "10.0.0.2"),    # GRE dest
                                     ("10.0.1.3", "10.0.0.3"),    # NAT dest
                                     ("10.0.1.7", "10.0.0.1")])   # none
def test_ipip_error_not_about_an_ipip_dest_passes(rs, vip):
    net = tun_net()
    net.packet("tcp", "1.1.1.1", 4000, vip, 80, "S")
    v = ipip_err(net, rs=rs, vip=vip)
    assert (v.action, v.conn) == ("pass", None)
    assert "IPIP real servers" in v.reason


def test_ipip_error_ignored_cases():
    net = tun_net(schedule_icmp=1)
    net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "S")
    assert ipip_err(net, fragment="inner").action == "pass"
    assert ipip_err(net, tunneled=None).action == "pass"
    assert ipip_err(net, tunneled=(1, "1.1.1.1", 0, "10.0.0.1", 0)).action \
        == "pass"
    n = net._path().e.nconns
    v = ipip_err(net, cport=4999)       # no conn: never scheduled
    assert (v.action, net._path().e.nconns) == ("pass", n)
    v = ipip_err(net, bad_checksum=True)
    assert v.action == "drop" and v.conn is not None


def test_ipip_rows_replay_like_packets():
    rows = [("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "S", 0.0),
            ("icmp", "10.0.1.9", 0, "10.0.1.254", 0, "", 1.0, 0, 76, "in",
             IcmpError(3, 4, (4, "10.0.1.254", 0, "10.0.1.1", 0),
                       tunneled=("tcp", "1.1.1.1", 4000, "10.0.0.1", 80))),
            ("icmp", "10.0.1.9", 0, "10.0.1.254", 0, "", 1.0, 0, 76, "in",
             IcmpError(3, 4, (4, "10.0.1.254", 0, "10.0.1.1", 0), df=False,
                       tunneled=("tcp", "1.1.1.1", 4000, "10.0.0.1", 80)))]
    res = tun_net().replay(PacketBatch.from_rows(rows))
    assert list(res.action) == ["forward", "forward", "drop"]


def test_tunneled_needs_an_ipip_inner_packet():
    with pytest.raises(ValueError, match="tunneled goes with"):
        tun_net().packet("icmp", "1.1.1.1", 0, "10.0.0.1", 0, icmp=IcmpError(
            3, 4, ("tcp", "10.0.0.1", 80, "1.1.1.1", 4000),
            tunneled=("tcp", "1.1.1.1", 4000, "10.0.0.1", 80)))
