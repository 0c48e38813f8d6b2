# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Resizable hlist_bl hash table: the kernel's IPVS ``ip_vs_rht`` in C.

``Table`` maps fixed-size byte keys to u64 values (duplicates allowed, as in
the kernel) in C memory.  It sizes itself exactly as the kernel sizes the
connection and service tables (``desired_size``/``thresholds``, lfactor
-8..8), resizes by moving entries bucket by bucket under seqcount writer
sections while lookups from other threads keep finding every entry, and
releases the GIL for every operation, so lookups, inserts, removes and a
resize can run in several threads at once.

The C API (``include/ipvs_table.h``, declared in ``table.pxd``) is what the
service and connection tables build on; this class is its generic user and
the thing the tests and benchmarks drive.
"""
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t
from libc.stdlib cimport malloc, free, realloc
from libc.string cimport memcpy
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

import os

import numpy as np

__all__ = [
    "Table", "BadKeyError", "desired_size", "thresholds", "lock_counts",
    "TRACE_DOMAIN", "LFACTOR_MIN", "LFACTOR_MAX", "BITS_MIN", "BITS_MAX",
    "MOVE_LIMIT", "TABLE_ID_MASK", "PROFILES", "HEAD_BYTES", "NODE_BYTES",
    "cage_usage",
]

TRACE_DOMAIN = IHT_TRACE_DOMAIN
LFACTOR_MIN = IHT_LFACTOR_MIN
LFACTOR_MAX = IHT_LFACTOR_MAX
BITS_MIN = IHT_BITS_MIN
BITS_MAX = IHT_BITS_MAX
MOVE_LIMIT = IHT_MOVE_LIMIT
TABLE_ID_MASK = IHT_TABLE_ID_MASK
#: bytes of a bucket head and of a node: the table's own overhead per
#: bucket and per entry (32-bit references into the entry cage)
HEAD_BYTES = sizeof(iht_bl_head)
NODE_BYTES = sizeof(iht_node)


def cage_usage():
    """This module's entry cage (include/iht_cage.h): bytes ``reserved``
    (address space), ``used`` (handed out to runs and chunks) and
    ``committed`` (made readable/writable)."""
    cdef size_t r, u, c
    iht_cage_usage(&r, &u, &c)
    return {"reserved": r, "used": u, "committed": c}

# Lock layouts of the kernel's two users (seqc_shift, seqc_max, locks).
PROFILES = {"conn": (6, 256, 8), "svc": (4, 64, 0)}

cdef object _U64_MAX = (1 << 64) - 1
cdef object _I64_MAX = (1 << 63) - 1
cdef int _ENOMEM = 12


class BadKeyError(ValueError, TypeError):
    """A key of the wrong type or size.

    Both a ``ValueError`` and a ``TypeError``, so either ``except`` catches
    it; the message names the argument and the expected size.
    """


# ---------------------------------------------------------------- checks

cdef int _int_arg(object value, str name, int lo, int hi) except? -1:
    """``value`` as a C int in lo..hi, or TypeError/ValueError naming it."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    v = value.__index__()
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, got {v}")
    return <int>v


cdef int64_t _count_arg(object value, str name) except? -1:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    v = value.__index__()
    if not 0 <= v <= _I64_MAX:
        raise ValueError(f"{name} must be in 0..2**63-1, got {v}")
    return <int64_t>v


cdef uint64_t _u64(object value, str name) except? 0:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    v = value.__index__()
    if not 0 <= v <= _U64_MAX:
        raise ValueError(f"{name} must be a u64 (0..2**64-1), got {v}")
    return <uint64_t>v


cdef iht_lock_profile _profile(str profile, int ncpus) except *:
    cdef iht_lock_profile p
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, "
                         f"got {profile!r}")
    p.seqc_shift, p.seqc_max, p.locks = PROFILES[profile]
    p.ncpus = ncpus
    return p


# ------------------------------------------------------- sizing functions

