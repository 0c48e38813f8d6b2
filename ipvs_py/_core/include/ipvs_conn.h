/* ipvs_conn.h - the connection table and the per-packet decisions.
 *
 * Follows net/netfilter/ipvs/ip_vs_conn.c (conn entries, hashing, timers,
 * ip_vs_conn_expire), ip_vs_core.c (ip_vs_in/ip_vs_out, ip_vs_schedule,
 * ip_vs_sched_persist, conn_reuse_mode) and ip_vs_proto_{tcp,udp,sctp}.c
 * (state tables and timeouts) of the 2026 per-net table series.
 *
 * One engine per network namespace.  Everything here is nogil C; the only
 * call out is the optional scheduler callback (a Python scheduler), which
 * the Cython caller wraps with the GIL.
 *
 * Memory: conns live in chunks of IPVS_CONN_CHUNK entries (stable
 * addresses, so the intrusive table nodes never move); a free list threads
 * through unused slots.  Timers: a binary heap of (expires, conn id) with
 * lazy re-arming -- a packet that pushes a conn's expiry later only writes
 * conn->expires; the heap entry is re-pushed when it comes due -- so the
 * per-packet timer cost is O(1) and a conn costs O(log n) once per timeout
 * period, independent of conns that do not expire.
 *
 * LOCKING: single writer per engine (the model's packet path runs on one
 * thread); the table's own bucket locks are still taken, hn0/hn1 in
 * increasing bucket order (iht_insert2), so concurrent readers of the
 * table stay correct.  The multi-core replay (ipvs_mt.h) runs one clone of
 * the engine per worker thread; a clone has e->mt set and reaches the
 * shared parts (table, slab, scheduler, dest counters) through it.
 */
#ifndef IPVS_PY_IPVS_CONN_H
#define IPVS_PY_IPVS_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>

#include "ipvs_table.h"
#include "ipvs_sched.h"
#include "ipvs_trace.h"
#include "ipvs_flowcache.h"

/* include/uapi/linux/ip_vs.h: IP_VS_CONN_F_* */
#define IPVS_CF_FWD_MASK	0x0007
#define IPVS_CF_MASQ		0x0000
#define IPVS_CF_NOOUTPUT	0x0080
#define IPVS_CF_INACTIVE	0x0100
#define IPVS_CF_NO_CPORT	0x0800
#define IPVS_CF_TEMPLATE	0x1000
#define IPVS_CF_ONE_PACKET	0x2000

#define IPVS_DF_AVAILABLE	0x0001
#define IPVS_DF_OVERLOAD	0x0002
#define IPVS_SVC_F_PERSISTENT	0x0001
#define IPVS_SVC_F_ONEPACKET	0x0004

#define IPVS_PROTO_IP	0
#define IPVS_PROTO_TCP	6
#define IPVS_PROTO_UDP	17
#define IPVS_PROTO_SCTP	132
#define IPVS_FTPPORT_BE	0x1500	/* htons(21) on little endian */

/* TCP flag bits of struct ipvs_pkt.flags */
#define IPVS_TH_FIN 0x01
#define IPVS_TH_SYN 0x02
#define IPVS_TH_RST 0x04
#define IPVS_TH_ACK 0x10

/* SCTP chunk kinds (struct ipvs_pkt.flags for SCTP), our own numbering
 * of the events of ip_vs_proto_sctp.c's sctp_events[] */
enum { IPVS_SCTP_EV_DATA, IPVS_SCTP_EV_INIT, IPVS_SCTP_EV_INIT_ACK,
       IPVS_SCTP_EV_COOKIE_ECHO, IPVS_SCTP_EV_COOKIE_ACK,
       IPVS_SCTP_EV_SHUTDOWN, IPVS_SCTP_EV_SHUTDOWN_ACK,
       IPVS_SCTP_EV_SHUTDOWN_COMPLETE, IPVS_SCTP_EV_ERROR,
       IPVS_SCTP_EV_ABORT, IPVS_SCTP_EV_LAST };

/* IP_VS_DIR_* */
enum { IPVS_DIR_INPUT = 0, IPVS_DIR_OUTPUT = 1, IPVS_DIR_INPUT_ONLY = 2 };

/* TCP states, ip_vs.h order */
enum { TS_NO, TS_ES, TS_SS, TS_SR, TS_FW, TS_TW, TS_CL, TS_CW, TS_LA, TS_LI,
       TS_SA, TS_LAST };
/* SCTP states, ip_vs.h order */
enum { SS_NONE, SS_INIT1, SS_INIT, SS_COOKIE_SENT, SS_COOKIE_REPLIED,
       SS_COOKIE_WAIT, SS_COOKIE, SS_COOKIE_ECHOED, SS_ESTABLISHED, SS_SHUTDOWN_SENT,
       SS_SHUTDOWN_RECEIVED, SS_SHUTDOWN_ACK_SENT, SS_REJECTED, SS_CLOSED,
       SS_LAST };

/* verdicts */
enum { IPVS_V_PASS = 0, IPVS_V_FORWARD = 1, IPVS_V_DROP = 2,
       IPVS_V_ERROR = 3 };

/* A chunk is one 2 MiB huge page of conns: 18,724 of 112 bytes (64 bytes
 * left over).  Not a power of two, so an id splits by division by a
 * constant (a multiply), which costs less than the 11% of a huge page a
 * power-of-two count (16,384) would leave resident and unused. */
#define IPVS_CHUNK_BYTES ((size_t)2 << 20)
#define IPVS_CONN_BYTES 112
#define IPVS_CONN_CHUNK ((uint32_t)(IPVS_CHUNK_BYTES / IPVS_CONN_BYTES))
#define IPVS_CONN_NONE 0xffffffffu

/* One connection or persistence template (struct ip_vs_conn, cut down to
 * what the decisions read: 112 bytes; the kernel's is several times that).
 * Addresses and ports are raw network-order values.  Conns are 16-byte
 * aligned (chunks are 2 MiB aligned, the size a multiple of 16), so a
 * table node tells which of the two it is by address bit 3: hn0 at +0,
 * hn1 at +8 (ipvs_node_dir). */
struct ipvs_conn {
	struct iht_node hn[2];	/* hn0: caddr:cport->vaddr:vport;
				 * hn1 (MASQ): caddr:cport->daddr:dport */
	uint32_t caddr[4], vaddr[4], daddr[4];
	uint32_t expires;	/* jiffies (cp->timer.expires) */
	uint32_t heap_expires;	/* the time of its live heap entry */
	uint32_t timeout;	/* jiffies */
	uint32_t flags;		/* IP_VS_CONN_F_* */
	int32_t dest;		/* engine dest id, -1 none; free-list link */
	uint32_t control;	/* template conn id or IPVS_CONN_NONE */
	int32_t n_control;	/* conns this template controls */
	uint16_t cport, vport, dport;
	uint8_t af, protocol, state, in_use;
	uint8_t daf, in_pkts;	/* in_pkts saturates at 255 (todrop_entry
				 * only asks whether it is 0..8) */
	uint32_t id;		/* own slot id (timers, verdicts) */
	uint32_t gen;		/* bumped on free and re-key (flow cache);
				 * kept across reuse of the slot */
};

_Static_assert(sizeof(struct ipvs_conn) == IPVS_CONN_BYTES,
	       "struct ipvs_conn is 112 bytes (docs/conn.md, bench_conn)");
_Static_assert(IPVS_CONN_BYTES % 16 == 0 &&
	       offsetof(struct ipvs_conn, hn) == 0,
	       "hn0/hn1 are told apart by address bit 3");

/* A real server (the parts of struct ip_vs_dest the packet path uses).
 *
 * Two cache lines, by who writes them.  The first holds what every packet
 * of a conn touches: flags (IPVS_DF_AVAILABLE), svc and the packet
 * statistics (written in place on one thread; per worker in a multi-core
 * replay).  The second holds what a new conn or a state change touches:
 * the conn counters (atomics that the workers of a multi-core replay
 * share, as atomic_t in the kernel), the thresholds beside them, weight
 * and address.  On one 104-byte struct, every new conn on one worker
 * invalidated the line the other worker read flags from on every packet
 * of its conns to that dest (measured: docs/multicore.md, "The dest
 * line").  The kernel's struct ip_vs_dest keeps them apart too: its
 * stats block lies between addr/flags and activeconns. */
struct ipvs_cdest {
	uint32_t flags;			/* IPVS_DF_* */
	int32_t svc;			/* engine service index (stats) */
	uint16_t port;			/* network order */
	uint8_t af, fwd;
	uint16_t tun_port;		/* tunnel dests: network order */
	uint8_t tun_type;		/* IP_VS_CONN_F_TUNNEL_TYPE_* */
	uint64_t conns, inpkts, outpkts, inbytes, outbytes;
	_Alignas(64) int32_t activeconns;	/* (one declarator: _Alignas
					 * aligns each one) */
	int32_t inactconns, persistconns, refcnt;
	int32_t weight;
	uint32_t u_thresh, l_thresh;	/* l_thresh 0: 3/4 of u_thresh rule */
	uint32_t addr[4];
};

_Static_assert(sizeof(struct ipvs_cdest) == 128 &&
	       offsetof(struct ipvs_cdest, activeconns) == 64,
	       "struct ipvs_cdest: two cache lines, counters on the second");

/* A virtual service as the packet path sees it. */
struct ipvs_csvc {
	uint32_t addr[4];
	uint32_t fwmark;
	uint32_t flags;			/* IP_VS_SVC_F_* */
	uint32_t timeout;		/* persistence, jiffies */
	uint32_t netmask[4];		/* mask words (IPv4: word 0) */
	uint16_t port;			/* network order */
	uint8_t af, protocol;
	int32_t live;			/* 0: removed (stats only) */
	ipvs_sched_svc_t *sched;	/* C scheduler, NULL: callback */
	int32_t *row_dest;		/* sched row -> engine dest id */
	uint64_t conns, inpkts, outpkts, inbytes, outbytes;
};

#include "ipvs_svcindex.h"

/* One packet. */
struct ipvs_pkt {
	uint32_t saddr[4], daddr[4];
	uint32_t fwmark, len;
	uint16_t sport, dport;		/* network order */
	uint8_t af, protocol, flags, dir;
};

struct ipvs_verdict {
	int action;
	int32_t dest;
	uint32_t conn;
};

struct ipvs_timer_ent {
	uint32_t expires, cid;
};

struct ipvs_engine;

/* Per-worker statistics (the kernel's per-CPU cpustats): same order as the
 * counters at the end of ipvs_cdest/ipvs_csvc. */
struct ipvs_cstats {
	uint64_t conns, inpkts, outpkts, inbytes, outbytes;
};

/* A service's state in a multi-core replay, alone on its cache line:
 * the sched_lock of rr/wrr, and whether its rows are fixed for the run
 * (written once in setup, then only read). */
struct ipvs_mt_svc {
	_Alignas(64) struct iht_spinlock sched_lock;
	int rows_fixed;
};

/* What a worker's engine clone shares (ipvs_mt.h sets it up; NULL on the
 * single-threaded path). */
