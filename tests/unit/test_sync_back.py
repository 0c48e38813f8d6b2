"""After a replay the Python objects hold the engine's counters:
ConnPath.sync_back copies them with ConnEngine.copy_svc_counters and
copy_dest_counters (one C loop each).  The reference is the engine's
own per-row accessors, svc_counters() and dest_counters()."""
import pytest

import ipvs_py
from ipvs_py.stats import COUNTERS

RULES = """\
-A -t 192.0.2.1:80 -s rr
-a -t 192.0.2.1:80 -r 10.0.0.1:80 -m
-a -t 192.0.2.1:80 -r 10.0.0.2:80 -m -x 1
-A -t 192.0.2.2:80 -s wlc -p 60
-a -t 192.0.2.2:80 -r 10.0.0.3:80 -g
-A -u 192.0.2.3:53 -s sh
-a -u 192.0.2.3:53 -r 10.0.0.4:53 -m
-A -f 7 -s wrr
-a -f 7 -r 10.0.0.5:0 -g -w 3
"""


def packets(n, t0):
    """``n`` clients, each a SYN to the three tuple services (the
    threshold -x 1 on 10.0.0.2 overloads it) and a UDP query."""
    out = []
    for i in range(n):
        c = f"198.51.100.{i + 1}"
        t = t0 + i * 0.01
        out += [("tcp", c, 40000 + i, "192.0.2.1", 80, "S", t),
                ("tcp", c, 41000 + i, "192.0.2.2", 80, "S", t),
                ("udp", c, 42000 + i, "192.0.2.3", 53, "", t)]
    return out


def assert_synced(net):
    """Every live service and dest equals the engine's counters."""
    path = net._path()
    e = path.e
    for si, svc in enumerate(path._svcs):
        if svc is None:
            continue
        assert tuple(getattr(svc.stats, c) for c in COUNTERS) == \
            e.svc_counters(si), svc
    for di, d in enumerate(path._dests):
        act, inact, pers, ref, flags, *st = e.dest_counters(di)
        assert (d.activeconns, d.inactconns, d.persistconns, d.refcnt) == \
            (act, inact, pers, ref), d
        assert d.flags & 2 == flags & 2, d        # overload
        assert tuple(getattr(d.stats, c) for c in COUNTERS) == tuple(st), d


@pytest.mark.parametrize("kernel", ["7.1", "6.1"])
def test_objects_hold_engine_counters_after_each_replay(kernel):
    net = ipvs_py.Netns(kernel=kernel)
    net.restore(RULES)
    net.replay(packets(5, 0.0))
    assert_synced(net)
    svc = net.find_service(2, 6, "192.0.2.1", 80)
    assert svc.stats.conns == 5
    assert sum(d.activeconns + d.inactconns for d in svc.dests) == 5
    overloaded = [d for d in svc.dests if str(d.addr) == "10.0.0.2"][0]
    assert overloaded.flags & 2, "the -x 1 dest is overloaded"
    # a second replay changes only some rows (a sixth client's three
    # packets): they are copied, the rest keep what they had
    net.replay(packets(6, 1.0)[15:])
    assert_synced(net)
    assert svc.stats.conns == 6


def test_copy_rejects_unknown_rows_and_skips_missing_objects():
    net = ipvs_py.Netns()
    net.restore(RULES)
    net.replay(packets(2, 0.0))
    path = net._path()
    e = path.e
    with pytest.raises(IndexError, match="no service 100000"):
        e.copy_svc_counters([100000], path._svcs)
    with pytest.raises(IndexError, match="no service -1"):
        e.copy_svc_counters([-1], path._svcs)
    with pytest.raises(IndexError, match="no dest 100000"):
        e.copy_dest_counters([100000], path._dests)
    # a None slot (a deleted service) and an index past the list are
    # skipped, not an error
    e.copy_svc_counters([0], [None])
    e.copy_svc_counters([0], [])
    with pytest.raises(TypeError):
        e.copy_dest_counters([0], None)


@pytest.mark.parametrize("kernel", ["7.1", "6.1"])
def test_scheduler_positions_are_written_back(kernel):
    """sync_back writes the rr/wrr positions back (its counters come from
    the engine, not from the scheduler's rows): the next decision made in
    Python continues where the engine's left off."""
    net = ipvs_py.Netns(kernel=kernel)
    net.restore("-A -t 192.0.2.9:80 -s rr\n" + "".join(
        f"-a -t 192.0.2.9:80 -r 10.0.9.{i}:80 -m\n" for i in (1, 2, 3)))
    res = net.replay([("tcp", f"198.51.100.{i + 1}", 40000, "192.0.2.9", 80,
                       "S", i * 0.01) for i in range(4)])
    svc = net.find_service(2, 6, "192.0.2.9", 80)
    last = [d for d in svc.dests if (str(d.addr), d.port) == res.dest[-1]]
    assert svc.sched_data.cur is last[0]
    assert svc.dests.index(last[0]) == svc.sched_data.idx
    assert_synced(net)


def test_row_dests_are_the_dests_of_the_services_schedulers():
    net = ipvs_py.Netns()
    net.restore(RULES)
    path = net._path()
    path.sync_config()
    e = path.e
    for si, svc in enumerate(path._svcs):
        want = {path._dest_ids[d] for d in svc.dests}
        assert e.row_dests([si]) == want, svc
    assert e.row_dests(range(len(path._svcs))) == set(path._dest_ids.values())
    assert e.row_dests([]) == set()
    with pytest.raises(IndexError, match="no service 99"):
        e.row_dests([0, 99])
