"""The table core's chain-walk and resize-pause counters (iht_walkstats.h)
against what the chains really hold."""
import collections

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

import ipvs_py  # noqa: E402
from ipvs_py._core.table import WALK_BINS, Table  # noqa: E402
from ipvs_py.packets import PacketBatch  # noqa: E402


def chain_positions(t):
    """{key: 1-based position in its bucket's chain}, {bucket: length},
    from the walk order (bucket by bucket, head first) and each key's
    bucket (hash_key & (size - 1))."""
    mask = t.size - 1
    pos, length = {}, collections.Counter()
    for key, _ in t.items():
        b = t.entry_hash_key(key) & mask
        length[b] += 1
        pos[key] = length[b]
    return pos, length


@settings(max_examples=60, deadline=None)
@given(keys=st.sets(st.binary(min_size=4, max_size=4), min_size=1,
                    max_size=400),
       probes=st.lists(st.binary(min_size=4, max_size=4), max_size=200),
       lfactor=st.integers(-2, 4))
def test_walked_nodes_equal_chain_positions(keys, probes, lfactor):
    t = Table(4, 12, lfactor, key_size=4)
    for i, k in enumerate(sorted(keys)):
        t.insert(k, i)
    pos, length = chain_positions(t)
    mask = t.size - 1
    t.count_walks()
    lookups = sorted(keys) + probes
    expect_walked = 0
    expect_hist = collections.Counter()
    for k in lookups:
        t.lookup(k)
        # a hit walks up to and including its node, a miss the whole chain
        w = pos[k] if k in pos else length[t.entry_hash_key(k) & mask]
        expect_walked += w
        expect_hist[w] += 1
    s = t.walk_stats()
    assert s["lookups"] == len(lookups)
    assert s["hits"] == sum(k in pos for k in lookups)
    assert s["walked"] == expect_walked
    assert {k: v for k, v in enumerate(s["hist"]) if v} == dict(expect_hist)


def test_counting_is_off_until_asked_and_stops():
    t = Table(4, 8, 0, key_size=4)
    t.insert(b"abcd", 1)
    t.lookup(b"abcd")
    assert t.walk_stats()["lookups"] == 0
    t.count_walks()
    t.lookup(b"abcd")
    t.count_walks(False)
    t.lookup(b"abcd")
    s = t.walk_stats()
    assert (s["lookups"], s["hits"], s["walked"]) == (1, 1, 1)
    t.count_walks()                        # restarting resets
    assert t.walk_stats()["lookups"] == 0


def test_long_chains_land_in_the_open_last_bin_with_exact_sum():
    t = Table(4, 4, 8, key_size=4)         # 16 buckets, never grows
    n = 16 * (WALK_BINS + 10)
    t.insert_batch(np.arange(n, dtype="<u4").view(np.uint8).reshape(n, 4),
                   np.arange(n, dtype=np.uint64))
    pos, length = chain_positions(t)
    assert max(length.values()) >= WALK_BINS
    t.count_walks()
    for k in list(pos)[::97]:
        t.lookup(k)
    s = t.walk_stats()
    probes = list(pos)[::97]
    assert s["walked"] == sum(pos[k] for k in probes)
    assert s["hist"][WALK_BINS - 1] == sum(pos[k] >= WALK_BINS - 1
                                           for k in probes)


def test_resize_pauses_are_timed():
    t = Table(4, 16, 0, key_size=4)
    s = t.walk_stats()
    assert (s["resizes"], s["pause_max_ns"], s["pause_total_ns"]) == (0, 0, 0)
    for i in range(5000):
        t.insert(i.to_bytes(4, "little"), i)
    s = t.walk_stats()
    assert s["resizes"] == t.info()["resizes"] > 0
    assert 0 < s["pause_max_ns"] <= s["pause_total_ns"]


def _udp_flows(n, t0, seed=3):
    rng = np.random.default_rng(seed)
    saddr = (0xC6120000 + rng.permutation(n)).astype(np.uint32)
    return PacketBatch.from_columns(
        proto=np.full(n, 17, np.uint8), saddr=saddr, sport=4000,
        daddr=np.full(n, 0xC0000235, np.uint32), dport=53,
        time=np.full(n, t0))


def test_conn_replay_hits_walk_exactly_their_chain_positions():
    """One packet per existing DR conn (one hash node each) walks, summed
    over the conns, sum(L * (L + 1) / 2) over the buckets' lengths L.

    The histogram's last bin is "7 or more", so the formula needs a table
    without such a chain.  Each array gets a fresh random key, and about
    one net in 150 has one here (/tmp loop of 300 nets: 2); the test
    takes the first of five nets that has none."""
    n = 20_000
    for _ in range(5):
        net = ipvs_py.Netns(conn_tab_bits=16)
        net.sysctl["conn_lfactor"] = -3
        net.restore("-A -u 192.0.2.53:53 -s rr\n"
                    "-a -u 192.0.2.53:53 -r 10.0.2.1:53 -g\n")
        e = net._path().e
        e.count_walks()
        net.replay(_udp_flows(n, 0.0))           # n misses, n inserts
        first = e.table_stats()
        assert (first["lookups"], first["hits"]) == (n, 0)
        hist = net.conn_chain_lengths()          # [empty, len-1 .. len-7+]
        if hist[7] == 0:
            break
    assert hist[7] == 0, "five nets in a row had a chain of 7 or more"
    net.replay(_udp_flows(n, 1.0))               # n hits, nothing moves
    second = e.table_stats()
    assert second["resizes"] == first["resizes"]
    assert second["lookups"] - first["lookups"] == n
    assert second["hits"] == n
    assert second["walked"] - first["walked"] == sum(
        c * L * (L + 1) // 2 for L, c in enumerate(hist[:7]))


def test_time_lookups_checks_rows_at_the_boundary():
    net = ipvs_py.Netns()
    net.restore("-A -u 192.0.2.53:53 -s rr\n"
                "-a -u 192.0.2.53:53 -r 10.0.2.1:53 -g\n")
    b = _udp_flows(10, 0.0)
    net.replay(b)
    e = net._path().e
    assert e.time_lookups(b, np.arange(10, dtype=np.int64))[0] == 10
    for bad in (10, -1):
        with pytest.raises(IndexError, match=f"rows\\[1\\] = {bad}"):
            e.time_lookups(b, np.array([0, bad], np.int64))
