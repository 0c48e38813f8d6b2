"""A dropped Netns is freed at once, by reference counting, with its conn
table: no part of it refers back to it strongly (ipvs_py._weak).  Before,
every Netns sat in reference cycles and a sweep building one net per
setting kept each dead net's memory until the cyclic collector ran."""
import gc
import ipaddress
import weakref

import pytest

import ipvs_py
from ipvs_py import multicore

RULES = """\
-A -t 192.0.2.1:80 -s mh
-a -t 192.0.2.1:80 -r 10.0.0.1:80 -m
-a -t 192.0.2.1:80 -r 10.0.0.2:80 -m
-A -t 192.0.2.2:80 -s rr -p 60
-a -t 192.0.2.2:80 -r 10.0.0.3:80 -g
-A -f 7 -s wlc
-a -f 7 -r 10.0.0.4:0 -g
"""


def syn(client, vip, t):
    return ("tcp", client, 40000, vip, 80, "S", t)


@pytest.fixture
def no_gc():
    """The cyclic collector off: only reference counts free objects."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def used_net(kernel, workers):
    """A Netns put through most of its API: rules, packets (one thread or
    ``workers``), a dest deleted while a conn uses it (dest_trash), a
    deleted service, sysctl writes with hooks, the clock, the texts."""
    net = ipvs_py.Netns(kernel=kernel)
    net.restore(RULES)
    if workers:
        multicore.configure(net, stripes=8, flow_cache=4)
    net.replay([syn("198.51.100.1", "192.0.2.1", 0.0),
                syn("198.51.100.2", "192.0.2.2", 0.1)], workers=workers)
    net.restore("-d -t 192.0.2.1:80 -r 10.0.0.1:80\n"
                "-d -t 192.0.2.1:80 -r 10.0.0.2:80\n")
    net.restore("-D -t 192.0.2.2:80\n")
    assert net.dest_trash, "a dest with a conn goes to the trash"
    net.sysctl["drop_entry"] = 1
    if kernel != "6.1":
        net.sysctl["svc_lfactor"] = 2
    net.advance(30)
    net.list_text(stats=True)
    net.proc_ip_vs()
    net.proc_ip_vs_conn()
    if kernel != "6.1":                # no ip_vs_status in 6.1
        net.status()
    return net


@pytest.mark.parametrize("kernel", ["7.1", "6.1"])
@pytest.mark.parametrize("workers", [None, 2])
def test_dropped_netns_is_freed_without_the_collector(no_gc, kernel,
                                                      workers):
    net = used_net(kernel, workers)
    refs = [weakref.ref(x) for x in
            (net, net._path(), net._path().e, net.svc_table, net.sysctl)]
    refs += [weakref.ref(d) for d in net.dest_trash]
    del net
    assert [r() for r in refs] == [None] * len(refs)


def test_hooks_still_reach_a_live_netns():
    # the weak hooks run while the net lives: a svc_lfactor write resizes
    # the service table, a defense sysctl write updates the defense state
    net = ipvs_py.Netns()
    for i in range(64):
        net.restore(f"-A -t 192.0.2.{i + 1}:80 -s rr\n")
    before = net.svc_table.size
    net.sysctl["svc_lfactor"] = 3
    assert net.svc_table.size < before
    net.sysctl["secure_tcp"] = 3
    assert net.secure_tcp_on


def test_trash_dest_revived_into_a_new_service_starts_from_zero_stats():
    # __ip_vs_update_dest(): old dest->svc != the new service -> zeroed
    # stats, also when the old service object is gone (a weak dest.svc)
    net = ipvs_py.Netns()
    net.restore("-A -t 192.0.2.1:80 -s rr\n"
                "-a -t 192.0.2.1:80 -r 10.0.0.1:80 -m\n")
    net.packet("tcp", "198.51.100.1", 40000, "192.0.2.1", 80, "S")
    dest = net.find_service(2, 6, ipaddress.ip_address("192.0.2.1"), 80).dests[0]
    assert dest.stats.shown()["conns"] == 1
    net.restore("-D -t 192.0.2.1:80\n")
    assert net.dest_trash == [dest]
    net.restore("-A -t 192.0.2.1:80 -s rr\n"
                "-a -t 192.0.2.1:80 -r 10.0.0.1:80 -m\n")
    svc = net.find_service(2, 6, ipaddress.ip_address("192.0.2.1"), 80)
    assert svc.dests == [dest] and dest.svc is svc
    assert dest.stats.shown()["conns"] == 0
