/* mt_replay_stress.c - the multi-core replay (ipvs_mt.h) from plain C,
 * no Python: one engine replays a trace on one thread, another engine the
 * same trace on @workers threads (sh scheduler, NAT, writer stripes, flow
 * cache), and the results must be equal.  With @queues the trace is first
 * split into one RSS queue per worker (rows grouped by worker, each group
 * in trace order) and replayed from those (ipvs_mt_replay with nb ==
 * workers); the verdicts are put back in trace order to compare.  Small enough to build with
 * -fsanitize=thread as a standalone program (Python itself does not run
 * under TSan here), and called through ctypes by
 * tests/core/test_mt_cstress.py.
 *
 * mt_stress() and mt_stress_queues() return 0 and fill out[]: rows whose verdict differed,
 * |conns difference|, counters that differed (totals and per-dest), the
 * conns made, flow cache hits, buckets the workers moved for rebuilds;
 * or -2 when setup failed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipvs_mt.h"

#define NDEST 5
#define HZ 250

static const uint32_t tcp_s[11] = { 2, 900, 120, 60, 120, 120, 10, 60, 30,
				    120, 120 };

static int engine_init(struct ipvs_engine *e, ipvs_sched_svc_t *ss,
		       ipvs_sched_dest_t *sd, int32_t *rows,
		       struct iht_stripes *ws, struct ipvs_fc *fc)
{
	struct iht_lock_profile prof = { 6, 256, 8, 0 };

	memset(e, 0, sizeof(*e));
	e->free_head = IPVS_CONN_NONE;
	e->hz = HZ;
	if (iht_init(&e->tab, 8, 16, 0, &prof, 0, ipvs_node_hash, NULL))
		return -1;
	if (ws)
		iht_set_stripes(&e->tab, ws);
	e->fc = fc;
	e->mt_resize_help = 1;	/* workers move rebuild chunks too */
	e->conn_reuse_mode = 1;
	for (int i = 0; i < 11; i++)
		e->tcp_timeouts[i] = tcp_s[i] * HZ;
	e->tcp_timeouts[11] = 2 * HZ;
	e->udp_timeout = 300 * HZ;
	e->dests = calloc(NDEST, sizeof(*e->dests));
	e->svcs = calloc(1, sizeof(*e->svcs));
	if (!e->dests || !e->svcs)
		return -1;
	e->ndests = NDEST;
	e->nsvcs = 1;
	memset(ss, 0, sizeof(*ss));
	ss->kind = IPVS_SCHED_SH;
	ss->n = NDEST;
	ss->d = sd;
	for (int i = 0; i < NDEST; i++) {
		e->dests[i].addr[0] = __builtin_bswap32(0x0A000001 + i);
		e->dests[i].port = __builtin_bswap16(8080);
		e->dests[i].af = 2;
		e->dests[i].weight = 1;
		e->dests[i].flags = IPVS_DF_AVAILABLE;
		e->dests[i].svc = 0;
		memset(&sd[i], 0, sizeof(sd[i]));
		sd[i].weight = 1;
		rows[i] = i;
	}
	for (int i = 0; i < IPVS_SCHED_SH_TAB_SIZE; i++)
		ss->tab[i] = (int16_t)(i % NDEST);
	e->svcs[0].addr[0] = __builtin_bswap32(0xC0000201);
	e->svcs[0].port = __builtin_bswap16(80);
	e->svcs[0].af = 2;
	e->svcs[0].protocol = 6;
	e->svcs[0].live = 1;
	e->svcs[0].sched = ss;
	e->svcs[0].row_dest = rows;
	memset(e->svcs[0].netmask, 0xff, 16);
	return 0;
}

static void engine_free(struct ipvs_engine *e)
{
	e->svcs[0].row_dest = NULL;	/* the caller's array */
	iht_destroy(&e->tab, NULL, NULL);
	ipvs_engine_free_all(e);
}

/* Replay the trace @b (n rows) as @nw RSS queues: copies of its rows
 * grouped by ipvs_mt_shard_of (stable), one batch per worker; the verdicts
 * are written back to @b's output columns in trace order.  Returns
 * ipvs_mt_replay's result, or -ENOMEM. */
static int replay_queues(struct ipvs_engine *e, const struct ipvs_mt_batch *b,
			 uint32_t nw, const uint32_t *mask,
			 const struct ipvs_fc *fc, uint32_t until,
			 struct ipvs_mt_stats *st)
{
	size_t n = b->n, *perm = malloc(n * sizeof(*perm));
	size_t start[IPVS_MT_MAX_WORKERS + 1] = { 0 }, fill[IPVS_MT_MAX_WORKERS];
	uint8_t *w = malloc(n), *sa = malloc(n * 16), *da = malloc(n * 16);
	uint8_t *u8 = malloc(n * 5);	/* proto, af, flags, dir, action */
	uint16_t *ports = malloc(n * 4);
	uint32_t *u32 = malloc(n * 12);	/* fwmark, len, times */
	int32_t *dest = malloc(n * 4);
	struct ipvs_mt_batch qs[IPVS_MT_MAX_WORKERS];
	int rc = -ENOMEM;

