/* ipvs_mt.h - multi-core replay: N worker threads, one shared engine.
 *
 * Like RSS on a NIC, the trace is split by flow: every packet goes to the
 * worker chosen by its CLIENT address (the source of a client->VIP packet,
 * the destination of a reply), masked by the coarsest persistence netmask
 * of the services (ipvs_mt_shard_of()).  Why the client address and not
 * the 5-tuple: a persistence template is keyed by the masked client
 * address and is read and re-armed by every conn of that client, and
 * conn_reuse/expiry look at the conn's own history; keyed this way, a
 * flow's packets in both directions, its template and all conns the
 * template controls belong to one worker, so per-flow work needs no
 * cross-worker ordering and gives the same result as one thread.  The
 * workers find their rows and hand back their verdicts as ipvs_mt_rows.h
 * describes.
 *
 * Each worker runs the unchanged packet path (ipvs_conn.h) on a CLONE of
 * the engine (struct ipvs_worker.e) whose e->mt points at what is shared:
 *
 *   state                     single thread     worker clone
 *   conn table                e->tab            shared (e->mt->tab); bucket
 *                                               bit locks + writer stripes
 *   conn slab ids             free list/bump    shared pool under pool.lock,
 *                                               handed out IPVS_MT_GRAB at a
 *                                               time; a freed id is reused by
 *                                               its worker only after a grace
 *                                               period (another worker may
 *                                               still be walking its node)
 *   timer heap, clock (now)   e->heap, e->now   per worker: a conn's timers
 *                                               only touch its own flow
 *                                               (the timers due during the
 *                                               run; ipvs_mt_split_timers)
 *   dest conn counters        plain int         atomics (atomic_t in the
 *   (active/inact/persist)                      kernel)
 *   packet/byte/conn stats    plain u64         per worker, summed at the
 *                                               end (the kernel's per-CPU
 *                                               cpustats)
 *   scheduler state           plain             rr/wrr: their service's
 *                                               sched_lock around a decision;
 *                                               the others read a per-worker
 *                                               copy of the rows, or the
 *                                               rows themselves when fixed
 *                                               for the run (lockless, as
 *                                               in the kernel); decision
 *                                               counts per worker, summed
 *   table entry count         atomic            atomic + a share per worker
 *                                               (iht_count_share_*)
 *   conns/no_cport/templates  plain             per worker deltas, summed
 *   flow cache                e->fc             one per worker
 *   drop_rate counter         plain             per worker (order-dependent)
 *
 * What equals one thread exactly: conns (keys, dest, state, flags, expiry),
 * dest/service/total counters, verdicts, whenever the scheduler's choice
 * does not depend on the global order of new conns (sh, dh, mh with no
 * u_thresh overload); rr/wrr/lc/... may legally choose differently, as two
 * CPUs may in the kernel (docs/multicore.md).
 *
 * Locking order: pool.lock and sched_lock are leaves (nothing is taken
 * while holding them except, for pool.lock, the mmap of a new chunk); the
 * table's own order (ipvs_table.h) applies inside the packet path.
 * Context: ipvs_mt_replay() runs without the GIL and returns when every
 * worker has finished; the engine must not be used by anyone else
 * meanwhile, and all services must have a C scheduler (no callback).
 */
#ifndef IPVS_PY_IPVS_MT_H
#define IPVS_PY_IPVS_MT_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "ipvs_conn.h"
#include "ipvs_mt_rows.h"
#include "ipvs_resizer.h"

#ifndef RUSAGE_THREAD		/* Linux's, declared only with _GNU_SOURCE */
#define RUSAGE_THREAD 1
#endif

#define IPVS_MT_MAX_WORKERS	64
#define IPVS_MT_GRAB		64	/* slab ids taken from the pool at once */
#define IPVS_MT_REUSE_MIN	256	/* freed ids gathered per grace period */
#define IPVS_MT_PF_DIST		16	/* prefetch distance (rows), as replay */
#define IPVS_MT_PF_RING		32

struct ipvs_mt_shared {
	struct ipvs_engine *e;		/* the engine being cloned */
	pthread_mutex_t pool_lock;	/* e->free_head, e->bump, e->chunks */
	struct ipvs_mt_svc *svcs;	/* one per service */
	int max_rows;			/* most sched rows of a service */
	uint32_t chunk_cap;		/* e->chunks has room for this many */
	const struct ipvs_mt_batch *b;	/* the trace, or the first queue */
	struct ipvs_mt_rows rows;	/* whose rows, where results go (one
					 * trace; unused with queues) */
	uint32_t nworkers, mask[4];
	int queues;			/* b[k] is worker k's own queue */
	_Atomic uint32_t checked;	/* queues checked by this many */
	_Atomic int misrouted;		/* a queue holds another's row */
	const struct ipvs_fc *fc_conf;	/* NULL: no flow cache */
	int resize_help;		/* workers move chunks of rebuilds */
	struct ipvs_resizer rz;		/* the resize work (not running: the
					 * workers resize inline) */
};

/* Cache-line aligned, as are its stats arrays: workers write their own
 * clone and stats on every packet, and two workers' data on one line
 * made two workers slower than one (false sharing). */
