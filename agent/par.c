/* Work in flight: `kiln run --parallel N`. N slot threads each carry one action at a time
 * (LLM call -> evaluation in its forked child -> record); one search lock serialises every
 * touch of the coordinator's state and is released only while a slot waits for the LLM or
 * for its evaluation child. Iterations are numbered at dispatch; budgets count what is in
 * flight (an iteration held per attempt, an estimated cost per LLM call). */
#include "agent/agent_int.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct kiln_par {
	pthread_mutex_t lock;
	pthread_cond_t changed;  /* a slot finished a step: idle slots look again */
	kiln_err err;            /* the first slot error */
	char msg[1024];          /* its message (errors are per thread) */
	size_t busy;             /* slots in a step */
};

static _Thread_local int this_slot = -1; /* the slot a thread carries */

typedef struct slot_thread {
	kiln_search *s;
	void *slot;
	kiln_slot_fn fn;
	pthread_t tid;
	int index;
} slot_thread;

/* NVIDIA's driver lists one folder per GPU here; CUDA_VISIBLE_DEVICES narrows it. */
static size_t gpu_count(void)
{
	const char *vis = getenv("CUDA_VISIBLE_DEVICES");
	if (vis && *vis) {
		size_t n = 1;
		for (const char *p = vis; *p; p++)
			n += *p == ',';
		return n;
	}
	DIR *d = opendir("/proc/driver/nvidia/gpus");
	size_t n = 0;
	for (struct dirent *de; d && (de = readdir(d));)
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n ? n : 1;
}

size_t kiln_search_width(const kiln_search *s)
{
	if (kiln_mpi_workers() > 0) /* under mpirun: one slot per worker rank */
		return (size_t)kiln_mpi_workers();
	if (s->o->parallel > 0)
		return s->o->parallel;
	return strcmp(s->device, "cuda") == 0 ? gpu_count() : 1;
}

int kiln_search_gpu_of_slot(const kiln_search *s)
{
	if (this_slot < 0 || strcmp(s->device, "cuda") != 0)
		return -1;
	return this_slot % (int)gpu_count();
}

int kiln_search_worker_rank(void)
{
	if (kiln_mpi_workers() <= 0)
		return 0;
	return (this_slot < 0 ? 0 : this_slot) % kiln_mpi_workers() + 1;
}

void kiln_search_lock(kiln_search *s)
{
	if (s->par)
		pthread_mutex_lock(&s->par->lock);
}

void kiln_search_unlock(kiln_search *s)
{
	if (s->par)
		pthread_mutex_unlock(&s->par->lock);
}

static int64_t dispatched(const kiln_search *s)
{
	return s->iteration - (int64_t)s->nholes;
}

bool kiln_search_reserve(kiln_search *s)
{
	const kiln_run_options *o = s->o;
	if (o->iterations > 0 && dispatched(s) + s->reserved >= o->iterations)
		return false;
	s->reserved++;
	return true;
}

void kiln_search_unreserve(kiln_search *s)
{
	if (s->reserved > 0)
		s->reserved--;
}

bool kiln_search_take_hole(kiln_search *s, int64_t it)
{
	for (size_t i = 0; i < s->nholes; i++)
		if (s->holes[i] == it) {
			memmove(s->holes + i, s->holes + i + 1, (s->nholes - i - 1) * sizeof *s->holes);
			s->nholes--;
			return true;
		}
	return false;
}

int64_t kiln_search_dispatch(kiln_search *s, bool reserved)
{
	if (reserved)
		kiln_search_unreserve(s);
	if (s->nholes) {
		int64_t it = s->holes[0];
		kiln_search_take_hole(s, it);
		return it;
	}
	return s->iteration++;
}

