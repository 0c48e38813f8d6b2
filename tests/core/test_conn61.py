"""Netns(kernel="6.1") hashes conns as Linux 6.1 ip_vs_conn.c does
(include/ipvs_conn61.h): one node per conn in bucket
(jhash_3words(addr, port, proto, ip_vs_conn_rnd) ^ ((size_t)ipvs >> 8))
& mask over the client side (IPv6: jhash(addr, 16, rnd) for addr)."""
import ipaddress

import pytest

import ipvs_py
from ipvs_py import IcmpError
from ipvs_py._core import _pyref, conntab
from ipvs_py._core.conntab import ConnEngine
from ipvs_py.conn import salt61

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import example, given, settings, strategies as st  # noqa: E402

PROTO = {"tcp": 6, "udp": 17, "sctp": 132}
FIRST = {"tcp": "S", "udp": "", "sctp": "INIT"}


def raw(a):
    return ipaddress.ip_address(a).packed.ljust(16, b"\0")


def kernel_bucket(af, proto, caddr, cport, rnd, ipvs_ptr, bits):
    """ip_vs_conn_hashkey() of Linux 6.1, transcribed: raw network-order
    words as a little-endian CPU loads them."""
    packed = ipaddress.ip_address(caddr).packed
    port_be = int.from_bytes(cport.to_bytes(2, "big"), "little")
    if af == 10:
        a = _pyref.jhash(packed, rnd)
    else:
        a = int.from_bytes(packed, "little")
    return (_pyref.jhash_3words(a, port_be, proto, rnd)
            ^ (ipvs_ptr >> 8)) & ((1 << bits) - 1)


def net61(bits=8, seed=1, fwd="-m", v6=False, persistent=""):
    net = ipvs_py.Netns(conn_tab_bits=bits, kernel="6.1", seed=seed)
    vip, rs = ("[2001:db8:1::1]", "[2001:db8:2::1]") if v6 else \
        ("10.0.0.1", "10.0.1.1")
    rules = ""
    for flag, port in (("-t", 80), ("-u", 80), ("--sctp-service", 80)):
        rules += (f"-A {flag} {vip}:{port} -s rr {persistent}\n"
                  f"-a {flag} {vip}:{port} -r {rs}:8080 {fwd}\n")
    net.restore(rules)
    return net


@settings(max_examples=60, deadline=None)
@given(flows=st.lists(st.tuples(
    st.sampled_from(list(PROTO)),
    st.integers(0, 2**32 - 1), st.integers(1, 65535)), min_size=1,
    max_size=30),
    v6=st.booleans(), bits=st.integers(8, 12), seed=st.integers(0, 2**32))
@example(flows=[("tcp", 0x01010101, 4000)], v6=False, bits=8, seed=1)
def test_bucket_is_the_kernel_formula(flows, v6, bits, seed):
    net = net61(bits, seed, v6=v6)
    path = net._path()
    rnd = conntab.hash61_rnd(path.e)
    ptr = path.salt61 << 8
    assert path.salt61 & 0xFF == net.svc_salt
    vip = "2001:db8:1::1" if v6 else "10.0.0.1"
    for proto, a, port in flows:
        client = str(ipaddress.IPv6Address((0x20010db8 << 96) | a)) if v6 \
            else str(ipaddress.IPv4Address(a))
        v = net.packet(proto, client, port, vip, 80, FIRST[proto])
        assert v.action == "forward"
        want = kernel_bucket(10 if v6 else 2, PROTO[proto], client, port,
                             rnd, ptr, bits)
        assert conntab.hash61_bucket_of(path.e, v.conn) == want
        assert conntab.conn_bucket(path.e, v.conn) == want   # where it is


def test_one_node_per_nat_conn():
    net = net61()
    for i in range(50):
        net.packet("tcp", f"1.1.{i}.1", 4000 + i, "10.0.0.1", 80, "S")
    hist = net._path().e.histogram()    # [empty, len-1, ..., len-7+]
    assert hist[7] == 0 and net._path().e.nconns == 50
    assert sum(i * n for i, n in enumerate(hist)) == 50   # 7.1: 100


def test_nat_reply_found_on_the_client_side_hash():
    net = net61()
    v = net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "S")
    e = net._path().e
    assert e.lookup_in(2, 6, raw("1.1.1.1"), 4000, raw("10.0.0.1"), 80) \
        == v.conn
    assert e.lookup_out(2, 6, raw("1.1.1.1"), 4000, raw("10.0.1.1"), 8080) \
        == v.conn
    r = net.packet("tcp", "10.0.1.1", 8080, "1.1.1.1", 4000, "SA",
                   direction="out", length=60)
    assert (r.action, r.conn) == ("forward", v.conn)
    assert net.get_service("tcp", "10.0.0.1", 80).stats.outpkts == 1
    # and the ICMP error paths use the same lookups
    assert net.packet("icmp", "1.1.1.1", 0, "10.0.0.1", 0, icmp=IcmpError(
        3, 4, ("tcp", "10.0.0.1", 80, "1.1.1.1", 4000))).conn == v.conn


