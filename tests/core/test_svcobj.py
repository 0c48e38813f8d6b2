"""Services that carry their table entry (``svctab.ServiceNode``, ``adopt``,
``include/ipvs_svcobj.h``).

* every ``Service`` is a cage block with the object on a cache line
  boundary and the entry right after the object header;
* the objects are ordinary Python objects: attributes, weak references,
  ``copy``, and the cycle collector frees cycles through them (and their
  blocks are reused);
* a service is linked in one table at a time; a table that goes away
  unlinks its services;
* what ``adopt`` refuses, and what ``insert`` refuses (a subclass nobody
  adopted);
* threads walking the table while another thread removes and frees
  services never see a freed service (the grace period in ``remove``).
"""
import copy
import gc
import pickle
import ipaddress
import random
import sys
import threading
import time
import weakref

import pytest

from ipvs_py._core import is_compiled, load
from ipvs_py.service import Service

svctab = load("svctab")
pytestmark = pytest.mark.skipif(not is_compiled(svctab),
                                reason="the compiled table's allocator")


def svc(i=1, port=80):
    return Service(2, 6, ipaddress.IPv4Address(0x0A000000 + i), port, 0,
                   "rr", 0, 0, 0xFFFFFFFF, "")


def test_service_sits_on_a_line_with_its_entry():
    ids = [id(svc(i)) for i in range(64)]
    assert all(a % 64 == 0 for a in ids)
    s = svc()
    assert svctab._entry_offset() == 16          # right after the header
    # the block is one line before the object plus the object, in 64s
    assert Service.__basicsize__ + 64 <= 2048
    assert svctab.ENTRY_SIZE >= 48
    assert not s.linked


def test_service_is_an_ordinary_object():
    s = svc(7)
    s.sched_data = {"x": 1}
    r = weakref.ref(s)
    c = copy.copy(s)
    assert c is not s and c.addr == s.addr and c.sched_data is s.sched_data
    assert id(c) % 64 == 0 and not c.linked
    p = pickle.loads(pickle.dumps(s))
    assert (p.addr, p.port, p.sched_data, p.stats.conns) == (
        s.addr, 80, {"x": 1}, 0)
    assert sys.getsizeof(s) > Service.__basicsize__
    with pytest.raises(AttributeError):
        s.no_such_field = 1
    del s, c
    assert r() is None


def test_collector_frees_cycles_through_services():
    gc.collect()
    freed = []
    addrs = set()
    for i in range(200):
        s = svc(i)
        s.sched_data = [s]                   # a cycle only gc can free
        weakref.finalize(s, freed.append, i)
        addrs.add(id(s))
    del s
    gc.collect()
    assert sorted(freed) == list(range(200))
    again = [svc(i) for i in range(200)]     # the freed blocks come back
    assert addrs & {id(s) for s in again}


def test_linked_in_one_table_at_a_time():
    a, b = svctab.SvcTable(random.Random(1)), svctab.SvcTable(random.Random(2))
    s = svc()
    a.insert(s)
    assert s.linked and a.find(2, 6, s.addr_bytes, 80) is s
    with pytest.raises(ValueError, match="already in the table"):
        a.insert(s)
    with pytest.raises(ValueError, match="already in another table"):
        b.insert(s)
    assert len(b) == 0 and b.find(2, 6, s.addr_bytes, 80) is None
    a.remove(s)
    assert not s.linked
    b.insert(s)
    assert b.find(2, 6, s.addr_bytes, 80) is s and len(a) == 0


def test_a_table_that_goes_away_unlinks_its_services():
    t = svctab.SvcTable(random.Random(1))
    kept = [svc(i) for i in range(50)]
    for s in kept:
        t.insert(s)
    del t
    gc.collect()
    assert not any(s.linked for s in kept)
    t2 = svctab.SvcTable(random.Random(3))
    for s in kept:
        t2.insert(s)
    assert all(t2.find(2, 6, s.addr_bytes, 80) is s for s in kept)
    t2.clear()
    assert not any(s.linked for s in kept) and len(t2) == 0


def test_table_memory_counts_the_entries_inside_services():
    t = svctab.SvcTable(random.Random(1))
    ss = [svc(i) for i in range(10)]
    for s in ss:
        t.insert(s)
    assert t.memory()["entries"] == 10 * svctab.ENTRY_SIZE
    t.remove(ss[0])
    assert t.memory()["entries"] == 9 * svctab.ENTRY_SIZE


