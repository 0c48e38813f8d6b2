/* ipvs_events.h - session events of the conn engine, for a fast path.
 *
 * Seed 004 (IPVS-BPF, TencentOS-kernel ip_vs_conn.c): IPVS writes a
 * session into a BPF map when it creates a connection and removes it when
 * the connection goes.  Here the engine appends one event per change of a
 * conn's "mirrorable" status to a ring that the Python side drains after
 * each engine call (ipvs_py/bpf/feed.py) and turns into batched map
 * updates.
 *
 * A conn is mirrorable (ipvs_ev_mirrorable) when it is a masq conn of TCP
 * or UDP, not a persistence template, not a one-packet conn, has a known
 * client port and one address family on both sides; TCP only while in
 * ESTABLISHED, so handshakes and teardowns stay visible to the model.
 * Events: IPVS_EV_UP when a conn becomes mirrorable (UDP: created; TCP:
 * enters ESTABLISHED; a NO_CPORT conn learns its port), IPVS_EV_DOWN when
 * it stops being so (TCP leaves ESTABLISHED) or is freed while mirrorable.
 * Each event carries the whole tuple: a freed conn's slot can be reused
 * before the ring is drained.
 *
 * Off by default: engine->events is NULL and each hook is one load and a
 * predicted branch, on the conn-create/state-change/free paths only
 * (bench/bench_bpf.py measures replay with the ring off and on).  A full
 * ring stops recording and counts the loss; the reader then rebuilds the
 * maps from a walk of the table, which is always correct.
 *
 * Included by ipvs_conn.h after struct ipvs_conn and struct ipvs_engine.
 * LOCKING: the engine's single writer appends; the reader drains between
 * engine calls (never concurrently: both run under the caller's GIL or
 * in the same thread).
 */
#ifndef IPVS_PY_IPVS_EVENTS_H
#define IPVS_PY_IPVS_EVENTS_H

#include <stdint.h>
#include <string.h>

enum { IPVS_EV_UP = 1, IPVS_EV_DOWN = 2 };

/* One event: 64 bytes, addresses and ports raw network-order values as in
 * struct ipvs_conn (IPv4 in word 0, the rest zero). */
struct ipvs_event {
	uint32_t caddr[4], vaddr[4], daddr[4];
	uint16_t cport, vport, dport;
	uint8_t kind, af, protocol, state;
	uint8_t pad[6];
};
_Static_assert(sizeof(struct ipvs_event) == 64, "ipvs_event layout");

struct ipvs_events {
	struct ipvs_event *buf;	/* cap entries, owned by the reader */
	uint32_t cap, n;
	uint64_t lost;		/* events not recorded since the last drain */
};

static inline void ipvs_events_attach(struct ipvs_engine *e,
				      struct ipvs_events *ev)
{
	e->events = ev;
}

static inline int ipvs_ev_mirrorable(const struct ipvs_conn *c)
{
	return (c->protocol == IPVS_PROTO_TCP ||
		c->protocol == IPVS_PROTO_UDP) &&
	       (c->flags & IPVS_CF_FWD_MASK) == IPVS_CF_MASQ &&
	       !(c->flags & (IPVS_CF_TEMPLATE | IPVS_CF_ONE_PACKET |
			     IPVS_CF_NO_CPORT)) &&
	       c->af == c->daf;
}

static inline int ipvs_ev_state_ok(const struct ipvs_conn *c, uint8_t state)
{
	return c->protocol == IPVS_PROTO_UDP || state == TS_ES;
}

/* Fill @x from @c (also used for a full snapshot of the table). */
static inline void ipvs_ev_write(struct ipvs_event *x,
				 const struct ipvs_conn *c, uint8_t kind,
				 uint8_t state)
{
	memcpy(x->caddr, c->caddr, 16);
	memcpy(x->vaddr, c->vaddr, 16);
	memcpy(x->daddr, c->daddr, 16);
	x->cport = c->cport;
	x->vport = c->vport;
	x->dport = c->dport;
	x->kind = kind;
	x->af = c->af;
	x->protocol = c->protocol;
	x->state = state;
	memset(x->pad, 0, sizeof(x->pad));
}

static inline void ipvs_ev_push(struct ipvs_events *ev,
				const struct ipvs_conn *c, uint8_t kind,
				uint8_t state)
{
	if (ev->n == ev->cap) {
		ev->lost++;
		return;
	}
	ipvs_ev_write(&ev->buf[ev->n++], c, kind, state);
}

/* Hook: @c was hashed, or learnt its client port (UP if mirrorable). */
static inline void ipvs_ev_conn_up(struct ipvs_engine *e,
				   const struct ipvs_conn *c)
{
	if (e->events && ipvs_ev_mirrorable(c) &&
	    ipvs_ev_state_ok(c, c->state))
		ipvs_ev_push(e->events, c, IPVS_EV_UP, c->state);
}

/* Hook: @c is about to move from c->state to @ns. */
static inline void ipvs_ev_conn_state(struct ipvs_engine *e,
				      const struct ipvs_conn *c, uint8_t ns)
{
	int was, now;

	if (!e->events || !ipvs_ev_mirrorable(c))
		return;
	was = ipvs_ev_state_ok(c, c->state);
	now = ipvs_ev_state_ok(c, ns);
	if (was != now)
		ipvs_ev_push(e->events, c, now ? IPVS_EV_UP : IPVS_EV_DOWN, ns);
}

/* Hook: @c is about to be unhashed and freed. */
static inline void ipvs_ev_conn_gone(struct ipvs_engine *e,
				     const struct ipvs_conn *c)
{
	if (e->events && ipvs_ev_mirrorable(c) &&
	    ipvs_ev_state_ok(c, c->state))
		ipvs_ev_push(e->events, c, IPVS_EV_DOWN, c->state);
}

#endif /* IPVS_PY_IPVS_EVENTS_H */
