"""The 7.1 service table on the core table (``ipvs_py._core.svctab``).

* against the pure-Python reference (``_pyref_svctab``, the model's table
  before issue 5) fed the same keys: same chains in the same order, same
  hash keys, sizes, thresholds and histograms after every step;
* sizing follows svc_lfactor as services come and go (replayed kernel
  policy), including sysctl writes;
* the status histogram equals a direct count of the chains;
* lookups (<proto,addr,port> and fwmark, IPv4 and IPv6) equal a dict model
  under Hypothesis;
* hashing is the kernel's jhash with table id bit 31 and (u32)key[0];
* a reader thread never misses a service that stays while the table is
  rebuilt without the GIL.
"""
import ipaddress
import random
import threading

import pytest

from ipvs_py import hashing
from ipvs_py._core import _pyref_svctab, load
from ipvs_py.service import Service
from ipvs_py.svctable import desired_size, thresholds

svctab = load("svctab")

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
AF_INET, AF_INET6 = 2, 10


def make_svc(i, kind=None):
    """Service number ``i``: TCP/UDP IPv4, IPv6 or fwmark by ``i % 4``."""
    kind = i % 4 if kind is None else kind
    if kind == 3:
        af = AF_INET6 if i & 8 else AF_INET
        addr = ipaddress.ip_address(0 if af == AF_INET else "::")
        return Service(af, 0, addr, 0, i + 1, "wlc", 0, 0, 0, "")
    if kind == 2:
        addr = ipaddress.IPv6Address((0x20010DB8 << 96) | i)
        return Service(AF_INET6, 6, addr, 80 + i % 3, 0, "wlc", 0, 0, 0, "")
    addr = ipaddress.IPv4Address(0x0A000000 + i)
    return Service(AF_INET, 6 if kind == 0 else 17, addr, 80 + i % 3, 0,
                   "wlc", 0, 0, 0, "")


def key_of(s):
    return (s.af, s.protocol, s.addr_bytes, s.port, s.fwmark)


def find(table, s):
    if s.fwmark:
        return table.find_fwm(s.af, s.fwmark)
    return table.find(s.af, s.protocol, s.addr_bytes, s.port)


class Pair:
    """A compiled table and the reference, fed the same ops and keys."""

    def __init__(self, seed, lf=-3):
        self.lf = lf
        self.c = svctab.SvcTable(random.Random(seed), lambda: self.lf)
        self.py = _pyref_svctab.SvcTable(random.Random(seed),
                                         lambda: self.lf)
        self.live = {}                  # i -> (c svc, py svc)

    def add(self, i):
        a, b = make_svc(i), make_svc(i)
        self.c.insert(a)
        self.py.insert(b)
        self.live[i] = (a, b)
        self.work()

    def remove(self, i):
        a, b = self.live.pop(i)
        self.c.remove(a)
        self.py.remove(b)
        self.work()

    def set_lf(self, lf):
        self.lf = lf
        self.c.kick()
        self.py.kick()
        self.work()

    def work(self):
        assert self.c.resize_queued == self.py.resize_queued
        assert self.c.run_pending() == self.py.run_pending()

    def check(self):
        c, py = self.c, self.py
        assert len(c) == len(py) == c.count == len(self.live)
        assert c.size == py.size
        assert c.resizes == py.resizes
        assert [key_of(s) for s in c.walk()] == \
            [key_of(s) for s in py.walk()]
        assert [s.hash_key for s in c.walk()] == \
            [s.hash_key for s in py.walk()]
        assert c.chain_lengths() == py.chain_lengths()
        if py.t is None:
            assert c.t is None
            return
        for name in ("size", "mask", "bits", "table_id", "key0", "lfactor",
                     "u_thresh", "l_thresh"):
            assert getattr(c.t, name) == getattr(py.t, name), name


ops = st.lists(st.tuples(st.sampled_from(["add", "add", "del", "lf"]),
                         st.integers(0, 400), st.integers(-8, 8)),
               max_size=150)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), ops=ops)
def test_same_tables_as_the_reference(seed, ops):
    p = Pair(seed)
    for op, i, lf in ops:
        if op == "add" and i not in p.live:
            p.add(i)
        elif op == "del" and p.live:
            p.remove(sorted(p.live)[i % len(p.live)])
        elif op == "lf":
            p.set_lf(lf)
        p.check()


