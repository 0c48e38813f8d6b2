"""A trace split into RSS queues (multicore.rss_queues) and replayed one
worker per queue (Netns.replay_queues) against the single-threaded replay
of the whole trace: exact equality for the hash schedulers, as the shared
trace split by the workers themselves gives (test_mt_replay.py); a queue
holding another worker's row is refused before anything changes."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ipvs_py import multicore
from ipvs_py._core import conntab
from ipvs_py.packets import PacketBatch

from .test_mt_replay import make_net, new_clients, snapshot, trace


def replay_split(batch, n, **kw):
    net = make_net(**kw)
    queues = multicore.rss_queues(net, batch, n)
    results = net.replay_queues(queues)
    return net, queues, results


def assert_equal_to_one_thread(batch, n, **kw):
    one = make_net(**kw)
    r1 = one.replay(batch)
    many, queues, results = replay_split(batch, n, **kw)
    dest, codes = queues.merge(results)
    # engine dest ids follow each net's own walk order: compare the
    # dests by address, the codes as they are
    assert list(r1.dest) == [many._path()._dest_tuple(int(d)) for d in dest]
    assert np.array_equal(r1.codes, codes)
    assert snapshot(one) == snapshot(many)
    return one, many, queues


@pytest.mark.parametrize("sched", ["sh", "mh"])
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_queues_equal_single_thread_exactly(sched, n):
    one, many, queues = assert_equal_to_one_thread(
        trace(seed=70 + n), n, sched=sched)
    assert sum(len(b) for b in queues.batches) == 3000
    assert snapshot(one)["conns"], "trace made no conns"


@pytest.mark.parametrize("kernel", ["7.1", "6.1"])
def test_queues_on_both_kernels_without_persistence(kernel):
    # no persistence: the split is by the whole client address, so the
    # 60 clients spread over every queue (with the /24 templates they
    # fall into three groups)
    _, _, queues = assert_equal_to_one_thread(
        trace(seed=81), 2, kernel=kernel, persistent=False)
    assert all(len(b) > 500 for b in queues.batches)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 4),
       rows=st.integers(1, 1200), persistent=st.booleans())
def test_property_queues_equal_single_thread(seed, n, rows, persistent):
    assert_equal_to_one_thread(trace(seed, n=rows, span=rows * 0.8), n,
                               sched="mh", persistent=persistent)


def test_split_keeps_every_row_once_in_trace_order():
    batch = trace(seed=3)
    net = make_net(persistent=False)
    queues = multicore.rss_queues(net, batch, 3)
    rows = np.concatenate(queues.rows)
    assert sorted(rows) == list(range(len(batch)))
    shard = conntab.shard_rows(batch, net._path().shard_mask(), 3)
    for k, (b, r) in enumerate(zip(queues.batches, queues.rows)):
        assert np.all(np.diff(r) > 0)                  # trace order
        assert np.all(shard[r] == k)
        assert np.array_equal(b.saddr, batch.saddr[r])
        assert np.array_equal(b.time, batch.time[r])


def test_a_reply_goes_to_the_queue_of_its_client():
    # the client is the destination of a reply (direction 1)
    batch = trace(seed=4, replies=True)
    net = make_net(persistent=False)
    shard = conntab.shard_rows(batch, net._path().shard_mask(), 4)
    out = batch.direction == 1
    assert out.any()
    swapped = batch.take(np.flatnonzero(out))
    as_client = PacketBatch.from_columns(
        proto=swapped.proto, saddr=swapped.daddr, daddr=swapped.saddr,
        sport=swapped.dport, dport=swapped.sport, time=swapped.time,
        af=swapped.af)
    assert np.array_equal(
        conntab.shard_rows(as_client, net._path().shard_mask(), 4),
        shard[out])


def test_misrouted_row_is_refused_and_nothing_changes():
    net = make_net(persistent=False)
    net.replay(trace(seed=9, n=800))            # conns and timers in place
    before = snapshot(net)
    heap = np.sort(conntab.timer_heap(net._path().e), axis=0)
    jiffies = net.jiffies
    queues = multicore.rss_queues(net, trace(seed=10), 2)
    with pytest.raises(ValueError, match=r"queue 0 row 0: its client "
                       r"belongs to queue 1 of 2.*nothing was replayed"):
        net.replay_queues(queues.batches[::-1])
    assert snapshot(net) == before
    assert np.array_equal(
        np.sort(conntab.timer_heap(net._path().e), axis=0), heap)
    assert net.jiffies == jiffies
    # the right queues still replay after the refusal
    results = net.replay_queues(queues)
    assert sum(len(r) for r in results) == 3000


def test_one_wrong_row_deep_in_a_queue_is_named():
    net = make_net(persistent=False)
    queues = multicore.rss_queues(net, trace(seed=12), 2)
    q0, q1 = queues.batches
    bad = PacketBatch.concat([q0, q1.take([len(q1) - 1])], sort=False)
    with pytest.raises(ValueError, match=rf"queue 0 row {len(q0)}:"):
        net.replay_queues([bad, q1.take(range(len(q1) - 1))])
    assert net._path().e.nconns == 0


def test_split_for_a_mask_that_changed_is_refused():
    # split with no persistent service, then one with a /8 netmask:
    # clients of one /8 must now share a queue
    net = make_net(persistent=False)
    queues = multicore.rss_queues(net, trace(seed=13), 2)
    net.restore("-A -t 192.0.2.9:80 -s sh -p 60 -M 255.0.0.0\n")
    with pytest.raises(ValueError, match="split the trace with"):
        net.replay_queues(queues)


@pytest.mark.parametrize("limit", [0, 1])
def test_queues_without_threads_give_the_same_results(limit):
    # the workers without a thread check and run their queues on the
    # caller's thread after the others (as when pthread_create fails)
    batch = trace(seed=15, n=2500)
    one = make_net()
    one.replay(batch)
    conntab.mt_thread_limit(limit)
    try:
        many, queues, results = replay_split(batch, 3)
        with pytest.raises(ValueError, match="queue 0 row 0"):
            make_net().replay_queues(
                [queues.batches[1], queues.batches[0], queues.batches[2]])
    finally:
        conntab.mt_thread_limit(-1)
    assert snapshot(one) == snapshot(many)


def test_empty_queues_and_bad_arguments():
    net = make_net()
    batch = new_clients(100)
    queues = multicore.rss_queues(net, batch, 2)
    empty = PacketBatch.empty(0)
    assert [len(r) for r in net.replay_queues([empty, empty])] == [0, 0]
    with pytest.raises(ValueError, match="queues must be 1..64, got 0"):
        net.replay_queues([])
    with pytest.raises(ValueError, match="queues must be 1..64"):
        multicore.rss_queues(net, batch, 65)
    with pytest.raises(ValueError, match=r"2 queues, 1 results"):
        queues.merge(net.replay_queues([batch.take([])]))
    assert repr(queues).startswith("<RssQueues 100 rows in 2 queues")


def test_flow_cache_and_stripes_switches_with_queues():
    batch = trace(seed=16)
    one = make_net(sched="sh")
    one.replay(batch)
    for stripes, fc in ((0, 4), (1, 0), (256, 4)):
        many, _, _ = replay_split(batch, 2, sched="sh", stripes=stripes,
                                  flow_cache=fc)
        assert snapshot(one) == snapshot(many), (stripes, fc)
