# Multi-core datapath of ConnEngine (issue 8): writer stripes, the flow
# cache and the multi-threaded replay (include/ipvs_mt.h).  Included by
# conntab.pyx so that these functions reach ConnEngine's C engine; the
# Python-facing API is ipvs_py.multicore.

cdef extern from "ipvs_stripe.h" nogil:
    enum:
        IPVS_STRIPES_DEFAULT
        IPVS_STRIPES_MAX
    struct iht_stripes:
        uint32_t n
    uint64_t iht_stripes_doubles(const iht_stripes *s)
    uint64_t iht_stripes_same(const iht_stripes *s)
    int iht_stripes_init(iht_stripes *s, uint32_t n)
    void iht_stripes_destroy(iht_stripes *s)

cdef extern from "ipvs_table.h" nogil:
    void iht_set_stripes(iht_table *t, iht_stripes *ws)

cdef extern from "ipvs_flowcache.h" nogil:
    enum:
        IPVS_FC_DEFAULT
        IPVS_FC_MAX
        IPVS_FC_LOAD_ONE
    struct ipvs_fc:
        int n
        int used
        uint32_t admit
        uint32_t min_load
        uint64_t hits, misses, admitted, rejected, bypassed, stale
    int ipvs_fc_init(ipvs_fc *fc, int n, uint32_t min_load, uint32_t admit)
    void ipvs_fc_flush(ipvs_fc *fc)

cdef extern from "ipvs_mt_rows.h" nogil:
    struct ipvs_mt_scratch:
        void *p
        size_t cap
    void ipvs_mt_scratch_free(ipvs_mt_scratch *s)
    uint32_t ipvs_mt_jiffies(double sec, double hz, uint32_t floor)
    struct ipvs_mt_batch:
        const uint8_t *saddr
        const uint8_t *daddr
        const uint8_t *proto
        const uint8_t *af
        const uint8_t *flags
        const uint8_t *dir
        const uint16_t *sport
        const uint16_t *dport
        const uint32_t *fwmark
        const uint32_t *len
        const uint32_t *times
        int32_t *dest_out
        uint8_t *action_out
        size_t n
        const double *seconds
        double hz
        uint32_t floor
    uint32_t ipvs_mt_row_shard(const ipvs_mt_batch *b, size_t i,
                               const uint32_t *mask, uint32_t nworkers)

cdef extern from "ipvs_mt.h" nogil:
    enum:
        IPVS_MT_MAX_WORKERS
    struct ipvs_mt_stats:
        uint64_t setup_ns, run_ns, finish_ns, workers_cpu_ns, workers_minflt
        uint64_t rows_cpu_ns[64]
        uint64_t rows_ns[64]
        uint64_t grace_periods, pool_grabs, bg_resizes, helped_buckets
        uint64_t fc_hits, fc_misses, fc_admitted, fc_rejected, fc_bypassed
        uint64_t fc_stale
        int64_t misrouted_queue, misrouted_row, misrouted_to
    int ipvs_mt_thread_limit
    # m: struct ipvs_engine * (declared later, in conntab.pyx)
    size_t ipvs_mt_heap_copy(const void *m, uint32_t *out, size_t cap)
    int ipvs_mt_replay(void *m, const ipvs_mt_batch *b, uint32_t nb,
                       uint32_t nworkers, const uint32_t *mask,
                       const ipvs_fc *fc_conf, uint32_t until,
                       ipvs_mt_scratch *scratch, ipvs_mt_stats *st)


def set_resize_help(ConnEngine eng, int mode):
    """Whether the workers of a multi-core replay move chunks of a table
    rebuild between packets: 1 always, 0 never (the resize thread alone,
    the kernel's way), -1 when the workers and the resize thread are more
    threads than online CPUs (the default)."""
    if mode not in (-1, 0, 1):
        raise ValueError(f"resize help must be -1, 0 or 1, got {mode}")
    eng.e.mt_resize_help = mode


def set_stripes(ConnEngine eng, int n):
    """Writer stripes of ``eng``'s conn table: ``n`` locks (a power of two,
    1..IPVS_STRIPES_MAX; 1 is one global lock) taken in increasing index
    order around every insert, delete, rehash and resize move; 0 turns
    them off (the bucket bit locks alone)."""
    if n != 0 and (n < 1 or n > IPVS_STRIPES_MAX or n & (n - 1)):
        raise ValueError(f"stripes must be 0 or a power of two in "
                         f"1..{IPVS_STRIPES_MAX}, got {n}")
    iht_set_stripes(&eng.e.tab, NULL)
    iht_stripes_destroy(&eng.stripes)
    if n:
        if iht_stripes_init(&eng.stripes, n) != 0:
            raise MemoryError("stripes")
        iht_set_stripes(&eng.e.tab, &eng.stripes)


