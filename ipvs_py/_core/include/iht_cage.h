/* iht_cage.h - one address range for every table entry, so that a 32-bit
 * reference can stand for a node pointer.
 *
 * Why: a bucket head and a node's next link are the table's whole
 * overhead.  As 64-bit pointers (8 B head, 8 B next + 4 B hash_key) the
 * kernel's sizing, which keeps between 1 and 2 buckets per entry at
 * lfactor 0, costs 20-32 B per entry; as 32-bit references into one
 * reserved range (4 B head, 8 B node) it costs 12-16 B (bench/bench_table.py
 * "bytes/entry").  JVMs and V8 call this "compressed pointers".
 *
 * The cage is one PROT_NONE reservation of up to IHT_CAGE_MAX bytes (virtual
 * address space only: nothing is committed or accounted until used), made
 * on first use.  A reference counts 8-byte units from its base, 0 meaning
 * NULL, so nodes must be 8-byte aligned and never at offset 0; a bucket head
 * keeps ref << 1 with the lock in bit 0, which is why the cage is at most
 * 2^31 units (16 GiB).  The range is committed (mprotect read/write, advised
 * as transparent huge pages) in IHT_CAGE_COMMIT steps as it is handed out.
 *
 * Two allocators share it:
 * - chunks (iht_cage_chunk_alloc): large, 2 MiB-aligned, zeroed blocks (the
 *   conn slab).  A freed chunk's pages go back to the kernel
 *   (MADV_DONTNEED, so it reads as zeros again) and the chunk is reused for
 *   the next request of the same size.
 * - small blocks (iht_cage_alloc, up to IHT_CAGE_SMALL_MAX bytes): size
 *   classes of 16 bytes carved from 64 KiB runs, each class with a free
 *   list.  Blocks of a class that is a multiple of 64 bytes are 64-byte
 *   aligned (one cache line for a 64-byte service entry).  Memory of freed
 *   blocks is kept for reuse by the same class, never returned.
 *
 * Every translation unit (each Cython extension module) has its own cage:
 * a node must be linked only into tables compiled in the module that
 * allocated it, which is how the modules use them.
 *
 * ASan: free blocks and unused parts of runs are poisoned, so a use after
 * free or an overflow into a neighbour is reported as it would be for
 * malloc'd memory.
 *
 * Context: any thread, no table lock held (a mutex guards the free lists
 * and the commit pointer; see the locking table in ipvs_table.h).
 */
#ifndef IPVS_PY_IHT_CAGE_H
#define IPVS_PY_IHT_CAGE_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define IHT_CAGE_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define IHT_CAGE_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define IHT_CAGE_POISON(p, n) ((void)(p), (void)(n))
#define IHT_CAGE_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define IHT_REF_SHIFT		3			/* 8-byte units */
#define IHT_CAGE_MAX		((size_t)16 << 30)	/* 2^31 units */
#define IHT_CAGE_MIN		((size_t)256 << 20)	/* smallest reservation */
#define IHT_CAGE_COMMIT		((size_t)2 << 20)	/* commit step, huge page */
#define IHT_CAGE_RUN		((size_t)64 << 10)	/* small-block run */
#define IHT_CAGE_SMALL_MAX	2048			/* Table(key_size=1024) */
#define IHT_CAGE_NCLASS		(IHT_CAGE_SMALL_MAX / 16)
#define IHT_CAGE_NCHUNK		8			/* chunk sizes kept */

typedef uint32_t iht_ref;

struct iht_cage_free {
	struct iht_cage_free *next;
};

struct iht_cage_chunks {
	size_t size;			/* 0: unused slot */
	struct iht_cage_free *list;	/* freed chunks of this size */
};

struct iht_cage {
	char *base;			/* NULL until the first use */
	size_t size;			/* reserved bytes */
	size_t top;			/* handed out: [base, base + top) */
	size_t committed;		/* read/write: [base, base + committed) */
	pthread_mutex_t lock;
	struct iht_cage_free *free[IHT_CAGE_NCLASS];
	char *run[IHT_CAGE_NCLASS];	/* current run's next block */
	char *run_end[IHT_CAGE_NCLASS];
	struct iht_cage_chunks chunks[IHT_CAGE_NCHUNK];
	int error;			/* reservation failed: its errno */
};

static struct iht_cage iht_cage_g = { .lock = PTHREAD_MUTEX_INITIALIZER };
static pthread_once_t iht_cage_once = PTHREAD_ONCE_INIT;

/* Base of the cage for reference decoding: set once, before any node
 * exists, then only read. */
static char *iht_cage_base_g;

/* fork() while another thread holds the allocator lock would leave the
 * child's copy locked for ever; as malloc does, hold it across the fork. */
