/* iht_bytes.h - the generic table of fixed-size byte keys to u64 values.
 *
 * The entry type behind ipvs_py._core.table.Table, built on ipvs_table.h:
 *
 *   struct ihb_entry { struct iht_node node;    8 bytes, table overhead
 *                      uint64_t value;           8 bytes, payload
 *                      uint8_t key[key_size]; }  payload
 *
 * Keys are hashed with SipHash-2-4 under the array's random key (the
 * conn table's choice: remote input must not pick buckets), truncated to
 * 32 bits as the kernel does ((u32)siphash(...)).
 * All functions are nogil C; entries are allocated under IHT_MEM_ENTRIES.
 */
#ifndef IPVS_PY_IHT_BYTES_H
#define IPVS_PY_IHT_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ipvs_table.h"

struct ihb_entry {
	struct iht_node node;
	uint64_t value;
	uint8_t key[];
};

/* Bytes of an entry before its key (the node and the value). */
#define IHB_ENTRY_HEADER offsetof(struct ihb_entry, key)

/* Per-table parameters, passed as the callbacks' ctx. */
struct ihb_ctx {
	size_t key_size;
	size_t entry_size;	/* sizeof(struct ihb_entry) + key_size */
};

/* Per-batch context: the table's parameters plus the output arrays. */
struct ihb_batch {
	struct ihb_ctx base;	/* first: callbacks cast ctx to ihb_ctx */
	uint64_t *values;
	uint8_t *found;
	uint64_t hits;
};

static inline struct ihb_entry *ihb_of(const struct iht_node *n)
{
	return (struct ihb_entry *)((char *)n - offsetof(struct ihb_entry,
							 node));
}

/* (u32)siphash(key bytes).  16- and 8-byte keys use the word forms, which
 * give the same value as the byte form over the same little-endian bytes
 * (tests/core/test_hashing.py, test_table.py) with no length loop.
 * Measured on a 1024-entry table (all in cache): batch lookups went from
 * 22-33 to 14 ns/key with this, the word compare and the 4-stage pipeline
 * together. */
static inline uint32_t ihb_key_hash(const void *key,
				    const ipvs_siphash_key_t *hk, void *ctx)
{
	const struct ihb_ctx *c = ctx;

	if (c->key_size == 16)
		return (uint32_t)ipvs_siphash_2u64(
			ipvs_load_le64(key),
			ipvs_load_le64((const uint8_t *)key + 8), hk);
	if (c->key_size == 8)
		return (uint32_t)ipvs_siphash_1u64(ipvs_load_le64(key), hk);
	return (uint32_t)ipvs_siphash(key, c->key_size, hk);
}

static inline uint32_t ihb_node_hash(const struct iht_node *n,
				     const ipvs_siphash_key_t *hk, void *ctx)
{
	return ihb_key_hash(ihb_of(n)->key, hk, ctx);
}

/* Key compare; 8- and 16-byte keys (addresses, address+port pairs) are
 * compared as words instead of through a memcmp call (not measured alone;
 * see ihb_key_hash for the measurement of the pair). */
static inline int ihb_cmp(const struct iht_node *n, const void *key,
			  void *ctx)
{
	const struct ihb_ctx *c = ctx;
	const uint8_t *a = ihb_of(n)->key;

	if (c->key_size == 16) {
		uint64_t a0, a1, b0, b1;

		memcpy(&a0, a, 8); memcpy(&a1, a + 8, 8);
		memcpy(&b0, key, 8); memcpy(&b1, (const uint8_t *)key + 8, 8);
		return a0 == b0 && a1 == b1;
	}
	if (c->key_size == 8) {
		uint64_t a0, b0;

		memcpy(&a0, a, 8); memcpy(&b0, key, 8);
		return a0 == b0;
	}
	return memcmp(a, key, c->key_size) == 0;
}

/* Insert a copy of @key -> @value.  Returns 1 if a resize was requested,
 * 0 if not, -ENOMEM.  Context: no read-side section, no lock. */
static inline int ihb_insert(struct iht_table *t, struct ihb_ctx *c,
			     const uint8_t *key, uint64_t value)
{
	struct ihb_entry *e = iht_mem_alloc(&t->mem, IHT_MEM_ENTRIES,
					    c->entry_size, 0);

	if (!e)
		return -ENOMEM;
	e->value = value;
	memcpy(e->key, key, c->key_size);
	return iht_insert(t, &e->node, e->key, ihb_key_hash, c, 1);
}

