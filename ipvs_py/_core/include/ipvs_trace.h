/*
 * ipvs_trace.h - an optional record of the decisions one packet meets.
 *
 * `ipvs-py explain` asks "why did this packet get this real server?".  The
 * answer must come from the code that decided, not from a second model of
 * it, so the packet path (ipvs_conn.h: ipvs_in, ipvs_svc_find,
 * ipvs_sched_persist, ipvs_schedule_dest) calls IPVS_TRACE() at each
 * decision point.  The engine's trace pointer is NULL except while an
 * explain runs; then each call appends one fixed-size step to a buffer the
 * caller owns (conntab.pyx allocates it, ipvs_py/ops/explain.py formats
 * it).
 *
 * Cost when off: one predicted-not-taken test of e->trace per decision
 * point (a few per new connection, one per established packet); building
 * with -DIPVS_PY_TRACE_OFF removes even that (bench/bench_explain.py
 * measures both against main's code).
 *
 * The meaning of a step's fields depends on its kind (the enum below is
 * the one place that says so; explain.py mirrors the names).  Addresses
 * are not copied: the caller knows the packet.  A full buffer counts the
 * steps it lost instead of growing (no allocation on the packet path).
 */
#ifndef IPVS_PY_TRACE_H
#define IPVS_PY_TRACE_H

#include <stdint.h>

#include "ipvs_sched.h"

enum ipvs_trace_kind {
	/* a conn matched the packet: a conn id, b dest, c state, d flags,
	 * x jiffies left, y controlling template id (0xffffffff: none) */
	IPVS_TR_CONN_HIT = 1,
	/* no conn: a = 1 when the NO_CPORT (cport 0) retry also ran */
	IPVS_TR_CONN_MISS,
	/* conn_reuse_mode: a SYN/INIT on conn a is scheduled afresh;
	 * b reason (1 expire_nodest_conn and dest weight 0, 2 the old conn
	 * is closing: is_new_conn_expected), c = 1 when a expired now */
	IPVS_TR_CONN_REUSE,
	/* conn a's dest b is no longer available: c = 1 expired
	 * (expire_nodest_conn), 0 packet dropped */
	IPVS_TR_CONN_NODEST,
	/* the packet may not create a conn: a = 1 TCP without SYN or with
	 * RST, 2 SCTP other than INIT */
	IPVS_TR_NO_SCHED,
	/* ip_vs_service_find(): a lookup kind (0 fwmark, 1 <proto,addr,port>,
	 * 2 FTP data port, 3 port zero, -1 nothing matched), b svc index */
	IPVS_TR_SVC,
	/* drop_packet defense (ip_vs_todrop) dropped the packet */
	IPVS_TR_TODROP,
	/* persistence template lookup: a template id (-1: none found),
	 * b its dest, x jiffies left, y conns it controls */
	IPVS_TR_TPL_HIT,
	IPVS_TR_TPL_MISS,
	/* ip_vs_check_template() refused template a (dest b): c reason
	 * (1 dest gone/unavailable, 2 expire_quiescent_template & weight 0) */
	IPVS_TR_TPL_INVALID,
	/* a new template a for dest b, x its timeout (jiffies) */
	IPVS_TR_TPL_NEW,
	/* a C scheduler runs: a kind (enum ipvs_sched_kind), b rows, then
	 * the position state before: c rr_pos / wrr_cl, d wrr_cw,
	 * x wrr_mw, y wrr_di, z svc flags */
	IPVS_TR_SCHED,
	/* one dest row as the scheduler read it: a row, b engine dest id,
	 * c weight, d flags, x activeconns, y inactconns, z u_threshold */
	IPVS_TR_SCHED_ROW,
	/* sh/dh/mh: the hashed key's table slot a and the row b stored
	 * there (-1: empty); c hashed address (host order), d hashed port */
	IPVS_TR_SCHED_SLOT,
	/* the scheduler's answer: a row (-1: none), b engine dest id,
	 * c rr_pos / wrr_cl after, d wrr_cw after */
	IPVS_TR_SCHED_RESULT,
	/* a Python scheduler (callback) answered: a svc index, b dest id */
	IPVS_TR_SCHED_CB,
	/* a non-persistent service matched by port zero: the kernel refuses
	 * ("port zero only supported in persistent services") */
	IPVS_TR_PORT_ZERO,
	/* a new conn a bound to dest b with flags c, x its first timeout */
	IPVS_TR_CONN_NEW,
	/* the verdict: a action (IPVS_V_*), b dest, c conn */
	IPVS_TR_VERDICT,
};

