/* mt_replay_stress.c - the multi-core replay (ipvs_mt.h) from plain C,
 * no Python: one engine replays a trace on one thread, another engine the
 * same trace on @workers threads (sh scheduler, NAT, writer stripes, flow
 * cache), and the results must be equal.  Small enough to build with
 * -fsanitize=thread as a standalone program (Python itself does not run
 * under TSan here), and called through ctypes by
 * tests/core/test_mt_cstress.py.
 *
 * mt_stress() returns 0 and fills out[]: rows whose verdict differed,
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

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

int mt_stress(int workers, int stripes, int nflows, int npkts, uint64_t seed,
	      uint64_t *out)
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

		/* the workers shard the rows themselves */
		mrc = ipvs_mt_replay(many, &b, (uint32_t)workers, mask, &fc,
				     tm[n - 1], &scratch, &st);
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

#ifdef MT_STRESS_MAIN
#include <stdio.h>

int main(void)
{
	uint64_t out[6];
	int rc = mt_stress(3, 8, 3000, 60000, 7, out);

	printf("rc %d rows %lu conns %lu counters %lu made %lu fc_hits %lu "
	       "helped %lu\n", rc, out[0], out[1], out[2], out[3], out[4],
	       out[5]);
	return rc || out[0] || out[1] || out[2];
}
#endif
