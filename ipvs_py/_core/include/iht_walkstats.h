/* iht_walkstats.h - chain-walk and resize-pause counters of one table.
 *
 * The lfactor tuning toolkit (ipvs_py.tune) reports how many nodes each
 * lookup walks and how long resizes stall the caller.  Both are measured
 * here, in the table core, from the lookups and resizes that really run.
 *
 * Walk counters are off until a caller points iht_table.walk at a struct
 * iht_walk_stats (iht_walk_stats_attach()).  Off, iht_lookup() pays one
 * predictable branch per lookup and counts walked nodes in a register.
 * On, one lookup adds two relaxed load/store pairs (no locked RMW): exact
 * with one lookup thread (the replay), while concurrent lookups may lose
 * increments (never undefined behaviour, never a torn value on 64-bit).
 * Cost measured by bench/bench_tune.py --overhead (see docs/tuning.md).
 *
 * "Walked" = nodes whose hash_key the lookup compared, over every array it
 * visited (both during a resize) and every retry: a hit at the head of its
 * chain walks 1, a miss in an empty bucket 0, a miss walks the whole chain.
 */
#ifndef IPVS_PY_IHT_WALKSTATS_H
#define IPVS_PY_IHT_WALKSTATS_H

#include <stdatomic.h>
#include <stdint.h>

/* Histogram bins: walked = 0 .. IHT_WALK_BINS - 2 exactly, the last bin
 * IHT_WALK_BINS - 1 or more (its nodes are still in @walked exactly). */
#define IHT_WALK_BINS 4096

struct iht_walk_stats {
	_Atomic uint64_t lookups;
	_Atomic uint64_t hits;
	_Atomic uint64_t walked;		/* sum over lookups */
	_Atomic uint64_t hist[IHT_WALK_BINS];	/* lookups by nodes walked */
};

static inline void iht_walk_stats_add(_Atomic uint64_t *c, uint64_t v)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed)
			      + v, memory_order_relaxed);
}

/* Account one lookup that walked @walked nodes.  Any context. */
static inline void iht_walk_stats_note(struct iht_walk_stats *s,
				       uint64_t walked, int hit)
{
	iht_walk_stats_add(&s->lookups, 1);
	iht_walk_stats_add(&s->hits, hit != 0);
	iht_walk_stats_add(&s->walked, walked);
	iht_walk_stats_add(&s->hist[walked < IHT_WALK_BINS - 1 ?
				    walked : IHT_WALK_BINS - 1], 1);
}

static inline void iht_walk_stats_reset(struct iht_walk_stats *s)
{
	atomic_store(&s->lookups, 0);
	atomic_store(&s->hits, 0);
	atomic_store(&s->walked, 0);
	for (int i = 0; i < IHT_WALK_BINS; i++)
		atomic_store(&s->hist[i], 0);
}

/* Plain copy for callers (Cython) that cannot name _Atomic fields:
 * @out[0] lookups, [1] hits, [2] walked, [3 + k] hist[k]. */
static inline void iht_walk_stats_read(struct iht_walk_stats *s,
				       uint64_t out[IHT_WALK_BINS + 3])
{
	out[0] = atomic_load_explicit(&s->lookups, memory_order_relaxed);
	out[1] = atomic_load_explicit(&s->hits, memory_order_relaxed);
	out[2] = atomic_load_explicit(&s->walked, memory_order_relaxed);
	for (int i = 0; i < IHT_WALK_BINS; i++)
		out[3 + i] = atomic_load_explicit(&s->hist[i],
						  memory_order_relaxed);
}

/* Resize pauses: wall time of each rebuild (iht_resize_locked(), the
 * caller is blocked for all of it), the longest and the sum. */
struct iht_pause_stats {
	_Atomic uint64_t max_ns;
	_Atomic uint64_t total_ns;
};

static inline void iht_pause_note(struct iht_pause_stats *p, uint64_t ns)
{
	uint64_t cur = atomic_load_explicit(&p->max_ns, memory_order_relaxed);

	/* resize_lock is held: one writer, so plain load/store suffices */
	if (ns > cur)
		atomic_store_explicit(&p->max_ns, ns, memory_order_relaxed);
	iht_walk_stats_add(&p->total_ns, ns);
}

#endif /* IPVS_PY_IHT_WALKSTATS_H */
