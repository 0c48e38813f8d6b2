/* hlist_bl.h - singly linked bucket lists with the lock in the head.
 *
 * Like the kernel's hlist_bl (include/linux/list_bl.h, rculist_bl.h): a
 * bucket head is one word, the first node with bit 0 as the bucket lock
 * (bitlock.h).  Unlike the kernel:
 * - links are 32-bit references into the entry cage (iht_cage.h), not
 *   pointers: a head is 4 bytes (ref << 1 | lock) and a node 8 (next ref,
 *   hash_key) instead of 8 and 24, which is what keeps the table's
 *   overhead at or under 16 bytes per entry at lfactor 0 (docs/table.md);
 * - nodes have no pprev: unlinking walks the bucket, which the table's
 *   sizing keeps short (below one entry per bucket on average at
 *   lfactor <= 0).
 *
 * Readers walk a bucket without locks (acquire loads of each link),
 * concurrently with add/del under the bucket lock: a deleted node keeps its
 * next link, so a reader standing on it carries on; its memory is freed
 * only after a grace period (iht_rcu.h).
 */
#ifndef IPVS_PY_HLIST_BL_H
#define IPVS_PY_HLIST_BL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "bitlock.h"
#include "iht_cage.h"

/* The node callers embed in their entries (one per hash chain they are on:
 * the conn table embeds two, hn0 and hn1), 8-byte aligned, in memory from
 * the cage (iht_cage_alloc / iht_cage_chunk_alloc).  @next: reference of
 * the next node, 0 at the end.  @hash_key: table id (bit 31) plus the low
 * 31 bits of the entry's hash, written by the table. */
struct iht_node {
	_Atomic iht_ref next;
	_Atomic uint32_t hash_key;
};

struct iht_bl_head {
	_Atomic uint32_t first;		/* first node's ref << 1 | lock bit */
};

static inline struct iht_node *iht_bl_ptr(uint32_t v)
{
	return (struct iht_node *)iht_ptr_of(v >> 1);
}

static inline uint32_t iht_bl_word(const struct iht_node *n)
{
	return (uint32_t)iht_ref_of(n) << 1;
}

/* First node, for lock-free readers (within a read-side section). */
static inline struct iht_node *iht_bl_first_rcu(struct iht_bl_head *h)
{
	return iht_bl_ptr(atomic_load_explicit(&h->first,
					       memory_order_acquire));
}

/* First node, for the holder of the bucket lock. */
static inline struct iht_node *iht_bl_first_locked(struct iht_bl_head *h)
{
	return iht_bl_ptr(atomic_load_explicit(&h->first,
					       memory_order_relaxed));
}

static inline struct iht_node *iht_node_next_rcu(struct iht_node *n)
{
	return (struct iht_node *)iht_ptr_of(
		atomic_load_explicit(&n->next, memory_order_acquire));
}

/* Next node, for the holder of the bucket lock (or a single owner). */
static inline struct iht_node *iht_node_next_locked(struct iht_node *n)
{
	return (struct iht_node *)iht_ptr_of(
		atomic_load_explicit(&n->next, memory_order_relaxed));
}

static inline int iht_bl_empty(struct iht_bl_head *h)
{
	return iht_bl_first_rcu(h) == NULL;
}

static inline void iht_bl_lock(struct iht_bl_head *h) { iht_bit_lock(&h->first); }
static inline void iht_bl_unlock(struct iht_bl_head *h) { iht_bit_unlock(&h->first); }

/* Publish @n as the first node of locked bucket @h.  The node's fields are
 * stored before the release store of the head, so a reader that sees @n
 * sees them.  The lock bit stays set. */
static inline void iht_bl_add_head_locked(struct iht_bl_head *h,
					  struct iht_node *n)
{
	uint32_t w = atomic_load_explicit(&h->first, memory_order_relaxed);

	atomic_store_explicit(&n->next, w >> 1, memory_order_relaxed);
	atomic_store_explicit(&h->first, iht_bl_word(n) | IHT_BITLOCK_BIT,
			      memory_order_release);
}

/* Unlink @n from locked bucket @h.  @n->next is left as is, for readers
 * standing on @n.  Returns 0, or -1 if @n is not on @h (caller bug or a
 * stale hash key: the caller re-checks under the lock before calling). */
static inline int iht_bl_del_locked(struct iht_bl_head *h, struct iht_node *n)
{
	iht_ref next = atomic_load_explicit(&n->next, memory_order_relaxed);
	struct iht_node *p = iht_bl_first_locked(h);

	if (p == n) {
		atomic_store_explicit(&h->first,
				      (next << 1) | IHT_BITLOCK_BIT,
				      memory_order_release);
		return 0;
	}
	while (p) {
		struct iht_node *q = iht_node_next_locked(p);

		if (q == n) {
			atomic_store_explicit(&p->next, next,
					      memory_order_release);
			return 0;
		}
		p = q;
	}
	return -1;
}

#endif /* IPVS_PY_HLIST_BL_H */
