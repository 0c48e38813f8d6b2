"""Replay one workload at each conn_lfactor (and conn_tab_bits) setting and
measure the conn table: the numbers behind ``ipvs-py tune``.

What each number is, and where it comes from (all from the table itself):

- ``hist``: [empty, len-1, ..., len-7+] bucket counts after the replay,
  ``Netns.conn_chain_lengths()`` (the rows of /proc/net/ip_vs_status);
  ``empty_pct``/``len_pct`` use ip_vs_status's truncating percentages.
- ``walk_mean``/``walk_p99``: nodes compared per conn lookup, *measured*
  by the table core's nogil counters (``ConnEngine.count_walks``) over
  every lookup the replay itself did: one hn0 lookup per client packet
  (a SYN of a new conn is a miss that walks its whole chain), the
  cport-0 retry when NO_CPORT conns exist, persistence templates.  p99
  is read off the exact per-lookup histogram.
- ``lookup_ns``: wall time per lookup of a nogil loop of hn0 lookups of
  random rows of the workload after the replay (up to ``timing_rows``
  rows or ~0.1 s a loop, best of five loops; no prefetching, so chain
  length shows).
- ``table_bytes`` (bucket heads + seqcounts/locks) and ``entry_bytes``
  (conn slots): the core's allocation counters.
- ``resizes``/``pause_max_ms``: rebuilds during the replay and the longest
  one's wall time (the packet loop waits for it).
- ``timeline``: table size over time, *sampled*: the replay runs in
  ``chunks`` equal slices of rows, and after each the virtual time, conns
  and buckets are recorded; a resize inside a slice shows at the slice's
  end (the resize count itself is exact).
"""
import dataclasses
import time

import numpy as np

from ..netns import Netns

LFACTORS = tuple(range(-8, 9))      # the sysctl's whole range (8d7de5477e47)
HIST_LABELS = ("empty",) + tuple(f"len-{i}" for i in range(1, 7)) + ("len-7+",)


@dataclasses.dataclass
class Setting:
    """One point of the sweep: ``lfactor`` None on kernel 6.1 (no sysctl,
    the fixed 2^conn_tab_bits table)."""

    lfactor: object
    conn_tab_bits: int
    kernel: str = "7.1"

    @property
    def label(self):
        if self.lfactor is None:
            return f"bits {self.conn_tab_bits}"
        return f"lfactor {self.lfactor:+d}, bits {self.conn_tab_bits}"


@dataclasses.dataclass
class Row:
    """What one setting did (see the module docstring for each field)."""

    lfactor: object
    conn_tab_bits: int
    kernel: str
    buckets: int
    bits: int
    conns: int
    hist: list
    empty_pct: int
    len_pct: list
    lookups: int
    walk_mean: float
    walk_p99: int
    walk_hist: list
    lookup_ns: float
    table_bytes: int
    entry_bytes: int
    resizes: int
    pause_max_ms: float
    replay_s: float
    timing_s: float       # wall time of the lookup_ns loops
    timeline: list        # [(virtual seconds, conns, buckets), ...]

    @property
    def total_bytes(self):
        return self.table_bytes + self.entry_bytes

    def as_dict(self):
        """Plain JSON-able dict (timeline and walk histogram included)."""
        d = dataclasses.asdict(self)
        d["total_bytes"] = self.total_bytes
        return d


def percentile_of_hist(hist, q):
    """Smallest k with at least ``q`` of the counts at k or below (hist[k]
    counts lookups that walked k nodes); 0 for an empty histogram."""
    counts = np.asarray(hist, np.float64)
    total = counts.sum()
    if total == 0:
        return 0
    return int(np.searchsorted(np.cumsum(counts), q * total - 1e-9))


