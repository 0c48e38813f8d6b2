"""The service table of one netns: buckets, hashing, sizing.

Two kernels, two tables (see ARCHITECTURE.md, Kernel facts):

* ``"7.1"`` -- the resizable per-netns ``svc_table`` of commit 840aac3d900d
  ("ipvs: use resizable hash table for services").  It lives in the core
  resizable table (``ipvs_py._core.svctab.SvcTable`` on ``ipvs_table.h``):
  2^4..2^20 buckets sized by ``svc_lfactor``, a fresh random key per
  array, ``hash_key = table_id | (hash & 0x7fffffff)``,
  jhash_3words(ntohs(port), protocol, addr32, key0) for <proto,addr,port>
  services and jhash_2words(fwmark, af, key0) for fwmark services, one
  table for both kinds.  Lookups are one C hash probe.
* ``"6.1"`` -- the two fixed 256-bucket tables of older kernels, hashed with
  ``(proto ^ ntohl(addr) ^ (ipvs >> 8) ^ (port >> 8) ^ port) & 255`` and
  ``((ipvs >> 8) ^ fwmark) & 255``.  ``ipvs`` is a kernel pointer; only bits
  8..15 matter, the model calls them ``salt``.  Plain Python lists: 256
  buckets never resize, and this order is checked byte for byte against
  the real 6.1 kernel (tests/kernel/test_ctl_vs_kernel.py).

Everything about a bucket's order is kept: new entries go to the head of
their chain (hlist_add_head), walks go bucket 0..size-1, head first, and a
rebuild moves entries bucket by bucket to the heads of the new chains.  This
order is what /proc/net/ip_vs and the netlink dump (thus ipvsadm's input to
its sort) show.

Resizing: the kernel queues ``svc_resize_work`` (1 jiffy delay) when an add
makes the count exceed ``u_thresh``, a delete makes it drop to ``l_thresh``
or svc_lfactor is written.  The model runs that work right after the command
that queued it (an idealised, always-prompt worker); see docs/control-plane.md.

``IPVS_PY_PURE=1`` swaps the compiled table for the pure-Python reference
(``_core/_pyref_svctab.py``), which builds the same chains.
"""
from ._core import load as _load

_table = _load("table")
_svctab = _load("svctab")

__all__ = ["ServiceTable", "FixedServiceTable", "desired_size", "thresholds",
           "svc_addr32", "SVC_TAB_MIN_BITS", "SVC_TAB_MAX_BITS"]

SVC_TAB_MIN_BITS = 4          # IP_VS_SVC_TAB_MIN_BITS
SVC_TAB_MAX_BITS = 20         # IP_VS_SVC_TAB_MAX_BITS
OLD_TAB_BITS = 8              # IP_VS_SVC_TAB_BITS of 6.1


def desired_size(t_size, t_lfactor, n, lfactor,
                 min_bits=SVC_TAB_MIN_BITS, max_bits=SVC_TAB_MAX_BITS):
    """ip_vs_rht_desired_size() of the core table; ``t_size`` None means
    "no table yet"."""
    return _table.desired_size(n, lfactor, min_bits, max_bits, t_size,
                               t_lfactor)


def thresholds(size, lfactor, min_bits=SVC_TAB_MIN_BITS,
               max_bits=SVC_TAB_MAX_BITS):
    """ip_vs_rht_set_thresholds() of the core table -> (u_thresh,
    l_thresh)."""
    return _table.thresholds(size, lfactor, min_bits, max_bits)


def svc_addr32(af, addr_bytes):
    """The u32 the kernel feeds to jhash: the raw (little-endian host) word
    of an IPv4 address, or ipv6_addr_hash() (XOR of the four raw words)."""
    if af == 2:
        return int.from_bytes(addr_bytes, "little")
    w = int.from_bytes(addr_bytes, "little")
    return (w ^ (w >> 32) ^ (w >> 64) ^ (w >> 96)) & 0xFFFFFFFF


def ServiceTable(kernel="7.1", rng=None, lfactor=lambda: -3, salt=0):
    """The service table of a netns of ``kernel``.

    ``"7.1"``: a :class:`ipvs_py._core.svctab.SvcTable`; ``rng`` supplies
    one ``getrandbits(32)`` key per bucket array, ``lfactor()`` the current
    svc_lfactor.  ``"6.1"``: a :class:`FixedServiceTable` with ``salt``.
    Both have the same methods: insert, remove, clear, kick, run_pending,
    find, find_fwm, walk, chain_lengths, len(), size, count, resize_queued.
    """
    if kernel == "6.1":
        return FixedServiceTable(salt)
    return _svctab.SvcTable(rng, lfactor)


class FixedServiceTable:
    """The 6.1 kernel's two fixed 256-bucket tables (ip_vs_svc_table and
    ip_vs_svc_fwm_table).  Each bucket is a list stored tail-first
    (``append`` is list_add's head insertion)."""

    kernel = "6.1"
    resize_queued = False
    resizes = 0
    t = None

    def __init__(self, salt=0):
        self._salt = salt & 0xFF
        self.count = 0
        self._tab = [[] for _ in range(1 << OLD_TAB_BITS)]
        self._fwm = [[] for _ in range(1 << OLD_TAB_BITS)]

    def _old_bucket(self, protocol, addr_bytes, port, fwmark):
        if fwmark:
            return self._fwm[(self._salt ^ fwmark) & 0xFF]
        fold = int.from_bytes(addr_bytes, "big")
        if len(addr_bytes) == 16:
            fold = (fold ^ (fold >> 32) ^ (fold >> 64) ^ (fold >> 96)) \
                & 0xFFFFFFFF
        return self._tab[(protocol ^ fold ^ self._salt ^ (port >> 8) ^ port)
                         & 0xFF]

    def insert(self, svc):
        """ip_vs_svc_hash()"""
        self.count += 1
        self._old_bucket(svc.protocol, svc.addr_bytes, svc.port,
                         svc.fwmark).append(svc)

    def remove(self, svc):
        """ip_vs_svc_unhash()"""
        self.count -= 1
        self._old_bucket(svc.protocol, svc.addr_bytes, svc.port,
                         svc.fwmark).remove(svc)

    def clear(self):
        """ip_vs_flush()"""
        for svc in list(self.walk()):
            self.remove(svc)

    def kick(self):
        """No svc_lfactor on 6.1."""

    def run_pending(self):
        """Nothing ever resizes."""
        return False

    def find(self, af, protocol, addr_bytes, port, addr32=None):
        """__ip_vs_service_find()"""
        for svc in self._old_bucket(protocol, addr_bytes, port, 0):
            if (svc.af == af and svc.port == port
                    and svc.protocol == protocol
                    and svc.addr_bytes == addr_bytes):
                return svc
        return None

    def find_fwm(self, af, fwmark):
        """__ip_vs_svc_fwm_find()"""
        for svc in self._old_bucket(0, b"", 0, fwmark):
            if svc.fwmark == fwmark and svc.af == af:
                return svc
        return None

    def walk(self):
        """Services in the kernel's walk order: the service table, then
        the fwmark table, each bucket head first."""
        for bucket in self._tab:
            yield from reversed(bucket)
        for bucket in self._fwm:
            yield from reversed(bucket)

    def __len__(self):
        return self.count

    def chain_lengths(self):
        """No ip_vs_status on 6.1 (no resizable table): all zero, as
        before the split."""
        return [0] * 8

    @property
    def size(self):
        """Buckets of one of the two tables."""
        return 1 << OLD_TAB_BITS