struct ipvs_worker {
	_Alignas(64) struct ipvs_engine e;	/* the clone */
	struct ipvs_mt_ctx ctx;
	struct ipvs_mt_shared *sh;
	struct ipvs_fc fc;
	uint32_t *free_ids, *pend_ids;	/* reusable now / after a grace period */
	size_t nfree, npend, cap_free, cap_pend;
	uint32_t idx;			/* worker number (ipvs_mt_rows.h) */
	struct ipvs_mt_rows *rw;	/* its rows: &sh->rows, or own_rows */
	struct ipvs_mt_rows own_rows;	/* queues: all of its queue's rows */
	int sliced;			/* its slice of the shard map is done */
	int checked;			/* queues: its queue is checked */
	size_t misrouted_row;		/* queues: first row of another worker
					 * (SIZE_MAX: none) */
	uint32_t misrouted_to;		/* ... that worker */
	int64_t nconns0, no_cport0, ntemplates0;
	uint64_t grace_periods, pool_grabs;
	uint64_t helped;		/* buckets of rebuilds it moved */
	uint64_t cpu_ns, minflt;	/* this thread's, in the replay */
	uint64_t rows_cpu_ns, rows_ns;	/* CPU and wall time on its rows only
					 * (not the waits for the others) */
	int oom;
	pthread_t th;
};

/* Nanoseconds on @clk (CLOCK_MONOTONIC for phases, CLOCK_THREAD_CPUTIME_ID
 * for what a worker got of a CPU). */
static inline uint64_t ipvs_mt_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Minor page faults of the calling thread so far. */
static inline uint64_t ipvs_mt_minflt(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_THREAD, &ru) ? 0 : (uint64_t)ru.ru_minflt;
}

static inline int ipvs_mt_push_id(uint32_t **arr, size_t *n, size_t *cap,
				  uint32_t id)
{
	if (*n == *cap) {
		size_t nc = *cap ? 2 * *cap : 256;
		uint32_t *p = realloc(*arr, nc * sizeof(*p));

		if (!p)
			return -1;
		*arr = p;
		*cap = nc;
	}
	(*arr)[(*n)++] = id;
	return 0;
}

/* Take up to IPVS_MT_GRAB ids from the shared engine: its free list (ids
 * freed before the run: no reader can hold them), else fresh slots,
 * mapping a new chunk when the last one is used up.  Fresh slots are
 * taken to the end of their chunk (one 2 MiB huge page): the first write
 * to a chunk page-faults and the kernel zeroes the whole page, and with
 * 64-id grabs both workers wrote into the same page, so one waited
 * through the other's fault -- a quarter of the new-conn time was
 * clear_page under ipvs_conn_new (perf, bench_multicore.py).
 * Context: worker, no lock held. */
static inline void ipvs_mt_grab(struct ipvs_worker *w)
{
	struct ipvs_mt_shared *sh = w->sh;
	struct ipvs_engine *e = sh->e;
	int fresh = 0;

	pthread_mutex_lock(&sh->pool_lock);
	while (w->nfree < IPVS_MT_GRAB ||
	       (fresh && e->bump % IPVS_CONN_CHUNK)) {
		uint32_t id;

		if (e->free_head != IPVS_CONN_NONE) {
			struct ipvs_conn *c = ipvs_conn_of(e, e->free_head);

			id = e->free_head;
			e->free_head = c->dest < 0 ? IPVS_CONN_NONE
						   : (uint32_t)c->dest;
		} else {
			if (e->bump == e->nslots) {
				struct ipvs_conn *ch;

				if (e->nchunks == sh->chunk_cap)
					break;
				ch = ipvs_chunk_map();
				if (!ch)
					break;
				e->chunks[e->nchunks++] = ch;
				e->nslots += IPVS_CONN_CHUNK;
			}
			id = e->bump++;
			fresh = 1;
		}
		if (ipvs_mt_push_id(&w->free_ids, &w->nfree, &w->cap_free,
				    id)) {
			/* give it back: keeps the pool consistent */
			ipvs_conn_of(e, id)->dest = e->free_head ==
				IPVS_CONN_NONE ? -1 : (int32_t)e->free_head;
			e->free_head = id;
			w->oom = 1;
			break;
		}
	}
	w->pool_grabs++;
	pthread_mutex_unlock(&sh->pool_lock);
}

/* ipvs_mt_ctx.alloc: the worker's own freed ids once a grace period has
 * passed since they were unlinked, else ids from the pool. */
static uint32_t ipvs_mt_alloc(struct ipvs_mt_ctx *m)
{
	struct ipvs_worker *w = m->pool;

	if (!w->nfree && w->npend >= IPVS_MT_REUSE_MIN) {
		/* every lookup that could stand on these nodes has ended */
		iht_synchronize(m->tab);
		w->grace_periods++;
		uint32_t *t = w->free_ids;
		size_t c = w->cap_free;

		w->free_ids = w->pend_ids;
		w->cap_free = w->cap_pend;
		w->nfree = w->npend;
		w->pend_ids = t;
		w->cap_pend = c;
		w->npend = 0;
	}
	if (!w->nfree)
		ipvs_mt_grab(w);
	if (!w->nfree)
		return IPVS_CONN_NONE;
	return w->free_ids[--w->nfree];
}

/* ipvs_mt_ctx.free: park the id until the next grace period. */
static void ipvs_mt_free(struct ipvs_mt_ctx *m, uint32_t id)
{
	struct ipvs_worker *w = m->pool;

	if (ipvs_mt_push_id(&w->pend_ids, &w->npend, &w->cap_pend, id))
		w->oom = 1;		/* leaked until the engine dies */
}

