/* ipvs_icmp.h - ICMP errors that belong to a connection.
 *
 * Follows ip_vs_in_icmp(), ip_vs_in_icmp_v6(), ip_vs_out_icmp(),
 * ip_vs_out_icmp_v6() and handle_response_icmp() of
 * net/netfilter/ipvs/ip_vs_core.c, with ip_vs_icmp_xmit()/_v6() of
 * ip_vs_xmit.c for what happens to the error afterwards (Linux 6.1; the
 * 2026 per-net table series leaves these functions as they were).
 *
 * An ICMP error carries the IP header and the first 8 bytes of the packet
 * that caused it (the "inner" header).  IPVS looks the connection up from
 * that inner header with source and destination swapped (the error is
 * about a packet going the other way):
 *
 *  in  (client side, hooked with ip_vs_in): the inner packet is a reply
 *      VIP:vport -> client:cport; the conn is found by ip_vs_conn_in_get()
 *      on client:cport -> VIP:vport.  The error goes to the conn's real
 *      server: NAT rewrites the outer destination and the inner source
 *      (ip_vs_nat_icmp), DR/TUN send it as it is (cp->packet_xmit).
 *      ip_vs_in_stats() counts it; the conn's state and timer stay as
 *      they were (__ip_vs_conn_put only drops the reference).
 *  out (real server side, hooked with ip_vs_out): the inner packet is a
 *      request client:cport -> RS:dport as the director forwarded it; the
 *      conn is found by ip_vs_conn_out_get() on RS:dport -> client:cport.
 *      NAT conns get the error translated back (outer source and inner
 *      destination become the VIP) and ip_vs_out_stats().  Since 5.10 a
 *      DR/TUN conn is found too when the inner packet is client:cport ->
 *      VIP:vport (an error the director itself or a DR real server sends
 *      about a request): counted, passed on unchanged.
 *
 *  IPIP (in, IPv4, inner protocol 4): an error about a packet the director
 *      tunnelled to a real server (director -> RS, carrying the client's
 *      request client:cport -> VIP:vport).  The conn is found from that
 *      request without inversion and the director sends the client an ICMP
 *      error of its own (icmp_send; ip_vs_out_stats counts it); a
 *      frag-needed about a request without DF is only consumed.
 *
 * What the model does not see (it has no bytes) comes in as flag bits:
 * fragments, truncated headers, a bad checksum, the request's DF bit.
 * UDP (GUE) and GRE tunnel errors are not modelled: routers quote 8 bytes
 * of the tunnel packet, too few for the GUE header, so the kernel too
 * treats most of them as plain UDP (see docs/conn.md).
 */
#ifndef IPVS_PY_IPVS_ICMP_H
#define IPVS_PY_IPVS_ICMP_H

#include "ipvs_conn.h"

#define IPVS_PROTO_ICMP		1
#define IPVS_PROTO_ICMPV6	58

/* include/uapi/linux/icmp.h: the three error types IPv4 IPVS handles */
#define IPVS_ICMP_DEST_UNREACH		3
#define IPVS_ICMP_SOURCE_QUENCH		4
#define IPVS_ICMP_TIME_EXCEEDED		11
/* include/uapi/linux/icmpv6.h: types 128..255 are informational */
#define IPVS_ICMPV6_INFOMSG_MASK	0x80

/* struct ipvs_icmp.flags: what the packet's bytes would have told */
#define IPVS_ICMP_F_TRUNC_HDR	0x01	/* ICMP header cut short */
#define IPVS_ICMP_F_TRUNC_INNER	0x02	/* no complete inner IP header */
#define IPVS_ICMP_F_TRUNC_PORTS	0x04	/* inner ports cut off */
#define IPVS_ICMP_F_FRAG	0x08	/* the ICMP packet is a fragment
					 * (IPv6: has a fragment header) */
#define IPVS_ICMP_F_INNER_FRAG	0x10	/* inner fragment offset != 0 */
#define IPVS_ICMP_F_BAD_CSUM	0x20	/* ICMP checksum wrong */
#define IPVS_ICMP_F_DF		0x40	/* IPIP: the tunnelled request had DF */
#define IPVS_ICMP_F_NO_TUNNELED	0x80	/* IPIP: its IP header cut off */
#define IPVS_ICMP_F_ALL		0xff

/* include/uapi/linux/ip_vs.h */
#define IPVS_CF_TUNNEL		0x0002
#define IPVS_TUN_TYPE_IPIP	0
#define IPVS_ICMP_FRAG_NEEDED	4	/* code of DEST_UNREACH */

