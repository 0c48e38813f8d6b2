/* ipvs_mt_rows.h - which rows of the trace each worker of a multi-core
 * replay takes, and how their verdicts reach the output columns.
 *
 * Every row belongs to the worker ipvs_mt_shard_of() picks from its client
 * address (ipvs_mt.h explains why the client address).  With N > 1
 * workers:
 *
 *   1. slices: worker k fills the shard byte of the k-th N-th of the rows
 *      (not its own rows) and counts, per worker, how many of them each
 *      takes; all workers wait until every slice is filled;
 *   2. rows: worker k walks the shard bytes for its own rows, in trace
 *      order, and writes each verdict into ITS OWN stretch of a private
 *      results array (worker order, not trace order);
 *   3. scatter: once every worker is done, worker k copies the results of
 *      the rows of slice k from the private arrays into the output columns
 *      (the slice counts say where each worker's results for that slice
 *      begin).
 *
 * Why not write the output columns from step 2: a worker's rows are
 * interleaved with the others' in the trace, so both workers wrote the
 * same cache lines of dest_out/action_out at about the same time (they
 * walk the trace at the same pace): two workers spent 260 ms of CPU on
 * 2M established ACKs against one worker's 155 ms, and 180 ms with the
 * writes left out (bench/bench_multicore.py; docs/multicore.md).  Step 3
 * writes each output line from one worker.
 *
 * Why the shard bytes are computed by the workers (step 1): it was a
 * single-threaded shard_rows() + stable argsort in the Cython layer, ~12 ms
 * for 2M rows, with 48 MB of fresh temporaries each run.
 *
 * The memory (shard bytes, slice counts, private results: 6 bytes a row)
 * comes from a struct ipvs_mt_scratch the engine's owner keeps between
 * runs, so that a run does not page-fault fresh memory in (this VM zeroes
 * new pages at ~1 GB/s: 12 MB a run would be ~12 ms).
 *
 * With one worker none of this exists: the worker takes every row and
 * writes the output columns directly.
 */
#ifndef IPVS_PY_IPVS_MT_ROWS_H
#define IPVS_PY_IPVS_MT_ROWS_H

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/futex.h>

#include "iht_compat.h"

/* The trace, column by column (PacketBatch), as the Cython layer holds it.
 * Ports are host order.  Times: @times (jiffies) if not NULL, else
 * @seconds converted as ConnPath.replay converts them for the
 * single-threaded path (ipvs_mt_jiffies).  @n rows. */
struct ipvs_mt_batch {
	const uint8_t *saddr, *daddr;	/* n x 16 */
	const uint8_t *proto, *af, *flags, *dir;
	const uint16_t *sport, *dport;
	const uint32_t *fwmark, *len, *times;
	int32_t *dest_out;
	uint8_t *action_out;
	size_t n;
	const double *seconds;		/* used when times is NULL */
	double hz;
	uint32_t floor;			/* the clock before the replay */
};

/* max(round(@sec x @hz), @floor) as a uint32 jiffy count, exactly as
 * numpy's np.maximum(np.round(t * hz), floor).astype(np.uint32) computes
 * it below 2^32 jiffies (round half to even); beyond, it wraps, as
 * jiffies do (numpy's cast is undefined there: it warns, and its SIMD
 * loop gives 0). */
static inline uint32_t ipvs_mt_jiffies(double sec, double hz, uint32_t floor)
{
	double t = __builtin_rint(sec * hz);

	if (!(t >= (double)floor))
		t = (double)floor;
	return (uint32_t)(int64_t)t;
}

static inline uint32_t ipvs_mt_row_time(const struct ipvs_mt_batch *b,
					size_t i)
{
	return b->times ? b->times[i]
			: ipvs_mt_jiffies(b->seconds[i], b->hz, b->floor);
}

/* The worker of a client address: a multiplicative hash of the masked
 * address words (@mask: 16 bytes of netmask), its top 32 bits scaled to
 * 0..@nworkers-1 by a multiply and a shift (Lemire's range reduction)
 * rather than a modulo: the modulo compiled to a 64-bit div, on every row
 * of every multi-worker run.  Used for both the trace rows and the conns
 * already in the table. */
static inline uint32_t ipvs_mt_shard_of(const uint32_t *caddr,
					const uint32_t *mask, uint32_t nworkers)
{
	uint64_t h = 0;

	for (int i = 0; i < 4; i++)
		h = (h ^ (caddr[i] & mask[i])) * 0x9E3779B97F4A7C15ull;
	return (uint32_t)(((h >> 32) * nworkers) >> 32);
}

/* The worker of row @i of @b: ipvs_mt_shard_of() of its client address,
 * the source of a client->VIP packet or the destination of a reply. */