/* Zeroed memory for @n (at least 1) items of @size, in whole cache lines
 * of its own (no false sharing with another worker's); free() it. */
static inline void *ipvs_mt_calloc_lines(size_t n, size_t size)
{
	size_t bytes = ipvs_mt_lines((n ? n : 1) * size);
	void *p = aligned_alloc(64, bytes);

	if (p)
		memset(p, 0, bytes);
	return p;
}

/* Build worker @w's clone of sh->e.  Context: single-threaded setup.
 * Returns 0 or -ENOMEM. */
static inline int ipvs_mt_worker_init(struct ipvs_worker *w,
				      struct ipvs_mt_shared *sh)
{
	struct ipvs_engine *m = sh->e, *c = &w->e;

	memset(w, 0, sizeof(*w));
	w->sh = sh;
	w->ctx.tab = &m->tab;
	w->ctx.svcs = sh->svcs;
	w->ctx.rows = ipvs_mt_calloc_lines((size_t)sh->max_rows,
					   sizeof(*w->ctx.rows));
	w->ctx.decisions = ipvs_mt_calloc_lines(m->nsvcs,
						sizeof(*w->ctx.decisions));
	w->ctx.alloc = ipvs_mt_alloc;
	w->ctx.free = ipvs_mt_free;
	w->ctx.pool = w;
	w->ctx.dstats = ipvs_mt_calloc_lines(m->ndests,
					     sizeof(*w->ctx.dstats));
	w->ctx.sstats = ipvs_mt_calloc_lines(m->nsvcs,
					     sizeof(*w->ctx.sstats));
	if (!w->ctx.dstats || !w->ctx.sstats || !w->ctx.rows ||
	    !w->ctx.decisions)
		return -ENOMEM;
	/* configuration and shared arrays (never the table itself) */
	c->chunks = m->chunks;
	c->nchunks = m->nchunks;
	c->nslots = m->nslots;
	c->free_head = IPVS_CONN_NONE;
	c->bump = IPVS_CONN_NONE;	/* every id is a valid timer id */
	c->now = m->now;
	c->hz = m->hz;
	memcpy(c->tcp_timeouts, m->tcp_timeouts, sizeof(c->tcp_timeouts));
	c->udp_timeout = m->udp_timeout;
	memcpy(c->sctp_timeouts, m->sctp_timeouts, sizeof(c->sctp_timeouts));
	c->secure_tcp = m->secure_tcp;
	c->conn_reuse_mode = m->conn_reuse_mode;
	c->expire_nodest_conn = m->expire_nodest_conn;
	c->expire_quiescent_template = m->expire_quiescent_template;
	c->sloppy_tcp = m->sloppy_tcp;
	c->sloppy_sctp = m->sloppy_sctp;
	c->drop_rate = m->drop_rate;
	c->drop_counter = m->drop_counter;
	c->rng = m->rng;
	memcpy(c->todrop_counter, m->todrop_counter,
	       sizeof(c->todrop_counter));
	c->dests = m->dests;
	c->ndests = m->ndests;
	c->cap_dests = m->cap_dests;
	c->svcs = m->svcs;
	c->nsvcs = m->nsvcs;
	c->cap_svcs = m->cap_svcs;
	c->sidx = m->sidx;	/* read only; built before the workers start */
	/* Linux 6.1 hashing: without it the workers hashed conns of a
	 * kernel="6.1" netns with the 2026 key hash, into buckets the
	 * single-threaded path then never looked in */
	c->hash61 = m->hash61;
	c->salt61 = m->salt61;
	/* no_cport gates a second lookup: start from the engine's count
	 * (a superset of this worker's, so no lookup is skipped wrongly) */
	c->nconns = w->nconns0 = m->nconns;
	c->no_cport = w->no_cport0 = m->no_cport;
	c->ntemplates = w->ntemplates0 = m->ntemplates;
	c->mt = &w->ctx;
	if (sh->fc_conf) {
		ipvs_fc_init(&w->fc, sh->fc_conf->n, sh->fc_conf->min_load,
			     sh->fc_conf->admit);
		c->fc = &w->fc;
	}
	return 0;
}

/* Queues: check that every row of @w's queue belongs to @w (its client
 * maps to w->idx under ipvs_mt_shard_of, as the rows of one trace are
 * split), so that a client's flows, its template and its conns already in
 * the table meet on one worker (ipvs_mt.h); the first row that does not is
 * kept in w->misrouted_row and stops the run before any row is processed.
 * Each worker reads only its own queue's address columns, in parallel
 * with the others.  Context: once per worker, before any worker's rows. */
static inline void ipvs_mt_queue_check(struct ipvs_worker *w)
{
	const struct ipvs_mt_shared *sh = w->sh;
	const struct ipvs_mt_batch *b = w->rw->b;

	w->misrouted_row = SIZE_MAX;
	for (size_t i = 0; i < b->n; i++) {
		uint32_t k = ipvs_mt_row_shard(b, i, sh->mask, sh->nworkers);

		if (k != w->idx) {
			w->misrouted_row = i;
			w->misrouted_to = k;
			atomic_store_explicit(&w->sh->misrouted, 1,
					      memory_order_relaxed);
			break;
		}
	}
	ipvs_mt_count_done(&w->sh->checked);
}

