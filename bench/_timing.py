"""The benches' one timer: the fastest of N timed calls.

Fastest, not mean: on this shared 2-CPU machine a slow call is another
job's noise, never a cheaper code path.  The collector runs once first and
is off during each call (as timeit does), so a collection of garbage that
earlier calls left never lands inside a timed one.
"""
import gc
import time

__all__ = ["best_of"]


def best_of(fn, repeat=5):
    """Seconds of the fastest of ``repeat`` calls of ``fn()``."""
    gc.collect()
    best = float("inf")
    for _ in range(repeat):
        enabled = gc.isenabled()
        gc.disable()
        try:
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        finally:
            if enabled:
                gc.enable()
    return best