@pytest.mark.parametrize("kernel", ["6.1", "7.1"])
def test_dr_reply_from_the_vip_is_found_and_counted(kernel):
    """ip_vs_conn_out_get() since 5.10 ("inspect reply packets from DR/TUN
    real servers"): a DR conn's reply is VIP:vport -> client:cport, found
    (6.1: same chain; 7.1: the hn0 node, same hash) and handle_response()
    counts it and moves the state without rewriting it."""
    net = ipvs_py.Netns(seed=1, kernel=kernel)
    net.restore("-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g\n")
    v = net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "S")
    assert v.dest == ("10.0.1.1", 80)       # DR: the service's port
    e = net._path().e
    assert e.lookup_out(2, 6, raw("1.1.1.1"), 4000, raw("10.0.0.1"), 80) \
        == v.conn
    assert e.lookup_out(2, 6, raw("1.1.1.1"), 4000, raw("10.0.1.1"), 80) \
        == -1                               # not from the real server
    r = net.packet("tcp", "10.0.0.1", 80, "1.1.1.1", 4000, "SA",
                   direction="out", length=60)
    assert (r.action, r.conn) == ("forward", v.conn)
    assert net.get_service("tcp", "10.0.0.1", 80).stats.outpkts == 1
    state = [c[9] for c in e.conns() if c[0] == v.conn][0]
    assert state == 3                       # SYN_RECV -> SYN_RECV (sSR)
    assert net.packet("tcp", "10.0.1.1", 80, "1.1.1.1", 4000, "SA",
                      direction="out").action == "pass"


def test_no_cport_conn_rehashed_by_its_new_port():
    e = ConnEngine(max_bits=8, min_bits=8, lfactor=0)
    conntab.use_61_hashing(e, 0x123400)
    e.set_dest(0, raw("10.0.1.1"), 80, 2, 0, 1, svc=0)
    e.set_service(0, raw("10.0.0.1"), 0, 2, 17, 0, 0, 0, b"\xff" * 16)
    e.set_sched_callback(lambda *a: 0)
    rnd = conntab.hash61_rnd(e)
    act, did, cid = e.packet(2, 17, raw("1.1.1.1"), 0, raw("10.0.0.1"), 0)
    assert act == "forward" and e.no_cport == 1
    assert conntab.conn_bucket(e, cid) == kernel_bucket(
        2, 17, "1.1.1.1", 0, rnd, 0x123400 << 8, 8)
    assert e.packet(2, 17, raw("1.1.1.1"), 5000, raw("10.0.0.1"), 0)[2] == cid
    assert e.no_cport == 0
    assert conntab.conn_bucket(e, cid) == kernel_bucket(
        2, 17, "1.1.1.1", 5000, rnd, 0x123400 << 8, 8)
    assert e.lookup_in(2, 17, raw("1.1.1.1"), 5000, raw("10.0.0.1"), 0) == cid
    assert e.lookup_out(2, 17, raw("1.1.1.1"), 5000, raw("10.0.1.1"),
                        80) == cid


def test_templates_hash_masked_client_and_port_zero():
    net = net61(persistent="-p 300 -M 255.255.255.0")
    v = net.packet("tcp", "1.1.1.77", 4000, "10.0.0.1", 80, "S")
    e = net._path().e
    path = net._path()
    rnd = conntab.hash61_rnd(e)
    tmpl = [c for c in e.conns() if c[10] & 0x1000]
    assert len(tmpl) == 1
    tid = tmpl[0][0]
    assert conntab.conn_bucket(e, tid) == kernel_bucket(
        2, 6, "1.1.1.0", 0, rnd, path.salt61 << 8, 8)
    # the template keeps the next conn of the /24 on the same real server
    w = net.packet("tcp", "1.1.1.78", 4001, "10.0.0.1", 80, "S")
    assert w.dest == v.dest and e.ntemplates == 1


def test_choosing_61_hashing_after_conns_is_refused():
    net = ipvs_py.Netns(seed=1)
    net.restore("-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m\n")
    net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "S")
    with pytest.raises(ValueError, match="before the first conn"):
        conntab.use_61_hashing(net._path().e, 1)


def test_71_profile_keeps_two_nodes_per_nat_conn():
    net = ipvs_py.Netns(seed=1)
    net.restore("-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m\n")
    for i in range(20):
        net.packet("tcp", f"1.1.{i}.1", 4000, "10.0.0.1", 80, "S")
    hist = net._path().e.histogram()
    assert hist[7] == 0 and sum(i * n for i, n in enumerate(hist)) == 40