/* One worker: its rows in trace order (ipvs_mt_rows.h: first its slice
 * of the shard map, last its slice of the results), as ConnEngine.replay
 * runs all rows (timers first, then the decision), with the same
 * three-stage bucket prefetch a few rows ahead.  The resize thread may
 * replace the bucket array the hints point into; the replay keeps
 * replaced arrays until it ends (iht_defer_frees), so a hint always
 * points into valid memory and needs no read-side section (one per
 * packet, two atomic RMWs, was a sixth of a worker's time with
 * established flows, perf); the hints are dropped whenever the current
 * array or the resize count changed, as they point into an old array
 * then.  Measured: without the prefetch one worker replayed established
 * flows 3.4x slower than replay() (bench/bench_multicore.py). */
static void *ipvs_mt_worker_run(void *arg)
{
	struct ipvs_worker *w = arg;
	struct ipvs_mt_shared *sh = w->sh;
	struct ipvs_mt_rows *rw = w->rw;
	const struct ipvs_mt_batch *b = rw->b;
	struct iht_table *t = w->ctx.tab;
	/* own rows r..r+IPVS_MT_PF_DIST: their row numbers and bucket hints,
	 * at [own row number & (IPVS_MT_PF_RING - 1)] */
	size_t rowq[IPVS_MT_PF_RING];
	struct iht_bl_head *ring[IPVS_MT_PF_RING];
	size_t ahead, nq = 0, pbase = 0;
	struct ipvs_mt_cursor cur;
	struct iht_tbl *seen_tb = NULL;
	uint64_t seen_rz = 0;
	struct ipvs_pkt p;
	uint64_t cpu0 = ipvs_mt_ns(CLOCK_THREAD_CPUTIME_ID);
	uint64_t flt0 = ipvs_mt_minflt();
	/* a reader slot of its own (the resize thread's is the last) */
	unsigned int slot0 = iht_rcu_pin_slot(w->idx);
	struct iht_count_share share;

	iht_count_share_begin(&share, t);

	if (sh->queues) {
		if (!w->checked)
			ipvs_mt_queue_check(w);
		ipvs_mt_wait_count(&sh->checked, sh->nworkers);
		if (atomic_load_explicit(&sh->misrouted,
					 memory_order_relaxed)) {
			w->rows_ns = ipvs_mt_ns(CLOCK_MONOTONIC);
			w->rows_cpu_ns = ipvs_mt_ns(CLOCK_THREAD_CPUTIME_ID);
			goto rows_done;		/* nothing changes */
		}
	}
	if (rw->shard) {
		if (!w->sliced)
			ipvs_mt_rows_slice(rw, w->idx);
		ipvs_mt_wait_count(&rw->slices_done, rw->nworkers);
		pbase = ipvs_mt_rows_base(rw, w->idx);
	}
	memset(&p, 0, sizeof(p));
	memset(ring, 0, sizeof(ring));
	w->rows_ns = ipvs_mt_ns(CLOCK_MONOTONIC);
	w->rows_cpu_ns = ipvs_mt_ns(CLOCK_THREAD_CPUTIME_ID);
	cur.scan = 0;
	cur.pos = cur.m = 0;
	ahead = ipvs_mt_cursor_next(rw, w->idx, &cur);
	for (size_t r = 0;; r++) {
		struct ipvs_verdict v;
		struct iht_tbl *tb = iht_first_tbl(t);
		uint64_t rz = iht_resizes(t);
		int pf = !iht_next_tbl(tb);	/* no hints mid-resize */
		size_t i;

		if (tb != seen_tb || rz != seen_rz) {
			memset(ring, 0, sizeof(ring));
			seen_tb = tb;
			seen_rz = rz;
		}
		/* stage 1 for own row r + IPVS_MT_PF_DIST (all of the first
		 * ones at r = 0) */
		while (nq <= r + IPVS_MT_PF_DIST && ahead != SIZE_MAX) {
			size_t j = ahead, q = nq & (IPVS_MT_PF_RING - 1);

			rowq[q] = j;
			ring[q] = pf ? ipvs_prefetch_bucket(&w->e, b->af[j],
					b->proto[j],
					(const uint32_t *)&b->saddr[j * 16],
					__builtin_bswap16(b->sport[j]),
					(const uint32_t *)&b->daddr[j * 16],
					__builtin_bswap16(b->dport[j]),
					b->dir[j]) : NULL;
			nq++;
			ahead = ipvs_mt_cursor_next(rw, w->idx, &cur);
		}
		if (r == nq)
			break;			/* no own row left */
		if (pf) {
			if (r + IPVS_MT_PF_DIST / 2 < nq)
				ipvs_prefetch_conn(ring[(r + IPVS_MT_PF_DIST / 2) &
						      (IPVS_MT_PF_RING - 1)]);
			if (r + IPVS_MT_PF_DIST / 4 < nq)
				ipvs_prefetch_next(ring[(r + IPVS_MT_PF_DIST / 4) &
						      (IPVS_MT_PF_RING - 1)]);
		}
		i = rowq[r & (IPVS_MT_PF_RING - 1)];
		memcpy(p.saddr, &b->saddr[i * 16], 16);
		memcpy(p.daddr, &b->daddr[i * 16], 16);
		p.sport = __builtin_bswap16(b->sport[i]);
		p.dport = __builtin_bswap16(b->dport[i]);
		p.af = b->af[i];
		p.protocol = b->proto[i];
		p.flags = b->flags[i];
		p.dir = b->dir[i];
		p.fwmark = b->fwmark[i];
		p.len = b->len[i];
		v = ipvs_packet(&w->e, &p, ipvs_mt_row_time(b, i));
		if (rw->shard) {	/* own stretch: see ipvs_mt_rows.h */
			rw->pdest[pbase + r] = v.dest;
			rw->paction[pbase + r] = (uint8_t)v.action;
		} else {
			b->dest_out[i] = v.dest;
			b->action_out[i] = (uint8_t)v.action;
		}
		if (iht_resize_pending(t)) {
			if (sh->rz.running)
				ipvs_resizer_kick(&sh->rz);
			else
				iht_try_maybe_resize(t);  /* busy: later */
		}
		if (!pf && sh->resize_help)	/* a rebuild is on */
			w->helped += (uint64_t)iht_help_move(t);
	}
rows_done:
	iht_count_share_end(&share);
	w->rows_ns = ipvs_mt_ns(CLOCK_MONOTONIC) - w->rows_ns;
	w->rows_cpu_ns = ipvs_mt_ns(CLOCK_THREAD_CPUTIME_ID) - w->rows_cpu_ns;
	if (rw->shard) {
		int th;
		unsigned int spins = 0;

		/* the caller says whether every worker got a thread */
		while (!(th = atomic_load_explicit(&rw->threads,
						   memory_order_acquire)))
			iht_spin_wait(&spins);
		if (th == 1) {
			ipvs_mt_count_done(&rw->rows_done);
			ipvs_mt_wait_count(&rw->rows_done, rw->nworkers);
			ipvs_mt_rows_scatter(rw, w->idx);
		}
	}
	iht_rcu_restore_slot(slot0);
	w->cpu_ns = ipvs_mt_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	w->minflt = ipvs_mt_minflt() - flt0;
	return NULL;
}