struct ipvs_trace_step {
	int32_t kind;
	int32_t a, b, c, d;
	uint32_t x, y, z;
};

/* Owned by the caller; steps[] holds cap entries. */
struct ipvs_trace {
	uint32_t n, cap, lost;
	struct ipvs_trace_step *steps;
};

/* Out of line and in the cold section: the packet path keeps only the
 * test of e->trace and a call it never takes (measured in
 * bench/bench_explain.py; inlined adds grew ipvs_in and cost new conns
 * a few percent). */
#define IPVS_TRACE_COLD __attribute__((noinline, cold))

static IPVS_TRACE_COLD void ipvs_trace_add(struct ipvs_trace *t, int32_t kind,
				  int32_t a, int32_t b, int32_t c, int32_t d,
				  uint32_t x, uint32_t y, uint32_t z)
{
	struct ipvs_trace_step *s;

	if (t->n >= t->cap) {
		t->lost++;
		return;
	}
	s = &t->steps[t->n++];
	s->kind = kind;
	s->a = a;
	s->b = b;
	s->c = c;
	s->d = d;
	s->x = x;
	s->y = y;
	s->z = z;
}

#ifdef IPVS_PY_TRACE_OFF
#define IPVS_TRACE(e, kind, a, b, c, d, x, y, z) do { } while (0)
#define IPVS_TRACING(e) 0
#else
/* e: struct ipvs_engine *; the arguments are evaluated only when on */
#define IPVS_TRACE(e, kind, a, b, c, d, x, y, z)			\
	do {								\
		if (__builtin_expect((e)->trace != NULL, 0))		\
			ipvs_trace_add((e)->trace, (kind), (a), (b), (c),	\
				       (d), (x), (y), (z));		\
	} while (0)
#define IPVS_TRACING(e) __builtin_expect((e)->trace != NULL, 0)
#endif

/*
 * The scheduler's inputs, just before ipvs_sched_schedule() runs on @s:
 * its position state, every row it reads, and for the hashing schedulers
 * the slot the key lands in (the same hash helpers the decision calls).
 */
static IPVS_TRACE_COLD void ipvs_trace_sched_before(struct ipvs_trace *t,
					   const ipvs_sched_svc_t *s,
					   const int32_t *row_dest,
					   uint32_t fold, uint16_t port,
					   uint32_t dfold)
{
	int i;
	unsigned int slot;
	uint16_t hport = (s->svc_flags & IPVS_SCHED_SVC_F_SCHED2) ? port : 0;

	ipvs_trace_add(t, IPVS_TR_SCHED, s->kind, s->n, s->kind ==
		       IPVS_SCHED_RR ? s->rr_pos : s->wrr_cl, s->wrr_cw,
		       (uint32_t)s->wrr_mw, (uint32_t)s->wrr_di, s->svc_flags);
	for (i = 0; i < s->n; i++)
		ipvs_trace_add(t, IPVS_TR_SCHED_ROW, i, row_dest[i],
			       s->d[i].weight, (int32_t)s->d[i].flags,
			       (uint32_t)s->d[i].activeconns,
			       (uint32_t)s->d[i].inactconns,
			       s->d[i].u_threshold);
	switch (s->kind) {
	case IPVS_SCHED_SH:
		slot = ipvs_sched_sh_hashkey(fold, hport, 0);
		ipvs_trace_add(t, IPVS_TR_SCHED_SLOT, (int32_t)slot,
			       s->tab[slot], (int32_t)fold, hport, 0, 0, 0);
		break;
	case IPVS_SCHED_DH:
		slot = ipvs_hash_32(dfold, IPVS_SCHED_SH_TAB_BITS);
		ipvs_trace_add(t, IPVS_TR_SCHED_SLOT, (int32_t)slot,
			       s->tab[slot], (int32_t)dfold, 0, 0, 0, 0);
		break;
	case IPVS_SCHED_MH:
		slot = ipvs_sched_mh_hashkey(fold, hport, &ipvs_sched_mh_hash1,
					     0) % IPVS_SCHED_MH_TAB_SIZE;
		ipvs_trace_add(t, IPVS_TR_SCHED_SLOT, (int32_t)slot,
			       s->mh_lookup ? s->mh_lookup[slot] : -1,
			       (int32_t)fold, hport, 0, 0, 0);
		break;
	default:
		break;
	}
}

#endif /* IPVS_PY_TRACE_H */
