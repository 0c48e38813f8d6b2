"""Multi-core replays run back to back on one Netns (ipvs_mt.h,
ipvs_mt_rows.h): what one run leaves for the next -- the timer heap, the
row memory kept between runs, the clock -- must give the same conns,
counters and verdicts as single-threaded replays of the same pieces, run
after run, whatever the worker counts in between; and the timers left
must fire at the same times afterwards.

Helpers come from test_mt_replay (the traces with persistence, replies,
FIN/RST, UDP and timer gaps, and the slab-id-free snapshot).
"""
import ipaddress

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ipvs_py._core import conntab
from ipvs_py.packets import PacketBatch

from .test_mt_replay import A, S, VIP2, make_net, snapshot, trace

TMPL_BIT = 0x80000000


def before(a, b):
    """Jiffies a before b (the kernel's time_before, 32-bit wrap)."""
    return ((int(a) - int(b)) & 0xFFFFFFFF) >= 0x80000000


def check_timer_heap(net):
    """The heap is a heap in (expires, id) order, and every conn has an
    entry due no later than its expiry (so its timer will fire)."""
    heap = conntab.timer_heap(net._path().e)
    for i in range(1, len(heap)):
        p = (i - 1) // 2
        e, c = heap[i]
        pe, pc = heap[p]
        assert not (before(e, pe) or (e == pe and c < pc)), (i, heap[i],
                                                               heap[p])
    first = {}
    for e, c in heap:
        cid = int(c) & ~TMPL_BIT
        if cid not in first or before(e, first[cid]):
            first[cid] = int(e)
    for row in net._path().e.conns():
        cid, expires = row[0], row[11]
        assert cid in first, f"conn {cid} has no timer"
        assert not before(expires, first[cid]), (cid, expires, first[cid])


def pieces(batch, k):
    """``batch`` cut into ``k`` pieces of uneven length (the row memory
    kept between runs is grown and reused)."""
    n = len(batch)
    cuts = sorted({int(n * f) for f in np.linspace(0, 1, k + 1) ** 1.5})
    return [batch.take(np.arange(a, b)) for a, b in zip(cuts, cuts[1:])
            if b > a]


@pytest.mark.parametrize("sched", ["sh", "mh"])
def test_alternating_runs_equal_single_thread_run_after_run(sched):
    batch = trace(seed=31, n=4000)
    one, many = make_net(sched=sched), make_net(sched=sched)
    plan = [1, 2, None, 3, 2, 1, 2, 4, None, 2]
    for i, part in enumerate(pieces(batch, len(plan))):
        r1 = one.replay(part)
        rn = many.replay(part, workers=plan[i])
        assert list(r1.dest) == list(rn.dest), i
        assert np.array_equal(r1.codes, rn.codes), i
        assert snapshot(one) == snapshot(many), i
        assert one.jiffies == many.jiffies
        check_timer_heap(many)
    # the timers left fire at the same times as on the single-threaded net
    assert snapshot(one)["conns"], "nothing left to expire"
    for _ in range(12):
        one.advance(100)
        many.advance(100)
        assert snapshot(one) == snapshot(many)
    assert many._path().e.nconns == 0


def flows(n, flags, t):
    """One TCP packet of each of ``n`` clients (16 ports per address) to
    VIP2:80 at time ``t``."""
    k = np.arange(n)
    return PacketBatch.from_columns(
        proto=np.full(n, 6, np.uint8), saddr=(0xC6120000 + (k >> 4)).astype(np.uint32),
        sport=(1024 + (k & 15)).astype(np.uint16),
        daddr=np.full(n, int(ipaddress.IPv4Address(VIP2)), np.uint32),
        dport=80, tcp_flags=flags,
        time=float(t), length=100)


def heap_by_conn(net):
    """The heap's entries as sorted (client address, port, expires): the
    contents without slab ids, which differ between a multi-core and a
    single-threaded net."""
    e = net._path().e
    key = {r[0]: (r[3], r[4]) for r in e.conns()}
    return sorted(key[int(c) & ~TMPL_BIT] + (int(x),)
                  for x, c in conntab.timer_heap(e))