/* Hand the timers due by @until (the trace's last row time) to the
 * workers that own their conns' clients, so that they fire during the
 * replay at their own time; the rest stay in the engine's heap, as no
 * worker clock reaches them (a worker's clock never passes its last row).
 * A worker that re-arms a conn earlier pushes an entry of its own, and
 * the engine's becomes stale (heap_expires differs), as on one thread.
 * Handing over the whole heap instead cost ~1 heap push per conn per run
 * (200k conns: 5-10 ms, more the more runs had shuffled the heap, as the
 * pushes read the conns in heap order) and a merge back.
 *
 * One pass over the heap array: due entries go to their worker's array,
 * the others are packed in place; then every array is made a heap
 * bottom-up.  Popping each due entry and pushing it cost O(log n) per
 * timer: 10.2-11.2 ms of setup for 200k due timers of a churn replay
 * (bench_multicore --part scaling).  Timers pop in (expires, cid) order
 * whatever the heap's layout, so nothing else changes.  Context:
 * single-threaded setup.  Returns 0, or -ENOMEM with every entry back
 * in the engine's heap. */
static inline int ipvs_mt_split_timers(struct ipvs_engine *m,
				       struct ipvs_worker *ws, uint32_t n,
				       const uint32_t *mask, uint32_t until)
{
	size_t kept = 0, i;
	uint32_t k;

	for (i = 0; i < m->heap_n; i++) {
		struct ipvs_timer_ent t = m->heap[i];

		if (ipvs_time_before(until, t.expires)) {
			m->heap[kept++] = t;
			continue;
		}
		k = 0;
		if ((t.cid & ~IPVS_TIMER_TMPL) < m->bump) {
			struct ipvs_conn *c = ipvs_conn_of(m,
					t.cid & ~IPVS_TIMER_TMPL);

			k = ipvs_mt_shard_of(c->caddr, mask, n);
		}
		if (ipvs_heap_append(&ws[k].e, t))
			goto undo;
	}
	m->heap_n = kept;
	ipvs_heap_build(m);
	for (k = 0; k < n; k++)
		ipvs_heap_build(&ws[k].e);
	return 0;
undo:
	/* the engine's array has room for all it held: the entries not yet
	 * looked at move down behind the kept ones, the handed-out ones
	 * come back, and the whole is a heap again */
	for (; i < m->heap_n; i++)
		m->heap[kept++] = m->heap[i];
	for (k = 0; k < n; k++) {
		struct ipvs_engine *c = &ws[k].e;

		for (size_t j = 0; j < c->heap_n; j++)
			m->heap[kept++] = c->heap[j];
		c->heap_n = 0;
	}
	m->heap_n = kept;
	ipvs_heap_build(m);
	return -ENOMEM;
}

/* Add a worker's stats @s to a dest or service @d (both end with the
 * same five counters, which are not one struct there). */
#define IPVS_MT_ADD_STATS(d, s) do {			\
		(d)->conns += (s)->conns;		\
		(d)->inpkts += (s)->inpkts;		\
		(d)->outpkts += (s)->outpkts;		\
		(d)->inbytes += (s)->inbytes;		\
		(d)->outbytes += (s)->outbytes;		\
	} while (0)

/* Fold worker @w back into the engine: timers, freed ids, counters and
 * statistics; frees the worker's own memory.  Context: single-threaded,
 * after the workers ended.  Returns 0 or -ENOMEM (a timer was lost). */
