"""Pure-Python reference of ``ipvs_py._core.table.Table``.

The same buckets, hash keys (table id in bit 31, SipHash under a random
per-array key), chain order (new entries at the head, moves bucket by
bucket from the head) and kernel triggers as the C table, with none of the
concurrency: it is what the tests hold the compiled table against, and what
``IPVS_PY_PURE=1`` runs.  Slow on purpose; keep tables small.
"""
import os

import numpy as np

from . import _pyref as _ref


class BadKeyError(ValueError, TypeError):
    """A key of the wrong type or size (both a ValueError and a TypeError)."""


class _Array:
    """One bucket array (struct iht_tbl)."""

    def __init__(self, size, lfactor, table_id, min_bits, max_bits):
        self.size = size
        self.bits = size.bit_length() - 1
        self.lfactor = lfactor
        self.table_id = table_id
        self.u_thresh, self.l_thresh = _ref.thresholds(size, lfactor,
                                                       min_bits, max_bits)
        self.hash_key = os.urandom(16)
        self.buckets = {}           # bucket -> [(hash_key, key, value)]

    def hash_key_of(self, key):
        h = _ref.siphash(key, self.hash_key) & 0x7FFFFFFF
        return self.table_id | h

    def chain(self, hk):
        return self.buckets.setdefault(hk & (self.size - 1), [])


