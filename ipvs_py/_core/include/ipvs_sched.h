/*
 * ipvs_sched.h - the IPVS schedulers on plain C arrays, without the GIL.
 *
 * The same decisions as ipvs_py/schedulers/<name>.py (and the kernel's
 * net/netfilter/ipvs/ip_vs_<name>.c), on a service described by an array
 * of dest rows in kernel list order (newest dest first).  A dest is an
 * index into that array; -1 stands for "no dest" (NULL) and, for rr/wrr
 * positions, for the list head.
 *
 * C-int semantics are kept on purpose: the overhead (active << 8) +
 * inactive wraps as a 32-bit int, lc compares it unsigned, sed/nq use
 * unsigned (active + 1), weights are multiplied in 64 bits, as in the
 * kernel.
 *
 * Thread safety: rr and wrr change their ipvs_sched_svc_t on every
 * decision, so one thread at a time (the kernel's svc->sched_lock is the
 * caller's business).  The other kinds only read it: threads may decide
 * at once on their own copies of the rows (ipvs_sched_schedule_rows), as
 * the kernel's lockless schedulers read the dests under RCU.
 */
#ifndef IPVS_PY_SCHED_H
#define IPVS_PY_SCHED_H

#include <stdint.h>
#include <string.h>

#include "goldenhash.h"
#include "siphash.h"

enum ipvs_sched_kind {
	IPVS_SCHED_NONE = 0,
	IPVS_SCHED_RR, IPVS_SCHED_WRR, IPVS_SCHED_LC, IPVS_SCHED_WLC,
	IPVS_SCHED_SED, IPVS_SCHED_NQ, IPVS_SCHED_FO, IPVS_SCHED_OVF,
	IPVS_SCHED_SH, IPVS_SCHED_DH, IPVS_SCHED_MH,
};

#define IPVS_SCHED_DEST_F_AVAILABLE 0x0001
#define IPVS_SCHED_DEST_F_OVERLOAD  0x0002
#define IPVS_SCHED_SVC_F_SCHED1     0x0008   /* sh/mh fallback */
#define IPVS_SCHED_SVC_F_SCHED2     0x0010   /* sh/mh port */

#define IPVS_SCHED_SH_TAB_BITS 8
#define IPVS_SCHED_SH_TAB_SIZE 256
#define IPVS_SCHED_MH_TAB_SIZE 4093          /* primes[12 - 8] */
#define IPVS_SCHED_MH_TAB_BITS 6             /* 12 / 2 */

/* How a new connection counts on its dest (ip_vs_bind_dest). */
enum ipvs_sched_count { IPVS_COUNT_NONE = 0, IPVS_COUNT_ACTIVE = 1,
			IPVS_COUNT_INACTIVE = 2 };

typedef struct {
	int32_t  weight;
	int32_t  last_weight;   /* mh: latest non-zero weight */
	uint32_t flags;         /* IP_VS_DEST_F_* */
	int32_t  activeconns;
	int32_t  inactconns;
	uint32_t u_threshold;   /* 0 = none */
	uint32_t addr_fold;     /* ntohl(addr_fold) of the dest (mh) */
	uint16_t port;          /* host order (mh) */
} ipvs_sched_dest_t;

typedef struct {
	int kind;
	uint32_t svc_flags;
	int n;                       /* number of dests */
	ipvs_sched_dest_t *d;        /* n rows, kernel list order */
	int rr_pos;                  /* rr: last chosen, -1 = head */
	int wrr_cl, wrr_cw, wrr_mw, wrr_di;
	int16_t tab[IPVS_SCHED_SH_TAB_SIZE];   /* sh/dh buckets */
	int32_t *mh_lookup;          /* mh: IPVS_SCHED_MH_TAB_SIZE entries */
	uint64_t decisions;          /* statistics */
} ipvs_sched_svc_t;

static inline int32_t ipvs_sched_overhead(const ipvs_sched_dest_t *d)
{
	return (int32_t)(((uint32_t)d->activeconns << 8) +
			 (uint32_t)d->inactconns);
}

static inline int ipvs_sched_overloaded(const ipvs_sched_dest_t *d)
{
	return (d->flags & IPVS_SCHED_DEST_F_OVERLOAD) != 0;
}

/* ----------------------------------------------------------- rr, wrr */

static inline int ipvs_sched_rr(ipvs_sched_svc_t *s)
{
	int start = s->rr_pos, n = s->n, i, k, cnt;

	if (start >= n)
		start = -1;
	cnt = start < 0 ? n : n;     /* one full lap either way */
	for (k = 0, i = start + 1; k < cnt; k++, i++) {
		if (i >= n) {
			if (start < 0)
				break;
			i = 0;
		}
		if (!ipvs_sched_overloaded(&s->d[i]) && s->d[i].weight > 0) {
			s->rr_pos = i;
			return i;
		}
	}
	return -1;
}