/* The ICMP part of a packet (struct ipvs_pkt holds the outer addresses;
 * its sport/dport are unused).  Inner addresses and ports as carried,
 * raw network order; t*: the request inside an IPIP inner packet. */
struct ipvs_icmp {
	uint32_t saddr[4], daddr[4];
	uint16_t sport, dport;
	uint8_t type, code, proto, flags;
	uint32_t tsaddr[4], tdaddr[4];
	uint16_t tsport, tdport;
	uint8_t tproto;
};

/* Why an ICMP packet got its verdict (explain; conn.py names them). */
enum ipvs_icmp_why {
	IPVS_IW_NOT_ERROR = 1,	/* not an error type: not related */
	IPVS_IW_FRAG_HELD,	/* IPv4 fragment: ip_vs_gather_frags() */
	IPVS_IW_TRUNC_HDR,	/* no ICMP header: NF_DROP */
	IPVS_IW_FRAG_V6,	/* IPv6 error behind a fragment header */
	IPVS_IW_TRUNC_INNER,	/* inner IP header missing: ignored */
	IPVS_IW_TUN_FRAG,	/* IPIP: a non-first fragment: ignored */
	IPVS_IW_UDP_FRAG,	/* IPv4 non-first fragment of UDP: may be a
				 * tunnel packet, ignored */
	IPVS_IW_PROTO,		/* inner protocol not IPVS's */
	IPVS_IW_INNER_FRAG,	/* IPv6 inner fragment: ignored */
	IPVS_IW_NO_CONN,	/* no conn for the inner header */
	IPVS_IW_BAD_CSUM,	/* checksum failed: NF_DROP */
	IPVS_IW_NAT,		/* NAT: rewritten and sent to the dest */
	IPVS_IW_DIRECT,		/* DR/TUN/local: sent to the dest as is */
	IPVS_IW_OUT_NAT,	/* reply side, NAT: translated to the VIP */
	IPVS_IW_OUT_NOT_NAT,	/* reply side, DR/TUN: counted, unchanged */
	IPVS_IW_SCHED_NONE,	/* schedule_icmp: no service or no dest */
	IPVS_IW_SCHED_DROP,	/* schedule_icmp: dropped (no ports,
				 * drop_packet, no dest) */
	IPVS_IW_TUN_UNKNOWN,	/* IPIP: not to one of our IPIP dests */
	IPVS_IW_TUN_RELAY,	/* IPIP: icmp_send() to the client */
	IPVS_IW_TUN_NO_DF,	/* IPIP frag-needed, request without DF:
				 * consumed */
};

/* ip_vs_in_stats()/ip_vs_out_stats() count only while the dest is
 * available (the normal path dropped unavailable ones earlier; an ICMP
 * error reaches them). */
static inline void ipvs_icmp_stats(struct ipvs_engine *e,
				   const struct ipvs_conn *c, int out,
				   uint32_t len)
{
	if (c->dest >= 0 &&
	    (__atomic_load_n(&e->dests[c->dest].flags, __ATOMIC_RELAXED) &
	     IPVS_DF_AVAILABLE))
		ipvs_pkt_stats(e, c, out, len);
}

/* The checks both directions make before the inner header is read, in
 * the kernel's order.  Returns 0 to go on, else sets @v/@why. */
static inline int ipvs_icmp_precheck(const struct ipvs_pkt *p,
				     const struct ipvs_icmp *ic,
				     struct ipvs_verdict *v, int *why)
{
	if (p->af == 2) {
		if (ic->flags & IPVS_ICMP_F_FRAG) {
			/* reassembly first; one fragment alone is held */
			v->action = IPVS_V_DROP;
			*why = IPVS_IW_FRAG_HELD;
			return 1;
		}
		if (ic->flags & IPVS_ICMP_F_TRUNC_HDR) {
			v->action = IPVS_V_DROP;
			*why = IPVS_IW_TRUNC_HDR;
			return 1;
		}
		if (ic->type != IPVS_ICMP_DEST_UNREACH &&
		    ic->type != IPVS_ICMP_SOURCE_QUENCH &&
		    ic->type != IPVS_ICMP_TIME_EXCEEDED) {
			*why = IPVS_IW_NOT_ERROR;
			return 1;
		}
	} else {
		/* frag_safe_skb_hp() fails: NF_DROP before the type test */
		if (ic->flags & IPVS_ICMP_F_TRUNC_HDR) {
			v->action = IPVS_V_DROP;
			*why = IPVS_IW_TRUNC_HDR;
			return 1;
		}
		if (ic->type & IPVS_ICMPV6_INFOMSG_MASK) {
			*why = IPVS_IW_NOT_ERROR;
			return 1;
		}
		/* errors are never fragmented */
		if (ic->flags & IPVS_ICMP_F_FRAG) {
			v->action = IPVS_V_DROP;
			*why = IPVS_IW_FRAG_V6;
			return 1;
		}
	}
	if (ic->flags & IPVS_ICMP_F_TRUNC_INNER) {
		*why = IPVS_IW_TRUNC_INNER;
		return 1;
	}
	return 0;
}

