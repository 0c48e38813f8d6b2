"""Kernel decisions of the hot schedulers, each test run on both paths.

Expected sequences are worked out by hand from the kernel sources; dests
are added in order a, b, c... so the kernel list (newest first) is the
reverse and index 0 is the last dest added.
"""

from ipvs_py import schedulers as S
from ipvs_py._core import hashing
from ipvs_py.schedulers import dh, sh
from ipvs_py.schedulers.base import (IP_VS_DEST_F_OVERLOAD, addr_fold,
                                     link_dest, unlink_dest, update_dest)

from .helpers import Dest, ip, make, pkt

P = [pkt("192.168.0.%d" % (i % 250 + 1), 1000 + i) for i in range(64)]


def run(driver, svc, sched, n, count="none", packets=None):
    return driver.run(svc, sched, (packets or P)[:n], count)


# ------------------------------------------------------------------ rr

def test_rr_walks_the_list_newest_first(driver):
    svc, s = make("rr", [1, 1, 1])
    assert run(driver, svc, s, 7) == [0, 1, 2, 0, 1, 2, 0]


def test_rr_skips_weight_zero_and_overloaded(driver):
    svc, s = make("rr", [1, 0, 1, 1])     # list: d(1) c(1) b(0) a(1)
    svc.dests[1].flags |= IP_VS_DEST_F_OVERLOAD
    assert run(driver, svc, s, 4) == [0, 3, 0, 3]


def test_rr_lone_dest_is_picked_again_and_none_when_nothing(driver):
    svc, s = make("rr", [0, 1, 0])
    assert run(driver, svc, s, 3) == [1, 1, 1]
    svc.dests[1].weight = 0
    assert run(driver, svc, s, 2) == [-1, -1]


def test_rr_deleting_the_current_dest_steps_back_to_its_predecessor(driver):
    svc, s = make("rr", [1, 1, 1])        # list C B A
    C, B, A = svc.dests
    assert run(driver, svc, s, 2) == [0, 1]          # C, B: current is B
    unlink_dest(svc, B, s)                            # current -> C
    out = run(driver, svc, s, 3)
    assert [svc.dests[i] for i in out] == [A, C, A]


def test_rr_new_dest_at_head_is_reached_after_the_wrap(driver):
    svc, s = make("rr", [1, 1, 1])        # list C B A
    C, B, A = svc.dests
    assert run(driver, svc, s, 1) == [0]              # C
    D = Dest(ip("10.1.0.9"))
    link_dest(svc, D, s)                              # list D C B A
    out = run(driver, svc, s, 4)
    assert [svc.dests[i] for i in out] == [B, A, D, C]


# ----------------------------------------------------------------- wrr

def test_wrr_passes_by_current_weight(driver):
    svc, s = make("wrr", [4, 3, 2], bind_first=False)  # list c2 b3 a4
    # cw=4: a | cw=3: b a | cw=2: c b a | cw=1: c b a
    assert run(driver, svc, s, 18) == [2, 1, 2, 0, 1, 2, 0, 1, 2] * 2


def test_wrr_steps_by_gcd(driver):
    svc, s = make("wrr", [4, 2], bind_first=False)      # list b2 a4
    # di=2, mw=4-(2-1)=3: cw=3: a | cw=1: b a
    assert run(driver, svc, s, 9) == [1, 0, 1] * 3


def test_wrr_dest_change_keeps_cw_and_restarts_at_head(driver):
    svc, s = make("wrr", [1, 2, 3])       # bound first: cw stayed 1
    # list c3 b2 a1, cw=1 (kept through the adds) -> c b a, then cw=3: c
    assert run(driver, svc, s, 4) == [0, 1, 2, 0]


def test_wrr_nothing_available(driver):
    svc, s = make("wrr", [0, 0])
    assert run(driver, svc, s, 2) == [-1, -1]
    svc, s = make("wrr", [1, 2])
    for d in svc.dests:
        d.flags |= IP_VS_DEST_F_OVERLOAD
    assert run(driver, svc, s, 2) == [-1, -1]