static inline int ipvs_sched_gcd(int a, int b)
{
	while (b) {
		int t = a % b;
		a = b;
		b = t;
	}
	return a;
}

static inline void ipvs_sched_wrr_calc(ipvs_sched_svc_t *s, int *di, int *mw)
{
	int g = 0, m = 0, i;

	for (i = 0; i < s->n; i++) {
		int w = s->d[i].weight;
		if (w > 0)
			g = g > 0 ? ipvs_sched_gcd(w, g) : w;
		if (w > m)
			m = w;
	}
	*di = g ? g : 1;
	*mw = m - (*di - 1);
}

static inline void ipvs_sched_wrr_init(ipvs_sched_svc_t *s)
{
	s->wrr_cl = -1;
	ipvs_sched_wrr_calc(s, &s->wrr_di, &s->wrr_mw);
	s->wrr_cw = s->wrr_mw;
}

static inline void ipvs_sched_wrr_changed(ipvs_sched_svc_t *s)
{
	s->wrr_cl = -1;
	ipvs_sched_wrr_calc(s, &s->wrr_di, &s->wrr_mw);
	if (s->wrr_cw > s->wrr_mw || !s->wrr_cw)
		s->wrr_cw = s->wrr_mw;
	else if (s->wrr_di > 1)
		s->wrr_cw = (s->wrr_cw / s->wrr_di) * s->wrr_di + 1;
}

static inline int ipvs_sched_wrr(ipvs_sched_svc_t *s)
{
	int pos = s->wrr_cl < s->n ? s->wrr_cl : -1;
	int last, stop = -2, last_pass = 0, restarted = 0, i;

	if (s->wrr_mw == 0)
		return -1;
	last = pos;
	for (;;) {
		for (i = pos + 1; i < s->n; i++) {
			const ipvs_sched_dest_t *d = &s->d[i];
			if (!ipvs_sched_overloaded(d) && d->weight >= s->wrr_cw) {
				s->wrr_cl = i;
				return i;
			}
			if (i == stop) {
				s->wrr_cl = i;
				return -1;
			}
		}
		pos = -1;
		s->wrr_cw -= s->wrr_di;
		if (s->wrr_cw <= 0) {
			s->wrr_cw = s->wrr_mw;
			if (last_pass || last == -1) {
				s->wrr_cl = -1;
				return -1;
			}
			restarted = 1;
		}
		last_pass = s->wrr_cw <= s->wrr_di;
		if (last_pass && restarted && last != -1)
			stop = last;
	}
}

/* ------------------------------------------- lc, wlc, sed, nq, fo, ovf */

static inline int ipvs_sched_lc(const ipvs_sched_svc_t *s,
				 const ipvs_sched_dest_t *rows)
{
	int least = -1, i;
	uint32_t loh = 0;

	for (i = 0; i < s->n; i++) {
		const ipvs_sched_dest_t *d = &rows[i];
		uint32_t doh;
		if (ipvs_sched_overloaded(d) || d->weight == 0)
			continue;
		doh = (uint32_t)ipvs_sched_overhead(d);
		if (least < 0 || doh < loh) {
			least = i;
			loh = doh;
		}
	}
	return least;
}

static inline int ipvs_sched_wlc(const ipvs_sched_svc_t *s,
				 const ipvs_sched_dest_t *rows)
{
	int least, i;
	int32_t loh;

	for (least = 0; least < s->n; least++)
		if (!ipvs_sched_overloaded(&rows[least]) &&
		    rows[least].weight > 0)
			break;
	if (least >= s->n)
		return -1;
	loh = ipvs_sched_overhead(&rows[least]);
	for (i = least + 1; i < s->n; i++) {
		const ipvs_sched_dest_t *d = &rows[i];
		int32_t doh;
		if (ipvs_sched_overloaded(d))
			continue;
		doh = ipvs_sched_overhead(d);
		if ((int64_t)loh * d->weight >
		    (int64_t)doh * rows[least].weight) {
			least = i;
			loh = doh;
		}
	}
	return least;
}