/* Value of one entry with @key into *@value; returns 1 if found. */
static inline int ihb_lookup(struct iht_table *t, struct ihb_ctx *c,
			     const uint8_t *key, uint64_t *value)
{
	unsigned int slot = iht_read_lock(t);
	struct iht_node *n = iht_lookup(t, key, ihb_key_hash, ihb_cmp, c);

	if (n)
		*value = ihb_of(n)->value;
	iht_read_unlock(t, slot);
	return n != NULL;
}

/* Values of all entries with @key (up to @max into @out); returns how many
 * exist.  Holds resize_lock so no entry is counted in both arrays. */
static inline size_t ihb_lookup_all(struct iht_table *t, struct ihb_ctx *c,
				    const uint8_t *key, uint64_t *out,
				    size_t max)
{
	size_t cnt = 0;
	unsigned int slot;

	pthread_mutex_lock(&t->resize_lock);
	slot = iht_read_lock(t);
	for (struct iht_tbl *tb = iht_first_tbl(t); tb; tb = iht_next_tbl(tb)) {
		uint32_t hk = iht_build_hash_key(tb,
						 ihb_key_hash(key, &tb->hash_key, c));

		for (struct iht_node *n = iht_bl_first_rcu(iht_bucket(tb, hk));
		     n; n = iht_node_next_rcu(n)) {
			if (atomic_load_explicit(&n->hash_key,
						 memory_order_relaxed) == hk &&
			    ihb_cmp(n, key, c)) {
				if (cnt < max)
					out[cnt] = ihb_of(n)->value;
				cnt++;
			}
		}
	}
	iht_read_unlock(t, slot);
	pthread_mutex_unlock(&t->resize_lock);
	return cnt;
}

/* Remove one entry with @key; its value into *@value.  Returns 1 if one
 * was removed (its memory is retired), 0 if none.  *@requested: set when
 * the services' shrink rule requested a resize. */
static inline int ihb_remove(struct iht_table *t, struct ihb_ctx *c,
			     const uint8_t *key, uint64_t *value)
{
	struct iht_node *n = iht_remove_key(t, key, ihb_key_hash, ihb_cmp, c,
					    1);

	if (!n)
		return 0;
	*value = ihb_of(n)->value;	/* still ours until retired */
	iht_retire(t, ihb_of(n), c->entry_size);
	return 1;
}

/* Remove one entry with @key the way callers that hold entry pointers do
 * (the conn table): find it, then iht_unlink() it by its saved hash_key,
 * following a concurrent resize.  Only safe while no other thread removes
 * entries of this table (the caller owns the entry between lookup and
 * unlink); the Python layer exposes it as a test hook. */
static inline int ihb_unlink_one(struct iht_table *t, struct ihb_ctx *c,
				 const uint8_t *key, uint64_t *value)
{
	unsigned int slot = iht_read_lock(t);
	struct iht_node *n = iht_lookup(t, key, ihb_key_hash, ihb_cmp, c);

	iht_read_unlock(t, slot);
	if (!n || iht_unlink(t, n, 1))
		return 0;
	*value = ihb_of(n)->value;
	iht_retire(t, ihb_of(n), c->entry_size);
	return 1;
}

static inline void ihb_emit(size_t i, struct iht_node *n, void *ctx)
{
	struct ihb_batch *b = ctx;

	if (n) {
		b->values[i] = ihb_of(n)->value;
		b->found[i] = 1;
		b->hits++;
	} else {
		b->values[i] = 0;
		b->found[i] = 0;
	}
}

/* Batch lookup of @n keys laid out back to back; fills b->values and
 * b->found; returns the number of hits.  Context: nogil, no lock. */
static inline uint64_t ihb_lookup_batch(struct iht_table *t,
					struct ihb_batch *b,
					const uint8_t *keys, size_t n)
{
	b->hits = 0;
	iht_lookup_batch(t, n, keys, b->base.key_size, ihb_key_hash, ihb_cmp,
			 ihb_emit, b, b->base.entry_size);
	return b->hits;
}

/* iht_destroy() callback: free one entry. */
static inline void ihb_free_node(struct iht_node *n, void *ctx)
{
	struct iht_table *t = ctx;

	iht_mem_free(&t->mem, IHT_MEM_ENTRIES, ihb_of(n),
		     ((struct ihb_ctx *)t->ctx)->entry_size);
}

#endif /* IPVS_PY_IHT_BYTES_H */