kiln_err kiln_search_find_holes(kiln_search *s, const int64_t *recorded, size_t n)
{
	free(s->holes);
	s->holes = NULL;
	s->nholes = 0;
	if (s->iteration <= 0)
		return 0;
	unsigned char *seen = kiln_calloc((size_t)s->iteration, 1);
	if (!seen)
		return KILN_ENOMEM;
	size_t missing = (size_t)s->iteration;
	for (size_t i = 0; i < n; i++)
		if (recorded[i] >= 0 && recorded[i] < s->iteration && !seen[recorded[i]]) {
			seen[recorded[i]] = 1;
			missing--;
		}
	kiln_err e = 0;
	if (missing && !(s->holes = kiln_calloc(missing, sizeof *s->holes)))
		e = KILN_ENOMEM;
	for (int64_t it = 0; !e && it < s->iteration; it++)
		if (!seen[it])
			s->holes[s->nholes++] = it;
	free(seen);
	return e;
}

bool kiln_search_call_begin(kiln_search *s, double *held_usd, int64_t *held_tokens)
{
	const kiln_run_options *o = s->o;
	/* as one call at a time did, a call starts while what is spent and held is under the
	 * budget; each call in flight holds the session's mean call so far (0 before the first
	 * answer), so the spend passes the budget by at most the calls in flight */
	double usd = s->calls > 0 && isfinite(s->cost_usd) ? s->cost_usd / (double)s->calls : 0;
	int64_t tok = s->calls > 0 ? s->tokens / s->calls : 0;
	*held_usd = 0;
	*held_tokens = 0;
	if (o->max_cost > 0 && s->cost_usd + s->cost_inflight >= o->max_cost)
		return false;
	if (o->max_tokens > 0 && s->tokens + s->tokens_inflight >= o->max_tokens)
		return false;
	*held_usd = usd;
	*held_tokens = tok;
	s->cost_inflight += usd;
	s->tokens_inflight += tok;
	return true;
}

void kiln_search_call_end(kiln_search *s, double held_usd, int64_t held_tokens)
{
	s->cost_inflight -= held_usd;
	s->tokens_inflight -= held_tokens;
	s->calls++;
}

static void wait_changed(kiln_par *p)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 200 * 1000000L; /* a signal sets only a flag: look again soon */
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&p->changed, &p->lock, &ts);
}

static void *slot_main(void *arg)
{
	slot_thread *t = arg;
	kiln_search *s = t->s;
	kiln_par *p = s->par;
	this_slot = t->index;
	pthread_mutex_lock(&p->lock);
	bool done = false;
	while (!p->err && !done && !kiln_search_should_stop(s)) {
		bool idle = false;
		p->busy++;
		kiln_err e = t->fn(t->slot, &idle, &done);
		p->busy--;
		if (e && !p->err) {
			p->err = e;
			snprintf(p->msg, sizeof p->msg, "%s", kiln_error_last());
		}
		pthread_cond_broadcast(&p->changed);
		if (!e && idle && !done) {
			if (p->busy == 0) /* nothing in flight can open a new action */
				break;
			wait_changed(p);
		}
	}
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

kiln_err kiln_search_run_slots(kiln_search *s, void *const *slots, size_t n, kiln_slot_fn fn)
{
	kiln_par p;
	memset(&p, 0, sizeof p);
	slot_thread *t = kiln_calloc(n, sizeof *t);
	if (!t)
		return KILN_ENOMEM;
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.changed, NULL);
	s->par = &p;
	size_t started = 0;
	kiln_err e = 0;
	/* the caller holds no lock; slots start one by one under it */
	for (; started < n; started++) {
		t[started] = (slot_thread){s, slots[started], fn, 0, (int)started};
		int rc = pthread_create(&t[started].tid, NULL, slot_main, &t[started]);
		if (rc) {
			e = kiln_error_set(KILN_EIO, "starting slot %zu of %zu: %s", started + 1, n, strerror(rc));
			pthread_mutex_lock(&p.lock);
			p.err = e;
			snprintf(p.msg, sizeof p.msg, "%s", kiln_error_last());
			pthread_mutex_unlock(&p.lock);
			break;
		}
	}
	for (size_t i = 0; i < started; i++)
		pthread_join(t[i].tid, NULL);
	s->par = NULL;
	if (p.err)
		e = kiln_error_set(p.err, "%s", p.msg);
	pthread_cond_destroy(&p.changed);
	pthread_mutex_destroy(&p.lock);
	free(t);
	return e;
}
