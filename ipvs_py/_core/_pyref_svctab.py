"""Pure-Python reference of ``svctab.SvcTable`` (the 7.1 service table).

This was the model's service table before it moved onto the core table
(issue 5); it stays as an independent transcription of the kernel's
resizable ``svc_table`` (commit 840aac3d900d on the ``ip_vs_rht`` helpers
of b655388111cf) for ``IPVS_PY_PURE=1`` runs, for the tests (fed the same
random keys, the compiled table must build the same chains in the same
order) and for ``bench/bench_ctl.py --impl`` comparisons.  Slow on purpose.

Layout: 2^4..2^20 buckets, a fresh random key per table, ``hash_key =
table_id | (hash & 0x7fffffff)``, bucket ``hash_key & mask``,
jhash_3words(ntohs(port), protocol, addr32, key0) for <proto,addr,port>
services and jhash_2words(fwmark, af, key0) for fwmark services, one table
for both kinds.  New entries go to the head of their chain
(hlist_add_head), walks go bucket 0..size-1 head first, and a rebuild
moves entries bucket by bucket to the heads of the new chains.  A chain of
two or more is a Python list stored tail-first (``append`` is the kernel's
head insertion).
"""
import random

from . import load as _load

# The compiled jhash unless IPVS_PY_PURE=1: the reference's point is the
# table logic, and bench_ctl.py compares the two tables, not two jhashes.
_hashing = _load("hashing")
_jhash2 = _hashing.jhash_2words
_jhash3 = _hashing.jhash_3words

__all__ = ["SvcTable", "ServiceNode", "adopt", "desired_size", "thresholds",
           "svc_addr32", "SVC_TAB_MIN_BITS", "SVC_TAB_MAX_BITS"]

SVC_TAB_MIN_BITS = 4          # IP_VS_SVC_TAB_MIN_BITS
SVC_TAB_MAX_BITS = 20         # IP_VS_SVC_TAB_MAX_BITS
RHT_TABLE_ID_MASK = 0x80000000
INT_MAX = (1 << 31) - 1


def _roundup_pow_of_two(n):
    return 1 << (n - 1).bit_length() if n > 1 else 1


def desired_size(t_size, t_lfactor, n, lfactor,
                 min_bits=SVC_TAB_MIN_BITS, max_bits=SVC_TAB_MAX_BITS):
    """ip_vs_rht_desired_size(); ``t_size`` None means "no table yet"."""
    if t_size is None:
        return 1 << min_bits
    n = _roundup_pow_of_two(n)
    if lfactor < 0:
        factor = min(-lfactor, max_bits)
        n = min(n, 1 << (max_bits - factor)) << factor
    else:
        n = min(n >> lfactor, 1 << max_bits)
    lo, hi = 1 << min_bits, 1 << max_bits
    if lfactor != t_lfactor:
        return max(lo, min(n, hi))
    if n > t_size:
        return n
    if n > t_size >> 4:
        return t_size
    return max(lo, min(n << 1, hi))


def thresholds(size, lfactor, min_bits=SVC_TAB_MIN_BITS,
               max_bits=SVC_TAB_MAX_BITS):
    """ip_vs_rht_set_thresholds() -> (u_thresh, l_thresh)."""
    if size >= 1 << max_bits:
        u = INT_MAX                               # stop growing
    elif lfactor <= 0:
        u = size >> min(-lfactor, max_bits)
    else:
        u = min(size, 1 << (30 - lfactor)) << lfactor
    if size >= 1 << max_bits:
        l = (1 << max_bits) >> 4
    elif size > 1 << min_bits:
        l = u >> 4
    else:
        l = 0                                     # stop shrinking
    return u, l


def svc_addr32(af, addr_bytes):
    """The u32 the kernel feeds to jhash: the raw (little-endian host) word
    of an IPv4 address, or ipv6_addr_hash() (XOR of the four raw words)."""
    if af == 2:
        return int.from_bytes(addr_bytes, "little")
    w = int.from_bytes(addr_bytes, "little")
    return (w ^ (w >> 32) ^ (w >> 64) ^ (w >> 96)) & 0xFFFFFFFF


class ServiceNode:
    """``svctab.ServiceNode``: the compiled table embeds its entry here;
    this table keeps its chains in lists, so the base is empty."""

    __slots__ = ()


def adopt(cls):
    """``svctab.adopt``: nothing to install for list chains."""
    if not isinstance(cls, type) or not issubclass(cls, ServiceNode):
        raise TypeError(f"adopt() takes a subclass of ServiceNode, not "
                        f"{cls!r}")
    return cls


class _Rht:
    """One ip_vs_rht: buckets plus its random key, id and thresholds."""

    __slots__ = ("size", "mask", "bits", "table_id", "key0", "lfactor",
                 "u_thresh", "l_thresh", "heads")

    def __init__(self, size, lfactor, table_id, key0):
        self.size = size
        self.mask = size - 1
        self.bits = size.bit_length() - 1
        self.table_id = table_id
        self.key0 = key0
        self.lfactor = lfactor
        self.u_thresh, self.l_thresh = thresholds(size, lfactor)
        # one slot per bucket: None (empty), the Service itself (a chain of
        # one, the common case) or a list stored tail-first
        self.heads = [None] * size

    @property
    def buckets(self):
        """Every chain as a list, head first (for walks and tests)."""
        return [list(_chain(x)) for x in self.heads]


def _chain_add(heads, idx, svc):
    """hlist_bl_add_head()"""
    x = heads[idx]
    if x is None:
        heads[idx] = svc
    elif type(x) is list:
        x.append(svc)
    else:
        heads[idx] = [x, svc]