static inline int ipvs_mt_worker_merge(struct ipvs_engine *m,
				       struct ipvs_worker *w)
{
	struct ipvs_engine *c = &w->e;
	int ret = 0;

	for (size_t i = 0; i < c->heap_n; i++)
		if (ipvs_heap_push(m, c->heap[i].expires, c->heap[i].cid))
			ret = -ENOMEM;
	for (int k = 0; k < 2; k++) {
		uint32_t *ids = k ? w->pend_ids : w->free_ids;
		size_t n = k ? w->npend : w->nfree;

		for (size_t i = 0; i < n; i++) {
			ipvs_conn_of(m, ids[i])->dest = m->free_head ==
				IPVS_CONN_NONE ? -1 : (int32_t)m->free_head;
			m->free_head = ids[i];
		}
	}
	if (ipvs_time_before(m->now, c->now))
		m->now = c->now;
	m->nconns += c->nconns - w->nconns0;
	m->no_cport += c->no_cport - w->no_cport0;
	m->ntemplates += c->ntemplates - w->ntemplates0;
	m->tot_conns += c->tot_conns;
	m->tot_inpkts += c->tot_inpkts;
	m->tot_outpkts += c->tot_outpkts;
	m->tot_inbytes += c->tot_inbytes;
	m->tot_outbytes += c->tot_outbytes;
	m->allocs_failed += c->allocs_failed;
	for (uint32_t i = 0; i < m->ndests; i++)
		IPVS_MT_ADD_STATS(&m->dests[i], &w->ctx.dstats[i]);
	for (uint32_t i = 0; i < m->nsvcs; i++) {
		IPVS_MT_ADD_STATS(&m->svcs[i], &w->ctx.sstats[i]);
		if (m->svcs[i].sched)
			m->svcs[i].sched->decisions += w->ctx.decisions[i];
	}
	return ret;
}

static inline void ipvs_mt_worker_free(struct ipvs_worker *w)
{
	free(w->e.heap);
	free(w->free_ids);
	free(w->pend_ids);
	free(w->ctx.dstats);
	free(w->ctx.sstats);
	free(w->ctx.rows);
	free(w->ctx.decisions);
	w->e.heap = NULL;
	w->free_ids = w->pend_ids = NULL;
	w->ctx.dstats = w->ctx.sstats = NULL;
	w->ctx.rows = NULL;
	w->ctx.decisions = NULL;
}

/* Copy up to @cap entries of @m's timer heap, in heap order, to @out as
 * (expires, cid) pairs; returns the number of entries (tests). */
static inline size_t ipvs_mt_heap_copy(const struct ipvs_engine *m,
				       uint32_t *out, size_t cap)
{
	for (size_t i = 0; i < m->heap_n && i < cap; i++) {
		out[2 * i] = m->heap[i].expires;
		out[2 * i + 1] = m->heap[i].cid;
	}
	return m->heap_n;
}

/* Online CPUs. */
static inline int ipvs_mt_online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (int)n : 1;
}

/* At most this many worker threads per run, -1: no limit.  Tests set it
 * to run the path taken when pthread_create fails (the workers without a
 * thread run on the caller's thread after the others). */
static int ipvs_mt_thread_limit = -1;

/* Statistics of one run (for benchmarks and tests).  Phases, wall ns:
 * setup (worker clones, timers split), run (the workers' rows), finish
 * (merge, timers left, a pending resize); workers_cpu_ns and
 * workers_minflt: CPU time and minor page faults of the worker threads
 * in the replay; rows_cpu_ns/rows_ns: each worker's CPU and wall time on
 * its own rows (without its slice of the shard map, the waits for the
 * others and its slice of the verdicts)
 * while on their rows. */
struct ipvs_mt_stats {
	uint64_t setup_ns, run_ns, finish_ns, workers_cpu_ns, workers_minflt;
	uint64_t rows_cpu_ns[IPVS_MT_MAX_WORKERS], rows_ns[IPVS_MT_MAX_WORKERS];
	uint64_t grace_periods, pool_grabs;
	uint64_t bg_resizes;		/* rebuild checks by the resize thread */
	uint64_t helped_buckets;	/* rebuild buckets the workers moved */
	uint64_t fc_hits, fc_misses, fc_admitted, fc_rejected, fc_bypassed,
		 fc_stale;
	int64_t misrouted_queue, misrouted_row;	/* -EXDEV: the first row
						 * in a wrong queue, */
	int64_t misrouted_to;			/* and the queue it is of */
};

/* Replay on @nworkers threads.  One trace (@nb 1): worker k takes the
 * rows of @b whose client address (masked by @mask, 16 bytes)
 * ipvs_mt_shard_of() maps to k, in trace order (ipvs_mt_rows.h).  Queues
 * (@nb == @nworkers > 1, what a NIC's RSS queues deliver): worker k takes
 * every row of @b[k], each of which must map to k (checked by the
 * workers, in parallel, before any row is processed), and writes its
 * verdicts into @b[k]'s own output columns: no shard map, no scatter,
 * and no worker reads another's rows.  Either way worker k also takes the
 * due timers of the conns already in the table whose client maps to k.
 * @fc_conf: flow cache settings for every worker, or NULL.  @until: the
 * last row's time; timers due by then have run on return, as after a
 * single-threaded replay.  Returns 0, -EINVAL (a service needs the
 * Python scheduler, or bad @nworkers/@nb), -EXDEV (a queue holds a row
 * of another worker: @st->misrouted_queue/row say which; nothing has
 * changed), -ENOMEM (the engine is unchanged if setup failed; after the
 * run a conn that could not be allocated is counted in allocs_failed as
 * on one thread). */
