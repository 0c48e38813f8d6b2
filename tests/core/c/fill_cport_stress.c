/* fill_cport_stress.c - the no-cport rehash (ipvs_conn_fill_cport) racing
 * with lookups and resizes, from plain C threads.
 *
 * @nconns NAT conns are made with client port 0 (IP_VS_CONN_F_NO_CPORT).
 * One filler thread then gives each its port in turn, publishing the conn
 * it is about to fill; @readers threads hammer that conn (and now and
 * then a random one) with the lookup pair a packet of it can make: by
 * the old key (port 0), then by the new key.  Linearizable re-keying
 * means:
 *   lost:  both lookups miss -- the conn was findable by neither key;
 *   back:  the old key hits after the new key hit -- the change went
 *          back, or a reader saw the new port at the old position;
 *   wrong: a lookup returned another conn.
 * With the port written before the rehash took its locks (the order
 * before this harness), "lost" counts the lookups that fell into that
 * gap.  An optional resizer rebuilds the table in a loop meanwhile, so
 * rehashes meet moves (the retry in iht_rehash_commit).  At the end every
 * conn must be found by its new key in both directions, by neither old
 * key, and no_cport must be 0.
 *
 * fill_cport_stress() returns 0 and fills out[]: lost, back, wrong, final
 * check failures, old-key lookups that hit (pairs where the race could
 * show), resizes; or -2 when setup failed.
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipvs_conn.h"

#define HZ 250

struct fc_run {
	struct ipvs_engine *e;
	uint32_t *ids;
	int nconns;
	_Atomic int cur;		/* conn being filled, -1: not started */
	_Atomic int stop;
	_Atomic int started;		/* readers running */
	_Atomic int seen;		/* last @cur a reader looked up */
	int readers;
	_Atomic uint64_t lost, back, wrong, old_hits;
	uint64_t seed;
};

static uint32_t caddr_of(int i)
{
	return __builtin_bswap32(0xC6120000u + (uint32_t)i);
}

static uint16_t cport_of(int i)
{
	return __builtin_bswap16((uint16_t)(1024 + i % 60000));
}

static const uint32_t vaddr[4] = { 0x010200C0u, 0, 0, 0 };	/* 192.0.2.1 */

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *filler(void *arg)
{
	struct fc_run *r = arg;

	while (atomic_load(&r->started) < r->readers)
		sched_yield();		/* a loaded box starts threads late */
	for (int i = 0; i < r->nconns; i++) {
		atomic_store(&r->cur, i);
		/* let a reader reach the conn before it changes (bounded:
		 * a descheduled reader must not stall the run) */
		for (int spin = 0; atomic_load(&r->seen) < i && spin < 20000;
		     spin++)
			;
		ipvs_conn_fill_cport(r->e, ipvs_conn_of(r->e, r->ids[i]),
				     cport_of(i));
	}
	atomic_store(&r->stop, 1);
	return NULL;
}

static void *reader(void *arg)
{
	struct fc_run *r = arg;
	uint64_t s = r->seed | 1;

	atomic_fetch_add(&r->started, 1);
	while (!atomic_load(&r->stop)) {
		int i = atomic_load(&r->cur);
		uint32_t ca[4] = { 0 };
		struct ipvs_conn *want, *o, *n;

		if (i < 0)
			continue;
		if (xs(&s) % 8 == 0)
			i = (int)(xs(&s) % (uint64_t)r->nconns);
		ca[0] = caddr_of(i);
		want = ipvs_conn_of(r->e, r->ids[i]);
		struct ipvs_ckey ko = { ca, vaddr, 0, __builtin_bswap16(80),
					2, 17, 0, 0 };
		struct ipvs_ckey kn = { ca, vaddr, cport_of(i),
					__builtin_bswap16(80), 2, 17, 0, 0 };

		o = ipvs_conn_lookup(r->e, &ko);
		n = ipvs_conn_lookup(r->e, &kn);
		if ((o && o != want) || (n && n != want))
			atomic_fetch_add(&r->wrong, 1);
		if (!o && !n)
			atomic_fetch_add(&r->lost, 1);
		if (o)
			atomic_fetch_add(&r->old_hits, 1);
		if (n && ipvs_conn_lookup(r->e, &ko))
			atomic_fetch_add(&r->back, 1);
		if (i == atomic_load(&r->cur))
			atomic_store(&r->seen, i);
	}
	return NULL;
}

static void *resizer(void *arg)
{
	struct fc_run *r = arg;
	int64_t sizes[3] = { 256, 4096, 1024 };

	for (int k = 0; !atomic_load(&r->stop); k++)
		iht_resize(&r->e->tab, sizes[k % 3]);
	return NULL;
}

