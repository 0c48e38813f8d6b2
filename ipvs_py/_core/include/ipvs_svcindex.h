/* ipvs_svcindex.h - the packet path's service lookup, by hash.
 *
 * The engine keeps its own packet-path view of the services (struct
 * ipvs_csvc, by engine index, removed ones kept for their stats).  The
 * kernel finds a packet's service in its hashed service table
 * (ip_vs_service_find); this index does the same for the engine, so that
 * a new conn costs the same with 10 services or 100,000 (it was a linear
 * scan over all of them, three times for a miss: bench/bench_ctl.py
 * "packet path" rows).
 *
 * Open addressing with linear probing over a power-of-two array of
 * (engine index + 1), 0 empty, at most half full.  Two kinds of key share
 * it: <af, fwmark> for fwmark services and <af, protocol, addr, port> for
 * the others; only live services are in it.  It is rebuilt in
 * O(services) when a service changed (ipvs_svc_index_mark_dirty), before
 * the next lookup on the single-threaded path, and before a multi-core
 * replay starts (its workers only read it).  When the array cannot be
 * allocated the lookup falls back to the scan, so a lookup never fails for
 * lack of memory.
 */
#ifndef IPVS_PY_IPVS_SVCINDEX_H
#define IPVS_PY_IPVS_SVCINDEX_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

struct ipvs_csvc;

struct ipvs_svc_index {
	uint32_t *slot;		/* engine svc index + 1; 0: empty */
	uint32_t mask;		/* slots - 1 */
	int dirty;		/* a service changed since the build */
};

/* murmur3's finalizer: every input bit reaches every output bit, so
 * neighbouring VIPs and ports spread over the slots. */
static inline uint32_t ipvs_svc_index_mix(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

static inline uint32_t ipvs_svc_index_hash_fwm(uint8_t af, uint32_t fwmark)
{
	return ipvs_svc_index_mix(fwmark * 0x9E3779B1u ^ af ^ 0x80000000u);
}

static inline uint32_t ipvs_svc_index_hash_tuple(uint8_t af, uint8_t proto,
						 const uint32_t *addr,
						 uint16_t port)
{
	uint32_t h = addr[0];

	if (af == 10)
		h = ipvs_svc_index_mix(h) ^ addr[1] ^
		    ipvs_svc_index_mix(addr[2]) ^ addr[3];
	return ipvs_svc_index_mix(ipvs_svc_index_mix(h) ^
				  ((uint32_t)port << 16 | (uint32_t)proto << 8 |
				   af));
}

static inline uint32_t ipvs_svc_index_hash_of(const struct ipvs_csvc *s)
{
	return s->fwmark ? ipvs_svc_index_hash_fwm(s->af, s->fwmark)
			 : ipvs_svc_index_hash_tuple(s->af, s->protocol,
						     s->addr, s->port);
}

static inline void ipvs_svc_index_mark_dirty(struct ipvs_svc_index *x)
{
	x->dirty = 1;
}

static inline void ipvs_svc_index_free(struct ipvs_svc_index *x)
{
	free(x->slot);
	x->slot = NULL;
	x->mask = 0;
}

/* Index the live services of @svcs[0..@n).  Returns 0, or -ENOMEM with
 * no index (lookups then scan).  Context: no lookup runs concurrently. */
static inline int ipvs_svc_index_build(struct ipvs_svc_index *x,
				       const struct ipvs_csvc *svcs,
				       uint32_t n)
{
	uint64_t live = 0, size = 16;

	ipvs_svc_index_free(x);
	x->dirty = 0;
	for (uint32_t i = 0; i < n; i++)
		live += svcs[i].live != 0;
	while (size < 2 * live)
		size <<= 1;
	if (size > ((uint64_t)1 << 31))
		return -ENOMEM;
	x->slot = calloc(size, sizeof(*x->slot));
	if (!x->slot)
		return -ENOMEM;
	x->mask = (uint32_t)(size - 1);
	/* Ascending index order: of two live services with one key (the
	 * model never makes them) the lower index is found first, as the
	 * scan found it. */
	for (uint32_t i = 0; i < n; i++) {
		uint32_t b;

		if (!svcs[i].live)
			continue;
		for (b = ipvs_svc_index_hash_of(&svcs[i]) & x->mask;
		     x->slot[b]; b = (b + 1) & x->mask)
			;
		x->slot[b] = i + 1;
	}
	return 0;
}

/* The live fwmark service <@af, @fwmark>: its index or -1. */
static inline int ipvs_svc_index_fwm(const struct ipvs_svc_index *x,
				     const struct ipvs_csvc *svcs, uint8_t af,
				     uint32_t fwmark)
{
	for (uint32_t b = ipvs_svc_index_hash_fwm(af, fwmark) & x->mask;
	     x->slot[b]; b = (b + 1) & x->mask) {
		const struct ipvs_csvc *s = &svcs[x->slot[b] - 1];

		if (s->fwmark == fwmark && s->af == af)
			return (int)x->slot[b] - 1;
	}
	return -1;
}

/* The live service <@af, @proto, @addr, @port> (port network order): its
 * index or -1. */
static inline int ipvs_svc_index_tuple(const struct ipvs_svc_index *x,
				       const struct ipvs_csvc *svcs,
				       uint8_t af, uint8_t proto,
				       const uint32_t *addr, uint16_t port)
{
	for (uint32_t b = ipvs_svc_index_hash_tuple(af, proto, addr, port) &
			  x->mask;
	     x->slot[b]; b = (b + 1) & x->mask) {
		const struct ipvs_csvc *s = &svcs[x->slot[b] - 1];

		if (!s->fwmark && s->port == port && s->protocol == proto &&
		    s->af == af && s->addr[0] == addr[0] &&
		    (af != 10 || (s->addr[1] == addr[1] &&
				  s->addr[2] == addr[2] &&
				  s->addr[3] == addr[3])))
			return (int)x->slot[b] - 1;
	}
	return -1;
}

#endif /* IPVS_PY_IPVS_SVCINDEX_H */