static inline uint32_t ipvs_mt_row_shard(const struct ipvs_mt_batch *b,
					 size_t i, const uint32_t *mask,
					 uint32_t nworkers)
{
	uint32_t a[4];

	memcpy(a, b->dir[i] == 1 /* IPVS_DIR_OUTPUT */ ? &b->daddr[i * 16]
						       : &b->saddr[i * 16], 16);
	return ipvs_mt_shard_of(a, mask, nworkers);
}

/* Memory for the per-row state, kept by the caller between runs (free it
 * with ipvs_mt_scratch_free).  Mapped, not malloc()ed: a long-lived
 * block of megabytes in malloc's heap changed where the next runs' numpy
 * result columns came from, and whether they page-faulted (~900 faults,
 * 12-20 ms of system time a run, bench/bench_mt_order.py). */
struct ipvs_mt_scratch {
	void *p;
	size_t cap;
};

static inline void ipvs_mt_scratch_free(struct ipvs_mt_scratch *s)
{
	if (s->p)
		munmap(s->p, s->cap);
	s->p = NULL;
	s->cap = 0;
}

struct ipvs_mt_rows {
	const struct ipvs_mt_batch *b;
	uint32_t nworkers, mask[4];
	uint8_t *shard;			/* worker of every row; NULL: 1 worker */
	uint32_t *counts;		/* [slice * cstride + worker] */
	size_t cstride;			/* a cache line multiple of uint32s */
	int32_t *pdest;			/* results, worker by worker */
	uint8_t *paction;
	_Atomic uint32_t slices_done;	/* step 1 done by this many */
	_Atomic uint32_t rows_done;	/* step 2 done by this many */
	_Atomic int threads;		/* 0 not known yet; 1 every worker has
					 * a thread (the workers scatter);
					 * 2 not (the caller scatters, after) */
};

static inline size_t ipvs_mt_lines(size_t bytes)
{
	return (bytes + 63) & ~(size_t)63;
}

/* Set up @r for @b on @nworkers workers, the memory from @s (grown if too
 * small).  Context: setup, single-threaded.  Returns 0 or -ENOMEM (then
 * @s is unchanged or empty). */
