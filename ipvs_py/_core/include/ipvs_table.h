/* ipvs_table.h - resizable hlist_bl hash table (the kernel's ip_vs_rht).
 *
 * Provenance: a user-space re-implementation of the IPVS resizable hash
 * tables (commit b655388111cf "ipvs: add resizable hash tables", and their
 * users in ip_vs_conn.c / ip_vs_ctl.c), whose design follows relativistic
 * hash tables (Triplett, McKenney, Walpole, USENIX ATC '11) as rhashtable
 * does.  Written from the kernel's description, not copied.
 *
 * Model:
 * - Buckets are hlist_bl heads (hlist_bl.h): bit 0 of the head is the
 *   bucket lock.  Entries embed struct iht_node; node->hash_key holds the
 *   table id (bit 31) and the low 31 bits of the entry's hash, so an entry
 *   is unlinked without re-hashing and lookups filter on it before the full
 *   key compare.  Duplicate keys are allowed.
 * - Each bucket array (struct iht_tbl) has its own random 128-bit siphash
 *   key.  A resize allocates a new array with a fresh key and the table id
 *   flipped, links it as old->new_tbl (inserts go there from then on,
 *   lookups walk old then new), moves the entries bucket by bucket, at most
 *   IHT_MOVE_LIMIT per lock hold, inside the bucket stripe's seqcount
 *   writer section, then installs the new array and frees the old one
 *   after a grace period.
 * - Lookups are lock-free: a hit is final; a miss is confirmed by the
 *   bucket's seqcount (unchanged and even) or the bucket is walked again,
 *   so a lookup never misses an entry that stays present.
 * - Memory of unlinked entries and old arrays is reclaimed after a grace
 *   period of the table's own read-side sections (iht_rcu.h), the user-space
 *   stand-in for RCU.
 *
 * Locking order (take top to bottom, never upwards):
 *
 *   #  lock                        protects                    notes
 *   1  resize_lock (mutex)         one resizer; walkers see    may allocate ->
 *                                  no moves                    tracemalloc (GIL)
 *   2  retire_lock (mutex)         the retire list             frees -> GIL
 *   3  rcu.gp_lock (mutex)         one grace period at a time  waits for readers
 *   4  read-side section           arrays/entries stay mapped  never wait for 1-3
 *                                                              inside one
 *   5  stripe lock tbl->lock[b & lock_mask]
 *                                  seqcount writers of stripe
 *   6  seqcount writer section     readers retry the stripe
 *   6b writer stripes t->ws        optional (ipvs_stripe.h): every
 *                                  insert/unlink/rehash/move; two in
 *                                  INCREASING INDEX ORDER
 *   7  bucket bit lock             the chain; OLD TABLE BEFORE NEW TABLE;
 *                                  two buckets of one table: lower address
 *                                  first
 *
 *   GIL: never wait for 1-7 while holding the GIL (the Python layer calls
 *   every blocking function `with nogil`); never take the GIL while holding
 *   5-7 (allocation, hence tracemalloc, happens outside them).
 *
 * Debug builds (IPVS_PY_DEBUG=1) check lock ownership with assertions that
 * compile out otherwise.
 */
#ifndef IPVS_PY_IPVS_TABLE_H
#define IPVS_PY_IPVS_TABLE_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "siphash.h"
#include "hlist_bl.h"
#include "seqcount.h"
#include "iht_rcu.h"
#include "iht_mem.h"
#include "iht_sizing.h"
#include "iht_walkstats.h"
#include "ipvs_stripe.h"

#if defined(IPVS_PY_DEBUG) && IPVS_PY_DEBUG
#include <assert.h>
#define IHT_ASSERT(x) assert(x)
#else
#define IHT_ASSERT(x) ((void)0)
#endif

#define IHT_TABLE_ID_MASK	0x80000000u
#define IHT_MOVE_LIMIT		64	/* entries moved per bucket lock hold */
#define IHT_MOVE_PREFETCH	8	/* buckets a resize looks ahead */
#define IHT_MOVE_SECTION	64	/* buckets per read-side section */
#define IHT_RETIRE_BATCH	1024	/* unlinked entries per grace period */
#define IHT_BATCH_SECTION	4096	/* batch keys per read-side section */
#define IHT_BATCH_WAYS		32	/* batch lookups in flight (AMAC) */

/* One bucket array: the kernel's struct ip_vs_rht. */
struct iht_tbl {
	struct iht_bl_head *buckets;
	_Atomic(struct iht_tbl *) new_tbl;	/* self when no resize */
	iht_seqcount *seqc;
	struct iht_spinlock *lock;		/* NULL when nlocks == 0 */
	uint32_t mask;
	uint32_t seqc_mask;
	uint32_t lock_mask;
	uint32_t table_id;			/* 0 or IHT_TABLE_ID_MASK */
	int64_t size;
	int64_t u_thresh;
	int64_t l_thresh;
	int lfactor;
	int bits;
	int nseqc;
	int nlocks;
	ipvs_siphash_key_t hash_key;
	struct iht_tbl *deferred_next;		/* iht_defer_frees() list */
	/* a resize out of this array, moved in chunks (iht_move_chunks):
	 * open once no insert targets it any more; next chunk to claim;
	 * buckets moved so far */
	_Atomic int move_open;
	_Atomic int64_t move_next, move_done;
};

/* Hash of an entry, from its node, under @key (used by the resizer). */
typedef uint32_t (*iht_node_hash_fn)(const struct iht_node *n,
				     const ipvs_siphash_key_t *key, void *ctx);
/* Hash of a lookup key under @hk. */
typedef uint32_t (*iht_key_hash_fn)(const void *key,
				    const ipvs_siphash_key_t *hk, void *ctx);
/* Nonzero when node @n matches lookup key @key. */
typedef int (*iht_key_cmp_fn)(const struct iht_node *n, const void *key,
			      void *ctx);
/* Fills the hash key of a new bucket array (see iht_set_key_source()).
 * Called with resize_lock held or from iht_set_key_source(); must not
 * block or take the GIL. */
typedef void (*iht_key_src_fn)(ipvs_siphash_key_t *key, void *ctx);

struct iht_retired {
	void *p;
	size_t size;
};

/* The table: the kernel's ipvs->conn_tab pointer plus its resize work. */
struct iht_table {
	_Atomic(struct iht_tbl *) tbl;		/* current (oldest) array */
	struct iht_rcu rcu;
	pthread_mutex_t resize_lock;
	pthread_mutex_t retire_lock;
	struct iht_retired *retired;		/* IHT_RETIRE_BATCH slots */
	int nretired;
	/* count 64 bytes away from its neighbours, so on a line of its own
	 * (padding, not _Alignas: the table lives in Python objects that
	 * are not 64-byte aligned): every insert and delete writes it, and
	 * the fields around are read on every packet by every worker of a
	 * multi-core replay (resize_requested); sharing a line made each new
	 * conn cost the other worker a cache miss */
	char count_pad0[64];
	_Atomic int64_t count;			/* entries (not nodes) */
	char count_pad1[64 - sizeof(int64_t)];
	_Atomic int resize_requested;		/* IP_VS_WORK_*_RESIZE bit */
	_Atomic int lfactor;			/* the lfactor sysctl */
	int min_bits;
	int max_bits;
	int shrink_on_remove;			/* svc: remove checks l_thresh */
	struct iht_lock_profile prof;
	iht_node_hash_fn node_hash;
	void *ctx;
	iht_key_src_fn key_src;			/* NULL: getrandom() keys */
	void *key_src_ctx;
	struct iht_mem mem;
	_Atomic uint64_t resizes;		/* completed rebuilds */
	_Atomic uint64_t moved;			/* entries moved by rebuilds */
	_Atomic uint64_t read_retries;		/* lookups that had to retry */
	_Atomic uint64_t max_wait_ns;		/* longest such retry wait */
	struct iht_walk_stats *_Atomic walk;	/* NULL: not counted */
	struct iht_pause_stats pause;		/* rebuild wall times */
	struct iht_stripes *ws;			/* writer stripes, NULL: bucket
						 * bit locks only (iht_set_stripes) */
	int defer_frees;			/* keep replaced arrays (under
						 * resize_lock) */
	struct iht_tbl *deferred;		/* ... until iht_defer_frees(0) */
};

/* ------------------------------------------------------------ helpers */

/* Build the per-table hash key: table id in bit 31, hash in bits 0..30. */
static inline uint32_t iht_build_hash_key(const struct iht_tbl *tb,
					  uint32_t hash)
{
	return tb->table_id | (hash & ~IHT_TABLE_ID_MASK);
}

/* Nonzero if @hash_key was built for table @tb (same table id). */
static inline int iht_same_table(const struct iht_tbl *tb, uint32_t hash_key)
{
	return !((tb->table_id ^ hash_key) & IHT_TABLE_ID_MASK);
}

