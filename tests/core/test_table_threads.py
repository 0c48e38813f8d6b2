"""Real-thread stress of the compiled table (the reference has no threads).

Readers look up a fixed key set (batches and single keys, GIL released)
while another thread rebuilds the table 100+ times, growing and shrinking,
and a writer inserts and removes keys of a disjoint range: zero misses,
zero wrong hits, exact count.  Default runs take a few seconds; the
``slow`` variants run longer and bigger.  Under ASan + UBSan:
``bash scripts/asan-test.sh tests/core/test_table_threads.py`` (see
docs/table.md; ``tox -e asan`` runs the whole suite that way).
"""
import random
import threading
import time

import numpy as np
import pytest

from ipvs_py._core import table as T


def k(i):
    return int(i).to_bytes(16, "little")


def keys_array(idx):
    a = np.zeros((len(idx), 2), dtype=np.uint64)
    a[:, 0] = idx
    return a


class Stop(Exception):
    pass


def run_threads(targets, timeout=120):
    """Run ``targets`` in threads; re-raise the first error.

    The switch interval is lowered to 0.5 ms meanwhile: with the default
    5 ms a thread that drops the GIL for a 1 ms resize waits up to 5 ms to
    get it back (measured: resizes of a 20k table took 16-20 ms instead
    of 1 ms), which only slows the test and interleaves less.
    """
    import sys
    errors = []
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)

    def wrap(fn):
        def run():
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
        return run

    threads = [threading.Thread(target=wrap(f), daemon=True) for f in targets]
    for th in threads:
        th.start()
    try:
        for th in threads:
            th.join(timeout)
            assert not th.is_alive(), "thread hung (deadlock?)"
    finally:
        sys.setswitchinterval(old)
    if errors:
        raise errors[0]


def readers_during_resizes(n_keys, n_resizes, n_readers=2, writer=True):
    t = T.Table(8, 20, 0, auto_resize=False)
    present = np.arange(1, n_keys + 1, dtype=np.uint64)
    absent = np.arange(10**9, 10**9 + 2000, dtype=np.uint64)
    t.insert_batch(keys_array(present), present * 3)
    kp, ka = keys_array(present), keys_array(absent)
    stop = threading.Event()
    stats = {"batches": 0, "singles": 0, "misses": 0, "wrong": 0}
    lock = threading.Lock()

    def reader():
        rnd = random.Random(threading.get_ident())
        while not stop.is_set():
            v, f = t.lookup_batch(kp)
            miss = int((~f).sum())
            wrong = int((v != present * 3).sum()) - miss
            v2, f2 = t.lookup_batch(ka)
            wrong += int(f2.sum())
            for _ in range(50):
                i = rnd.randrange(n_keys) + 1
                got = t.lookup(k(i))
                if got is None:
                    miss += 1
                elif got != 3 * i:
                    wrong += 1
            with lock:
                stats["batches"] += 2
                stats["singles"] += 50
                stats["misses"] += miss
                stats["wrong"] += wrong

    written = {"live": set()}

    def writer_thread():
        rnd = random.Random(7)
        live = written["live"]
        base = 2 * 10**9
        while not stop.is_set():
            for _ in range(200):
                i = base + rnd.randrange(5000)
                if i in live and rnd.random() < 0.5:
                    assert t.remove(k(i)) == i
                    live.discard(i)
                elif i not in live:
                    t.insert(k(i), i)
                    live.add(i)

    def resizer():
        rnd = random.Random(1)
        try:
            for n in range(n_resizes):
                if n % 10 == 9:
                    t.lfactor = rnd.choice([-3, 0, 3])
                else:
                    t.resize_to(rnd.choice([8, 10, 12, 14, 16, 18]))
        finally:
            stop.set()

    run_threads([reader] * n_readers + ([writer_thread] if writer else [])
                + [resizer])
    assert t.resizes >= n_resizes * 9 // 10   # an lfactor write may be a no-op
    assert stats["batches"] > 0
    assert stats["misses"] == 0, stats
    assert stats["wrong"] == 0, stats
    live = written["live"]
    assert len(t) == n_keys + len(live)
    v, f = t.lookup_batch(kp)
    assert f.all() and (v == present * 3).all()
    got = {int.from_bytes(kk, "little") for kk, _ in t.items()}
    assert got == set(present.tolist()) | live
    return stats


def test_readers_never_miss_while_resizing():
    readers_during_resizes(n_keys=20000, n_resizes=110)


@pytest.mark.slow
def test_readers_never_miss_while_resizing_long():
    readers_during_resizes(n_keys=100000, n_resizes=120, n_readers=3)


def concurrent_writers(n_threads, per_thread, rounds):
    t = T.Table(4, 20, 0, auto_resize=True)
    stop = threading.Event()

    def worker(tid):
        def run():
            base = (tid + 1) << 32
            for r in range(rounds):
                ids = [base + r * per_thread + i for i in range(per_thread)]
                for i in ids:
                    t.insert(k(i), i)
                for i in ids[::2]:
                    assert t.remove(k(i)) == i
                for i in ids[1::2]:
                    assert t.lookup(k(i)) == i
        return run

    def shrinker():
        while not stop.is_set():
            t.maybe_resize()
            stop.wait(0.001)

    workers = [worker(i) for i in range(n_threads)]
    sh = threading.Thread(target=shrinker, daemon=True)
    sh.start()
    try:
        run_threads(workers)
    finally:
        stop.set()
        sh.join()
    expect = {((tid + 1) << 32) + r * per_thread + i
              for tid in range(n_threads) for r in range(rounds)
              for i in range(1, per_thread, 2)}
    assert len(t) == len(expect)
    got = [int.from_bytes(kk, "little") for kk, _ in t.items()]
    assert len(got) == len(expect) and set(got) == expect
    assert t.resizes > 3
    return t


def test_concurrent_inserts_removes_keep_count():
    concurrent_writers(n_threads=4, per_thread=2000, rounds=4)


@pytest.mark.slow
def test_concurrent_inserts_removes_keep_count_long():
    concurrent_writers(n_threads=6, per_thread=20000, rounds=6)


def test_memory_returns_to_baseline_after_removals():
    t = T.Table(4, 16, 0)
    base = t.memory()
    for i in range(5000):
        t.insert(k(i), i)
    for i in range(5000):
        t.remove(k(i))
    t.reclaim()
    t.maybe_resize()
    m = t.memory()
    assert m["entries"] == 0 and len(t) == 0
    assert m == base


def test_unlink_by_hash_key_follows_resizes():
    """iht_unlink (remove by the node's saved hash_key, the conn table's
    way) while another thread keeps rebuilding: every unlink finds its
    node, wherever the resizer has moved it."""
    t = T.Table(4, 16, 0, auto_resize=False)
    n = 20000
    for i in range(n):
        t.insert(k(i), i)
    stop = threading.Event()

    def wait_resizes(count):
        # a loaded box may not run the resizer while we unlink: wait for
        # it, so that "resizes during the unlinks" holds on any schedule
        while t.resizes < count and not stop.is_set():
            time.sleep(0.001)

    def unlinker():
        try:
            wait_resizes(1)
            for i in range(n):
                if i == n // 2:
                    wait_resizes(t.resizes + 2)
                assert t._unlink_one(k(i)) == i
        finally:
            stop.set()

    def resizer():
        bits = [8, 12, 16, 10, 14]
        j = 0
        while not stop.is_set():
            t.resize_to(bits[j % len(bits)])
            j += 1

    run_threads([unlinker, resizer])
    assert len(t) == 0 and t.items() == []
    assert t.resizes > 2
