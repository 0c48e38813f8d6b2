"""The flow cache (include/ipvs_flowcache.h, seed 001) in front of the conn
table: lookups through it always equal a plain dict of the live conns,
with deletes, slot reuse and table rebuilds in between; and the seed's
policies (move-to-front, timestamp admission, load threshold) show in its
counters."""
import ipaddress

import pytest
from hypothesis import example, given, note, settings, strategies as st

import ipvs_py
from ipvs_py import multicore
from ipvs_py._core import conntab

VIP = "192.0.2.1"
VIP16 = ipaddress.ip_address(VIP).packed.ljust(16, b"\0")


def client(i):
    return str(ipaddress.IPv4Address("198.18.0.1") + i)


def make(entries=4, min_load=0.0, admit_jiffies=2**31 - 1):
    net = ipvs_py.Netns(conn_tab_bits=12)
    net.restore(f"-A -t {VIP}:80 -s sh\n"
                f"-a -t {VIP}:80 -r 10.0.0.1:80 -m\n"
                f"-a -t {VIP}:80 -r 10.0.0.2:80 -m\n")
    # a conn that stays: the table is never empty, so with min_load 0
    # the cache is always consulted
    net.packet("tcp", client(9999), 1, VIP, 80, "S")
    eng = net._path().e
    conntab.set_flow_cache(eng, entries, min_load, admit_jiffies)
    return net, eng


def lookup(eng, i):
    return eng.lookup_in(2, 6, ipaddress.ip_address(client(i)).packed
                         .ljust(16, b"\0"), 1000 + i % 3, VIP16, 80)


ops = st.lists(st.one_of(
    st.tuples(st.just("new"), st.integers(0, 5)),
    st.tuples(st.just("get"), st.integers(0, 5)),
    st.tuples(st.just("del"), st.integers(0, 5)),
    st.tuples(st.just("resize"), st.integers(-8, 8)),
), max_size=80)


@settings(max_examples=150, deadline=None)
@given(ops=ops, entries=st.integers(1, 6))
# cached, then deleted with the slot still holding its key: only the
# generation check tells the entry is dead
@example(ops=[("new", 0), ("get", 0), ("del", 0), ("get", 0)], entries=4)
# cached, deleted, the slot reused by another flow, the table rebuilt
@example(ops=[("new", 0), ("get", 0), ("del", 0), ("new", 1), ("resize", 2),
              ("get", 0), ("get", 1), ("get", 1)], entries=2)
def test_cached_lookups_equal_a_dict_of_live_conns(ops, entries):
    net, eng = make(entries)
    ref = {}                            # flow -> conn id
    for op, arg in ops:
        if op == "new" and arg not in ref:
            v = net.packet("tcp", client(arg), 1000 + arg % 3, VIP, 80, "S")
            ref[arg] = v.conn
        elif op == "get":
            got = lookup(eng, arg)
            assert got == ref.get(arg, -1), (op, arg)
        elif op == "del" and arg in ref:
            eng.expire_conn(ref.pop(arg))      # slot freed, later reused
        elif op == "resize":
            eng.set_lfactor(arg)               # rebuild: every node moves
    for f in range(6):
        assert lookup(eng, f) == ref.get(f, -1)
    note(str(conntab.flow_cache_stats(eng)))


def test_deleted_conn_is_never_returned_even_if_its_slot_is_intact():
    net, eng = make()
    net.packet("tcp", client(2), 1002, VIP, 80, "S")   # table not empty
    cid = net.packet("tcp", client(1), 1001, VIP, 80, "S").conn
    assert lookup(eng, 1) == cid == lookup(eng, 1)    # miss+admit, hit
    eng.expire_conn(cid)                 # the slot keeps its old key
    assert lookup(eng, 1) == -1
    st_ = conntab.flow_cache_stats(eng)
    assert st_["hits"] >= 1 and st_["stale"] == 1


def test_rebuild_keeps_entries_valid_and_returns_the_same_conn():
    net, eng = make()
    cids = [net.packet("tcp", client(i), 1000 + i % 3, VIP, 80, "S").conn
            for i in range(4)]
    for i in range(4):
        lookup(eng, i)
    hits = conntab.flow_cache_stats(eng)["hits"]
    eng.set_lfactor(3)
    assert [lookup(eng, i) for i in range(4)] == cids
    assert conntab.flow_cache_stats(eng)["hits"] == hits + 4


def test_move_to_front_keeps_four_busy_flows_and_lru_drops_a_fifth():
    net, eng = make(entries=4)
    for i in range(5):     # new flows miss the cache (not admitted:
        net.packet("tcp", client(i), 1000 + i % 3, VIP, 80, "S")  # new)
    s0 = conntab.flow_cache_stats(eng)
    for _ in range(10):                 # 4 flows in turn: all hit
        for i in range(4):
            lookup(eng, i)
    s = conntab.flow_cache_stats(eng)
    assert s["hits"] - s0["hits"] == 36
    assert s["misses"] - s0["misses"] == 4
    for _ in range(10):                 # 5 flows in turn: LRU thrashes
        for i in range(5):
            lookup(eng, i)
    s2 = conntab.flow_cache_stats(eng)
    assert s2["hits"] - s["hits"] <= 4


def test_slow_flows_are_not_admitted_and_do_not_evict_busy_ones():
    # admit = 25 jiffies (0.1 s); the slow flows come once a second
    net, eng = make(entries=2, admit_jiffies=25)
    busy = [0, 1]
    slow = list(range(2, 8))
    for i in busy + slow:
        net.packet("tcp", client(i), 1000 + i % 3, VIP, 80, "S")
    for step in range(40):
        net.advance(0.01)
        for i in busy:                  # every 10 ms: in the cache
            net.packet("tcp", client(i), 1000 + i % 3, VIP, 80, "A")
        if step % 10 == 9:              # a slow flow now and then
            i = slow[step // 10]
            net.advance(1.0)
            net.packet("tcp", client(i), 1000 + i % 3, VIP, 80, "A")
    s = conntab.flow_cache_stats(eng)
    assert s["rejected"] >= 4           # slow flows (and busy after a 1 s gap)
    # busy flows hit except right after each 1 s gap
    assert s["hits"] >= 2 * 40 - 2 * 4 - 2


def test_cache_is_bypassed_while_the_table_is_lightly_loaded():
    net, eng = make(min_load=4.0)
    for i in range(10):                 # 11 conns in 256 buckets
        net.packet("tcp", client(i), 1000 + i % 3, VIP, 80, "S")
        lookup(eng, i)
    s = conntab.flow_cache_stats(eng)
    assert s["hits"] == 0 and s["misses"] == 0 and s["bypassed"] > 0


@pytest.mark.parametrize("kw, msg", [
    ({"flow_cache": 17}, "flow_cache"), ({"flow_cache": -1}, "flow_cache"),
    ({"stripes": 3}, "stripes"), ({"stripes": 512}, "stripes"),
    ({"min_load": -1}, "min_load"), ({"admit": -0.5}, "admit"),
    ({"resize_help": 1}, "resize_help"), ({"resize_help": "on"},
                                          "resize_help")])
def test_bad_switches_are_refused_and_change_nothing(kw, msg):
    net, eng = make(entries=3)
    before = conntab.flow_cache_stats(eng)["entries"], \
        conntab.stripe_info(eng)[0]
    with pytest.raises(ValueError, match=msg):
        multicore.configure(net, **kw)
    assert (conntab.flow_cache_stats(eng)["entries"],
            conntab.stripe_info(eng)[0]) == before
