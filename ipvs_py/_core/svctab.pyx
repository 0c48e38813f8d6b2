# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The per-netns service table (kernel "7.1") on the resizable core table.

``SvcTable`` keeps one C entry per service (``include/ipvs_svctab.h``: the
lookup key plus the 8-byte table node) in an ``iht_table`` with the
kernel's service-table profile: ``IHT_PROFILE_SVC`` locks, 2^4..2^20
buckets sized by ``svc_lfactor``, a shrink request when a delete leaves
``count <= l_thresh``, table id in bit 31 of ``hash_key`` and a fresh key
per array.  The hash is the kernel's jhash over the low 32 bits of that
key (see the header).

Each entry lives inside its Python object, as the kernel's hlist node
lives inside ``struct ip_vs_service``: ``ServiceNode`` (the base class of
``ipvs_py.Service``) holds it right after the object header, and
:func:`adopt` gives a subclass an allocator (``include/ipvs_svcobj.h``)
that places its objects in the cage, on a cache line boundary, so a
lookup's hit reads one line for the entry and the object it returns.
While linked, the objects stay in a Python list, which owns them; the
entry holds the object's index there (``handle``, for walks and removal)
and a borrowed pointer to it (``obj``).  C code never touches a Python
object: this module reads them, always with the GIL held.

Why the GIL rules below hold (ipvs_table.h, locking table): a lookup holds
the GIL but takes no lock; it may only spin for a mover of a concurrent
resize, which needs no GIL.  Everything that takes a table lock or waits
for a grace period (insert, unlink, retire, resize, walk) runs ``nogil``.

