/* iht_compat.h - CPU relax / backoff shared by the table's locks.
 *
 * The kernel spins with preemption disabled, so a lock holder is never
 * descheduled.  In user space it can be (2 cores, several threads), so every
 * spin loop here backs off to sched_yield() after IHT_SPIN_LIMIT polls:
 * spinning on a descheduled holder would burn the holder's own time slice.
 */
#ifndef IPVS_PY_IHT_COMPAT_H
#define IPVS_PY_IHT_COMPAT_H

#include <sched.h>

/* Polls before yielding.  pause takes ~10-140 cycles depending on the CPU
 * generation, so 1024 polls are very roughly 5-50 us: longer than any
 * critical section of the table (at most 64 moves), so a spinner yields
 * only when the holder is not running. */
#define IHT_SPIN_LIMIT 1024u

static inline void iht_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ __volatile__("pause" ::: "memory");
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/* One step of a polite spin: pause, and yield the CPU every
 * IHT_SPIN_LIMIT steps.  @spins: the caller's counter, start at 0. */
static inline void iht_spin_wait(unsigned int *spins)
{
	if (++*spins >= IHT_SPIN_LIMIT) {
		*spins = 0;
		sched_yield();
	} else {
		iht_cpu_relax();
	}
}

#endif /* IPVS_PY_IHT_COMPAT_H */