static inline int ipvs_icmp_proto_ok(uint8_t proto)
{
	return proto == IPVS_PROTO_TCP || proto == IPVS_PROTO_UDP ||
	       proto == IPVS_PROTO_SCTP;
}

/* ip_vs_try_to_schedule() for an ICMP error with no conn (sysctl
 * schedule_icmp): *_conn_schedule() reads only the inner ports (no SYN
 * test for an ICMP header) and schedules as if the inner packet had come
 * the other way.  @q is that packet.  Returns the new conn or NONE with
 * @v/@why set. */
static inline uint32_t ipvs_icmp_schedule(struct ipvs_engine *e,
					  const struct ipvs_pkt *q,
					  const struct ipvs_icmp *ic,
					  struct ipvs_verdict *v, int *why)
{
	int si, ignored;
	uint32_t cid;

	if (ic->flags & IPVS_ICMP_F_TRUNC_PORTS) {
		v->action = IPVS_V_DROP;	/* !ports: NF_DROP */
		*why = IPVS_IW_SCHED_DROP;
		return IPVS_CONN_NONE;
	}
	si = ipvs_svc_find(e, q);
	if (si < 0) {
		*why = IPVS_IW_SCHED_NONE;
		return IPVS_CONN_NONE;
	}
	if (ipvs_todrop(e)) {
		v->action = IPVS_V_DROP;
		*why = IPVS_IW_SCHED_DROP;
		return IPVS_CONN_NONE;
	}
	cid = ipvs_schedule(e, si, q, &ignored);
	if (e->cb_error) {
		v->action = IPVS_V_ERROR;
		return IPVS_CONN_NONE;
	}
	if (cid == IPVS_CONN_NONE) {
		/* ip_vs_leave(): the FTP exception passes; an ICMP packet
		 * is dropped without a port-unreachable reply */
		if (ignored > 0 ||
		    (ignored == 0 && e->svcs[si].port == IPVS_FTPPORT_BE &&
		     q->dport != IPVS_FTPPORT_BE)) {
			*why = IPVS_IW_SCHED_NONE;
		} else {
			v->action = IPVS_V_DROP;
			*why = IPVS_IW_SCHED_DROP;
		}
	}
	return cid;
}

/* ip_vs_find_tunnel(ipvs, AF_INET, @addr, 0): a dest of a service that
 * tunnels to @addr with tunnel port 0 (IPIP or GRE), -1 if none. */
static inline int32_t ipvs_icmp_find_tunnel(const struct ipvs_engine *e,
					    const uint32_t *addr)
{
	for (uint32_t i = 0; i < e->ndests; i++) {
		const struct ipvs_cdest *d = &e->dests[i];

		if (d->svc >= 0 && d->fwd == IPVS_CF_TUNNEL && d->af == 2 &&
		    d->tun_port == 0 && d->addr[0] == addr[0])
			return (int32_t)i;
	}
	return -1;
}

/* The IPIP branch of ip_vs_in_icmp(): @ic's inner packet is our tunnel
 * packet to a real server (the error reaches LOCAL_IN: it is addressed to
 * the director, the tunnel's source). */
