"""Property tests of the schedulers (Hypothesis).

* wrr: over one full cycle every dest is chosen exactly as often as the
  kernel's passes allow -- ``w / gcd`` times when weights are multiples of
  the gcd -- on the Python and the C path alike;
* sh: bucket shares are the kernel's fill (runs of ``max(weight, 1)``
  round the list), exactly proportional when the runs divide 256;
* mh: every dest's slot count is within one round of its ``turns`` share,
  and adding or removing a dest moves few other keys (Maglev's promise);
* lc/wlc/sed/nq with extreme counters (C-int wrap-around): C == Python.
"""
import copy
import math

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import example, given, note, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ipvs_py import schedulers as S  # noqa: E402
from ipvs_py.schedulers import _mh_table, sh  # noqa: E402
from tests.schedulers.helpers import (CDriver, Dest, PyDriver, make,  # noqa: E402
                                      pkt)

weights = st.lists(st.integers(0, 60), min_size=1, max_size=12)
P = [pkt(i * 2654435761 & 0xFFFFFFFF, i) for i in range(4000)]


def wrr_cycle(ws):
    """The kernel's passes from cw = mw: counts per dest in list order."""
    pos = [w for w in ws if w > 0]
    if not pos:
        return [0] * len(ws)
    di = 0
    for w in pos:
        di = math.gcd(di, w)
    mw = max(ws) - (di - 1)
    cws = list(range(mw, 0, -di))
    return [sum(1 for cw in cws if w >= cw) for w in ws]


