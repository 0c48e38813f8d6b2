"""The packet path's service index (include/ipvs_svcindex.h) against the
scan it replaced: for random service sets (fwmark and tuple services, both
families, FTP and port-zero services, removed ones kept for their stats)
and random packets, both answer the same service."""
import ipaddress

from hypothesis import given, settings, strategies as st

from ipvs_py._core.conntab import ConnEngine

V4 = [ipaddress.ip_address(f"10.0.0.{i}").packed.ljust(16, b"\0")
      for i in range(1, 5)]
V6 = [ipaddress.ip_address(f"2001:db8::{i}").packed for i in range(1, 5)]
# few addresses and ports, so services and packets meet often (FTP data
# to 1023/1024 with a port-21 service, port-zero fallbacks)
SVC_PORTS = [0, 21, 80, 1024]
PKT_PORTS = [20, 21, 80, 1023, 1024, 21000]
MASK = b"\xff" * 16


def addr_of(af, i):
    return (V6 if af == 10 else V4)[i]


service = st.tuples(
    st.sampled_from([2, 10]),            # af
    st.sampled_from([6, 6, 17, 132]),    # protocol
    st.integers(0, 1),                   # address
    st.sampled_from(SVC_PORTS),
    st.sampled_from([0, 0, 0, 1, 2]),    # fwmark (mostly none)
    st.booleans())                       # live

packet = st.tuples(st.sampled_from([2, 10]), st.sampled_from([6, 6, 17, 132]),
                   st.integers(0, 1), st.sampled_from(PKT_PORTS),
                   st.sampled_from([0, 1, 2, 3]))


def engine_with(svcs):
    e = ConnEngine(250, 8, 12, 0)
    for i, (af, proto, a, port, fwmark, live) in enumerate(svcs):
        if fwmark:
            proto, a, port = 0, 0, 0
        e.set_service(i, addr_of(af, a), port, af, proto, fwmark, 0, 0,
                      MASK, live=live)
    return e


@settings(max_examples=400, deadline=None)
@given(st.lists(service, min_size=1, max_size=24),
       st.lists(packet, min_size=1, max_size=40))
def test_index_answers_as_the_scan(svcs, pkts):
    e = engine_with(svcs)
    for af, proto, a, port, fwmark in pkts:
        args = (af, proto, addr_of(af, a), port, fwmark)
        assert e.service_for(*args) == e.service_for(*args, scan=True)


def test_lookup_order_fwmark_tuple_ftp_port_zero():
    """ip_vs_service_find's order: fwmark, the tuple, FTP (TCP to port 20
    or an unprivileged port, with a port-21 service), port zero."""
    e = engine_with([(2, 6, 0, 21, 0, True), (2, 6, 0, 0, 0, True),
                     (2, 6, 0, 80, 0, True), (2, 0, 0, 0, 1, True)])
    a = V4[0]
    assert e.service_for(2, 6, a, 80) == 2
    assert e.service_for(2, 6, a, 80, fwmark=1) == 3
    assert e.service_for(2, 6, a, 80, fwmark=2) == 2
    assert [e.service_for(2, 6, a, p) for p in (20, 1023, 1024, 21000)] \
        == [0, 1, 0, 0]
    assert e.service_for(2, 17, a, 1024) == -1       # FTP is TCP only
    assert e.service_for(10, 6, V6[0], 80) == -1


def test_index_follows_changes():
    """A removed service stops matching and a re-added one matches at
    once: every set_service marks the index for a rebuild."""
    e = engine_with([(2, 6, 0, 80, 0, True), (2, 6, 0, 0, 0, True)])
    assert e.service_for(2, 6, V4[0], 80) == 0
    e.set_service(0, V4[0], 80, 2, 6, 0, 0, 0, MASK, live=False)
    assert e.service_for(2, 6, V4[0], 80) == 1           # port zero now
    e.set_service(0, V4[0], 80, 2, 6, 0, 0, 0, MASK, live=True)
    assert e.service_for(2, 6, V4[0], 80) == 0


def test_many_services_each_found():
    """10,000 services in one index: each found, neighbours not confused,
    a missing one not found."""
    e = ConnEngine(250, 8, 12, 0)
    n = 10_000
    addrs = [ipaddress.ip_address(0x0A000000 + i).packed.ljust(16, b"\0")
             for i in range(n)]
    for i in range(n):
        e.set_service(i, addrs[i], 80, 2, 6, 0, 0, 0, MASK)
    assert all(e.service_for(2, 6, addrs[i], 80) == i for i in range(n))
    assert e.service_for(2, 6, addrs[5], 81) == -1
    assert e.service_for(2, 17, addrs[5], 80) == -1


def test_bad_arguments():
    e = ConnEngine(250, 8, 12, 0)
    import pytest
    with pytest.raises(ValueError, match="16 raw bytes"):
        e.service_for(2, 6, b"\0" * 4, 80)
    with pytest.raises(ValueError, match="outside"):
        e.service_for(2, 6, V4[0], 70000)