def _chain_del(heads, idx, svc):
    """hlist_bl_del()"""
    x = heads[idx]
    if x is svc:
        heads[idx] = None
        return
    x.remove(svc)
    if len(x) == 1:
        heads[idx] = x[0]


def _chain(x):
    """A slot's entries, head first."""
    if x is None:
        return ()
    if type(x) is list:
        return reversed(x)
    return (x,)


def _svc_hash(svc, key0):
    if svc.fwmark:
        return _jhash2(svc.fwmark, svc.af, key0)
    return _jhash3(svc.port, svc.protocol, svc._addr32, key0)


class SvcTable:
    """The 7.1 service table of one netns, in Python.

    ``rng`` (a ``random.Random``) supplies one ``getrandbits(32)`` key per
    table; ``lfactor()`` returns the current svc_lfactor.  Services are
    ``Service`` objects; the table writes ``svc.hash_key`` and relies on
    ``af, protocol, addr_bytes, port, fwmark`` and the cached ``_addr32``.
    """

    kernel = "7.1"

    def __init__(self, rng=None, lfactor=lambda: -3):
        self._rng = rng if rng is not None else random.Random()
        self._lfactor = lfactor
        self.count = 0
        self.resize_queued = False
        self.resizes = 0              # tables built by the resizer
        self.t = None                 # the current ip_vs_rht or None

    def _new_table(self, size, lfactor, table_id):
        return _Rht(size, lfactor, table_id, self._rng.getrandbits(32))

    # -- modification ----------------------------------------------------
    def insert(self, svc):
        """ip_vs_svc_hash(): hash into the table, at the chain head;
        allocate the first table (add_service) and queue a resize when the
        count exceeds u_thresh."""
        self.count += 1
        t = self.t
        first = t is None
        if first:
            lf = self._lfactor()
            t = self.t = self._new_table(desired_size(None, None, 0, lf), lf,
                                         0)
        svc.hash_key = t.table_id | (_svc_hash(svc, t.key0) & 0x7FFFFFFF)
        _chain_add(t.heads, svc.hash_key & t.mask, svc)
        if not first and self.count > t.u_thresh:
            self.resize_queued = True

    def remove(self, svc):
        """ip_vs_svc_unhash() plus ip_vs_del_service()'s table policy: drop
        the table with the last service, queue a shrink at l_thresh."""
        self.count -= 1
        t = self.t
        _chain_del(t.heads, svc.hash_key & t.mask, svc)
        if not self.count:
            self.t = None
            self.resize_queued = False
        elif self.count <= t.l_thresh:
            self.resize_queued = True

    def clear(self):
        """ip_vs_flush(): unlink everything and free the table."""
        for svc in list(self.walk()):
            self.remove(svc)
        self.t = None
        self.resize_queued = False

    def kick(self):
        """A write to svc_lfactor: queue the resizer (it rebuilds when the
        lfactor differs from the table's)."""
        if self.t is not None:
            self.resize_queued = True

    def run_pending(self):
        """svc_resize_work_handler(), if queued."""
        if not self.resize_queued:
            return False
        self.resize_queued = False
        t = self.t
        if t is None:
            return False
        lf = self._lfactor()
        new_size = desired_size(t.size, t.lfactor, self.count, lf)
        if new_size == t.size and lf == t.lfactor:
            return False
        nt = self._new_table(new_size, lf, t.table_id ^ RHT_TABLE_ID_MASK)
        nh, mask, tid, key0 = nt.heads, nt.mask, nt.table_id, nt.key0
        for x in t.heads:
            # walk the old chain head first, add each at the new chain head
            for svc in _chain(x):
                svc.hash_key = tid | (_svc_hash(svc, key0) & 0x7FFFFFFF)
                _chain_add(nh, svc.hash_key & mask, svc)
        self.t = nt
        self.resizes += 1
        return True

    # -- lookup ----------------------------------------------------------
    def find(self, af, protocol, addr_bytes, port, addr32=None):
        """__ip_vs_service_find(): a <proto,addr,port> service or None."""
        t = self.t
        if t is None:
            return None
        if addr32 is None:
            addr32 = svc_addr32(af, addr_bytes)
        hk = t.table_id | (_jhash3(port, protocol, addr32, t.key0)
                           & 0x7FFFFFFF)
        for svc in _chain(t.heads[hk & t.mask]):
            if (svc.addr_bytes == addr_bytes and svc.port == port
                    and svc.protocol == protocol and svc.af == af
                    and not svc.fwmark):
                return svc
        return None

    def find_fwm(self, af, fwmark):
        """__ip_vs_svc_fwm_find()."""
        t = self.t
        if t is None:
            return None
        hk = t.table_id | (_jhash2(fwmark, af, t.key0) & 0x7FFFFFFF)
        for svc in _chain(t.heads[hk & t.mask]):
            if svc.hash_key == hk and svc.fwmark == fwmark and svc.af == af:
                return svc
        return None

    # -- walks -----------------------------------------------------------
    def walk(self):
        """Services in the kernel's walk order (/proc/net/ip_vs, dumps)."""
        if self.t is not None:
            for x in self.t.heads:
                if x is not None:
                    yield from _chain(x)

    def __len__(self):
        return self.count

    def chain_lengths(self):
        """Histogram counts[0..7] of chain lengths (7 = 7 or more), the
        numbers ip_vs_status_show() prints."""
        counts = [0] * 8
        if self.t is not None:
            for x in self.t.heads:
                n = 0 if x is None else len(x) if type(x) is list else 1
                counts[min(n, 7)] += 1
        return counts

    @property
    def size(self):
        """Buckets of the current table (0 without one)."""
        return self.t.size if self.t is not None else 0