static inline struct ipvs_verdict ipvs_icmp_in_ipip(struct ipvs_engine *e,
						    const struct ipvs_pkt *p,
						    const struct ipvs_icmp *ic,
						    int *why)
{
	struct ipvs_verdict v = { IPVS_V_PASS, -1, IPVS_CONN_NONE };
	/* the request as the client sent it: no inversion */
	struct ipvs_ckey k = { ic->tsaddr, ic->tdaddr, ic->tsport, ic->tdport,
			       p->af, ic->tproto, 0, 0 };
	struct ipvs_conn *c;
	uint32_t req;
	int32_t d;

	if (ic->flags & IPVS_ICMP_F_INNER_FRAG) {
		*why = IPVS_IW_TUN_FRAG;
		return v;
	}
	d = ipvs_icmp_find_tunnel(e, ic->daddr);
	if (d < 0 || e->dests[d].tun_type != IPVS_TUN_TYPE_IPIP) {
		*why = IPVS_IW_TUN_UNKNOWN;
		return v;
	}
	if (ic->flags & IPVS_ICMP_F_NO_TUNNELED) {
		*why = IPVS_IW_TRUNC_INNER;
		return v;
	}
	if (!ipvs_icmp_proto_ok(ic->tproto)) {
		*why = IPVS_IW_PROTO;
		return v;
	}
	c = (ic->flags & IPVS_ICMP_F_TRUNC_PORTS) ? NULL :
	    ipvs_conn_in_get(e, &k);
	if (!c) {		/* no schedule_icmp for tunnel errors */
		*why = IPVS_IW_NO_CONN;
		return v;
	}
	v.conn = ipvs_conn_id(e, c);
	v.dest = c->dest;
	v.action = IPVS_V_DROP;		/* checksum, or NF_STOLEN: consumed */
	if (ic->flags & IPVS_ICMP_F_BAD_CSUM) {
		*why = IPVS_IW_BAD_CSUM;
		return v;
	}
	if (ic->type == IPVS_ICMP_DEST_UNREACH &&
	    ic->code == IPVS_ICMP_FRAG_NEEDED &&
	    !(ic->flags & IPVS_ICMP_F_DF)) {
		*why = IPVS_IW_TUN_NO_DF;	/* "Client uses PMTUD?" no */
		return v;
	}
	/* pulled to the request: outer IP + ICMP + tunnel IP headers gone
	 * ("ICMP can be shorter but anyways, account it") */
	req = p->len > 48 ? p->len - 48 : 0;
	ipvs_icmp_stats(e, c, 1, req);
	/* the error icmp_send() makes -- IP and ICMP headers and the request,
	 * quoted up to 576 bytes in all -- leaves through LOCAL_OUT, where
	 * ip_vs_out_icmp() finds a DR/TUN conn again (from VIP:vport) and
	 * counts it (after_nat); the VM test saw both counts */
	if ((c->flags & IPVS_CF_FWD_MASK) != IPVS_CF_MASQ)
		ipvs_icmp_stats(e, c, 1, 28 + (req < 548 ? req : 548));
	v.action = IPVS_V_FORWARD;
	*why = IPVS_IW_TUN_RELAY;
	return v;
}

/* ip_vs_in_icmp()/ip_vs_in_icmp_v6(), hooked at LOCAL_IN (from the
 * network, so the v6 LOCAL_OUT exception for DR/TUN never applies). */
static inline struct ipvs_verdict ipvs_icmp_in(struct ipvs_engine *e,
					       const struct ipvs_pkt *p,
					       const struct ipvs_icmp *ic,
					       int *why)
{
	struct ipvs_verdict v = { IPVS_V_PASS, -1, IPVS_CONN_NONE };
	/* inverse: client = inner destination, VIP = inner source */
	struct ipvs_ckey k = { ic->daddr, ic->saddr, ic->dport, ic->sport,
			       p->af, ic->proto, 0, 0 };
	struct ipvs_conn *c = NULL;
	int new_cp = 0;

	if (ipvs_icmp_precheck(p, ic, &v, why))
		return v;
	if (p->af == 2 && ic->proto == 4 /* IPPROTO_IPIP */)
		return ipvs_icmp_in_ipip(e, p, ic, why);
	/* an error for our UDP tunnel must be looked at; a non-first
	 * fragment has no UDP header to tell (the error reaches LOCAL_IN:
	 * it is addressed to the VIP, the inner source) */
	if (p->af == 2 && ic->proto == IPVS_PROTO_UDP &&
	    (ic->flags & IPVS_ICMP_F_INNER_FRAG)) {
		*why = IPVS_IW_UDP_FRAG;
		return v;
	}
	if (!ipvs_icmp_proto_ok(ic->proto)) {
		*why = IPVS_IW_PROTO;
		return v;
	}
	/* IPv4 reads "ports" even from a non-first fragment (dont_defrag is
	 * 0 for TCP/UDP/SCTP); IPv6 gives up */
	if (p->af == 10 && (ic->flags & IPVS_ICMP_F_INNER_FRAG)) {
		*why = IPVS_IW_INNER_FRAG;
		return v;
	}
	if (!(ic->flags & IPVS_ICMP_F_TRUNC_PORTS))
		c = ipvs_conn_in_get(e, &k);
	if (!c) {
		struct ipvs_pkt q = *p;
		uint32_t cid;

		*why = IPVS_IW_NO_CONN;
		if (!e->schedule_icmp)
			return v;
		memcpy(q.saddr, ic->daddr, 16);
		memcpy(q.daddr, ic->saddr, 16);
		q.sport = ic->dport;
		q.dport = ic->sport;
		q.protocol = ic->proto;
		q.flags = 0;
		q.dir = IPVS_DIR_INPUT;
		cid = ipvs_icmp_schedule(e, &q, ic, &v, why);
		if (cid == IPVS_CONN_NONE)
			return v;
		c = ipvs_conn_of(e, cid);
		new_cp = 1;
	}
	v.conn = ipvs_conn_id(e, c);
	v.dest = c->dest;
	if (p->af == 2 && (ic->flags & IPVS_ICMP_F_BAD_CSUM)) {
		v.action = IPVS_V_DROP;
		*why = IPVS_IW_BAD_CSUM;
	} else {
		ipvs_icmp_stats(e, c, 0, p->len);
		v.action = IPVS_V_FORWARD;
		if ((c->flags & IPVS_CF_FWD_MASK) == IPVS_CF_MASQ) {
			*why = IPVS_IW_NAT;
		} else {
			/* ip_vs_icmp_xmit(): atomic_inc(&cp->in_pkts) */
			if (c->in_pkts < 255)
				c->in_pkts++;
			*why = IPVS_IW_DIRECT;
		}
	}
	/* ip_vs_conn_put() for a conn made here, __ip_vs_conn_put() (no
	 * timer change) for one that existed */
	if (new_cp)
		ipvs_conn_put(e, v.conn, c);
	return v;
}