class Table:
    """Reference resizable table; see ``ipvs_py._core.table.Table``."""

    def __init__(self, min_bits, max_bits, lfactor=0, *, key_size=16,
                 profile="conn", ncpus=None, auto_resize=True):
        self.min_bits, self.max_bits = _ref._bit_range(min_bits, max_bits)
        lfactor = _ref._int(lfactor, "lfactor", _ref.LFACTOR_MIN,
                            _ref.LFACTOR_MAX)
        self.key_size = _ref._int(key_size, "key_size", 1, 1024)
        if profile not in _ref.PROFILES:
            raise ValueError(f"profile must be one of "
                             f"{sorted(_ref.PROFILES)}, got {profile!r}")
        self.ncpus = (os.cpu_count() or 1) if ncpus is None else _ref._int(
            ncpus, "ncpus", 1, 1 << 20)
        self.profile = profile
        self.auto_resize = bool(auto_resize)
        self._lfactor = lfactor
        self._count = 0
        self._pending = False
        self.resizes = 0
        size = _ref.desired_size(0, lfactor, self.min_bits, self.max_bits)
        self._a = _Array(size, lfactor, 0, self.min_bits, self.max_bits)

    # -------------------------------------------------------- helpers
    def _key(self, key, name="key"):
        if isinstance(key, str):
            raise BadKeyError(f"{name} must be {self.key_size} bytes "
                              f"(bytes-like), not str")
        try:
            kb = memoryview(key).cast("B").tobytes()
        except TypeError:
            raise BadKeyError(f"{name} must be {self.key_size} bytes "
                              f"(bytes-like), not "
                              f"{type(key).__name__}") from None
        if len(kb) != self.key_size:
            raise BadKeyError(f"{name} must be {self.key_size} bytes, "
                              f"got {len(kb)}")
        return kb

    def _after_op(self):
        if self.auto_resize and self._pending:
            self.maybe_resize()

    def _rebuild(self, size, lfactor):
        old = self._a
        new = _Array(size, lfactor, old.table_id ^ _ref.TABLE_ID_MASK,
                     self.min_bits, self.max_bits)
        for b in range(old.size):
            for _hk, key, value in old.buckets.get(b, []):
                new.chain(new.hash_key_of(key)).insert(
                    0, (new.hash_key_of(key), key, value))
        self._a = new
        self.resizes += 1

    def _matches(self, key):
        hk = self._a.hash_key_of(key)
        return hk, self._a.chain(hk)

    # ---------------------------------------------------- mapping ops
    def insert(self, key, value):
        kb = self._key(key)
        value = _ref._word(value, "value", 64)
        hk, chain = self._matches(kb)
        chain.insert(0, (hk, kb, value))
        self._count += 1
        if self._count > self._a.u_thresh:
            self._pending = True
        self._after_op()

    def lookup(self, key, default=None):
        kb = self._key(key)
        hk, chain = self._matches(kb)
        for h, k, v in chain:
            if h == hk and k == kb:
                return v
        return default

    def lookup_all(self, key):
        kb = self._key(key)
        hk, chain = self._matches(kb)
        return [v for h, k, v in chain if h == hk and k == kb]

    def remove(self, key):
        kb = self._key(key)
        hk, chain = self._matches(kb)
        for i, (h, k, v) in enumerate(chain):
            if h == hk and k == kb:
                del chain[i]
                self._count -= 1
                if self.profile == "svc" and self._count <= self._a.l_thresh:
                    self._pending = True
                self._after_op()
                return v
        raise KeyError(key)

    def __len__(self):
        return self._count

    def __contains__(self, key):
        return self.lookup(key) is not None

    def items(self):
        return [(k, v) for b in range(self._a.size)
                for _h, k, v in self._a.buckets.get(b, [])]

    def __iter__(self):
        return iter([k for k, _ in self.items()])

    def _rows(self, keys):
        if isinstance(keys, str):
            raise BadKeyError("keys must be a buffer of keys, not str")
        try:
            mv = memoryview(keys)
            raw = mv.cast("B").tobytes() if mv.nbytes else b""
        except TypeError:
            raise BadKeyError(f"keys must be a C-contiguous buffer of "
                              f"{self.key_size}-byte keys") from None
        if len(raw) % self.key_size:
            raise BadKeyError(f"keys must hold a whole number of "
                              f"{self.key_size}-byte keys")
        ks = self.key_size
        return [raw[i:i + ks] for i in range(0, len(raw), ks)]

    def lookup_batch(self, keys):
        rows = self._rows(keys)
        got = [self.lookup(k) for k in rows]
        found = np.array([g is not None for g in got], dtype=np.bool_)
        values = np.array([g or 0 for g in got], dtype=np.uint64)
        return values, found

    def insert_batch(self, keys, values):
        rows = self._rows(keys)
        vals = np.asarray(values, dtype=np.uint64).reshape(-1)
        if len(vals) != len(rows):
            raise ValueError(f"values must have {len(rows)} items (one per "
                             f"key), got {len(vals)}")
        for k, v in zip(rows, vals):
            self.insert(k, int(v))

    # ------------------------------------------------------- resizing
    def resize_to(self, bits):
        bits = _ref._int(bits, "bits", self.min_bits, self.max_bits)
        self._rebuild(1 << bits, self._lfactor)

    def maybe_resize(self):
        self._pending = False
        a = self._a
        size = _ref.desired_size(self._count, self._lfactor, self.min_bits,
                                 self.max_bits, a.size, a.lfactor)
        if size == a.size and self._lfactor == a.lfactor:
            return False
        self._rebuild(size, self._lfactor)
        return True

    @property
    def lfactor(self):
        return self._lfactor

    @lfactor.setter
    def lfactor(self, value):
        self._lfactor = _ref._int(value, "lfactor", _ref.LFACTOR_MIN,
                                  _ref.LFACTOR_MAX)
        self.maybe_resize()

    def reclaim(self):
        """Nothing to reclaim: Python frees removed entries itself."""

    # ----------------------------------------------------- properties
    size = property(lambda self: self._a.size)
    bits = property(lambda self: self._a.bits)
    table_lfactor = property(lambda self: self._a.lfactor)
    u_thresh = property(lambda self: self._a.u_thresh)
    l_thresh = property(lambda self: self._a.l_thresh)
    table_id = property(lambda self: self._a.table_id)
    hash_key = property(lambda self: self._a.hash_key)
    resize_pending = property(lambda self: self._pending)

    def entry_hash_key(self, key):
        return self._a.hash_key_of(self._key(key))

    def histogram(self):
        lens = [0] * 7
        empty = self._a.size
        for chain in self._a.buckets.values():
            if chain:
                empty -= 1
                lens[min(len(chain), 7) - 1] += 1
        return {"buckets": self._a.size, "empty": empty, "len": lens}