static void iht_cage_atfork_lock(void) { pthread_mutex_lock(&iht_cage_g.lock); }
static void iht_cage_atfork_unlock(void) { pthread_mutex_unlock(&iht_cage_g.lock); }

static void iht_cage_reserve(void)
{
	struct iht_cage *c = &iht_cage_g;

	(void)pthread_atfork(iht_cage_atfork_lock, iht_cage_atfork_unlock,
			     iht_cage_atfork_unlock);

	/* The largest reservation the address space allows (RLIMIT_AS, or
	 * strict overcommit on some kernels), halving down to IHT_CAGE_MIN. */
	for (size_t sz = IHT_CAGE_MAX; sz >= IHT_CAGE_MIN; sz >>= 1) {
		void *p = mmap(NULL, sz + IHT_CAGE_COMMIT, PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			       -1, 0);
		uintptr_t a;

		if (p == MAP_FAILED)
			continue;
		/* 2 MiB-aligned base: chunks and huge pages line up. */
		a = ((uintptr_t)p + IHT_CAGE_COMMIT - 1) &
		    ~(uintptr_t)(IHT_CAGE_COMMIT - 1);
		if (a > (uintptr_t)p)
			munmap(p, a - (uintptr_t)p);
		if ((uintptr_t)p + IHT_CAGE_COMMIT > a)
			munmap((char *)a + sz,
			       (uintptr_t)p + IHT_CAGE_COMMIT - a);
		c->base = (char *)a;
		c->size = sz;
		/* Offset 0 is reference 0 (NULL): never hand it out. */
		c->top = 64;
		iht_cage_base_g = c->base;
		return;
	}
	c->error = ENOMEM;
}

/* Make [base, base + @need) usable.  Context: lock held. */
static inline int iht_cage_commit_locked(struct iht_cage *c, size_t need)
{
	size_t want;

	if (need <= c->committed)
		return 0;
	if (need > c->size)
		return -ENOMEM;
	want = (need + IHT_CAGE_COMMIT - 1) & ~(IHT_CAGE_COMMIT - 1);
	if (want > c->size)
		want = c->size;
	if (mprotect(c->base + c->committed, want - c->committed,
		     PROT_READ | PROT_WRITE))
		return -ENOMEM;
#ifdef MADV_HUGEPAGE
	(void)madvise(c->base + c->committed, want - c->committed,
		      MADV_HUGEPAGE);
#endif
	IHT_CAGE_POISON(c->base + c->committed, want - c->committed);
	c->committed = want;
	return 0;
}

/* Hand out @size bytes at the top, aligned to @align (a power of two).
 * Context: lock held.  NULL when the cage is full. */
static inline char *iht_cage_carve_locked(struct iht_cage *c, size_t size,
					  size_t align)
{
	size_t at = (c->top + align - 1) & ~(align - 1);

	if (at + size < at || iht_cage_commit_locked(c, at + size))
		return NULL;
	c->top = at + size;
	return c->base + at;
}

static inline struct iht_cage *iht_cage_get(void)
{
	pthread_once(&iht_cage_once, iht_cage_reserve);
	return iht_cage_g.base ? &iht_cage_g : NULL;
}

/* A zeroed block of @size bytes (1..IHT_CAGE_SMALL_MAX), 16-byte aligned,
 * 64-byte aligned when @size rounds up to a multiple of 64.  NULL on
 * ENOMEM (or a size out of range). */
static inline void *iht_cage_alloc(size_t size)
{
	struct iht_cage *c = iht_cage_get();
	size_t cls_size = (size + 15) & ~(size_t)15;
	unsigned int cls = (unsigned int)(cls_size / 16) - 1;
	char *p;

	if (!c || size == 0 || size > IHT_CAGE_SMALL_MAX)
		return NULL;
	pthread_mutex_lock(&c->lock);
	if (c->free[cls]) {
		struct iht_cage_free *f = c->free[cls];

		IHT_CAGE_UNPOISON(f, cls_size);
		c->free[cls] = f->next;
		p = (char *)f;
		IHT_CAGE_POISON(p, cls_size);	/* the tail past @size stays */
	} else {
		if (c->run[cls] + cls_size > c->run_end[cls] || !c->run[cls]) {
			/* Runs are 64 KiB aligned, so a class that is a
			 * multiple of 64 keeps its blocks on cache lines. */
			char *r = iht_cage_carve_locked(c, IHT_CAGE_RUN,
							IHT_CAGE_RUN);
			if (!r) {
				pthread_mutex_unlock(&c->lock);
				return NULL;
			}
			c->run[cls] = r;
			c->run_end[cls] = r + IHT_CAGE_RUN;
		}
		p = c->run[cls];
		c->run[cls] += cls_size;
	}
	pthread_mutex_unlock(&c->lock);
	IHT_CAGE_UNPOISON(p, size);
	memset(p, 0, size);
	return p;
}

