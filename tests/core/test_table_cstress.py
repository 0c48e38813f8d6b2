"""Pthread stress of the C table (tests/core/c/table_stress.c): readers,
a writer (insert, remove by key, unlink by node) and a resizer in plain C
threads, no GIL anywhere, so every path really runs concurrently.

Compiled here with setup.py's flags; when the suite runs under
scripts/asan-test.sh (libasan preloaded) it is compiled with ASan + UBSan
too.
"""
import ctypes

import pytest

from .charness import build


@pytest.fixture(scope="module")
def lib():
    so = build("table_stress")
    so.iht_stress.restype = ctypes.c_int
    so.iht_stress.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int,
                              ctypes.c_uint64, ctypes.c_uint64,
                              ctypes.POINTER(ctypes.c_uint64)]
    return so


def run(lib, readers, ms, resizes, n, seed=1):
    out = (ctypes.c_uint64 * 6)()
    assert lib.iht_stress(readers, ms, resizes, n, seed, out) == 0
    lookups, misses, wrong, writes, done, count_err = list(out)
    assert misses == 0, out[:]
    assert wrong == 0, out[:]
    assert count_err == 0, out[:]
    assert done >= resizes
    assert lookups > 0 and writes > 0
    return list(out)


def test_c_threads_readers_writer_resizer(lib):
    run(lib, readers=2, ms=1500, resizes=100, n=20000)


@pytest.mark.slow
def test_c_threads_long(lib):
    run(lib, readers=3, ms=20000, resizes=400, n=200000, seed=7)
