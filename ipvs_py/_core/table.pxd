# cython: language_level=3
"""C-level interface of the resizable hlist_bl table (``include/ipvs_table.h``).

Other core modules (the service table, the connection table) ``cimport``
the ``iht_*`` API from here and embed ``iht_node`` in their own C entries::

    from ipvs_py._core.table cimport iht_table, iht_node, iht_init, iht_insert

Everything in the extern blocks is ``nogil`` C.  The locking rules (which
call may block, what must not be held) are in the header's locking table.
"""
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t
from ipvs_py._core.hashing cimport ipvs_siphash_key_t


cdef extern from "ipvs_table.h" nogil:
    enum:
        IHT_TABLE_ID_MASK
        IHT_MOVE_LIMIT
        IHT_RETIRE_BATCH
        IHT_BATCH_SECTION
        IHT_HIST_MAXLEN
        IHT_LFACTOR_MIN
        IHT_LFACTOR_MAX
        IHT_BITS_MIN
        IHT_BITS_MAX
        IHT_TRACE_DOMAIN
        IHT_MEM_BUCKETS
        IHT_MEM_LOCKS
        IHT_MEM_ENTRIES
        IHT_MEM_META

    struct iht_node:
        pass                    # next/hash_key: the table's (8 bytes, in the cage)

    struct iht_bl_head:
        pass                    # first node's ref << 1 | lock bit (4 bytes)

    struct iht_lock_profile:
        int seqc_shift
        int seqc_max
        int locks
        int ncpus

    struct iht_tbl:
        int64_t size
        int64_t u_thresh
        int64_t l_thresh
        uint32_t table_id
        int lfactor
        int bits
        int nseqc
        int nlocks
        ipvs_siphash_key_t hash_key

    struct iht_mem:
        pass

    struct iht_table:
        int min_bits
        int max_bits
        iht_mem mem
        void *ctx

    struct iht_walker:
        pass

    struct iht_walk_stats:
        pass

    ctypedef uint32_t (*iht_node_hash_fn)(const iht_node *n,
                                          const ipvs_siphash_key_t *key,
                                          void *ctx)
    ctypedef uint32_t (*iht_key_hash_fn)(const void *key,
                                         const ipvs_siphash_key_t *hk,
                                         void *ctx)
    ctypedef int (*iht_key_cmp_fn)(const iht_node *n, const void *key,
                                   void *ctx)
    ctypedef void (*iht_key_src_fn)(ipvs_siphash_key_t *key, void *ctx)

    # sizing (pure)
    int64_t iht_desired_size(int have_tbl, int64_t n, int lfactor,
                             int min_bits, int max_bits, int64_t tbl_size,
                             int tbl_lfactor)
    void iht_thresholds(int64_t size, int lfactor, int min_bits,
                        int max_bits, int64_t *u, int64_t *l)
    void iht_lock_counts(int64_t size, const iht_lock_profile *p,
                         int *nseqc, int *nlocks)

    # life cycle
    int iht_init(iht_table *t, int min_bits, int max_bits, int lfactor,
                 const iht_lock_profile *prof, int shrink_on_remove,
                 iht_node_hash_fn node_hash, void *ctx)
    void iht_destroy(iht_table *t, void (*free_node)(iht_node *, void *),
                     void *ctx)
    void iht_set_key_source(iht_table *t, iht_key_src_fn fn, void *ctx)

    # read side
    unsigned int iht_read_lock(iht_table *t)
    void iht_read_unlock(iht_table *t, unsigned int slot)
    void iht_synchronize(iht_table *t)
    void iht_retire(iht_table *t, void *p, size_t size)
    void iht_reclaim(iht_table *t)
    int iht_retired_pending(iht_table *t)
    iht_node *iht_lookup(iht_table *t, const void *key, iht_key_hash_fn khash,
                         iht_key_cmp_fn cmp, void *ctx)
    void iht_lookup_batch(iht_table *t, size_t n, const uint8_t *keys,
                          size_t stride, iht_key_hash_fn khash,
                          iht_key_cmp_fn cmp,
                          void (*emit)(size_t, iht_node *, void *),
                          void *ctx, size_t pf_bytes)
    iht_tbl *iht_first_tbl(iht_table *t)
    iht_tbl *iht_next_tbl(iht_tbl *tb)
    iht_tbl *iht_newest_tbl(iht_table *t)
    uint32_t iht_build_hash_key(const iht_tbl *tb, uint32_t hash)
    int iht_same_table(const iht_tbl *tb, uint32_t hash_key)

    # writers
    int iht_insert(iht_table *t, iht_node *n, const void *key,
                   iht_key_hash_fn khash, void *ctx, int count_delta)
    int iht_unlink(iht_table *t, iht_node *n, int count_delta)
    iht_node *iht_remove_key(iht_table *t, const void *key,
                             iht_key_hash_fn khash, iht_key_cmp_fn cmp,
                             void *ctx, int count_delta)

    # resize
    int iht_resize(iht_table *t, int64_t size)
    int iht_maybe_resize(iht_table *t)
    int iht_set_lfactor(iht_table *t, int lfactor)

    # walking and statistics
    void iht_walk_start(iht_table *t, iht_walker *w)
    iht_node *iht_walk_next(iht_walker *w)
    void iht_walk_stop(iht_walker *w)
    void iht_histogram(iht_table *t, uint64_t *out)
    int64_t iht_count(iht_table *t)
    int iht_resize_pending(iht_table *t)
    int iht_get_lfactor(iht_table *t)
    uint64_t iht_resizes(iht_table *t)
    uint64_t iht_moved(iht_table *t)
    uint64_t iht_grace_periods(iht_table *t)
    uint64_t iht_read_retries(iht_table *t)
    uint64_t iht_max_wait_ns(iht_table *t)
    void iht_reset_wait_stats(iht_table *t)
    int iht_snapshot(iht_table *t, iht_tbl *out)
    uint64_t iht_pause_max_ns(iht_table *t)
    uint64_t iht_pause_total_ns(iht_table *t)
    void iht_walk_stats_attach(iht_table *t, iht_walk_stats *s)
    void iht_walk_stats_reset(iht_walk_stats *s)
    int64_t iht_mem_bytes(iht_mem *m, int cat)
    int64_t iht_mem_blocks(iht_mem *m, int cat)
    void *iht_mem_alloc(iht_mem *m, int cat, size_t size, int zero)
    void iht_mem_free(iht_mem *m, int cat, void *p, size_t size)


