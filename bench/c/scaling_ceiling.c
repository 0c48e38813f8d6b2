/* scaling_ceiling.c - what 1 -> 2 threads can give on this machine: plain C
 * loops with nothing shared, the ceiling for the multi-core replay's
 * scaling rows (bench/bench_multicore.py --part ceiling).
 *
 * Each thread runs the same loop on its own memory: "compute" (xorshift,
 * no memory traffic) or "memory" (random 8-byte read-modify-writes into its
 * own 64 MiB array, one cache/TLB miss each, the access pattern of bucket
 * heads and conns in a table far larger than the caches).  A 2-thread run
 * does twice the work of a 1-thread run; its speed-up is 2 * t1 / t2.
 *
 * "trace" (mode 2) is what the replay adds to "memory": one trace of
 * columns as PacketBatch holds them (60 bytes a row), shared by the
 * threads, each taking the rows whose shard byte is its own (the client
 * hash split of ipvs_mt_rows.h, walked branch-free as ipvs_mt_cursor_next
 * walks it), reading every column of its rows and doing one random
 * read-modify-write into its own 64 MiB array per row, a few rows after
 * a prefetch.  Here the 2-thread run does the SAME rows as the 1-thread
 * run, split: its speed-up is t1 / t2.  What it shows over "memory": the
 * cost of every thread streaming every line of the columns for half of
 * the rows.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CEIL_ARRAY ((size_t)64 << 20)

/* The trace of mode 2, built once per ceiling_run. */
struct ceil_trace {
	size_t n;
	uint8_t *saddr, *daddr, *proto, *af, *flags, *dir, *shard;
	uint16_t *sport, *dport;
	uint32_t *fwmark, *len;
	double *time;
};

struct ceil_arg {
	int mode;		/* 0 compute, 1 memory, 2 trace */
	int k, threads;		/* mode 2: own shard byte, of how many */
	const struct ceil_trace *tr;
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

#define CEIL_BATCH 256		/* own rows found at a time */
#define CEIL_AHEAD 16		/* prefetch distance, own rows */

static inline size_t ceil_slot(const struct ceil_trace *tr, size_t i,
			       size_t words)
{
	uint64_t h;

	memcpy(&h, &tr->saddr[i * 16], 8);
	h = (h ^ tr->sport[i]) * 0x9E3779B97F4A7C15ull;
	return (size_t)(h >> 20) % words;
}

static void *ceil_trace_loop(void *p)
{
	struct ceil_arg *c = p;
	const struct ceil_trace *tr = c->tr;
	size_t words = CEIL_ARRAY / 8, own[CEIL_BATCH + CEIL_AHEAD];
	size_t scan = 0, m = 0, pos = 0;
	uint64_t s = 0;

	for (;;) {
		if (pos + CEIL_AHEAD >= m && scan < tr->n) {
			/* keep the ones not done yet, find more (no branch
			 * per row) */
			memmove(own, &own[pos], (m - pos) * sizeof(*own));
			m -= pos;
			pos = 0;
			for (; scan < tr->n && m < CEIL_BATCH + CEIL_AHEAD;
			     scan++) {
				own[m] = scan;
				m += c->threads == 1 ||
				     tr->shard[scan] == (uint8_t)c->k;
			}
		}
		if (pos == m)
			break;
		if (pos + CEIL_AHEAD < m)
			__builtin_prefetch(&c->a[ceil_slot(tr,
					own[pos + CEIL_AHEAD], words)], 1);
		size_t i = own[pos++];
		uint64_t v = tr->proto[i] + tr->af[i] + tr->flags[i] +
			tr->dir[i] + tr->dport[i] + tr->fwmark[i] +
			tr->len[i] + (uint64_t)(tr->time[i] * 250.0) +
			tr->daddr[i * 16];

		c->a[ceil_slot(tr, i, words)] += v;
		s += v;
	}
	c->out = s;
	return NULL;
}

static void ceil_trace_free(struct ceil_trace *tr)
{
	free(tr->saddr);
	free(tr->daddr);
	free(tr->proto);
	free(tr->af);
	free(tr->flags);
	free(tr->dir);
	free(tr->shard);
	free(tr->sport);
	free(tr->dport);
	free(tr->fwmark);
	free(tr->len);
	free(tr->time);
}

/* @n rows of IPv4 TCP packets from random clients; the shard byte of a
 * row is its client's (one bit of a multiplicative hash: 2 threads).
 * Returns 0 or -1 (no memory). */
static int ceil_trace_build(struct ceil_trace *tr, size_t n)
{
	uint64_t x = 0x2545F4914F6CDD1Dull;

	tr->n = n;
	tr->saddr = calloc(n, 16);
	tr->daddr = calloc(n, 16);
	tr->proto = malloc(n);
	tr->af = malloc(n);
	tr->flags = malloc(n);
	tr->dir = calloc(n, 1);
	tr->shard = malloc(n);
	tr->sport = malloc(n * 2);
	tr->dport = malloc(n * 2);
	tr->fwmark = calloc(n, 4);
	tr->len = malloc(n * 4);
	tr->time = malloc(n * 8);
	if (!tr->saddr || !tr->daddr || !tr->proto || !tr->af || !tr->flags ||
	    !tr->dir || !tr->shard || !tr->sport || !tr->dport ||
	    !tr->fwmark || !tr->len || !tr->time)
		return -1;
	for (size_t i = 0; i < n; i++) {
		uint32_t ip;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		ip = (uint32_t)x;
		memcpy(&tr->saddr[i * 16], &ip, 4);
		memset(&tr->daddr[i * 16], 1, 4);
		tr->sport[i] = (uint16_t)(x >> 32);
		tr->dport[i] = 80;
		tr->proto[i] = 6;
		tr->af[i] = 2;
		tr->flags[i] = 0x10;
		tr->len[i] = 100;
		tr->time[i] = (double)i * 1e-5;
		tr->shard[i] = (uint8_t)((ip * 0x9E3779B1u) >> 31);
	}
	return 0;
}

static double ceil_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Seconds for @threads (1 or 2) threads each running @n iterations of
 * loop @mode (mode 2: the two share @n trace rows); -1 on bad arguments
 * or no memory. */
double ceiling_run(int mode, int threads, size_t n)
{
	struct ceil_arg args[2];
	struct ceil_trace tr;
	void *(*loop)(void *) = mode == 2 ? ceil_trace_loop : ceil_loop;
	pthread_t th[2];
	double t = -1;
	int k, started = 0;

	memset(&tr, 0, sizeof(tr));
	memset(args, 0, sizeof(args));
	if (threads < 1 || threads > 2 || mode < 0 || mode > 2)
		return -1;
	if (mode == 2 && ceil_trace_build(&tr, n))
		goto out;
	for (k = 0; k < threads; k++) {
		args[k].mode = mode;
		args[k].n = n;
		args[k].k = k;
		args[k].threads = threads;
		args[k].tr = &tr;
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
		if (pthread_create(&th[k], NULL, loop, &args[k]) == 0)
			started = k;
	loop(&args[0]);
	for (k = 1; k <= started; k++)
		pthread_join(th[k], NULL);
	t = ceil_now() - t;
	if (started != threads - 1)
		t = -1;
out:
	for (k = 0; k < threads; k++)
		free(args[k].a);
	ceil_trace_free(&tr);
	return t;
}
