/* ipvs_stripe.h - striped writer locks over the buckets of a table.
 *
 * Seed 003 (nf_conntrack's nf_conntrack_locks[], commit 93bb0ceb75be,
 * Linux 3.18): instead of one global lock for every insert and delete, an
 * array of N locks, lock i covering the buckets whose index is i modulo N.
 * An operation that touches two buckets (a NAT conn's hn0 and hn1, the
 * no-cport rehash from the old to the new position) takes both locks IN
 * INCREASING INDEX ORDER, and
 * only once when the indexes are equal (nf_conntrack_double_lock()), so
 * two writers can never hold one lock each while waiting for the other.
 *
 * The IPVS 2026 series keeps the same idea for its conn table: a small
 * array of min(8, ...) spinlocks next to the per-bucket bit locks
 * (ARCHITECTURE.md "Locks"); the default here is that 8.  N = 1 is the
 * single global lock the seed starts from, kept for comparison
 * (bench/bench_multicore.py).
 *
 * The stripe index is taken from the low bits of a node's hash_key (the
 * bucket index is hash_key & (size - 1) and N never exceeds the smallest
 * table, so a stripe covers whole buckets in every array).
 *
 * Locking order: a stripe lock is taken BEFORE any bucket bit lock, and
 * after the resizer's seqcount stripe lock (see ipvs_table.h); never two
 * stripes out of order.
 */
#ifndef IPVS_PY_IPVS_STRIPE_H
#define IPVS_PY_IPVS_STRIPE_H

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "bitlock.h"

#define IPVS_STRIPES_DEFAULT	8	/* the kernel's conn table */
#define IPVS_STRIPES_MAX	256	/* = 1 << IHT_BITS_MIN (smallest array) */

/* One stripe: its lock word (iht_bit_lock) and its statistics on one
 * cache line.  The counters are written by the holder of the lock, on the
 * line it already owns: two shared atomic counters, bumped by every
 * two-stripe acquisition, made that one line bounce between workers on
 * every new conn. */
struct iht_stripe {
	_Atomic uint32_t w;
	uint64_t doubles;		/* two-stripe acquisitions, this one
					 * the lower (statistics) */
	uint64_t same;			/* ... of which both on this stripe */
	char pad[64 - 8 - 2 * sizeof(uint64_t)];	/* w and its padding: 8 */
};
_Static_assert(sizeof(struct iht_stripe) == 64, "one stripe, one line");

_Static_assert(sizeof(struct iht_stripe) == 64, "one stripe, one line");

struct iht_stripes {
	struct iht_stripe *l;		/* cache-line aligned */
	uint32_t n, mask;
};

/* Allocate @n stripes (a power of two, 1..IPVS_STRIPES_MAX).
 * Returns 0, -EINVAL (bad @n) or -ENOMEM.  Context: setup. */
static inline int iht_stripes_init(struct iht_stripes *s, uint32_t n)
{
	if (n < 1 || n > IPVS_STRIPES_MAX || (n & (n - 1)))
		return -EINVAL;
	s->l = aligned_alloc(64, (size_t)n * sizeof(*s->l));
	if (!s->l)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		atomic_init(&s->l[i].w, 0);
		s->l[i].doubles = 0;
		s->l[i].same = 0;
	}
	s->n = n;
	s->mask = n - 1;
	return 0;
}

/* Two-stripe acquisitions so far, and those with both on one stripe.
 * Context: no writer running (the counters are plain). */
static inline uint64_t iht_stripes_doubles(const struct iht_stripes *s)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < s->n; i++)
		sum += s->l[i].doubles;
	return sum;
}

static inline uint64_t iht_stripes_same(const struct iht_stripes *s)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < s->n; i++)
		sum += s->l[i].same;
	return sum;
}

static inline void iht_stripes_destroy(struct iht_stripes *s)
{
	free(s->l);
	s->l = NULL;
	s->n = 0;
}

/* Stripe of a node or key whose hash_key is @hk. */
static inline uint32_t iht_stripe_of(const struct iht_stripes *s, uint32_t hk)
{
	return hk & s->mask;
}

static inline void iht_stripe_lock(struct iht_stripes *s, uint32_t i)
{
	iht_bit_lock(&s->l[i].w);
}

static inline void iht_stripe_unlock(struct iht_stripes *s, uint32_t i)
{
	iht_bit_unlock(&s->l[i].w);
}

/* Take stripes @a and @b: lower index first, once when equal
 * (nf_conntrack_double_lock()).  Context: no stripe or bucket lock held. */
static inline void iht_stripe_lock2(struct iht_stripes *s, uint32_t a,
				    uint32_t b)
{
	uint32_t lo = a < b ? a : b;

	iht_stripe_lock(s, lo);
	s->l[lo].doubles++;
	if (a == b) {
		s->l[lo].same++;
		return;
	}
	iht_stripe_lock(s, a < b ? b : a);
}

/* Release what iht_stripe_lock2(@a, @b) took (reverse order). */
static inline void iht_stripe_unlock2(struct iht_stripes *s, uint32_t a,
				      uint32_t b)
{
	if (a != b)
		iht_stripe_unlock(s, a < b ? b : a);
	iht_stripe_unlock(s, a < b ? a : b);
}

#endif /* IPVS_PY_IPVS_STRIPE_H */