def test_timer_heap_equals_single_thread_and_keeps_its_order():
    # SYN_RECV conns at t=0 (entries at 60 s), made ESTABLISHED at t=1
    # (expiry 901 s, entries stay at 60 s): runs at t=2 have no timer
    # due, hand none to the workers and leave the heap array as it was
    # (before, every run moved the whole heap to the workers and back,
    # ~1 push per conn and a reshuffled order); at t=61 the entries fall
    # due, the workers re-arm them, and the heap holds what one thread's
    # holds
    n = 3000
    # no persistence: the shard mask is the whole address (with VIP1's /24
    # every client here would go to one worker)
    one = make_net(sched="mh", persistent=False)
    many = make_net(sched="mh", persistent=False)
    # the SYNs on one thread: slab ids then interleave the workers' clients
    # (two workers' own SYNs take ids from separate 2 MiB chunks, which
    # kept a merged heap sorted by accident)
    steps = [(S, 0, None), (A, 1, 1), (A, 2, 2), (A, 2, 3), (A, 2, 1),
             (A, 61, 2), (A, 62, 1), (A, 62, 2)]
    for flags, t, workers in steps:
        batch = flows(n, flags, t)
        one.replay(batch)
        heap0 = conntab.timer_heap(many._path().e)
        many.replay(batch, workers=workers)
        heap1 = conntab.timer_heap(many._path().e)
        if t == 2 or t == 62:
            assert np.array_equal(heap0, heap1), (flags, t, workers)
        assert len(heap1) == len(conntab.timer_heap(one._path().e))
        assert heap_by_conn(one) == heap_by_conn(many), (flags, t, workers)
        assert snapshot(one) == snapshot(many)
        check_timer_heap(many)
    assert one._path().e.nconns == n


@pytest.mark.parametrize("workers", [2, 3, 4])
@pytest.mark.parametrize("limit", [0, 1])
def test_workers_without_threads_give_the_same_results(workers, limit):
    # as when pthread_create fails: the workers without a thread run on
    # the caller's thread after the others, and the caller scatters the
    # verdicts instead of the workers
    batch = trace(seed=40 + workers, n=2500)
    one = make_net()
    r1 = one.replay(batch)
    conntab.mt_thread_limit(limit)
    try:
        many = make_net()
        rn = many.replay(batch, workers=workers)
    finally:
        conntab.mt_thread_limit(-1)
    assert list(r1.dest) == list(rn.dest)
    assert np.array_equal(r1.codes, rn.codes)
    assert snapshot(one) == snapshot(many)


@settings(max_examples=200, deadline=None)
@given(t=st.one_of(st.floats(0, 4e6, allow_nan=False),
                   st.integers(0, 4_000_000).map(lambda k: k / 8)),
       hz=st.sampled_from([100, 250, 300, 1000]),
       floor=st.integers(0, 2**31))
def test_worker_time_conversion_equals_numpy(t, hz, floor):
    # the workers convert row times themselves; a half-jiffy (k/8 s at
    # 100/250/300/1000 Hz lands on .5 often) must round as numpy does
    # (times below 2^32 jiffies, see the next test)
    want = int(np.maximum(np.round(np.array([t]) * hz), floor)
               .astype(np.uint32)[0])
    assert conntab.mt_jiffies(t, hz, floor) == want


@settings(max_examples=50, deadline=None)
@given(ts=st.lists(st.one_of(st.floats(0, 4e6, allow_nan=False),
                             st.integers(0, 4_000_000).map(lambda k: k / 8)),
                   max_size=50),
       hz=st.sampled_from([100, 250, 1000]), floor=st.integers(0, 2**31))
def test_jiffies_column_equals_numpy(ts, hz, floor):
    # the single-threaded replay converts its time column with it (times
    # below 2^32 jiffies: beyond, numpy's float -> uint32 cast is
    # undefined -- it warns, and its SIMD loop gave 0 where the scalar
    # cast and ipvs_mt_jiffies wrap, as jiffies do)
    t = np.array(ts, np.float64)
    want = np.maximum(np.round(t * hz), floor).astype(np.uint32)
    assert np.array_equal(conntab.jiffies_column(t, hz, floor), want)


@pytest.mark.parametrize("workers", [None, 2])
def test_replay_result_is_freed_without_the_cyclic_gc(workers):
    # a reference cycle in ReplayResult kept each run's result columns
    # (10 MB per 2M rows) alive until the cyclic GC ran, so whether the
    # next run's columns were recycled memory or fresh pages to fault in
    # depended on when the GC had last run: one source of the run-order
    # effect of docs/multicore.md
    import gc
    import weakref
    net = make_net()
    res = net.replay(trace(seed=3, n=200), workers=workers)
    assert res.action[0] in ("forward", "drop", "pass")
    ref = weakref.ref(res)
    enabled = gc.isenabled()
    gc.disable()
    try:
        del res
        assert ref() is None
    finally:
        if enabled:
            gc.enable()


@pytest.mark.parametrize("n, workers", [(1, 4), (3, 64), (5, 2)])
def test_more_workers_than_rows(n, workers):
    # empty slices and workers without a row still meet at the barriers
    batch = trace(seed=9, n=n)
    one, many = make_net(), make_net()
    r1 = one.replay(batch)
    rn = many.replay(batch, workers=workers)
    assert list(r1.dest) == list(rn.dest)
    assert np.array_equal(r1.codes, rn.codes)
    assert snapshot(one) == snapshot(many)