def test_bulk_same_as_reference_through_many_resizes():
    p = Pair(7)
    for i in range(3000):
        p.add(i)
    p.check()
    assert p.c.size == 1 << 15 and p.c.resizes == 11     # 2^4 .. 2^15
    for lf in (2, -8, 0):
        p.set_lf(lf)
        p.check()
    for i in range(0, 3000, 2):
        p.remove(i)
    p.check()
    for i in range(1, 3000, 2):
        p.remove(i)
    p.check()
    assert p.c.t is None and p.c.size == 0


# -- sizing follows svc_lfactor --------------------------------------------
def _replay(events):
    """The kernel policy, from the counts alone: the first add makes 2^4
    buckets at the lfactor of that moment; an add past u_thresh, a delete
    down to l_thresh or an lfactor write rebuilds to desired_size; the last
    delete frees the table.  ``events``: (count, lfactor written, lfactor)
    after each step."""
    size = tlf = None
    out = []
    prev = 0
    for n, written, lf in events:
        if n == 0:
            size = tlf = None
        elif size is None:
            size, tlf = 16, lf
        else:
            u, l_ = thresholds(size, tlf)
            if written or (n > prev and n > u) or (n < prev and n <= l_):
                size, tlf = desired_size(size, tlf, n, lf), lf
        prev = n
        out.append((size or 0, tlf))
    return out


@pytest.mark.parametrize("lf", [-8, -3, -1, 0, 3, 8])
def test_sizing_follows_svc_lfactor_as_services_come_and_go(lf):
    """Grow to 1,000 services and back to none, with svc_lfactor writes
    sprinkled in: after every step the size and the array's lfactor are
    what the kernel policy gives, and no resize is left pending."""
    cur = [lf]
    t = svctab.SvcTable(random.Random(1), lambda: cur[0])
    rng = random.Random(lf)
    svcs = [make_svc(i) for i in range(1000)]
    live, events, got = [], [], []
    for step in range(3000):
        written = False
        if rng.random() < 0.01:
            cur[0] = rng.randint(-8, 8)
            written = True
            t.kick()
        elif live and (rng.random() < (0.2 if step < 1500 else 0.8)
                       or len(live) == len(svcs)):
            t.remove(live.pop(rng.randrange(len(live))))
        elif step < 1500 or not live or rng.random() < 0.5:
            s = next(x for x in svcs if x not in live)
            t.insert(s)
            live.append(s)
        t.run_pending()
        assert not t.resize_queued and len(t) == len(live)
        events.append((len(live), written and bool(live), cur[0]))
        got.append((t.size, t.t.lfactor if t.t is not None else None))
        if t.t is not None:
            assert (t.t.u_thresh, t.t.l_thresh) == thresholds(t.t.size,
                                                              t.t.lfactor)
    while live:
        t.remove(live.pop())
        t.run_pending()
        events.append((len(live), False, cur[0]))
        got.append((t.size, t.t.lfactor if t.t is not None else None))
    assert got == _replay(events)
    assert max(size for size, _ in got) >= 256 and got[-1] == (0, None)


def test_first_table_last_delete_and_key_sequence():
    rng = random.Random(42)
    expect = random.Random(42)
    t = svctab.SvcTable(rng, lambda: -3)
    assert t.t is None and t.size == 0 and len(t) == 0 and t.walk() == []
    assert t.chain_lengths() == [0] * 8
    s = make_svc(1)
    t.insert(s)
    assert t.size == 16 and t.t.table_id == 0 and not t.resize_queued
    assert t.t.key0 == expect.getrandbits(32)      # first array, first key
    for i in range(2, 4):
        t.insert(make_svc(i))
    assert t.run_pending() and t.t.table_id == 0x80000000 and t.size == 32
    assert t.t.key0 == expect.getrandbits(32)      # one fresh key a rebuild
    for x in list(t.walk()):
        t.remove(x)
    assert t.t is None and t.size == 0 and t.memory()["entries"] == 0
    t.insert(s)                                    # a new first table
    assert t.t.table_id == 0 and t.t.key0 == expect.getrandbits(32)
    assert t.keys_drawn == 3


def test_lfactor_minus_8_first_add_does_not_resize():
    t = svctab.SvcTable(random.Random(1), lambda: -8)
    t.insert(make_svc(0))
    assert t.t.u_thresh == 0 and not t.resize_queued     # kernel: no check
    t.insert(make_svc(1))
    assert t.resize_queued and t.run_pending() and t.size == 512


# -- histogram --------------------------------------------------------------
@SETTINGS
@given(n=st.integers(1, 600), lf=st.integers(-8, 8),
       seed=st.integers(0, 2**32 - 1))