static inline int ipvs_mt_replay(struct ipvs_engine *m,
				 const struct ipvs_mt_batch *b, uint32_t nb,
				 uint32_t nworkers, const uint32_t *mask,
				 const struct ipvs_fc *fc_conf, uint32_t until,
				 struct ipvs_mt_scratch *scratch,
				 struct ipvs_mt_stats *st)
{
	struct ipvs_mt_shared sh;
	struct ipvs_worker *ws;
	uint32_t k, started = 0;
	int ret = 0, ncpus;
	uint32_t lo, hi;		/* earliest, latest worker clock */
	uint64_t t0 = ipvs_mt_ns(CLOCK_MONOTONIC), t1, t2;

	if (nworkers < 1 || nworkers > IPVS_MT_MAX_WORKERS || m->mt ||
	    (nb != 1 && nb != nworkers))
		return -EINVAL;
	for (uint32_t i = 0; i < m->nsvcs; i++)
		if (m->svcs[i].live && !m->svcs[i].sched)
			return -EINVAL;
	memset(&sh, 0, sizeof(sh));
	sh.e = m;
	sh.b = b;
	sh.nworkers = nworkers;
	memcpy(sh.mask, mask, sizeof(sh.mask));
	sh.queues = nb > 1;
	atomic_init(&sh.checked, 0);
	atomic_init(&sh.misrouted, 0);
	sh.fc_conf = fc_conf;
	/* room for every new conn of the trace plus the grabs in flight, so
	 * that e->chunks never moves while workers read it */
	{
		uint64_t need = (uint64_t)m->bump +
			(uint64_t)nworkers * (IPVS_MT_GRAB + IPVS_CONN_CHUNK);
		uint32_t cap;
		struct ipvs_conn **nc;

		for (k = 0; k < nb; k++)
			need += b[k].n;
		cap = (uint32_t)(need / IPVS_CONN_CHUNK + 2);

		if (cap < m->nchunks)
			cap = m->nchunks;
		nc = realloc(m->chunks, (size_t)cap * sizeof(*nc));
		if (!nc)
			return -ENOMEM;
		m->chunks = nc;
		sh.chunk_cap = cap;
	}
	if (!sh.queues && ipvs_mt_rows_init(&sh.rows, scratch, b, nworkers,
					    mask))
		return -ENOMEM;
	ws = ipvs_mt_calloc_lines(nworkers, sizeof(*ws));
	if (!ws)
		return -ENOMEM;
	pthread_mutex_init(&sh.pool_lock, NULL);
	sh.svcs = ipvs_mt_calloc_lines(m->nsvcs, sizeof(*sh.svcs));
	if (!sh.svcs) {
		ret = -ENOMEM;
		goto out;
	}
	for (k = 0; k < m->nsvcs; k++) {
		struct ipvs_csvc *s = &m->svcs[k];

		atomic_init(&sh.svcs[k].sched_lock.w, 0);
		if (!s->sched)
			continue;
		if (s->sched->n > sh.max_rows)
			sh.max_rows = s->sched->n;
		/* the rows as of now, for rows that stay so (the workers'
		 * decisions on them read no dest) */
		ipvs_sched_rows_refresh(m, s, s->sched->d);
		sh.svcs[k].rows_fixed = ipvs_sched_rows_fixed(m, s);
	}
	for (k = 0; k < nworkers && !ret; k++) {
		ret = ipvs_mt_worker_init(&ws[k], &sh);
		ws[k].idx = k;
		ws[k].rw = &sh.rows;
		if (sh.queues) {	/* all its rows, results in place */
			ws[k].rw = &ws[k].own_rows;
			(void)ipvs_mt_rows_init(ws[k].rw, NULL, &b[k], 1, mask);
		}
	}
	if (!ret)
		ret = ipvs_mt_split_timers(m, ws, nworkers, mask, until);
	if (ret) {
		/* setup failed: the engine's heap is whole again (split
		 * undoes itself); change nothing */
		for (k = 0; k < nworkers; k++)
			ipvs_mt_worker_free(&ws[k]);
		goto out;
	}
	/* The arrays a resize makes during the run get the seqcounts of a
	 * machine with a CPU per possible worker (the kernel caps them at
	 * roundup_pow_of_two(nr_cpu_ids); ConnEngine models one CPU): with
	 * one seqcount, every bucket the resize thread moved made every
	 * concurrent lookup miss retry, and the workers spent most of their
	 * new-conn time re-walking (ipvs_conn_lookup 3.6x the samples of one
	 * worker, perf).  The layout is internal; nothing shows it. */
	ncpus = m->tab.prof.ncpus;
	if (m->tab.prof.ncpus < IPVS_MT_MAX_WORKERS)
		m->tab.prof.ncpus = IPVS_MT_MAX_WORKERS;
	iht_defer_frees(&m->tab, 1);	/* before any worker runs */
	/* the resize work's thread; if it cannot start, the workers resize
	 * inline (ipvs_mt_worker_run) */
	(void)ipvs_resizer_start(&sh.rz, &m->tab);
	/* Workers help a rebuild (iht_help_move) when the resize thread
	 * cannot have a CPU of its own: with one worker on two CPUs it
	 * rebuilds beside the worker, and a worker moving chunks itself
	 * only took work off the idle CPU (1 worker 4.68 -> 3.97 Mpps of new
	 * conns, bench_multicore.py); with two, the resize thread queued for
	 * a CPU while both workers looked up in two arrays. */
	sh.resize_help = m->mt_resize_help >= 0 ? m->mt_resize_help :
		(int)nworkers + 1 > ipvs_mt_online_cpus();
	t1 = ipvs_mt_ns(CLOCK_MONOTONIC);
	for (k = 1; k < nworkers; k++) {
		if ((ipvs_mt_thread_limit >= 0 &&
		     started >= (uint32_t)ipvs_mt_thread_limit) ||
		    pthread_create(&ws[k].th, NULL, ipvs_mt_worker_run, &ws[k]))
			break;
		started++;
	}
	/* the shard slices of workers without a thread (they run here after
	 * the others): fill them now, or the started ones would wait forever
	 * for them; and without a thread each, the workers cannot wait for
	 * each other to scatter the results: that is done here, after */
	for (k = started + 1; sh.rows.shard && k < nworkers; k++) {
		ipvs_mt_rows_slice(&sh.rows, k);
		ws[k].sliced = 1;
	}
	for (k = started + 1; sh.queues && k < nworkers; k++) {
		ipvs_mt_queue_check(&ws[k]);	/* likewise their checks */
		ws[k].checked = 1;
	}
	atomic_store_explicit(&sh.rows.threads, started + 1 == nworkers ? 1 : 2,
			      memory_order_release);
	ipvs_mt_worker_run(&ws[0]);
	for (k = 1; k <= started; k++)
		pthread_join(ws[k].th, NULL);
	for (k = started + 1; k < nworkers; k++)	/* no thread: run here */
		ipvs_mt_worker_run(&ws[k]);
	for (k = 0; sh.rows.shard && started + 1 < nworkers &&
		    k < nworkers; k++)
		ipvs_mt_rows_scatter(&sh.rows, k);
	t2 = ipvs_mt_ns(CLOCK_MONOTONIC);
	ipvs_resizer_stop(&sh.rz);
	iht_defer_frees(&m->tab, 0);	/* no worker left to hold a hint */
	m->tab.prof.ncpus = ncpus;
	memset(st, 0, sizeof(*st));
	st->misrouted_queue = st->misrouted_row = st->misrouted_to = -1;
	st->setup_ns = t1 - t0;
	st->run_ns = t2 - t1;
	st->bg_resizes = sh.rz.runs;
	lo = ws[0].e.now;
	for (k = 1; k < nworkers; k++)
		if (ipvs_time_before(ws[k].e.now, lo))
			lo = ws[k].e.now;
	for (k = 0; k < nworkers; k++) {
		if (ipvs_mt_worker_merge(m, &ws[k]))
			ret = -ENOMEM;
		st->grace_periods += ws[k].grace_periods;
		st->pool_grabs += ws[k].pool_grabs;
		st->helped_buckets += ws[k].helped;
		st->workers_cpu_ns += ws[k].cpu_ns;
		st->rows_cpu_ns[k] = ws[k].rows_cpu_ns;
		st->rows_ns[k] = ws[k].rows_ns;
		st->workers_minflt += ws[k].minflt;
		st->fc_hits += ws[k].fc.hits;
		st->fc_misses += ws[k].fc.misses;
		st->fc_admitted += ws[k].fc.admitted;
		st->fc_rejected += ws[k].fc.rejected;
		st->fc_bypassed += ws[k].fc.bypassed;
		st->fc_stale += ws[k].fc.stale;
		if (ws[k].oom)
			ret = -ENOMEM;
		if (sh.queues && ws[k].misrouted_row != SIZE_MAX &&
		    st->misrouted_queue < 0) {
			st->misrouted_queue = k;
			st->misrouted_row = (int64_t)ws[k].misrouted_row;
			st->misrouted_to = ws[k].misrouted_to;
		}
		ipvs_mt_worker_free(&ws[k]);
	}
	if (atomic_load(&sh.misrouted)) {
		/* no worker took a row: the merges gave the due timers back
		 * and changed nothing else; the clock stays */
		ret = -EXDEV;
		goto finish;
	}
	/* the workers ran their timers up to their own last packet: bring
	 * every conn to the trace's end, as one thread would have -- from
	 * the earliest worker clock, so that each timer left fires at its
	 * own time, as on one thread (from the latest clock, a template
	 * expiring with conns still controlled re-armed from that later
	 * time: found by the property test, trace(1, n=1471), sh, 2
	 * workers); and do a resize a worker left for later
	 * (iht_try_maybe_resize) */
	hi = m->now;
	m->now = lo;
	ipvs_run_timers(m, until);
	if (ipvs_time_before(m->now, hi))
		m->now = hi;
	if (iht_resize_pending(&m->tab))
		iht_maybe_resize(&m->tab);
finish:
	st->finish_ns = ipvs_mt_ns(CLOCK_MONOTONIC) - t2;
out:
	pthread_mutex_destroy(&sh.pool_lock);
	free(sh.svcs);
	free(ws);
	return ret;
}

#endif /* IPVS_PY_IPVS_MT_H */