# ------------------------------------------------------- least-connection

def test_lc_ties_go_to_the_first_and_weights_do_not_matter(driver):
    svc, s = make("lc", [1, 5, 1])
    assert run(driver, svc, s, 6, count="inactive") == [0, 1, 2, 0, 1, 2]


def test_lc_compares_the_overhead_unsigned_wlc_signed(driver):
    # activeconns 2^23: (2^23 << 8) wraps to INT_MIN.  lc sees 2^31 (big),
    # wlc sees a negative load (tiny).
    for name, want in (("lc", 1), ("wlc", 0)):
        svc, s = make(name, [1, 1])
        svc.dests[0].activeconns = 1 << 23
        svc.dests[1].inactconns = 5
        assert run(driver, svc, s, 1) == [want], name


def test_wlc_weighs_the_overhead(driver):
    svc, s = make("wlc", [1, 2])          # list b2 a1
    assert run(driver, svc, s, 6, count="active") == [0, 1, 0, 0, 1, 0]


def test_wlc_later_weight_zero_never_wins(driver):
    svc, s = make("wlc", [0, 1])          # list b1 a0
    svc.dests[0].activeconns = 100
    assert run(driver, svc, s, 1) == [0]


def test_sed_counts_the_new_job(driver):
    svc, s = make("sed", [1, 3])          # list b3 a1
    assert run(driver, svc, s, 4, count="active") == [0, 0, 0, 1]


def test_nq_prefers_an_idle_dest(driver):
    svc, s = make("nq", [1, 3])           # list b3 a1
    assert run(driver, svc, s, 5, count="active") == [0, 1, 0, 0, 0]


def test_fo_highest_weight_first_of_equals(driver):
    svc, s = make("fo", [1, 3, 3])        # list c3 b3 a1
    assert run(driver, svc, s, 2, count="active") == [0, 0]
    svc.dests[0].flags |= IP_VS_DEST_F_OVERLOAD
    assert run(driver, svc, s, 1) == [1]


def test_ovf_overflows_when_active_exceeds_weight(driver):
    svc, s = make("ovf", [2, 3])          # list b3 a2
    assert run(driver, svc, s, 8, count="active") == [0, 0, 0, 0, 1, 1, 1, -1]


def test_upper_threshold_sets_overload(driver):
    svc, s = make("rr", [1, 1])
    svc.dests[0].u_thresh = 2
    assert run(driver, svc, s, 6, count="inactive") == [0, 1, 0, 1, 1, 1]
    assert svc.dests[0].flags & IP_VS_DEST_F_OVERLOAD


# ---------------------------------------------------------------- sh, dh

def _bucket(fold, port=0, offset=0):
    return (offset + hashing.hash_32((fold + port) & 0xFFFFFFFF, 8)) & 255


def test_sh_table_filled_by_weight_round_the_list():
    svc, s = make("sh", [2, 1, 0])        # list c0 b1 a2
    c, b, a = svc.dests
    assert svc.sched_data[:8] == [c, b, a, a, c, b, a, a]


def test_sh_picks_the_bucket_of_the_source(driver):
    svc, s = make("sh", [1, 1, 1, 1])
    for p in P[:20]:
        want = svc.sched_data[_bucket(addr_fold(2, p.saddr))]
        assert driver.run(svc, s, [p]) == [svc.dests.index(want)]


def test_sh_unavailable_bucket_and_fallback(driver):
    svc, s = make("sh", [2, 1, 0])        # c (weight 0) holds buckets
    c = svc.dests[0]
    for p in P:
        fold = addr_fold(2, p.saddr)
        ih = _bucket(fold)
        if svc.sched_data[ih] is c:
            break
    assert driver.run(svc, s, [p]) == [-1]
    svc.flags = S.IP_VS_SVC_F_SCHED_SH_FALLBACK
    # the kernel probes hashkey(roffset) = (offset + 2*ihash) & 255
    want = next(svc.sched_data[(k + 2 * ih) & 255] for k in range(256)
                if svc.sched_data[(k + 2 * ih) & 255] is not c)
    assert driver.run(svc, s, [p]) == [svc.dests.index(want)]