static int engine_setup(struct ipvs_engine *e)
{
	struct iht_lock_profile prof = { 6, 256, 8, 0 };

	memset(e, 0, sizeof(*e));
	e->free_head = IPVS_CONN_NONE;
	e->hz = HZ;
	e->udp_timeout = 300 * HZ;
	if (iht_init(&e->tab, 8, 16, 0, &prof, 0, ipvs_node_hash, NULL))
		return -1;
	e->dests = calloc(1, sizeof(*e->dests));
	e->svcs = calloc(1, sizeof(*e->svcs));
	if (!e->dests || !e->svcs)
		return -1;
	e->ndests = 1;
	e->nsvcs = 1;
	e->dests[0].addr[0] = __builtin_bswap32(0x0A000001);
	e->dests[0].port = __builtin_bswap16(8080);
	e->dests[0].af = 2;
	e->dests[0].weight = 1;
	e->dests[0].fwd = IPVS_CF_MASQ;
	e->dests[0].flags = IPVS_DF_AVAILABLE;
	return 0;
}

int fill_cport_stress(int nconns, int readers, int stripes, int resize,
		      uint64_t seed, uint64_t *out)
{
	struct ipvs_engine *e = calloc(1, sizeof(*e));
	struct fc_run r;
	struct iht_stripes ws = { 0 };
	pthread_t th[34];
	int nth = 0, rc = -2;
	uint64_t bad = 0, resizes0 = 0;

	memset(&r, 0, sizeof(r));
	r.ids = calloc((size_t)nconns, sizeof(*r.ids));
	if (!e || !r.ids || readers < 1 || readers > 32 ||
	    (stripes && iht_stripes_init(&ws, stripes)) ||
	    engine_setup(e))
		goto out;
	if (stripes)
		iht_set_stripes(&e->tab, &ws);
	r.e = e;
	r.nconns = nconns;
	r.seed = seed;
	r.readers = readers;
	atomic_store(&r.cur, -1);
	atomic_store(&r.seen, -1);
	for (int i = 0; i < nconns; i++) {
		uint32_t ca[4] = { caddr_of(i), 0, 0, 0 };

		r.ids[i] = ipvs_conn_new(e, 2, 17, ca, 0, vaddr,
					 __builtin_bswap16(80), 0,
					 e->dests[0].port, 0);
		if (r.ids[i] == IPVS_CONN_NONE)
			goto out;
		if (iht_resize_pending(&e->tab))
			iht_maybe_resize(&e->tab);
	}
	if (e->no_cport != nconns)
		goto out;
	resizes0 = iht_resizes(&e->tab);
	for (int k = 0; k < readers; k++) {
		if (pthread_create(&th[nth], NULL, reader, &r))
			goto join;
		nth++;
	}
	if (resize && !pthread_create(&th[nth], NULL, resizer, &r))
		nth++;
	if (!pthread_create(&th[nth], NULL, filler, &r))
		nth++;
	else
		atomic_store(&r.stop, 1);
join:
	atomic_store(&r.stop, atomic_load(&r.stop) ||
		     nth < readers + 1);
	for (int k = 0; k < nth; k++)
		pthread_join(th[k], NULL);
	if (nth < readers + 1)
		goto out;
	/* final state: new keys in both directions, old keys gone */
	for (int i = 0; i < nconns; i++) {
		uint32_t ca[4] = { caddr_of(i), 0, 0, 0 };
		struct ipvs_conn *c = ipvs_conn_of(e, r.ids[i]);
		struct ipvs_ckey kn = { ca, vaddr, cport_of(i),
					__builtin_bswap16(80), 2, 17, 0, 0 };
		struct ipvs_ckey ko = { ca, vaddr, 0, __builtin_bswap16(80),
					2, 17, 0, 0 };
		struct ipvs_ckey rn = { ca, e->dests[0].addr, cport_of(i),
					e->dests[0].port, 2, 17, 1, 0 };
		struct ipvs_ckey ro = { ca, e->dests[0].addr, 0,
					e->dests[0].port, 2, 17, 1, 0 };

		bad += ipvs_conn_lookup(e, &kn) != c ||
		       ipvs_conn_lookup(e, &rn) != c ||
		       ipvs_conn_lookup(e, &ko) || ipvs_conn_lookup(e, &ro) ||
		       (c->flags & IPVS_CF_NO_CPORT) || c->cport != cport_of(i);
	}
	bad += e->no_cport != 0 || iht_count(&e->tab) != nconns;
	out[0] = r.lost;
	out[1] = r.back;
	out[2] = r.wrong;
	out[3] = bad;
	out[4] = r.old_hits;
	out[5] = iht_resizes(&e->tab) - resizes0;
	rc = 0;
out:
	if (e && e->dests) {
		iht_destroy(&e->tab, NULL, NULL);
		ipvs_engine_free_all(e);
	}
	iht_stripes_destroy(&ws);
	free(e);
	free(r.ids);
	return rc;
}

#ifdef FILL_CPORT_MAIN
#include <stdio.h>

int main(void)
{
	uint64_t out[6];
	int rc = fill_cport_stress(20000, 2, 8, 1, 7, out);

	printf("rc %d lost %lu back %lu wrong %lu bad %lu old_hits %lu "
	       "resizes %lu\n", rc, out[0], out[1], out[2], out[3], out[4],
	       out[5]);
	return rc || out[0] || out[1] || out[2] || out[3];
}
#endif
