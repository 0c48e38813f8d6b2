"""The schedulers on the control plane's own objects (ipvs_py.Netns).

``Netns._sched_hook`` is the control plane's stub for issue 7; bound to
``ipvs_py.schedulers.sched_hook`` it must give every Service the state its
scheduler expects, through scheduler switches, dest edits and the virtual
clock.
"""
import pytest

import ipvs_py
from ipvs_py import schedulers as S
from ipvs_py.schedulers.base import PacketInfo

Netns = getattr(ipvs_py, "Netns", None)
pytestmark = pytest.mark.skipif(Netns is None, reason="no control plane")


@pytest.fixture
def net():
    n = Netns(kernel="6.1")
    n._sched_hook = lambda name, svc, dest=None: S.sched_hook(n, name, svc, dest)
    return n


def test_switching_schedulers_rebuilds_the_state(net):
    svc = net.add_service("tcp", "10.0.0.1", 80, sched_name="wlc")
    assert svc.sched_data is None                  # wlc keeps no state
    for i, w in enumerate((1, 2, 3)):
        net.add_dest(svc, f"10.1.0.{i + 1}", 80, weight=w)
    net.edit_service("tcp", "10.0.0.1", 80, sched_name="sh")
    assert len(svc.sched_data) == 256 and set(svc.sched_data) <= set(svc.dests)
    net.edit_service("tcp", "10.0.0.1", 80, sched_name="mh",
                     sched_flags=S.IP_VS_SVC_F_SCHED_MH_PORT)
    assert svc.flags & S.IP_VS_SVC_F_SCHED_MH_PORT
    assert sum(1 for d in svc.sched_data.lookup if d is not None) == 4093
    sch = S.scheduler_get("mh")
    d = sch.schedule(svc, PacketInfo(saddr=ipvs_py_addr("192.168.1.1"),
                                     sport=4000))
    assert d in svc.dests
    net.edit_service("tcp", "10.0.0.1", 80, sched_name="none")
    assert svc.sched_data is None
    net.edit_service("tcp", "10.0.0.1", 80, sched_name="rr")
    rr = S.scheduler_get("rr")
    got = [rr.schedule(svc, PacketInfo(saddr=1)) for _ in range(3)]
    assert got == svc.dests                        # newest first


def test_weight_zero_quiesces_mh_through_edit_dest(net):
    svc = net.add_service("udp", "10.0.0.2", 53, sched_name="mh")
    for i in range(4):
        net.add_dest(svc, f"10.2.0.{i + 1}", 53, weight=2)
    table = list(svc.sched_data.lookup)
    net.edit_dest(svc, "10.2.0.2", 53, weight=0)   # last_weight stays 2
    assert svc.sched_data.lookup == table
    net.del_dest(svc, "10.2.0.3", 53)
    assert all(d is None or d.available for d in svc.sched_data.lookup)


def test_lblc_runs_on_the_netns_clock_and_sysctl(net):
    svc = net.add_service(fwmark=5, sched_name="lblc")
    net.sysctl["lblc_expiration"] = 60
    a = net.add_dest(svc, "10.3.0.1", 0, weight=1)
    b = net.add_dest(svc, "10.3.0.2", 0, weight=1)
    sch = S.scheduler_get("lblc")
    pkt = PacketInfo(saddr=1, daddr=ipvs_py_addr("10.9.9.9"))
    assert sch.schedule(svc, pkt) is b             # newest first, equal load
    b.inactconns = 5                               # wlc would now pick a
    net.advance(600)
    assert sch.schedule(svc, pkt) is b             # cached
    net.advance(1800)                              # a full check has run
    assert sch.schedule(svc, pkt) is a


def ipvs_py_addr(s):
    import ipaddress
    return int(ipaddress.ip_address(s))