cdef extern from "iht_walkstats.h" nogil:
    enum:
        IHT_WALK_BINS
    void iht_walk_stats_read(iht_walk_stats *s, uint64_t *out)


cdef extern from "iht_cage.h" nogil:
    void iht_cage_usage(size_t *reserved, size_t *used, size_t *committed)


cdef extern from "iht_bytes.h" nogil:
    enum:
        IHB_ENTRY_HEADER
    struct ihb_ctx:
        size_t key_size
        size_t entry_size

    struct ihb_batch:
        ihb_ctx base
        uint64_t *values
        uint8_t *found
        uint64_t hits

    struct ihb_entry:
        uint64_t value

    ihb_entry *ihb_of(const iht_node *n)
    uint32_t ihb_key_hash(const void *key, const ipvs_siphash_key_t *hk,
                          void *ctx)
    uint32_t ihb_node_hash(const iht_node *n, const ipvs_siphash_key_t *hk,
                           void *ctx)
    int ihb_insert(iht_table *t, ihb_ctx *c, const uint8_t *key,
                   uint64_t value)
    int ihb_lookup(iht_table *t, ihb_ctx *c, const uint8_t *key,
                   uint64_t *value)
    size_t ihb_lookup_all(iht_table *t, ihb_ctx *c, const uint8_t *key,
                          uint64_t *out, size_t max)
    int ihb_remove(iht_table *t, ihb_ctx *c, const uint8_t *key,
                   uint64_t *value)
    int ihb_unlink_one(iht_table *t, ihb_ctx *c, const uint8_t *key,
                       uint64_t *value)
    uint64_t ihb_lookup_batch(iht_table *t, ihb_batch *b, const uint8_t *keys,
                              size_t n)
    void ihb_free_node(iht_node *n, void *ctx)


cdef dict walk_stats_dict(iht_walk_stats *s)
cdef dict pause_stats_dict(iht_table *t)


cdef class Table:
    cdef iht_table t
    cdef iht_walk_stats ws
    cdef ihb_ctx ctx
    cdef bint ready
    cdef readonly bint auto_resize
    cdef readonly str profile
    cdef readonly int ncpus

    cdef int _maybe_resize_nogil(self) except -1 nogil
    cdef bytes _key(self, object key, str name=*)
    cdef dict _snap(self)