/* Give back a block from iht_cage_alloc(@size).  NULL is a no-op. */
static inline void iht_cage_free(void *p, size_t size)
{
	struct iht_cage *c = &iht_cage_g;
	size_t cls_size = (size + 15) & ~(size_t)15;
	unsigned int cls = (unsigned int)(cls_size / 16) - 1;
	struct iht_cage_free *f = p;

	if (!p)
		return;
	/* Poisoned under the lock: once it is on the list another thread may
	 * take it, and a late poison would cover a live block.  The link is
	 * read only by the allocator, which unpoisons it first. */
	pthread_mutex_lock(&c->lock);
	IHT_CAGE_UNPOISON(p, cls_size);
	f->next = c->free[cls];
	c->free[cls] = f;
	IHT_CAGE_POISON(p, cls_size);
	pthread_mutex_unlock(&c->lock);
}

/* A zeroed, 2 MiB-aligned chunk of @size bytes (the conn slab).  NULL on
 * ENOMEM. */
static inline void *iht_cage_chunk_alloc(size_t size)
{
	struct iht_cage *c = iht_cage_get();
	void *p = NULL;

	if (!c || size == 0)
		return NULL;
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < IHT_CAGE_NCHUNK; i++)
		if (c->chunks[i].size == size && c->chunks[i].list) {
			struct iht_cage_free *f = c->chunks[i].list;

			IHT_CAGE_UNPOISON(f, sizeof(*f));
			c->chunks[i].list = f->next;
			f->next = NULL;		/* zeroed like the rest */
			p = f;
			break;
		}
	if (!p)
		p = iht_cage_carve_locked(c, size, IHT_CAGE_COMMIT);
	pthread_mutex_unlock(&c->lock);
	if (p)
		IHT_CAGE_UNPOISON(p, size);
	return p;
}

/* Give back a chunk from iht_cage_chunk_alloc(@size): its pages return to
 * the kernel (they read as zeros when reused). */
static inline void iht_cage_chunk_free(void *p, size_t size)
{
	struct iht_cage *c = &iht_cage_g;
	struct iht_cage_free *f = p;
	int slot = -1;

	if (!p)
		return;
	(void)madvise(p, size, MADV_DONTNEED);
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < IHT_CAGE_NCHUNK && slot < 0; i++)
		if (c->chunks[i].size == size)
			slot = i;
	for (int i = 0; i < IHT_CAGE_NCHUNK && slot < 0; i++)
		if (c->chunks[i].size == 0) {
			c->chunks[i].size = size;
			slot = i;
		}
	if (slot >= 0) {
		f->next = c->chunks[slot].list;
		c->chunks[slot].list = f;
	}
	/* With IHT_CAGE_NCHUNK distinct sizes in use the chunk's address
	 * range is not reused; its pages are returned all the same.
	 * Poisoned under the lock, as in iht_cage_free(). */
	IHT_CAGE_POISON(p, size);
	pthread_mutex_unlock(&c->lock);
}

/* Nonzero when [@p, @p + @size) lies in the cage (the table checks nodes
 * before linking them: a reference to memory outside would alias). */
static inline int iht_cage_contains(const void *p, size_t size)
{
	uintptr_t a = (uintptr_t)p, b = (uintptr_t)iht_cage_base_g;

	return iht_cage_base_g && a >= b + 64 &&
	       a - b + size <= iht_cage_g.size &&
	       !(a & ((1u << IHT_REF_SHIFT) - 1));
}

/* Reference <-> pointer.  0 <-> NULL. */
static inline iht_ref iht_ref_of(const void *p)
{
	return p ? (iht_ref)(((uintptr_t)p - (uintptr_t)iht_cage_base_g) >>
			     IHT_REF_SHIFT)
		 : 0;
}

static inline void *iht_ptr_of(iht_ref r)
{
	return r ? iht_cage_base_g + ((uintptr_t)r << IHT_REF_SHIFT) : NULL;
}

/* Bytes reserved and handed out (tests, docs). */
static inline void iht_cage_usage(size_t *reserved, size_t *used,
				  size_t *committed)
{
	struct iht_cage *c = iht_cage_get();

	if (!c) {
		*reserved = *used = *committed = 0;
		return;
	}
	pthread_mutex_lock(&c->lock);
	*reserved = c->size;
	*used = c->top;
	*committed = c->committed;
	pthread_mutex_unlock(&c->lock);
}

#endif /* IPVS_PY_IHT_CAGE_H */
