/* table_stress.c - pthread stress of ipvs_table.h, no Python, no GIL.
 *
 * Readers look up a fixed set of present keys (must always hit with the
 * right value) and absent keys (must never hit); a writer inserts and
 * removes keys of its own range; a resizer rebuilds the table again and
 * again (sizes and lfactors); optionally a second writer unlinks by node.
 * tests/core/test_table_cstress.py compiles this with setup.py's flags
 * (plus ASan/UBSan when the suite runs under scripts/asan-test.sh) and
 * calls iht_stress() through ctypes.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "iht_bytes.h"

struct stress {
	struct iht_table t;
	struct ihb_ctx c;
	uint64_t n_present;
	_Atomic int stop;
	_Atomic uint64_t lookups, misses, wrong, writes;
	uint64_t writer_live;		/* writer's own count at the end */
	uint64_t seed;
};

static void key_of(uint64_t i, uint8_t k[16])
{
	uint64_t hi = i * 0x9E3779B97F4A7C15ull;

	memcpy(k, &i, 8);
	memcpy(k + 8, &hi, 8);
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *reader(void *arg)
{
	struct stress *s = arg;
	uint64_t rnd = s->seed ^ (uint64_t)(uintptr_t)&rnd, local = 0;
	uint8_t k[16];

	while (!atomic_load(&s->stop)) {
		for (int j = 0; j < 256; j++) {
			uint64_t i = 1 + xorshift(&rnd) % s->n_present, v = 0;

			key_of(i, k);
			if (!ihb_lookup(&s->t, &s->c, k, &v))
				atomic_fetch_add(&s->misses, 1);
			else if (v != i * 3)
				atomic_fetch_add(&s->wrong, 1);
			key_of((1ull << 62) + (xorshift(&rnd) & 0xffff), k);
			if (ihb_lookup(&s->t, &s->c, k, &v))
				atomic_fetch_add(&s->wrong, 1);
		}
		local += 512;
	}
	atomic_fetch_add(&s->lookups, local);
	return NULL;
}

/* Inserts and removes keys 2^40 + [0, 4096); remove both by key and, for
 * odd rounds, by node (iht_unlink through ihb_unlink_one: only this thread
 * removes these keys, as ihb_unlink_one requires). */
static void *writer(void *arg)
{
	struct stress *s = arg;
	static uint8_t live[4096];
	uint64_t rnd = s->seed * 7 + 1, n = 0, live_n = 0;
	uint8_t k[16];

	memset(live, 0, sizeof(live));
	while (!atomic_load(&s->stop)) {
		uint64_t j = xorshift(&rnd) & 4095, v = 0;

		key_of((1ull << 40) + j, k);
		if (live[j]) {
			int ok = (n & 1) ? ihb_unlink_one(&s->t, &s->c, k, &v)
					 : ihb_remove(&s->t, &s->c, k, &v);
			if (!ok || v != j)
				atomic_fetch_add(&s->wrong, 1);
			live[j] = 0;
			live_n--;
		} else {
			if (ihb_insert(&s->t, &s->c, k, j) < 0)
				atomic_fetch_add(&s->wrong, 1);
			live[j] = 1;
			live_n++;
		}
		n++;
	}
	s->writer_live = live_n;
	atomic_fetch_add(&s->writes, n);
	return NULL;
}

/* Run the stress for @ms milliseconds with @nreaders reader threads and
 * @nresizes rebuilds at least.  Fills out[0..5]: lookups, misses, wrong,
 * writes, resizes, final count mismatch (0 when exact).  Returns 0, or -1
 * if the table could not be built. */
int iht_stress(int nreaders, int ms, int nresizes, uint64_t n_present,
	       uint64_t seed, uint64_t out[6])
{
	struct iht_lock_profile prof = IHT_PROFILE_CONN;
	struct stress *s = calloc(1, sizeof(*s));
	pthread_t th[17];
	struct timespec t0, now;
	uint8_t k[16];
	int nth = 0, sizes[] = { 8, 12, 16, 10, 18, 14 };
	int resizes = 0;

	if (!s || nreaders > 15)
		return -1;
	prof.ncpus = 4;
	s->c.key_size = 16;
	s->c.entry_size = sizeof(struct ihb_entry) + 16;
	s->n_present = n_present;
	s->seed = seed | 1;
	if (iht_init(&s->t, 8, 20, 0, &prof, 0, ihb_node_hash, &s->c)) {
		free(s);
		return -1;
	}
	for (uint64_t i = 1; i <= n_present; i++) {
		key_of(i, k);
		ihb_insert(&s->t, &s->c, k, i * 3);
		if (iht_resize_pending(&s->t))
			iht_maybe_resize(&s->t);
	}
	for (int i = 0; i < nreaders; i++)
		pthread_create(&th[nth++], NULL, reader, s);
	pthread_create(&th[nth++], NULL, writer, s);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (resizes % 7 == 6) {
			iht_set_lfactor(&s->t, (resizes / 7) % 3 - 1);
			iht_maybe_resize(&s->t);
		} else {
			iht_resize(&s->t, (int64_t)1 << sizes[resizes % 6]);
		}
		resizes++;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (resizes >= nresizes &&
		    (now.tv_sec - t0.tv_sec) * 1000 +
		    (now.tv_nsec - t0.tv_nsec) / 1000000 >= ms)
			break;
	}
	atomic_store(&s->stop, 1);
	for (int i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	out[0] = atomic_load(&s->lookups);
	out[1] = atomic_load(&s->misses);
	out[2] = atomic_load(&s->wrong);
	out[3] = atomic_load(&s->writes);
	out[4] = iht_resizes(&s->t);
	out[5] = (uint64_t)(iht_count(&s->t) -
			    (int64_t)(n_present + s->writer_live));
	/* walk: every present key exactly once */
	{
		struct iht_walker w;
		uint64_t seen = 0;

		iht_walk_start(&s->t, &w);
		while (iht_walk_next(&w))
			seen++;
		iht_walk_stop(&w);
		if (seen != n_present + s->writer_live)
			out[5] += 1000000;
	}
	iht_destroy(&s->t, ihb_free_node, &s->t);
	free(s);
	return 0;
}