def stripe_info(ConnEngine eng):
    """(stripes, double acquisitions, of which on one stripe)."""
    return (eng.stripes.n, iht_stripes_doubles(&eng.stripes),
            iht_stripes_same(&eng.stripes))


def set_flow_cache(ConnEngine eng, int entries, double min_load=4.0,
                   int admit=0):
    """Per-worker flow cache of ``entries`` (0 off, 1..IPVS_FC_MAX),
    consulted while conns > ``min_load`` x buckets; a flow enters it only
    if its previous packet came at most ``admit`` jiffies earlier."""
    if entries < 0 or entries > IPVS_FC_MAX:
        raise ValueError(f"flow cache entries must be 0..{IPVS_FC_MAX}, "
                         f"got {entries}")
    if not (0.0 <= min_load <= 1 << 20):
        raise ValueError(f"min_load must be 0..{1 << 20}, got {min_load}")
    if admit < 0:
        raise ValueError(f"admit must be >= 0 jiffies, got {admit}")
    eng.e.fc = NULL
    if entries:
        ipvs_fc_init(&eng.fc_conf, entries,
                     <uint32_t>(min_load * IPVS_FC_LOAD_ONE), admit)
        eng.e.fc = &eng.fc_conf
    else:
        eng.fc_conf.n = 0


def flow_cache_stats(ConnEngine eng):
    """Counters of the engine's own (single-thread) flow cache."""
    cdef ipvs_fc *f = &eng.fc_conf
    return {"entries": f.n, "hits": f.hits, "misses": f.misses,
            "admitted": f.admitted, "rejected": f.rejected,
            "bypassed": f.bypassed, "stale": f.stale}


cdef object _mt_batch(ipvs_mt_batch *b, batch, times,
                      int32_t[::1] dest_out, uint8_t[::1] action_out,
                      double hz, uint32_t floor, uint32_t *until):
    """Point ``b`` at the columns of ``batch`` (contiguous copies where
    they are not) and set ``until`` to its last row time.  Returns the
    arrays ``b`` points into: the caller keeps them until the run ends.
    ValueError names a column of the wrong length or shape."""
    sa_a = np.ascontiguousarray(batch.saddr)
    da_a = np.ascontiguousarray(batch.daddr)
    keep = [sa_a, da_a]
    cdef const uint8_t[:, ::1] sa = sa_a
    cdef const uint8_t[:, ::1] da = da_a
    cols = {}
    for name in ("proto", "af", "sport", "dport", "tcp_flags", "fwmark",
                 "length", "direction"):
        cols[name] = np.ascontiguousarray(getattr(batch, name))
        keep.append(cols[name])
    cdef const uint8_t[::1] proto = cols["proto"]
    cdef const uint8_t[::1] af = cols["af"]
    cdef const uint16_t[::1] sp = cols["sport"]
    cdef const uint16_t[::1] dp = cols["dport"]
    cdef const uint8_t[::1] fl = cols["tcp_flags"]
    cdef const uint32_t[::1] fw = cols["fwmark"]
    cdef const uint32_t[::1] ln = cols["length"]
    cdef const uint8_t[::1] dr = cols["direction"]
    cdef const uint32_t[::1] tm
    cdef const double[::1] secs
    cdef Py_ssize_t n = proto.shape[0]
    if times is None:
        if not hz > 0:
            raise ValueError(f"hz must be > 0 to convert batch.time, got {hz}")
        t_a = np.ascontiguousarray(batch.time, dtype=np.float64)
        secs = t_a
        ntimes = secs.shape[0]
    else:
        t_a = np.ascontiguousarray(times, dtype=np.uint32)
        tm = t_a
        ntimes = tm.shape[0]
    keep.append(t_a)
    for name, col in (("saddr", sa.shape[0]), ("daddr", da.shape[0]),
                      ("af", af.shape[0]), ("sport", sp.shape[0]),
                      ("dport", dp.shape[0]), ("tcp_flags", fl.shape[0]),
                      ("fwmark", fw.shape[0]), ("length", ln.shape[0]),
                      ("direction", dr.shape[0]), ("times", ntimes),
                      ("dest_out", dest_out.shape[0]),
                      ("action_out", action_out.shape[0])):
        if col != n:
            raise ValueError(f"{name} has {col} rows, proto has {n}")
    if n and (sa.shape[1] != 16 or da.shape[1] != 16):
        raise ValueError("addresses are 16 raw bytes per row")
    memset(b, 0, sizeof(b[0]))
    b.hz = hz
    b.floor = floor
    b.n = <size_t>n
    until[0] = 0
    if n == 0:
        return keep
    # timers due by the latest row time have run after one thread (its
    # clock never goes back), so after the workers too; the conversion
    # is monotonic, so the latest row time is that of the latest seconds
    if times is None:
        b.seconds = &secs[0]
        until[0] = ipvs_mt_jiffies(np.max(t_a), hz, floor)
    else:
        b.times = &tm[0]
        until[0] = <uint32_t>np.max(t_a)
    b.saddr = &sa[0, 0]
    b.daddr = &da[0, 0]
    b.proto = &proto[0]
    b.af = &af[0]
    b.flags = &fl[0]
    b.dir = &dr[0]
    b.sport = &sp[0]
    b.dport = &dp[0]
    b.fwmark = &fw[0]
    b.len = &ln[0]
    b.dest_out = &dest_out[0]
    b.action_out = &action_out[0]
    return keep