def status_percentages(hist):
    """(empty %, [len-1 % .. len-7+ %]) as /proc/net/ip_vs_status prints
    them: empty of all buckets, len-N of the non-empty ones, truncated."""
    total = sum(hist)
    nonempty = total - hist[0]
    return (hist[0] * 100 // max(total, 1),
            [h * 100 // max(nonempty, 1) for h in hist[1:]])


def new_netns(rules, setting, seed=0):
    """A fresh namespace at ``setting`` with ``rules`` (text) restored."""
    net = Netns(conn_tab_bits=setting.conn_tab_bits, kernel=setting.kernel,
                seed=seed)
    if setting.lfactor is not None:
        net.sysctl["conn_lfactor"] = setting.lfactor
    net.restore(rules)
    return net


def replay_setting(batch, rules, setting, *, chunks=40, timing_rows=200_000,
                   seed=0, on_chunk=None, net=None):
    """Replay ``batch`` into a fresh namespace built from ``rules`` (text)
    at ``setting`` (or into ``net``, made by :func:`new_netns`, so a
    caller can read the table afterwards); returns a :class:`Row`.
    ``on_chunk()`` is called after each replay slice (progress bars)."""
    if net is None:
        net = new_netns(rules, setting, seed)
    engine = net._path().e
    engine.count_walks(True)
    n = len(batch)
    bounds = chunk_bounds(n, chunks)
    timeline = [(0.0, 0, net.conn_tab_size)]
    replay_s = 0.0
    for a, b in zip(bounds[:-1], bounds[1:]):
        t0 = time.perf_counter()
        net.replay(batch[int(a):int(b)])
        replay_s += time.perf_counter() - t0
        timeline.append((float(batch.time[b - 1]) if b else 0.0,
                         net.conn_count, net.conn_tab_size))
        if on_chunk:
            on_chunk()
    engine.count_walks(False)
    st = engine.table_stats()
    hist = list(net.conn_chain_lengths())
    empty_pct, len_pct = status_percentages(hist)
    lookups = st["lookups"]
    size = net.conn_tab_size
    t0 = time.perf_counter()
    lookup_ns = _lookup_ns(engine, batch, timing_rows, seed)
    timing_s = time.perf_counter() - t0
    return Row(
        lfactor=setting.lfactor, conn_tab_bits=setting.conn_tab_bits,
        kernel=setting.kernel, buckets=size, bits=size.bit_length() - 1,
        conns=net.conn_count, hist=hist, empty_pct=empty_pct,
        len_pct=len_pct, lookups=lookups,
        walk_mean=st["walked"] / lookups if lookups else 0.0,
        walk_p99=percentile_of_hist(st["hist"], 0.99),
        walk_hist=list(st["hist"]),
        lookup_ns=lookup_ns, timing_s=timing_s,
        table_bytes=st["bucket_bytes"] + st["lock_bytes"],
        entry_bytes=st["conn_bytes"], resizes=st["resizes"],
        pause_max_ms=st["pause_max_ns"] / 1e6, replay_s=replay_s,
        timeline=timeline)


def chunk_bounds(n, chunks):
    """Row offsets 0 = b0 < b1 < ... = n of the replay slices: half of
    them evenly spaced, half geometric from 256 rows, because the table
    doubles at geometrically spaced conn counts (early resizes would all
    fall into the first even slice)."""
    if n == 0:
        return np.array([0], np.int64)
    half = max(1, chunks // 2)
    even = np.linspace(0, n, half + 1)
    geo = np.geomspace(min(256, n), n, max(1, chunks - half))
    return np.unique(np.concatenate([even, geo]).round().astype(np.int64))


def _lookup_ns(engine, batch, timing_rows, seed, repeat=5, loop_s=0.1,
               pilot=1000):
    """Best ns per hn0 lookup over random rows of the batch.

    A pilot loop of ``pilot`` rows estimates the cost, so each timed loop
    covers at most ``timing_rows`` rows and about ``loop_s`` seconds
    (at lfactor +8 over 1M conns one lookup walks ~500 nodes, ~100 us:
    200k rows would take 20 s a loop).  Of ``repeat`` loops the fastest
    counts: the one least disturbed by other work on the machine."""
    n = len(batch)
    if n == 0 or timing_rows <= 0:
        return 0.0
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, n, min(n, timing_rows), dtype=np.int64)
    probe = rows[:pilot]
    est = engine.time_lookups(batch, probe)[1] / len(probe)
    rows = rows[:max(len(probe), min(len(rows), int(loop_s * 1e9 /
                                                    max(est, 1.0))))]
    best = min(engine.time_lookups(batch, rows)[1] for _ in range(repeat))
    return best / len(rows)


def settings_for(lfactors=LFACTORS, bits=(20,), kernel="7.1"):
    """The sweep's settings: every lfactor x every conn_tab_bits (kernel
    6.1 has no lfactor, so only the bits vary there).  Raises ValueError
    naming a value out of the kernel's range."""
    from ..netns import CONN_TAB_MAX_BITS, CONN_TAB_MIN_BITS
    if kernel not in ("7.1", "6.1"):
        raise ValueError(f"kernel must be 7.1 or 6.1, not {kernel!r}")
    for b in bits:
        if not CONN_TAB_MIN_BITS <= b <= CONN_TAB_MAX_BITS:
            raise ValueError(f"conn_tab_bits {b} is outside "
                             f"{CONN_TAB_MIN_BITS}..{CONN_TAB_MAX_BITS}")
    if kernel == "6.1":
        return [Setting(None, b, kernel) for b in bits]
    for lf in lfactors:
        if not LFACTORS[0] <= lf <= LFACTORS[-1]:
            raise ValueError(f"conn_lfactor {lf} is outside "
                             f"{LFACTORS[0]}..{LFACTORS[-1]} (the sysctl's "
                             f"range)")
    return [Setting(lf, b, kernel) for b in bits for lf in lfactors]


def sweep(batch, rules, settings, *, chunks=40, timing_rows=200_000, seed=0,
          progress=None, jobs=1):
    """Replay ``batch`` at every setting; returns the :class:`Row` list in
    the settings' order.  ``progress``: a rich Progress to show a bar on
    (or None).  ``jobs`` > 1 replays that many settings at once on
    threads: each has its own namespace and the replay runs without the
    GIL, so they overlap on several cores (the ``lookup_ns`` of each is
    then measured while the others run, so it is noisier)."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    task = None
    if progress is not None:
        task = progress.add_task("replaying", total=len(settings) * chunks)

    def one(s):
        if task is not None and jobs == 1:
            progress.update(task, description=f"replaying ({s.label})")
        return replay_setting(
            batch, rules, s, chunks=chunks, timing_rows=timing_rows,
            seed=seed,
            on_chunk=(lambda: progress.advance(task)) if task is not None
            else None)

    if jobs == 1:
        return [one(s) for s in settings]
    from concurrent.futures import ThreadPoolExecutor
    if task is not None:
        progress.update(task, description=f"replaying ({jobs} at a time)")
    # longest first (high lfactor = long chains; 6.1: few bits), so the
    # slowest setting does not start last and leave the other threads idle
    order = sorted(range(len(settings)), key=lambda i: (
        settings[i].lfactor if settings[i].lfactor is not None
        else -settings[i].conn_tab_bits), reverse=True)
    with ThreadPoolExecutor(jobs) as pool:
        futures = {i: pool.submit(one, settings[i]) for i in order}
        return [futures[i].result() for i in range(len(settings))]
