/* iht_rcu.h - read-side sections and grace periods for the table.
 *
 * The kernel frees unlinked entries and old bucket arrays after an RCU grace
 * period.  User space has no RCU, so the table carries a small one: two
 * reader counters and an epoch (the classic two-counter SRCU scheme).
 *
 *   reader:   e = epoch; readers[e&1]++; if epoch != e: undo, retry.
 *             ... walk buckets ...; readers[e&1]--.
 *   writer:   (serialised by gp_lock) e = epoch; epoch = e+1;
 *             wait until readers[e&1] == 0 (in every thread slot).
 *
 * Why one flip is enough: every access is seq_cst, so in the single total
 * order either the reader's increment comes before the writer's read of the
 * counter (the writer waits for it) or after it, and then the reader's
 * re-read of the epoch comes after the writer's store and sees e+1, so the
 * reader backs off.  A reader with an older epoch was waited for by the
 * previous grace period.  Anything unlinked before iht_synchronize() began
 * is unreachable for readers that start after it returns.
 *
 * Cost: a read-side section is two atomic RMWs on a shared line (measured
 * with a lock/unlock loop on the 2-core dev VM: 9.4 ns alone, 15-20 ns
 * with two threads doing it at once); batch lookups enter once per
 * IHT_BATCH_SECTION keys, which also bounds how long a grace period waits.
 */
#ifndef IPVS_PY_IHT_RCU_H
#define IPVS_PY_IHT_RCU_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "iht_compat.h"

/* Reader counters are spread over IHT_RCU_SLOTS cache lines, one picked
 * per thread (the kernel's SRCU keeps them per CPU): with one shared pair,
 * two threads doing lookups at once bounced that line on every section
 * and two workers replayed 3x slower than one (bench/bench_multicore.py,
 * issue 8).  A grace period waits for every slot in turn. */
#define IHT_RCU_SLOTS 16

struct iht_rcu_slot {
	_Atomic int64_t readers[2];
	char pad[64 - 2 * sizeof(int64_t)];
};

struct iht_rcu {
	_Atomic uint64_t epoch;
	char pad0[56];
	struct iht_rcu_slot slot[IHT_RCU_SLOTS];
	pthread_mutex_t gp_lock;	/* serialises grace periods */
	_Atomic uint64_t grace_periods;	/* statistics */
};

/* This thread's reader slot (round robin over threads as they first read;
 * two threads sharing a slot is only slower, never wrong). */
static _Atomic unsigned int iht_rcu_next_slot;
static __thread unsigned int iht_rcu_my_slot;	/* slot + 1, 0: unset */

static inline unsigned int iht_rcu_thread_slot(void)
{
	if (!iht_rcu_my_slot)
		iht_rcu_my_slot = 1 + atomic_fetch_add_explicit(
			&iht_rcu_next_slot, 1, memory_order_relaxed) %
			IHT_RCU_SLOTS;
	return iht_rcu_my_slot - 1;
}

/* Give the calling thread reader slot @n mod IHT_RCU_SLOTS instead of
 * the round-robin one; returns the previous choice for
 * iht_rcu_restore_slot().  For threads whose number is known: a
 * multi-core replay starts new worker threads each run, and round robin
 * put worker 1 on worker 0's (the caller's) slot once every 16 runs -- the
 * lookups of that run bounced the slot's line between the two CPUs. */
static inline unsigned int iht_rcu_pin_slot(unsigned int n)
{
	unsigned int old = iht_rcu_my_slot;

	iht_rcu_my_slot = 1 + n % IHT_RCU_SLOTS;
	return old;
}

static inline void iht_rcu_restore_slot(unsigned int old)
{
	iht_rcu_my_slot = old;
}

static inline int iht_rcu_init(struct iht_rcu *r)
{
	atomic_init(&r->epoch, 0);
	for (int i = 0; i < IHT_RCU_SLOTS; i++) {
		atomic_init(&r->slot[i].readers[0], 0);
		atomic_init(&r->slot[i].readers[1], 0);
	}
	atomic_init(&r->grace_periods, 0);
	return pthread_mutex_init(&r->gp_lock, NULL) ? -1 : 0;
}

static inline void iht_rcu_destroy(struct iht_rcu *r)
{
	pthread_mutex_destroy(&r->gp_lock);
}

/* Enter a read-side section; returns the token to pass to the unlock
 * (thread slot << 1 | epoch parity).  Sections may not nest a grace
 * period (no iht_synchronize inside). */
static inline unsigned int iht_rcu_read_lock(struct iht_rcu *r)
{
	unsigned int ts = iht_rcu_thread_slot();

	for (;;) {
		uint64_t e = atomic_load(&r->epoch);
		unsigned int par = (unsigned int)(e & 1);

		atomic_fetch_add(&r->slot[ts].readers[par], 1);
		if (atomic_load(&r->epoch) == e)
			return ts << 1 | par;
		atomic_fetch_sub(&r->slot[ts].readers[par], 1);
	}
}

static inline void iht_rcu_read_unlock(struct iht_rcu *r, unsigned int tok)
{
	atomic_fetch_sub_explicit(&r->slot[tok >> 1].readers[tok & 1], 1,
				  memory_order_release);
}

/* Wait until every read-side section that began before this call has
 * ended.  Per slot: once a slot's old-epoch count was seen at 0 after the
 * flip, a reader that increments it later re-reads the epoch after the
 * flip and backs off, so the slot cannot hold an old reader again.
 * Context: not inside a read-side section, no bucket lock held; blocks
 * (spins, then yields). */
static inline void iht_rcu_synchronize(struct iht_rcu *r)
{
	unsigned int spins = 0;
	uint64_t e;

	pthread_mutex_lock(&r->gp_lock);
	e = atomic_load(&r->epoch);
	atomic_store(&r->epoch, e + 1);
	for (int i = 0; i < IHT_RCU_SLOTS; i++)
		while (atomic_load(&r->slot[i].readers[e & 1]) != 0)
			iht_spin_wait(&spins);
	atomic_fetch_add_explicit(&r->grace_periods, 1, memory_order_relaxed);
	pthread_mutex_unlock(&r->gp_lock);
}

#endif /* IPVS_PY_IHT_RCU_H */