def test_sh_port_flag_and_inverse(driver):
    svc, s = make("sh", [1] * 8, flags=S.IP_VS_SVC_F_SCHED_SH_PORT)
    for p in P[:16]:
        b = _bucket(addr_fold(2, p.saddr), p.sport)
        assert driver.run(svc, s, [p]) == \
            [svc.dests.index(svc.sched_data[b])]
    q = pkt("1.2.3.4", 5, daddr="10.9.8.7", dport=4242, inverse=True)
    b = _bucket(ip("10.9.8.7"), 4242)
    assert driver.run(svc, s, [q]) == [svc.dests.index(svc.sched_data[b])]
    svc.flags = 0
    q = pkt("1.2.3.4", 5, proto=1)                 # no ports: port 0
    b = _bucket(ip("1.2.3.4"))
    assert driver.run(svc, s, [q]) == [svc.dests.index(svc.sched_data[b])]


def test_sh_ipv6_folds_the_four_words():
    a6 = ip("2001:db8::1:2")
    # words 20010db8 00000000 00000000 00010002
    assert addr_fold(10, a6) == 0x20010db8 ^ 0x00010002
    assert sh.hashkey(addr_fold(10, a6), 0) == _bucket(0x20000dba)


def test_dh_is_not_weighted_and_ignores_weight_edits(driver):
    svc, s = make("dh", [5, 1])           # list b1 a5
    b, a = svc.dests
    assert svc.sched_data[:4] == [b, a, b, a]
    daddrs = [ip("10.7.0.%d" % i) for i in range(1, 40)]
    packets = [pkt("1.1.1.1", daddr=d) for d in daddrs]
    want = [svc.dests.index(svc.sched_data[dh.hashkey(d)])
            for d in daddrs]
    assert driver.run(svc, s, packets) == want
    table = list(svc.sched_data)
    update_dest(svc, b, s, weight=0)      # dh has no upd_dest: no rebuild
    assert svc.sched_data == table
    assert driver.run(svc, s, packets) == [-1 if w == 0 else w for w in want]


# ------------------------------------------------------------------- mh

def _mh_counts(svc):
    from collections import Counter
    return Counter(id(d) for d in svc.sched_data.lookup)


def test_mh_turns_and_rshift_fill_exactly():
    svc, s = make("mh", [1000, 1])        # list b1 a1000
    b, a = svc.dests
    # gcd 1, fls(1000)=10 -> rshift 4: turns a=62, b=1 (1>>4 is 0, lw!=0)
    # rounds of b,a(62): 64 full rounds = 4032, then b 1 + a 60 = 4093
    c = _mh_counts(svc)
    assert c[id(a)] == 4028 and c[id(b)] == 65


def test_mh_quiesce_keeps_the_table(driver):
    svc, s = make("mh", [3, 3, 3, 3])
    table = list(svc.sched_data.lookup)
    q = svc.dests[2]
    update_dest(svc, q, s, weight=0)      # last_weight stays 3
    assert svc.sched_data.lookup == table
    out = driver.run(svc, s, P)
    base = [svc.dests.index(table[
        hashing.hsiphash_1u32(addr_fold(2, p.saddr), _key1()) % 4093])
        for p in P]
    assert out == [-1 if i == 2 else i for i in base]
    svc.flags = S.IP_VS_SVC_F_SCHED_MH_FALLBACK
    out = driver.run(svc, s, P)
    assert all(o != 2 and o >= 0 for o in out)
    assert all(o == b for o, b in zip(out, base) if b != 2)


def _key1():
    import struct
    return struct.pack("<QQ", 2654435761, 2654435761)


def test_mh_zero_weight_added_dest_gets_no_slot():
    svc, s = make("mh", [1, 0, 1])
    assert id(svc.dests[1]) not in _mh_counts(svc)
    svc, s = make("mh", [0, 0])
    assert svc.sched_data.lookup == [None] * 4093