static inline int ipvs_sched_sed(const ipvs_sched_svc_t *s,
				 const ipvs_sched_dest_t *rows)
{
	int least, i;
	uint32_t loh;

	for (least = 0; least < s->n; least++)
		if (!ipvs_sched_overloaded(&rows[least]) &&
		    rows[least].weight > 0)
			break;
	if (least >= s->n)
		return -1;
	loh = (uint32_t)rows[least].activeconns + 1;
	for (i = least + 1; i < s->n; i++) {
		const ipvs_sched_dest_t *d = &rows[i];
		uint32_t doh;
		if (ipvs_sched_overloaded(d))
			continue;
		doh = (uint32_t)d->activeconns + 1;
		if ((int64_t)loh * d->weight >
		    (int64_t)doh * rows[least].weight) {
			least = i;
			loh = doh;
		}
	}
	return least;
}

static inline int ipvs_sched_nq(const ipvs_sched_svc_t *s,
				 const ipvs_sched_dest_t *rows)
{
	int least = -1, i;
	uint32_t loh = 0;

	for (i = 0; i < s->n; i++) {
		const ipvs_sched_dest_t *d = &rows[i];
		uint32_t doh;
		if (ipvs_sched_overloaded(d) || !d->weight)
			continue;
		doh = (uint32_t)d->activeconns + 1;
		if (d->activeconns == 0)
			return i;
		if (least < 0 || (int64_t)loh * d->weight >
				 (int64_t)doh * rows[least].weight) {
			least = i;
			loh = doh;
		}
	}
	return least;
}

static inline int ipvs_sched_fo(const ipvs_sched_svc_t *s,
				 const ipvs_sched_dest_t *rows)
{
	int best = -1, hw = 0, i;

	for (i = 0; i < s->n; i++)
		if (!ipvs_sched_overloaded(&rows[i]) && rows[i].weight > hw) {
			best = i;
			hw = rows[i].weight;
		}
	return best;
}

static inline int ipvs_sched_ovf(const ipvs_sched_svc_t *s,
				 const ipvs_sched_dest_t *rows)
{
	int h = -1, hw = 0, i;

	for (i = 0; i < s->n; i++) {
		const ipvs_sched_dest_t *d = &rows[i];
		int w = d->weight;
		if (ipvs_sched_overloaded(d) || d->activeconns > w || w == 0)
			continue;
		if (h < 0 || w > hw) {
			h = i;
			hw = w;
		}
	}
	return h;
}

/* ----------------------------------------------------------- sh, dh */

static inline unsigned int ipvs_sched_sh_hashkey(uint32_t fold, uint16_t port,
						 unsigned int offset)
{
	return (offset + ipvs_hash_32((uint32_t)port + fold,
				      IPVS_SCHED_SH_TAB_BITS)) &
	       (IPVS_SCHED_SH_TAB_SIZE - 1);
}

/* ip_vs_sh_reassign(): weighted, round and round the list. */
static inline void ipvs_sched_sh_build(ipvs_sched_svc_t *s)
{
	int i, p = 0, d_count = 0;

	for (i = 0; i < IPVS_SCHED_SH_TAB_SIZE; i++) {
		if (s->n == 0) {
			s->tab[i] = -1;
			continue;
		}
		s->tab[i] = (int16_t)p;
		if (++d_count >= s->d[p].weight) {
			p = (p + 1) % s->n;
			d_count = 0;
		}
	}
}

/* ip_vs_dh_reassign(): one bucket per dest in turn. */
static inline void ipvs_sched_dh_build(ipvs_sched_svc_t *s)
{
	int i;

	for (i = 0; i < IPVS_SCHED_SH_TAB_SIZE; i++)
		s->tab[i] = s->n ? (int16_t)(i % s->n) : -1;
}

static inline int ipvs_sched_hash_unavailable(const ipvs_sched_dest_t *d)
{
	return d->weight <= 0 || ipvs_sched_overloaded(d);
}

static inline int ipvs_sched_sh(const ipvs_sched_svc_t *s,
				 const ipvs_sched_dest_t *rows, uint32_t fold,
				uint16_t port)
{
	unsigned int ihash = ipvs_sched_sh_hashkey(fold, port, 0), offset;
	int d = s->tab[ihash];

	if (d < 0)
		return -1;
	if (!ipvs_sched_hash_unavailable(&rows[d]))
		return d;
	if (!(s->svc_flags & IPVS_SCHED_SVC_F_SCHED1))
		return -1;
	for (offset = 0; offset < IPVS_SCHED_SH_TAB_SIZE; offset++) {
		unsigned int roffset = (offset + ihash) % IPVS_SCHED_SH_TAB_SIZE;
		d = s->tab[ipvs_sched_sh_hashkey(fold, port, roffset)];
		if (d < 0)
			break;
		if (!ipvs_sched_hash_unavailable(&rows[d]))
			return d;
	}
	return -1;
}