struct ipvs_mt_ctx {
	struct iht_table *tab;		/* the one conn table */
	struct ipvs_mt_svc *svcs;	/* per service (ipvs_mt_svc) */
	ipvs_sched_dest_t *rows;	/* this worker's copy of a service's
					 * sched rows: room for the most any
					 * service has (set up before the run,
					 * when services cannot change) */
	uint64_t *decisions;		/* per service, this worker's */
	struct ipvs_cstats *dstats, *sstats;	/* this worker's stats */
	uint32_t (*alloc)(struct ipvs_mt_ctx *m);	/* a slab id */
	void (*free)(struct ipvs_mt_ctx *m, uint32_t id);
	void *pool;			/* the allocator's own state */
};

/* Scheduler callback for services without a C scheduler: returns an
 * engine dest id or -1.  @svc is the engine service index. */
typedef int32_t (*ipvs_sched_cb)(struct ipvs_engine *e, int svc,
				 const struct ipvs_pkt *p, void *arg);

struct ipvs_engine {
	struct iht_table tab;
	int tab_ready;
	struct ipvs_conn **chunks;
	uint32_t nchunks, nslots, free_head;
	uint32_t bump;			/* next never-used slot */
	int64_t nconns, no_cport, ntemplates;
	struct ipvs_timer_ent *heap;
	size_t heap_n, heap_cap;
	uint32_t now;			/* jiffies */
	uint32_t hz;
	uint32_t tcp_timeouts[TS_LAST + 1];
	uint32_t udp_timeout;
	uint32_t sctp_timeouts[SS_LAST + 1];
	int secure_tcp;			/* tcp_states_dos table */
	int conn_reuse_mode, expire_nodest_conn;
	int expire_quiescent_template, sloppy_tcp, sloppy_sctp;
	int schedule_icmp;		/* ICMP errors may make conns */
	int hash61;			/* Linux 6.1 hashing: ipvs_conn61.h */
	uint32_t salt61;		/* its (size_t)ipvs >> 8 */
	int drop_rate, drop_counter;	/* ip_vs_todrop() */
	uint64_t dropentry;		/* conns dropped by drop-entry */
	uint64_t rng;			/* xorshift64 state (drop-entry scan) */
	int8_t todrop_counter[9];	/* todrop_entry()'s static counters */
	struct ipvs_cdest *dests;
	uint32_t ndests, cap_dests;
	struct ipvs_csvc *svcs;
	uint32_t nsvcs, cap_svcs;
	struct ipvs_svc_index sidx;	/* live services by key */
	int svc_scan;			/* scan instead (bench/bench_ctl.py) */
	ipvs_sched_cb sched_cb;
	void *sched_arg;
	int cb_error;			/* the callback raised */
	struct ipvs_trace *trace;	/* explain: NULL = off (ipvs_trace.h) */
	uint64_t tot_conns, tot_inpkts, tot_outpkts, tot_inbytes, tot_outbytes;
	uint64_t allocs_failed;
	struct ipvs_events *events;	/* session events, NULL: off */
	struct ipvs_mt_ctx *mt;		/* worker clone (ipvs_mt.h) or NULL */
	struct ipvs_fc *fc;		/* flow cache (ipvs_flowcache.h) or NULL */
	int mt_resize_help;		/* workers move rebuild chunks (ipvs_mt.h):
					 * -1 when CPUs are short, 0 no, 1 yes */
};

#include "ipvs_events.h"

/* Room for @n dests in @e->dests (64-byte aligned, so that each dest's
 * two lines are whole; new ones zeroed).  Returns 0 or -ENOMEM (then
 * nothing changed). */
static inline int ipvs_dests_reserve(struct ipvs_engine *e, uint32_t n)
{
	struct ipvs_cdest *d;
	uint32_t cap;

	if (n <= e->cap_dests)
		return 0;
	cap = e->cap_dests ? e->cap_dests : 8;
	while (cap < n)
		cap = cap > UINT32_MAX / 2 ? n : 2 * cap;
	d = aligned_alloc(64, (size_t)cap * sizeof(*d));
	if (!d)
		return -ENOMEM;
	if (e->ndests)
		memcpy(d, e->dests, (size_t)e->ndests * sizeof(*d));
	memset(&d[e->ndests], 0, (size_t)(cap - e->ndests) * sizeof(*d));
	free(e->dests);
	e->dests = d;
	e->cap_dests = cap;
	return 0;
}

/* The conn table: a worker clone's is the shared engine's. */
static inline struct iht_table *ipvs_tab(struct ipvs_engine *e)
{
	return e->mt ? e->mt->tab : &e->tab;
}

/* A conn counter of a dest (activeconns...): atomic_t in the kernel, a
 * plain int on the single-threaded path. */
static inline void ipvs_cnt_add(struct ipvs_engine *e, int32_t *p, int v)
{
	if (e->mt)
		__atomic_fetch_add(p, v, __ATOMIC_RELAXED);
	else
		*p += v;
}

static inline void ipvs_flags_set(struct ipvs_engine *e, uint32_t *p,
				  uint32_t bits, int on)
{
	if (e->mt && on)
		__atomic_fetch_or(p, bits, __ATOMIC_RELAXED);
	else if (e->mt)
		__atomic_fetch_and(p, ~bits, __ATOMIC_RELAXED);
	else if (on)
		*p |= bits;
	else
		*p &= ~bits;
}

static inline int32_t ipvs_cnt_read(const int32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------ slab */

static inline struct ipvs_conn *ipvs_conn_of(struct ipvs_engine *e,
					     uint32_t id)
{
	return &e->chunks[id / IPVS_CONN_CHUNK][id % IPVS_CONN_CHUNK];
}

static inline uint32_t ipvs_conn_id(struct ipvs_engine *e,
				    const struct ipvs_conn *c)
{
	(void)e;
	return c->id;
}

/* A fresh chunk from the entry cage (iht_cage.h: the table links conns by
 * 32-bit reference), zeroed by the kernel, so no memset (the first bench
 * profile spent more time zeroing pages than hashing), 2 MiB aligned on a
 * transparent huge page so a lookup at 1M conns costs no TLB miss for the
 * conn (bench/bench_conn.py).  Given back with ipvs_chunk_unmap(). */
static inline struct ipvs_conn *ipvs_chunk_map(void)
{
	return iht_cage_chunk_alloc(IPVS_CHUNK_BYTES);
}

static inline void ipvs_chunk_unmap(struct ipvs_conn *ch)
{
	iht_cage_chunk_free(ch, IPVS_CHUNK_BYTES);
}

/* Slots come from the free list, else from the newest chunk's unused
 * tail (bump allocation: a chunk's pages are touched only when used). */
static inline uint32_t ipvs_conn_alloc(struct ipvs_engine *e)
{
	uint32_t id, gen;
	struct ipvs_conn *c;

	if (e->mt) {
		id = e->mt->alloc(e->mt);
		if (id == IPVS_CONN_NONE)
			return id;
		c = ipvs_conn_of(e, id);
	} else if (e->free_head != IPVS_CONN_NONE) {
		id = e->free_head;
		c = ipvs_conn_of(e, id);
		e->free_head = c->dest < 0 ? IPVS_CONN_NONE : (uint32_t)c->dest;
	} else {
		if (e->bump == e->nslots) {
			struct ipvs_conn **nc = realloc(e->chunks,
					(e->nchunks + 1) * sizeof(*nc));
			struct ipvs_conn *ch;

			if (!nc)
				return IPVS_CONN_NONE;
			e->chunks = nc;
			ch = ipvs_chunk_map();
			if (!ch)
				return IPVS_CONN_NONE;
			e->chunks[e->nchunks++] = ch;
			e->nslots += IPVS_CONN_CHUNK;
		}
		id = e->bump++;
		c = ipvs_conn_of(e, id);
	}
	gen = c->gen;
	memset(c, 0, sizeof(*c));
	c->gen = gen;
	c->in_use = 1;
	c->id = id;
	c->dest = -1;
	c->control = IPVS_CONN_NONE;
	return id;
}

static inline void ipvs_conn_free(struct ipvs_engine *e, uint32_t id)
{
	struct ipvs_conn *c = ipvs_conn_of(e, id);

	c->in_use = 0;
	c->gen++;
	if (e->mt) {
		e->mt->free(e->mt, id);
		return;
	}
	c->dest = e->free_head == IPVS_CONN_NONE ? -1 : (int32_t)e->free_head;
	e->free_head = id;
}

/* ------------------------------------------------------------ hashing */

/* A lookup key: remote (client) address/port, local (VIP or real server)
 * address/port, direction (hn0/hn1), template or not. */
struct ipvs_ckey {
	const uint32_t *raddr, *laddr;
	uint16_t rport, lport;
	uint8_t af, protocol, dir, tmpl;
};

/* The 2026 series' conn hash (f20c73b0460d, ARCHITECTURE.md "Hashing"):
 * IPv4 (u32)siphash_2u64(proto<<16 | port | addr<<32, laddr<<32 | lport);
 * IPv6 (u32)siphash_4u64(proto<<16 | port | ((laddr[2]<<32) ^ lport),
 *   addr[0]<<32 | addr[1], (addr[2]<<32 | addr[3]) ^ laddr[1],
 *   laddr[0]<<32 | laddr[3]); raw network-order words. */
static inline uint32_t ipvs_conn_hashfn(uint8_t af, uint8_t proto,
					const uint32_t *addr, uint16_t port,
					const uint32_t *laddr, uint16_t lport,
					const ipvs_siphash_key_t *k)
{
	if (af == 10)
		return (uint32_t)ipvs_siphash_4u64(
			((uint64_t)proto << 16) | port |
			(((uint64_t)laddr[2] << 32) ^ lport),
			((uint64_t)addr[0] << 32) | addr[1],
			(((uint64_t)addr[2] << 32) | addr[3]) ^ laddr[1],
			((uint64_t)laddr[0] << 32) | laddr[3], k);
	return (uint32_t)ipvs_siphash_2u64(
		((uint64_t)proto << 16) | port | ((uint64_t)addr[0] << 32),
		((uint64_t)laddr[0] << 32) | lport, k);
}

/* 0 for a conn's hn0 node, 1 for its hn1 (see struct ipvs_conn). */
static inline unsigned int ipvs_node_dir(const struct iht_node *n)
{
	return (unsigned int)((uintptr_t)n >> 3) & 1;
}

static inline struct ipvs_conn *ipvs_conn_of_node(const struct iht_node *n)
{
	return (struct ipvs_conn *)((uintptr_t)n & ~(uintptr_t)15);
}

static uint32_t ipvs_ckey_hash(const void *key, const ipvs_siphash_key_t *hk,
			       void *ctx)
{
	const struct ipvs_ckey *k = key;
	(void)ctx;
	return ipvs_conn_hashfn(k->af, k->protocol, k->raddr, k->rport,
				k->laddr, k->lport, hk);
}

/* The resizer re-hashes a node from the conn itself. */
static uint32_t ipvs_node_hash(const struct iht_node *n,
			       const ipvs_siphash_key_t *hk, void *ctx)
{
	const struct ipvs_conn *c = ipvs_conn_of_node(n);
	/* a no-cport rehash of the conn's other node may be writing cport:
	 * either value is fine, that rehash re-checks and moves this node
	 * again (relaxed atomics, as in ipvs_ckey_cmp) */
	uint16_t cport = __atomic_load_n(&c->cport, __ATOMIC_RELAXED);
	(void)ctx;
	if (ipvs_node_dir(n) == 0)
		return ipvs_conn_hashfn(c->af, c->protocol, c->caddr, cport,
			c->vaddr, __atomic_load_n(&c->vport, __ATOMIC_RELAXED),
			hk);
	return ipvs_conn_hashfn(c->af, c->protocol, c->caddr, cport, c->daddr,
		__atomic_load_n(&c->dport, __ATOMIC_RELAXED), hk);
}

static inline int ipvs_addr_eq(uint8_t af, const uint32_t *a,
			       const uint32_t *b)
{
	if (af == 10)
		return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] &&
		       a[3] == b[3];
	return a[0] == b[0];
}