def desired_size(n, lfactor, min_bits, max_bits, size=None,
                 table_lfactor=None):
    """Buckets the kernel wants for ``n`` entries (ip_vs_rht_desired_size).

    ``size``/``table_lfactor`` describe the current table; ``size=None``
    means no table yet (the first table has ``1 << min_bits`` buckets).
    """
    cdef int mn = _int_arg(min_bits, "min_bits", IHT_BITS_MIN, IHT_BITS_MAX)
    cdef int mx = _int_arg(max_bits, "max_bits", IHT_BITS_MIN, IHT_BITS_MAX)
    cdef int lf = _int_arg(lfactor, "lfactor", IHT_LFACTOR_MIN,
                           IHT_LFACTOR_MAX)
    cdef int64_t cnt = _count_arg(n, "n")
    if mn > mx:
        raise ValueError(f"min_bits ({mn}) must not exceed max_bits ({mx})")
    if size is None:
        return iht_desired_size(0, cnt, lf, mn, mx, 0, 0)
    cdef int64_t sz = _count_arg(size, "size")
    cdef int tlf = lf if table_lfactor is None else _int_arg(
        table_lfactor, "table_lfactor", IHT_LFACTOR_MIN, IHT_LFACTOR_MAX)
    return iht_desired_size(1, cnt, lf, mn, mx, sz, tlf)


def thresholds(size, lfactor, min_bits, max_bits):
    """``(u_thresh, l_thresh)`` of a table of ``size`` buckets
    (ip_vs_rht_set_thresholds)."""
    cdef int mn = _int_arg(min_bits, "min_bits", IHT_BITS_MIN, IHT_BITS_MAX)
    cdef int mx = _int_arg(max_bits, "max_bits", IHT_BITS_MIN, IHT_BITS_MAX)
    cdef int lf = _int_arg(lfactor, "lfactor", IHT_LFACTOR_MIN,
                           IHT_LFACTOR_MAX)
    cdef int64_t sz = _count_arg(size, "size")
    cdef int64_t u, l
    if mn > mx:
        raise ValueError(f"min_bits ({mn}) must not exceed max_bits ({mx})")
    iht_thresholds(sz, lf, mn, mx, &u, &l)
    return u, l


def lock_counts(size, profile="conn", ncpus=None):
    """``(seqcounts, stripe_locks)`` of a table of ``size`` buckets."""
    cdef int cpus = (os.cpu_count() or 1) if ncpus is None else _int_arg(
        ncpus, "ncpus", 1, 1 << 20)
    cdef iht_lock_profile p = _profile(profile, cpus)
    cdef int s, l
    iht_lock_counts(_count_arg(size, "size"), &p, &s, &l)
    return s, l


# ------------------------------------------------------------------ Table

@cython.final
cdef dict walk_stats_dict(iht_walk_stats *s):
    """Counters of iht_walkstats.h as a dict: ``lookups``, ``hits``,
    ``walked`` (nodes, summed), ``hist`` (lookups by nodes walked; the last
    bin is IHT_WALK_BINS - 1 or more)."""
    cdef uint64_t out[IHT_WALK_BINS + 3]
    iht_walk_stats_read(s, out)
    return {"lookups": out[0], "hits": out[1], "walked": out[2],
            "hist": [out[3 + i] for i in range(IHT_WALK_BINS)]}


cdef dict pause_stats_dict(iht_table *t):
    """Rebuilds so far and their wall times (the caller is blocked for
    each): ``resizes``, ``pause_max_ns``, ``pause_total_ns``."""
    return {"resizes": iht_resizes(t), "pause_max_ns": iht_pause_max_ns(t),
            "pause_total_ns": iht_pause_total_ns(t)}


WALK_BINS = IHT_WALK_BINS