def test_a_subclass_nobody_adopted_cannot_be_linked():
    class Plain(Service):
        __slots__ = ("extra",)

    t = svctab.SvcTable(random.Random(1))
    p = Plain(2, 6, ipaddress.IPv4Address("10.1.1.1"), 80, 0, "rr", 0, 0,
              0xFFFFFFFF, "")
    with pytest.raises(TypeError, match="svctab.adopt"):
        t.insert(p)
    assert len(t) == 0 and t.find(2, 6, p.addr_bytes, 80) is None
    svctab.adopt(Plain)
    q = Plain(2, 6, ipaddress.IPv4Address("10.1.1.2"), 80, 0, "rr", 0, 0,
              0xFFFFFFFF, "")
    t.insert(q)
    assert t.find(2, 6, q.addr_bytes, 80) is q and id(q) % 64 == 0
    t.remove(q)
    del p, q                  # p came from pymalloc, q from the cage
    gc.collect()
    with pytest.raises(TypeError, match="cannot be linked"):
        t.insert(object())


def test_adopt_refusals():
    with pytest.raises(TypeError, match="subclass of ServiceNode"):
        svctab.adopt(int)
    with pytest.raises(TypeError, match="subclass of ServiceNode"):
        svctab.adopt(svc())

    class WithDict(Service):
        pass                  # a __dict__: a bigger pre-header on 3.11+
    assert svctab.adopt(WithDict) is WithDict
    d = WithDict(2, 6, ipaddress.IPv4Address("10.2.2.2"), 80, 0, "rr", 0,
                 0, 0xFFFFFFFF, "")
    d.note = [d]                           # a cycle through the dict
    r = weakref.ref(d)
    t = svctab.SvcTable(random.Random(1))
    t.insert(d)
    assert id(d) % 64 == 0 and t.find(2, 6, d.addr_bytes, 80) is d
    t.remove(d)
    del d
    gc.collect()
    assert r() is None

    class Huge(Service):
        __slots__ = tuple(f"f{i}" for i in range(300))
    with pytest.raises(TypeError, match="too large"):
        svctab.adopt(Huge)
    assert svctab.adopt(Service) is Service    # again: harmless


def test_remove_waits_for_readers_before_the_service_can_go():
    """remove() returns only after every read-side section that may stand
    on the node has ended (the node is the Service's memory, freed as soon
    as the caller drops it)."""
    t = svctab.SvcTable(random.Random(9))
    s = svc()
    t.insert(s)
    t.insert(svc(2))
    th = threading.Thread(target=t._hold_read_section, args=(0.3,))
    th.start()
    while t._holding() == 0:
        time.sleep(0.001)
    t.remove(s)
    assert t._holding() == 2        # the reader left before remove returned
    th.join()
    assert not s.linked and t.find(2, 6, s.addr_bytes, 80) is None


def test_walkers_never_see_a_freed_service():
    """Threads walk (without the GIL, in a read-side section) while the
    main thread adds and removes services, dropping each removed one at
    once: a walk returns only services that are alive and linked (one
    removed meanwhile is left out, never returned as None or as whatever
    reused its slot).  Under ASan a read of a freed block would be
    reported; the test above checks remove()'s wait deterministically."""
    t = svctab.SvcTable(random.Random(9))
    base = [svc(i, 81) for i in range(300)]
    for s in base:
        t.insert(s)
    stop = threading.Event()
    errors = []

    def walker():
        try:
            while not stop.is_set():
                for s in t.walk():
                    if s is None or s.port not in (80, 81):
                        errors.append(s)
        except Exception as exc:           # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=walker) for _ in range(2)]
    for th in threads:
        th.start()
    try:
        rng = random.Random(4)
        live = []
        for step in range(3000):
            if live and (len(live) > 200 or rng.random() < 0.5):
                t.remove(live.pop(rng.randrange(len(live))))  # freed here
            else:
                s = svc(1000 + step)
                t.insert(s)
                live.append(s)
    finally:
        stop.set()
        for th in threads:
            th.join()
    assert errors == []
    assert len(t) == len(base) + len(live)
    assert all(t.find(2, 6, s.addr_bytes, 81) is s for s in base)
