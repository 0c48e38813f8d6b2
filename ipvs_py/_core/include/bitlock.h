/* bitlock.h - a spin lock in bit 0 of an atomic word (pointer-sized for
 * the stripe locks, 32-bit for bucket heads).
 *
 * The kernel's hlist_bl keeps the bucket lock in bit 0 of the head pointer
 * (bit_spin_lock(0, ...)), so a bucket costs one word and locking it touches
 * the cache line the lookup needs anyway.  Pointers to our nodes are at least
 * 8-byte aligned, so bit 0 is free.
 *
 * Memory order: lock is an acquire RMW, unlock a release RMW, the usual
 * lock semantics.  Readers never take the lock; they mask bit 0 off.
 */
#ifndef IPVS_PY_BITLOCK_H
#define IPVS_PY_BITLOCK_H

#include <stdatomic.h>
#include <stdint.h>

#include "iht_compat.h"

#define IHT_BITLOCK_BIT ((uintptr_t)1)

/* Take the lock in bit 0 of @w.  Context: any thread; spins (then yields)
 * while another thread holds it.  Never call with the GIL held if the holder
 * might need the GIL (see the locking table in ipvs_table.h). */
static inline void iht_bit_lock(_Atomic uintptr_t *w)
{
	unsigned int spins = 0;

	for (;;) {
		uintptr_t v = atomic_fetch_or_explicit(w, IHT_BITLOCK_BIT,
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
static inline int iht_bit_trylock(_Atomic uintptr_t *w)
{
	return !(atomic_fetch_or_explicit(w, IHT_BITLOCK_BIT,
					  memory_order_acquire) &
		 IHT_BITLOCK_BIT);
}

/* Release the lock taken by iht_bit_lock(); the other bits are kept. */
static inline void iht_bit_unlock(_Atomic uintptr_t *w)
{
	atomic_fetch_and_explicit(w, ~IHT_BITLOCK_BIT, memory_order_release);
}

/* True while some thread holds the lock (debug assertions only). */
static inline int iht_bit_is_locked(_Atomic uintptr_t *w)
{
	return (int)(atomic_load_explicit(w, memory_order_relaxed) &
		     IHT_BITLOCK_BIT);
}

/* The same lock in bit 0 of a 32-bit word: the bucket heads, which hold a
 * 32-bit node reference shifted left by one (hlist_bl.h). */
#define IHT_BITLOCK32_BIT ((uint32_t)1)

static inline void iht_bit_lock32(_Atomic uint32_t *w)
{
	unsigned int spins = 0;

	for (;;) {
		uint32_t v = atomic_fetch_or_explicit(w, IHT_BITLOCK32_BIT,
						      memory_order_acquire);
		if (!(v & IHT_BITLOCK32_BIT))
			return;
		while (atomic_load_explicit(w, memory_order_relaxed) &
		       IHT_BITLOCK32_BIT)
			iht_spin_wait(&spins);
	}
}

static inline int iht_bit_trylock32(_Atomic uint32_t *w)
{
	return !(atomic_fetch_or_explicit(w, IHT_BITLOCK32_BIT,
					  memory_order_acquire) &
		 IHT_BITLOCK32_BIT);
}

static inline void iht_bit_unlock32(_Atomic uint32_t *w)
{
	atomic_fetch_and_explicit(w, ~IHT_BITLOCK32_BIT, memory_order_release);
}

static inline int iht_bit_is_locked32(_Atomic uint32_t *w)
{
	return (int)(atomic_load_explicit(w, memory_order_relaxed) &
		     IHT_BITLOCK32_BIT);
}

/* A lock padded to a cache line (64 bytes): the kernel's ip_vs_aligned_lock,
 * the per-table array that serialises seqcount writers. */
struct iht_spinlock {
	_Atomic uintptr_t w;
	char pad[64 - sizeof(uintptr_t)];
};

static inline void iht_spin_lock(struct iht_spinlock *l) { iht_bit_lock(&l->w); }
static inline void iht_spin_unlock(struct iht_spinlock *l) { iht_bit_unlock(&l->w); }

#endif /* IPVS_PY_BITLOCK_H */
