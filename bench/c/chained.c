/* chained.c - the benchmark's baseline: a plain chained hash table.
 *
 * The simplest table that does the same work per lookup as ours: SipHash
 * of a 16-byte key under a fixed key (the same siphash.h), a power-of-two
 * array of list heads, malloc'd nodes {next, hash, value, key[16]}, a
 * straight loop: hash, walk, compare.  No locks, no seqcounts, no grace
 * periods, no prefetching.  bench_table.py builds it with setup.py's flags
 * (bench/_cbuild.py) and calls it through ctypes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "siphash.h"

struct cnode {
	struct cnode *next;
	uint32_t hash;
	uint64_t value;
	uint8_t key[16];
};

struct ctable {
	struct cnode **b;
	uint64_t mask;
	ipvs_siphash_key_t k;
};

void *ct_new(uint64_t size)
{
	struct ctable *t = calloc(1, sizeof(*t));

	t->b = calloc(size, sizeof(*t->b));
	t->mask = size - 1;
	t->k.key[0] = 0x0706050403020100ull;
	t->k.key[1] = 0x0f0e0d0c0b0a0908ull;
	return t;
}

int ct_insert(void *tp, const uint8_t *keys, const uint64_t *values,
	      uint64_t n)
{
	struct ctable *t = tp;

	for (uint64_t i = 0; i < n; i++) {
		struct cnode *c = malloc(sizeof(*c));

		if (!c)
			return -1;
		memcpy(c->key, keys + 16 * i, 16);
		c->value = values[i];
		c->hash = (uint32_t)ipvs_siphash(c->key, 16, &t->k);
		c->next = t->b[c->hash & t->mask];
		t->b[c->hash & t->mask] = c;
	}
	return 0;
}

/* Returns the number of hits; values[i] = value or 0. */
uint64_t ct_lookup(void *tp, const uint8_t *keys, uint64_t *values,
		   uint64_t n)
{
	struct ctable *t = tp;
	uint64_t hits = 0;

	for (uint64_t i = 0; i < n; i++) {
		const uint8_t *k = keys + 16 * i;
		uint32_t h = (uint32_t)ipvs_siphash(k, 16, &t->k);
		struct cnode *c = t->b[h & t->mask];

		values[i] = 0;
		for (; c; c = c->next) {
			if (c->hash == h && !memcmp(c->key, k, 16)) {
				values[i] = c->value;
				hits++;
				break;
			}
		}
	}
	return hits;
}

void ct_free(void *tp)
{
	struct ctable *t = tp;

	for (uint64_t i = 0; i <= t->mask; i++) {
		struct cnode *c = t->b[i];

		while (c) {
			struct cnode *n = c->next;

			free(c);
			c = n;
		}
	}
	free(t->b);
	free(t);
}
