"""The benches' timing: the fastest of N timed calls, with the collector
out of the way.

Fastest, not mean: on this shared 2-CPU machine a slow call is another
job's noise, never a cheaper code path.  Garbage is collected first and
the collector is off while timing (as timeit does), so neither a
collection nor memory that earlier runs left to one lands inside a timed
call.
"""
import contextlib
import gc
import time

__all__ = ["best_of", "collector_off"]


@contextlib.contextmanager
def collector_off():
    """Collect garbage now; keep the collector off inside the block."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def best_of(fn, repeat=5):
    """Seconds of the fastest of ``repeat`` calls of ``fn()``."""
    best = float("inf")
    with collector_off():
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
    return best