static inline int ipvs_mt_rows_init(struct ipvs_mt_rows *r,
				    struct ipvs_mt_scratch *s,
				    const struct ipvs_mt_batch *b,
				    uint32_t nworkers, const uint32_t *mask)
{
	size_t cbytes, need;
	char *p;

	memset(r, 0, sizeof(*r));
	r->b = b;
	r->nworkers = nworkers;
	memcpy(r->mask, mask, sizeof(r->mask));
	atomic_init(&r->slices_done, 0);
	atomic_init(&r->rows_done, 0);
	atomic_init(&r->threads, 0);
	if (nworkers == 1)
		return 0;
	r->cstride = ipvs_mt_lines(nworkers * sizeof(uint32_t)) /
		     sizeof(uint32_t);
	cbytes = ipvs_mt_lines((size_t)nworkers * r->cstride *
			       sizeof(uint32_t));
	need = cbytes + ipvs_mt_lines(b->n) + ipvs_mt_lines(b->n * 4) +
	       ipvs_mt_lines(b->n);
	need = (need + 4095) & ~(size_t)4095;
	if (need > s->cap) {
		void *q;

		ipvs_mt_scratch_free(s);
		q = mmap(NULL, need, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (q == MAP_FAILED)
			return -ENOMEM;
		s->p = q;
		s->cap = need;
	}
	p = s->p;
	r->counts = (uint32_t *)p;
	p += cbytes;
	r->shard = (uint8_t *)p;
	p += ipvs_mt_lines(b->n);
	r->pdest = (int32_t *)p;
	p += ipvs_mt_lines(b->n * 4);
	r->paction = (uint8_t *)p;
	return 0;
}

/* Rows [lo, hi) of slice @k of @r (k-th N-th of the trace). */
static inline void ipvs_mt_slice_bounds(const struct ipvs_mt_rows *r,
					uint32_t k, size_t *lo, size_t *hi)
{
	*lo = r->b->n * k / r->nworkers;
	*hi = r->b->n * (k + 1) / r->nworkers;
}

/* Count one more worker done with a step and wake the waiting ones. */
static inline void ipvs_mt_count_done(_Atomic uint32_t *ctr)
{
	atomic_fetch_add_explicit(ctr, 1, memory_order_release);
	syscall(SYS_futex, (uint32_t *)ctr, FUTEX_WAKE_PRIVATE, INT32_MAX,
		NULL, NULL, 0);
}

/*
 * Wait until @ctr (counted by ipvs_mt_count_done) reaches @target: spin a
 * little, then sleep on the counter.  A worker that finished its rows
 * first used to spin (yielding every IHT_SPIN_LIMIT polls) until the
 * others had: a spinning thread keeps its CPU looking busy, so the
 * scheduler left the other worker and the resize thread queued on the
 * other CPU.  That spin was 19% of the CPU samples of two workers making
 * new conns (perf, bench_multicore.py --only new); asleep, its CPU goes
 * to them.
 */
static inline void ipvs_mt_wait_count(_Atomic uint32_t *ctr, uint32_t target)
{
	unsigned int spins = 0;
	uint32_t v;

	while ((v = atomic_load_explicit(ctr, memory_order_acquire)) <
	       target) {
		if (spins < IHT_SPIN_LIMIT) {
			spins++;
			iht_cpu_relax();
			continue;
		}
		/* sleeps only while the count is still v */
		syscall(SYS_futex, (uint32_t *)ctr, FUTEX_WAIT_PRIVATE, v,
			NULL, NULL, 0);
	}
}

/* Step 1 for slice @k: the shard byte of each row, and how many rows of
 * the slice each worker takes.  Context: any thread, once per slice. */
static inline void ipvs_mt_rows_slice(struct ipvs_mt_rows *r, uint32_t k)
{
	const struct ipvs_mt_batch *b = r->b;
	uint32_t *cnt = &r->counts[k * r->cstride];
	size_t lo, hi;

	ipvs_mt_slice_bounds(r, k, &lo, &hi);
	memset(cnt, 0, r->nworkers * sizeof(*cnt));
	for (size_t i = lo; i < hi; i++) {
		uint32_t w = ipvs_mt_row_shard(b, i, r->mask, r->nworkers);

		r->shard[i] = (uint8_t)w;
		cnt[w]++;
	}
	ipvs_mt_count_done(&r->slices_done);
}

/* Where worker @k's results start in the private arrays (after every
 * earlier worker's rows).  Context: after step 1. */
static inline size_t ipvs_mt_rows_base(const struct ipvs_mt_rows *r,
				       uint32_t k)
{
	size_t base = 0;

	for (uint32_t s = 0; s < r->nworkers; s++)
		for (uint32_t j = 0; j < k; j++)
			base += r->counts[s * r->cstride + j];
	return base;
}

/* A worker's walk over its own rows: row numbers found a batch at a time
 * without a branch per row (a worker's rows are a random half of the
 * trace with two workers, and a "next row of mine" loop mispredicted
 * about once a row). */
#define IPVS_MT_OWN_BATCH 256

struct ipvs_mt_cursor {
	size_t scan;			/* next row to look at */
	uint32_t pos, m;		/* next in own[], rows in own[] */
	size_t own[IPVS_MT_OWN_BATCH];
};

/* The next row of worker @k, or SIZE_MAX when it has none left. */
static inline size_t ipvs_mt_cursor_next(const struct ipvs_mt_rows *r,
					 uint32_t k, struct ipvs_mt_cursor *c)
{
	if (c->pos == c->m) {
		size_t i = c->scan, n = r->b->n;
		uint32_t m = 0;

		if (!r->shard) {
			while (m < IPVS_MT_OWN_BATCH && i < n)
				c->own[m++] = i++;
		} else {
			for (; i < n && m < IPVS_MT_OWN_BATCH; i++) {
				c->own[m] = i;
				m += r->shard[i] == k;
			}
		}
		c->scan = i;
		c->pos = 0;
		c->m = m;
		if (!m)
			return SIZE_MAX;
	}
	return c->own[c->pos++];
}

/* Step 3 for slice @k: copy the results of its rows from the private
 * arrays into the output columns.  Context: every worker's step 2 done. */
static inline void ipvs_mt_rows_scatter(const struct ipvs_mt_rows *r,
					uint32_t k)
{
	const struct ipvs_mt_batch *b = r->b;
	size_t pos[256], lo, hi, base = 0;

	for (uint32_t j = 0; j < r->nworkers; j++) {
		size_t before = 0, total = 0;

		for (uint32_t s = 0; s < r->nworkers; s++) {
			uint32_t c = r->counts[s * r->cstride + j];

			total += c;
			if (s < k)
				before += c;
		}
		pos[j] = base + before;
		base += total;
	}
	ipvs_mt_slice_bounds(r, k, &lo, &hi);
	for (size_t i = lo; i < hi; i++) {
		size_t q = pos[r->shard[i]]++;

		b->dest_out[i] = r->pdest[q];
		b->action_out[i] = r->paction[q];
	}
}

#endif /* IPVS_PY_IPVS_MT_ROWS_H */