static int ipvs_ckey_cmp(const struct iht_node *n, const void *key,
			 void *ctx)
{
	const struct ipvs_ckey *k = key;
	const struct ipvs_conn *c = ipvs_conn_of_node(n);
	(void)ctx;
	/* the ports and flags a rehash changes under this reader's seqcount
	 * section (iht_rehash_commit) are read as relaxed atomics: a torn or
	 * stale value only makes the section retry */
	if (c->protocol != k->protocol || c->af != k->af ||
	    __atomic_load_n(&c->cport, __ATOMIC_RELAXED) != k->rport ||
	    !!(__atomic_load_n(&c->flags, __ATOMIC_RELAXED) &
	       IPVS_CF_TEMPLATE) != k->tmpl)
		return 0;
	if (!ipvs_addr_eq(k->af, c->caddr, k->raddr))
		return 0;
	if (k->dir == 0)
		return ipvs_node_dir(n) == 0 &&
		       __atomic_load_n(&c->vport, __ATOMIC_RELAXED) ==
		       k->lport && ipvs_addr_eq(k->af, c->vaddr, k->laddr);
	/* ip_vs_conn_out_get() (since 5.10, "inspect reply packets from
	 * DR/TUN real servers"): NAT replies come from daddr:dport (hn1),
	 * DR/TUN replies from vaddr:vport (hn0, the same hash) */
	if (ipvs_node_dir(n) == 1)
		return __atomic_load_n(&c->dport, __ATOMIC_RELAXED) ==
		       k->lport && ipvs_addr_eq(k->af, c->daddr, k->laddr);
	return (c->flags & IPVS_CF_FWD_MASK) != IPVS_CF_MASQ &&
	       __atomic_load_n(&c->vport, __ATOMIC_RELAXED) == k->lport &&
	       ipvs_addr_eq(k->af, c->vaddr, k->laddr);
}

#include "ipvs_conn61.h"

/* The key hash for inserts and rehashes: iht_*(..., IPVS_CKEY_HASH(e)) */
#define IPVS_CKEY_HASH(e) \
	((e)->hash61 ? ipvs_ckey_hash61 : ipvs_ckey_hash), (void *)(e)

/* The flow cache's copy of a lookup key. */
static inline void ipvs_fc_key_of(const struct ipvs_ckey *k,
				  struct ipvs_fc_key *fk)
{
	int w = k->af == 10 ? 16 : 4;

	memset(fk, 0, sizeof(*fk));
	memcpy(fk->raddr, k->raddr, w);
	memcpy(fk->laddr, k->laddr, w);
	fk->rport = k->rport;
	fk->lport = k->lport;
	fk->af = k->af;
	fk->proto = k->protocol;
	fk->dir = k->dir;
}

/* ip_vs_conn_in_get()/out_get(): the flow cache first when there is one
 * and the table is loaded enough (templates bypass it), then the table. */
static inline struct ipvs_conn *ipvs_conn_lookup(struct ipvs_engine *e,
						 const struct ipvs_ckey *k)
{
	struct iht_table *t = ipvs_tab(e);
	struct iht_node *n;
	struct ipvs_conn *c;
	struct ipvs_fc_key fk;
	int cached = 0;
	unsigned int slot = iht_read_lock(t);

	if (e->fc && !k->tmpl &&
	    ipvs_fc_wanted(e->fc, iht_count(t), iht_first_tbl(t)->size)) {
		ipvs_fc_key_of(k, &fk);
		c = ipvs_fc_get(e->fc, &fk);
		if (c) {
			iht_read_unlock(t, slot);
			return c;
		}
		cached = 1;
	}
	n = e->hash61 ? iht_lookup(t, k, ipvs_ckey_hash61, ipvs_ckey_cmp61, e)
		      : iht_lookup(t, k, ipvs_ckey_hash, ipvs_ckey_cmp, NULL);
	iht_read_unlock(t, slot);
	c = !n ? NULL : e->hash61 ? ipvs_conn_of_node61(n) : ipvs_conn_of_node(n);
	if (c && cached)	/* gap since its last packet (expires-timeout) */
		ipvs_fc_put(e->fc, &fk, c, &c->gen,
			    e->now - (c->expires - c->timeout));
	return c;
}

/* ip_vs_conn_in_get(): the client-direction (hn0) key, then, while
 * NO_CPORT conns exist, the same key with cport 0 (ipvs_in and the
 * ICMP path, ipvs_icmp.h). */
static inline struct ipvs_conn *ipvs_conn_in_get(struct ipvs_engine *e,
						 const struct ipvs_ckey *key)
{
	struct ipvs_conn *c = ipvs_conn_lookup(e, key);

	if (!c && e->no_cport) {
		struct ipvs_ckey k = *key;

		k.rport = 0;
		c = ipvs_conn_lookup(e, &k);
		if (c && !(c->flags & IPVS_CF_NO_CPORT))
			c = NULL;
	}
	return c;
}

/* ip_vs_conn_out_get(): the reply-direction key; ipvs_ckey_cmp() takes
 * a NAT conn's hn1 (daddr:dport) or a DR/TUN conn's hn0 (vaddr:vport). */
static inline struct ipvs_conn *ipvs_conn_out_get(struct ipvs_engine *e,
						  const struct ipvs_ckey *key)
{
	return ipvs_conn_lookup(e, key);
}

static inline int ipvs_conn_double_hashed(const struct ipvs_conn *c)
{
	return !(c->flags & IPVS_CF_TEMPLATE) &&
	       (c->flags & IPVS_CF_FWD_MASK) == IPVS_CF_MASQ;
}

/* hn1 is in the table: MASQ conns, except in 6.1 (one node each). */
static inline int ipvs_conn_two_nodes(const struct ipvs_engine *e,
				      const struct ipvs_conn *c)
{
	return !e->hash61 && ipvs_conn_double_hashed(c);
}

/* ip_vs_conn_hash(): hn0 always, hn1 for MASQ conns, both under the
 * ordered double bucket lock. */
static inline void ipvs_conn_hash(struct ipvs_engine *e, struct ipvs_conn *c)
{
	struct ipvs_ckey k0 = { c->caddr, c->vaddr, c->cport, c->vport,
				c->af, c->protocol, 0, 0 };

	if (ipvs_conn_two_nodes(e, c)) {
		struct ipvs_ckey k1 = { c->caddr, c->daddr, c->cport, c->dport,
					c->af, c->protocol, 1, 0 };
		iht_insert2(ipvs_tab(e), &c->hn[0], &k0, &c->hn[1], &k1,
			    IPVS_CKEY_HASH(e), 1);
	} else {
		iht_insert(ipvs_tab(e), &c->hn[0], &k0, IPVS_CKEY_HASH(e), 1);
	}
}

static inline void ipvs_conn_unhash(struct ipvs_engine *e,
				    struct ipvs_conn *c)
{
	if (ipvs_conn_two_nodes(e, c))
		iht_unlink2(ipvs_tab(e), &c->hn[0], &c->hn[1], 1);
	else
		iht_unlink(ipvs_tab(e), &c->hn[0], 1);
}

/* ------------------------------------------------------------ timers */

