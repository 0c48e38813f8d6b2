/* iht_sizing.h - table size, grow/shrink thresholds and lock counts.
 *
 * Transcribed from the kernel (net/netfilter/ipvs/ip_vs_core.c,
 * ip_vs_rht_desired_size() and ip_vs_rht_set_thresholds(), commit
 * b655388111cf "ipvs: add resizable hash tables", with 4ee52b7021a7 "fix
 * shift-out-of-bounds": n <= 1 rounds to 1), and the lock counts from
 * ip_vs_conn_tab_alloc() / ip_vs_svc_table_alloc() / ip_vs_rht_alloc().
 *
 * lfactor is a shift: the table is sized for load = 2^lfactor entries per
 * bucket; u_thresh = size << lfactor (size >> -lfactor) is where growth is
 * requested and l_thresh = u_thresh >> IHT_SHRINK_SHIFT where services
 * request a shrink.  A shrink keeps twice the needed size
 * (IHT_SHRINK_KEEP_SHIFT) so the table does not flap.
 *
 * The kernel computes in int; we compute in 64 bits so counts above 2^30
 * (where the kernel's int overflows) clamp instead of wrapping.  Results are
 * identical for all counts below 2^30.
 */
#ifndef IPVS_PY_IHT_SIZING_H
#define IPVS_PY_IHT_SIZING_H

#include <limits.h>
#include <stdint.h>

#define IHT_LFACTOR_MIN		(-8)
#define IHT_LFACTOR_MAX		8
#define IHT_BITS_MIN		1
#define IHT_BITS_MAX		27	/* kernel conn_tab_bits limit, 64-bit */
#define IHT_SHRINK_SHIFT	4	/* l_thresh = u_thresh / 16 */
#define IHT_SHRINK_KEEP_SHIFT	1	/* shrink to 2x the needed size */

static inline int64_t iht_roundup_pow_of_two(int64_t n)
{
	int64_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

static inline int64_t iht_clamp64(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : (v > hi ? hi : v);
}

/* Desired number of buckets for @n entries at @lfactor.
 * @have_tbl: 0 when no table exists yet (the kernel's t == NULL): the first
 * table has 1 << @min_bits buckets.  @tbl_size, @tbl_lfactor: the current
 * table's.  Pure function; any context. */
static inline int64_t iht_desired_size(int have_tbl, int64_t n, int lfactor,
				       int min_bits, int max_bits,
				       int64_t tbl_size, int tbl_lfactor)
{
	int64_t lo = (int64_t)1 << min_bits, hi = (int64_t)1 << max_bits;

	if (!have_tbl)
		return lo;
	n = n > 1 ? iht_roundup_pow_of_two(n) : 1;
	if (lfactor < 0) {
		int factor = -lfactor < max_bits ? -lfactor : max_bits;
		int64_t cap = (int64_t)1 << (max_bits - factor);

		n = (n < cap ? n : cap) << factor;
	} else {
		n >>= lfactor;
		n = n < hi ? n : hi;
	}
	if (lfactor != tbl_lfactor)
		return iht_clamp64(n, lo, hi);
	if (n > tbl_size)
		return n;
	if (n > tbl_size >> IHT_SHRINK_SHIFT)
		return tbl_size;
	return iht_clamp64(n << IHT_SHRINK_KEEP_SHIFT, lo, hi);
}

/* Grow (@u) and shrink (@l) thresholds of a table of @size buckets.
 * u: INT_MAX at the maximum size (stop growing); l: 0 at the minimum size
 * (stop shrinking).  Pure function; any context. */
static inline void iht_thresholds(int64_t size, int lfactor, int min_bits,
				  int max_bits, int64_t *u, int64_t *l)
{
	int64_t hi = (int64_t)1 << max_bits;

	if (size >= hi) {
		*u = INT_MAX;
	} else if (lfactor <= 0) {
		int shift = -lfactor < max_bits ? -lfactor : max_bits;

		*u = size >> shift;
	} else {
		int64_t cap = (int64_t)1 << (30 - lfactor);

		*u = (size < cap ? size : cap) << lfactor;
	}
	if (size >= hi)
		*l = hi >> IHT_SHRINK_SHIFT;
	else if (size > ((int64_t)1 << min_bits))
		*l = *u >> IHT_SHRINK_SHIFT;
	else
		*l = 0;
}

/* Lock layout of a table (the kernel's per-user choice).
 * seqcounts = clamp(size >> seqc_shift, 1, seqc_max); stripe locks =
 * min(locks, seqcounts); both then capped by size and by
 * roundup_pow_of_two(ncpus) as ip_vs_rht_alloc() does. */
struct iht_lock_profile {
	int seqc_shift;		/* conn 6, svc 4 */
	int seqc_max;		/* conn 256, svc 64 */
	int locks;		/* conn 8, svc 0 (only the resizer moves) */
	int ncpus;		/* nr_cpu_ids; <= 0 means 1 */
};

#define IHT_PROFILE_CONN { 6, 256, 8, 0 }
#define IHT_PROFILE_SVC  { 4, 64, 0, 0 }

/* Number of seqcounts and stripe locks for a table of @size buckets. */
static inline void iht_lock_counts(int64_t size,
				   const struct iht_lock_profile *p,
				   int *nseqc, int *nlocks)
{
	int64_t s = iht_clamp64(size >> p->seqc_shift, 1, p->seqc_max);
	int64_t ml = iht_roundup_pow_of_two(p->ncpus > 1 ? p->ncpus : 1);
	int64_t l;

	s = s < size ? s : size;
	s = s < ml ? s : ml;
	l = iht_clamp64(p->locks, 0, s);
	*nseqc = (int)s;
	*nlocks = (int)l;
}

#endif /* IPVS_PY_IHT_SIZING_H */
