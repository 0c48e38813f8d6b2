"""Writer stripes (seed 003) under contention: tests/core/c/stripe_stress.c
runs writer threads doing two-stripe operations (insert2, unlink2, rehash),
a resizer whose moves take two stripes too, and readers, all plain C
threads without the GIL.  A deadlock shows as the C harness's own
watchdog (-1: threads not finished 10 s after stop) or, at worst, as the
pytest-timeout; lost or duplicated entries show in the final walk.

Compiled by tests/core/charness.py (setup.py's flags; ASan + UBSan under
scripts/asan-test.sh).
"""
import ctypes

import pytest

from .charness import build


@pytest.fixture(scope="module")
def lib():
    so = build("stripe_stress")
    so.stripe_stress.restype = ctypes.c_int
    so.stripe_stress.argtypes = [ctypes.c_int] * 4 + [
        ctypes.c_uint64, ctypes.c_uint64, ctypes.POINTER(ctypes.c_uint64)]
    return so


def run(lib, stripes, writers=6, readers=2, ms=700, stable=3000, per=256):
    out = (ctypes.c_uint64 * 8)()
    rc = lib.stripe_stress(stripes, writers, readers, ms, stable, per, out)
    assert rc != -1, "threads did not finish: deadlock"
    assert rc == 0, f"setup failed ({rc})"
    ops, lookups, misses, wrong, resizes, count_err, node_err, doubles = out
    assert misses == 0 and wrong == 0, list(out)
    assert count_err == 0 and node_err == 0, list(out)
    assert ops > 1000 and lookups > 1000 and resizes > 0, list(out)
    if stripes:
        assert doubles > ops // 2, list(out)   # two-stripe paths ran
    return list(out)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("stripes", [1, 2, 8, 256])
def test_many_threads_two_stripe_ops_no_deadlock_no_loss(lib, stripes):
    # few stripes = heavy contention on each; 1 = the global lock
    run(lib, stripes)


@pytest.mark.timeout(120)
def test_without_stripes_bucket_locks_alone(lib):
    run(lib, 0)


@pytest.mark.timeout(120)
def test_more_threads_than_cores_small_table(lib):
    # 12 writers on 2 cores: holders get descheduled while others spin
    run(lib, 8, writers=12, readers=3, ms=1000, stable=500, per=64)
