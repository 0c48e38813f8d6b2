/* scaling_ceiling.c - what 1 -> 2 threads can give on this machine: plain C
 * loops with nothing shared, the ceiling for the multi-core replay's
 * scaling rows (bench/bench_multicore.py --part ceiling).
 *
 * Each thread runs the same loop on its own memory: "compute" (xorshift,
 * no memory traffic) or "memory" (random 8-byte read-modify-writes into its
 * own 64 MiB array, one cache/TLB miss each, the access pattern of bucket
 * heads and conns in a table far larger than the caches).  A 2-thread run
 * does twice the work of a 1-thread run; its speed-up is 2 * t1 / t2.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CEIL_ARRAY ((size_t)64 << 20)

struct ceil_arg {
	int mode;		/* 0 compute, 1 memory */
	size_t n;		/* iterations */
	uint64_t *a;		/* CEIL_ARRAY bytes, mode 1 */
	uint64_t seed, out;
};

static void *ceil_loop(void *p)
{
	struct ceil_arg *c = p;
	uint64_t x = c->seed | 1, s = 0;
	size_t words = CEIL_ARRAY / 8;

	for (size_t i = 0; i < c->n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (c->mode)
			c->a[x % words] += i;
		else
			s += x;
	}
	c->out = s;
	return NULL;
}

static double ceil_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Seconds for @threads (1 or 2) threads each running @n iterations of
 * loop @mode; -1 on bad arguments or no memory. */
double ceiling_run(int mode, int threads, size_t n)
{
	struct ceil_arg args[2];
	pthread_t th[2];
	double t = -1;
	int k, started = 0;

	if (threads < 1 || threads > 2 || mode < 0 || mode > 1)
		return -1;
	memset(args, 0, sizeof(args));
	for (k = 0; k < threads; k++) {
		args[k].mode = mode;
		args[k].n = n;
		args[k].seed = 0x9E3779B97F4A7C15ull * (k + 1);
		if (mode) {
			args[k].a = malloc(CEIL_ARRAY);
			if (!args[k].a)
				goto out;
			memset(args[k].a, 1, CEIL_ARRAY);	/* fault in */
		}
	}
	t = ceil_now();
	for (k = 1; k < threads; k++)
		if (pthread_create(&th[k], NULL, ceil_loop, &args[k]) == 0)
			started = k;
	ceil_loop(&args[0]);
	for (k = 1; k <= started; k++)
		pthread_join(th[k], NULL);
	t = ceil_now() - t;
	if (started != threads - 1)
		t = -1;
out:
	for (k = 0; k < threads; k++)
		free(args[k].a);
	return t;
}
