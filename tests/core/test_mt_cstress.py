"""The multi-core replay driven from plain C threads
(tests/core/c/mt_replay_stress.c): a random NAT trace with SYN/ACK/FIN/RST,
replies and timers firing, replayed by one thread and by N workers with
writer stripes and flow caches; verdicts, conns and counters must match.
The same file builds as a standalone program for ThreadSanitizer
(docs/multicore.md, "Sanitizers")."""
import ctypes

import pytest

from .charness import stress_entry


@pytest.fixture(scope="module")
def mt_stress():
    return stress_entry("mt_replay_stress", "mt_stress")


@pytest.fixture(scope="module")
def mt_stress_queues():
    return stress_entry("mt_replay_stress", "mt_stress_queues")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("queues", [0, 1])
@pytest.mark.parametrize("workers, stripes, seed", [
    (2, 8, 1), (3, 1, 2), (4, 256, 3), (8, 8, 4)])
def test_c_threads_equal_one_thread(mt_stress, mt_stress_queues, workers,
                                    stripes, seed, queues):
    # queues=1: the trace split into one RSS queue per worker first
    out = (ctypes.c_uint64 * 6)()
    run = mt_stress_queues if queues else mt_stress
    assert run(workers, stripes, 3000, 40000, seed, out) == 0
    rows, conns, counters, made, _, _ = out
    assert made > 1000
    assert (rows, conns, counters) == (0, 0, 0)
