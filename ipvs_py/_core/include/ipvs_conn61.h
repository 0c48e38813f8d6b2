/* ipvs_conn61.h - the conn hashing of Linux 6.1 (Netns(kernel="6.1")).
 *
 * Linux 6.1 net/netfilter/ipvs/ip_vs_conn.c keeps every conn of every
 * netns in one global table of 2^conn_tab_bits chains, one chain node per
 * conn (c_list), hashed on the client side only:
 *
 *   ip_vs_conn_hashkey(): IPv4
 *     (jhash_3words(addr, port, proto, ip_vs_conn_rnd) ^ ((size_t)ipvs >> 8))
 *        & ip_vs_conn_tab_mask
 *   IPv6: jhash(addr, 16, ip_vs_conn_rnd) in place of addr.
 *
 * addr/port are the raw network-order values.  ip_vs_conn_hashkey_param()
 * hashes caddr:cport for ip_vs_conn_in_get()/ip_vs_ct_in_get() and, with
 * inverse, p->vaddr:p->vport for ip_vs_conn_out_get() -- which for a reply
 * is the client again -- so a reply finds the conn in the same chain and
 * NAT conns need no second node.  ip_vs_conn_fill_cport() unhashes, sets
 * the port, rehashes.
 *
 * Here: ip_vs_conn_rnd is the low word of the table's random key, and
 * (size_t)ipvs >> 8 is the engine's salt61 (ConnEngine.use_61_hashing;
 * its low 8 bits are Netns.svc_salt, the same pointer's bits 8..15 the
 * 6.1 service hash mixes in).  The bucket is hash & (size - 1) because
 * the table keeps the low 31 bits of the hash (ipvs_table.h).
 */
#ifndef IPVS_PY_IPVS_CONN61_H
#define IPVS_PY_IPVS_CONN61_H

#include "jhash.h"

/* ip_vs_conn_hashkey() before the mask. */
static inline uint32_t ipvs_conn_hashkey61(uint8_t af, uint8_t proto,
					   const uint32_t *addr,
					   uint16_t port, uint32_t rnd,
					   uint32_t salt)
{
	uint32_t a = af == 10 ? ipvs_jhash((const uint8_t *)addr, 16, rnd)
			      : addr[0];

	return ipvs_jhash_3words(a, port, proto, rnd) ^ salt;
}

/* In 6.1 a conn has one node, hn[0]. */
static inline struct ipvs_conn *ipvs_conn_of_node61(const struct iht_node *n)
{
	return (struct ipvs_conn *)((char *)n - offsetof(struct ipvs_conn, hn));
}

/* Lookup keys hash their remote (client) side, whichever the direction;
 * @ctx is the engine (salt61). */
static uint32_t ipvs_ckey_hash61(const void *key, const ipvs_siphash_key_t *hk,
				 void *ctx)
{
	const struct ipvs_ckey *k = key;
	const struct ipvs_engine *e = ctx;

	return ipvs_conn_hashkey61(k->af, k->protocol, k->raddr, k->rport,
				   (uint32_t)hk->key[0], e->salt61);
}

static uint32_t ipvs_node_hash61(const struct iht_node *n,
				 const ipvs_siphash_key_t *hk, void *ctx)
{
	const struct ipvs_conn *c = ipvs_conn_of_node61(n);
	const struct ipvs_engine *e = ctx;

	return ipvs_conn_hashkey61(c->af, c->protocol, c->caddr, c->cport,
				   (uint32_t)hk->key[0], e->salt61);
}

/* __ip_vs_conn_in_get() (dir 0: vaddr:vport) and ip_vs_conn_out_get()
 * (dir 1: daddr:dport for NAT, vaddr:vport for DR/TUN) on the one node;
 * templates only match template keys (ip_vs_ct_in_get). */
static int ipvs_ckey_cmp61(const struct iht_node *n, const void *key,
			   void *ctx)
{
	const struct ipvs_ckey *k = key;
	const struct ipvs_conn *c = ipvs_conn_of_node61(n);
	(void)ctx;
	if (c->protocol != k->protocol || c->af != k->af ||
	    c->cport != k->rport ||
	    !!(c->flags & IPVS_CF_TEMPLATE) != k->tmpl ||
	    !ipvs_addr_eq(k->af, c->caddr, k->raddr))
		return 0;
	if (k->dir == 0)
		return c->vport == k->lport &&
		       ipvs_addr_eq(k->af, c->vaddr, k->laddr);
	/* out_get: NAT replies from daddr:dport, DR/TUN from vaddr:vport */
	if ((c->flags & IPVS_CF_FWD_MASK) == IPVS_CF_MASQ)
		return c->dport == k->lport &&
		       ipvs_addr_eq(k->af, c->daddr, k->laddr);
	return c->vport == k->lport && ipvs_addr_eq(k->af, c->vaddr, k->laddr);
}

/* Switch an engine with no conns to 6.1 hashing with salt @salt (the
 * resizer, should it run, re-hashes nodes the same way).  -1: it has
 * conns already. */
static inline int ipvs_engine_use61(struct ipvs_engine *e, uint32_t salt)
{
	if (e->nconns || iht_count(&e->tab))
		return -1;
	e->hash61 = 1;
	e->salt61 = salt;
	e->tab.node_hash = ipvs_node_hash61;
	e->tab.ctx = e;
	return 0;
}

/* ip_vs_conn_rnd of the first array (tests), 0 with no array. */
static inline uint32_t ipvs_engine_rnd61(struct ipvs_engine *e)
{
	struct iht_tbl *tb = iht_first_tbl(&e->tab);

	return tb ? (uint32_t)tb->hash_key.key[0] : 0;
}

/* The bucket a 6.1 lookup of conn @c walks in the first array (tests
 * check it against a transcription of the kernel formula). */
static inline uint32_t ipvs_engine_bucket61(struct ipvs_engine *e,
					    const struct ipvs_conn *c)
{
	struct iht_tbl *tb = iht_first_tbl(&e->tab);

	return ipvs_conn_hashkey61(c->af, c->protocol, c->caddr, c->cport,
				   (uint32_t)tb->hash_key.key[0], e->salt61)
	       & (uint32_t)(tb->size - 1);
}

/* The bucket of the first array whose chain holds conn @cid's hn[0]
 * (a walk of every chain: tests only), or -1. */
static inline int64_t ipvs_engine_node_bucket(struct ipvs_engine *e,
					      uint32_t cid)
{
	struct iht_tbl *tb = iht_first_tbl(&e->tab);
	const struct iht_node *want = &ipvs_conn_of(e, cid)->hn[0];

	for (int64_t b = 0; tb && b < tb->size; b++)
		for (struct iht_node *n = iht_bl_first_rcu(&tb->buckets[b]); n;
		     n = iht_node_next_rcu(n))
			if (n == want)
				return b;
	return -1;
}

#endif /* IPVS_PY_IPVS_CONN61_H */
