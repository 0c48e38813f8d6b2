# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The connection table and packet path in C (``include/ipvs_conn.h``).

:class:`ConnEngine` owns one namespace's conns: the resizable hlist_bl
table (hn0/hn1 nodes, siphash keys), the timer heap, the packet-path view
of services and dests, and the per-dest counters.  ``ipvs_py.conn`` keeps
it in step with the control plane; tests and benchmarks may drive it
directly.  ``replay`` runs a whole batch without the GIL; the GIL is taken
back only to call a Python scheduler (services whose scheduler has no C
version).
"""
cimport cython
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcmp, memcpy, memset

import numpy as np

from ipvs_py._core.hashing cimport ipvs_siphash_key_t
from ipvs_py._core.sched cimport BatchScheduler, ipvs_sched_svc_t
from ipvs_py._core.table cimport (iht_table, iht_node, iht_lock_profile,
                                  iht_init, iht_destroy, iht_histogram,
                                  iht_count, iht_maybe_resize,
                                  iht_resize_pending, iht_set_lfactor,
                                  iht_walker, iht_walk_start, iht_walk_next,
                                  iht_walk_stop, iht_snapshot, iht_tbl,
                                  iht_walk_stats, iht_walk_stats_attach,
                                  iht_walk_stats_reset, iht_mem_bytes,
                                  IHT_MEM_BUCKETS, IHT_MEM_LOCKS,
                                  walk_stats_dict, pause_stats_dict)
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

__all__ = ["ConnEngine", "TCP_STATES", "SCTP_STATES", "CONN_BYTES"]

include "conntab_mt.pxi"

TCP_STATES = ("NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT",
              "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN",
              "SYNACK")
SCTP_STATES = ("NONE", "INIT1", "INIT", "C-SENT", "C-REPLIED", "C-WAIT",
               "COOKIE", "C-ECHOED", "ESTABLISHED", "S-SENT", "S-RECEIVED",
               "S-ACK-SENT", "REJECTED", "CLOSED")


cdef extern from "ipvs_conn.h" nogil:
    enum:
        IPVS_V_PASS, IPVS_V_FORWARD, IPVS_V_DROP, IPVS_V_ERROR
        IPVS_CONN_NONE
        IPVS_CONN_CHUNK
        TS_LAST
        SS_LAST
    cdef struct ipvs_conn:
        iht_node hn[2]
        uint32_t caddr[4]
        uint32_t vaddr[4]
        uint32_t daddr[4]
        uint32_t expires
        uint32_t timeout
        uint32_t flags
        int32_t dest
        uint32_t control
        int32_t n_control
        uint16_t cport, vport, dport
        uint8_t af, protocol, state, in_use, daf, in_pkts
        uint32_t id
    cdef struct ipvs_cdest:
        uint32_t flags
        int32_t svc
        uint16_t port
        uint8_t af, fwd
        uint16_t tun_port
        uint8_t tun_type
        uint64_t conns, inpkts, outpkts, inbytes, outbytes
        int32_t activeconns, inactconns, persistconns, refcnt
        int32_t weight
        uint32_t u_thresh, l_thresh
        uint32_t addr[4]
    cdef struct ipvs_csvc:
        uint32_t addr[4]
        uint32_t fwmark, flags, timeout
        uint32_t netmask[4]
        uint16_t port
        uint8_t af, protocol
        int32_t live
        ipvs_sched_svc_t *sched
        int32_t *row_dest
        uint64_t conns, inpkts, outpkts, inbytes, outbytes
    cdef struct ipvs_pkt:
        uint32_t saddr[4]
        uint32_t daddr[4]
        uint32_t fwmark, len
        uint16_t sport, dport
        uint8_t af, protocol, flags, dir
    cdef struct ipvs_verdict:
        int action
        int32_t dest
        uint32_t conn
    ctypedef int32_t (*ipvs_sched_cb)(ipvs_engine *e, int svc,
                                      const ipvs_pkt *p, void *arg)
    cdef struct ipvs_svc_index:
        int dirty
    cdef struct ipvs_engine:
        iht_table tab
        uint32_t nchunks, nslots, free_head, bump
        int64_t nconns, no_cport, ntemplates
        size_t heap_n, heap_cap
        uint32_t now, hz
        uint32_t tcp_timeouts[12]
        uint32_t udp_timeout
        uint32_t sctp_timeouts[15]
        int secure_tcp, conn_reuse_mode, expire_nodest_conn
        int expire_quiescent_template, sloppy_tcp, sloppy_sctp
        int schedule_icmp
        int drop_rate, drop_counter
        uint64_t dropentry
        uint64_t rng
        ipvs_cdest *dests
        uint32_t ndests
        ipvs_csvc *svcs
        uint32_t nsvcs
        ipvs_svc_index sidx
        int svc_scan
        ipvs_sched_cb sched_cb
        void *sched_arg
        ipvs_fc *fc
        int mt_resize_help
        int cb_error
        ipvs_trace *trace
        uint64_t tot_conns, tot_inpkts, tot_outpkts, tot_inbytes, tot_outbytes
    void *ipvs_engine_free_all "ipvs_engine_free_all"(ipvs_engine *e)
    int ipvs_dests_reserve(ipvs_engine *e, uint32_t n)
    ipvs_conn *ipvs_conn_of(ipvs_engine *e, uint32_t id)
    ipvs_conn *ipvs_conn_of_node(const iht_node *n)
    unsigned int ipvs_node_dir(const iht_node *n)
    void ipvs_svc_index_mark_dirty(ipvs_svc_index *x)
    int ipvs_svc_index_build(ipvs_svc_index *x, const ipvs_csvc *svcs,
                             uint32_t n)
    int ipvs_svc_find(ipvs_engine *e, const ipvs_pkt *p)
    int ipvs_svc_find_scan(ipvs_engine *e, const ipvs_pkt *p)
    ipvs_verdict ipvs_packet(ipvs_engine *e, const ipvs_pkt *p, uint32_t now)
    uint64_t ipvs_run_timers(ipvs_engine *e, uint32_t until)
    void ipvs_conn_expire_now(ipvs_engine *e, uint32_t id)
    uint32_t ipvs_node_hash(const iht_node *n, const ipvs_siphash_key_t *hk, void *ctx)
    uint32_t ipvs_engine_sizeof_conn()
    uint64_t ipvs_random_dropentry(ipvs_engine *e)

include "conntab_icmp.pxi"
include "conntab_61.pxi"

CONN_BYTES = ipvs_engine_sizeof_conn()
DEF PF_DIST = 16       # rows ahead for the bucket prefetch
DEF PF_RING = 32       # power of two > PF_DIST
_ACTIONS = ("pass", "forward", "drop", "error")
_TCP_DEFAULT = (2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120, 2)
_SCTP_DEFAULT = (2, 4, 61, 61, 61, 61, 61, 61, 900, 61, 61, 61, 4, 61, 2)


cdef int32_t _py_sched(ipvs_engine *e, int svc, const ipvs_pkt *p,
                       void *arg) noexcept nogil:
    with gil:
        try:
            return (<ConnEngine>arg)._call_sched(svc, p[0])
        except BaseException as exc:
            (<ConnEngine>arg)._cb_exc = exc
            e.cb_error = 1
            return -1


cdef inline void _addr16(const uint8_t[::1] src, uint32_t *dst) noexcept nogil:
    memcpy(dst, &src[0], 16)


cdef inline ipvs_conn *_walk_next_conn(iht_walker *w) noexcept nogil:
    """The next conn of a table walk, each once (its hn0 node), or NULL."""
    cdef iht_node *n = iht_walk_next(w)
    while n != NULL and ipvs_node_dir(n) != 0:
        n = iht_walk_next(w)
    return NULL if n == NULL else ipvs_conn_of_node(n)


cdef inline int _ntohs(int v) noexcept nogil:
    """ntohs() of a 16-bit port, which is also htons()."""
    return ((v >> 8) | (v << 8)) & 0xFFFF


cdef inline int _check16(str what, bytes b) except -1:
    """The engine copies 16 bytes from every address it is given."""
    if len(b) != 16:
        raise ValueError(f"{what} must be 16 raw bytes, got {len(b)}")
    return 0


cdef inline int _set_counters(object st, object conns, object inpkts,
                              object outpkts, object inbytes,
                              object outbytes) except -1:
    """The five counters (stats.COUNTERS) of Stats object ``st``."""
    st.conns = conns
    st.inpkts = inpkts
    st.outpkts = outpkts
    st.inbytes = inbytes
    st.outbytes = outbytes
    return 0


cdef list _changed_rows(const char *rows, uint32_t n, size_t size,
                        char **shadow, uint32_t *nshadow):
    """Indexes of the ``n`` rows of ``size`` bytes that differ from their
    copy in ``*shadow`` (grown to ``n`` rows as needed: new rows count as
    changed), refreshing the copies.  A memcmp per row, ~1 ns each."""
    cdef char *sh
    cdef uint32_t i
    cdef list out = []
    if n > nshadow[0]:
        sh = <char *>realloc(shadow[0], n * size)
        if sh == NULL:
            raise MemoryError()
        # all-ones never equals a real row, so new rows are reported
        memset(sh + nshadow[0] * size, 0xFF, (n - nshadow[0]) * size)
        shadow[0], nshadow[0] = sh, n
    for i in range(n):
        if memcmp(rows + i * size, shadow[0] + i * size, size) != 0:
            memcpy(shadow[0] + i * size, rows + i * size, size)
            out.append(i)
    return out


@cython.final
cdef class ConnEngine:
    """One namespace's conn table and packet path.

    ``ConnEngine(hz=250, min_bits=8, max_bits=12, lfactor=-4)``.  Dests
    and services are registered by index (:meth:`set_dest`,
    :meth:`set_service`); addresses are 16 raw network-order bytes, ports
    host order.  Not thread safe: one caller at a time.
    """
    cdef ipvs_engine e
    cdef bint ready
    cdef list _svc_keep          # BatchSchedulers kept alive per service
    cdef object sched_fn         # Python scheduler callback
    cdef object _cb_exc
    cdef object __weakref__      # tests: freed with its Netns
    cdef ipvs_events *_events    # session event ring (ipvs_events.h), or NULL
    cdef iht_walk_stats ws       # count_walks() target (ipvs_py.tune)
    cdef iht_stripes stripes     # writer stripes (conntab_mt.pxi); n 0: off
    cdef ipvs_fc fc_conf         # flow cache settings; n 0: off
    cdef ipvs_mt_scratch mt_scratch  # multi-core replay rows (ipvs_mt_rows.h)
    # what changed_dests()/changed_svcs() last reported (their shadows)
    cdef ipvs_cdest *_dshadow
    cdef ipvs_csvc *_sshadow
    cdef uint32_t _ndshadow, _nsshadow

    def __cinit__(self, hz=250, min_bits=8, max_bits=12, lfactor=-4):
        cdef iht_lock_profile prof
        memset(&self.e, 0, sizeof(self.e))
        prof.seqc_shift, prof.seqc_max, prof.locks, prof.ncpus = 6, 256, 8, 0
        self.e.free_head = IPVS_CONN_NONE
        self.e.hz = hz
        self.e.mt_resize_help = -1          # when CPUs are short
        if iht_init(&self.e.tab, min_bits, max_bits, lfactor, &prof, 0,
                    ipvs_node_hash, NULL) != 0:
            raise MemoryError("conn table")
        self.ready = True
        self._svc_keep = []
        self.e.conn_reuse_mode = 1
        self.set_timeouts()

    def __dealloc__(self):
        cdef uint32_t i
        if self.ready:
            iht_destroy(&self.e.tab, NULL, NULL)
            ipvs_engine_free_all(&self.e)
        self.events_off()
        iht_stripes_destroy(&self.stripes)
        ipvs_mt_scratch_free(&self.mt_scratch)
        free(self._dshadow)
        free(self._sshadow)

    # -- configuration ---------------------------------------------------
    def set_timeouts(self, tcp=None, udp=300, sctp=None):
        """Per-state timeouts in seconds (``tcp``: 11 values in state
        order, ``sctp``: 14); defaults are the kernel's tables."""
        cdef int i
        tcp = list(tcp or _TCP_DEFAULT[:11])
        sctp = list(sctp or _SCTP_DEFAULT[:14])
        for i in range(11):
            self.e.tcp_timeouts[i] = <uint32_t>(tcp[i] * self.e.hz)
        self.e.tcp_timeouts[11] = 2 * self.e.hz
        for i in range(14):
            self.e.sctp_timeouts[i] = <uint32_t>(sctp[i] * self.e.hz)
        self.e.sctp_timeouts[14] = 2 * self.e.hz
        self.e.udp_timeout = <uint32_t>(udp * self.e.hz)

    def set_sysctls(self, *, secure_tcp=0, conn_reuse_mode=1,
                    expire_nodest_conn=0, expire_quiescent_template=0,
                    sloppy_tcp=0, sloppy_sctp=0, drop_rate=None):
        """The sysctls the packet path reads (secure_tcp: tcp_states_dos
        when nonzero)."""
        self.e.secure_tcp = 1 if secure_tcp else 0
        self.e.conn_reuse_mode = conn_reuse_mode
        self.e.expire_nodest_conn = expire_nodest_conn
        self.e.expire_quiescent_template = expire_quiescent_template
        self.e.sloppy_tcp = sloppy_tcp
        self.e.sloppy_sctp = sloppy_sctp
        if drop_rate is not None and drop_rate != self.e.drop_rate:
            self.e.drop_rate = drop_rate
            self.e.drop_counter = drop_rate

    def set_lfactor(self, int lfactor):
        """conn_lfactor written: the sysctl kicks the resize work, which
        rebuilds at the new load factor (8d7de5477e47)."""
        if iht_set_lfactor(&self.e.tab, lfactor) != 0:
            raise ValueError(f"lfactor {lfactor} out of range")
        iht_maybe_resize(&self.e.tab)

    def set_sched_callback(self, fn):
        """``fn(svc_index, af, proto, saddr16, sport, daddr16, dport,
        fwmark) -> dest index or -1`` for services without a C scheduler."""
        self.sched_fn = fn
        if fn is None:
            self.e.sched_cb = NULL
        else:
            self.e.sched_cb = _py_sched
            self.e.sched_arg = <void *>self

    cdef int32_t _call_sched(self, int svc, ipvs_pkt p) except? -2:
        sa = (<char *>p.saddr)[:16]
        da = (<char *>p.daddr)[:16]
        return self.sched_fn(svc, p.af, p.protocol, sa,
                             _ntohs(p.sport), da,
                             _ntohs(p.dport),
                             p.fwmark)

    def set_dest(self, int idx, bytes addr, int port, int af, int fwd,
                 int weight, int u_thresh=0, int l_thresh=0,
                 bint available=True, int svc=-1):
        """Create or update dest ``idx`` (config fields only; counters
        stay)."""
        cdef ipvs_cdest *d
        cdef uint32_t n
        if idx < 0:
            raise ValueError(f"dest index {idx} is negative")
        _check16("addr", addr)
        if <uint32_t>idx >= self.e.ndests:
            n = idx + 1
            if ipvs_dests_reserve(&self.e, n):
                raise MemoryError()
            self.e.ndests = n
        d = &self.e.dests[idx]
        memcpy(d.addr, <char *>addr, 16)
        d.port = _ntohs(port)
        d.af, d.fwd, d.weight = af, fwd, weight
        d.u_thresh, d.l_thresh = u_thresh, l_thresh
        d.flags = (d.flags & ~1) | (1 if available else 0)
        d.svc = svc

    cdef ipvs_cdest *_dest(self, int idx) except NULL:
        """Dest ``idx`` of the engine, or IndexError."""
        if not 0 <= idx < <int>self.e.ndests:
            raise IndexError(f"no dest {idx}")
        return &self.e.dests[idx]

    cdef ipvs_csvc *_svc(self, int idx) except NULL:
        """Service ``idx`` of the engine, or IndexError."""
        if not 0 <= idx < <int>self.e.nsvcs:
            raise IndexError(f"no service {idx}")
        return &self.e.svcs[idx]

    def set_overload(self, int idx, bint on):
        """Set or clear dest ``idx``'s overload flag (IP_VS_DEST_F_OVERLOAD)."""
        cdef ipvs_cdest *d = self._dest(idx)
        if on:
            d.flags |= 2
        else:
            d.flags &= ~2

    def dest_counters(self, int idx):
        """(activeconns, inactconns, persistconns, refcnt, flags, conns,
        inpkts, outpkts, inbytes, outbytes)"""
        cdef ipvs_cdest *d = self._dest(idx)
        return (d.activeconns, d.inactconns, d.persistconns, d.refcnt,
                d.flags, d.conns, d.inpkts, d.outpkts, d.inbytes, d.outbytes)

    def svc_counters(self, int idx):
        """(conns, inpkts, outpkts, inbytes, outbytes) of service ``idx``."""
        cdef ipvs_csvc *s = self._svc(idx)
        return (s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes)

    def copy_svc_counters(self, ids, list svcs):
        """For each engine service index in ``ids``: set the five counters
        (``stats.COUNTERS``) of ``svcs[i].stats`` from the engine; an
        index past the list or a None there is skipped.  ConnPath.sync_back's
        copy as one C loop: written in Python it took most of a replay of
        100,000 SYNs to 100,000 services (bench/bench_ctl.py)."""
        cdef int i
        cdef ipvs_csvc *s
        cdef Py_ssize_t n = len(svcs)
        for i in ids:
            s = self._svc(i)
            svc = svcs[i] if i < n else None
            if svc is None:
                continue
            _set_counters(svc.stats, s.conns, s.inpkts, s.outpkts,
                          s.inbytes, s.outbytes)

    def copy_dest_counters(self, ids, list dests):
        """For each engine dest id in ``ids``: set activeconns,
        inactconns, persistconns and refcnt of ``dests[i]``, its overload
        flag (bit 2; the other flag bits are the Python side's), and the
        five counters of its ``stats`` (see :meth:`copy_svc_counters`)."""
        cdef int i
        cdef ipvs_cdest *c
        for i in ids:
            c = self._dest(i)
            d = dests[i]
            d.activeconns = c.activeconns
            d.inactconns = c.inactconns
            d.persistconns = c.persistconns
            d.refcnt = c.refcnt
            d.flags = (d.flags & ~2) | (c.flags & 2)
            _set_counters(d.stats, c.conns, c.inpkts, c.outpkts,
                          c.inbytes, c.outbytes)

    def changed_dests(self):
        """Engine ids of the dests whose struct (counters, flags, config)
        changed since the previous call, as a list; every dest the first
        time.  Lets the Python side copy back only what moved: a replay
        against 100,000 services copied 1M attributes per call before
        (bench/bench_ctl.py, packet path)."""
        return _changed_rows(<const char *>self.e.dests, self.e.ndests,
                             sizeof(ipvs_cdest), <char **>&self._dshadow,
                             &self._ndshadow)

    def changed_svcs(self):
        """Engine service indexes whose struct changed since the previous
        call (see :meth:`changed_dests`)."""
        return _changed_rows(<const char *>self.e.svcs, self.e.nsvcs,
                             sizeof(ipvs_csvc), <char **>&self._sshadow,
                             &self._nsshadow)

    def row_dests(self, svcs):
        """The engine dest ids in the scheduler rows of the services
        ``svcs`` (engine indexes; one without a C scheduler adds none),
        as a set.  ConnPath.sync_back re-reads them all after a replay;
        gathered in Python from each scheduler's dests it cost ~500 ns a
        service (bench/bench_ctl.py, 100,000 services)."""
        cdef int si, i
        cdef ipvs_csvc *s
        out = set()
        for si in svcs:
            s = self._svc(si)
            if s.sched != NULL:
                for i in range(s.sched.n):
                    out.add(s.row_dest[i])
        return out

    def dest_svc(self, int idx):
        """Engine service index dest ``idx`` belongs to (-1: none)."""
        return self._dest(idx).svc

    def tot_counters(self):
        return (self.e.tot_conns, self.e.tot_inpkts, self.e.tot_outpkts,
                self.e.tot_inbytes, self.e.tot_outbytes)

    def set_service(self, int idx, bytes addr, int port, int af, int protocol,
                    int fwmark, int flags, int timeout_s, bytes netmask,
                    BatchScheduler sched=None, row_dest=(), bint live=True):
        """Create or update service ``idx``.  ``sched``: a C scheduler
        (its rows in ``row_dest`` order map to engine dest ids) or None
        for the Python callback; ``netmask``: 16 mask bytes."""
        cdef ipvs_csvc *s
        cdef uint32_t n
        cdef int i
        if idx < 0:
            raise ValueError(f"service index {idx} is negative")
        _check16("addr", addr)
        _check16("netmask", netmask)
        if sched is not None:
            # the packet path reads row_dest[0..rows-1] and the dests they
            # name without further checks
            if len(row_dest) < sched.s.n:
                raise ValueError(f"row_dest has {len(row_dest)} entries, the "
                                 f"scheduler {sched.s.n} rows")
            for i in range(sched.s.n):
                if not 0 <= row_dest[i] < <int>self.e.ndests:
                    raise IndexError(f"row {i}: no dest {row_dest[i]}")
        if <uint32_t>idx >= self.e.nsvcs:
            n = idx + 1
            s = <ipvs_csvc *>realloc(self.e.svcs, n * sizeof(ipvs_csvc))
            if s == NULL:
                raise MemoryError()
            memset(&s[self.e.nsvcs], 0, (n - self.e.nsvcs) * sizeof(ipvs_csvc))
            self.e.svcs = s
            self.e.nsvcs = n
            while len(self._svc_keep) < n:
                self._svc_keep.append(None)
        s = &self.e.svcs[idx]
        memcpy(s.addr, <char *>addr, 16)
        memcpy(s.netmask, <char *>netmask, 16)
        s.port = _ntohs(port)
        s.af, s.protocol, s.fwmark, s.flags = af, protocol, fwmark, flags
        s.timeout = <uint32_t>(timeout_s * self.e.hz)
        s.live = live
        free(s.row_dest)
        s.row_dest = NULL
        s.sched = NULL
        if sched is not None:
            s.row_dest = <int32_t *>malloc(max(len(row_dest), 1) * 4)
            if s.row_dest == NULL:
                raise MemoryError()
            for i in range(len(row_dest)):
                s.row_dest[i] = row_dest[i]
            s.sched = &sched.s
        self._svc_keep[idx] = sched
        ipvs_svc_index_mark_dirty(&self.e.sidx)

    def use_service_scan(self, bint on):
        """Find services by scanning them all (what the engine did before
        its index) instead of the index: for bench/bench_ctl.py's
        before/after in one run.  Off by default."""
        self.e.svc_scan = on

    def service_for(self, int af, int proto, bytes daddr, int dport,
                    int fwmark=0, bint scan=False):
        """Engine index of the service a new conn to ``daddr:dport`` (16
        raw bytes, host-order port) with ``fwmark`` gets
        (ip_vs_service_find: fwmark, the tuple, FTP, port zero), or -1.
        ``scan=True`` answers by scanning every service instead of the
        index (ipvs_svcindex.h): the reference the tests compare with."""
        cdef ipvs_pkt p
        if len(daddr) != 16:
            raise ValueError("daddr must be 16 raw bytes")
        if not 0 <= dport <= 0xFFFF:
            raise ValueError(f"dport {dport} is outside 0..65535")
        memset(&p, 0, sizeof(p))
        memcpy(p.daddr, <char *>daddr, 16)
        p.af, p.protocol, p.fwmark = af, proto, fwmark
        p.dport = _ntohs(dport)
        return ipvs_svc_find_scan(&self.e, &p) if scan else \
            ipvs_svc_find(&self.e, &p)

    # -- packets ---------------------------------------------------------
    def packet(self, int af, int proto, bytes saddr, int sport, bytes daddr,
               int dport, int flags=0, int fwmark=0, int length=0,
               int direction=0, now=None):
        """One packet at ``now`` jiffies (default: the engine clock).
        Returns (action name, dest index or -1, conn id or -1)."""
        cdef ipvs_pkt p
        cdef ipvs_verdict v
        cdef uint32_t t = self.e.now if now is None else <uint32_t>now
        memset(&p, 0, sizeof(p))
        if len(saddr) != 16 or len(daddr) != 16:
            raise ValueError("addresses are 16 raw bytes")
        memcpy(p.saddr, <char *>saddr, 16)
        memcpy(p.daddr, <char *>daddr, 16)
        p.sport = _ntohs(sport)
        p.dport = _ntohs(dport)
        p.af, p.protocol, p.flags, p.dir = af, proto, flags, direction
        p.fwmark, p.len = fwmark, length
        self._cb_exc = None
        v = ipvs_packet(&self.e, &p, t)
        self._after()
        return (_ACTIONS[v.action], v.dest,
                -1 if v.conn == IPVS_CONN_NONE else v.conn)

    cdef int _after(self) except -1:
        if iht_resize_pending(&self.e.tab):
            iht_maybe_resize(&self.e.tab)
        if self.e.cb_error:
            self.e.cb_error = 0
            exc, self._cb_exc = self._cb_exc, None
            raise exc
        return 0

    def packet_traced(self, int af, int proto, bytes saddr, int sport,
                      bytes daddr, int dport, int flags=0, int fwmark=0,
                      int length=0, now=None):
        """:meth:`packet` (client direction) with the decision trace on:
        returns (action, dest, conn, steps, lost); ``steps`` are tuples
        (kind, a, b, c, d, x, y, z) as ``include/ipvs_trace.h`` defines
        them, ``lost`` the steps that did not fit."""
        cdef ipvs_trace tr
        cdef uint32_t i
        if len(saddr) != 16 or len(daddr) != 16:
            raise ValueError("addresses are 16 raw bytes")
        # room for every dest row of the largest service plus the fixed
        # steps (a few per decision point)
        tr.n = tr.lost = 0
        tr.cap = 64 + self.e.ndests
        tr.steps = <ipvs_trace_step *>PyMem_Malloc(
            tr.cap * sizeof(ipvs_trace_step))
        if tr.steps == NULL:
            raise MemoryError()
        self.e.trace = &tr
        try:
            act, did, cid = self.packet(af, proto, saddr, sport, daddr,
                                        dport, flags, fwmark, length, 0, now)
        finally:
            self.e.trace = NULL
            steps = [(tr.steps[i].kind, tr.steps[i].a, tr.steps[i].b,
                      tr.steps[i].c, tr.steps[i].d, tr.steps[i].x,
                      tr.steps[i].y, tr.steps[i].z) for i in range(tr.n)]
            PyMem_Free(tr.steps)
        return act, did, cid, steps, tr.lost

    def set_dest_conns(self, int idx, int active, int inactive):
        """Seed dest ``idx``'s ActiveConn/InActConn (a model read from a
        live kernel starts with the kernel's counts, which lc/wlc/sed/nq
        and the thresholds read)."""
        if not 0 <= idx < <int>self.e.ndests or active < 0 or inactive < 0:
            raise ValueError(f"dest {idx}: counters must be >= 0")
        self.e.dests[idx].activeconns = active
        self.e.dests[idx].inactconns = inactive

    def replay(self, batch, times, int32_t[::1] dest_out,
               uint8_t[::1] action_out):
        """Run every row of a PacketBatch in order without the GIL;
        ``times`` are jiffies (uint32).  Fills ``dest_out`` (engine dest
        id or -1) and ``action_out`` (0 pass, 1 forward, 2 drop)."""
        cdef const uint8_t[:, ::1] sa = np.ascontiguousarray(batch.saddr)
        cdef const uint8_t[:, ::1] da = np.ascontiguousarray(batch.daddr)
        cdef const uint8_t[::1] proto = np.ascontiguousarray(batch.proto)
        cdef const uint8_t[::1] af = np.ascontiguousarray(batch.af)
        cdef const uint16_t[::1] sp = np.ascontiguousarray(batch.sport)
        cdef const uint16_t[::1] dp = np.ascontiguousarray(batch.dport)
        cdef const uint8_t[::1] fl = np.ascontiguousarray(batch.tcp_flags)
        cdef const uint32_t[::1] fw = np.ascontiguousarray(batch.fwmark)
        cdef const uint32_t[::1] ln = np.ascontiguousarray(batch.length)
        cdef const uint8_t[::1] dr = np.ascontiguousarray(batch.direction)
        cdef const uint32_t[::1] tm = np.ascontiguousarray(times, dtype=np.uint32)
        cdef Py_ssize_t n = proto.shape[0], i
        cdef ipvs_pkt p
        cdef ipvs_verdict v
        cdef iht_bl_head *ring[PF_RING]
        cdef Py_ssize_t j
        cdef uint16_t a, b
        # ICMP rows (ipvs_icmp.h): the batch's optional icmp column
        cdef IcmpColumns icmp = (None if batch.icmp is None
                                 else IcmpColumns(batch.icmp))
        cdef ipvs_icmp ic
        cdef const ipvs_icmp *icp = NULL
        memset(&p, 0, sizeof(p))
        memset(ring, 0, sizeof(ring))
        self._cb_exc = None
        with nogil:
            for i in range(n):
                # three-stage prefetch: bucket PF_DIST rows ahead, its
                # first conn PF_DIST/2 ahead, the second PF_DIST/4 ahead
                # (hints only)
                j = i + PF_DIST
                if j < n:
                    a = _ntohs(sp[j])
                    b = _ntohs(dp[j])
                    ring[j & (PF_RING - 1)] = ipvs_prefetch_bucket(
                        &self.e, af[j], proto[j], <const uint32_t *>&sa[j, 0],
                        a, <const uint32_t *>&da[j, 0], b, dr[j])
                j = i + PF_DIST // 2
                if j < n:
                    ipvs_prefetch_conn(ring[j & (PF_RING - 1)])
                j = i + PF_DIST // 4
                if j < n:
                    ipvs_prefetch_next(ring[j & (PF_RING - 1)])
                memcpy(p.saddr, &sa[i, 0], 16)
                memcpy(p.daddr, &da[i, 0], 16)
                p.sport = _ntohs(sp[i])
                p.dport = _ntohs(dp[i])
                p.af = af[i]
                p.protocol = proto[i]
                p.flags = fl[i]
                p.dir = dr[i]
                p.fwmark = fw[i]
                p.len = ln[i]
                if icmp is not None:
                    icp = icmp.row(i, &ic)
                v = ipvs_packet_icmp(&self.e, &p, icp, tm[i], NULL)
                if self.e.cb_error:
                    break
                dest_out[i] = v.dest
                action_out[i] = v.action
                if iht_resize_pending(&self.e.tab):
                    iht_maybe_resize(&self.e.tab)
                    memset(ring, 0, sizeof(ring))   # buckets of a freed array
        self._after()
        return n

    # -- timers and conns ------------------------------------------------
    def run_timers(self, uint32_t until):
        """Expire every conn due by ``until`` jiffies; returns the count."""
        cdef uint64_t r
        with nogil:
            r = ipvs_run_timers(&self.e, until)
        return r

    def maybe_resize(self):
        """conn_resize_work_handler(): grow or shrink to the desired size."""
        return iht_maybe_resize(&self.e.tab)

    def random_dropentry(self):
        """ip_vs_random_dropentry() once; returns the conns dropped."""
        return ipvs_random_dropentry(&self.e)

    @property
    def dropentry(self):
        """Conns dropped by drop-entry so far."""
        return self.e.dropentry

    def seed(self, uint64_t s):
        """Seed the drop-entry scan's random bucket choice."""
        self.e.rng = s or 1

    def expire_conn(self, uint32_t cid):
        """Expire conn ``cid`` now (ip_vs_conn_expire_now)."""
        if cid >= self.e.bump or not ipvs_conn_of(&self.e, cid).in_use:
            raise IndexError(f"no conn {cid}")
        ipvs_conn_expire_now(&self.e, cid)

    @property
    def now(self):
        return self.e.now

    @property
    def nconns(self):
        return self.e.nconns

    @property
    def no_cport(self):
        return self.e.no_cport

    @property
    def ntemplates(self):
        return self.e.ntemplates

    @property
    def timers_pending(self):
        return self.e.heap_n

    @property
    def table_count(self):
        """Entries in the conn table, as the table counts them for its
        resize thresholds (a conn or template is one entry)."""
        return iht_count(&self.e.tab)

    def table_info(self):
        """(size, bits, lfactor) of the current array."""
        cdef iht_tbl tb
        if iht_snapshot(&self.e.tab, &tb) != 0:
            return (0, 0, 0)
        return (tb.size, tb.bits, tb.lfactor)

    def histogram(self):
        """Chain lengths: [empty, len-1, ..., len-7+] (hash nodes)."""
        cdef uint64_t out[9]
        iht_histogram(&self.e.tab, out)     # [walked, empty, len-1..7+]
        return [out[i] for i in range(1, 9)]

    def memory(self):
        """Bytes held, by part: ``conn_slots`` (every slot of the mapped
        chunks, used or free), ``timer_heap`` (its allocated capacity),
        ``buckets`` (heads of every live array), ``locks`` (seqcounts,
        stripe locks, array headers), ``total``; and ``conn_bytes``, one
        slot.  Capacities, not just what is in use: what the process
        holds."""
        d = {"conn_slots": self.e.nslots * CONN_BYTES,
             "timer_heap": self.e.heap_cap * 8,
             "buckets": iht_mem_bytes(&self.e.tab.mem, IHT_MEM_BUCKETS),
             "locks": iht_mem_bytes(&self.e.tab.mem, IHT_MEM_LOCKS)}
        d["total"] = sum(d.values())
        d["conn_bytes"] = CONN_BYTES
        return d

    # -- tuning statistics (ipvs_py.tune) ----------------------------------
    def count_walks(self, bint on=True):
        """Start (reset to zero) or stop counting the nodes each conn
        lookup walks (iht_walkstats.h); read them with :meth:`table_stats`."""
        iht_walk_stats_attach(&self.e.tab, NULL)
        if on:
            iht_walk_stats_reset(&self.ws)
            iht_walk_stats_attach(&self.e.tab, &self.ws)

    def table_stats(self):
        """The conn table's own counters: walk counts since
        :meth:`count_walks` (``lookups``, ``hits``, ``walked``, ``hist``),
        rebuilds (``resizes``, ``pause_max_ns``, ``pause_total_ns``) and
        bytes (``bucket_bytes`` heads, ``lock_bytes`` seqcounts/locks/array
        headers, ``conn_bytes`` conn slots in use or free)."""
        d = walk_stats_dict(&self.ws)
        d.update(pause_stats_dict(&self.e.tab))
        m = self.memory()
        d["bucket_bytes"] = m["buckets"]
        d["lock_bytes"] = m["locks"]
        d["conn_bytes"] = m["conn_slots"]
        return d

    def time_lookups(self, batch, const int64_t[::1] rows):
        """Client-direction (hn0) lookups of ``batch``'s rows ``rows``, in
        that order, without the GIL and without touching the conns.
        Returns ``(hits, nanoseconds)`` of the whole loop."""
        cdef const uint8_t[:, ::1] sa = np.ascontiguousarray(batch.saddr)
        cdef const uint8_t[:, ::1] da = np.ascontiguousarray(batch.daddr)
        cdef const uint8_t[::1] proto = np.ascontiguousarray(batch.proto)
        cdef const uint8_t[::1] af = np.ascontiguousarray(batch.af)
        cdef const uint16_t[::1] sp = np.ascontiguousarray(batch.sport)
        cdef const uint16_t[::1] dp = np.ascontiguousarray(batch.dport)
        cdef Py_ssize_t n = proto.shape[0], i, r
        cdef uint64_t hits = 0
        cdef timespec a, b
        if not (sa.shape[0] == da.shape[0] == af.shape[0] == sp.shape[0]
                == dp.shape[0] == n and sa.shape[1] == da.shape[1] == 16):
            raise ValueError("batch columns differ in length or address "
                             "width")
        for i in range(rows.shape[0]):
            if not 0 <= rows[i] < n:
                raise IndexError(f"rows[{i}] = {rows[i]} is outside the "
                                 f"batch of {n} rows")
        with nogil:
            clock_gettime(CLOCK_MONOTONIC, &a)
            for i in range(rows.shape[0]):
                r = rows[i]
                if ipvs_engine_lookup(&self.e, af[r], proto[r],
                                      <const uint32_t *>&sa[r, 0],
                                      _ntohs(sp[r]),
                                      <const uint32_t *>&da[r, 0],
                                      _ntohs(dp[r]), 0) != NULL:
                    hits += 1
            clock_gettime(CLOCK_MONOTONIC, &b)
        return hits, (b.tv_sec - a.tv_sec) * 1000000000 + (b.tv_nsec - a.tv_nsec)

    def conns(self):
        """Every conn (hn0 walk order, as /proc/net/ip_vs_conn) as tuples
        (id, af, proto, caddr16, cport, vaddr16, vport, daddr16, dport,
        state, flags, expires_jiffies, dest, control, n_control, daf)."""
        cdef iht_walker w
        cdef ipvs_conn *c
        out = []
        iht_walk_start(&self.e.tab, &w)
        while True:
            c = _walk_next_conn(&w)
            if c == NULL:
                break
            out.append((c.id, c.af, c.protocol, (<char *>c.caddr)[:16],
                        _ntohs(c.cport), (<char *>c.vaddr)[:16],
                        _ntohs(c.vport), (<char *>c.daddr)[:16],
                        _ntohs(c.dport), c.state, c.flags, c.expires, c.dest,
                        -1 if c.control == IPVS_CONN_NONE else c.control,
                        c.n_control, c.daf))
        iht_walk_stop(&w)
        return out

    # -- session events (include/ipvs_events.h) --------------------------
    def events_on(self, uint32_t capacity=65536):
        """Start recording session events into a ring of ``capacity``
        64-byte entries (replacing an earlier ring and its events)."""
        if capacity == 0:
            raise ValueError("event ring capacity must be at least 1")
        self.events_off()
        cdef ipvs_events *ev
        ev = <ipvs_events *>PyMem_Malloc(sizeof(ipvs_events))
        if ev == NULL:
            raise MemoryError()
        ev.buf = PyMem_Malloc(<size_t>capacity * sizeof(ipvs_event))
        if ev.buf == NULL:
            PyMem_Free(ev)
            raise MemoryError(f"event ring of {capacity} entries")
        ev.cap, ev.n, ev.lost = capacity, 0, 0
        self._events = ev
        ipvs_events_attach(&self.e, ev)

    def events_off(self):
        """Stop recording; pending events are dropped."""
        if self._events != NULL:
            ipvs_events_attach(&self.e, NULL)
            PyMem_Free(self._events.buf)
            PyMem_Free(self._events)
            self._events = NULL

    def events_drain(self):
        """``(raw, lost)``: the recorded events as bytes (64 per event,
        layout of struct ipvs_event) and how many did not fit; empties the
        ring.  ``(b"", 0)`` when recording is off."""
        cdef ipvs_events *ev = self._events
        if ev == NULL:
            return b"", 0
        raw = (<char *>ev.buf)[:ev.n * sizeof(ipvs_event)]
        lost = ev.lost
        ev.n, ev.lost = 0, 0
        return raw, lost

    def events_snapshot(self):
        """An UP event (bytes, as :meth:`events_drain`) for every conn
        that is mirrorable now: the input of a full resynchronisation."""
        cdef iht_walker w
        cdef ipvs_conn *c
        cdef Py_ssize_t k = 0
        cdef Py_ssize_t cap = self.e.nconns
        out = bytearray(cap * sizeof(ipvs_event))
        cdef char *buf = out
        iht_walk_start(&self.e.tab, &w)
        while k < cap:
            c = _walk_next_conn(&w)
            if c == NULL:
                break
            if ipvs_ev_mirrorable(c) and ipvs_ev_state_ok(c, c.state):
                ipvs_ev_write(<ipvs_event *>(buf + k * sizeof(ipvs_event)),
                              c, IPVS_EV_UP, c.state)
                k += 1
        iht_walk_stop(&w)
        return bytes(out[:k * sizeof(ipvs_event)])

    def lookup_out(self, int af, int proto, bytes caddr, int cport,
                   bytes daddr, int dport):
        """Conn id found by the reply-direction (hn1) key, or -1."""
        return self._lookup(af, proto, caddr, cport, daddr, dport, 1)

    def lookup_in(self, int af, int proto, bytes caddr, int cport,
                  bytes vaddr, int vport):
        """Conn id found by the client-direction (hn0) key, or -1."""
        return self._lookup(af, proto, caddr, cport, vaddr, vport, 0)

    cdef object _lookup(self, int af, int proto, bytes r, int rport, bytes l,
                        int lport, int d):
        _check16("addresses", r)
        _check16("addresses", l)
        cdef ipvs_conn *c = ipvs_engine_lookup(&self.e, af, proto,
                                               <const uint32_t *><char *>r,
                                               _ntohs(rport),
                                               <const uint32_t *><char *>l,
                                               _ntohs(lport), d)
        return -1 if c == NULL else c.id


