# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The hot schedulers in C, without the GIL (``include/ipvs_sched.h``).

:class:`BatchScheduler` snapshots one service -- its dests in kernel list
order, their weights, flags and counters, and the scheduler's state -- into
C arrays and makes the same decisions as the Python modules of
``ipvs_py.schedulers`` (rr, wrr, lc, wlc, sed, nq, fo, ovf, sh, dh, mh;
lblc/lblcr keep Python dict tables and twos a Python RNG, so they stay in
Python).  ``schedule_batch`` runs a whole array of new connections under
``nogil``, optionally counting each on its dest as ``ip_vs_bind_dest``
would, so lc/wlc/sed/nq/ovf see their counters move.  ``write_back`` copies
positions and counters back to the Python objects, so the two paths can
take turns.
"""
cimport cython
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t
from libc.string cimport memset

import numpy as np

from ipvs_py.schedulers import base as _base

__all__ = ["BatchScheduler", "KINDS", "COUNT_MODES", "fold_addresses"]

KINDS = {"rr": IPVS_SCHED_RR, "wrr": IPVS_SCHED_WRR, "lc": IPVS_SCHED_LC,
         "wlc": IPVS_SCHED_WLC, "sed": IPVS_SCHED_SED, "nq": IPVS_SCHED_NQ,
         "fo": IPVS_SCHED_FO, "ovf": IPVS_SCHED_OVF, "sh": IPVS_SCHED_SH,
         "dh": IPVS_SCHED_DH, "mh": IPVS_SCHED_MH}
COUNT_MODES = {"none": IPVS_COUNT_NONE, "active": IPVS_COUNT_ACTIVE,
               "inactive": IPVS_COUNT_INACTIVE}


cdef inline int32_t _clamp32(object v) except? -1:
    return <int32_t>(((int(v) + 0x80000000) & 0xFFFFFFFF) - 0x80000000)


def fold_addresses(addrs, af=2, out=None):
    """``ntohl(addr_fold)`` of every row of a ``(n, 16)`` uint8 array of
    raw network-order addresses (PacketBatch's ``saddr``/``daddr``); ``af``
    is one family for all rows or a uint8 array of them."""
    cdef const uint8_t[:, ::1] a = np.ascontiguousarray(addrs, dtype=np.uint8)
    if a.shape[1] != 16:
        raise ValueError("addresses must have shape (n, 16)")
    cdef Py_ssize_t n = a.shape[0], i
    cdef const uint8_t[::1] fam
    if np.isscalar(af):
        fam = np.full(n, af, dtype=np.uint8)
    else:
        fam = np.ascontiguousarray(af, dtype=np.uint8)
        if fam.shape[0] != n:
            raise ValueError("af has the wrong length")
    if out is None:
        out = np.empty(n, dtype=np.uint32)
    cdef uint32_t[::1] o = out
    with nogil:
        for i in range(n):
            o[i] = ipvs_sched_addr_fold(&a[i, 0], fam[i])
    return out


@cython.final
cdef class BatchScheduler:
    """One service's scheduler on C arrays.

    ``BatchScheduler(svc, name=None, from_python=True)``: ``name`` defaults
    to ``svc.sched_name``.  With ``from_python`` the scheduler state is
    taken from ``svc.sched_data`` (the Python hooks own it); otherwise C
    initialises it as ``init_service`` would.
    """

    def __cinit__(self, svc, name=None, from_python=True):
        self.rows = NULL
        self.lookup = NULL
        memset(&self.s, 0, sizeof(self.s))

    def __init__(self, svc, name=None, from_python=True):
        name = name or getattr(svc, "sched_name", None)
        if name not in KINDS:
            raise ValueError(f"no C implementation of scheduler {name!r}; "
                             f"have {sorted(KINDS)}")
        self.name = name
        self.svc = svc
        self.s.kind = KINDS[name]
        self.s.svc_flags = <uint32_t>(int(svc.flags) & 0xFFFFFFFF)
        self.dests = list(_base.dests_of(svc))
        n = len(self.dests)
        self.rows = <ipvs_sched_dest_t *>PyMem_Malloc(
            max(n, 1) * sizeof(ipvs_sched_dest_t))
        if self.rows == NULL:
            raise MemoryError()
        self.s.d = self.rows
        self.s.n = n
        self.refresh_dests()
        if self.s.kind == IPVS_SCHED_MH:
            self.lookup = <int32_t *>PyMem_Malloc(
                IPVS_SCHED_MH_TAB_SIZE * sizeof(int32_t))
            if self.lookup == NULL:
                raise MemoryError()
            self.s.mh_lookup = self.lookup
        if from_python and svc.sched_data is not None:
            self._from_python(svc.sched_data)
        else:
            self.init_state()

    def __dealloc__(self):
        PyMem_Free(self.rows)
        PyMem_Free(self.lookup)

    def refresh_dests(self):
        """Re-read weights, flags, counters and thresholds of the dests."""
        cdef int i
        af = self.svc.af
        for i, d in enumerate(self.dests):
            lw = getattr(d, "last_weight", None)
            self.rows[i].weight = _clamp32(d.weight)
            self.rows[i].last_weight = _clamp32(d.weight if lw is None else lw)
            self.rows[i].flags = <uint32_t>(
                (int(d.flags) & 0xFFFFFFFF & ~_base.IP_VS_DEST_F_AVAILABLE)
                | (_base.IP_VS_DEST_F_AVAILABLE if _base.is_available(d) else 0))
            self.rows[i].activeconns = _clamp32(d.activeconns)
            self.rows[i].inactconns = _clamp32(d.inactconns)
            self.rows[i].u_threshold = <uint32_t>(
                int(getattr(d, "u_thresh", 0) or 0) & 0xFFFFFFFF)
            self.rows[i].addr_fold = _base.addr_fold(af, d.addr)
            self.rows[i].port = <uint16_t>(int(d.port) & 0xFFFF)

    cdef int _build(self) except -1:
        cdef int32_t *scratch
        cdef uint8_t *used
        k = self.s.kind
        if k == IPVS_SCHED_SH:
            ipvs_sched_sh_build(&self.s)
        elif k == IPVS_SCHED_DH:
            ipvs_sched_dh_build(&self.s)
        elif k == IPVS_SCHED_MH:
            scratch = <int32_t *>PyMem_Malloc((3 * self.s.n + 1) * sizeof(int32_t))
            used = <uint8_t *>PyMem_Malloc(IPVS_SCHED_MH_TAB_SIZE)
            if scratch == NULL or used == NULL:
                PyMem_Free(scratch)
                PyMem_Free(used)
                raise MemoryError()
            with nogil:
                ipvs_sched_mh_build(&self.s, scratch, used)
            PyMem_Free(scratch)
            PyMem_Free(used)
        return 0

    def init_state(self):
        """C ``init_service``: rr at the head, wrr mark, sh/dh/mh tables."""
        cdef int i
        self.s.rr_pos = -1
        if self.s.kind == IPVS_SCHED_WRR:
            ipvs_sched_wrr_init(&self.s)
        if self.s.kind == IPVS_SCHED_MH:
            for i in range(IPVS_SCHED_MH_TAB_SIZE):
                self.lookup[i] = -1
        self._build()

    def dest_changed(self):
        """C ``add/del/upd_dest`` after :meth:`refresh_dests` (same dests)."""
        if self.s.kind == IPVS_SCHED_WRR:
            ipvs_sched_wrr_changed(&self.s)
        self._build()

    def _index(self, d):
        if d is None:
            return -1
        for i, x in enumerate(self.dests):
            if x is d:
                return i
        raise ValueError("scheduler state refers to a dest not in the service")

    def _from_python(self, st):
        cdef int i
        k = self.s.kind
        if k == IPVS_SCHED_RR:
            self.s.rr_pos = self._index(st.cur)
        elif k == IPVS_SCHED_WRR:
            self.s.wrr_cl, self.s.wrr_cw = st.cl, st.cw
            self.s.wrr_mw, self.s.wrr_di = st.mw, st.di
        elif k == IPVS_SCHED_SH or k == IPVS_SCHED_DH:
            for i in range(IPVS_SCHED_SH_TAB_SIZE):
                self.s.tab[i] = self._index(st[i])
        elif k == IPVS_SCHED_MH:
            for i in range(IPVS_SCHED_MH_TAB_SIZE):
                self.lookup[i] = self._index(st.lookup[i])

    def table(self):
        """sh/dh buckets or the mh lookup table as dest indices (-1 = NULL)."""
        if self.s.kind == IPVS_SCHED_MH:
            return np.array([self.lookup[i] for i in range(IPVS_SCHED_MH_TAB_SIZE)],
                            dtype=np.int32)
        return np.array([self.s.tab[i] for i in range(IPVS_SCHED_SH_TAB_SIZE)],
                        dtype=np.int32)

    @property
    def decisions(self):
        return self.s.decisions

    def state(self):
        """(rr_pos, wrr_cl, wrr_cw, wrr_mw, wrr_di)."""
        return (self.s.rr_pos, self.s.wrr_cl, self.s.wrr_cw, self.s.wrr_mw,
                self.s.wrr_di)

    def counters(self):
        """(activeconns, inactconns, flags) arrays in dest order."""
        n = self.s.n
        return (np.array([self.rows[i].activeconns for i in range(n)], np.int32),
                np.array([self.rows[i].inactconns for i in range(n)], np.int32),
                np.array([self.rows[i].flags for i in range(n)], np.uint32))

    def schedule(self, uint32_t fold=0, uint16_t port=0, uint32_t dfold=0,
                 count="none"):
        """One decision: dest index or -1."""
        cdef int how = COUNT_MODES[count]
        cdef int i = ipvs_sched_schedule(&self.s, fold, port, dfold)
        ipvs_sched_count(&self.s, i, how)
        self.s.decisions += 1
        return i

    def schedule_batch(self, folds, ports=None, dfolds=None, count="none",
                       out=None):
        """Decide for every row, in order, without the GIL.

        ``folds``: u32 array of hashed client addresses (``addr_fold``);
        ``ports``: u16 array (sh-port/mh-port; ignored otherwise);
        ``dfolds``: u32 array of folded destination addresses (dh).  Returns
        an int32 array of dest indices, -1 where no dest was available.
        """
        cdef const uint32_t[::1] f = np.ascontiguousarray(folds, dtype=np.uint32)
        cdef Py_ssize_t n = f.shape[0], i
        cdef const uint16_t[::1] p
        cdef const uint32_t[::1] df
        if ports is None:
            p = np.zeros(n, dtype=np.uint16)
        else:
            p = np.ascontiguousarray(ports, dtype=np.uint16)
        if dfolds is None:
            df = np.zeros(n, dtype=np.uint32)
        else:
            df = np.ascontiguousarray(dfolds, dtype=np.uint32)
        if p.shape[0] != n or df.shape[0] != n:
            raise ValueError("folds, ports and dfolds must have one length")
        if out is None:
            out = np.empty(n, dtype=np.int32)
        cdef int32_t[::1] o = out
        if o.shape[0] != n:
            raise ValueError("out has the wrong length")
        cdef int how = COUNT_MODES[count]
        cdef int d
        with nogil:
            for i in range(n):
                d = ipvs_sched_schedule(&self.s, f[i], p[i], df[i])
                ipvs_sched_count(&self.s, d, how)
                o[i] = d
            self.s.decisions += n
        return out

    def schedule_packets(self, batch, count="none", out=None):
        """:meth:`schedule_batch` over the rows of a ``PacketBatch`` (or
        anything with its ``af``/``proto``/``saddr``/``sport``/``daddr``
        columns), every row taken as the first packet of a new connection.
        Ports count only for TCP, UDP and SCTP, as in the kernel."""
        proto = np.asarray(batch.proto)
        has_ports = (proto == 6) | (proto == 17) | (proto == 132)
        ports = np.where(has_ports, np.asarray(batch.sport), 0).astype(np.uint16)
        return self.schedule_batch(fold_addresses(batch.saddr, batch.af),
                                   ports, fold_addresses(batch.daddr, batch.af),
                                   count=count, out=out)

    def write_back(self, bint dests=True):
        """Copy rr/wrr positions and, with ``dests``, the rows' counters
        and flags back to the Python dests.  ``dests=False``: positions
        only, for a caller that copies the dests' counters from somewhere
        newer itself (ConnPath.sync_back, from the engine: the per-dest
        loop here was then done twice, 109 ms of a first replay's
        copy-back at 100,000 services, bench/bench_ctl.py)."""
        st = self.svc.sched_data
        k = self.s.kind
        if k == IPVS_SCHED_RR and st is not None:
            pos = self.s.rr_pos
            st.cur = None if pos < 0 else self.dests[pos]
            st.idx = pos
        elif k == IPVS_SCHED_WRR and st is not None:
            st.cl, st.cw, st.mw, st.di = (self.s.wrr_cl, self.s.wrr_cw,
                                          self.s.wrr_mw, self.s.wrr_di)
        if not dests:
            return
        avail = _base.IP_VS_DEST_F_AVAILABLE
        for i, d in enumerate(self.dests):
            d.activeconns = self.rows[i].activeconns
            d.inactconns = self.rows[i].inactconns
            f = self.rows[i].flags
            if hasattr(d, "available"):      # kept apart from the flags
                d.flags = f & ~avail
            else:
                d.flags = f