cdef _check_mt_args(bytes mask, Py_ssize_t nworkers, str what):
    if len(mask) != 16:
        raise ValueError("mask is 16 bytes")
    if nworkers < 1 or nworkers > IPVS_MT_MAX_WORKERS:
        raise ValueError(f"{what} must be 1..{IPVS_MT_MAX_WORKERS}, "
                         f"got {nworkers}")


cdef dict _mt_run(ConnEngine eng, ipvs_mt_batch *b, uint32_t nb,
                  int nworkers, bytes mask, uint32_t until):
    """ipvs_mt_replay without the GIL; its statistics as a dict.  Raises
    ValueError for a Python scheduler or a row in the wrong queue (the
    engine unchanged), MemoryError."""
    cdef ipvs_mt_stats st
    cdef uint32_t m[4]
    cdef int rc
    cdef const ipvs_fc *fcc = &eng.fc_conf if eng.fc_conf.n else NULL
    memcpy(m, <char *>mask, 16)
    if eng.e.sidx.dirty:
        # the workers only read the service index (ipvs_svcindex.h)
        ipvs_svc_index_build(&eng.e.sidx, eng.e.svcs, eng.e.nsvcs)
    with nogil:
        rc = ipvs_mt_replay(&eng.e, b, nb, nworkers, m, fcc, until,
                            &eng.mt_scratch, &st)
    if rc == -18:       # EXDEV: nothing ran
        raise ValueError(
            f"queue {st.misrouted_queue} row {st.misrouted_row}: its client "
            f"belongs to queue {st.misrouted_to} of {nworkers} (split the "
            f"trace with ipvs_py.multicore.rss_queues); nothing was replayed")
    if eng._events != NULL:
        # worker clones start from zeroed engines and record no session
        # events: count the run as lost events, so the reader
        # (ipvs_py.bpf.feed) resyncs from a table walk at its next drain
        eng._events.lost += 1
    if rc == -22:
        raise ValueError("multi-core replay needs a C scheduler for every "
                         "service (no Python scheduler callback)")
    if rc != 0:
        raise MemoryError("multi-core replay")
    return {"setup_ns": st.setup_ns, "run_ns": st.run_ns,
            "finish_ns": st.finish_ns, "workers_cpu_ns": st.workers_cpu_ns,
            "workers_minflt": st.workers_minflt,
            "rows_cpu_ns": [st.rows_cpu_ns[k] for k in range(nworkers)],
            "rows_ns": [st.rows_ns[k] for k in range(nworkers)],
            "grace_periods": st.grace_periods, "pool_grabs": st.pool_grabs,
            "bg_resizes": st.bg_resizes,
            "helped_buckets": st.helped_buckets,
            "fc_hits": st.fc_hits, "fc_misses": st.fc_misses,
            "fc_admitted": st.fc_admitted, "fc_rejected": st.fc_rejected,
            "fc_bypassed": st.fc_bypassed, "fc_stale": st.fc_stale}


def replay_mt(ConnEngine eng, batch, times, int nworkers, bytes mask,
              int32_t[::1] dest_out, uint8_t[::1] action_out,
              double hz=0.0, uint32_t floor=0):
    """``eng.replay`` on ``nworkers`` threads sharing the engine (see
    include/ipvs_mt.h), the workers sharding the rows by client.
    ``times``: jiffies per row, or None for the workers to convert
    ``batch.time`` themselves, as ConnPath.replay does (max(round(t *
    hz), floor)), which saves the single-threaded pass and its 56 MB of
    numpy temporaries for 2M rows.  Every row of
    ``dest_out``/``action_out`` is written.  Returns the run's
    statistics as a dict."""
    cdef ipvs_mt_batch b
    cdef uint32_t until
    keep = _mt_batch(&b, batch, times, dest_out, action_out, hz, floor,
                     &until)
    _check_mt_args(mask, nworkers, "workers")
    if b.n == 0:
        return {}
    st = _mt_run(eng, &b, 1, nworkers, mask, until)
    del keep
    return st