/* Current (oldest) bucket array.  Context: read-side section or
 * resize_lock held. */
static inline struct iht_tbl *iht_first_tbl(struct iht_table *t)
{
	return atomic_load_explicit(&t->tbl, memory_order_acquire);
}

/* The array after @tb during a resize, NULL when @tb is the newest. */
static inline struct iht_tbl *iht_next_tbl(struct iht_tbl *tb)
{
	struct iht_tbl *n = atomic_load_explicit(&tb->new_tbl,
						 memory_order_acquire);
	return n == tb ? NULL : n;
}

/* The newest array: where inserts go. */
static inline struct iht_tbl *iht_newest_tbl(struct iht_table *t)
{
	struct iht_tbl *tb = iht_first_tbl(t);

	return atomic_load_explicit(&tb->new_tbl, memory_order_acquire);
}

static inline struct iht_bl_head *iht_bucket(struct iht_tbl *tb,
					     uint32_t hash_key)
{
	return &tb->buckets[hash_key & tb->mask];
}

static inline iht_seqcount *iht_seqc(struct iht_tbl *tb, uint32_t hash_key)
{
	return &tb->seqc[hash_key & tb->seqc_mask];
}

static inline void iht_random_key(ipvs_siphash_key_t *k)
{
	size_t got = 0;
	uint8_t *p = (uint8_t *)k;

	while (got < sizeof(*k)) {
		ssize_t r = getrandom(p + got, sizeof(*k) - got, 0);

		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got < sizeof(*k)) {
		/* No getrandom (old kernel / seccomp): a weak but distinct
		 * key; only collision resistance suffers, not correctness. */
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		k->key[0] ^= (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull;
		k->key[1] ^= (uint64_t)(uintptr_t)k ^ (uint64_t)ts.tv_sec;
	}
}

/* ------------------------------------------------------ bucket arrays */

/* Free an array from iht_tbl_alloc().  Context: no reader can reach it. */
static inline void iht_tbl_free(struct iht_table *t, struct iht_tbl *tb)
{
	if (!tb)
		return;
	iht_mem_free_big(&t->mem, IHT_MEM_BUCKETS, tb->buckets,
			 (size_t)tb->size * sizeof(*tb->buckets));
	iht_mem_free(&t->mem, IHT_MEM_LOCKS, tb->seqc,
		     (size_t)tb->nseqc * sizeof(*tb->seqc));
	iht_mem_free(&t->mem, IHT_MEM_LOCKS, tb->lock,
		     (size_t)tb->nlocks * sizeof(*tb->lock));
	iht_mem_free(&t->mem, IHT_MEM_LOCKS, tb, sizeof(*tb));
}

/* Allocate an empty array of @size buckets (a power of two) for @lfactor,
 * with a fresh random key, table id 0, thresholds set, new_tbl = self.
 * Context: no table lock held (may call tracemalloc).  NULL on ENOMEM. */
static inline struct iht_tbl *iht_tbl_alloc(struct iht_table *t,
					    int64_t size, int lfactor)
{
	struct iht_tbl *tb = iht_mem_alloc(&t->mem, IHT_MEM_LOCKS,
					   sizeof(*tb), 1);
	int i;

	if (!tb)
		return NULL;
	iht_lock_counts(size, &t->prof, &tb->nseqc, &tb->nlocks);
	tb->size = size;
	/* Zeroed: empty, unlocked heads.  Arrays of 2 MiB and more are
	 * mmap'd (zero pages, no memset) on transparent huge pages: measured
	 * 1M entries, lfactor -3 (64 MiB of heads): 37.9 -> 34.1 ns/lookup. */
	tb->buckets = iht_mem_alloc_big(&t->mem, IHT_MEM_BUCKETS,
					(size_t)size * sizeof(*tb->buckets));
	tb->seqc = iht_mem_alloc(&t->mem, IHT_MEM_LOCKS,
				 (size_t)tb->nseqc * sizeof(*tb->seqc), 1);
	if (tb->nlocks)
		tb->lock = iht_mem_alloc(&t->mem, IHT_MEM_LOCKS,
					 (size_t)tb->nlocks * sizeof(*tb->lock),
					 1);
	if (!tb->buckets || !tb->seqc || (tb->nlocks && !tb->lock)) {
		iht_tbl_free(t, tb);
		return NULL;
	}
	for (i = 0; i < tb->nseqc; i++)
		iht_seqcount_init(&tb->seqc[i]);
	atomic_init(&tb->move_open, 0);
	atomic_init(&tb->move_next, 0);
	atomic_init(&tb->move_done, 0);
	tb->mask = (uint32_t)(size - 1);
	tb->seqc_mask = (uint32_t)(tb->nseqc - 1);
	tb->lock_mask = tb->nlocks ? (uint32_t)(tb->nlocks - 1) : 0;
	tb->table_id = 0;
	tb->lfactor = lfactor;
	tb->bits = 0;
	while (((int64_t)1 << tb->bits) < size)
		tb->bits++;
	iht_thresholds(size, lfactor, t->min_bits, t->max_bits,
		       &tb->u_thresh, &tb->l_thresh);
	atomic_init(&tb->new_tbl, tb);
	if (t->key_src)
		t->key_src(&tb->hash_key, t->key_src_ctx);
	else
		iht_random_key(&tb->hash_key);
	return tb;
}

/* ------------------------------------------------------- life cycle */

/* Set up @t with a first array of 1 << @min_bits buckets.
 * @prof: lock layout (IHT_PROFILE_CONN / _SVC); @node_hash/@ctx: how the
 * resizer re-hashes an entry.  @shrink_on_remove: services' rule (a remove
 * that leaves count <= l_thresh requests a resize).
 * Returns 0, -EINVAL (bits/lfactor out of range), -ENOMEM. */
static inline int iht_init(struct iht_table *t, int min_bits, int max_bits,
			   int lfactor, const struct iht_lock_profile *prof,
			   int shrink_on_remove, iht_node_hash_fn node_hash,
			   void *ctx)
{
	struct iht_tbl *tb;
	int64_t size;

	memset(t, 0, sizeof(*t));
	if (min_bits < IHT_BITS_MIN || max_bits > IHT_BITS_MAX ||
	    min_bits > max_bits || lfactor < IHT_LFACTOR_MIN ||
	    lfactor > IHT_LFACTOR_MAX || !node_hash)
		return -EINVAL;
	t->min_bits = min_bits;
	t->max_bits = max_bits;
	t->prof = *prof;
	t->shrink_on_remove = shrink_on_remove;
	t->node_hash = node_hash;
	t->ctx = ctx;
	t->defer_frees = 0;
	t->deferred = NULL;
	atomic_init(&t->count, 0);
	atomic_init(&t->resize_requested, 0);
	atomic_init(&t->lfactor, lfactor);
	atomic_init(&t->resizes, 0);
	atomic_init(&t->walk, NULL);
	atomic_init(&t->pause.max_ns, 0);
	atomic_init(&t->pause.total_ns, 0);
	atomic_init(&t->moved, 0);
	atomic_init(&t->read_retries, 0);
	atomic_init(&t->max_wait_ns, 0);
	iht_mem_init(&t->mem);
	if (iht_rcu_init(&t->rcu))
		return -ENOMEM;
	pthread_mutex_init(&t->resize_lock, NULL);
	pthread_mutex_init(&t->retire_lock, NULL);
	t->retired = iht_mem_alloc(&t->mem, IHT_MEM_META,
				   IHT_RETIRE_BATCH * sizeof(*t->retired), 0);
	size = iht_desired_size(0, 0, lfactor, min_bits, max_bits, 0, 0);
	tb = t->retired ? iht_tbl_alloc(t, size, lfactor) : NULL;
	if (!tb) {
		iht_mem_free(&t->mem, IHT_MEM_META, t->retired,
			     IHT_RETIRE_BATCH * sizeof(*t->retired));
		t->retired = NULL;
		pthread_mutex_destroy(&t->resize_lock);
		pthread_mutex_destroy(&t->retire_lock);
		iht_rcu_destroy(&t->rcu);
		return -ENOMEM;
	}
	atomic_init(&t->tbl, tb);
	return 0;
}

/* Take the keys of new bucket arrays from @fn(key, @ctx) instead of
 * getrandom(): a seeded model (ipvs_py.Netns(seed=...)) then builds the
 * same tables every run, and a user whose hash reads only part of the key
 * (the service table's jhash uses (u32)key[0]) can keep the kernel's key
 * sequence.  Still one fresh key per array.  If the table is empty and not
 * resizing, the current array is re-keyed too, so that every array of a
 * table set up with iht_init() + this call came from @fn.
 * Context: setup, no other thread uses @t. */
static inline void iht_set_key_source(struct iht_table *t, iht_key_src_fn fn,
				      void *ctx)
{
	struct iht_tbl *tb = iht_first_tbl(t);

	t->key_src = fn;
	t->key_src_ctx = ctx;
	if (fn && tb && !iht_next_tbl(tb) && !atomic_load(&t->count))
		fn(&tb->hash_key, ctx);
}

/* Free every retired block now.  Context: no reader can reach them (a
 * grace period has passed, or the table is being destroyed). */
static inline void iht_free_retired_locked(struct iht_table *t,
					   struct iht_retired *list, int n)
{
	for (int i = 0; i < n; i++)
		iht_mem_free(&t->mem, IHT_MEM_ENTRIES, list[i].p,
			     list[i].size);
}

/* @on: keep every bucket array a resize replaces, instead of freeing it
 * after the grace period, so that a pointer into it stays valid memory
 * without a read-side section -- the multi-core replay's prefetch hints
 * (ipvs_mt.h), which took a section per packet for that (two atomic RMWs,
 * a sixth of a worker's time with established flows, perf).  Kept arrays
 * are never reachable from the table; they only cost memory, at most the
 * size of the current array when it grew to there by doublings.
 * @on == 0: free them now and free from now on.
 * Context: no resize running (setup or teardown). */
static inline void iht_defer_frees(struct iht_table *t, int on)
{
	t->defer_frees = on;
	while (!on && t->deferred) {
		struct iht_tbl *tb = t->deferred;

		t->deferred = tb->deferred_next;
		iht_tbl_free(t, tb);
	}
}

/* Tear down @t.  @free_node is called once per linked node (callers with
 * two nodes per entry free the entry on one of them) and may be NULL.
 * Context: no other thread uses @t any more. */
static inline void iht_destroy(struct iht_table *t,
			       void (*free_node)(struct iht_node *, void *),
			       void *ctx)
{
	struct iht_tbl *tb = atomic_load(&t->tbl), *next;

	if (!tb)
		return;
	while (tb) {
		for (int64_t b = 0; free_node && b < tb->size; b++) {
			struct iht_node *n = iht_bl_first_locked(&tb->buckets[b]);

			while (n) {
				struct iht_node *nx = iht_node_next_locked(n);
				free_node(n, ctx);
				n = nx;
			}
		}
		next = iht_next_tbl(tb);
		iht_tbl_free(t, tb);
		tb = next;
	}
	atomic_store(&t->tbl, NULL);
	iht_defer_frees(t, 0);
	iht_free_retired_locked(t, t->retired, t->nretired);
	t->nretired = 0;
	iht_mem_free(&t->mem, IHT_MEM_META, t->retired,
		     IHT_RETIRE_BATCH * sizeof(*t->retired));
	t->retired = NULL;
	pthread_mutex_destroy(&t->resize_lock);
	pthread_mutex_destroy(&t->retire_lock);
	iht_rcu_destroy(&t->rcu);
}

/* ------------------------------------------ read side, grace periods */

/* Enter/leave a read-side section (the kernel's rcu_read_lock()).  Lookups,
 * walks and node accesses need one; see iht_rcu.h for the cost. */
static inline unsigned int iht_read_lock(struct iht_table *t)
{
	return iht_rcu_read_lock(&t->rcu);
}

static inline void iht_read_unlock(struct iht_table *t, unsigned int slot)
{
	iht_rcu_read_unlock(&t->rcu, slot);
}

/* Wait for all current read-side sections (synchronize_rcu()).
 * Context: outside any read-side section; blocks. */
static inline void iht_synchronize(struct iht_table *t)
{
	iht_rcu_synchronize(&t->rcu);
}

/* Hand an unlinked block (@size bytes from iht_mem_alloc(IHT_MEM_ENTRIES))
 * to the table; it is freed after a grace period.  Every IHT_RETIRE_BATCH
 * blocks the caller runs that grace period (call_rcu() + batching).
 * Context: outside any read-side section, no table lock held; may block. */
static inline void iht_retire(struct iht_table *t, void *p, size_t size)
{
	pthread_mutex_lock(&t->retire_lock);
	t->retired[t->nretired].p = p;
	t->retired[t->nretired].size = size;
	if (++t->nretired == IHT_RETIRE_BATCH) {
		iht_synchronize(t);
		iht_free_retired_locked(t, t->retired, t->nretired);
		t->nretired = 0;
	}
	pthread_mutex_unlock(&t->retire_lock);
}

/* Free all retired blocks after one grace period (rcu_barrier()).
 * Context: as iht_retire(). */
static inline void iht_reclaim(struct iht_table *t)
{
	pthread_mutex_lock(&t->retire_lock);
	if (t->nretired) {
		iht_synchronize(t);
		iht_free_retired_locked(t, t->retired, t->nretired);
		t->nretired = 0;
	}
	pthread_mutex_unlock(&t->retire_lock);
}

/* Number of retired blocks waiting for a grace period. */
static inline int iht_retired_pending(struct iht_table *t)
{
	int n;

	pthread_mutex_lock(&t->retire_lock);
	n = t->nretired;
	pthread_mutex_unlock(&t->retire_lock);
	return n;
}

/* ------------------------------------------------------------ lookup */

static inline uint64_t iht_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Account a lookup that waited for a mover since @t0 (slow path only). */
static inline void iht_note_wait(struct iht_table *t, uint64_t t0)
{
	uint64_t w = iht_now_ns() - t0;
	uint64_t cur = atomic_load_explicit(&t->max_wait_ns,
					    memory_order_relaxed);

	atomic_fetch_add_explicit(&t->read_retries, 1, memory_order_relaxed);
	while (w > cur && !atomic_compare_exchange_weak_explicit(
		       &t->max_wait_ns, &cur, w, memory_order_relaxed,
		       memory_order_relaxed))
		;
}

/* Look @key up in one array @tb, whose hash key for it is @hash_key.
 * A hit returns at once; a miss is returned only when the bucket's seqcount
 * shows no move ran during the walk, else the bucket is walked again.
 * Context: read-side section.  Returns the node or NULL. */
static inline struct iht_node *iht_tbl_lookup(struct iht_tbl *tb,
					      uint32_t hash_key,
					      const void *key,
					      iht_key_cmp_fn cmp, void *ctx)
{
	struct iht_bl_head *head = iht_bucket(tb, hash_key);
	iht_seqcount *sc = iht_seqc(tb, hash_key);
	unsigned int spins = 0;

	for (;;) {
		uint32_t seq = iht_raw_read_seqcount(sc);
		struct iht_node *n;

		for (n = iht_bl_first_rcu(head); n; n = iht_node_next_rcu(n)) {
			if (atomic_load_explicit(&n->hash_key,
						 memory_order_relaxed) ==
			    hash_key && cmp(n, key, ctx))
				return n;
		}
		if (!iht_read_seqcount_retry(sc, seq))
			return NULL;
		iht_spin_wait(&spins);	/* a move is running: let it end */
	}
}

/* Look @key up in the table: the current array, then the new one during a
 * resize (ip_vs_rht_for_each_table_rcu + walk_bucket_rcu).  A hit in
 * either array is final.  A miss counts only if neither bucket's seqcount
 * moved during its walk; otherwise both are walked again.  Unlike the
 * kernel's per-bucket retry, the new array is tried before waiting on the
 * old one's writer: an entry that is being moved is usually already there,
 * so readers rarely wait for the resizer (which, unlike the kernel's,
 * can be descheduled inside its writer section).
 * With t->walk set, the nodes compared are counted (iht_walkstats.h).
 * Context: read-side section (iht_read_lock).  Returns the node or NULL;
 * the node stays valid until the section ends. */
static inline struct iht_node *iht_lookup(struct iht_table *t,
					  const void *key,
					  iht_key_hash_fn khash,
					  iht_key_cmp_fn cmp, void *ctx)
{
	struct iht_walk_stats *ws = atomic_load_explicit(&t->walk,
							 memory_order_relaxed);
	unsigned int spins = 0;
	uint64_t t0 = 0, walked = 0;

	for (;;) {
		int stable = 1;

		for (struct iht_tbl *tb = iht_first_tbl(t); tb;
		     tb = iht_next_tbl(tb)) {
			uint32_t hk = iht_build_hash_key(tb,
				khash(key, &tb->hash_key, ctx));
			iht_seqcount *sc = iht_seqc(tb, hk);
			uint32_t seq = iht_raw_read_seqcount(sc);

			for (struct iht_node *n = iht_bl_first_rcu(
				     iht_bucket(tb, hk));
			     n; n = iht_node_next_rcu(n)) {
				walked++;
				if (atomic_load_explicit(&n->hash_key,
						memory_order_relaxed) == hk &&
				    cmp(n, key, ctx)) {
					if (t0)
						iht_note_wait(t, t0);
					if (ws)
						iht_walk_stats_note(ws, walked,
								    1);
					return n;
				}
			}
			if (iht_read_seqcount_retry(sc, seq))
				stable = 0;
		}
		if (stable) {
			if (t0)
				iht_note_wait(t, t0);
			if (ws)
				iht_walk_stats_note(ws, walked, 0);
			return NULL;
		}
		if (!t0)
			t0 = iht_now_ns();
		iht_spin_wait(&spins);	/* an entry was in flight: retry */
	}
}

struct iht_batch_slot {
	size_t idx;			/* key index; IHT_SLOT_FREE: none */
	uint32_t hash_key;
	uint32_t seq;
	struct iht_node *cur;		/* NULL: bucket head not read yet */
};

#define IHT_SLOT_FREE ((size_t)-1)

/* Begin key @i in slot @s: hash it, prefetch its bucket head and the
 * bucket's seqcount. */
static inline void iht_batch_begin(struct iht_tbl *tb,
				   struct iht_batch_slot *s, size_t i,
				   const uint8_t *key, iht_key_hash_fn khash,
				   void *ctx)
{
	s->idx = i;
	s->cur = NULL;
	s->hash_key = iht_build_hash_key(tb, khash(key, &tb->hash_key, ctx));
	__builtin_prefetch(iht_bucket(tb, s->hash_key));
	__builtin_prefetch(iht_seqc(tb, s->hash_key));
}

/* Look up @n keys (key i at @keys + i * @stride) and call
 * @emit(i, node or NULL, @ctx) once for each, inside the read-side section
 * (so @emit may read the node), not necessarily in order.
 *
 * Asynchronous memory-access chaining (AMAC, Kocberber et al., VLDB 2015):
 * IHT_BATCH_WAYS lookups are in flight at once, each a small state machine
 * that takes one step per turn (read the bucket head, or compare one node)
 * and prefetches what its next step reads, so a turn of the ring finds
 * every line it needs already on its way.  A chain of any length keeps
 * IHT_BATCH_WAYS misses overlapped; the fixed 4-stage pipeline this
 * replaced overlapped the head and first two nodes only and walked the
 * rest miss by miss.  bench/bench_table.py, 1M entries, back to back on a
 * loaded 2-core box: lfactor +3 (8 nodes a bucket) 846 -> 90 ns/key,
 * lfactor 0 72 -> 57, lfactor -3 52 -> 53.  Ways: 8 -> 256 ns at +3,
 * 16 -> 144, 24 -> 79, 32 -> 67 (one run each, load 8-11).
 * A miss whose bucket seqcount moved is redone with iht_lookup().
 * During a resize it uses iht_lookup() per key.  A read-side section spans
 * IHT_BATCH_SECTION keys at most, so grace periods never wait long.
 * Context: no read-side section held (it takes its own). */
static inline void iht_lookup_batch(struct iht_table *t, size_t n,
				    const uint8_t *keys, size_t stride,
				    iht_key_hash_fn khash, iht_key_cmp_fn cmp,
				    void (*emit)(size_t, struct iht_node *,
						 void *),
				    void *ctx, size_t pf_bytes)
{
	struct iht_batch_slot ring[IHT_BATCH_WAYS];
	size_t start = 0;

	while (start < n) {
		size_t end = n - start > IHT_BATCH_SECTION ?
			start + IHT_BATCH_SECTION : n;
		unsigned int slot = iht_read_lock(t);
		struct iht_tbl *tb = iht_first_tbl(t);
		size_t next = start;
		unsigned int active = 0;

		if (iht_next_tbl(tb)) {
			for (size_t i = start; i < end; i++)
				emit(i, iht_lookup(t, keys + i * stride, khash,
						   cmp, ctx), ctx);
			iht_read_unlock(t, slot);
			start = end;
			continue;
		}
		for (unsigned int k = 0; k < IHT_BATCH_WAYS; k++) {
			ring[k].idx = IHT_SLOT_FREE;
			if (next < end) {
				iht_batch_begin(tb, &ring[k], next,
						keys + next * stride, khash, ctx);
				next++;
				active++;
			}
		}
		while (active) {
			for (unsigned int k = 0; k < IHT_BATCH_WAYS; k++) {
				struct iht_batch_slot *s = &ring[k];
				const void *key;
				struct iht_node *e;

				if (s->idx == IHT_SLOT_FREE)
					continue;
				key = keys + s->idx * stride;
				if (!s->cur) {		/* step: bucket head */
					s->seq = iht_raw_read_seqcount(
						iht_seqc(tb, s->hash_key));
					e = iht_bl_first_rcu(
						iht_bucket(tb, s->hash_key));
				} else {		/* step: one node */
					e = s->cur;
					if (atomic_load_explicit(&e->hash_key,
						memory_order_relaxed) ==
					    s->hash_key && cmp(e, key, ctx))
						goto found;
					e = iht_node_next_rcu(e);
				}
				if (e) {
					s->cur = e;
					__builtin_prefetch(e);
					if (pf_bytes > 32)
						__builtin_prefetch(
							(char *)e + pf_bytes - 1);
					continue;
				}
				/* end of chain: a miss, unless a writer
				 * moved the bucket under us */
				if (iht_read_seqcount_retry(
					    iht_seqc(tb, s->hash_key), s->seq))
					e = iht_lookup(t, key, khash, cmp, ctx);
found:
				emit(s->idx, e, ctx);
				if (next < end) {
					iht_batch_begin(tb, s, next,
							keys + next * stride,
							khash, ctx);
					next++;
				} else {
					s->idx = IHT_SLOT_FREE;
					active--;
				}
			}
		}
		iht_read_unlock(t, slot);
		start = end;
	}
}

/* ------------------------------------------------------ insert/remove */

/* Stripe lock for hash_key @hk, when the table has writer stripes. */
static inline void iht_ws_lock(struct iht_table *t, uint32_t hk)
{
	if (t->ws)
		iht_stripe_lock(t->ws, iht_stripe_of(t->ws, hk));
}

static inline void iht_ws_unlock(struct iht_table *t, uint32_t hk)
{
	if (t->ws)
		iht_stripe_unlock(t->ws, iht_stripe_of(t->ws, hk));
}

static inline void iht_ws_lock2(struct iht_table *t, uint32_t a, uint32_t b)
{
	if (t->ws)
		iht_stripe_lock2(t->ws, iht_stripe_of(t->ws, a),
				 iht_stripe_of(t->ws, b));
}

static inline void iht_ws_unlock2(struct iht_table *t, uint32_t a, uint32_t b)
{
	if (t->ws)
		iht_stripe_unlock2(t->ws, iht_stripe_of(t->ws, a),
				   iht_stripe_of(t->ws, b));
}

/* Use @ws (NULL: none) as the table's writer stripes from now on.
 * Context: setup, no other thread uses @t (the stripes must outlive it). */
static inline void iht_set_stripes(struct iht_table *t, struct iht_stripes *ws)
{
	t->ws = ws;
}

/*
 * A thread's unflushed share of t->count (the kernel's percpu_counter
 * idea).  The kernel keeps conn_count in one atomic_t; two workers adding
 * to it on every new and every expired conn bounced its cache line between
 * them: the lock xadd was 11-13% of ipvs_conn_new and ipvs_conn_release
 * with two workers (perf annotate, churn rows of bench_multicore.py).
 * A thread that began a share adds to it and flushes it into t->count
 * once it reaches +-IHT_COUNT_BATCH; the count a writer compares with the
 * resize thresholds is then the shared count plus its own share, off by
 * less than IHT_COUNT_BATCH per other sharing thread.  A multi-core replay
 * may resize at a slightly different count than one thread would (its
 * table sizes may differ anyway, docs/multicore.md); iht_count() is exact
 * once every share has ended.
 */
#define IHT_COUNT_BATCH 64

struct iht_count_share {
	struct iht_table *t;
	int64_t delta;
};

static __thread struct iht_count_share *iht_my_share;

/* Add this thread's count changes of @t to @s from now on.  Context: the
 * thread itself; one share per thread. */
static inline void iht_count_share_begin(struct iht_count_share *s,
					 struct iht_table *t)
{
	s->t = t;
	s->delta = 0;
	iht_my_share = s;
}

/* Flush @s into its table's count and stop sharing.  Context: the thread
 * that began @s. */
static inline void iht_count_share_end(struct iht_count_share *s)
{
	if (s->delta)
		atomic_fetch_add(&s->t->count, s->delta);
	s->delta = 0;
	iht_my_share = NULL;
}

/* Add @delta to @t's count (through this thread's share, if it has one
 * for @t) and return the count as this thread sees it. */
static inline int64_t iht_count_add(struct iht_table *t, int64_t delta)
{
	struct iht_count_share *s = iht_my_share;

	if (s && s->t == t) {
		s->delta += delta;
		if (s->delta > -IHT_COUNT_BATCH && s->delta < IHT_COUNT_BATCH)
			return atomic_load_explicit(&t->count,
					memory_order_relaxed) + s->delta;
		delta = s->delta;
		s->delta = 0;
	}
	return atomic_fetch_add(&t->count, delta) + delta;
}

/* Count one more entry; request a resize past @u_thresh. */
static inline int iht_note_added(struct iht_table *t, int count_delta,
				 int64_t u_thresh)
{
	int64_t cnt = iht_count_add(t, count_delta);

	if (count_delta > 0 && cnt > u_thresh)
		return !atomic_exchange(&t->resize_requested, 1);
	return 0;
}

/* Link @n for @key into the newest array (ip_vs_conn_hash()).  Adds
 * @count_delta to the entry count (1 for an entry's first node, 0 for its
 * second) and requests a resize when the count passes the newest array's
 * u_thresh.  Context: outside a read-side section (takes one), no lock
 * held.  Returns 1 if this call set the resize request, else 0. */
static inline int iht_insert(struct iht_table *t, struct iht_node *n,
			     const void *key, iht_key_hash_fn khash,
			     void *ctx, int count_delta)
{
	/* linked by 32-bit reference: it must live in the cage */
	IHT_ASSERT(iht_cage_contains(n, sizeof(*n)));
	unsigned int slot = iht_read_lock(t);
	struct iht_tbl *tb = iht_newest_tbl(t);
	uint32_t hk = iht_build_hash_key(tb, khash(key, &tb->hash_key, ctx));
	struct iht_bl_head *head = iht_bucket(tb, hk);
	int64_t u_thresh = tb->u_thresh;

	atomic_store_explicit(&n->hash_key, hk, memory_order_relaxed);
	iht_ws_lock(t, hk);
	iht_bl_lock(head);
	iht_bl_add_head_locked(head, n);
	iht_bl_unlock(head);
	iht_ws_unlock(t, hk);
	iht_read_unlock(t, slot);
	return iht_note_added(t, count_delta, u_thresh);
}

/* Link two nodes of one entry (a NAT conn's hn0 and hn1) into the newest
 * array under both bucket locks, taken in INCREASING BUCKET ORDER (one lock
 * when both hash to the same bucket), so that a reader never sees half of
 * a connection and two writers never deadlock (conn_tab_lock() with
 * ip_vs_conn_hash() of the 2026 series).  With writer stripes, both
 * stripes are taken first, in increasing index order.  @key0/@key1 are
 * hashed with @khash.  Counts the entry once (@count_delta).  Context as
 * iht_insert.  Returns 1 if this call set the resize request, else 0. */
static inline int iht_insert2(struct iht_table *t, struct iht_node *n0,
			      const void *key0, struct iht_node *n1,
			      const void *key1, iht_key_hash_fn khash,
			      void *ctx, int count_delta)
{
	IHT_ASSERT(iht_cage_contains(n0, sizeof(*n0)) &&
		   iht_cage_contains(n1, sizeof(*n1)));
	unsigned int slot = iht_read_lock(t);
	struct iht_tbl *tb = iht_newest_tbl(t);
	uint32_t hk0 = iht_build_hash_key(tb, khash(key0, &tb->hash_key, ctx));
	uint32_t hk1 = iht_build_hash_key(tb, khash(key1, &tb->hash_key, ctx));
	struct iht_bl_head *h0 = iht_bucket(tb, hk0), *h1 = iht_bucket(tb, hk1);
	struct iht_bl_head *lo = h0 < h1 ? h0 : h1, *hi = h0 < h1 ? h1 : h0;
	int64_t u_thresh = tb->u_thresh;

	atomic_store_explicit(&n0->hash_key, hk0, memory_order_relaxed);
	atomic_store_explicit(&n1->hash_key, hk1, memory_order_relaxed);
	iht_ws_lock2(t, hk0, hk1);
	iht_bl_lock(lo);
	if (hi != lo)
		iht_bl_lock(hi);
	iht_bl_add_head_locked(h0, n0);
	iht_bl_add_head_locked(h1, n1);
	if (hi != lo)
		iht_bl_unlock(hi);
	iht_bl_unlock(lo);
	iht_ws_unlock2(t, hk0, hk1);
	iht_read_unlock(t, slot);
	return iht_note_added(t, count_delta, u_thresh);
}

/* After a remove: the services' shrink trigger (count <= l_thresh). */
static inline int iht_note_removed(struct iht_table *t, int count_delta)
{
	int64_t cnt = iht_count_add(t, -(int64_t)count_delta);

	if (t->shrink_on_remove && count_delta > 0) {
		unsigned int slot = iht_read_lock(t);
		int64_t l = iht_first_tbl(t)->l_thresh;

		iht_read_unlock(t, slot);
		if (cnt <= l)
			return !atomic_exchange(&t->resize_requested, 1);
	}
	return 0;
}

/* The bucket-lock part of an unlink: lock the bucket @n's hash_key names,
 * re-check hash_key under the lock and follow it if a resize moved the
 * node meanwhile (conn_tab_lock()).  Context: read-side section; with
 * writer stripes, the stripe of @n's hash_key held (then no move can run
 * on it and the first try succeeds).  Returns 0 or -ENOENT. */
static inline int __iht_unlink_bl(struct iht_table *t, struct iht_node *n)
{
	uint32_t hk = atomic_load_explicit(&n->hash_key, memory_order_relaxed);
	int ret;

	for (;;) {
		struct iht_tbl *tb = iht_first_tbl(t);
		struct iht_bl_head *head;

		if (!iht_same_table(tb, hk) && iht_next_tbl(tb))
			tb = iht_next_tbl(tb);
		head = iht_bucket(tb, hk);
		iht_bl_lock(head);
		uint32_t now = atomic_load_explicit(&n->hash_key,
						    memory_order_relaxed);
		if (now != hk) {	/* moved by a resize: follow it */
			iht_bl_unlock(head);
			hk = now;
			continue;
		}
		ret = iht_bl_del_locked(head, n) ? -ENOENT : 0;
		iht_bl_unlock(head);
		return ret;
	}
}

/* Take the writer stripe of @n's current hash_key and return that
 * hash_key; a resize may move @n between the read and the lock, so
 * re-read until they agree.  No-op without stripes.  Context: read-side
 * section. */
static inline uint32_t iht_ws_lock_node(struct iht_table *t,
					struct iht_node *n)
{
	for (;;) {
		uint32_t hk = atomic_load_explicit(&n->hash_key,
						   memory_order_acquire);
		iht_ws_lock(t, hk);
		if (!t->ws || atomic_load_explicit(&n->hash_key,
					memory_order_acquire) == hk)
			return hk;
		iht_ws_unlock(t, hk);
	}
}

/* Unlink node @n using its saved hash_key (no re-hash, no key compare).
 * The caller guarantees @n is linked and that nobody else unlinks it, then
 * frees it with iht_retire().  Context: outside a read-side section.
 * Returns 0, or -ENOENT if @n was not found (caller bug). */
static inline int iht_unlink(struct iht_table *t, struct iht_node *n,
			     int count_delta)
{
	unsigned int slot = iht_read_lock(t);
	uint32_t hk = iht_ws_lock_node(t, n);
	int ret = __iht_unlink_bl(t, n);

	iht_ws_unlock(t, hk);
	iht_read_unlock(t, slot);
	if (!ret)
		iht_note_removed(t, count_delta);
	return ret;
}

/* Unlink both nodes of one entry (a NAT conn's hn0 and hn1, the delete
 * side of iht_insert2) under both writer stripes, taken in increasing
 * index order, so no stripe holder sees half of the entry.  Without
 * stripes: two iht_unlink() calls.  Counts the entry once (@count_delta).
 * Context as iht_unlink.  Returns 0 or -ENOENT. */
static inline int iht_unlink2(struct iht_table *t, struct iht_node *n0,
			      struct iht_node *n1, int count_delta)
{
	unsigned int slot;
	int ret;

	if (!t->ws) {
		ret = iht_unlink(t, n0, count_delta);
		return iht_unlink(t, n1, 0) ? -ENOENT : ret;
	}
	slot = iht_read_lock(t);
	for (;;) {
		uint32_t hk0 = atomic_load_explicit(&n0->hash_key,
						    memory_order_acquire);
		uint32_t hk1 = atomic_load_explicit(&n1->hash_key,
						    memory_order_acquire);

		iht_ws_lock2(t, hk0, hk1);
		if (atomic_load(&n0->hash_key) != hk0 ||
		    atomic_load(&n1->hash_key) != hk1) {
			iht_ws_unlock2(t, hk0, hk1);	/* a move won */
			continue;
		}
		ret = __iht_unlink_bl(t, n0);
		if (__iht_unlink_bl(t, n1))
			ret = -ENOENT;
		iht_ws_unlock2(t, hk0, hk1);
		break;
	}
	iht_read_unlock(t, slot);
	if (!ret)
		iht_note_removed(t, count_delta);
	return ret;
}

/* Find one entry matching @key and unlink it, under the bucket lock of
 * each array in turn (old, then new: a move holds the old bucket's lock,
 * so an entry is always found in one of them).  Removes exactly one of
 * several duplicates.  Context: outside a read-side section.  Returns the
 * unlinked node (caller retires its memory) or NULL. */
static inline struct iht_node *iht_remove_key(struct iht_table *t,
					      const void *key,
					      iht_key_hash_fn khash,
					      iht_key_cmp_fn cmp, void *ctx,
					      int count_delta)
{
	unsigned int slot = iht_read_lock(t);
	struct iht_node *found = NULL;
	struct iht_tbl *tb;

	for (tb = iht_first_tbl(t); tb && !found; tb = iht_next_tbl(tb)) {
		uint32_t hk = iht_build_hash_key(tb,
						 khash(key, &tb->hash_key, ctx));
		struct iht_bl_head *head = iht_bucket(tb, hk);
		struct iht_node *p;

		iht_ws_lock(t, hk);
		iht_bl_lock(head);
		for (p = iht_bl_first_locked(head); p;
		     p = iht_node_next_locked(p)) {
			if (atomic_load_explicit(&p->hash_key,
						 memory_order_relaxed) == hk &&
			    cmp(p, key, ctx)) {
				iht_bl_del_locked(head, p);
				found = p;
				break;
			}
		}
		iht_bl_unlock(head);
		iht_ws_unlock(t, hk);
	}
	iht_read_unlock(t, slot);
	if (found)
		iht_note_removed(t, count_delta);
	return found;
}

/* Called by iht_rehash_commit() with every lock of the move held and @n
 * found where it was: make the entry's key change here (so that no reader
 * sees the new key at the old position) and return nonzero to move @n, or
 * return 0 to leave @n and the entry as they are (someone else already
 * changed it: ip_vs_conn_fill_cport() re-checks IP_VS_CONN_F_NO_CPORT
 * under its locks).  Must not block or take a table lock. */
typedef int (*iht_commit_fn)(struct iht_node *n, void *cctx);

/* Move node @n to the bucket of @key, the new key of its entry, as one
 * writer step (ip_vs_conn_fill_cport() of the 2026 series): compute the
 * new hash outside the locks (once per array: the key must not change
 * but for what @commit writes), then take the old bucket's seqcount
 * writer section (its table spinlock), with writer stripes the old and
 * the new position's stripes (increasing index order), and the old and
 * the new bucket locks -- in increasing address order when both are in
 * one array, else OLD BEFORE NEW as a resize move takes them; re-read
 * @n's hash_key under them and start over if a resize moved @n
 * meanwhile; call @commit (NULL: always move), then relink @n and store
 * its new hash_key.  A lookup walking the old bucket while the key
 * changes walks it again (seqcount) and then finds @n at its new place,
 * so a concurrent lookup by the old key that misses is always followed
 * by a hit by the new key.  The entry count does not change.
 * Context: outside a read-side section, no lock held.  Returns 0 when
 * @n moved, 1 when @commit declined, -ENOENT when @n was not linked. */
static inline int iht_rehash_commit(struct iht_table *t, struct iht_node *n,
				    const void *key, iht_key_hash_fn khash,
				    void *ctx, iht_commit_fn commit,
				    void *cctx)
{
	unsigned int slot = iht_read_lock(t);
	struct iht_tbl *hashed_for = NULL;
	uint32_t hk = 0;
	int ret;

	for (;;) {
		uint32_t old = atomic_load_explicit(&n->hash_key,
						    memory_order_acquire);
		struct iht_tbl *otb = iht_first_tbl(t), *tb;
		struct iht_bl_head *ho, *hn, *lo, *hi;
		struct iht_spinlock *sl;
		iht_seqcount *sc;

		if (!iht_same_table(otb, old) && iht_next_tbl(otb))
			otb = iht_next_tbl(otb);
		sl = otb->nlocks ? &otb->lock[old & otb->lock_mask] : NULL;
		sc = iht_seqc(otb, old);
		tb = iht_newest_tbl(t);		/* a resize: add to the new */
		if (tb != hashed_for) {
			hk = iht_build_hash_key(tb, khash(key, &tb->hash_key,
							  ctx));
			hashed_for = tb;
		}
		ho = iht_bucket(otb, old);
		hn = iht_bucket(tb, hk);
		lo = ho;
		hi = hn;
		if (otb == tb && hn < ho) {
			lo = hn;
			hi = ho;
		}
		if (sl) {
			iht_spin_lock(sl);
			iht_write_seqcount_begin(sc);
		}
		iht_ws_lock2(t, old, hk);
		iht_bl_lock(lo);
		if (hi != lo)
			iht_bl_lock(hi);
		if (atomic_load_explicit(&n->hash_key,
					 memory_order_relaxed) == old) {
			struct iht_node *p = iht_bl_first_locked(ho);

			while (p && p != n)
				p = iht_node_next_rcu(p);
			if (!p)
				ret = -ENOENT;	/* not linked: caller bug */
			else if (commit && !commit(n, cctx))
				ret = 1;
			else {
				if (ho != hn) {	/* else: new key only */
					iht_bl_del_locked(ho, n);
					iht_bl_add_head_locked(hn, n);
				}
				ret = 0;
			}
			if (!ret)
				atomic_store_explicit(&n->hash_key, hk,
						      memory_order_release);
		} else {
			ret = -EAGAIN;	/* a resize move won: again */
		}
		if (hi != lo)
			iht_bl_unlock(hi);
		iht_bl_unlock(lo);
		iht_ws_unlock2(t, old, hk);
		if (sl) {
			iht_write_seqcount_end(sc);
			iht_spin_unlock(sl);
		}
		if (ret != -EAGAIN)
			break;
	}
	iht_read_unlock(t, slot);
	return ret;
}

/* Move node @n to the bucket of @key whose fields the caller already
 * changed (iht_rehash_commit() without a commit step; the caller's own
 * thread is the only one that looks the entry up meanwhile).  Context
 * as iht_rehash_commit.  Returns 0 or -ENOENT. */
static inline int iht_rehash(struct iht_table *t, struct iht_node *n,
			     const void *key, iht_key_hash_fn khash, void *ctx)
{
	return iht_rehash_commit(t, n, key, khash, ctx, NULL, NULL);
}

/* ------------------------------------------------------------ resize */

/* Move node @n from bucket @head (locked) to @nt's bucket for @hk, under
 * that bucket's lock (OLD BEFORE NEW): the step every resize move makes. */
static inline void iht_move_node_locked(struct iht_bl_head *head,
					struct iht_node *n,
					struct iht_tbl *nt, uint32_t hk)
{
	struct iht_bl_head *h2 = iht_bucket(nt, hk);

	iht_bl_lock(h2);
	iht_bl_del_locked(head, n);
	atomic_store_explicit(&n->hash_key, hk, memory_order_relaxed);
	iht_bl_add_head_locked(h2, n);
	iht_bl_unlock(h2);
}

/* Move every entry of buckets [@lo, @hi) of @old into @nt (the body of
 * conn_resize_work_handler, for one range).  Per bucket: the seqcount's
 * table spinlock, the seqcount writer section, the old bucket lock, then
 * for each of at most IHT_MOVE_LIMIT entries the new bucket's lock (OLD
 * BEFORE NEW); repeat the bucket until it is empty.  No writer stripes,
 * as the kernel's resizer takes none of the conn_tab_lock()s: every
 * writer re-checks a node's hash_key under its bucket lock and follows a
 * move (__iht_unlink_bl, iht_rehash_commit), so the stripes only make a
 * writer's own two nodes one step.  Taking them
 * cost: a double stripe lock and two hashes per entry (the old
 * iht_move_one_striped) made resizes a quarter of the multi-core replay's
 * new-conn time, and holding all of them per batch made the workers'
 * inserts spin on them (perf, bench_multicore.py).
 * Context: outside a read-side section; a grace period has passed since
 * @nt was linked (no insert still targets @old); the caller holds
 * resize_lock or has claimed the range (iht_move_chunks, iht_help_move),
 * so no one else moves these buckets. */
static inline void iht_move_range(struct iht_table *t, struct iht_tbl *old,
				  struct iht_tbl *nt, int64_t lo, int64_t hi)
{
	uint64_t moved = 0;
	unsigned int slot = 0;

	for (int64_t b = lo; b < hi; b++) {
		struct iht_bl_head *head = &old->buckets[b];
		iht_seqcount *sc = &old->seqc[b & old->seqc_mask];
		struct iht_spinlock *sl = old->nlocks ?
			&old->lock[b & old->lock_mask] : NULL;
		int limit;

		/* the entries a few buckets ahead: a move re-hashes each entry
		 * from its own memory, and those cache misses were most of a
		 * rebuild (ipvs_node_hash in the profile of new conns;
		 * measured 76 -> 41 ms per rebuild of 200k NAT conns).  The
		 * look-ahead reads a node's next pointer, so it runs in a
		 * read-side section (renewed every IHT_MOVE_SECTION buckets,
		 * which bounds how long a grace period waits for it): a
		 * stale node is then still memory, and only costs a useless
		 * prefetch */
		if (b == lo || !(b & (IHT_MOVE_SECTION - 1))) {
			if (b != lo)
				iht_read_unlock(t, slot);
			slot = iht_read_lock(t);
		}
		if (b + IHT_MOVE_PREFETCH < old->size) {
			struct iht_node *ahead = iht_bl_first_rcu(
				&old->buckets[b + IHT_MOVE_PREFETCH]);

			if (ahead) {
				__builtin_prefetch(ahead);
				__builtin_prefetch((const char *)ahead + 64);
			}
		}
		/* and the second entry of a nearer bucket, whose first one
		 * the step above brought in (chains of 1-2 at lfactor 0) */
		if (b + IHT_MOVE_PREFETCH / 2 < old->size) {
			struct iht_node *ahead = iht_bl_first_rcu(
				&old->buckets[b + IHT_MOVE_PREFETCH / 2]);

			if (ahead)
				ahead = iht_node_next_rcu(ahead);
			if (ahead) {
				__builtin_prefetch(ahead);
				__builtin_prefetch((const char *)ahead + 64);
			}
		}
		while (!iht_bl_empty(head)) {
			if (sl)
				iht_spin_lock(sl);
			iht_write_seqcount_begin(sc);
			iht_bl_lock(head);
			for (limit = 0; limit < IHT_MOVE_LIMIT; limit++) {
				struct iht_node *n = iht_bl_first_locked(head);

				if (!n)
					break;
				iht_move_node_locked(head, n, nt,
					iht_build_hash_key(nt, t->node_hash(n,
						&nt->hash_key, t->ctx)));
			}
			moved += (uint64_t)limit;
			iht_bl_unlock(head);
			iht_write_seqcount_end(sc);
			if (sl)
				iht_spin_unlock(sl);
		}
	}
	if (hi > lo)
		iht_read_unlock(t, slot);
	atomic_fetch_add_explicit(&t->moved, moved, memory_order_relaxed);
}

/* Buckets a mover claims at a time (iht_move_chunks). */
#define IHT_MOVE_CHUNK 256

/* Move the chunk of @old starting at bucket @lo, which the caller
 * claimed from old->move_next, and count it done.  Returns the number of
 * buckets moved: 0 when the claim fell past the end (nothing was left).
 * Context: as iht_move_range. */
static inline int64_t iht_move_claimed(struct iht_table *t,
				       struct iht_tbl *old,
				       struct iht_tbl *nt, int64_t lo)
{
	int64_t hi = lo + IHT_MOVE_CHUNK < old->size ?
		lo + IHT_MOVE_CHUNK : old->size;

	if (lo >= old->size)
		return 0;
	iht_move_range(t, old, nt, lo, hi);
	atomic_fetch_add_explicit(&old->move_done, hi - lo,
				  memory_order_release);
	return hi - lo;
}

/* Claim chunks of @old's buckets and move them into @nt until none is
 * left to claim (the chunks others claimed may still be moving).
 * Context: as iht_move_range; @old's move is open. */
static inline void iht_move_chunks(struct iht_table *t, struct iht_tbl *old,
				   struct iht_tbl *nt)
{
	while (iht_move_claimed(t, old, nt,
				atomic_fetch_add(&old->move_next,
						 IHT_MOVE_CHUNK)))
		;
}

/*
 * Move every entry of @old into @nt, in chunks that other threads may
 * help with (iht_help_move): the resizer opens the move, moves chunks
 * itself, and waits for the chunks others took.  Helping is for arrays
 * with stripe locks only: the lock of a bucket's seqcount is what lets
 * two movers write seqcounts at once (buckets that share a seqcount
 * share its lock, nlocks <= nseqc); without them (the service table)
 * the resizer moves alone, as before.
 */
static inline void iht_move_all(struct iht_table *t, struct iht_tbl *old,
				struct iht_tbl *nt)
{
	unsigned int spins = 0;

	if (!old->nlocks) {
		iht_move_range(t, old, nt, 0, old->size);
		return;
	}
	atomic_store_explicit(&old->move_open, 1, memory_order_release);
	iht_move_chunks(t, old, nt);
	while (atomic_load_explicit(&old->move_done, memory_order_acquire) <
	       old->size)
		iht_spin_wait(&spins);
}

/*
 * Help a resize in progress: move one chunk of buckets if the move is
 * open and a chunk is left.  For the workers of a multi-core replay,
 * between packets: three threads (two workers and the resize thread) on
 * two CPUs made the resize thread wait for a CPU while the workers spent
 * the rebuild looking up in both arrays; a worker that moves buckets
 * itself shortens that time instead.  (The kernel's rebuild is one work
 * item; whoever moves a bucket, the table holds the same entries.)
 * Returns the number of buckets moved.  Context: outside a read-side
 * section, no lock held.
 */
static inline int64_t iht_help_move(struct iht_table *t)
{
	unsigned int slot = iht_read_lock(t);
	struct iht_tbl *old = iht_first_tbl(t), *nt = iht_next_tbl(old);
	int64_t lo;

	/* The claim is made and checked inside the section: a chunk
	 * claimed within @old keeps it alive until this thread counts it
	 * done (the resizer waits for move_done), but a claim past the end
	 * keeps nothing, so once the section ends @old may be freed and
	 * must not be read (its size included). */
	if (!nt || !atomic_load_explicit(&old->move_open,
					 memory_order_acquire)) {
		iht_read_unlock(t, slot);
		return 0;
	}
	lo = atomic_fetch_add(&old->move_next, IHT_MOVE_CHUNK);
	if (lo >= old->size) {
		iht_read_unlock(t, slot);
		return 0;
	}
	iht_read_unlock(t, slot);
	return iht_move_claimed(t, old, nt, lo);
}

/* Rebuild into a new array of @size buckets at @lfactor.
 * Context: resize_lock held, outside a read-side section; blocks for two
 * grace periods.  Returns 0 or -ENOMEM (table unchanged). */
static inline int iht_resize_locked(struct iht_table *t, int64_t size,
				    int lfactor)
{
	uint64_t t0 = iht_now_ns();
	struct iht_tbl *old = iht_first_tbl(t);
	struct iht_tbl *nt = iht_tbl_alloc(t, size, lfactor);

	if (!nt)
		return -ENOMEM;
	IHT_ASSERT(!iht_next_tbl(old));
	nt->table_id = old->table_id ^ IHT_TABLE_ID_MASK;
	atomic_store_explicit(&old->new_tbl, nt, memory_order_release);
	/* Wait for inserters that still saw no new_tbl: after this, nothing
	 * is added to @old, so the move below leaves it empty. */
	iht_synchronize(t);
	iht_move_all(t, old, nt);
	atomic_store_explicit(&t->tbl, nt, memory_order_release);
	/* Readers must never see three arrays: wait before freeing @old
	 * (and before a next resize can link a third). */
	iht_synchronize(t);
	if (t->defer_frees) {
		old->deferred_next = t->deferred;
		t->deferred = old;
	} else {
		iht_tbl_free(t, old);
	}
	atomic_fetch_add_explicit(&t->resizes, 1, memory_order_relaxed);
	iht_pause_note(&t->pause, iht_now_ns() - t0);
	return 0;
}

/* Rebuild into @size buckets (clamped to the bit range) at the current
 * lfactor setting, even if the size does not change.
 * Context: outside a read-side section, no lock held; blocks.
 * Returns 0 or -ENOMEM. */
static inline int iht_resize(struct iht_table *t, int64_t size)
{
	int ret;

	size = iht_clamp64(size, (int64_t)1 << t->min_bits,
			   (int64_t)1 << t->max_bits);
	pthread_mutex_lock(&t->resize_lock);
	ret = iht_resize_locked(t, size, atomic_load(&t->lfactor));
	pthread_mutex_unlock(&t->resize_lock);
	return ret;
}

/* Rebuild to iht_desired_size() unless that equals the size and the
 * lfactor setting equals the array's.  Context: resize_lock held.
 * Returns 1 if rebuilt, 0 if not, -ENOMEM. */
static inline int __iht_maybe_resize_locked(struct iht_table *t)
{
	struct iht_tbl *tb = iht_first_tbl(t);
	int lf = atomic_load(&t->lfactor);
	int64_t size = iht_desired_size(1, atomic_load(&t->count), lf,
					t->min_bits, t->max_bits, tb->size,
					tb->lfactor);

	if (size != tb->size || lf != tb->lfactor)
		return iht_resize_locked(t, size, lf) ? -ENOMEM : 1;
	return 0;
}

/* The resize work (conn_resize_work_handler's decision): clear the
 * request, and rebuild to iht_desired_size() unless that equals the size
 * and the lfactor setting equals the array's.  Call after a request and
 * periodically (the kernel re-checks every 2 s) to shrink.
 * Context: as iht_resize().  Returns 1 if rebuilt, 0 if not, -ENOMEM. */
static inline int iht_maybe_resize(struct iht_table *t)
{
	int ret;

	atomic_store(&t->resize_requested, 0);
	pthread_mutex_lock(&t->resize_lock);
	ret = __iht_maybe_resize_locked(t);
	pthread_mutex_unlock(&t->resize_lock);
	return ret;
}

/* iht_maybe_resize() unless another thread is resizing right now: then
 * return -EBUSY at once and leave the request set, so the caller can go
 * on inserting (into the new array) and try again later instead of
 * sleeping through the other thread's moves (multi-core replay: two
 * workers waiting on each other's resize made new conns not scale).
 * Context: as iht_resize(). */
static inline int iht_try_maybe_resize(struct iht_table *t)
{
	int ret;

	if (pthread_mutex_trylock(&t->resize_lock))
		return -EBUSY;
	atomic_store(&t->resize_requested, 0);
	ret = __iht_maybe_resize_locked(t);
	pthread_mutex_unlock(&t->resize_lock);
	return ret;
}

/* Change the lfactor setting (the conn_lfactor/svc_lfactor sysctl).  The
 * caller then runs iht_maybe_resize(), which rebuilds because the setting
 * differs from the array's.  Returns 0 or -EINVAL. */
static inline int iht_set_lfactor(struct iht_table *t, int lfactor)
{
	if (lfactor < IHT_LFACTOR_MIN || lfactor > IHT_LFACTOR_MAX)
		return -EINVAL;
	atomic_store(&t->lfactor, lfactor);
	return 0;
}

/* ---------------------------------------------------------- walking */

/* Walker over all nodes.  Holding resize_lock, no entry moves during the
 * walk, so no node is seen twice; nodes added or removed meanwhile may or
 * may not be seen (ip_vs_rht_walk_buckets_safe_rcu). */
struct iht_walker {
	struct iht_table *t;
	struct iht_tbl *tb;
	int64_t bucket;
	struct iht_node *cur;
	unsigned int slot;
};

/* Start a walk.  Context: no lock held; blocks while a resize runs; the
 * walker holds resize_lock and a read-side section until iht_walk_stop(),
 * so do not insert/remove-and-retire or resize from the walking thread. */
static inline void iht_walk_start(struct iht_table *t, struct iht_walker *w)
{
	pthread_mutex_lock(&t->resize_lock);
	w->t = t;
	w->slot = iht_read_lock(t);
	w->tb = iht_first_tbl(t);
	w->bucket = -1;
	w->cur = NULL;
}

/* Next node of the walk, or NULL at the end. */
static inline struct iht_node *iht_walk_next(struct iht_walker *w)
{
	if (w->cur)
		w->cur = iht_node_next_rcu(w->cur);
	while (!w->cur) {
		if (!w->tb)
			return NULL;
		if (++w->bucket >= w->tb->size) {
			w->tb = iht_next_tbl(w->tb);
			w->bucket = -1;
			continue;
		}
		w->cur = iht_bl_first_rcu(&w->tb->buckets[w->bucket]);
	}
	return w->cur;
}

static inline void iht_walk_stop(struct iht_walker *w)
{
	iht_read_unlock(w->t, w->slot);
	pthread_mutex_unlock(&w->t->resize_lock);
}

/* ---------------------------------------------------------- accessors */

/* Plain reads of the table's atomics, for callers (Cython) that cannot
 * name _Atomic fields.  Any context. */
static inline int64_t iht_count(struct iht_table *t)
{
	return atomic_load_explicit(&t->count, memory_order_relaxed);
}

static inline int iht_resize_pending(struct iht_table *t)
{
	return atomic_load_explicit(&t->resize_requested,
				    memory_order_relaxed);
}

static inline int iht_get_lfactor(struct iht_table *t)
{
	return atomic_load_explicit(&t->lfactor, memory_order_relaxed);
}

static inline uint64_t iht_resizes(struct iht_table *t)
{
	return atomic_load_explicit(&t->resizes, memory_order_relaxed);
}

static inline uint64_t iht_moved(struct iht_table *t)
{
	return atomic_load_explicit(&t->moved, memory_order_relaxed);
}

/* Lookups that retried for a mover, and the longest such wait (ns). */
static inline uint64_t iht_read_retries(struct iht_table *t)
{
	return atomic_load_explicit(&t->read_retries, memory_order_relaxed);
}

static inline uint64_t iht_max_wait_ns(struct iht_table *t)
{
	return atomic_load_explicit(&t->max_wait_ns, memory_order_relaxed);
}

static inline void iht_reset_wait_stats(struct iht_table *t)
{
	atomic_store(&t->read_retries, 0);
	atomic_store(&t->max_wait_ns, 0);
}

/* Count the nodes each iht_lookup() walks into @s (NULL: stop counting).
 * @s must outlive the table or be detached first.  Any context. */
static inline void iht_walk_stats_attach(struct iht_table *t,
					 struct iht_walk_stats *s)
{
	atomic_store_explicit(&t->walk, s, memory_order_release);
}

/* Longest and total rebuild wall time (ns) since iht_init(). */
static inline uint64_t iht_pause_max_ns(struct iht_table *t)
{
	return atomic_load_explicit(&t->pause.max_ns, memory_order_relaxed);
}

static inline uint64_t iht_pause_total_ns(struct iht_table *t)
{
	return atomic_load_explicit(&t->pause.total_ns, memory_order_relaxed);
}

static inline uint64_t iht_grace_periods(struct iht_table *t)
{
	return atomic_load_explicit(&t->rcu.grace_periods,
				    memory_order_relaxed);
}

/* A consistent copy of the current array's header (size, bits, lfactor,
 * thresholds, table id, key) and whether a resize is in progress.
 * Context: outside a read-side section. */
static inline int iht_snapshot(struct iht_table *t, struct iht_tbl *out)
{
	unsigned int slot = iht_read_lock(t);
	struct iht_tbl *tb = iht_first_tbl(t);
	int resizing = iht_next_tbl(tb) != NULL;

	*out = *tb;
	atomic_init(&out->new_tbl, NULL);
	out->buckets = NULL;
	out->seqc = NULL;
	out->lock = NULL;
	iht_read_unlock(t, slot);
	return resizing;
}

/* ---------------------------------------------------------- statistics */

#define IHT_HIST_MAXLEN 7	/* ip_vs_status: len-7 means 7 or more */

/* Bucket-length histogram over every array (both during a resize), as
 * /proc/net/ip_vs_status counts it: @out[0] buckets walked, @out[1] empty
 * buckets, @out[1 + k] buckets with k nodes (k = 1..6), @out[8] with 7 or
 * more.  Lock-free, so a concurrent writer can skew it by a few entries.
 * Context: outside a read-side section. */
static inline void iht_histogram(struct iht_table *t,
				 uint64_t out[IHT_HIST_MAXLEN + 2])
{
	unsigned int slot = iht_read_lock(t);

	memset(out, 0, (IHT_HIST_MAXLEN + 2) * sizeof(out[0]));
	for (struct iht_tbl *tb = iht_first_tbl(t); tb; tb = iht_next_tbl(tb)) {
		for (int64_t b = 0; b < tb->size; b++) {
			int len = 0;

			for (struct iht_node *n =
				     iht_bl_first_rcu(&tb->buckets[b]);
			     n && len < IHT_HIST_MAXLEN;
			     n = iht_node_next_rcu(n))
				len++;
			out[0]++;
			out[1 + len]++;
		}
	}
	iht_read_unlock(t, slot);
}

#endif /* IPVS_PY_IPVS_TABLE_H */