def test_histogram_equals_a_direct_count(n, lf, seed):
    t = svctab.SvcTable(random.Random(seed), lambda: lf)
    for i in range(n):
        t.insert(make_svc(i))
        t.run_pending()
    view = t.t
    direct = [0] * 8
    for chain in view.buckets:
        direct[min(len(chain), 7)] += 1
    assert t.chain_lengths() == direct
    assert sum(direct) == t.size
    by_key = {}
    for s in t.walk():
        assert s.hash_key & 0x80000000 == view.table_id
        by_key[s.hash_key & view.mask] = by_key.get(s.hash_key & view.mask,
                                                    0) + 1
    assert sorted(by_key.values()) == sorted(
        len(c) for c in view.buckets if c)


# -- lookups vs a dict -------------------------------------------------------
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1),
       ops=st.lists(st.tuples(st.sampled_from(["add", "del", "find", "lf"]),
                              st.integers(0, 200), st.integers(-8, 8)),
                    max_size=300))
def test_lookups_equal_a_dict_model(seed, ops):
    lf = [-3]
    t = svctab.SvcTable(random.Random(seed), lambda: lf[0])
    model = {}
    svcs = {}
    for op, i, x in ops:
        s = svcs.setdefault(i, make_svc(i))
        k = key_of(s)
        if op == "add" and k not in model:
            t.insert(s)
            model[k] = s
        elif op == "del" and k in model:
            t.remove(model.pop(k))
        elif op == "lf":
            lf[0] = x
            t.kick()
        t.run_pending()
        probe = make_svc(i)           # an equal key, another object
        assert find(t, probe) is model.get(k)
    for s in svcs.values():
        assert find(t, s) is model.get(key_of(s))
    # near misses: other port, protocol, family, fwmark
    for s in model.values():
        if s.fwmark:
            other_af = AF_INET6 if s.af == AF_INET else AF_INET
            expect = next((v for v in model.values() if v.fwmark ==
                           s.fwmark and v.af == other_af), None)
            assert t.find_fwm(other_af, s.fwmark) is expect
        else:
            assert t.find(s.af, s.protocol, s.addr_bytes, s.port + 3) is None
            assert t.find(s.af, 132, s.addr_bytes, s.port) is None
    assert sorted(map(key_of, t.walk())) == sorted(model)


def test_hash_is_the_kernels_jhash():
    t = svctab.SvcTable(random.Random(3), lambda: -3)
    svcs = [make_svc(i) for i in range(40)]
    for s in svcs:
        t.insert(s)
        t.run_pending()
    view = t.t
    for s in svcs:
        if s.fwmark:
            h = hashing.jhash_2words(s.fwmark, s.af, view.key0)
        else:
            h = hashing.jhash_3words(s.port, s.protocol, s._addr32,
                                     view.key0)
        assert s.hash_key == view.table_id | (h & 0x7FFFFFFF)


def test_bad_input():
    t = svctab.SvcTable(random.Random(3), lambda: -3)
    s = make_svc(5)
    t.insert(s)
    with pytest.raises(ValueError, match="already"):
        t.insert(s)
    with pytest.raises(ValueError, match="4 or 16"):
        t.find(AF_INET, 6, b"\x01\x02\x03", 80)
    assert t.find(AF_INET, s.protocol, bytearray(s.addr_bytes), s.port) is s
    assert t.find_fwm(AF_INET, 0) is None
    with pytest.raises(KeyError):
        t.remove(make_svc(5))


def test_reader_thread_never_misses_during_rebuilds():
    """Rebuilds run without the GIL; a reader thread keeps finding every
    service that stays, and never one that was never added."""
    lf = [-3]
    t = svctab.SvcTable(random.Random(5), lambda: lf[0])
    stay = [make_svc(i, kind=0) for i in range(200)]
    for s in stay:
        t.insert(s)
        t.run_pending()
    stop = threading.Event()
    errors = []

    def reader():
        rng = random.Random(9)
        while not stop.is_set():
            s = rng.choice(stay)
            if find(t, s) is not s:
                errors.append(s)
            if t.find(AF_INET, 6, b"\xc0\xa8\x00\x01", 80) is not None:
                errors.append("phantom")

    th = threading.Thread(target=reader)
    th.start()
    try:
        churn = [make_svc(1000 + i, kind=1) for i in range(2000)]
        for rnd in range(6):
            for s in churn:
                t.insert(s)
                t.run_pending()
            lf[0] = [-3, 1, -8, 0, 2, -3][rnd]
            t.kick()
            t.run_pending()
            for s in churn:
                t.remove(s)
                t.run_pending()
    finally:
        stop.set()
        th.join()
    assert not errors
    assert t.resizes > 10
