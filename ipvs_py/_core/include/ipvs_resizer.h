/* ipvs_resizer.h - the conn table's resize work on a thread of its own,
 * for the multi-core replay (ipvs_mt.h).
 *
 * The kernel never resizes in the packet path: an insert that takes the
 * count past u_thresh queues conn_resize_work (queue_delayed_work), and
 * the work item attaches the new array, moves the entries and installs it
 * while the CPUs go on with packets -- inserts into the new array, lookups
 * walking both (ip_vs_conn.c of the 2026 series).  Here a worker that sees
 * the request (iht_resize_pending) kicks this thread, which runs
 * iht_maybe_resize() until no request is left; when CPUs are short the
 * workers also move chunks of the rebuild between packets
 * (iht_help_move, ipvs_mt.h).  Done inline by a worker
 * instead, a quarter of the CPU time of new conns went into resizes while
 * the other worker spun on the moving buckets and two workers created
 * conns no faster than one (docs/multicore.md).
 *
 * The single-threaded replay keeps resizing inline at the same points as
 * before, so its results (table sizes included) do not change.
 *
 * Locking: lock and cv only guard the sleep (the resize itself takes the
 * table's resize_lock); kicked dedups signals so that a worker pays one
 * relaxed load per packet while a request is outstanding.
 */
#ifndef IPVS_PY_IPVS_RESIZER_H
#define IPVS_PY_IPVS_RESIZER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "ipvs_table.h"

struct ipvs_resizer {
	struct iht_table *t;
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	_Atomic int kicked;		/* a signal is on its way */
	int stop;			/* under lock */
	int running;			/* the thread was started */
	uint64_t runs;			/* iht_maybe_resize() calls */
};

static void *ipvs_resizer_main(void *arg)
{
	struct ipvs_resizer *r = arg;

	/* the last reader slot: workers 0.. take the first ones (ipvs_mt.h) */
	iht_rcu_pin_slot(IHT_RCU_SLOTS - 1);
	pthread_mutex_lock(&r->lock);
	for (;;) {
		/* clear before looking: a kick after this look signals */
		atomic_store(&r->kicked, 0);
		if (!iht_resize_pending(r->t)) {
			if (r->stop)
				break;
			pthread_cond_wait(&r->cv, &r->lock);
			continue;
		}
		pthread_mutex_unlock(&r->lock);
		iht_maybe_resize(r->t);	/* clears the request, rebuilds */
		r->runs++;
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* Start the resize thread for @t.  Context: setup, before the workers.
 * Returns 0, or an errno from pthread_create (then nothing runs and
 * ipvs_resizer_stop() is a no-op). */
static inline int ipvs_resizer_start(struct ipvs_resizer *r,
				     struct iht_table *t)
{
	int ret;

	r->t = t;
	r->stop = 0;
	r->runs = 0;
	r->running = 0;
	atomic_init(&r->kicked, 0);
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cv, NULL);
	ret = pthread_create(&r->th, NULL, ipvs_resizer_main, r);
	if (ret) {
		pthread_cond_destroy(&r->cv);
		pthread_mutex_destroy(&r->lock);
		return ret;
	}
	r->running = 1;
	return 0;
}

/* Wake the thread for a pending request (queue_delayed_work(..., 0)).
 * Cheap when a kick is already on its way.  Context: any thread. */
static inline void ipvs_resizer_kick(struct ipvs_resizer *r)
{
	if (atomic_load_explicit(&r->kicked, memory_order_relaxed) ||
	    atomic_exchange(&r->kicked, 1))
		return;
	pthread_mutex_lock(&r->lock);
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->lock);
}

/* End the thread once no request is pending (a request the workers made
 * is served by the thread even when they ended first, as the kernel's
 * queued work runs).  Context: after the workers ended. */
static inline void ipvs_resizer_stop(struct ipvs_resizer *r)
{
	if (!r->running)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = 1;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->th, NULL);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->lock);
	r->running = 0;
}

#endif /* IPVS_PY_IPVS_RESIZER_H */
