/* stripe_stress.c - writer stripes under contention, no Python, no GIL.
 *
 * Entries carry two nodes (like a NAT conn's hn0/hn1), each with its own
 * key.  Writer threads own disjoint sets of entries and, at random, link
 * both nodes (iht_insert2), unlink both (iht_unlink2) or re-key one node
 * (iht_rehash): every operation that takes two stripes.  A resizer
 * rebuilds the table over and over (striped moves take two stripes as
 * well).  Readers look up a stable set of entries by both keys; they must
 * always hit the right entry.  An unlinked entry is linked again only
 * after a grace period (a reader may still stand on its nodes).
 *
 * stripe_stress() returns -1 if the threads did not all finish within
 * 10 s of the stop signal (a deadlock), else 0, and fills out[]:
 * ops, lookups, misses, wrong, resizes, count_err (table count vs live
 * entries), node_err (live entries whose nodes were not found exactly
 * once by a final walk, plus nodes of dead entries found).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ipvs_table.h"

/* An entry on two chains, like a NAT conn: 16-byte aligned with hn[0] at
 * +0 and hn[1] at +8, so a node's address bit 3 says which it is. */
struct sent {
	struct iht_node hn[2];
	_Atomic uint64_t key[2];
	int live;		/* owner only */
	int pending;		/* owner only: unlinked, waiting for a grace */
} __attribute__((aligned(16)));

static unsigned int node_dir(const struct iht_node *n)
{
	return (unsigned int)((uintptr_t)n >> 3) & 1;
}

struct skey {
	uint64_t k;
	uint32_t aux;
};

struct sstress {
	struct iht_table t;
	struct iht_stripes ws;
	struct sent *ents;
	uint64_t nstable, per_writer;
	int writers;
	_Atomic int stop;
	_Atomic int finished;
	_Atomic uint64_t ops, lookups, misses, wrong, resizes;
	_Atomic uint64_t key_seq;
};

static struct sent *ent_of(const struct iht_node *n)
{
	return (struct sent *)((uintptr_t)n & ~(uintptr_t)15);
}

static uint32_t skey_hash(const void *key, const ipvs_siphash_key_t *hk,
			  void *ctx)
{
	const struct skey *k = key;
	(void)ctx;
	return (uint32_t)ipvs_siphash_2u64(k->k, k->aux, hk);
}

static uint32_t snode_hash(const struct iht_node *n,
			   const ipvs_siphash_key_t *hk, void *ctx)
{
	struct skey k = { atomic_load(&ent_of(n)->key[node_dir(n)]),
			  node_dir(n) };
	return skey_hash(&k, hk, ctx);
}

static int skey_cmp(const struct iht_node *n, const void *key, void *ctx)
{
	const struct skey *k = key;
	(void)ctx;
	return node_dir(n) == k->aux &&
	       atomic_load(&ent_of(n)->key[k->aux]) == k->k;
}

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void link_ent(struct sstress *s, struct sent *e)
{
	struct skey k0 = { atomic_load(&e->key[0]), 0 };
	struct skey k1 = { atomic_load(&e->key[1]), 1 };

	iht_insert2(&s->t, &e->hn[0], &k0, &e->hn[1], &k1, skey_hash, NULL, 1);
	e->live = 1;
}

struct warg {
	struct sstress *s;
	int id;
};

static void *writer(void *arg)
{
	struct warg *a = arg;
	struct sstress *s = a->s;
	uint64_t base = s->nstable + (uint64_t)a->id * s->per_writer;
	uint64_t rnd = 0x9E3779B97F4A7C15ull * (uint64_t)(a->id + 1), ops = 0;
	uint64_t npend = 0;

	while (!atomic_load(&s->stop)) {
		struct sent *e = &s->ents[base + xs(&rnd) % s->per_writer];
		uint64_t r = xs(&rnd) % 8;

		if (e->pending)
			continue;
		if (!e->live) {
			link_ent(s, e);
		} else if (r < 3) {
			iht_unlink2(&s->t, &e->hn[0], &e->hn[1], 1);
			e->live = 0;
			e->pending = 1;
			if (++npend >= 64) {	/* let readers leave the nodes */
				iht_synchronize(&s->t);
				for (uint64_t i = 0; i < s->per_writer; i++)
					s->ents[base + i].pending = 0;
				npend = 0;
			}
		} else {
			int which = (int)(r & 1);
			struct skey k = { atomic_fetch_add(&s->key_seq, 1),
					  (uint32_t)which };

			atomic_store(&e->key[which], k.k);
			iht_rehash(&s->t, &e->hn[which], &k, skey_hash, NULL);
		}
		ops++;
	}
	atomic_fetch_add(&s->ops, ops);
	atomic_fetch_add(&s->finished, 1);
	return NULL;
}

