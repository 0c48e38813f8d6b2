/* ipvs_svctab.h - the per-netns service table entries on the core table.
 *
 * Provenance: the kernel's svc_table of the "per-net tables" series
 * (commit 840aac3d900d "ipvs: use resizable hash table for services"),
 * written from its description in ARCHITECTURE.md, not copied.
 *
 * A service is one struct svt_entry in the resizable table (ipvs_table.h,
 * lock profile IHT_PROFILE_SVC, shrink on remove).  Its hash is the
 * kernel's jhash, seeded with the low 32 bits of the array's key:
 *
 *   <proto,addr,port>: jhash_3words(ntohs(port), protocol, addr32, (u32)key[0])
 *   fwmark:            jhash_2words(fwmark, af, (u32)key[0])
 *
 * addr32 is the raw (host order) IPv4 word, or the XOR of the four raw
 * words of an IPv6 address (ipv6_addr_hash()).  The table stores
 * table_id | (hash & 0x7fffffff) in node.hash_key, as the kernel does.
 *
 * entry->handle is the caller's handle: the index of the Python Service object
 * in a Python list, which owns the object; entry->obj is the same object,
 * borrowed.  Nothing here touches Python objects; the Cython layer
 * (svctab.pyx) reads them only with the GIL held.
 */
#ifndef IPVS_PY_IPVS_SVCTAB_H
#define IPVS_PY_IPVS_SVCTAB_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jhash.h"
#include "ipvs_table.h"

#define SVT_MIN_BITS	4	/* IP_VS_SVC_TAB_MIN_BITS */
#define SVT_MAX_BITS	20	/* IP_VS_SVC_TAB_MAX_BITS */

/* What a service is looked up by (and hashed on).  Addresses are kept in
 * 16 bytes, IPv4 zero-padded, with their length, so a compare is one
 * memcmp of a fixed size. */
struct svt_key {
	uint32_t addr32;	/* jhash input, see above */
	uint32_t fwmark;	/* 0 for <proto,addr,port> services */
	uint16_t port;		/* host order (ntohs) */
	uint8_t protocol;
	uint8_t af;
	uint8_t alen;		/* 4 or 16 */
	uint8_t pad[3];
	uint8_t addr[16];
};

/* One service in the table: 8-byte node + 32-byte key + 8 + 4 = 52 bytes,
 * on one 64-byte line (svt_entry_alloc). */
struct svt_entry {
	struct iht_node node;
	struct svt_key key;
	uint32_t handle;	/* index of the Python object (walks, tests) */
	/* The Python object itself, a borrowed reference: the Python side owns
	 * it (its handle list) for as long as the entry is linked, and only
	 * reads it with the GIL held.  C code never dereferences it.  It
	 * saves the handle -> list slot step of a lookup: measured at 100,000
	 * services (cold, loaded 2-core VM) the probe alone cost 530-740 ns
	 * and the list slot plus the object another 590-730 ns. */
	void *obj;
};

static inline struct svt_entry *svt_of(const struct iht_node *n)
{
	return (struct svt_entry *)((char *)n -
				    offsetof(struct svt_entry, node));
}

/* The u32 the kernel hashes for an address of @alen bytes. */
static inline uint32_t svt_addr32(const uint8_t *addr, unsigned int alen)
{
	uint32_t w = ipvs_load_le32(addr);

	if (alen == 16)
		w ^= ipvs_load_le32(addr + 4) ^ ipvs_load_le32(addr + 8) ^
		     ipvs_load_le32(addr + 12);
	return w;
}

static inline uint32_t svt_hash(const struct svt_key *k,
				const ipvs_siphash_key_t *hk)
{
	uint32_t key0 = (uint32_t)hk->key[0];

	if (k->fwmark)
		return ipvs_jhash_2words(k->fwmark, k->af, key0);
	return ipvs_jhash_3words(k->port, k->protocol, k->addr32, key0);
}

/* iht_key_hash_fn: hash of a lookup key (struct svt_key). */
static inline uint32_t svt_key_hash(const void *key,
				    const ipvs_siphash_key_t *hk, void *ctx)
{
	(void)ctx;
	return svt_hash((const struct svt_key *)key, hk);
}

/* iht_node_hash_fn: re-hash of an entry under a new array's key. */
static inline uint32_t svt_node_hash(const struct iht_node *n,
				     const ipvs_siphash_key_t *hk, void *ctx)
{
	(void)ctx;
	return svt_hash(&svt_of(n)->key, hk);
}