cdef extern from "ipvs_trace.h" nogil:
    cdef struct ipvs_trace_step:
        int32_t kind, a, b, c, d
        uint32_t x, y, z
    cdef struct ipvs_trace:
        uint32_t n, cap, lost
        ipvs_trace_step *steps


cdef extern from "ipvs_conn.h" nogil:
    struct iht_bl_head:
        pass
    iht_bl_head *ipvs_prefetch_bucket(ipvs_engine *e, uint8_t af,
                                      uint8_t proto, const uint32_t *s,
                                      uint16_t sp, const uint32_t *d,
                                      uint16_t dp, int dir)
    void ipvs_prefetch_conn(iht_bl_head *h)
    void ipvs_prefetch_next(iht_bl_head *h)
    ipvs_conn *ipvs_engine_lookup(ipvs_engine *e, int af, int proto,
                                  const uint32_t *r, uint16_t rport,
                                  const uint32_t *l, uint16_t lport, int dir)


cdef extern from "ipvs_events.h" nogil:
    cdef struct ipvs_events:
        void *buf
        uint32_t cap, n
        uint64_t lost
    cdef struct ipvs_event:
        pass
    enum:
        IPVS_EV_UP
    void ipvs_events_attach(ipvs_engine *e, ipvs_events *ev)
    bint ipvs_ev_mirrorable(const ipvs_conn *c)
    bint ipvs_ev_state_ok(const ipvs_conn *c, uint8_t state)
    void ipvs_ev_write(ipvs_event *x, const ipvs_conn *c, uint8_t kind,
                       uint8_t state)


