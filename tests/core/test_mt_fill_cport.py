"""The no-cport rehash (ipvs_conn_fill_cport) against concurrent lookups
and resizes, from plain C threads (tests/core/c/fill_cport_stress.c).

A conn made with client port 0 gets its port when a packet brings it;
the port and the conn's position must change in one writer step (the
kernel's order: lock the old and the new bucket under the old bucket's
seqcount, re-check IP_VS_CONN_F_NO_CPORT, then update and move).  With
the port written before the locks, a lookup by the old key missed (the
port no longer matched) and one by the new key missed too (the node had
not moved yet): the harness counted thousands of such lost lookups per
run against the headers of commit 9e6c23f, none with the fix."""
import ctypes

import pytest

from .charness import stress_entry


@pytest.fixture(scope="module")
def fill_cport_stress():
    return stress_entry("fill_cport_stress", "fill_cport_stress")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("readers, stripes, resize, seed", [
    (1, 8, 0, 1), (2, 8, 1, 2), (3, 0, 1, 3), (2, 1, 0, 4)])
def test_fill_cport_never_loses_the_conn(fill_cport_stress, readers,
                                         stripes, resize, seed):
    out = (ctypes.c_uint64 * 6)()
    assert fill_cport_stress(8000, readers, stripes, resize, seed,
                             out) == 0
    lost, back, wrong, bad, old_hits, resizes = out
    assert (lost, back, wrong, bad) == (0, 0, 0, 0)
    assert old_hits > 0          # readers met conns before their fill
    if resize:
        assert resizes > 0       # rehashes met rebuilds
