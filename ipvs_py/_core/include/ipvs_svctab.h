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
 * The entry lives inside the Python Service object, on the object's first
 * cache line, as the kernel's hlist node lives inside struct ip_vs_service
 * (ipvs_svcobj.h allocates such objects in the cage).  entry->obj points
 * back to that object; entry->handle is the object's index in a Python
 * list, which owns it while it is linked.  Nothing here touches Python
 * objects; the Cython layer (svctab.pyx) reads them only with the GIL
 * held.
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

/* One service in the table: 8-byte node + 8 + 32-byte key + 4 = 52 bytes.
 * Embedded in a Service object right after its 16-byte PyObject header, the
 * fields a lookup reads (node, obj, key) end at byte 64 of the object:
 * a hit reads one line, the one the caller's Py_INCREF writes anyway. */
struct svt_entry {
	struct iht_node node;
	/* The Python object that contains this entry (borrowed; the Python
	 * side owns it while the entry is linked and reads it only with the
	 * GIL held; C code never dereferences it). */
	void *obj;
	struct svt_key key;
	uint32_t handle;	/* index of the object in the owner's list */
};

#define SVT_ENTRY_LINE_BYTES 48	/* node + obj + key: what a lookup reads */
_Static_assert(offsetof(struct svt_entry, handle) == SVT_ENTRY_LINE_BYTES,
	       "node, obj and key fill 48 bytes, so with a 16-byte object "
	       "header they fill one cache line");

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

/* Queue the resize work (a write to svc_lfactor). */
static inline void svt_request_resize(struct iht_table *t)
{
	atomic_store(&t->resize_requested, 1);
}

/* Node fields for the Cython layer (it cannot name _Atomic members). */
static inline uint32_t svt_node_hash_key(const struct iht_node *n)
{
	return atomic_load_explicit(&((struct iht_node *)n)->hash_key,
				    memory_order_relaxed);
}

#endif /* IPVS_PY_IPVS_SVCTAB_H */
