"""Multi-core datapath switches: writer stripes, the flow cache, and the
multi-threaded replay (issue 8; seeds 001 and 003).

``net.replay(batch, workers=2)`` runs the trace on two threads sharing
one engine (include/ipvs_mt.h); this module holds the switches that
decide how they share it, for a ``Netns`` or a bare ``ConnEngine``:

>>> import ipvs_py
>>> from ipvs_py import multicore
>>> net = ipvs_py.Netns()
>>> multicore.configure(net, stripes=8, flow_cache=4)
{'stripes': 8, 'flow_cache': 4, 'min_load': 4.0, 'admit': 0.1}

``stripes``: 0 off (bucket bit locks only), 1 one global writer lock, N
(power of two, default 8 = the kernel's conn table) striped locks.  A
Netns nobody configured replays single-threaded with stripes off (one
writer needs none; they cost ~24% on new conns there) and gets the
defaults here on its first ``replay(batch, workers=N)``.
``flow_cache``: entries per worker (0 off, default 4, at most 16),
consulted while conns > ``min_load`` x buckets, admitting a flow only if
its previous packet came at most ``admit`` seconds earlier.
See docs/multicore.md for what equals a single-threaded replay.
"""
from ._core import conntab

__all__ = ["configure", "replay_engine", "DEFAULT_STRIPES",
           "DEFAULT_FLOW_CACHE"]

DEFAULT_STRIPES = 8       # min(8, ...) spinlocks of the kernel's conn table
DEFAULT_FLOW_CACHE = 4    # seed 001's MAX_CACHE


def _engine(target):
    if isinstance(target, conntab.ConnEngine):
        return target, 250, None
    path = target._path()
    return path.e, target.hz, path


def _resize_help_mode(value):
    """configure()'s resize_help as set_resize_help's -1/0/1."""
    if value is True or value is False:
        return int(value)
    if isinstance(value, str) and value == "auto":
        return -1
    raise ValueError(f"resize_help must be True, False or 'auto', got "
                     f"{value!r}")


def configure(target, *, stripes=DEFAULT_STRIPES, flow_cache=0,
              min_load=4.0, admit=0.1, resize_help="auto"):
    """Set the datapath switches of ``target`` (a Netns or ConnEngine);
    ``admit`` is in seconds.  ``resize_help``: whether workers move
    chunks of a conn table rebuild between packets (True, False, or
    "auto": when workers plus the resize thread outnumber the online
    CPUs).  Returns the settings.  Raises ValueError naming the bad
    setting; nothing changes then."""
    eng, hz, path = _engine(target)
    help_mode = _resize_help_mode(resize_help)
    if stripes != 0 and (not isinstance(stripes, int) or stripes < 1
                         or stripes & (stripes - 1) or stripes > 256):
        raise ValueError(f"stripes must be 0 or a power of two in 1..256, "
                         f"got {stripes!r}")
    if not isinstance(flow_cache, int) or not 0 <= flow_cache <= 16:
        raise ValueError(f"flow_cache must be 0..16 entries, got "
                         f"{flow_cache!r}")
    if not 0 <= min_load <= 1 << 20:
        raise ValueError(f"min_load must be 0..{1 << 20}, got {min_load!r}")
    if not 0 <= admit < 1 << 20:
        raise ValueError(f"admit must be >= 0 seconds, got {admit!r}")
    conntab.set_stripes(eng, stripes)
    conntab.set_flow_cache(eng, flow_cache, min_load, int(round(admit * hz)))
    conntab.set_resize_help(eng, help_mode)
    settings = {"stripes": stripes, "flow_cache": flow_cache,
                "min_load": min_load, "admit": admit,
                "resize_help": resize_help}
    if path is not None:
        path.datapath = settings
    return settings


def replay_engine(eng, batch, times, workers, mask, dest, codes, *,
                  hz=0.0, floor=0):
    """ConnEngine-level multi-threaded replay (ConnPath.replay calls it):
    rows sharded by client address under ``mask`` (16 bytes), ``times``
    in jiffies, or None: the workers convert ``batch.time`` themselves
    (max(round(t * hz), floor) jiffies); fills every row of
    ``dest``/``codes``; returns the run's statistics (phase times, grace
    periods, pool grabs, flow cache hits...)."""
    if not isinstance(workers, int) or not 1 <= workers <= 64:
        raise ValueError(f"workers must be 1..64, got {workers!r}")
    return conntab.replay_mt(eng, batch, times, workers, mask, dest, codes,
                             hz, floor)
