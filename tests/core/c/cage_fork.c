/* cage_fork.c - fork() while another thread is inside the entry cage's
 * allocator (include/iht_cage.h).
 *
 * A thread allocates and frees cage blocks in a loop, so it holds the
 * allocator lock much of the time; the caller forks @forks times and each
 * child allocates once.  Without the pthread_atfork handlers a child can
 * inherit the lock held and wait for ever: the child arms alarm(@secs),
 * so it then dies of SIGALRM and the fork counts as hung (and the loop
 * stops: one is enough).
 *
 * Entry: int cage_fork(int forks, int secs, uint64_t *out)
 *   out[0] children that exited 0, out[1] children that hung or failed.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "iht_cage.h"

static _Atomic int stop;

static void *churn(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		void *p[16];

		for (int i = 0; i < 16; i++)
			p[i] = iht_cage_alloc(48);
		for (int i = 0; i < 16; i++)
			iht_cage_free(p[i], 48);
	}
	return NULL;
}

int cage_fork(int forks, int secs, uint64_t *out)
{
	pthread_t th;

	out[0] = out[1] = 0;
	if (!iht_cage_alloc(16))		/* reserve the cage first */
		return -1;
	atomic_store(&stop, 0);
	if (pthread_create(&th, NULL, churn, NULL))
		return -1;
	for (int i = 0; i < forks; i++) {
		int status;
		pid_t pid = fork();

		if (pid < 0)
			break;
		if (pid == 0) {
			/* the default action (death): pytest-timeout's
			 * handler, inherited, would only set a flag */
			signal(SIGALRM, SIG_DFL);
			alarm((unsigned int)secs);
			_exit(iht_cage_alloc(48) ? 0 : 1);
		}
		if (waitpid(pid, &status, 0) != pid)
			break;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			out[0]++;
		else
			out[1]++;
		if (out[1])
			break;		/* one hung child proves the point */
	}
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	return 0;
}
