"""lblc and lblcr: caches keyed by destination address, on the virtual clock."""
from ipvs_py.schedulers import lblc, lblcr
from ipvs_py.schedulers.base import (HZ, is_available,
                                     unlink_dest)

from .helpers import make, pkt


def to(svc, d):
    return svc.dests.index(d) if d is not None else -1


def test_lblc_sticks_to_the_cached_dest_until_overloaded():
    svc, s = make("lblc", [1, 1])         # list b a
    b, a = svc.dests
    p = pkt("1.1.1.1", daddr="10.9.0.1", now=0)
    assert s.schedule(svc, p) is b        # wlc: first of equals
    b.activeconns = a.activeconns = 0
    b.inactconns = 50                     # wlc would now say a ...
    assert s.schedule(svc, p) is b        # ... but the cache says b
    b.activeconns = 2                     # > weight, but no dest with
    a.activeconns = 1                     # active*2 < weight: still b
    assert s.schedule(svc, p) is b
    a.activeconns = 0                     # now a is "less loaded"
    assert s.schedule(svc, p) is a
    assert svc.sched_data.get(lblc.addr_key(p.daddr)).dest is a


def test_lblc_replacing_an_entry_leaks_the_count_like_the_kernel():
    svc, s = make("lblc", [1, 1])
    b, a = svc.dests
    p = pkt("1.1.1.1", daddr="10.9.0.1", now=0)
    s.schedule(svc, p)
    b.weight = 0                          # cached dest unusable -> replace
    assert s.schedule(svc, p) is a
    assert len(svc.sched_data.index) == 1
    assert svc.sched_data.entries == 2    # ip_vs_lblc_del() does not dec


def test_lblc_removed_dest_is_not_available():
    svc, s = make("lblc", [1, 1])
    b, a = svc.dests
    p = pkt("1.1.1.1", daddr="10.9.0.1", now=0)
    assert s.schedule(svc, p) is b
    unlink_dest(svc, b, s)
    assert not b.available and not is_available(b)
    assert s.schedule(svc, p) is a


def test_lblc_full_expiry_runs_every_30th_tick():
    svc, s = make("lblc", [1, 1])
    svc.sysctl["lblc_expiration"] = 60
    b, a = svc.dests
    p = pkt("1.1.1.1", daddr="10.9.0.1", now=0)
    assert s.schedule(svc, p) is b
    b.inactconns = 9                      # wlc prefers a from now on
    for t in (61, 600, 1799):             # entry expired but no full check
        assert s.schedule(svc, pkt("1.1.1.1", daddr="10.9.0.1", now=t)) is b
    # tick 30 at t=1800 s: full check; the last use was at t=1799 -> kept
    assert s.schedule(svc, pkt("1.1.1.1", daddr="10.9.0.1", now=1800)) is b
    # next full check at t=3600 drops it (idle since 1800 > 60 s)
    assert s.schedule(svc, pkt("1.1.1.1", daddr="10.9.0.1", now=3600)) is a
    assert svc.sched_data.counter == 1


def test_lblc_tick_collects_without_traffic():
    svc, s = make("lblc", [1])
    svc.sysctl["lblc_expiration"] = 10
    for i in range(50):
        s.schedule(svc, pkt("1.1.1.1", daddr=0x0B000000 + i, now=0))
    assert len(svc.sched_data.index) == 50
    s.tick(svc, 1799)
    assert len(svc.sched_data.index) == 50
    s.tick(svc, 1800)
    assert len(svc.sched_data.index) == 0 and svc.sched_data.entries == 0


def test_lblc_partial_gc_above_max_size():
    svc, s = make("lblc", [1])
    tbl = svc.sched_data
    tbl.max_size = 8                      # shrink the 16384 for the test
    keys = [0x0B000000 + i for i in range(20)]
    for k in keys:
        s.schedule(svc, pkt("1.1.1.1", daddr=k, now=0))
    # ticks at 60..300 s: 20 > 8 entries but none idle for 6 min
    s.tick(svc, 300)
    assert tbl.entries == 20 and tbl.rover == 0
    # tick at 360 s: all idle >= 6 min; goal min((20-8)*4/3, 8/2) = 4:
    # whole buckets from rover+1 on until 4 or more are gone
    occupied = sorted({lblc.hashkey(2, k) for k in keys})
    per = {b: sum(lblc.hashkey(2, k) == b for k in keys) for b in occupied}
    gone, last = 0, None
    for b in occupied:
        gone += per[b]
        last = b
        if gone >= 4:
            break
    s.tick(svc, 360)
    assert tbl.entries == 20 - gone and tbl.rover == last


def test_lblcr_replicates_when_overloaded_and_shrinks_after_expiry():
    svc, s = make("lblcr", [1, 1])        # list b a
    svc.sysctl["lblcr_expiration"] = 100
    b, a = svc.dests
    d = pkt("1.1.1.1", daddr="10.9.0.1", now=0)
    assert s.schedule(svc, d) is b
    b.activeconns, a.activeconns = 2, 0   # b overloaded, a lightly loaded
    assert s.schedule(svc, pkt("1.1.1.1", daddr="10.9.0.1", now=1)) is a
    en = svc.sched_data.get(lblcr.addr_key(d.daddr))
    assert en.set.dests == [a, b]         # newest first
    assert en.set.lastmod == 1 * HZ
    b.activeconns = 0
    # set min among members: a (first, equal load)
    assert s.schedule(svc, pkt("1.1.1.1", daddr="10.9.0.1", now=50)) is a
    # > 100 s since the set changed: the most loaded member is dropped
    a.activeconns = 1
    assert s.schedule(svc, pkt("1.1.1.1", daddr="10.9.0.1", now=102)) is b
    assert en.set.dests == [b]


def test_lblcr_no_dest_returns_none():
    svc, s = make("lblcr", [0, 0])
    assert s.schedule(svc, pkt("1.1.1.1", now=0)) is None