static inline int ipvs_sched_dh(const ipvs_sched_svc_t *s,
				 const ipvs_sched_dest_t *rows, uint32_t dfold)
{
	int d = s->tab[ipvs_hash_32(dfold, IPVS_SCHED_SH_TAB_BITS)];

	if (d < 0 || !(rows[d].flags & IPVS_SCHED_DEST_F_AVAILABLE) ||
	    rows[d].weight <= 0 || ipvs_sched_overloaded(&rows[d]))
		return -1;
	return d;
}

/* ----------------------------------------------------------------- mh */

static const ipvs_siphash_key_t ipvs_sched_mh_hash1 = {
	{ 2654435761ULL, 2654435761ULL } };
static const ipvs_siphash_key_t ipvs_sched_mh_hash2 = {
	{ 2654446892ULL, 2654446892ULL } };

static inline uint32_t ipvs_sched_mh_hashkey(uint32_t fold, uint16_t port,
					     const ipvs_siphash_key_t *key,
					     unsigned int offset)
{
	return ipvs_hsiphash_1u32(offset + port + fold, key);
}

/*
 * ip_vs_mh_permutate() + ip_vs_mh_populate().  scratch must hold 3*n ints
 * (perm, skip, turns) and IPVS_SCHED_MH_TAB_SIZE bytes of used flags.
 * Returns 0, or -1 with the table untouched when n > table size.
 */
static inline int ipvs_sched_mh_build(ipvs_sched_svc_t *s, int32_t *scratch,
				      uint8_t *used)
{
	int32_t *perm = scratch, *skip = scratch + s->n, *turns = skip + s->n;
	int g = 0, mw = 0, rshift = 0, i, filled = 0, dt_count = 0;

	if (s->n > IPVS_SCHED_MH_TAB_SIZE)
		return -1;
	for (i = 0; i < s->n; i++) {
		int w = s->d[i].last_weight;
		if (w > 0)
			g = g > 0 ? ipvs_sched_gcd(w, g) : w;
		if (w > mw)
			mw = w;
	}
	if (g < 1) {
		for (i = 0; i < IPVS_SCHED_MH_TAB_SIZE; i++)
			s->mh_lookup[i] = -1;
		return 0;
	}
	mw /= g;
	rshift = (mw ? 32 - __builtin_clz((unsigned)mw) : 0) -
		 IPVS_SCHED_MH_TAB_BITS;
	if (rshift < 0)
		rshift = 0;
	for (i = 0; i < s->n; i++) {
		const ipvs_sched_dest_t *d = &s->d[i];
		int lw = d->last_weight, t;
		perm[i] = ipvs_sched_mh_hashkey(d->addr_fold, d->port,
						&ipvs_sched_mh_hash1, 0) %
			  IPVS_SCHED_MH_TAB_SIZE;
		skip[i] = ipvs_sched_mh_hashkey(d->addr_fold, d->port,
						&ipvs_sched_mh_hash2, 0) %
			  (IPVS_SCHED_MH_TAB_SIZE - 1) + 1;
		t = (lw / g) >> rshift;
		turns[i] = t ? t : (lw != 0);
	}
	memset(used, 0, IPVS_SCHED_MH_TAB_SIZE);
	for (;;) {
		i = 0;
		while (i < s->n) {
			int c;
			if (turns[i] < 1) {
				i++;
				continue;
			}
			c = perm[i];
			while (used[c]) {
				c += skip[i];
				if (c >= IPVS_SCHED_MH_TAB_SIZE)
					c -= IPVS_SCHED_MH_TAB_SIZE;
			}
			perm[i] = c;
			used[c] = 1;
			s->mh_lookup[c] = i;
			if (++filled == IPVS_SCHED_MH_TAB_SIZE)
				return 0;
			if (++dt_count >= turns[i]) {
				dt_count = 0;
				i++;
			}
		}
	}
}

static inline int ipvs_sched_mh(const ipvs_sched_svc_t *s,
				 const ipvs_sched_dest_t *rows, uint32_t fold,
				uint16_t port)
{
	unsigned int ihash = ipvs_sched_mh_hashkey(fold, port,
						   &ipvs_sched_mh_hash1, 0) %
			     IPVS_SCHED_MH_TAB_SIZE, offset;
	int d = s->mh_lookup[ihash];

	if (d < 0)
		return -1;
	if (!ipvs_sched_hash_unavailable(&rows[d]))
		return d;
	if (!(s->svc_flags & IPVS_SCHED_SVC_F_SCHED1))
		return -1;
	for (offset = 0; offset < IPVS_SCHED_MH_TAB_SIZE; offset++) {
		unsigned int roffset = (offset + ihash) % IPVS_SCHED_MH_TAB_SIZE;
		d = s->mh_lookup[ipvs_sched_mh_hashkey(fold, port,
				&ipvs_sched_mh_hash1, roffset) %
				 IPVS_SCHED_MH_TAB_SIZE];
		if (d < 0)
			break;
		if (!ipvs_sched_hash_unavailable(&rows[d]))
			return d;
	}
	return -1;
}