static inline int ipvs_time_before(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

/* Heap entries of templates carry this bit in cid, so that at the same
 * jiffy conns expire before templates (a template then sees the conns it
 * controlled gone, whatever their slab ids): the order of timers due
 * together must not depend on ids, which a multi-core replay hands out
 * differently (ipvs_mt.h).  Slab ids stay below 2^31 (256 GiB of conns). */
#define IPVS_TIMER_TMPL 0x80000000u

static inline int ipvs_heap_less(const struct ipvs_timer_ent *a,
				 const struct ipvs_timer_ent *b)
{
	if (a->expires != b->expires)
		return ipvs_time_before(a->expires, b->expires);
	return a->cid < b->cid;
}

/* Room for one more timer entry: 0, or -1 (no memory). */
static inline int ipvs_heap_reserve(struct ipvs_engine *e)
{
	if (e->heap_n == e->heap_cap) {
		size_t cap = e->heap_cap ? 2 * e->heap_cap : 1024;
		struct ipvs_timer_ent *h = realloc(e->heap, cap * sizeof(*h));
		if (!h)
			return -1;
		e->heap = h;
		e->heap_cap = cap;
	}
	return 0;
}

/* Append @t without ordering it; the caller runs ipvs_heap_build after.
 * Returns 0 or -1 (no memory). */
static inline int ipvs_heap_append(struct ipvs_engine *e,
				   struct ipvs_timer_ent t)
{
	if (ipvs_heap_reserve(e))
		return -1;
	e->heap[e->heap_n++] = t;
	return 0;
}

static inline int ipvs_heap_push(struct ipvs_engine *e, uint32_t expires,
				 uint32_t cid)
{
	if (ipvs_heap_reserve(e))
		return -1;
	size_t i = e->heap_n++;
	struct ipvs_timer_ent x = { expires, cid };

	while (i) {
		size_t p = (i - 1) >> 1;
		if (!ipvs_heap_less(&x, &e->heap[p]))
			break;
		e->heap[i] = e->heap[p];
		i = p;
	}
	e->heap[i] = x;
	return 0;
}

/* Put @x at slot @i and sift it down among the heap_n entries. */
static inline void ipvs_heap_sift_down(struct ipvs_engine *e, size_t i,
				       struct ipvs_timer_ent x)
{
	size_t n = e->heap_n;

	for (;;) {
		size_t l = 2 * i + 1, m;
		if (l >= n)
			break;
		m = (l + 1 < n && ipvs_heap_less(&e->heap[l + 1], &e->heap[l]))
		    ? l + 1 : l;
		if (!ipvs_heap_less(&e->heap[m], &x))
			break;
		e->heap[i] = e->heap[m];
		i = m;
	}
	e->heap[i] = x;
}

static inline struct ipvs_timer_ent ipvs_heap_pop(struct ipvs_engine *e)
{
	struct ipvs_timer_ent top = e->heap[0], x = e->heap[--e->heap_n];

	if (e->heap_n)
		ipvs_heap_sift_down(e, 0, x);
	return top;
}

/* Make the heap_n entries of e->heap a heap, bottom-up: O(n).  Pops
 * come out in (expires, cid) order whatever the layout, so a heap built
 * this way fires timers exactly as one built by pushes. */
static inline void ipvs_heap_build(struct ipvs_engine *e)
{
	for (size_t i = e->heap_n / 2; i-- > 0;)
		ipvs_heap_sift_down(e, i, e->heap[i]);
}

/* mod_timer(&cp->timer, expires): O(1) when the expiry moves later. */
static inline void ipvs_conn_mod_timer(struct ipvs_engine *e, uint32_t cid,
				       struct ipvs_conn *c, uint32_t expires)
{
	c->expires = expires;
	if (c->heap_expires == 0 || ipvs_time_before(expires, c->heap_expires)) {
		c->heap_expires = expires ? expires : 1;
		ipvs_heap_push(e, c->heap_expires, cid |
			       ((c->flags & IPVS_CF_TEMPLATE) ?
				IPVS_TIMER_TMPL : 0));
	}
}

/* ------------------------------------------------------------ dests */

/* ip_vs_bind_dest(): counters by the conn's flags; OVERLOAD at u_thresh. */
static inline void ipvs_bind_dest(struct ipvs_engine *e, struct ipvs_conn *c,
				  int32_t did)
{
	struct ipvs_cdest *d = &e->dests[did];

	c->dest = did;
	c->flags &= ~(IPVS_CF_FWD_MASK | IPVS_CF_NOOUTPUT);
	c->flags |= d->fwd | IPVS_CF_INACTIVE;
	if ((d->fwd & IPVS_CF_FWD_MASK) != IPVS_CF_MASQ)
		c->flags |= IPVS_CF_NOOUTPUT;
	if (c->protocol != IPVS_PROTO_UDP)
		c->flags &= ~IPVS_CF_ONE_PACKET;
	c->daf = d->af;
	ipvs_cnt_add(e, &d->refcnt, 1);
	if (!(c->flags & IPVS_CF_TEMPLATE)) {
		if (!(c->flags & IPVS_CF_INACTIVE))
			ipvs_cnt_add(e, &d->activeconns, 1);
		else
			ipvs_cnt_add(e, &d->inactconns, 1);
	} else {
		ipvs_cnt_add(e, &d->persistconns, 1);
	}
	if (d->u_thresh &&
	    (uint32_t)(ipvs_cnt_read(&d->activeconns) +
		       ipvs_cnt_read(&d->inactconns)) >= d->u_thresh)
		ipvs_flags_set(e, &d->flags, IPVS_DF_OVERLOAD, 1);
}

/* ip_vs_unbind_dest() */
static inline void ipvs_unbind_dest(struct ipvs_engine *e,
				    struct ipvs_conn *c)
{
	struct ipvs_cdest *d;
	uint32_t total;

	if (c->dest < 0)
		return;
	d = &e->dests[c->dest];
	if (!(c->flags & IPVS_CF_TEMPLATE)) {
		if (c->flags & IPVS_CF_INACTIVE)
			ipvs_cnt_add(e, &d->inactconns, -1);
		else
			ipvs_cnt_add(e, &d->activeconns, -1);
	} else {
		ipvs_cnt_add(e, &d->persistconns, -1);
	}
	total = (uint32_t)(ipvs_cnt_read(&d->activeconns) +
			   ipvs_cnt_read(&d->inactconns));
	if (d->l_thresh) {
		if (total < d->l_thresh)
			ipvs_flags_set(e, &d->flags, IPVS_DF_OVERLOAD, 0);
	} else if (d->u_thresh) {
		if (total * 4 < d->u_thresh * 3)
			ipvs_flags_set(e, &d->flags, IPVS_DF_OVERLOAD, 0);
	} else {
		ipvs_flags_set(e, &d->flags, IPVS_DF_OVERLOAD, 0);
	}
	ipvs_cnt_add(e, &d->refcnt, -1);
	c->dest = -1;
}

/* ------------------------------------------------------------ states */

static const uint8_t ipvs_tcp_active[TS_LAST] = {
	[TS_SS] = 1, [TS_SR] = 1, [TS_ES] = 1,	/* tcp_state_active_table */
};

#define sNO TS_NO
#define sES TS_ES
#define sSS TS_SS
#define sSR TS_SR
#define sFW TS_FW
#define sTW TS_TW
#define sCL TS_CL
#define sCW TS_CW
#define sLA TS_LA
#define sLI TS_LI
#define sSA TS_SA
/* ip_vs_proto_tcp.c tcp_states[]: rows syn fin ack rst for INPUT, OUTPUT,
 * INPUT-ONLY; columns the current state. */
static const uint8_t ipvs_tcp_states[12][TS_LAST] = {
/*        sNO, sES, sSS, sSR, sFW, sTW, sCL, sCW, sLA, sLI, sSA */
/*syn*/ {sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR },
/*fin*/ {sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW },
/*ack*/ {sCL, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES },
/*rst*/ {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR },
/*syn*/ {sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR },
/*fin*/ {sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW },
/*ack*/ {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES },
/*rst*/ {sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL },
/*syn*/ {sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR },
/*fin*/ {sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW },
/*ack*/ {sCL, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES },
/*rst*/ {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL },
};
/* tcp_states_dos[] (secure_tcp) */
static const uint8_t ipvs_tcp_states_dos[12][TS_LAST] = {
/*syn*/ {sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSA },
/*fin*/ {sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sSA },
/*ack*/ {sCL, sES, sSS, sSR, sFW, sTW, sCL, sCW, sCL, sLI, sSA },
/*rst*/ {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL },
/*syn*/ {sSS, sES, sSS, sSA, sSS, sSS, sSS, sSS, sSS, sLI, sSA },
/*fin*/ {sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW },
/*ack*/ {sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES },
/*rst*/ {sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL },
/*syn*/ {sSA, sES, sES, sSR, sSA, sSA, sSA, sSA, sSA, sSA, sSA },
/*fin*/ {sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW },
/*ack*/ {sCL, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES },
/*rst*/ {sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL },
};
#undef sNO
#undef sES
#undef sSS
#undef sSR
#undef sFW
#undef sTW
#undef sCL
#undef sCW
#undef sLA
#undef sLI
#undef sSA

/* set_tcp_state() */
static inline void ipvs_tcp_state(struct ipvs_engine *e, struct ipvs_conn *c,
				  int dir, uint8_t th)
{
	int off = dir * 4, idx, ns = TS_CL;

	if (c->flags & IPVS_CF_NOOUTPUT) {
		if (dir == IPVS_DIR_OUTPUT)
			c->flags &= ~IPVS_CF_NOOUTPUT;
		else
			off = IPVS_DIR_INPUT_ONLY * 4;
	}
	idx = (th & IPVS_TH_RST) ? 3 : (th & IPVS_TH_SYN) ? 0 :
	      (th & IPVS_TH_FIN) ? 1 : (th & IPVS_TH_ACK) ? 2 : -1;
	if (idx >= 0)
		ns = (e->secure_tcp ? ipvs_tcp_states_dos
				    : ipvs_tcp_states)[off + idx][c->state];
	if (ns != c->state && c->dest >= 0) {
		struct ipvs_cdest *d = &e->dests[c->dest];
		if (!(c->flags & IPVS_CF_INACTIVE) && !ipvs_tcp_active[ns]) {
			ipvs_cnt_add(e, &d->activeconns, -1);
			ipvs_cnt_add(e, &d->inactconns, 1);
			c->flags |= IPVS_CF_INACTIVE;
		} else if ((c->flags & IPVS_CF_INACTIVE) &&
			   ipvs_tcp_active[ns]) {
			ipvs_cnt_add(e, &d->activeconns, 1);
			ipvs_cnt_add(e, &d->inactconns, -1);
			c->flags &= ~IPVS_CF_INACTIVE;
		}
	}
	if (ns != c->state)
		ipvs_ev_conn_state(e, c, (uint8_t)ns);
	c->state = (uint8_t)ns;
	c->timeout = e->tcp_timeouts[ns];
}

/* ip_vs_proto_sctp.c sctp_states[][] (read from the kernel source):
 * [direction][event][state]; direction INPUT, OUTPUT, INPUT-ONLY. */
#define sNO SS_NONE
#define sI1 SS_INIT1
#define sIN SS_INIT
#define sCS SS_COOKIE_SENT
#define sCR SS_COOKIE_REPLIED
#define sCW SS_COOKIE_WAIT
#define sCO SS_COOKIE
#define sCE SS_COOKIE_ECHOED
#define sES SS_ESTABLISHED
#define sSS SS_SHUTDOWN_SENT
#define sSR SS_SHUTDOWN_RECEIVED
#define sSA SS_SHUTDOWN_ACK_SENT
#define sRJ SS_REJECTED
#define sCL SS_CLOSED
static const uint8_t ipvs_sctp_states[3][IPVS_SCTP_EV_LAST][SS_LAST] = {
	{ /* INPUT */
/*        sNO, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL*/
/* d   */{sES, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* i   */{sI1, sIN, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sIN, sIN},
/* i_a */{sCW, sCW, sCW, sCS, sCR, sCO, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* c_e */{sCR, sIN, sIN, sCR, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* c_a */{sES, sI1, sIN, sCS, sCR, sCW, sCO, sES, sES, sSS, sSR, sSA, sRJ, sCL},
/* s   */{sSR, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sSR, sSS, sSR, sSA, sRJ, sCL},
/* s_a */{sCL, sIN, sIN, sCS, sCR, sCW, sCO, sCE, sES, sCL, sSR, sCL, sRJ, sCL},
/* s_c */{sCL, sCL, sCL, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sCL, sRJ, sCL},
/* err */{sCL, sI1, sIN, sCS, sCR, sCW, sCO, sCL, sES, sSS, sSR, sSA, sRJ, sCL},
/* ab  */{sCL, sCL, sCL, sCL, sCL, sRJ, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL},
	},
	{ /* OUTPUT */
/*        sNO, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL*/
/* d   */{sES, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* i   */{sCW, sCW, sCW, sCW, sCW, sCW, sCW, sCW, sES, sCW, sCW, sCW, sCW, sCW},
/* i_a */{sCS, sCS, sCS, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* c_e */{sCE, sCE, sCE, sCE, sCE, sCE, sCE, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* c_a */{sES, sES, sES, sES, sES, sES, sES, sES, sES, sSS, sSR, sSA, sRJ, sCL},
/* s   */{sSS, sSS, sSS, sSS, sSS, sSS, sSS, sSS, sSS, sSS, sSR, sSA, sRJ, sCL},
/* s_a */{sSA, sSA, sSA, sSA, sSA, sCW, sCO, sCE, sES, sSA, sSA, sSA, sRJ, sCL},
/* s_c */{sCL, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* err */{sCL, sCL, sCL, sCL, sCL, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* ab  */{sCL, sRJ, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL},
	},
	{ /* INPUT-ONLY */
/*        sNO, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL*/
/* d   */{sES, sI1, sIN, sCS, sCR, sES, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* i   */{sI1, sIN, sIN, sIN, sIN, sIN, sCO, sCE, sES, sSS, sSR, sSA, sIN, sIN},
/* i_a */{sCE, sCE, sCE, sCE, sCE, sCE, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* c_e */{sES, sES, sES, sES, sES, sES, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* c_a */{sES, sI1, sIN, sES, sES, sCW, sES, sES, sES, sSS, sSR, sSA, sRJ, sCL},
/* s   */{sSR, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sSR, sSS, sSR, sSA, sRJ, sCL},
/* s_a */{sCL, sIN, sIN, sCS, sCR, sCW, sCO, sCE, sCL, sCL, sSR, sCL, sRJ, sCL},
/* s_c */{sCL, sCL, sCL, sCL, sCL, sCW, sCO, sCE, sES, sSS, sCL, sCL, sRJ, sCL},
/* err */{sCL, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* ab  */{sCL, sCL, sCL, sCL, sCL, sRJ, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL},
	},
};
#undef sNO
#undef sI1
#undef sIN
#undef sCS
#undef sCR
#undef sCW
#undef sCO
#undef sCE
#undef sES
#undef sSS
#undef sSR
#undef sSA
#undef sRJ
#undef sCL

/* sctp_events[]: chunk type -> event row (unknown chunks count as DATA) */
static inline uint8_t ipvs_sctp_event(uint8_t chunk)
{
	switch (chunk) {
	case 1: return IPVS_SCTP_EV_INIT;
	case 2: return IPVS_SCTP_EV_INIT_ACK;
	case 6: return IPVS_SCTP_EV_ABORT;
	case 7: return IPVS_SCTP_EV_SHUTDOWN;
	case 8: return IPVS_SCTP_EV_SHUTDOWN_ACK;
	case 9: return IPVS_SCTP_EV_ERROR;
	case 10: return IPVS_SCTP_EV_COOKIE_ECHO;
	case 11: return IPVS_SCTP_EV_COOKIE_ACK;
	case 14: return IPVS_SCTP_EV_SHUTDOWN_COMPLETE;
	default: return IPVS_SCTP_EV_DATA;
	}
}

/* set_sctp_state(): ESTABLISHED is the only active state. */
static inline void ipvs_sctp_state(struct ipvs_engine *e,
				   struct ipvs_conn *c, int dir, uint8_t ev)
{
	int ns;

	if (c->flags & IPVS_CF_NOOUTPUT) {
		if (dir == IPVS_DIR_OUTPUT)
			c->flags &= ~IPVS_CF_NOOUTPUT;
		else
			dir = IPVS_DIR_INPUT_ONLY;
	}
	ev = ipvs_sctp_event(ev);
	ns = ipvs_sctp_states[dir][ev][c->state];
	if (ns != c->state && c->dest >= 0) {
		struct ipvs_cdest *d = &e->dests[c->dest];
		if (!(c->flags & IPVS_CF_INACTIVE) && ns != SS_ESTABLISHED) {
			ipvs_cnt_add(e, &d->activeconns, -1);
			ipvs_cnt_add(e, &d->inactconns, 1);
			c->flags |= IPVS_CF_INACTIVE;
		} else if ((c->flags & IPVS_CF_INACTIVE) &&
			   ns == SS_ESTABLISHED) {
			ipvs_cnt_add(e, &d->activeconns, 1);
			ipvs_cnt_add(e, &d->inactconns, -1);
			c->flags &= ~IPVS_CF_INACTIVE;
		}
	}
	c->state = (uint8_t)ns;
	c->timeout = e->sctp_timeouts[ns];
}

/* ip_vs_set_state(): the protocol's state_transition. */
static inline void ipvs_set_state(struct ipvs_engine *e, struct ipvs_conn *c,
				  int dir, uint8_t flags)
{
	if (c->protocol == IPVS_PROTO_TCP)
		ipvs_tcp_state(e, c, dir, flags);
	else if (c->protocol == IPVS_PROTO_UDP)
		c->timeout = e->udp_timeout;	/* udp_state_transition() */
	else if (c->protocol == IPVS_PROTO_SCTP)
		ipvs_sctp_state(e, c, dir, flags);
}

/* ------------------------------------------------------------ life */

/* ip_vs_conn_new() + ip_vs_conn_hash(): a conn bound to @did. */
static inline uint32_t ipvs_conn_new(struct ipvs_engine *e, uint8_t af,
				     uint8_t proto, const uint32_t *caddr,
				     uint16_t cport, const uint32_t *vaddr,
				     uint16_t vport, int32_t did,
				     uint16_t dport, uint32_t flags)
{
	uint32_t id = ipvs_conn_alloc(e);
	struct ipvs_conn *c;

	if (id == IPVS_CONN_NONE) {
		e->allocs_failed++;
		return id;
	}
	c = ipvs_conn_of(e, id);
	c->af = af;
	c->protocol = proto;
	memcpy(c->caddr, caddr, 16);
	memcpy(c->vaddr, vaddr, 16);
	memcpy(c->daddr, e->dests[did].addr, 16);
	c->cport = cport;
	c->vport = vport;
	c->dport = dport;
	c->flags = flags;
	if (!cport && !(flags & IPVS_CF_TEMPLATE)) {
		c->flags |= IPVS_CF_NO_CPORT;
		e->no_cport++;
	}
	ipvs_bind_dest(e, c, did);
	c->state = 0;
	c->timeout = 3 * e->hz;
	ipvs_conn_hash(e, c);
	e->nconns++;
	if (flags & IPVS_CF_TEMPLATE)
		e->ntemplates++;
	c->expires = e->now + c->timeout;
	ipvs_conn_mod_timer(e, id, c, c->expires);
	ipvs_ev_conn_up(e, c);
	return id;
}

/* The part of ip_vs_conn_expire() that frees: unhash, control_del,
 * unbind_dest. */
static inline void ipvs_conn_release(struct ipvs_engine *e, uint32_t id)
{
	struct ipvs_conn *c = ipvs_conn_of(e, id);

	ipvs_ev_conn_gone(e, c);
	ipvs_conn_unhash(e, c);
	if (c->control != IPVS_CONN_NONE) {
		ipvs_conn_of(e, c->control)->n_control--;
		c->control = IPVS_CONN_NONE;
	}
	ipvs_unbind_dest(e, c);
	if (c->flags & IPVS_CF_NO_CPORT)
		e->no_cport--;
	if (c->flags & IPVS_CF_TEMPLATE)
		e->ntemplates--;
	e->nconns--;
	ipvs_conn_free(e, id);
}

/* ip_vs_conn_expire(): a template that still controls conns waits 60 s. */
static inline void ipvs_conn_expire(struct ipvs_engine *e, uint32_t id)
{
	struct ipvs_conn *c = ipvs_conn_of(e, id);

	if (c->n_control) {
		c->timeout = 60 * e->hz;
		ipvs_conn_mod_timer(e, id, c, e->now + c->timeout);
		return;
	}
	ipvs_conn_release(e, id);
}

/* ip_vs_conn_expire_now(): the timer fires at once (we run it now). */
static inline void ipvs_conn_expire_now(struct ipvs_engine *e, uint32_t id)
{
	ipvs_conn_expire(e, id);
}

/* Run every timer due at or before @until, in time order, with the clock
 * at each timer's time.  Returns the number of conns freed. */
static inline uint64_t ipvs_run_timers(struct ipvs_engine *e, uint32_t until)
{
	uint64_t freed = 0;

	while (e->heap_n && !ipvs_time_before(until, e->heap[0].expires)) {
		struct ipvs_timer_ent t = ipvs_heap_pop(e);
		uint32_t cid = t.cid & ~IPVS_TIMER_TMPL;
		struct ipvs_conn *c;

		if (cid >= e->bump)
			continue;
		c = ipvs_conn_of(e, cid);
		if (!c->in_use || c->heap_expires != t.expires)
			continue;		/* stale entry */
		if (ipvs_time_before(t.expires, c->expires)) {
			c->heap_expires = c->expires;	/* re-armed later */
			ipvs_heap_push(e, c->expires, t.cid);
			continue;
		}
		if (ipvs_time_before(e->now, t.expires))
			e->now = t.expires;
		c->heap_expires = 0;
		int64_t before = e->nconns;
		ipvs_conn_expire(e, cid);
		freed += (uint64_t)(before - e->nconns);
	}
	if (ipvs_time_before(e->now, until))
		e->now = until;
	return freed;
}

/* ip_vs_conn_put(): re-arm, or expire a one-packet conn now. */
static inline void ipvs_conn_put(struct ipvs_engine *e, uint32_t id,
				 struct ipvs_conn *c)
{
	if (c->flags & IPVS_CF_ONE_PACKET) {
		ipvs_conn_expire_now(e, id);
		return;
	}
	ipvs_conn_mod_timer(e, id, c, e->now + c->timeout);
}

/* ------------------------------------------------------------ services */

/* ip_vs_service_find(): fwmark, then <proto,addr,port>, FTP data, port
 * zero, each a probe of the service index (ipvs_svcindex.h), rebuilt here
 * first when a service changed (single-threaded path; a multi-core replay
 * builds it before its workers start).  Without an index (no memory for
 * it) the same order by scanning. */
static inline int ipvs_svc_find_scan(struct ipvs_engine *e,
				     const struct ipvs_pkt *p);

static inline int ipvs_svc_find(struct ipvs_engine *e,
				const struct ipvs_pkt *p)
{
	const struct ipvs_svc_index *x = &e->sidx;
	uint16_t hp;
	int si;

	if (x->dirty && !e->mt)
		(void)ipvs_svc_index_build(&e->sidx, e->svcs, e->nsvcs);
	if (!x->slot || x->dirty || e->svc_scan)
		return ipvs_svc_find_scan(e, p);
	if (p->fwmark) {
		si = ipvs_svc_index_fwm(x, e->svcs, p->af, p->fwmark);
		if (si >= 0)
			return si;
	}
	si = ipvs_svc_index_tuple(x, e->svcs, p->af, p->protocol, p->daddr,
				  p->dport);
	if (si >= 0)
		return si;
	hp = (uint16_t)((p->dport >> 8) | (p->dport << 8));
	if (p->protocol == IPVS_PROTO_TCP && (hp == 20 || hp >= 1024)) {
		si = ipvs_svc_index_tuple(x, e->svcs, p->af, p->protocol,
					  p->daddr, IPVS_FTPPORT_BE);
		if (si >= 0)
			return si;
	}
	return ipvs_svc_index_tuple(x, e->svcs, p->af, p->protocol, p->daddr,
				    0);
}

static inline int ipvs_svc_find_scan(struct ipvs_engine *e,
				     const struct ipvs_pkt *p)
{
	uint32_t i;

	if (p->fwmark)
		for (i = 0; i < e->nsvcs; i++) {
			struct ipvs_csvc *s = &e->svcs[i];
			if (s->live && s->fwmark == p->fwmark && s->af == p->af)
				return (int)i;
		}
	for (int pass = 0; pass < 3; pass++) {
		for (i = 0; i < e->nsvcs; i++) {
			struct ipvs_csvc *s = &e->svcs[i];
			uint16_t want;

			if (!s->live || s->fwmark || s->af != p->af ||
			    s->protocol != p->protocol ||
			    !ipvs_addr_eq(p->af, s->addr, p->daddr))
				continue;
			if (pass == 0)
				want = p->dport;
			else if (pass == 1) {
				uint16_t hp = (uint16_t)((p->dport >> 8) |
							 (p->dport << 8));
				if (p->protocol != IPVS_PROTO_TCP ||
				    !(hp == 20 || hp >= 1024))
					continue;
				want = IPVS_FTPPORT_BE;
			} else
				want = 0;
			if (s->port == want)
				return (int)i;
		}
	}
	return -1;
}

/* Refresh @rows (the service's sched rows, or a copy of them) with the
 * live conn counters and OVERLOAD flags of the engine's dests. */
static inline void ipvs_sched_rows_refresh(const struct ipvs_engine *e,
					   const struct ipvs_csvc *s,
					   ipvs_sched_dest_t *rows)
{
	for (int i = 0; i < s->sched->n; i++) {
		struct ipvs_cdest *d = &e->dests[s->row_dest[i]];
		rows[i].activeconns = ipvs_cnt_read(&d->activeconns);
		rows[i].inactconns = ipvs_cnt_read(&d->inactconns);
		rows[i].flags = (rows[i].flags & ~IPVS_DF_OVERLOAD) |
			(__atomic_load_n(&d->flags, __ATOMIC_RELAXED) &
			 IPVS_DF_OVERLOAD);
	}
}

/* What the hashing schedulers hash: the folded saddr and daddr, and the
 * source port in host order. */
struct ipvs_sched_in {
	uint32_t fold, dfold;
	uint16_t hport;
};

static inline struct ipvs_sched_in ipvs_sched_in_of(const struct ipvs_pkt *p)
{
	struct ipvs_sched_in in;

	in.fold = ipvs_sched_addr_fold((const uint8_t *)p->saddr, p->af);
	in.dfold = ipvs_sched_addr_fold((const uint8_t *)p->daddr, p->af);
	in.hport = (uint16_t)((p->sport >> 8) | (p->sport << 8));
	return in;
}

static inline int32_t ipvs_schedule_dest(struct ipvs_engine *e, int si,
					 const struct ipvs_pkt *p)
{
	struct ipvs_csvc *s = &e->svcs[si];

	if (s->sched) {
		ipvs_sched_svc_t *ss = s->sched;
		struct ipvs_sched_in in = ipvs_sched_in_of(p);

		/* the conn counters and OVERLOAD live in the engine's dests */
		ipvs_sched_rows_refresh(e, s, ss->d);
		if (IPVS_TRACING(e))
			ipvs_trace_sched_before(e->trace, ss, s->row_dest,
						in.fold, in.hport, in.dfold);
		int r = ipvs_sched_schedule(ss, in.fold, in.hport, in.dfold);
		ss->decisions++;
		IPVS_TRACE(e, IPVS_TR_SCHED_RESULT, r, r < 0 ? -1 :
			   s->row_dest[r], ss->kind == IPVS_SCHED_RR ?
			   ss->rr_pos : ss->wrr_cl, ss->wrr_cw, 0, 0, 0);
		return r < 0 ? -1 : s->row_dest[r];
	}
	if (!e->sched_cb)
		return -1;
	int32_t did = e->sched_cb(e, si, p, e->sched_arg);
	IPVS_TRACE(e, IPVS_TR_SCHED_CB, si, did, 0, 0, 0, 0, 0);
	return did;
}

/*
 * Whether a service's sched rows stay as they are for a whole multi-core
 * run, so that workers may decide on them as they are: sh, dh, mh and fo
 * read only the weights and the OVERLOAD flags, and with no u_thresh on
 * any dest nothing sets OVERLOAD (ip_vs_bind_dest); clear at the start,
 * it stays clear.  Context: setup, the rows just refreshed.
 */
static inline int ipvs_sched_rows_fixed(const struct ipvs_engine *e,
					const struct ipvs_csvc *s)
{
	const ipvs_sched_svc_t *ss = s->sched;

	if (!ss || (ss->kind != IPVS_SCHED_SH && ss->kind != IPVS_SCHED_DH &&
		    ss->kind != IPVS_SCHED_MH && ss->kind != IPVS_SCHED_FO))
		return 0;
	for (int i = 0; i < ss->n; i++)
		if (e->dests[s->row_dest[i]].u_thresh ||
		    (ss->d[i].flags & IPVS_DF_OVERLOAD))
			return 0;
	return 1;
}

/*
 * A decision on a worker (ipvs_mt.h).  As in the kernel, only rr and wrr
 * serialise, on their service's sched_lock: they move a position.  The
 * other schedulers only read the dests, so each worker decides on its own
 * copy of the rows, refreshed from the shared dests' counters, and counts
 * its decisions per service (summed at the end, like the stats); a service
 * whose rows are fixed for the run (ipvs_sched_rows_fixed) is decided on
 * its rows as they are, without reading the dests' counter lines that the
 * other workers keep writing.  One engine-wide lock around every decision
 * had put both workers of a new conn replay in line behind it
 * (bench/bench_multicore.py, new conns).  A spinlock: an rr decision is
 * short, and a pthread mutex sent both workers into futex sleeps on every
 * new conn.
 */
static inline int32_t ipvs_schedule_dest_mt(struct ipvs_engine *e, int si,
					    const struct ipvs_pkt *p)
{
	struct ipvs_csvc *s = &e->svcs[si];
	struct ipvs_mt_ctx *m = e->mt;
	const ipvs_sched_dest_t *rows;
	int32_t did;

	if (!m)
		return ipvs_schedule_dest(e, si, p);
	if (!s->sched || ipvs_sched_stateful(s->sched->kind)) {
		iht_spin_lock(&m->svcs[si].sched_lock);
		did = ipvs_schedule_dest(e, si, p);
		iht_spin_unlock(&m->svcs[si].sched_lock);
		return did;
	}
	const ipvs_sched_svc_t *ss = s->sched;
	struct ipvs_sched_in in = ipvs_sched_in_of(p);
	int r;

	if (m->svcs[si].rows_fixed) {
		rows = ss->d;
	} else {
		memcpy(m->rows, ss->d, (size_t)ss->n * sizeof(*m->rows));
		ipvs_sched_rows_refresh(e, s, m->rows);
		rows = m->rows;
	}
	r = ipvs_sched_schedule_rows(ss, rows, in.fold, in.hport, in.dfold);
	m->decisions[si]++;
	return r < 0 ? -1 : s->row_dest[r];
}

static inline void ipvs_mask_addr(const struct ipvs_csvc *s,
				  const uint32_t *a, uint32_t *out)
{
	for (int i = 0; i < 4; i++)
		out[i] = a[i] & s->netmask[i];
}

/* iht_commit_fn of a template's invalidation: the unfindable key. */
static inline int ipvs_tmpl_invalidate_commit(struct iht_node *n,
					      void *cctx)
{
	struct ipvs_conn *t = cctx;

	(void)n;
	__atomic_store_n(&t->dport, 0xffff, __ATOMIC_RELAXED);
	__atomic_store_n(&t->vport, 0xffff, __ATOMIC_RELAXED);
	__atomic_store_n(&t->cport, 0, __ATOMIC_RELAXED);
	t->gen++;
	return 1;
}

/* ip_vs_check_template(): invalidate a template whose dest went away
 * (or was quiesced, with expire_quiescent_template). */
static inline int ipvs_check_template(struct ipvs_engine *e, uint32_t tid)
{
	struct ipvs_conn *t = ipvs_conn_of(e, tid);
	struct ipvs_cdest *d = t->dest >= 0 ? &e->dests[t->dest] : NULL;

	if (!d || !(__atomic_load_n(&d->flags, __ATOMIC_RELAXED) &
		    IPVS_DF_AVAILABLE) ||
	    (e->expire_quiescent_template && d->weight == 0)) {
		IPVS_TRACE(e, IPVS_TR_TPL_INVALID, (int32_t)tid, t->dest,
			   !d || !(d->flags & IPVS_DF_AVAILABLE) ? 1 : 2,
			   0, 0, 0, 0);
		if (t->vport != 0xffff) {
			/* unhash, make it unfindable, rehash (hn0 only): the
			 * new key is written in the rehash's writer step */
			struct ipvs_ckey k0 = { t->caddr, t->vaddr, 0, 0xffff,
						t->af, t->protocol, 0, 0 };

			iht_rehash_commit(ipvs_tab(e), &t->hn[0], &k0,
					  IPVS_CKEY_HASH(e),
					  ipvs_tmpl_invalidate_commit, t);
		}
		return 0;
	}
	return 1;
}

/* ip_vs_sched_persist(): find or make the template, then the conn. */
static inline uint32_t ipvs_sched_persist(struct ipvs_engine *e, int si,
					  const struct ipvs_pkt *p,
					  int *ignored)
{
	struct ipvs_csvc *s = &e->svcs[si];
	uint32_t snet[4] = { 0, 0, 0, 0 }, fw[4] = { 0, 0, 0, 0 };
	const uint32_t *vaddr = p->daddr;
	uint16_t vport = 0, dport = 0;
	uint8_t proto = p->protocol;
	struct ipvs_conn *ct;
	uint32_t tid = IPVS_CONN_NONE, cid;
	int32_t did;

	ipvs_mask_addr(s, p->saddr, snet);
	if (p->dport == s->port) {
		if (s->port != IPVS_FTPPORT_BE)
			vport = p->dport;
	} else if (s->fwmark) {
		proto = IPVS_PROTO_IP;
		fw[0] = __builtin_bswap32(s->fwmark);
		vaddr = fw;
	}
	struct ipvs_ckey k = { snet, vaddr, 0, vport, p->af, proto, 0, 1 };
	ct = ipvs_conn_lookup(e, &k);
	if (ct)
		tid = ipvs_conn_id(e, ct);
	if (ct)
		IPVS_TRACE(e, IPVS_TR_TPL_HIT, (int32_t)tid, ct->dest, 0, 0,
			   ct->expires - e->now, (uint32_t)ct->n_control, 0);
	else
		IPVS_TRACE(e, IPVS_TR_TPL_MISS, 0, 0, 0, 0, 0, 0, 0);
	if (!ct || !ipvs_check_template(e, tid)) {
		did = ipvs_schedule_dest_mt(e, si, p);
		if (did < 0) {
			*ignored = 0;
			return IPVS_CONN_NONE;
		}
		if (p->dport == s->port && s->port != IPVS_FTPPORT_BE)
			dport = e->dests[did].port;
		tid = ipvs_conn_new(e, p->af, proto, snet, 0, vaddr, vport,
				    did, dport, IPVS_CF_TEMPLATE);
		if (tid == IPVS_CONN_NONE) {
			*ignored = -1;
			return tid;
		}
		ct = ipvs_conn_of(e, tid);
		ct->timeout = s->timeout;
		IPVS_TRACE(e, IPVS_TR_TPL_NEW, (int32_t)tid, did, 0, 0,
			   s->timeout, 0, 0);
	} else {
		did = ct->dest;
	}
	dport = p->dport;
	if (dport == s->port && e->dests[did].port)
		dport = e->dests[did].port;
	cid = ipvs_conn_new(e, p->af, p->protocol, p->saddr, p->sport,
			    p->daddr, p->dport, did, dport,
			    ((s->flags & IPVS_SVC_F_ONEPACKET) &&
			     p->protocol == IPVS_PROTO_UDP)
			    ? IPVS_CF_ONE_PACKET : 0);
	ct = ipvs_conn_of(e, tid);
	if (cid == IPVS_CONN_NONE) {
		ipvs_conn_put(e, tid, ct);
		*ignored = -1;
		return cid;
	}
	ipvs_conn_of(e, cid)->control = tid;	/* ip_vs_control_add() */
	ct->n_control++;
	ipvs_conn_put(e, tid, ct);
	return cid;
}

/* What ipvs_conn_fill_cport() writes under the locks of its rehash. */
struct ipvs_fill_cport {
	struct ipvs_conn *c;
	uint16_t cport;
};

/* iht_commit_fn of the hn0 rehash: fill the port once (two packets may
 * race to do it), in the same writer step that moves hn0, so a lookup
 * never finds the conn by neither key (the port written before the locks
 * made it unfindable until the move). */
static inline int ipvs_fill_cport_commit(struct iht_node *n, void *cctx)
{
	struct ipvs_fill_cport *f = cctx;
	struct ipvs_conn *c = f->c;

	(void)n;
	if (!(c->flags & IPVS_CF_NO_CPORT))
		return 0;
	/* relaxed atomics: lookups read them inside seqcount sections */
	__atomic_store_n(&c->cport, f->cport, __ATOMIC_RELAXED);
	__atomic_store_n(&c->flags, c->flags & ~IPVS_CF_NO_CPORT,
			 __ATOMIC_RELAXED);
	c->gen++;			/* re-keyed: cached keys are stale */
	return 1;
}

/* ip_vs_conn_fill_cport() (2026 series): per node, lock the old and the
 * new bucket in order under the old bucket's seqcount, re-check
 * IP_VS_CONN_F_NO_CPORT, set the port and move the node
 * (iht_rehash_commit).  hn0 first: it carries the flag and the port, so
 * client->VIP lookups (the cport-0 retry of ipvs_in) see the change
 * atomically; hn1 (NAT replies) follows by the now fixed key, as the
 * kernel moves its second node in a second step (replies of the conn
 * come from its own worker).  The entry count does not change. */
static inline void ipvs_conn_fill_cport(struct ipvs_engine *e,
					struct ipvs_conn *c, uint16_t cport)
{
	struct ipvs_ckey k0 = { c->caddr, c->vaddr, cport, c->vport, c->af,
				c->protocol, 0, 0 };
	struct ipvs_ckey k1 = { c->caddr, c->daddr, cport, c->dport, c->af,
				c->protocol, 1, 0 };
	struct ipvs_fill_cport f = { c, cport };

	if (!(c->flags & IPVS_CF_NO_CPORT))
		return;
	if (iht_rehash_commit(ipvs_tab(e), &c->hn[0], &k0, IPVS_CKEY_HASH(e),
			      ipvs_fill_cport_commit, &f))
		return;			/* filled meanwhile (or unhashed) */
	e->no_cport--;
	if (ipvs_conn_two_nodes(e, c))
		iht_rehash(ipvs_tab(e), &c->hn[1], &k1, IPVS_CKEY_HASH(e));
	ipvs_ev_conn_up(e, c);
}

/* ip_vs_conn_stats() */
static inline void ipvs_conn_stats(struct ipvs_engine *e, int si,
				   struct ipvs_conn *c)
{
	if (e->mt) {		/* per-worker (per-CPU) stats */
		e->mt->dstats[c->dest].conns++;
		e->mt->sstats[si].conns++;
	} else {
		e->dests[c->dest].conns++;
		e->svcs[si].conns++;
	}
	e->tot_conns++;
}

/* ip_vs_in_stats()/ip_vs_out_stats() for @c's dest and its service;
 * @out selects the direction. */
static inline void ipvs_pkt_stats(struct ipvs_engine *e,
				  const struct ipvs_conn *c, int out,
				  uint32_t len)
{
	if (c->dest >= 0) {
		struct ipvs_cdest *d = &e->dests[c->dest];
		uint64_t *pk, *by, *spk = NULL, *sby = NULL;

		if (e->mt) {
			struct ipvs_cstats *ds = &e->mt->dstats[c->dest];
			struct ipvs_cstats *ss = d->svc >= 0 ?
				&e->mt->sstats[d->svc] : NULL;

			pk = out ? &ds->outpkts : &ds->inpkts;
			by = out ? &ds->outbytes : &ds->inbytes;
			if (ss) {
				spk = out ? &ss->outpkts : &ss->inpkts;
				sby = out ? &ss->outbytes : &ss->inbytes;
			}
		} else {
			struct ipvs_csvc *ss = d->svc >= 0 ?
				&e->svcs[d->svc] : NULL;

			pk = out ? &d->outpkts : &d->inpkts;
			by = out ? &d->outbytes : &d->inbytes;
			if (ss) {
				spk = out ? &ss->outpkts : &ss->inpkts;
				sby = out ? &ss->outbytes : &ss->inbytes;
			}
		}
		(*pk)++;
		*by += len;
		if (spk) {
			(*spk)++;
			*sby += len;
		}
	}
	if (out) {
		e->tot_outpkts++;
		e->tot_outbytes += len;
	} else {
		e->tot_inpkts++;
		e->tot_inbytes += len;
	}
}

/* ip_vs_schedule() */
static inline uint32_t ipvs_schedule(struct ipvs_engine *e, int si,
				     const struct ipvs_pkt *p, int *ignored)
{
	struct ipvs_csvc *s = &e->svcs[si];
	uint32_t cid;
	int32_t did;

	*ignored = 1;
	if (s->flags & IPVS_SVC_F_PERSISTENT) {
		cid = ipvs_sched_persist(e, si, p, ignored);
		if (cid != IPVS_CONN_NONE)
			ipvs_conn_stats(e, si, ipvs_conn_of(e, cid));
		return cid;
	}
	*ignored = 0;
	if (!s->fwmark && p->dport != s->port) {
		IPVS_TRACE(e, IPVS_TR_PORT_ZERO, si, 0, 0, 0, 0, 0, 0);
		return IPVS_CONN_NONE;	/* "port zero only supported in
					 * persistent services" */
	}
	did = ipvs_schedule_dest_mt(e, si, p);
	if (did < 0)
		return IPVS_CONN_NONE;
	cid = ipvs_conn_new(e, p->af, p->protocol, p->saddr, p->sport,
			    p->daddr, p->dport, did,
			    e->dests[did].port ? e->dests[did].port : p->dport,
			    ((s->flags & IPVS_SVC_F_ONEPACKET) &&
			     p->protocol == IPVS_PROTO_UDP)
			    ? IPVS_CF_ONE_PACKET : 0);
	if (cid == IPVS_CONN_NONE) {
		*ignored = -1;
		return cid;
	}
	ipvs_conn_stats(e, si, ipvs_conn_of(e, cid));
	return cid;
}

/* ip_vs_todrop() */
static inline int ipvs_todrop(struct ipvs_engine *e)
{
	if (!e->drop_rate)
		return 0;
	if (--e->drop_counter > 0)
		return 0;
	e->drop_counter = e->drop_rate;
	return 1;
}

/* is_new_conn() */
static inline int ipvs_is_new_conn(const struct ipvs_pkt *p)
{
	if (p->protocol == IPVS_PROTO_TCP)
		return !!(p->flags & IPVS_TH_SYN);
	if (p->protocol == IPVS_PROTO_SCTP)
		return p->flags == 1;		/* SCTP_CID_INIT */
	return 0;
}

/* is_new_conn_expected() */
static inline int ipvs_new_conn_expected(const struct ipvs_conn *c,
					 int mode)
{
	if (c->control != IPVS_CONN_NONE)
		return 0;
	if (c->protocol == IPVS_PROTO_TCP)
		return c->state == TS_TW || c->state == TS_CL ||
		       ((mode & 2) && c->state == TS_FW &&
			(c->flags & IPVS_CF_NOOUTPUT));
	if (c->protocol == IPVS_PROTO_SCTP)
		return c->state == SS_CLOSED;
	return 0;
}

/* ip_vs_in() for TCP/UDP/SCTP, conntrack off. */
static inline struct ipvs_verdict ipvs_in(struct ipvs_engine *e,
					  const struct ipvs_pkt *p)
{
	struct ipvs_verdict v = { IPVS_V_PASS, -1, IPVS_CONN_NONE };
	struct ipvs_ckey k = { p->saddr, p->daddr, p->sport, p->dport, p->af,
			       p->protocol, 0, 0 };
	struct ipvs_conn *c = ipvs_conn_in_get(e, &k);
	uint32_t cid;

	cid = c ? ipvs_conn_id(e, c) : IPVS_CONN_NONE;
	if (c)
		IPVS_TRACE(e, IPVS_TR_CONN_HIT, (int32_t)cid, c->dest, c->state,
			   (int32_t)c->flags, c->expires - e->now, c->control,
			   0);
	else
		IPVS_TRACE(e, IPVS_TR_CONN_MISS, e->no_cport != 0, 0, 0, 0, 0,
			   0, 0);
	if (c && e->conn_reuse_mode && ipvs_is_new_conn(p)) {
		int resched = 0;
		if (e->expire_nodest_conn && c->dest >= 0 &&
		    e->dests[c->dest].weight == 0)
			resched = 1;
		else if (ipvs_new_conn_expected(c, e->conn_reuse_mode))
			resched = 2;	/* no conntrack: never "old_ct" */
		if (resched) {
			IPVS_TRACE(e, IPVS_TR_CONN_REUSE, (int32_t)cid, resched,
				   !c->n_control, 0, 0, 0, 0);
			if (!c->n_control)
				ipvs_conn_expire_now(e, cid);
			c = NULL;
		}
	}
	if (c && c->dest >= 0 &&
	    !(__atomic_load_n(&e->dests[c->dest].flags, __ATOMIC_RELAXED) &
	      IPVS_DF_AVAILABLE)) {
		IPVS_TRACE(e, IPVS_TR_CONN_NODEST, (int32_t)cid, c->dest,
			   e->expire_nodest_conn != 0, 0, 0, 0, 0);
		if (e->expire_nodest_conn) {
			ipvs_conn_expire_now(e, cid);
			c = NULL;
		} else {
			v.action = IPVS_V_DROP;
			return v;
		}
	}
	if (!c) {
		/* tcp/udp/sctp_conn_schedule() */
		int sched_ok = 1, si, ignored;
		if (p->protocol == IPVS_PROTO_TCP)
			sched_ok = (p->flags & IPVS_TH_SYN || e->sloppy_tcp) &&
				   !(p->flags & IPVS_TH_RST);
		else if (p->protocol == IPVS_PROTO_SCTP)
			sched_ok = p->flags == 1 /* INIT */ ||
				   (e->sloppy_sctp && p->flags != 6 /* ABORT */);
		if (!sched_ok) {
			IPVS_TRACE(e, IPVS_TR_NO_SCHED, p->protocol ==
				   IPVS_PROTO_TCP ? 1 : 2, 0, 0, 0, 0, 0, 0);
			return v;
		}
		si = ipvs_svc_find(e, p);
		/* which lookup matched follows from the service found: its
		 * fwmark, else its port (the packet's, FTP's, or zero) */
		IPVS_TRACE(e, IPVS_TR_SVC, si < 0 ? -1 : e->svcs[si].fwmark ? 0 :
			   e->svcs[si].port == p->dport ? 1 :
			   e->svcs[si].port == IPVS_FTPPORT_BE ? 2 : 3, si,
			   0, 0, 0, 0, 0);
		if (si < 0)
			return v;
		if (ipvs_todrop(e)) {
			IPVS_TRACE(e, IPVS_TR_TODROP, 0, 0, 0, 0, 0, 0, 0);
			v.action = IPVS_V_DROP;
			return v;
		}
		cid = ipvs_schedule(e, si, p, &ignored);
		if (e->cb_error) {
			v.action = IPVS_V_ERROR;
			return v;
		}
		if (cid == IPVS_CONN_NONE) {
			/* ip_vs_leave(): FTP port of a VIP passes, else
			 * ICMP unreachable and drop; -1: NF_DROP */
			if (ignored == 0 && e->svcs[si].port == IPVS_FTPPORT_BE
			    && p->dport != IPVS_FTPPORT_BE)
				return v;
			if (ignored <= 0)
				v.action = IPVS_V_DROP;
			return v;
		}
		c = ipvs_conn_of(e, cid);
		IPVS_TRACE(e, IPVS_TR_CONN_NEW, (int32_t)cid, c->dest,
			   (int32_t)c->flags, 0, c->timeout, c->control, 0);
	}
	ipvs_pkt_stats(e, c, 0, p->len);	/* ip_vs_in_stats() */
	if (c->in_pkts < 255)
		c->in_pkts++;
	/* ip_vs_nat_xmit(): a NO_CPORT conn learns the client port */
	if ((c->flags & IPVS_CF_NO_CPORT) && p->sport &&
	    (c->flags & IPVS_CF_FWD_MASK) == IPVS_CF_MASQ)
		ipvs_conn_fill_cport(e, c, p->sport);
	ipvs_set_state(e, c, IPVS_DIR_INPUT, p->flags);
	v.action = IPVS_V_FORWARD;
	v.dest = c->dest;
	v.conn = cid;
	ipvs_conn_put(e, cid, c);
	return v;
}

/* ip_vs_out(): a reply finds its conn: MASQ by hn1 (from the real
 * server), DR/TUN by hn0 (from the VIP, when it passes the director). */
static inline struct ipvs_verdict ipvs_out(struct ipvs_engine *e,
					   const struct ipvs_pkt *p)
{
	struct ipvs_verdict v = { IPVS_V_PASS, -1, IPVS_CONN_NONE };
	struct ipvs_ckey k = { p->daddr, p->saddr, p->dport, p->sport, p->af,
			       p->protocol, 1, 0 };
	struct ipvs_conn *c = ipvs_conn_out_get(e, &k);
	uint32_t cid;

	/* a DR/TUN conn's reply is counted and changes the state too
	 * (handle_response(): after_nat), it is not rewritten */
	if (!c)
		return v;
	cid = ipvs_conn_id(e, c);
	ipvs_pkt_stats(e, c, 1, p->len);	/* ip_vs_out_stats() */
	ipvs_set_state(e, c, IPVS_DIR_OUTPUT, p->flags);
	v.action = IPVS_V_FORWARD;
	v.dest = c->dest;
	v.conn = cid;
	ipvs_conn_put(e, cid, c);
	return v;
}

/* explain: the verdict and the conn after its state change (cold: only
 * with a trace buffer attached). */
static IPVS_TRACE_COLD void ipvs_trace_verdict(struct ipvs_engine *e,
					       struct ipvs_verdict v)
{
	const struct ipvs_conn *c = v.conn == IPVS_CONN_NONE ? NULL :
				    ipvs_conn_of(e, v.conn);

	ipvs_trace_add(e->trace, IPVS_TR_VERDICT, v.action, v.dest,
		       (int32_t)v.conn, c ? c->state : 0, c ? c->timeout : 0,
		       c ? c->control : IPVS_CONN_NONE, c && c->in_use);
}

/* One packet at time @now (jiffies): timers first, then the decision. */
static inline struct ipvs_verdict ipvs_packet(struct ipvs_engine *e,
					      const struct ipvs_pkt *p,
					      uint32_t now)
{
	ipvs_run_timers(e, now);
	/* ip_vs_proto_get() == NULL: not ours, NF_ACCEPT (ICMP errors and
	 * fragments: ipvs_icmp.h, ipvs_packet_icmp()); a bad family likewise */
	if ((p->protocol != IPVS_PROTO_TCP && p->protocol != IPVS_PROTO_UDP &&
	     p->protocol != IPVS_PROTO_SCTP) || (p->af != 2 && p->af != 10)) {
		struct ipvs_verdict v = { IPVS_V_PASS, -1, IPVS_CONN_NONE };
		return v;
	}
	if (p->dir == IPVS_DIR_OUTPUT)
		return ipvs_out(e, p);
	struct ipvs_verdict v = ipvs_in(e, p);
	if (IPVS_TRACING(e))
		ipvs_trace_verdict(e, v);
	return v;
}

/* ------------------------------------------------------------ helpers */

static inline uint32_t ipvs_engine_sizeof_conn(void)
{
	return (uint32_t)sizeof(struct ipvs_conn);
}

/* A lookup by explicit key (tests): dir 0 hn0, 1 hn1. */
static inline struct ipvs_conn *ipvs_engine_lookup(struct ipvs_engine *e,
		int af, int proto, const uint32_t *r, uint16_t rport,
		const uint32_t *l, uint16_t lport, int dir)
{
	struct ipvs_ckey k = { r, l, rport, lport, (uint8_t)af,
			       (uint8_t)proto, (uint8_t)dir, 0 };
	return ipvs_conn_lookup(e, &k);
}

/* Free the slab, heap, dests and services (the table is destroyed by the
 * caller first, with no per-node callback: the nodes live in the slab). */
static inline void *ipvs_engine_free_all(struct ipvs_engine *e)
{
	for (uint32_t i = 0; i < e->nchunks; i++)
		ipvs_chunk_unmap(e->chunks[i]);
	free(e->chunks);
	free(e->heap);
	free(e->dests);
	for (uint32_t i = 0; i < e->nsvcs; i++)
		free(e->svcs[i].row_dest);
	free(e->svcs);
	ipvs_svc_index_free(&e->sidx);
	memset(e, 0, sizeof(*e));
	return NULL;
}

/* ------------------------------------------------------------ defense */

static inline uint64_t ipvs_rand(struct ipvs_engine *e)
{
	uint64_t x = e->rng ? e->rng : 0x9e3779b97f4a7c15ull;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return e->rng = x;
}

/* todrop_entry(): only conns older than 60 s with 0..8 incoming packets,
 * at the rate todrop_rate[in_pkts] = in_pkts. */
static inline int ipvs_todrop_entry(struct ipvs_engine *e,
				    const struct ipvs_conn *c)
{
	int i = c->in_pkts;

	if (ipvs_time_before(c->timeout + e->now, c->expires + 60 * e->hz))
		return 0;
	if (i > 8 || i == 0)		/* todrop_rate[0] == 0 */
		return 0;
	if (--e->todrop_counter[i] > 0)
		return 0;
	e->todrop_counter[i] = (int8_t)i;
	return 1;
}

static inline int ipvs_conn_ops(struct ipvs_engine *e,
				const struct ipvs_conn *c)
{
	if (c->dest < 0 || e->dests[c->dest].svc < 0)
		return 0;
	return !!(e->svcs[e->dests[c->dest].svc].flags & IPVS_SVC_F_ONEPACKET);
}

/* ip_vs_random_dropentry(): scan 1/32 of the buckets at random; drop
 * half-open TCP/SCTP conns and lightly used established/UDP ones (and the
 * template of a dropped conn).  Returns the conns dropped. */
static inline uint64_t ipvs_random_dropentry(struct ipvs_engine *e)
{
	struct iht_tbl *tb = iht_first_tbl(ipvs_tab(e));
	uint64_t dropped = 0;

	if (!tb)
		return 0;
	for (int64_t idx = 0; idx < (tb->size >> 5); idx++) {
		struct iht_bl_head *h = &tb->buckets[ipvs_rand(e) & tb->mask];
		uint32_t victims[64];
		int nv = 0;

		for (struct iht_node *n = iht_bl_first_rcu(h); n && nv < 64;
		     n = iht_node_next_rcu(n)) {
			const struct ipvs_conn *c = ipvs_conn_of_node(n);

			if (ipvs_node_dir(n) != 0 || c->n_control)
				continue;
			if ((c->flags & IPVS_CF_TEMPLATE) && !ipvs_conn_ops(e, c))
				continue;
			if (c->protocol == IPVS_PROTO_TCP) {
				if (c->state == TS_ES) {
					if (!ipvs_todrop_entry(e, c))
						continue;
				} else if (c->state != TS_SR && c->state != TS_SA)
					continue;
			} else if (c->protocol == IPVS_PROTO_SCTP) {
				if (c->state == SS_ESTABLISHED) {
					if (!ipvs_todrop_entry(e, c))
						continue;
				} else if (c->state != SS_INIT1 &&
					   c->state != SS_INIT)
					continue;
			} else if (!ipvs_todrop_entry(e, c)) {
				continue;
			}
			victims[nv++] = c->id;
		}
		/* expire after the walk: a delete relinks the chain */
		for (int i = 0; i < nv; i++) {
			struct ipvs_conn *c = ipvs_conn_of(e, victims[i]);
			uint32_t ctl = c->control;

			if (!c->in_use)
				continue;
			ipvs_conn_expire_now(e, victims[i]);
			dropped++;
			if (ctl != IPVS_CONN_NONE &&
			    ipvs_conn_of(e, ctl)->in_use)
				ipvs_conn_expire_now(e, ctl);
		}
	}
	e->dropentry += dropped;
	return dropped;
}

/* ------------------------------------------------------------ prefetch */

/* Batch replay, stage 1 (a few packets ahead): hash the packet's lookup
 * key under the current array's key and prefetch its bucket head.  Only a
 * hint: the real lookup hashes again, so a stale guess costs nothing but
 * the miss.  Returns the bucket for stage 2.  At 1M conns the loop is
 * memory bound (bucket array + 128 MB of conns); this overlaps the misses
 * of several packets (bench/bench_conn.py). */
static inline struct iht_bl_head *ipvs_prefetch_bucket(struct ipvs_engine *e,
		uint8_t af, uint8_t proto, const uint32_t *s, uint16_t sp,
		const uint32_t *d, uint16_t dp, int dir)
{
	struct iht_tbl *tb = iht_first_tbl(ipvs_tab(e));
	struct iht_bl_head *h;
	uint32_t hk;

	if (!tb)
		return NULL;
	if (e->hash61)		/* the client side, either direction */
		hk = ipvs_conn_hashkey61(af, proto, dir == IPVS_DIR_OUTPUT ?
					 d : s, dir == IPVS_DIR_OUTPUT ? dp : sp,
					 (uint32_t)tb->hash_key.key[0],
					 e->salt61);
	else if (dir == IPVS_DIR_OUTPUT)
		hk = ipvs_conn_hashfn(af, proto, d, dp, s, sp, &tb->hash_key);
	else
		hk = ipvs_conn_hashfn(af, proto, s, sp, d, dp, &tb->hash_key);
	h = iht_bucket(tb, iht_build_hash_key(tb, hk));
	__builtin_prefetch(h);
	return h;
}

/* Prefetch every cache line of the conn that node @n belongs to, without
 * a load through @n (that would stall the stage).  A 112-byte conn at
 * 16-byte alignment spans two or three lines: its first byte, +64 and its
 * last byte cover them (the last two may be one line). */
static inline void ipvs_prefetch_conn_lines(const struct iht_node *n)
{
	const char *c = (const char *)ipvs_conn_of_node(n);

	__builtin_prefetch(c);
	__builtin_prefetch(c + 64);
	__builtin_prefetch(c + IPVS_CONN_BYTES - 1);
}

/* Stage 2: the bucket head is in cache now; prefetch its first conn (both
 * of the conn's cache lines the lookup and the update touch).  @h must be
 * from the current array: the caller drops its ring after a resize. */
static inline void ipvs_prefetch_conn(struct iht_bl_head *h)
{
	struct iht_node *n;

	if (!h)
		return;
	n = iht_bl_first_rcu(h);
	if (n)
		ipvs_prefetch_conn_lines(n);
}

/* Stage 3: the bucket's first node is in cache now; prefetch the second
 * (at 1M conns in 2^20 buckets a NAT table holds two nodes per bucket on
 * average, so the match is often second). */
static inline void ipvs_prefetch_next(struct iht_bl_head *h)
{
	struct iht_node *n;

	if (!h || !(n = iht_bl_first_rcu(h)) || !(n = iht_node_next_rcu(n)))
		return;
	ipvs_prefetch_conn_lines(n);
}

#endif /* IPVS_PY_IPVS_CONN_H */
