/* bitlock.h - a spin lock in bit 0 of a 32-bit atomic word.
 *
 * The kernel's hlist_bl keeps the bucket lock in bit 0 of the head pointer
 * (bit_spin_lock(0, ...)), so a bucket costs one word and locking it touches
 * the cache line the lookup needs anyway.  Our bucket heads are 32-bit
 * words holding a node reference shifted left by one (hlist_bl.h), so bit 0
 * is free; the padded stripe locks below use the same word.
 *
 * Memory order: lock is an acquire RMW, unlock a release RMW, the usual
 * lock semantics.  Readers never take the lock; they mask bit 0 off.
 */
#ifndef IPVS_PY_BITLOCK_H
#define IPVS_PY_BITLOCK_H

#include <stdatomic.h>
#include <stdint.h>

#include "iht_compat.h"

#define IHT_BITLOCK_BIT ((uint32_t)1)

/* Take the lock in bit 0 of @w.  Context: any thread; spins (then yields)
 * while another thread holds it.  Never call with the GIL held if the holder
 * might need the GIL (see the locking table in ipvs_table.h). */
static inline void iht_bit_lock(_Atomic uint32_t *w)
{
	unsigned int spins = 0;

	for (;;) {
		uint32_t v = atomic_fetch_or_explicit(w, IHT_BITLOCK_BIT,
						      memory_order_acquire);
		if (!(v & IHT_BITLOCK_BIT))
			return;
		/* Test before test-and-set: spin on a shared line. */
		while (atomic_load_explicit(w, memory_order_relaxed) &
		       IHT_BITLOCK_BIT)
			iht_spin_wait(&spins);
	}
}

/* Try once; returns 1 when the lock was taken, 0 when it is busy. */
static inline int iht_bit_trylock(_Atomic uint32_t *w)
{
	return !(atomic_fetch_or_explicit(w, IHT_BITLOCK_BIT,
					  memory_order_acquire) &
		 IHT_BITLOCK_BIT);
}

/* Release the lock taken by iht_bit_lock(); the other bits are kept. */
static inline void iht_bit_unlock(_Atomic uint32_t *w)
{
	atomic_fetch_and_explicit(w, ~IHT_BITLOCK_BIT, memory_order_release);
}

/* True while some thread holds the lock (debug assertions only). */
static inline int iht_bit_is_locked(_Atomic uint32_t *w)
{
	return (int)(atomic_load_explicit(w, memory_order_relaxed) &
		     IHT_BITLOCK_BIT);
}

/* A lock padded to a cache line (64 bytes): the kernel's ip_vs_aligned_lock,
 * the per-table array that serialises seqcount writers. */
struct iht_spinlock {
	_Atomic uint32_t w;
	char pad[64 - sizeof(uint32_t)];
};
_Static_assert(sizeof(struct iht_spinlock) == 64, "one lock, one line");

static inline void iht_spin_lock(struct iht_spinlock *l) { iht_bit_lock(&l->w); }
static inline void iht_spin_unlock(struct iht_spinlock *l) { iht_bit_unlock(&l->w); }

#endif /* IPVS_PY_BITLOCK_H */