def replay_mt_queues(ConnEngine eng, batches, bytes mask, dests, codes,
                     double hz, uint32_t floor=0):
    """One worker per batch of ``batches`` (RSS queues: every row of
    batch k must be a row of worker k, as ``shard_rows`` splits a trace),
    each writing its verdicts into ``dests[k]``/``codes[k]`` (int32 and
    uint8 arrays of its length); the workers convert the times as
    ``replay_mt`` does.  ValueError names the first row in a wrong queue,
    before anything changes."""
    cdef Py_ssize_t nq = len(batches), k
    cdef ipvs_mt_batch *bs
    cdef uint32_t until = 0, u
    cdef int any_rows = 0
    _check_mt_args(mask, nq, "queues")
    if len(dests) != nq or len(codes) != nq:
        raise ValueError(f"{nq} queues need {nq} dest and code arrays, "
                         f"got {len(dests)} and {len(codes)}")
    bs = <ipvs_mt_batch *>calloc(nq, sizeof(ipvs_mt_batch))
    if bs == NULL:
        raise MemoryError("queues")
    try:
        keep = []
        for k in range(nq):
            try:
                keep.append(_mt_batch(&bs[k], batches[k], None, dests[k],
                                      codes[k], hz, floor, &u))
            except ValueError as exc:
                raise ValueError(f"queue {k}: {exc}") from None
            if bs[k].n:
                any_rows = 1
                if u > until:
                    until = u
        if not any_rows:
            return {}
        return _mt_run(eng, bs, <uint32_t>nq, <int>nq, mask, until)
    finally:
        free(bs)


def shard_rows(batch, bytes mask, int nworkers):
    """The worker of every row of ``batch`` in a multi-core replay on
    ``nworkers`` (ipvs_mt_shard_of of its client address under ``mask``,
    16 bytes): a uint8 array.  What splits a trace into RSS queues."""
    cdef const uint8_t[:, ::1] sa = np.ascontiguousarray(batch.saddr)
    cdef const uint8_t[:, ::1] da = np.ascontiguousarray(batch.daddr)
    cdef const uint8_t[::1] dr = np.ascontiguousarray(batch.direction)
    cdef Py_ssize_t n = dr.shape[0], i
    cdef uint32_t m[4]
    cdef ipvs_mt_batch b            # the address columns only
    _check_mt_args(mask, nworkers, "workers")
    if sa.shape[0] != n or da.shape[0] != n or (
            n and (sa.shape[1] != 16 or da.shape[1] != 16)):
        raise ValueError("addresses are 16 raw bytes per row, one per row")
    memcpy(m, <char *>mask, 16)
    out = np.empty(n, np.uint8)
    cdef uint8_t[::1] o = out
    if n == 0:
        return out
    memset(&b, 0, sizeof(b))
    b.saddr = &sa[0, 0]
    b.daddr = &da[0, 0]
    b.dir = &dr[0]
    with nogil:
        for i in range(n):
            o[i] = <uint8_t>ipvs_mt_row_shard(&b, i, m, nworkers)
    return out


def timer_heap(ConnEngine eng):
    """The engine's timer heap as an (n, 2) uint32 array of (expires,
    conn id | IPVS_TIMER_TMPL) in heap order (tests check its shape and
    contents after multi-core runs)."""
    out = np.empty((ipvs_mt_heap_copy(&eng.e, NULL, 0), 2), np.uint32)
    cdef uint32_t[:, ::1] o = out
    if o.shape[0]:
        ipvs_mt_heap_copy(&eng.e, &o[0, 0], o.shape[0])
    return out


def mt_jiffies(double sec, double hz, uint32_t floor):
    """The workers' conversion of a row time (ipvs_mt_rows.h): must equal
    ConnPath.replay's np.maximum(np.round(t * hz), floor).astype(uint32)."""
    return ipvs_mt_jiffies(sec, hz, floor)


def mt_thread_limit(int n):
    """Start at most ``n`` threads besides the caller's per multi-core
    replay (-1: no limit); the workers without a thread run on the
    caller's thread after the others, as when pthread_create fails.  For
    tests of that path."""
    global ipvs_mt_thread_limit
    ipvs_mt_thread_limit = n


def jiffies_column(seconds, double hz, uint32_t floor):
    """uint32 jiffies of every row time: max(round(t * hz), floor), as
    ``mt_jiffies`` per row (numpy's rounding), in one pass without the
    float temporaries of np.maximum(np.round(t * hz), floor).astype()
    (56 MB for 2M rows, whose page faults varied with the runs before;
    docs/multicore.md)."""
    cdef const double[::1] t = np.ascontiguousarray(seconds, dtype=np.float64)
    out = np.empty(t.shape[0], np.uint32)
    cdef uint32_t[::1] o = out
    cdef Py_ssize_t i
    if not hz > 0:
        raise ValueError(f"hz must be > 0, got {hz}")
    with nogil:
        for i in range(t.shape[0]):
            o[i] = ipvs_mt_jiffies(t[i], hz, floor)
    return out