static void *reader(void *arg)
{
	struct sstress *s = arg;
	uint64_t rnd = 0x1234567ull ^ (uint64_t)(uintptr_t)&rnd, n = 0;

	while (!atomic_load(&s->stop)) {
		uint64_t i = xs(&rnd) % s->nstable;
		uint32_t aux = (uint32_t)(xs(&rnd) & 1);
		struct skey k = { atomic_load(&s->ents[i].key[aux]), aux };
		unsigned int slot = iht_read_lock(&s->t);
		struct iht_node *nd = iht_lookup(&s->t, &k, skey_hash, skey_cmp,
						 NULL);

		if (!nd)
			atomic_fetch_add(&s->misses, 1);
		else if (ent_of(nd) != &s->ents[i])
			atomic_fetch_add(&s->wrong, 1);
		iht_read_unlock(&s->t, slot);
		n++;
	}
	atomic_fetch_add(&s->lookups, n);
	atomic_fetch_add(&s->finished, 1);
	return NULL;
}

static void *resizer(void *arg)
{
	struct sstress *s = arg;
	int64_t sizes[] = { 256, 4096, 1024, 65536, 512 };
	uint64_t i = 0;

	while (!atomic_load(&s->stop)) {
		if (iht_resize(&s->t, sizes[i++ % 5]) == 0)
			atomic_fetch_add(&s->resizes, 1);
	}
	atomic_fetch_add(&s->finished, 1);
	return NULL;
}

int stripe_stress(int nstripes, int writers, int readers, int ms,
		  uint64_t nstable, uint64_t per_writer, uint64_t *out)
{
	struct iht_lock_profile prof = { 6, 256, 8, 0 };
	struct sstress *s = calloc(1, sizeof(*s));
	uint64_t total;
	int nthreads = writers + readers + 1, started = 0;
	pthread_t *th;
	struct warg *wa;
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	if (!s)
		return -2;
	total = nstable + (uint64_t)writers * per_writer;
	/* entries are linked by 32-bit reference: they live in the cage */
	s->ents = iht_cage_chunk_alloc(total * sizeof(*s->ents));
	th = calloc((size_t)nthreads, sizeof(*th));
	wa = calloc((size_t)writers, sizeof(*wa));
	if (!s->ents || !th || !wa ||
	    iht_init(&s->t, 8, 16, 0, &prof, 0, snode_hash, NULL))
		return -2;
	if (nstripes) {
		if (iht_stripes_init(&s->ws, (uint32_t)nstripes))
			return -2;
		iht_set_stripes(&s->t, &s->ws);
	}
	s->nstable = nstable;
	s->per_writer = per_writer;
	s->writers = writers;
	atomic_store(&s->key_seq, 1);
	for (uint64_t i = 0; i < total; i++) {
		atomic_store(&s->ents[i].key[0], atomic_fetch_add(&s->key_seq, 1));
		atomic_store(&s->ents[i].key[1], atomic_fetch_add(&s->key_seq, 1));
	}
	for (uint64_t i = 0; i < nstable; i++)
		link_ent(s, &s->ents[i]);
	for (int i = 0; i < writers; i++) {
		wa[i].s = s;
		wa[i].id = i;
		started += !pthread_create(&th[i], NULL, writer, &wa[i]);
	}
	for (int i = 0; i < readers; i++)
		started += !pthread_create(&th[writers + i], NULL, reader, s);
	started += !pthread_create(&th[nthreads - 1], NULL, resizer, s);
	if (started != nthreads)
		return -2;
	nanosleep(&ts, NULL);
	atomic_store(&s->stop, 1);
	for (int i = 0; i < 1000 && atomic_load(&s->finished) < nthreads; i++)
		usleep(10000);
	if (atomic_load(&s->finished) < nthreads)
		return -1;		/* deadlock: leak rather than hang */
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);

	/* final check: every live entry's two nodes exactly once */
	uint64_t live = 0, node_err = 0;
	uint32_t *seen = calloc(total * 2, sizeof(*seen));
	struct iht_walker w;
	struct iht_node *n;

	if (!seen)
		return -2;
	iht_walk_start(&s->t, &w);
	while ((n = iht_walk_next(&w)))
		seen[(uint64_t)(ent_of(n) - s->ents) * 2 + node_dir(n)]++;
	iht_walk_stop(&w);
	for (uint64_t i = 0; i < total; i++) {
		int want = s->ents[i].live ? 1 : 0;

		live += (uint64_t)want;
		node_err += (seen[2 * i] != (uint32_t)want) +
			    (seen[2 * i + 1] != (uint32_t)want);
	}
	out[0] = atomic_load(&s->ops);
	out[1] = atomic_load(&s->lookups);
	out[2] = atomic_load(&s->misses);
	out[3] = atomic_load(&s->wrong);
	out[4] = atomic_load(&s->resizes);
	out[5] = (uint64_t)(iht_count(&s->t) != (int64_t)live);
	out[6] = node_err;
	out[7] = nstripes ? iht_stripes_doubles(&s->ws) : 0;
	free(seen);
	iht_destroy(&s->t, NULL, NULL);
	iht_stripes_destroy(&s->ws);
	iht_cage_chunk_free(s->ents, total * sizeof(*s->ents));
	free(th);
	free(wa);
	free(s);
	return 0;
}