/*
 * ntohl(addr_fold) of sh/dh/mh/lblc from 16 raw network-order bytes (the
 * PacketBatch layout): the IPv4 address, or the XOR of the four words of
 * an IPv6 address (ntohl distributes over XOR).
 */
static inline uint32_t ipvs_sched_addr_fold(const uint8_t *a, int af)
{
	uint32_t w = ((uint32_t)a[0] << 24) | ((uint32_t)a[1] << 16) |
		     ((uint32_t)a[2] << 8) | a[3];
	int k;

	if (af != 10)
		return w;
	for (k = 4; k < 16; k += 4)
		w ^= ((uint32_t)a[k] << 24) | ((uint32_t)a[k + 1] << 16) |
		     ((uint32_t)a[k + 2] << 8) | a[k + 3];
	return w;
}

/* ----------------------------------------------------------- dispatch */

/* Whether a decision changes the scheduler's own state: rr and wrr move
 * their position (the kernel takes svc->sched_lock around them); the
 * others only read the dests and their counters (lockless under RCU in
 * the kernel) and so may run on several threads at once, each on its own
 * copy of the rows (ipvs_sched_schedule_rows). */
static inline int ipvs_sched_stateful(int kind)
{
	return kind == IPVS_SCHED_RR || kind == IPVS_SCHED_WRR;
}

/*
 * One scheduling decision.  fold/port: the hashed address (saddr, or daddr
 * for inverse packets) and port (sport/dport; callers pass 0 unless the
 * protocol has ports); dfold: ntohl(addr_fold(daddr)) for dh.
 * ipvs_sched_schedule_rows() is the decision of a stateless kind (not rr
 * or wrr: -1 for those) on @rows, s->n rows laid out as s->d.
 */
static inline int ipvs_sched_schedule_rows(const ipvs_sched_svc_t *s,
					   const ipvs_sched_dest_t *rows,
					   uint32_t fold, uint16_t port,
					   uint32_t dfold)
{
	uint16_t hport = (s->svc_flags & IPVS_SCHED_SVC_F_SCHED2) ? port : 0;

	switch (s->kind) {
	case IPVS_SCHED_LC:  return ipvs_sched_lc(s, rows);
	case IPVS_SCHED_WLC: return ipvs_sched_wlc(s, rows);
	case IPVS_SCHED_SED: return ipvs_sched_sed(s, rows);
	case IPVS_SCHED_NQ:  return ipvs_sched_nq(s, rows);
	case IPVS_SCHED_FO:  return ipvs_sched_fo(s, rows);
	case IPVS_SCHED_OVF: return ipvs_sched_ovf(s, rows);
	case IPVS_SCHED_SH:  return ipvs_sched_sh(s, rows, fold, hport);
	case IPVS_SCHED_DH:  return ipvs_sched_dh(s, rows, dfold);
	case IPVS_SCHED_MH:  return ipvs_sched_mh(s, rows, fold, hport);
	default:             return -1;
	}
}

static inline int ipvs_sched_schedule(ipvs_sched_svc_t *s, uint32_t fold,
				      uint16_t port, uint32_t dfold)
{
	switch (s->kind) {
	case IPVS_SCHED_RR:  return ipvs_sched_rr(s);
	case IPVS_SCHED_WRR: return ipvs_sched_wrr(s);
	default:	     return ipvs_sched_schedule_rows(s, s->d, fold, port,
							      dfold);
	}
}

/* ip_vs_bind_dest(): count a new connection, set OVERLOAD at u_threshold. */
static inline void ipvs_sched_count(ipvs_sched_svc_t *s, int i, int how)
{
	ipvs_sched_dest_t *d;

	if (i < 0 || how == IPVS_COUNT_NONE)
		return;
	d = &s->d[i];
	if (how == IPVS_COUNT_ACTIVE)
		d->activeconns++;
	else
		d->inactconns++;
	if (d->u_threshold != 0 &&
	    (uint32_t)(d->activeconns + d->inactconns) >= d->u_threshold)
		d->flags |= IPVS_SCHED_DEST_F_OVERLOAD;
}

#endif /* IPVS_PY_SCHED_H */