/* ip_vs_out_icmp()/ip_vs_out_icmp_v6() + handle_response_icmp(). */
static inline struct ipvs_verdict ipvs_icmp_out(struct ipvs_engine *e,
						const struct ipvs_pkt *p,
						const struct ipvs_icmp *ic,
						int *why)
{
	struct ipvs_verdict v = { IPVS_V_PASS, -1, IPVS_CONN_NONE };
	/* inverse: client = inner source, real server = inner destination */
	struct ipvs_ckey k = { ic->saddr, ic->daddr, ic->sport, ic->dport,
			       p->af, ic->proto, 1, 0 };
	struct ipvs_conn *c;

	if (ipvs_icmp_precheck(p, ic, &v, why))
		return v;
	/* ip_vs_proto_get(): IPIP is not an IPVS protocol here */
	if (!ipvs_icmp_proto_ok(ic->proto)) {
		*why = IPVS_IW_PROTO;
		return v;
	}
	c = (ic->flags & IPVS_ICMP_F_TRUNC_PORTS) ? NULL :
	    ipvs_conn_out_get(e, &k);
	if (!c) {
		*why = IPVS_IW_NO_CONN;
		return v;
	}
	v.conn = ipvs_conn_id(e, c);
	v.dest = c->dest;
	if ((c->flags & IPVS_CF_FWD_MASK) != IPVS_CF_MASQ) {
		/* after_nat: counted, passed on as it is */
		ipvs_icmp_stats(e, c, 1, p->len);
		v.action = IPVS_V_FORWARD;
		*why = IPVS_IW_OUT_NOT_NAT;
		return v;
	}
	if (ic->flags & IPVS_ICMP_F_BAD_CSUM) {
		v.action = IPVS_V_DROP;
		*why = IPVS_IW_BAD_CSUM;
		return v;
	}
	ipvs_icmp_stats(e, c, 1, p->len);
	v.action = IPVS_V_FORWARD;
	*why = IPVS_IW_OUT_NAT;
	return v;
}

/* One packet at @now: ICMP/ICMPv6 of the packet's family through the
 * functions above (@ic must be set for them), anything else through
 * ipvs_packet().  @why (may be NULL) receives an enum ipvs_icmp_why, or
 * 0 for a packet that was not ICMP. */
static inline struct ipvs_verdict ipvs_packet_icmp(struct ipvs_engine *e,
						   const struct ipvs_pkt *p,
						   const struct ipvs_icmp *ic,
						   uint32_t now, int *why)
{
	int w = 0;
	struct ipvs_verdict v;

	if (!ic || p->protocol != (p->af == 10 ? IPVS_PROTO_ICMPV6
						: IPVS_PROTO_ICMP)) {
		if (why)
			*why = 0;
		return ipvs_packet(e, p, now);
	}
	ipvs_run_timers(e, now);
	if (p->dir == IPVS_DIR_OUTPUT)
		v = ipvs_icmp_out(e, p, ic, &w);
	else
		v = ipvs_icmp_in(e, p, ic, &w);
	if (why)
		*why = w;
	return v;
}

#endif /* IPVS_PY_IPVS_ICMP_H */