/* iht_key_cmp_fn: __ip_vs_service_find() / __ip_vs_svc_fwm_find()'s test.
 * A lookup for a fwmark has fwmark != 0 and matches only fwmark services
 * of that af; a <proto,addr,port> lookup has fwmark 0 and so never matches
 * a fwmark service.  The table has already compared hash_key. */
static inline int svt_cmp(const struct iht_node *n, const void *key,
			  void *ctx)
{
	const struct svt_key *e = &svt_of(n)->key, *k = key;

	(void)ctx;
	if (e->fwmark != k->fwmark || e->af != k->af)
		return 0;
	if (k->fwmark)
		return 1;
	return e->port == k->port && e->protocol == k->protocol &&
	       e->alen == k->alen && !memcmp(e->addr, k->addr, 16);
}

/* Fill @k for a <proto,addr,port> service (fwmark 0) or a fwmark service
 * (@fwmark != 0; then the address and port are ignored by the compare but
 * still stored).  @alen must be 4 or 16.  Returns 0 or -1 for a bad alen. */
static inline int svt_key_set(struct svt_key *k, uint8_t af, uint8_t protocol,
			      const uint8_t *addr, unsigned int alen,
			      uint16_t port, uint32_t fwmark)
{
	if (alen != 4 && alen != 16)
		return -1;
	memset(k, 0, sizeof(*k));
	memcpy(k->addr, addr, alen);
	k->alen = (uint8_t)alen;
	k->addr32 = svt_addr32(k->addr, alen);
	k->fwmark = fwmark;
	k->port = port;
	k->protocol = protocol;
	k->af = af;
	return 0;
}

/* Where new arrays' keys come from: one u32 drawn ahead by the Python side
 * from the netns' seeded random.Random (so Netns(seed=...) is
 * reproducible and draws the same sequence as the kernel draws keys: one
 * per array, the first at the first service add); getrandom() when none
 * is ready.  key[1] is unused by jhash and set to 0. */
struct svt_keysrc {
	uint32_t next;
	int ready;
	uint64_t used;		/* keys handed out (statistics, tests) */
};

/* iht_key_src_fn for struct svt_keysrc. */
static inline void svt_next_key(ipvs_siphash_key_t *k, void *ctx)
{
	struct svt_keysrc *s = ctx;

	if (s->ready) {
		k->key[0] = s->next;
		k->key[1] = 0;
		s->ready = 0;
	} else {
		iht_random_key(k);
	}
	s->used++;
}

/* Clear the resize request of the first add: the kernel allocates the
 * table in ip_vs_add_service() and checks u_thresh only for later adds. */
static inline void svt_cancel_resize(struct iht_table *t)
{
	atomic_store(&t->resize_requested, 0);
}

/* A zeroed entry on a cache line of its own, counted as IHT_MEM_ENTRIES;
 * freed with iht_mem_free() (svt_free_node, or after a grace period through
 * iht_retire()).  It takes the cage's 64-byte class, whose blocks are
 * 64-byte aligned, so that a lookup that compares the node's hash_key and
 * then the key reads one line, not two (a 16-byte aligned 52-byte block
 * straddles two lines three times in four).  Context: no table lock held.
 * NULL on ENOMEM. */
#define SVT_ENTRY_BYTES 64
_Static_assert(sizeof(struct svt_entry) <= SVT_ENTRY_BYTES,
	       "a service entry fits one cache line");

static inline struct svt_entry *svt_entry_alloc(struct iht_table *t)
{
	return iht_mem_alloc(&t->mem, IHT_MEM_ENTRIES, SVT_ENTRY_BYTES, 1);
}

/* Queue the resize work (a write to svc_lfactor). */
static inline void svt_request_resize(struct iht_table *t)
{
	atomic_store(&t->resize_requested, 1);
}

/* iht_destroy() callback: free an entry (ctx is the table). */
static inline void svt_free_node(struct iht_node *n, void *ctx)
{
	struct iht_table *t = ctx;

	iht_mem_free(&t->mem, IHT_MEM_ENTRIES, svt_of(n), SVT_ENTRY_BYTES);
}

/* Node fields for the Cython layer (it cannot name _Atomic members). */
static inline uint32_t svt_node_hash_key(const struct iht_node *n)
{
	return atomic_load_explicit(&((struct iht_node *)n)->hash_key,
				    memory_order_relaxed);
}

#endif /* IPVS_PY_IPVS_SVCTAB_H */
