/* ipvs_flowcache.h - a tiny per-worker lookup cache in front of the conn
 * table (seed 001: "a per CPU cache for conntrack").
 *
 * Packets of one flow come in trains, so the last few flows a CPU looked
 * up are likely to be looked up again.  The cache keeps IPVS_FC_DEFAULT (4)
 * of them per worker, checked before hashing:
 * - a hit moves the entry to the front (most recent first), so a train
 *   hits at slot 0 and the scan stays short;
 * - a miss costs the scan of at most n keys, so the seed's balancing rule
 *   ("scanning the cache must cost less than hashing + walking a chain")
 *   bounds n; 4 keys are ~40 bytes of compares against a siphash and a
 *   cache-missing chain walk;
 * - replacement goes by timestamp: a flow found in the table enters the
 *   cache only when its previous packet came less than @admit jiffies ago,
 *   so slow flows (one packet a second, ICMP pings in the seed) never
 *   evict the busy flows, whatever their number; an admitted flow pushes
 *   out the least recently used entry;
 * - the cache is consulted only while the table is heavily loaded (more
 *   than @min_load entries per bucket, 4 by default as in the seed): with
 *   short chains one hash and one compare are as cheap as the scan.
 *
 * Validity: an entry remembers the object's generation word (*genp) at
 * insertion; the owner bumps it whenever the object is freed or re-keyed,
 * so a deleted or moved entry never matches again even if the slot is
 * reused.  A resize that only moves nodes between bucket arrays does not
 * change the object, so its entries stay valid.  The memory behind genp
 * must stay mapped while the cache lives (the conn slab is never unmapped
 * before the engine).  Context: one thread per cache (it is per worker).
 */
#ifndef IPVS_PY_IPVS_FLOWCACHE_H
#define IPVS_PY_IPVS_FLOWCACHE_H

#include <stdint.h>
#include <string.h>

#define IPVS_FC_DEFAULT		4
#define IPVS_FC_MAX		16
#define IPVS_FC_LOAD_ONE	16	/* min_load is in 1/16 entries/bucket */

/* The full lookup key, packed (IPv4 keeps words 1..3 zero). */
struct ipvs_fc_key {
	uint32_t raddr[4], laddr[4];
	uint16_t rport, lport;
	uint8_t af, proto, dir, pad;
};

struct ipvs_fc_ent {
	struct ipvs_fc_key k;
	void *obj;
	const uint32_t *genp;
	uint32_t gen;
};

struct ipvs_fc {
	int n;			/* capacity, 1..IPVS_FC_MAX */
	int used;
	uint32_t admit;		/* max gap (jiffies) for a flow to enter */
	uint32_t min_load;	/* in 1/IPVS_FC_LOAD_ONE entries per bucket */
	uint64_t hits, misses, admitted, rejected, bypassed, stale;
	struct ipvs_fc_ent e[IPVS_FC_MAX];
};

/* Set up an empty cache.  Returns 0 or -1 (@n out of 1..IPVS_FC_MAX). */
static inline int ipvs_fc_init(struct ipvs_fc *fc, int n, uint32_t min_load,
			       uint32_t admit)
{
	if (n < 1 || n > IPVS_FC_MAX)
		return -1;
	memset(fc, 0, sizeof(*fc));
	fc->n = n;
	fc->min_load = min_load;
	fc->admit = admit;
	return 0;
}

/* Nonzero when the table is loaded enough for the cache to pay:
 * @count entries in @size buckets, count > min_load * size. */
static inline int ipvs_fc_wanted(struct ipvs_fc *fc, int64_t count,
				 int64_t size)
{
	if ((uint64_t)count * IPVS_FC_LOAD_ONE > (uint64_t)size * fc->min_load)
		return 1;
	fc->bypassed++;
	return 0;
}

static inline int ipvs_fc_key_eq(const struct ipvs_fc_key *a,
				 const struct ipvs_fc_key *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

/* Drop entry @i, keeping the order of the others. */
static inline void ipvs_fc_drop(struct ipvs_fc *fc, int i)
{
	memmove(&fc->e[i], &fc->e[i + 1],
		(size_t)(fc->used - i - 1) * sizeof(fc->e[0]));
	fc->used--;
}

/* The object cached for @k, or NULL.  A hit moves to the front; an entry
 * for @k whose generation moved on is dropped (counted as stale). */
static inline void *ipvs_fc_get(struct ipvs_fc *fc, const struct ipvs_fc_key *k)
{
	for (int i = 0; i < fc->used; i++) {
		struct ipvs_fc_ent hit;

		if (!ipvs_fc_key_eq(&fc->e[i].k, k))
			continue;
		if (*fc->e[i].genp != fc->e[i].gen) {
			fc->stale++;
			ipvs_fc_drop(fc, i);
			break;
		}
		hit = fc->e[i];
		memmove(&fc->e[1], &fc->e[0], (size_t)i * sizeof(fc->e[0]));
		fc->e[0] = hit;
		fc->hits++;
		return hit.obj;
	}
	fc->misses++;
	return NULL;
}

/* Offer @obj (found in the table for @k, generation *@genp) whose
 * previous packet was @gap jiffies ago.  Admitted only when gap <= admit;
 * then it goes to the front and the last entry falls out when full. */
static inline void ipvs_fc_put(struct ipvs_fc *fc, const struct ipvs_fc_key *k,
			       void *obj, const uint32_t *genp, uint32_t gap)
{
	int last;

	if (gap > fc->admit) {
		fc->rejected++;
		return;
	}
	last = fc->used < fc->n ? fc->used++ : fc->n - 1;
	memmove(&fc->e[1], &fc->e[0], (size_t)last * sizeof(fc->e[0]));
	fc->e[0].k = *k;
	fc->e[0].obj = obj;
	fc->e[0].genp = genp;
	fc->e[0].gen = *genp;
	fc->admitted++;
}

static inline void ipvs_fc_flush(struct ipvs_fc *fc)
{
	fc->used = 0;
}

#endif /* IPVS_PY_IPVS_FLOWCACHE_H */