Measured (bench/bench_ctl.py, 2-core VM shared with other jobs): see
docs/control-plane.md.  A lookup is ~50-90 ns in a small table; at 100,000
services it is dominated by two dependent cache misses (bucket head,
then the Service object's first line, which holds the entry).
"""
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.object cimport PyObject, PyTypeObject
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memset
from posix.unistd cimport usleep

from ipvs_py._core.hashing cimport ipvs_siphash_key_t
from ipvs_py._core.table cimport (
    iht_table, iht_node, iht_tbl, iht_walker, iht_lock_profile,
    iht_key_src_fn, iht_init, iht_destroy, iht_set_key_source,
    iht_read_lock, iht_read_unlock, iht_lookup, iht_insert, iht_unlink,
    iht_synchronize, iht_maybe_resize, iht_set_lfactor, iht_walk_start,
    iht_walk_next, iht_walk_stop, iht_histogram, iht_count,
    iht_resize_pending, iht_resizes, iht_snapshot,
    iht_mem_bytes, iht_key_hash_fn, iht_key_cmp_fn, iht_node_hash_fn,
    IHT_MEM_BUCKETS, IHT_MEM_LOCKS, IHT_MEM_META,
    IHT_HIST_MAXLEN)

import os
import random
import weakref

__all__ = ["SvcTable", "ServiceNode", "adopt", "TableView", "MIN_BITS",
           "MAX_BITS", "ENTRY_SIZE"]


cdef extern from "ipvs_svctab.h" nogil:
    enum:
        SVT_MIN_BITS
        SVT_MAX_BITS
        SVT_ENTRY_LINE_BYTES

    struct svt_key:
        uint32_t addr32
        uint32_t fwmark
        uint16_t port
        uint8_t protocol
        uint8_t af
        uint8_t alen

    struct svt_entry:
        iht_node node
        void *obj
        svt_key key
        uint32_t handle

    struct svt_keysrc:
        uint32_t next
        int ready
        uint64_t used

    svt_entry *svt_of(const iht_node *n)
    uint32_t svt_key_hash(const void *key, const ipvs_siphash_key_t *hk,
                          void *ctx)
    uint32_t svt_node_hash(const iht_node *n, const ipvs_siphash_key_t *hk,
                           void *ctx)
    int svt_cmp(const iht_node *n, const void *key, void *ctx)
    int svt_key_set(svt_key *k, uint8_t af, uint8_t protocol,
                    const uint8_t *addr, unsigned int alen, uint16_t port,
                    uint32_t fwmark)
    void svt_next_key(ipvs_siphash_key_t *k, void *ctx)
    void svt_cancel_resize(iht_table *t)
    void svt_request_resize(iht_table *t)
    uint32_t svt_node_hash_key(const iht_node *n)


cdef extern from "ipvs_svcobj.h" nogil:
    enum:
        SVO_SUPPORTED
        SVO_LEAD
        SVO_MAX_BLOCK
    void svo_adopt(PyTypeObject *t)
    int svo_owns(PyObject *op)
    size_t svo_block_size(PyTypeObject *t)


MIN_BITS = SVT_MIN_BITS
MAX_BITS = SVT_MAX_BITS
ENTRY_SIZE = sizeof(svt_entry)    # bytes of the entry in each service

cdef struct walk_row:
    uint32_t handle
    uint32_t hash_key
    void *obj


cdef int _ENOMEM = 12
cdef uint32_t _NO_HANDLE = 0xFFFFFFFF


@cython.auto_pickle(False)   # the entry is not state; Service has __getstate__
cdef class ServiceNode:
    """The part of a service that its table links: the kernel's ``s_list``
    node and lookup key inside ``struct ip_vs_service``.  ``ipvs_py.Service``
    derives from it; it has no Python-visible state.

    An instance can be in one :class:`SvcTable` at a time.  Only objects
    from :func:`adopt`'s allocator (this class and adopted subclasses) can
    be linked: their entry is in the cage, on the object's first line."""

    cdef svt_entry ent       # first: node, obj, key on the object's line
    cdef void *linked_in     # the SvcTable it is linked in, or NULL

    @property
    def linked(self):
        """True while the service is in a table."""
        return self.linked_in != NULL


def _preheader_size(cls):
    """Bytes CPython keeps before an instance of ``cls``: the GC header,
    and on 3.11+ the managed dict / weakref pointers (``sys.getsizeof``
    adds them to ``__sizeof__``).  Measured on a bare instance (``__new__``
    only), so it follows the running CPython's layout."""
    import sys
    probe = cls.__new__(cls)
    return sys.getsizeof(probe) - probe.__sizeof__()


def adopt(cls):
    """Give ``cls`` (a subclass of :class:`ServiceNode`) the allocator that
    places each instance in the table's cage with its entry on the object's
    first cache line (``include/ipvs_svcobj.h``).  Call it right after the
    class statement, before any instance exists (one made before keeps its
    pymalloc memory and cannot be linked).  Returns ``cls``.  Raises
    TypeError for a class it cannot serve and RuntimeError on a
    free-threaded CPython, whose collector finds objects through its own
    allocator."""
    cdef PyTypeObject *tp
    cdef Py_ssize_t pre
    if not isinstance(cls, type) or not issubclass(cls, ServiceNode):
        raise TypeError(f"adopt() takes a subclass of ServiceNode, not "
                        f"{cls!r}")
    tp = <PyTypeObject *>cls
    if not SVO_SUPPORTED:
        raise RuntimeError("this CPython build (free-threaded) finds "
                           "objects through its own allocator; services "
                           "cannot live in the table's cage")
    if cls.__itemsize__:
        raise TypeError(f"{cls.__name__} is variable-size; the cage holds "
                        f"fixed-size objects")
    pre = _preheader_size(cls)
    if not 0 <= pre <= SVO_LEAD:
        raise RuntimeError(f"{cls.__name__} instances need {pre} bytes "
                           f"before the object (ipvs_svcobj.h leaves "
                           f"{SVO_LEAD})")
    if svo_block_size(tp) > SVO_MAX_BLOCK:
        raise TypeError(f"{cls.__name__} instances are too large for the "
                        f"cage ({cls.__basicsize__} bytes)")
    svo_adopt(tp)
    return cls


svo_adopt(<PyTypeObject *>ServiceNode)


def _entry_offset():
    """Where the entry starts in a ServiceNode: right after the object
    header, so node, obj and key end at byte 64 (one line)."""
    cdef ServiceNode probe = ServiceNode()
    return <char *>&probe.ent - <char *><PyObject *>probe


if _entry_offset() + SVT_ENTRY_LINE_BYTES != 64:
    raise ImportError(f"ServiceNode's entry starts at byte {_entry_offset()}"
                      f" of the object, not 16: a lookup would read two "
                      f"lines (rebuild the extension)")


class TableView:
    """A read-only picture of the current bucket array (``SvcTable.t``),
    with the attributes of the kernel's ``struct ip_vs_rht`` that the texts
    and tests read: ``size, mask, bits, table_id, key0, lfactor, u_thresh,
    l_thresh`` and ``buckets`` (every chain, head first, as Service lists).
    A rebuild makes a new view; ``buckets`` of an old one raises."""

    __slots__ = ("size", "mask", "bits", "table_id", "key0", "lfactor",
                 "u_thresh", "l_thresh", "_owner", "_gen")

    def __repr__(self):
        return (f"<TableView size={self.size} lfactor={self.lfactor} "
                f"table_id={self.table_id:#x}>")

    @property
    def buckets(self):
        """Chains of this array, head first: ``buckets[hash_key & mask]``."""
        owner = self._owner()       # weak: the table caches this view
        if owner is None or owner._gen != self._gen:
            raise RuntimeError("this bucket array was rebuilt or freed")
        out = [[] for _ in range(self.size)]
        for svc, hk in owner._walk_keys():
            out[hk & self.mask].append(svc)
        return out


@cython.final
@cython.no_gc_clear          # __dealloc__ unmarks the services in objs
cdef class SvcTable:
    """Services of one netns (kernel "7.1"), hashed and sized like the
    kernel, in the core table.

    ``SvcTable(rng=None, lfactor=lambda: -3)``: ``rng`` (a
    ``random.Random``) gives one ``getrandbits(32)`` per bucket array, the
    key jhash uses, so ``Netns(seed=...)`` rebuilds the same tables;
    ``lfactor()`` returns the current svc_lfactor.  Services are ``Service``
    objects: the table reads ``af, protocol, addr_bytes, port, fwmark`` and
    writes ``svc.hash_key``.

    Threads: lookups may come from any thread; changes (insert, remove,
    clear, kick, run_pending) from one thread at a time, as the netns'
    owner makes them (the kernel's __ip_vs_mutex).

    Like the kernel, there is no bucket array while there is no service:
    the first add allocates one (2^4 buckets, a fresh key, table id 0), the
    last delete frees it.  A resize is *requested* by an add past
    ``u_thresh``, a delete down to ``l_thresh`` or :meth:`kick` (a write to
    svc_lfactor), and *runs* in :meth:`run_pending`: the model's
    always-prompt ``svc_resize_work``.
    """

    cdef iht_table t
    cdef bint live                 # t is initialised (count > 0)
    cdef svt_keysrc keysrc
    cdef iht_lock_profile prof
    cdef list objs                 # handle -> Service (None when free)
    cdef list free_handles
    cdef object rng
    cdef object lfactor_fn
    cdef readonly uint64_t _gen    # bumped by every new/freed array
    cdef object __weakref__      # TableView._owner; tests (freed with Netns)
    cdef uint64_t resizes_before   # resizes of freed incarnations
    cdef object view
    # _hold_read_section(): 0, 1 inside, 2 left; written without the GIL,
    # polled with it (a test hook: an int store, read after each poll's
    # GIL round trip)
    cdef int holding

    def __cinit__(self):
        self.live = False

    def __init__(self, rng=None, lfactor=lambda: -3, ncpus=None):
        self.rng = rng if rng is not None else random.Random()
        self.lfactor_fn = lfactor
        self.prof.seqc_shift = 4       # IHT_PROFILE_SVC
        self.prof.seqc_max = 64
        self.prof.locks = 0
        self.prof.ncpus = (os.cpu_count() or 1) if ncpus is None else ncpus
        self.objs = []
        self.free_handles = []
        self._gen = 0
        self.resizes_before = 0
        self.view = None
        self.keysrc.ready = 0
        self.keysrc.used = 0
        self._refill_key()

    def __dealloc__(self):
        if self.live:
            self._unmark_all()
            iht_destroy(&self.t, NULL, NULL)   # the services own the nodes
            self.live = False

    # ------------------------------------------------------------ helpers

    cdef int _refill_key(self) except -1:
        """Draw the next array's key ahead (see svt_keysrc): the k-th array
        gets the k-th ``getrandbits(32)``, as the pure-Python table did."""
        if not self.keysrc.ready:
            self.keysrc.next = <uint32_t>self.rng.getrandbits(32)
            self.keysrc.ready = 1
        return 0

    cdef int _lf(self) except? -100:
        lf = self.lfactor_fn()
        if not -8 <= lf <= 8:
            raise ValueError(f"svc_lfactor must be in -8..8, got {lf}")
        return <int>lf

    cdef int _start(self) except -1:
        """ip_vs_add_service()'s first-table allocation."""
        cdef int rc = iht_init(&self.t, SVT_MIN_BITS, SVT_MAX_BITS,
                               self._lf(), &self.prof, 1, svt_node_hash,
                               NULL)
        if rc == -_ENOMEM:
            raise MemoryError("cannot allocate the service table")
        if rc:
            raise ValueError("bad service table parameters")
        iht_set_key_source(&self.t, svt_next_key, &self.keysrc)
        self.live = True
        self._gen += 1
        self.view = None
        self._refill_key()
        return 0

    cdef void _stop(self):
        """The last service is gone: free the table (and, like the
        kernel, forget a queued resize)."""
        self.resizes_before += iht_resizes(&self.t)
        # not live before the GIL is released: a lookup in another thread
        # then returns None instead of entering a table being destroyed
        self.live = False
        with nogil:
            # nothing to free: the services own the nodes (and, as
            # iht_destroy requires, no walk of this netns' table runs: the
            # netns' owner serialises flush and walks)
            iht_destroy(&self.t, NULL, NULL)
        self._unmark_all()
        self._gen += 1
        self.view = None
        self.objs = []
        self.free_handles = []

    cdef void _unmark_all(self):
        """The table is going: its services are in no table any more."""
        if self.objs is None:
            return
        for svc in self.objs:
            if svc is not None:
                (<ServiceNode>svc).linked_in = NULL

    cdef int _key(self, svt_key *k, int af, int protocol, object addr_bytes,
                  int port, uint32_t fwmark) except -1:
        cdef bytes b
        if type(addr_bytes) is bytes:
            b = <bytes>addr_bytes
        else:
            b = bytes(addr_bytes)
        if svt_key_set(k, <uint8_t>af, <uint8_t>protocol,
                       <const uint8_t *>PyBytes_AS_STRING(b),
                       <unsigned int>PyBytes_GET_SIZE(b), <uint16_t>port,
                       fwmark):
            raise ValueError(f"address must be 4 or 16 bytes, got "
                             f"{PyBytes_GET_SIZE(b)}")
        return 0

    cdef uint32_t _new_handle(self, object svc) except 0xFFFFFFFF:
        """A slot of ``objs`` for ``svc`` (which then owns it)."""
        cdef Py_ssize_t h
        if self.free_handles:
            h = self.free_handles.pop()
            self.objs[h] = svc
        else:
            h = len(self.objs)
            if h >= <Py_ssize_t>_NO_HANDLE:
                raise OverflowError("too many services")
            self.objs.append(svc)
        return <uint32_t>h

    cdef void _sync_hash_keys(self):
        """After a rebuild: every Service's ``hash_key`` from its node."""
        for svc, hk in self._walk_keys():
            svc.hash_key = hk

    def _walk_keys(self):
        """(Service, hash_key) in walk order."""
        return self._walk(True)

    cdef list _walk(self, bint with_keys):
        """Services (or (Service, hash_key) pairs) in walk order.  The
        walk runs without the GIL (it holds resize_lock and a read-side
        section) and notes each entry's handle and object; back under the
        GIL, an entry counts only if its handle still holds that object.
        One that another thread removed meanwhile (its slot empty or
        reused) is left out: the object may be gone, so its pointer is
        compared, never followed."""
        cdef walk_row *rows = NULL
        cdef size_t n = 0, i
        cdef object svc
        if not self.live:
            return []
        n = self._collect(&rows)
        try:
            objs = self.objs
            out = []
            for i in range(n):
                svc = objs[rows[i].handle] if rows[i].handle < len(objs) \
                    else None
                if svc is None or <void *>svc != rows[i].obj:
                    continue
                out.append((svc, rows[i].hash_key) if with_keys else svc)
            return out
        finally:
            free(rows)

    cdef size_t _collect(self, walk_row **rows) except? 0:
        """Every node in walk order into a malloc'd array the caller
        frees.  The walk holds resize_lock, so it runs without the GIL."""
        cdef size_t cap = <size_t>iht_count(&self.t) + 1, n = 0
        cdef iht_walker w
        cdef iht_node *node
        cdef svt_entry *e
        rows[0] = <walk_row *>malloc(cap * sizeof(walk_row))
        if rows[0] == NULL:
            raise MemoryError()
        with nogil:
            iht_walk_start(&self.t, &w)
            node = iht_walk_next(&w)
            # the count bounds the walk when nobody changes the table
            # meanwhile; the check guards the buffer when someone does
            while node != NULL and n < cap:
                e = svt_of(node)
                rows[0][n].handle = e.handle
                rows[0][n].obj = e.obj
                rows[0][n].hash_key = svt_node_hash_key(node)
                n += 1
                node = iht_walk_next(&w)
            iht_walk_stop(&w)
        return n

    # ------------------------------------------------------- modification

    def insert(self, svc):
        """ip_vs_svc_hash(): link ``svc`` at the head of its chain in the
        newest array; the first service allocates the table, a later one
        past ``u_thresh`` requests a resize."""
        cdef svt_key k
        cdef svt_entry *e
        cdef ServiceNode node
        cdef bint first = not self.live
        cdef uint32_t h
        if not isinstance(svc, ServiceNode) or not svo_owns(<PyObject *>svc):
            raise TypeError(
                f"a {type(svc).__name__} cannot be linked: the table links "
                f"the entry inside a ServiceNode subclass passed to "
                f"svctab.adopt() (like ipvs_py.Service)")
        node = <ServiceNode>svc
        self._key(&k, svc.af, svc.protocol, svc.addr_bytes, svc.port,
                  svc.fwmark)
        if node.linked_in == <void *>self:
            raise ValueError(f"{svc!r} is already in the table")
        if node.linked_in != NULL:
            raise ValueError(f"{svc!r} is already in another table")
        if first:
            self._start()
        try:
            h = self._new_handle(svc)
        except BaseException:
            if first:
                self._stop()
            raise
        e = &node.ent
        e.key = k
        e.handle = h
        e.obj = <void *>svc          # itself, borrowed: self.objs[h] owns it
        node.linked_in = <void *>self
        with nogil:
            iht_insert(&self.t, &e.node, &e.key, svt_key_hash, NULL, 1)
            if first:
                svt_cancel_resize(&self.t)
        svc.hash_key = svt_node_hash_key(&e.node)

    def remove(self, svc):
        """ip_vs_svc_unhash() plus ip_vs_del_service()'s table policy: the
        last service frees the table; otherwise a count at or below
        ``l_thresh`` requests a shrink."""
        cdef ServiceNode node
        cdef svt_entry *e
        cdef uint32_t h
        cdef int rc
        if (not isinstance(svc, ServiceNode)
                or (<ServiceNode>svc).linked_in != <void *>self):
            raise KeyError(svc)
        node = <ServiceNode>svc
        e = &node.ent
        h = e.handle
        with nogil:
            rc = iht_unlink(&self.t, &e.node, 1)
            # The node is the Service's memory, freed with it once the
            # reference below goes: first a grace period, as the kernel's
            # call_rcu, for a walker in another thread standing on it.
            # (With no reader that is a counter flip and a scan of the
            # reader slots; the service table's writers are the control
            # plane.)
            if rc == 0:
                iht_synchronize(&self.t)
        if rc:
            raise RuntimeError(f"{svc!r} was not linked (table corrupt)")
        # Only now drop the references: a lookup that found the entry held
        # the GIL from the probe to its INCREF, so none is using e.obj.
        node.linked_in = NULL
        self.objs[h] = None
        self.free_handles.append(h)
        if iht_count(&self.t) == 0:
            self._stop()

    def clear(self):
        """ip_vs_flush(): unlink everything and free the table."""
        if self.live:
            self._stop()

    def _hold_read_section(self, double seconds):
        """Tests: stay in a read-side section for ``seconds`` without the
        GIL, as a walker in another thread would (``_holding()`` reads 1
        inside, 2 after).  remove() must not return meanwhile."""
        cdef unsigned int slot
        if not self.live:
            raise ValueError("no table")
        with nogil:
            slot = iht_read_lock(&self.t)
            self.holding = 1
            usleep(<unsigned int>(seconds * 1e6))
            self.holding = 2
            iht_read_unlock(&self.t, slot)

    def _holding(self):
        return self.holding

    def kick(self):
        """A write to svc_lfactor: queue the resizer (it rebuilds when the
        lfactor differs from the array's)."""
        if self.live:
            svt_request_resize(&self.t)

    def run_pending(self):
        """svc_resize_work_handler(), if queued: rebuild to the size the
        count and the current svc_lfactor want.  True if it rebuilt."""
        cdef int rc
        if not self.live or not iht_resize_pending(&self.t):
            return False
        if iht_set_lfactor(&self.t, self._lf()):
            raise ValueError("bad svc_lfactor")
        with nogil:
            rc = iht_maybe_resize(&self.t)
        if rc < 0:
            raise MemoryError("cannot allocate the new service table")
        self._refill_key()
        if rc == 0:
            return False
        self._gen += 1
        self.view = None
        self._sync_hash_keys()
        return True

    # ------------------------------------------------------------- lookup

    cdef object _find(self, svt_key *k):
        """One C probe.  The GIL is held from the probe to the INCREF of
        the returned object, so remove() cannot drop it meanwhile."""
        cdef iht_node *n
        cdef void *obj = NULL
        cdef unsigned int slot
        if not self.live:
            return None
        slot = iht_read_lock(&self.t)
        n = iht_lookup(&self.t, k, svt_key_hash, svt_cmp, NULL)
        if n != NULL:
            obj = svt_of(n).obj
        iht_read_unlock(&self.t, slot)
        if obj == NULL:
            return None
        return <object>obj

    def find(self, int af, int protocol, addr_bytes, int port, addr32=None):
        """__ip_vs_service_find(): the <proto,addr,port> service or None.
        ``addr32`` is accepted for compatibility and ignored (the C side
        derives it from the address)."""
        cdef svt_key k
        if not self.live:
            return None
        self._key(&k, af, protocol, addr_bytes, port, 0)
        return self._find(&k)

    def find_fwm(self, int af, uint32_t fwmark):
        """__ip_vs_svc_fwm_find(): the fwmark service or None."""
        cdef svt_key k
        cdef uint8_t zero[16]
        if not self.live or fwmark == 0:
            return None
        memset(zero, 0, 16)
        svt_key_set(&k, <uint8_t>af, 0, zero, 16, 0, fwmark)
        return self._find(&k)

    # -------------------------------------------------------------- walks

    def walk(self):
        """Services in the kernel's walk order (buckets 0..size-1, each
        chain head first): /proc/net/ip_vs, dumps, flush.  A list."""
        return self._walk(False)

    def __len__(self):
        return iht_count(&self.t) if self.live else 0

    @property
    def count(self):
        """Services in the table."""
        return iht_count(&self.t) if self.live else 0

    @property
    def kernel(self):
        return "7.1"

    @property
    def resize_queued(self):
        """A resize was requested and :meth:`run_pending` has not run."""
        return bool(self.live and iht_resize_pending(&self.t))

    @property
    def resizes(self):
        """Arrays built by the resizer so far."""
        return self.resizes_before + (iht_resizes(&self.t) if self.live
                                      else 0)

    @property
    def keys_drawn(self):
        """Bucket-array keys handed out (one per array ever allocated)."""
        return self.keysrc.used

    def chain_lengths(self):
        """Histogram counts[0..7] of chain lengths (7 = 7 or more), the
        numbers ip_vs_status_show() prints, from iht_histogram()."""
        cdef uint64_t out[IHT_HIST_MAXLEN + 2]
        if not self.live:
            return [0] * 8
        with nogil:
            iht_histogram(&self.t, out)
        return [out[1 + i] for i in range(8)]

    @property
    def size(self):
        """Buckets of the current array (0 without one)."""
        cdef iht_tbl s
        if not self.live:
            return 0
        iht_snapshot(&self.t, &s)
        return s.size

    @property
    def t(self):
        """A :class:`TableView` of the current array, or None without one
        (the kernel's ``ipvs->svc_table`` pointer)."""
        cdef iht_tbl s
        if not self.live:
            return None
        if self.view is None:
            iht_snapshot(&self.t, &s)
            v = TableView.__new__(TableView)
            v.size = s.size
            v.mask = s.size - 1
            v.bits = s.bits
            v.table_id = s.table_id
            v.key0 = <uint32_t>s.hash_key.key[0]
            v.lfactor = s.lfactor
            v.u_thresh = s.u_thresh
            v.l_thresh = s.l_thresh
            v._owner = weakref.ref(self)
            v._gen = self._gen
            self.view = v
        return self.view

    def memory(self):
        """Bytes the C side holds, by kind (as allocated).  ``entries`` are
        inside the Service objects (``ENTRY_SIZE`` bytes each), which the
        Python side owns; counted here as the table's share of them."""
        if not self.live:
            return {"buckets": 0, "locks": 0, "entries": 0, "meta": 0}
        return {"buckets": iht_mem_bytes(&self.t.mem, IHT_MEM_BUCKETS),
                "locks": iht_mem_bytes(&self.t.mem, IHT_MEM_LOCKS),
                "entries": iht_count(&self.t) * sizeof(svt_entry),
                "meta": iht_mem_bytes(&self.t.mem, IHT_MEM_META)}
