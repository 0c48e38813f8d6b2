/* iht_mem.h - counted allocations for the table, visible to tracemalloc.
 *
 * Every byte the table (or a caller's entries, through iht_mem_alloc) takes
 * from malloc is added to a per-table counter by category and, when Python
 * is there and tracemalloc runs, registered in the tracemalloc domain
 * IHT_TRACE_DOMAIN (pandas' KHASH_TRACE_DOMAIN pattern).  The tests compare
 * both with what the table reports.  Counts are of requested bytes, as
 * tracemalloc counts them; malloc's own headers (8-16 bytes a block in
 * glibc) are not included.
 *
 * PyTraceMalloc_Track/Untrack take the GIL themselves when tracemalloc is
 * on (and return at once when it is off), so they are called only where no
 * table lock is held: see the locking table in ipvs_table.h.
 */
#ifndef IPVS_PY_IHT_MEM_H
#define IPVS_PY_IHT_MEM_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "iht_cage.h"

/* tracemalloc domain of all table memory ("IHT" in ASCII). */
#define IHT_TRACE_DOMAIN 0x494854u

enum iht_mem_cat {
	IHT_MEM_BUCKETS = 0,	/* bucket heads */
	IHT_MEM_LOCKS,		/* seqcounts, stripe locks, table headers */
	IHT_MEM_ENTRIES,	/* caller entries (iht_mem_alloc by caller) */
	IHT_MEM_META,		/* retire list and other bookkeeping */
	IHT_MEM_NCAT
};

struct iht_mem {
	_Atomic int64_t bytes[IHT_MEM_NCAT];
	_Atomic int64_t blocks[IHT_MEM_NCAT];
};

static inline void iht_mem_init(struct iht_mem *m)
{
	for (int i = 0; i < IHT_MEM_NCAT; i++) {
		atomic_init(&m->bytes[i], 0);
		atomic_init(&m->blocks[i], 0);
	}
}

static inline void iht_mem_track(struct iht_mem *m, int cat, void *p,
				 size_t size)
{
	atomic_fetch_add_explicit(&m->bytes[cat], (int64_t)size,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&m->blocks[cat], 1, memory_order_relaxed);
#ifdef Py_PYTHON_H
	(void)PyTraceMalloc_Track(IHT_TRACE_DOMAIN, (uintptr_t)p, size);
#else
	(void)p;
#endif
}

/* malloc(@size) (zeroed if @zero) counted under @cat; NULL on failure.
 * Entries (IHT_MEM_ENTRIES) come from the cage instead, zeroed, because
 * the table links them by 32-bit reference (iht_cage.h); they are at most
 * IHT_CAGE_SMALL_MAX bytes.  Context: any thread, no table lock held. */
static inline void *iht_mem_alloc(struct iht_mem *m, int cat, size_t size,
				  int zero)
{
	void *p;

	if (cat == IHT_MEM_ENTRIES)
		p = iht_cage_alloc(size);
	else
		p = zero ? calloc(1, size ? size : 1) : malloc(size ? size : 1);

	if (p)
		iht_mem_track(m, cat, p, size);
	return p;
}

/* free() a block from iht_mem_alloc(@cat, @size).  NULL is a no-op. */
static inline void iht_mem_free(struct iht_mem *m, int cat, void *p,
				size_t size)
{
	if (!p)
		return;
	atomic_fetch_sub_explicit(&m->bytes[cat], (int64_t)size,
				  memory_order_relaxed);
	atomic_fetch_sub_explicit(&m->blocks[cat], 1, memory_order_relaxed);
#ifdef Py_PYTHON_H
	(void)PyTraceMalloc_Untrack(IHT_TRACE_DOMAIN, (uintptr_t)p);
#endif
	if (cat == IHT_MEM_ENTRIES)
		iht_cage_free(p, size);
	else
		free(p);
}

/* Large zeroed arrays (bucket heads): mmap'd, 2 MiB aligned and advised
 * as transparent huge pages, so random bucket accesses of big tables do
 * not also miss the TLB (THP is "madvise" on Debian).  Below
 * IHT_HUGE_MIN, plain calloc.  Free with iht_mem_free_big(). */
#define IHT_HUGE_MIN ((size_t)2 << 20)

static inline void *iht_mem_alloc_big(struct iht_mem *m, int cat, size_t size)
{
	void *p;

	if (size < IHT_HUGE_MIN)
		return iht_mem_alloc(m, cat, size, 1);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_HUGEPAGE
	(void)madvise(p, size, MADV_HUGEPAGE);
#endif
	iht_mem_track(m, cat, p, size);
	return p;
}

static inline void iht_mem_free_big(struct iht_mem *m, int cat, void *p,
				    size_t size)
{
	if (!p)
		return;
	if (size < IHT_HUGE_MIN) {
		iht_mem_free(m, cat, p, size);
		return;
	}
	atomic_fetch_sub_explicit(&m->bytes[cat], (int64_t)size,
				  memory_order_relaxed);
	atomic_fetch_sub_explicit(&m->blocks[cat], 1, memory_order_relaxed);
#ifdef Py_PYTHON_H
	(void)PyTraceMalloc_Untrack(IHT_TRACE_DOMAIN, (uintptr_t)p);
#endif
	munmap(p, size);
}

static inline int64_t iht_mem_bytes(struct iht_mem *m, int cat)
{
	return atomic_load_explicit(&m->bytes[cat], memory_order_relaxed);
}

static inline int64_t iht_mem_blocks(struct iht_mem *m, int cat)
{
	return atomic_load_explicit(&m->blocks[cat], memory_order_relaxed);
}

#endif /* IPVS_PY_IHT_MEM_H */
