/* seqcount.h - sequence counter (the kernel's seqcount_t) in C11 atomics.
 *
 * The table's resizer moves entries to the new table inside a writer
 * section; a reader that walked a bucket while its entries moved sees the
 * count change (or odd) and walks it again.  Writers must be serialised by
 * the caller (bucket stripe spin lock, or being the only resizer).
 *
 * Orders follow Boehm, "Can seqlocks get along with programming language
 * memory models?" (MSPC 2012): the writer's odd store is followed by a
 * release fence, so no data store moves above it; the reader's data loads
 * are followed by an acquire fence, so none moves below the re-check.  All
 * data the readers look at (next pointers, hash keys) are atomics, so there
 * is no data race for the sanitizers to flag either.
 */
#ifndef IPVS_PY_SEQCOUNT_H
#define IPVS_PY_SEQCOUNT_H

#include <stdatomic.h>
#include <stdint.h>

#include "iht_compat.h"

typedef struct {
	_Atomic uint32_t seq;
} iht_seqcount;

static inline void iht_seqcount_init(iht_seqcount *s)
{
	atomic_init(&s->seq, 0);
}

/* Snapshot the count without waiting for a writer to finish.  The result
 * may be odd (writer active): iht_read_seqcount_retry() then says "retry". */
static inline uint32_t iht_raw_read_seqcount(iht_seqcount *s)
{
	return atomic_load_explicit(&s->seq, memory_order_acquire);
}

/* Kernel read_seqcount_begin(): wait until no writer is active, then
 * return the (even) count.  Spins politely (see iht_compat.h). */
static inline uint32_t iht_read_seqcount_begin(iht_seqcount *s)
{
	unsigned int spins = 0;
	uint32_t v;

	while ((v = atomic_load_explicit(&s->seq, memory_order_acquire)) & 1)
		iht_spin_wait(&spins);
	return v;
}

/* Nonzero if the section that began with @start must be repeated: a writer
 * was active at @start or has run since. */
static inline int iht_read_seqcount_retry(iht_seqcount *s, uint32_t start)
{
	atomic_thread_fence(memory_order_acquire);
	return (start & 1) ||
	       atomic_load_explicit(&s->seq, memory_order_relaxed) != start;
}

/* Open a writer section (count becomes odd).  Caller serialises writers. */
static inline void iht_write_seqcount_begin(iht_seqcount *s)
{
	uint32_t v = atomic_load_explicit(&s->seq, memory_order_relaxed);

	atomic_store_explicit(&s->seq, v + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

/* Close the writer section (count becomes even again). */
static inline void iht_write_seqcount_end(iht_seqcount *s)
{
	uint32_t v = atomic_load_explicit(&s->seq, memory_order_relaxed);

	atomic_store_explicit(&s->seq, v + 1, memory_order_release);
}

#endif /* IPVS_PY_SEQCOUNT_H */