	if (!perm || !w || !sa || !da || !u8 || !ports || !u32 || !dest)
		goto out;
	for (size_t i = 0; i < n; i++) {
		w[i] = (uint8_t)ipvs_mt_row_shard(b, i, mask, nw);
		start[w[i] + 1]++;
	}
	for (uint32_t k = 0; k < nw; k++) {
		start[k + 1] += start[k];
		fill[k] = start[k];
	}
	for (size_t i = 0; i < n; i++) {
		size_t j = fill[w[i]]++;

		perm[j] = i;
		memcpy(&sa[j * 16], &b->saddr[i * 16], 16);
		memcpy(&da[j * 16], &b->daddr[i * 16], 16);
		u8[j] = b->proto[i];
		u8[n + j] = b->af[i];
		u8[2 * n + j] = b->flags[i];
		u8[3 * n + j] = b->dir[i];
		ports[j] = b->sport[i];
		ports[n + j] = b->dport[i];
		u32[j] = b->fwmark[i];
		u32[n + j] = b->len[i];
		u32[2 * n + j] = b->times[i];
	}
	for (uint32_t k = 0; k < nw; k++) {
		size_t o = start[k];

		memset(&qs[k], 0, sizeof(qs[k]));
		qs[k].saddr = &sa[o * 16];
		qs[k].daddr = &da[o * 16];
		qs[k].proto = &u8[o];
		qs[k].af = &u8[n + o];
		qs[k].flags = &u8[2 * n + o];
		qs[k].dir = &u8[3 * n + o];
		qs[k].sport = &ports[o];
		qs[k].dport = &ports[n + o];
		qs[k].fwmark = &u32[o];
		qs[k].len = &u32[n + o];
		qs[k].times = &u32[2 * n + o];
		qs[k].dest_out = &dest[o];
		qs[k].action_out = &u8[4 * n + o];
		qs[k].n = start[k + 1] - o;
	}
	rc = ipvs_mt_replay(e, qs, nw, nw, mask, fc, until, NULL, st);
	for (size_t j = 0; !rc && j < n; j++) {
		b->dest_out[perm[j]] = dest[j];
		b->action_out[perm[j]] = u8[4 * n + j];
	}
out:
	free(perm); free(w); free(sa); free(da); free(u8); free(ports);
	free(u32); free(dest);
	return rc;
}

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int stress(int workers, int stripes, int nflows, int npkts,
		  uint64_t seed, int queues, uint64_t *out)
{
	struct ipvs_engine *one = calloc(1, sizeof(*one));
	struct ipvs_engine *many = calloc(1, sizeof(*many));
	ipvs_sched_svc_t ss1, ss2;
	ipvs_sched_dest_t sd1[NDEST], sd2[NDEST];
	int32_t rows1[NDEST], rows2[NDEST];
	struct iht_stripes ws = { 0 };
	struct ipvs_fc fc;
	size_t n = (size_t)npkts;
	uint8_t *sa = calloc(n, 16), *da = calloc(n, 16);
	uint8_t *proto = malloc(n), *af = malloc(n), *fl = malloc(n);
	uint8_t *dir = calloc(n, 1), *act1 = malloc(n), *act2 = malloc(n);
	uint16_t *sp = malloc(n * 2), *dp = malloc(n * 2);
	uint32_t *fw = calloc(n, 4), *len = malloc(n * 4), *tm = malloc(n * 4);
	int32_t *d1 = malloc(n * 4), *d2 = malloc(n * 4);
	uint32_t mask[4] = { ~0u, ~0u, ~0u, ~0u }, t = 0;
	struct ipvs_mt_stats st;
	uint64_t s = seed | 1;
	int rc = -2;

	if (!one || !many || !sa || !da || !proto || !af || !fl || !dir ||
	    !act1 || !act2 || !sp || !dp || !fw || !len || !tm || !d1 ||
	    !d2 || iht_stripes_init(&ws, stripes) ||
	    ipvs_fc_init(&fc, 4, 0, HZ / 10) ||
	    engine_init(one, &ss1, sd1, rows1, NULL, NULL) ||
	    engine_init(many, &ss2, sd2, rows2, &ws, NULL))
		goto out;
	/* flows: SYN, then ACKs, FINs, RSTs and replies from the dests */
	for (size_t i = 0; i < n; i++) {
		uint32_t f = (uint32_t)(xs(&s) % (uint64_t)nflows);
		uint32_t c = __builtin_bswap32(0xC6120000 + (f >> 2));
		uint32_t r = (uint32_t)(xs(&s) % 16);

		t += (uint32_t)(xs(&s) % 8);
		if (r == 0)
			t += 30 * HZ;		/* let timers fire */
		tm[i] = t;
		proto[i] = 6;
		af[i] = 2;
		len[i] = 100;
		fl[i] = r < 3 ? 0x02 : r < 12 ? 0x10 : r < 14 ? 0x11 : 0x04;
		if (r == 15) {			/* a reply */
			uint32_t d = (uint32_t)(xs(&s) % NDEST);

			dir[i] = 1;
			memcpy(&sa[i * 16], &one->dests[d].addr[0], 4);
			memcpy(&da[i * 16], &c, 4);
			sp[i] = 8080;
			dp[i] = (uint16_t)(1000 + (f & 3));
		} else {
			memcpy(&sa[i * 16], &c, 4);
			memcpy(&da[i * 16], &one->svcs[0].addr[0], 4);
			sp[i] = (uint16_t)(1000 + (f & 3));
			dp[i] = 80;
		}
	}
	/* one thread */
	for (size_t i = 0; i < n; i++) {
		struct ipvs_pkt p;
		struct ipvs_verdict v;

		memset(&p, 0, sizeof(p));
		memcpy(p.saddr, &sa[i * 16], 16);
		memcpy(p.daddr, &da[i * 16], 16);
		p.sport = __builtin_bswap16(sp[i]);
		p.dport = __builtin_bswap16(dp[i]);
		p.af = 2;
		p.protocol = 6;
		p.flags = fl[i];
		p.dir = dir[i];
		p.len = len[i];
		v = ipvs_packet(one, &p, tm[i]);
		d1[i] = v.dest;
		act1[i] = (uint8_t)v.action;
		if (iht_resize_pending(&one->tab))
			iht_maybe_resize(&one->tab);
	}
	{
		struct ipvs_mt_batch b = { sa, da, proto, af, fl, dir, sp, dp,
					   fw, len, tm, d2, act2, n };

		struct ipvs_mt_scratch scratch = { NULL, 0 };
		int mrc;

		if (queues)	/* split before the workers, as by a NIC */
			mrc = replay_queues(many, &b, (uint32_t)workers, mask,
					    &fc, tm[n - 1], &st);
		else		/* the workers shard the rows themselves */
			mrc = ipvs_mt_replay(many, &b, 1, (uint32_t)workers,
					     mask, &fc, tm[n - 1], &scratch,
					     &st);
		ipvs_mt_scratch_free(&scratch);
		if (mrc)
			goto out;
	}
	memset(out, 0, 6 * sizeof(*out));
	for (size_t i = 0; i < n; i++)
		out[0] += d1[i] != d2[i] || act1[i] != act2[i];
	out[1] = (uint64_t)llabs(one->nconns - many->nconns);
	out[2] = (one->tot_conns != many->tot_conns) +
		 (one->tot_inpkts != many->tot_inpkts) +
		 (one->tot_outpkts != many->tot_outpkts) +
		 (one->now != many->now);
	for (int i = 0; i < NDEST; i++)
		out[2] += memcmp(&one->dests[i], &many->dests[i],
				 sizeof(one->dests[i])) != 0;
	out[3] = one->tot_conns;
	out[4] = st.fc_hits;
	out[5] = st.helped_buckets;
	rc = 0;
out:
	if (one && one->dests)
		engine_free(one);
	if (many && many->dests)
		engine_free(many);
	iht_stripes_destroy(&ws);
	free(one);
	free(many);
	free(sa); free(da); free(proto); free(af); free(fl); free(dir);
	free(act1); free(act2); free(sp); free(dp); free(fw); free(len);
	free(tm); free(d1); free(d2);
	return rc;
}

int mt_stress(int workers, int stripes, int nflows, int npkts, uint64_t seed,
	      uint64_t *out)
{
	return stress(workers, stripes, nflows, npkts, seed, 0, out);
}

/* The same from RSS queues, one per worker. */
int mt_stress_queues(int workers, int stripes, int nflows, int npkts,
		     uint64_t seed, uint64_t *out)
{
	return stress(workers, stripes, nflows, npkts, seed, 1, out);
}

#ifdef MT_STRESS_MAIN
#include <stdio.h>

int main(void)
{
	uint64_t out[6];
	int bad = 0;

	for (int queues = 0; queues < 2; queues++) {
		int rc = stress(3, 8, 3000, 60000, 7, queues, out);

		printf("queues %d rc %d rows %lu conns %lu counters %lu made %lu "
		       "fc_hits %lu helped %lu\n", queues, rc, out[0], out[1],
		       out[2], out[3], out[4], out[5]);
		bad |= rc || out[0] || out[1] || out[2];
	}
	return bad;
}
#endif