@given(weights, st.sampled_from([PyDriver(), CDriver()]))
@example([4, 3, 2], PyDriver())
@example([6, 4, 0, 2], CDriver())
@settings(max_examples=60, deadline=None)
def test_wrr_full_cycle_is_exact(ws, driver):
    svc, s = make("wrr", ws, bind_first=False)
    listed = [d.weight for d in svc.dests]
    want = wrr_cycle(listed)
    n = sum(want)
    note(f"list weights {listed} -> per cycle {want}")
    if n == 0:
        assert driver.run(svc, s, P[:3]) == [-1] * 3
        return
    out = driver.run(svc, s, P[:2 * n])
    for cycle in (out[:n], out[n:]):
        got = [cycle.count(i) for i in range(len(listed))]
        assert got == want
    g = 0
    for w in listed:
        g = math.gcd(g, w)
    if all(w % g == 0 for w in listed if w):
        assert want == [w // g for w in listed]


@given(weights)
@example([1, 2, 3])
@example([0, 0, 0])
def test_sh_table_shares_follow_the_kernel_fill(ws):
    svc, s = make("sh", ws)
    listed = [d.weight for d in svc.dests]
    runs = [max(w, 1) for w in listed]
    seq = []
    while len(seq) < 256:
        for i, r in enumerate(runs):
            seq += [i] * r
    seq = seq[:256]
    table = [svc.dests.index(d) for d in svc.sched_data]
    assert table == seq
    if 256 % sum(runs) == 0:
        k = 256 // sum(runs)
        assert [table.count(i) for i in range(len(runs))] == \
            [r * k for r in runs]


@given(st.lists(st.integers(0, 300), min_size=1, max_size=20),
       st.randoms(use_true_random=False))
@settings(max_examples=40, deadline=None)
def test_mh_table_shares_within_one_round(ws, rnd):
    svc, s = make("mh", ws)
    for d in svc.dests:
        d.addr = rnd.getrandbits(32)
    s.upd_dest(svc, None)
    listed = [d.weight for d in svc.dests]
    g = _mh_table.gcd_weight(listed)
    counts = [sum(1 for x in svc.sched_data.lookup if x is d)
              for d in svc.dests]
    if g < 1:
        assert counts == [0] * len(listed)
        return
    r = _mh_table.shift_weight(listed, g)
    turns = [((w // g) >> r) or (1 if w else 0) for w in listed]
    rounds = 4093 // sum(turns)
    note(f"turns {turns} counts {counts}")
    assert sum(counts) == 4093
    for c, t in zip(counts, turns):
        assert rounds * t <= c <= (rounds + 1) * t


# Maglev bounds disruption only statistically: over 400 random seeds the
# worst move was 5.2% of the 4093 slots, so a fresh random draw each run
# fails now and then (seen once in CI).  derandomize: the same 25 cases
# every run, the 6% bound kept.
@given(st.integers(2, 30), st.randoms(use_true_random=False))
@settings(max_examples=25, deadline=None, derandomize=True)
def test_mh_moves_few_keys_when_a_dest_changes(n, rnd):
    svc, s = make("mh", [1] * n)
    for i, d in enumerate(svc.dests):      # distinct, as in IPVS
        d.addr = (rnd.getrandbits(32) & ~0xFF) | i
    s.upd_dest(svc, None)
    before = list(svc.sched_data.lookup)
    new = Dest((rnd.getrandbits(32) & ~0xFF) | 0xFF)
    S.link_dest(svc, new, s)
    after = svc.sched_data.lookup
    to_new = sum(1 for b in after if b is new)
    moved_others = sum(1 for a, b in zip(before, after)
                       if a is not b and b is not new)
    assert abs(to_new - 4093 / (n + 1)) <= 4093 / (n + 1) * 0.05 + 1
    assert moved_others <= 0.06 * 4093
    victim = svc.dests[rnd.randrange(len(svc.dests))]
    before = list(after)
    S.unlink_dest(svc, victim, s)
    after = svc.sched_data.lookup
    moved_others = sum(1 for a, b in zip(before, after)
                       if a is not b and a is not victim)
    assert moved_others <= 0.06 * 4093
    assert all(x is not victim for x in after)


counter = st.one_of(st.integers(0, 20), st.integers(0, 2**31 - 1),
                    st.sampled_from([1 << 23, (1 << 23) - 1, 1 << 24,
                                     2**31 - 1]))


@given(st.sampled_from(["lc", "wlc", "sed", "nq", "fo", "ovf"]),
       st.lists(st.tuples(st.integers(0, 2**31 - 1) | st.integers(0, 5),
                          counter, counter), min_size=1, max_size=8))
@settings(max_examples=150, deadline=None)
def test_counter_schedulers_wrap_like_c(name, rows):
    svc, s = make(name, [w for w, _, _ in rows])
    for d, (_, a, i) in zip(reversed(svc.dests), rows):
        d.activeconns, d.inactconns = a, i
    twin = copy.deepcopy(svc)
    assert PyDriver().run(svc, s, P[:1]) == CDriver().run(twin, s, P[:1])


from hypothesis.stateful import (RuleBasedStateMachine, initialize,  # noqa: E402
                                 invariant, precondition, rule)

from tests.schedulers.helpers import Service  # noqa: E402

HOT = ["rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "ovf", "sh", "dh", "mh"]


class PyVsC(RuleBasedStateMachine):
    """One service, two twins: the Python modules and the C batch path take
    turns on the same operations; every decision and every counter must
    agree.  Hypothesis shrinks any disagreement to a minimal story."""

    @initialize(name=st.sampled_from(HOT), flags=st.sampled_from([0, 8, 16, 24]),
                count=st.sampled_from(["none", "active", "inactive"]))
    def setup(self, name, flags, count):
        self.sched = S.lookup_scheduler(name)
        self.py = Service(sched_name=name, flags=flags if name in ("sh", "mh") else 0)
        S.bind_scheduler(self.py, self.sched)
        self.c = copy.deepcopy(self.py)
        self.count = count
        self.n = 0

    def _both(self, fn):
        fn(self.py, lambda i: self.py.dests[i % len(self.py.dests)])
        fn(self.c, lambda i: self.c.dests[i % len(self.c.dests)])

    @rule(w=st.integers(0, 9), u=st.sampled_from([0, 0, 3]))
    def add(self, w, u):
        self.n += 1
        a = 0x0A000000 + self.n

        def go(svc, _):
            d = Dest(a, 80, w)
            d.u_thresh = u
            S.link_dest(svc, d, self.sched)
        self._both(go)

    @precondition(lambda self: len(self.py.dests) > 0)
    @rule(i=st.integers(0, 50))
    def delete(self, i):
        self._both(lambda svc, pick: S.unlink_dest(svc, pick(i), self.sched))

    @precondition(lambda self: len(self.py.dests) > 0)
    @rule(i=st.integers(0, 50), w=st.integers(0, 9))
    def edit(self, i, w):
        self._both(lambda svc, pick: S.update_dest(svc, pick(i), self.sched,
                                                   weight=w))

    @precondition(lambda self: len(self.py.dests) > 0)
    @rule(i=st.integers(0, 50))
    def toggle_overload(self, i):
        def go(svc, pick):
            pick(i).flags ^= S.IP_VS_DEST_F_OVERLOAD
        self._both(go)

    @rule(clients=st.lists(st.tuples(st.integers(0, 2**32 - 1),
                                     st.integers(0, 65535)),
                           min_size=1, max_size=30))
    def connections(self, clients):
        packets = [pkt(a, p) for a, p in clients]
        got_py = PyDriver().run(self.py, self.sched, packets, self.count)
        got_c = CDriver().run(self.c, self.sched, packets, self.count)
        note(f"py {got_py} c {got_c}")
        assert got_py == got_c

    @invariant()
    def same_counters(self):
        if not hasattr(self, "py"):
            return
        assert [(d.activeconns, d.inactconns, d.flags, d.weight)
                for d in self.py.dests] == \
            [(d.activeconns, d.inactconns, d.flags, d.weight)
             for d in self.c.dests]


TestPyVsC = PyVsC.TestCase
TestPyVsC.settings = settings(max_examples=60, stateful_step_count=25,
                              deadline=None)
