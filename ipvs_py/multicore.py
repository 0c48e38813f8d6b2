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
import numpy as np

from ._core import conntab

__all__ = ["configure", "replay_engine", "rss_queues", "RssQueues",
           "DEFAULT_STRIPES", "DEFAULT_FLOW_CACHE"]

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


class RssQueues:
    """A trace split the way a NIC's receive-side scaling would deliver it
    to ``len(batches)`` CPUs: ``batches[k]`` holds, in trace order, the
    rows whose client address hashes to worker k (the hash every
    multi-core replay shards by), and ``rows[k]`` their row numbers in
    the trace.  ``Netns.replay_queues(queues)`` replays them, one worker
    thread per queue."""

    __slots__ = ("batches", "rows", "n")

    def __init__(self, batches, rows, n):
        self.batches, self.rows, self.n = batches, rows, n

    def __len__(self):
        return len(self.batches)

    def merge(self, results):
        """The per-queue ReplayResults of ``replay_queues`` as trace-order
        arrays ``(dest_index, codes)``, what ``replay(batch)`` returns
        as ``.dest_index``/``.codes``."""
        if len(results) != len(self.batches):
            raise ValueError(f"{len(self.batches)} queues, "
                             f"{len(results)} results")
        dest = np.empty(self.n, np.int32)
        codes = np.empty(self.n, np.uint8)
        for rows, res in zip(self.rows, results):
            dest[rows] = res.dest_index
            codes[rows] = res.codes
        return dest, codes

    def __repr__(self):
        return (f"<RssQueues {self.n} rows in {len(self.batches)} queues: "
                f"{[len(b) for b in self.batches]}>")


def rss_queues(net, batch, n):
    """Split ``batch`` into ``n`` RSS queues for ``net`` (a Netns): row i
    goes to the worker of its client address (source of a client packet,
    destination of a reply) masked by the coarsest persistence netmask of
    ``net``'s services, as the workers of ``net.replay(batch,
    workers=n)`` split it themselves.  Split after the services are in
    place: a persistent service added later changes the mask, and
    replay_queues then refuses the queues.  Returns an RssQueues."""
    from .packets import PacketBatch
    if not isinstance(n, int) or not 1 <= n <= 64:
        raise ValueError(f"queues must be 1..64, got {n!r}")
    if not isinstance(batch, PacketBatch):
        batch = PacketBatch.from_rows(batch)
    if batch.icmp is not None:
        raise ValueError("ICMP rows replay on the single-threaded path only")
    shard = conntab.shard_rows(batch, net._path().shard_mask(), n)
    order = np.argsort(shard, kind="stable")
    bounds = np.searchsorted(shard[order], np.arange(n + 1))
    rows = [order[bounds[k]:bounds[k + 1]] for k in range(n)]
    return RssQueues([batch.take(r) for r in rows], rows, len(batch))
