"""The C batch path and the Python modules: identical decisions.

Random services, random edits between batches (adds at the head, deletes,
weight edits incl. 0, overload flags, counters), every hot scheduler and
flag combination; both sides must agree on every decision and end state.
"""
import random

import numpy as np
import pytest

from ipvs_py import schedulers as S
from ipvs_py._core import is_compiled
from ipvs_py._core import sched as csched
from ipvs_py.schedulers.base import IP_VS_DEST_F_OVERLOAD

from .conftest import HOT
from .helpers import CDriver, Dest, PyDriver, Service, idx, pkt


def test_compiled_scheduler_core_loaded():
    assert is_compiled(csched)


def _edit(rng, svc, sched):
    op = rng.random()
    dests = svc.dests
    if op < 0.25 or not dests:
        S.link_dest(svc, Dest(rng.getrandbits(32), rng.randrange(1, 65536),
                              rng.choice([0, 1, 1, 2, 3, 5, 8, 100])), sched)
    elif op < 0.4 and len(dests) > 1:
        S.unlink_dest(svc, rng.choice(dests), sched)
    elif op < 0.7:
        S.update_dest(svc, rng.choice(dests), sched,
                      weight=rng.choice([0, 1, 2, 3, 4, 6, 7, 1000]))
    elif op < 0.85:
        rng.choice(dests).flags ^= IP_VS_DEST_F_OVERLOAD
    else:
        d = rng.choice(dests)
        d.activeconns = rng.randrange(0, 50)
        d.inactconns = rng.randrange(0, 500)


@pytest.mark.parametrize("name", HOT)
@pytest.mark.parametrize("seed", range(6))
def test_random_differential(name, seed):
    import copy
    rng = random.Random(f"{name}-{seed}")
    flags = rng.choice([0, 0x08, 0x10, 0x18]) if name in ("sh", "mh") else 0
    svc = Service(sched_name=name, flags=flags)
    sched = S.lookup_scheduler(name)
    S.bind_scheduler(svc, sched)
    for _ in range(rng.randrange(1, 8)):
        S.link_dest(svc, Dest(rng.getrandbits(32), 80,
                              rng.choice([0, 1, 2, 3, 5])), sched)
    count = rng.choice(["none", "active", "inactive"])
    for _round in range(8):
        packets = [pkt(rng.getrandbits(32), rng.randrange(65536),
                       daddr=rng.getrandbits(32), proto=rng.choice([6, 17, 1]),
                       inverse=rng.random() < 0.05)
                   for _ in range(rng.randrange(1, 300))]
        twin = copy.deepcopy(svc)
        got_py = PyDriver().run(svc, sched, packets, count)
        got_c = CDriver().run(twin, sched, packets, count)
        assert got_c == got_py
        # end state agrees too: positions and counters
        for a, b in zip(svc.dests, twin.dests):
            assert (a.activeconns, a.inactconns, a.flags) == \
                (b.activeconns, b.inactconns, b.flags)
        if name == "rr":
            assert idx(svc, svc.sched_data.cur) == \
                idx(twin, twin.sched_data.cur)
        if name == "wrr":
            m1, m2 = svc.sched_data, twin.sched_data
            assert (m1.cl, m1.cw, m1.mw, m1.di) == (m2.cl, m2.cw, m2.mw, m2.di)
        for _ in range(rng.randrange(0, 4)):
            _edit(rng, svc, sched)


@pytest.mark.parametrize("name", ["wrr", "sh", "dh", "mh"])
@pytest.mark.parametrize("seed", range(5))
def test_c_builds_the_same_tables_and_marks(name, seed):
    rng = random.Random(seed)
    svc = Service(sched_name=name)
    sched = S.lookup_scheduler(name)
    for _ in range(rng.randrange(0, 12)):
        S.link_dest(svc, Dest(rng.getrandbits(32), rng.randrange(65536),
                              rng.choice([0, 1, 2, 7, 64, 1000, 99999])))
    S.bind_scheduler(svc, sched)
    from_py = csched.BatchScheduler(svc)
    from_c = csched.BatchScheduler(svc, from_python=False)
    if name == "wrr":
        assert from_py.state()[1:] == from_c.state()[1:]
    else:
        assert (from_py.table() == from_c.table()).all()
    if svc.dests:
        S.update_dest(svc, svc.dests[-1], sched, weight=3)
        from_c.refresh_dests()
        from_c.dest_changed()
        from_py = csched.BatchScheduler(svc)
        if name == "wrr":
            assert from_py.state()[1:] == from_c.state()[1:]
        elif name != "dh":               # dh has no upd_dest
            assert (from_py.table() == from_c.table()).all()


def test_batch_rejects_python_only_schedulers():
    for name in ("lblc", "lblcr", "twos"):
        svc = Service(sched_name=name)
        with pytest.raises(ValueError, match="no C implementation"):
            csched.BatchScheduler(svc)


def test_batch_releases_the_gil_and_counts():
    svc = Service(sched_name="rr")
    sched = S.lookup_scheduler("rr")
    S.bind_scheduler(svc, sched)
    for i in range(3):
        S.link_dest(svc, Dest(i + 1), sched)
    bs = csched.BatchScheduler(svc)
    out = bs.schedule_batch(np.zeros(9, np.uint32), count="inactive")
    assert out.tolist() == [0, 1, 2] * 3
    assert bs.counters()[1].tolist() == [3, 3, 3]
    assert bs.decisions == 9


def test_fold_addresses_matches_addr_fold():
    import ipaddress
    from ipvs_py.schedulers.base import addr_fold
    rng = random.Random(5)
    v4 = [rng.getrandbits(32) for _ in range(50)]
    v6 = [rng.getrandbits(128) for _ in range(50)]
    raw = np.zeros((100, 16), np.uint8)
    for i, a in enumerate(v4):
        raw[i, :4] = np.frombuffer(a.to_bytes(4, "big"), np.uint8)
    for i, a in enumerate(v6):
        raw[50 + i] = np.frombuffer(a.to_bytes(16, "big"), np.uint8)
    af = np.array([2] * 50 + [10] * 50, np.uint8)
    got = csched.fold_addresses(raw, af)
    want = [addr_fold(2, a) for a in v4] + [addr_fold(10, a) for a in v6]
    assert got.tolist() == want
    assert addr_fold(10, ipaddress.ip_address("::1")) == 1


def test_schedule_packets_takes_a_packet_batch():
    from ipvs_py import PacketBatch
    rows = [("udp" if i % 3 else "tcp", f"10.64.{i // 200}.{i % 200 + 1}",
             1000 + i, "10.0.0.1", 80, "S", 0.0) for i in range(300)]
    batch = PacketBatch.from_rows(rows)
    for name, flags in (("sh", 0x10), ("mh", 0x18), ("wlc", 0)):
        svc = Service(sched_name=name, flags=flags)
        sched = S.lookup_scheduler(name)
        S.bind_scheduler(svc, sched)
        for w in (1, 3, 0, 2):
            S.link_dest(svc, Dest(rng_addr(w), 80, w), sched)
        import copy
        twin = copy.deepcopy(svc)
        got = csched.BatchScheduler(svc).schedule_packets(batch, count="inactive")
        want = PyDriver().run(twin, sched, [
            pkt(r[1], r[2], daddr=r[3], dport=r[4],
                proto=6 if r[0] == "tcp" else 17) for r in rows], "inactive")
        assert got.tolist() == want


def rng_addr(w):
    return 0xAC100000 + 17 * w + 1