cdef class Table:
    """Resizable hash table of fixed-size byte keys to u64 values.

    ``Table(min_bits, max_bits, lfactor=0, *, key_size=16, profile="conn",
    ncpus=None, auto_resize=True)``.  The first array has ``1 << min_bits``
    buckets.  ``profile`` picks the kernel's lock layout and triggers:
    ``"conn"`` (grow on insert past ``u_thresh``; shrink only from
    :meth:`maybe_resize`, the kernel's 2 s re-check) or ``"svc"`` (a
    remove that leaves ``len <= l_thresh`` also requests a resize).
    With ``auto_resize`` a requested resize runs inside the call that
    requested it; otherwise it waits for :meth:`maybe_resize`.

    Every method releases the GIL around the table work.  Lookups never
    miss an entry that is present, whatever resize runs meanwhile.
    """

    def __cinit__(self):
        self.ready = False

    def __init__(self, min_bits, max_bits, lfactor=0, *, key_size=16,
                 profile="conn", ncpus=None, auto_resize=True):
        if self.ready:
            raise RuntimeError("Table.__init__ called twice")
        cdef int mn = _int_arg(min_bits, "min_bits", IHT_BITS_MIN,
                               IHT_BITS_MAX)
        cdef int mx = _int_arg(max_bits, "max_bits", IHT_BITS_MIN,
                               IHT_BITS_MAX)
        cdef int lf = _int_arg(lfactor, "lfactor", IHT_LFACTOR_MIN,
                               IHT_LFACTOR_MAX)
        cdef int ks = _int_arg(key_size, "key_size", 1, 1024)
        if mn > mx:
            raise ValueError(f"min_bits ({mn}) must not exceed max_bits "
                             f"({mx})")
        self.ncpus = (os.cpu_count() or 1) if ncpus is None else _int_arg(
            ncpus, "ncpus", 1, 1 << 20)
        cdef iht_lock_profile prof = _profile(profile, self.ncpus)
        self.profile = profile
        self.auto_resize = bool(auto_resize)
        self.ctx.key_size = ks
        # struct ihb_entry: 8-byte node + 8-byte value + key, 8-aligned
        self.ctx.entry_size = (IHB_ENTRY_HEADER + ks + 7) & ~(<size_t>7)
        cdef int rc = iht_init(&self.t, mn, mx, lf, &prof,
                               profile == "svc", ihb_node_hash, &self.ctx)
        if rc == -_ENOMEM:
            raise MemoryError("cannot allocate the first bucket array")
        if rc:
            raise ValueError("bad table parameters")
        self.ready = True

    def __dealloc__(self):
        if self.ready:
            iht_destroy(&self.t, ihb_free_node, &self.t)
            self.ready = False

    # ------------------------------------------------------------ helpers

    cdef bytes _key(self, object key, str name="key"):
        """``key`` as bytes of exactly key_size bytes, or BadKeyError."""
        cdef bytes kb
        if type(key) is bytes:
            kb = <bytes>key
        elif isinstance(key, str):
            raise BadKeyError(f"{name} must be {self.ctx.key_size} bytes "
                              f"(bytes-like), not str")
        else:
            try:
                kb = memoryview(key).cast("B").tobytes()
            except TypeError:
                raise BadKeyError(
                    f"{name} must be {self.ctx.key_size} bytes "
                    f"(bytes-like), not {type(key).__name__}") from None
        if <size_t>PyBytes_GET_SIZE(kb) != self.ctx.key_size:
            raise BadKeyError(f"{name} must be {self.ctx.key_size} bytes, "
                              f"got {PyBytes_GET_SIZE(kb)}")
        return kb

    cdef int _maybe_resize_nogil(self) except -1 nogil:
        """Run the requested resize when auto_resize is on."""
        cdef int rc = 0
        if self.auto_resize and iht_resize_pending(&self.t):
            rc = iht_maybe_resize(&self.t)
        if rc < 0:
            with gil:
                raise MemoryError("cannot allocate the new bucket array")
        return 0

    def _keys_view(self, keys):
        """``keys`` as a flat uint8 view and the number of keys in it."""
        cdef Py_ssize_t ks = <Py_ssize_t>self.ctx.key_size
        if isinstance(keys, str):
            raise BadKeyError("keys must be a buffer of keys, not str")
        try:
            mv = memoryview(keys)
        except TypeError:
            raise BadKeyError(f"keys must be a C-contiguous buffer of "
                              f"{ks}-byte keys, not "
                              f"{type(keys).__name__}") from None
        if not mv.c_contiguous:
            raise BadKeyError("keys must be C-contiguous")
        cdef Py_ssize_t row = mv.itemsize
        for d in mv.shape[1:]:
            row *= d
        if mv.ndim >= 2 and row != ks:
            raise BadKeyError(f"keys rows must be {ks} bytes, got {row}")
        if mv.ndim == 1 and mv.itemsize not in (1, ks):
            raise BadKeyError(f"keys items must be 1 or {ks} bytes, got "
                              f"{mv.itemsize}")
        if mv.nbytes % ks:
            raise BadKeyError(f"keys must hold a whole number of {ks}-byte "
                              f"keys, got {mv.nbytes} bytes")
        return mv.cast("B") if mv.nbytes else None, mv.nbytes // ks

    # ---------------------------------------------------------- mapping ops

    def insert(self, key, value):
        """Add ``key -> value`` (duplicates allowed); may trigger a resize."""
        cdef bytes kb = self._key(key)
        cdef uint64_t v = _u64(value, "value")
        cdef const uint8_t *p = <const uint8_t *>PyBytes_AS_STRING(kb)
        cdef int rc
        with nogil:
            rc = ihb_insert(&self.t, &self.ctx, p, v)
            if rc >= 0:
                self._maybe_resize_nogil()
        if rc < 0:
            raise MemoryError("cannot allocate a table entry")

    def lookup(self, key, default=None):
        """Value of one entry with ``key`` (the newest in its bucket), or
        ``default``."""
        cdef bytes kb = self._key(key)
        cdef const uint8_t *p = <const uint8_t *>PyBytes_AS_STRING(kb)
        cdef uint64_t v = 0
        cdef int found
        with nogil:
            found = ihb_lookup(&self.t, &self.ctx, p, &v)
        return v if found else default

    def lookup_all(self, key):
        """Values of every entry with ``key`` (duplicates), in chain order."""
        cdef bytes kb = self._key(key)
        cdef const uint8_t *p = <const uint8_t *>PyBytes_AS_STRING(kb)
        cdef uint64_t buf[64]
        cdef uint64_t *out = buf
        cdef size_t cap = 64, n
        try:
            while True:
                with nogil:
                    n = ihb_lookup_all(&self.t, &self.ctx, p, out, cap)
                if n <= cap:
                    return [out[i] for i in range(n)]
                if out != buf:
                    free(out)
                cap = n * 2
                out = <uint64_t *>malloc(cap * sizeof(uint64_t))
                if out == NULL:
                    raise MemoryError()
        finally:
            if out != buf and out != NULL:
                free(out)

    def remove(self, key):
        """Remove one entry with ``key`` and return its value; KeyError if
        there is none."""
        cdef bytes kb = self._key(key)
        cdef const uint8_t *p = <const uint8_t *>PyBytes_AS_STRING(kb)
        cdef uint64_t v = 0
        cdef int found
        with nogil:
            found = ihb_remove(&self.t, &self.ctx, p, &v)
            if found:
                self._maybe_resize_nogil()
        if not found:
            raise KeyError(key)
        return v

    def _unlink_one(self, key):
        """Test hook: remove one entry with ``key`` through ``iht_unlink``
        (unlink by saved hash_key, as the conn table does), return its
        value or raise KeyError.  Only safe while no other thread removes
        entries from this table."""
        cdef bytes kb = self._key(key)
        cdef const uint8_t *p = <const uint8_t *>PyBytes_AS_STRING(kb)
        cdef uint64_t v = 0
        cdef int found
        with nogil:
            found = ihb_unlink_one(&self.t, &self.ctx, p, &v)
        if not found:
            raise KeyError(key)
        return v

    def __len__(self):
        """Number of entries (an atomic counter; exact when quiet)."""
        return iht_count(&self.t)

    def __contains__(self, key):
        return self.lookup(key, None) is not None

    def items(self):
        """Snapshot list of ``(key, value)`` pairs (no entry twice: the
        walk holds off resizes).

        The walk copies keys and values into a C buffer without the GIL and
        builds the Python objects after it: no Python code (a GC-run
        ``__del__``) can run while the walk holds the resize lock.
        """
        cdef iht_walker w
        cdef iht_node *n
        cdef ihb_entry *e
        cdef size_t ks = self.ctx.key_size, rec = ks + 8
        cdef size_t cap = <size_t>iht_count(&self.t) + 64, cnt = 0
        cdef uint8_t *buf = <uint8_t *>malloc(cap * rec)
        cdef uint8_t *grown
        cdef bint oom = False
        cdef uint64_t v
        cdef size_t i
        cdef list out = []
        if buf == NULL:
            raise MemoryError()
        try:
            with nogil:
                iht_walk_start(&self.t, &w)
                n = iht_walk_next(&w)
                while n != NULL:
                    if cnt == cap:
                        grown = <uint8_t *>realloc(buf, 2 * cap * rec)
                        if grown == NULL:
                            oom = True
                            break
                        buf = grown
                        cap *= 2
                    e = ihb_of(n)
                    memcpy(buf + cnt * rec, &e.value, 8)
                    memcpy(buf + cnt * rec + 8, (<uint8_t *>e) + IHB_ENTRY_HEADER, ks)
                    cnt += 1
                    n = iht_walk_next(&w)
                iht_walk_stop(&w)
            if oom:
                raise MemoryError()
            for i in range(cnt):
                memcpy(&v, buf + i * rec, 8)     # records are unaligned
                out.append(((<char *>buf + i * rec + 8)[:ks], v))
        finally:
            free(buf)
        return out

    def __iter__(self):
        """Iterate over a snapshot of the keys (duplicates repeat)."""
        return iter([k for k, _ in self.items()])

    # ----------------------------------------------------------- batches

    def lookup_batch(self, keys):
        """Look up many keys without the GIL.

        ``keys``: C-contiguous buffer of keys (e.g. a ``(n, key_size)``
        uint8 array).  Returns ``(values, found)``: a uint64 array (0 where
        missing) and a bool array.
        """
        flat, n = self._keys_view(keys)
        values = np.empty(n, dtype=np.uint64)
        found = np.empty(n, dtype=np.bool_)
        if n == 0:
            return values, found
        cdef const uint8_t[::1] kv = flat
        cdef uint64_t[::1] vv = values
        cdef uint8_t[::1] fv = found.view(np.uint8)
        cdef ihb_batch b
        cdef size_t cnt = n
        b.base = self.ctx
        b.values = &vv[0]
        b.found = &fv[0]
        with nogil:
            ihb_lookup_batch(&self.t, &b, &kv[0], cnt)
        return values, found

    def insert_batch(self, keys, values):
        """Insert ``keys[i] -> values[i]`` for all i, without the GIL."""
        flat, n = self._keys_view(keys)
        vals = np.ascontiguousarray(values, dtype=np.uint64).reshape(-1)
        if vals.shape[0] != n:
            raise ValueError(f"values must have {n} items (one per key), "
                             f"got {vals.shape[0]}")
        if n == 0:
            return
        cdef const uint8_t[::1] kv = flat
        cdef const uint64_t[::1] vv = vals
        cdef size_t i, cnt = n, ks = self.ctx.key_size
        cdef int rc = 0
        with nogil:
            for i in range(cnt):
                rc = ihb_insert(&self.t, &self.ctx, &kv[i * ks], vv[i])
                if rc < 0:
                    break
                self._maybe_resize_nogil()
        if rc < 0:
            raise MemoryError("cannot allocate a table entry")

    def probe_lookups(self, keys, double seconds, int stop_after_resizes=-1):
        """Latency probe for benchmarks: look the keys up one by one, in a
        loop, without the GIL, timing each lookup.

        Stops after ``seconds`` or once ``stop_after_resizes`` rebuilds
        have completed (if >= 0).  Returns a dict: ``lookups``, ``misses``,
        ``max_ns`` and ``log2_ns`` (a histogram: index i counts lookups that
        took [2^i, 2^(i+1)) ns).
        """
        flat, n = self._keys_view(keys)
        if n == 0:
            raise ValueError("keys must not be empty")
        cdef const uint8_t[::1] kv = flat
        cdef size_t i = 0, cnt = n, ks = self.ctx.key_size
        cdef uint64_t lookups = 0, misses = 0, max_ns = 0, ns, v
        cdef uint64_t hist[40]
        cdef timespec a, b, start
        cdef double limit = seconds * 1e9
        cdef int bucket
        cdef uint64_t target = <uint64_t>stop_after_resizes
        for bucket in range(40):
            hist[bucket] = 0
        with nogil:
            clock_gettime(CLOCK_MONOTONIC, &start)
            while True:
                clock_gettime(CLOCK_MONOTONIC, &a)
                if not ihb_lookup(&self.t, &self.ctx, &kv[i * ks], &v):
                    misses += 1
                clock_gettime(CLOCK_MONOTONIC, &b)
                ns = <uint64_t>((b.tv_sec - a.tv_sec) * 1000000000 +
                                (b.tv_nsec - a.tv_nsec))
                if ns > max_ns:
                    max_ns = ns
                bucket = 0
                while bucket < 39 and (ns >> (bucket + 1)) != 0:
                    bucket += 1
                hist[bucket] += 1
                lookups += 1
                i += 1
                if i == cnt:
                    i = 0
                if (lookups & 1023) == 0:
                    if stop_after_resizes >= 0 and \
                            iht_resizes(&self.t) >= target:
                        break
                    if (b.tv_sec - start.tv_sec) * 1e9 + \
                            (b.tv_nsec - start.tv_nsec) > limit:
                        break
        return {"lookups": lookups, "misses": misses, "max_ns": max_ns,
                "log2_ns": [hist[j] for j in range(40)]}

    # ------------------------------------------------------------ resizing

    def resize_to(self, bits):
        """Rebuild into ``1 << bits`` buckets now, even at the same size
        (bits within min_bits..max_bits).  Runs without the GIL, so it can
        run in a background thread while others use the table."""
        cdef int b = _int_arg(bits, "bits", self.t.min_bits, self.t.max_bits)
        cdef int rc
        with nogil:
            rc = iht_resize(&self.t, (<int64_t>1) << b)
        if rc:
            raise MemoryError("cannot allocate the new bucket array")

    def maybe_resize(self):
        """The kernel's resize work: rebuild to ``desired_size`` unless it
        equals the size and the lfactor is unchanged.  Call every 2 s of
        model time to shrink.  Returns True if it rebuilt."""
        cdef int rc
        with nogil:
            rc = iht_maybe_resize(&self.t)
        if rc < 0:
            raise MemoryError("cannot allocate the new bucket array")
        return rc == 1

    property lfactor:
        """The lfactor setting (-8..8).  Setting it rebuilds the table at
        once, even at the same size (the sysctl write kicks the work)."""
        def __get__(self):
            return iht_get_lfactor(&self.t)

        def __set__(self, value):
            cdef int lf = _int_arg(value, "lfactor", IHT_LFACTOR_MIN,
                                   IHT_LFACTOR_MAX)
            cdef int rc
            iht_set_lfactor(&self.t, lf)
            with nogil:
                rc = iht_maybe_resize(&self.t)
            if rc < 0:
                raise MemoryError("cannot allocate the new bucket array")

    def reset_wait_stats(self):
        """Zero ``info()['read_retries']`` and ``['max_wait_ns']``: lookups
        that waited for a resize to move an entry, and the longest wait."""
        iht_reset_wait_stats(&self.t)

    def reclaim(self):
        """Free removed entries now (one grace period) instead of in
        batches of 1024."""
        with nogil:
            iht_reclaim(&self.t)

    # --------------------------------------------------------- properties

    cdef dict _snap(self):
        cdef iht_tbl s
        cdef int resizing
        with nogil:
            resizing = iht_snapshot(&self.t, &s)
        key = (<char *>&s.hash_key)[:16]
        return dict(size=s.size, bits=s.bits, table_lfactor=s.lfactor,
                    u_thresh=s.u_thresh, l_thresh=s.l_thresh,
                    table_id=s.table_id, hash_key=key, nseqc=s.nseqc,
                    nlocks=s.nlocks, resizing=bool(resizing))

    def info(self):
        """Header of the current bucket array and counters, as a dict."""
        d = self._snap()
        d.update(count=iht_count(&self.t), lfactor=iht_get_lfactor(&self.t),
                 min_bits=self.t.min_bits, max_bits=self.t.max_bits,
                 resizes=iht_resizes(&self.t), moved=iht_moved(&self.t),
                 grace_periods=iht_grace_periods(&self.t),
                 read_retries=iht_read_retries(&self.t),
                 max_wait_ns=iht_max_wait_ns(&self.t),
                 resize_pending=bool(iht_resize_pending(&self.t)),
                 retired_pending=iht_retired_pending(&self.t),
                 key_size=self.ctx.key_size,
                 entry_size=self.ctx.entry_size, profile=self.profile)
        return d

    @property
    def size(self):
        """Buckets of the current array."""
        return self._snap()["size"]

    @property
    def bits(self):
        """log2 of ``size``."""
        return self._snap()["bits"]

    @property
    def table_lfactor(self):
        """lfactor the current array was sized with."""
        return self._snap()["table_lfactor"]

    @property
    def u_thresh(self):
        """Grow threshold of the current array."""
        return self._snap()["u_thresh"]

    @property
    def l_thresh(self):
        """Shrink threshold of the current array."""
        return self._snap()["l_thresh"]

    @property
    def table_id(self):
        """0 or 0x80000000: bit 31 of every hash_key in the current array."""
        return self._snap()["table_id"]

    @property
    def hash_key(self):
        """The current array's 16-byte siphash key (new on every rebuild)."""
        return self._snap()["hash_key"]

    @property
    def min_bits(self):
        return self.t.min_bits

    @property
    def max_bits(self):
        return self.t.max_bits

    @property
    def key_size(self):
        return self.ctx.key_size

    @property
    def resize_pending(self):
        """True when a resize was requested and has not run yet."""
        return bool(iht_resize_pending(&self.t))

    @property
    def resizes(self):
        """Rebuilds completed so far."""
        return iht_resizes(&self.t)

    def entry_hash_key(self, key):
        """hash_key ``key`` gets in the current array: table id | hash."""
        cdef bytes kb = self._key(key)
        cdef iht_tbl snap
        with nogil:
            iht_snapshot(&self.t, &snap)
        h = ihb_key_hash(PyBytes_AS_STRING(kb), &snap.hash_key, &self.ctx)
        return snap.table_id | (h & 0x7fffffff)

    # ----------------------------------------------------- statistics

    def histogram(self):
        """Bucket lengths as /proc/net/ip_vs_status counts them.

        Returns ``{"buckets": walked, "empty": n, "len": [n1, ..., n7]}``
        where ``len[6]`` counts buckets of 7 or more entries; during a
        resize both arrays are walked.
        """
        cdef uint64_t out[IHT_HIST_MAXLEN + 2]
        with nogil:
            iht_histogram(&self.t, out)
        return {"buckets": out[0], "empty": out[1],
                "len": [out[2 + i] for i in range(IHT_HIST_MAXLEN)]}

    def memory(self):
        """Bytes held by the table, by kind, as counted at allocation.

        ``buckets`` (heads), ``locks`` (seqcounts, stripe locks, array
        headers), ``entries`` (entries, including removed ones waiting for a
        grace period), ``meta`` (retire list); ``total``; ``blocks`` the
        number of allocations.  The same blocks are registered in the
        tracemalloc domain ``TRACE_DOMAIN``.
        """
        cdef iht_mem *m = &self.t.mem
        d = {"buckets": iht_mem_bytes(m, IHT_MEM_BUCKETS),
             "locks": iht_mem_bytes(m, IHT_MEM_LOCKS),
             "entries": iht_mem_bytes(m, IHT_MEM_ENTRIES),
             "meta": iht_mem_bytes(m, IHT_MEM_META)}
        d["total"] = sum(d.values())
        d["blocks"] = sum(iht_mem_blocks(m, c) for c in (
            IHT_MEM_BUCKETS, IHT_MEM_LOCKS, IHT_MEM_ENTRIES, IHT_MEM_META))
        return d

    def count_walks(self, bint on=True):
        """Start (reset to zero) or stop counting the nodes each lookup
        walks; see :meth:`walk_stats`."""
        iht_walk_stats_attach(&self.t, NULL)
        if on:
            iht_walk_stats_reset(&self.ws)
            iht_walk_stats_attach(&self.t, &self.ws)

    def walk_stats(self):
        """Lookups counted since :meth:`count_walks`: ``lookups``,
        ``hits``, ``walked`` (nodes compared, summed over lookups) and
        ``hist[k]`` (lookups that walked k nodes, the last bin k or more),
        plus ``resizes``, ``pause_max_ns`` and ``pause_total_ns`` (rebuild
        wall times since the table was made)."""
        d = walk_stats_dict(&self.ws)
        d.update(pause_stats_dict(&self.t))
        return d

    def __sizeof__(self):
        return object.__sizeof__(self) + self.memory()["total"]

    def __repr__(self):
        s = self._snap()
        return (f"<Table len={iht_count(&self.t)} size={s['size']} "
                f"bits={s['bits']} lfactor={iht_get_lfactor(&self.t)} "
                f"key_size={self.ctx.key_size} profile={self.profile}>")
