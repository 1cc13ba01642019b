/* Scale-out over MPI: under `mpirun -n K kiln run ...` rank 0 is the coordinator (LLM,
 * history.db, archive, world model) and ranks 1..K-1 evaluate. A job travels to a worker
 * as one JSON message (target, source, launch plan, defines, device, seeds, deadline); the
 * worker runs it in its own forked child exactly as the local path does and sends back
 * the child's answer (its result JSON and how it ended). Slot i of the search talks only
 * to rank i+1, so each rank has at most one job. Every MPI call is serialised by one
 * mutex (MPI_THREAD_SERIALIZED); waits poll with short sleeps so idle ranks leave the
 * cores to the emulator. A rank that dies ends the job (MPI's default); --resume goes on. */
#include "agent/agent_int.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "profile/profile.h"

/* Launched by mpirun / srun: the launchers' variables (a plain `kiln run` never starts MPI). */
static int env_int(const char *const *names, int dflt)
{
	for (size_t i = 0; names[i]; i++) {
		const char *v = getenv(names[i]);
		if (v && *v)
			return atoi(v);
	}
	return dflt;
}

static const char *const size_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS", NULL};
static const char *const rank_vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", NULL};

#ifdef KILN_HAVE_MPI
#include <mpi.h>
#include <pthread.h>
#include <time.h>

enum { TAG_JOB = 1, TAG_RESULT = 2, TAG_QUIT = 3 };

static bool started;
static int world_rank, world_size;
static pthread_mutex_t mpi_lock = PTHREAD_MUTEX_INITIALIZER;

static void nap_ms(long ms)
{
	struct timespec ts = {0, ms * 1000000L};
	nanosleep(&ts, NULL);
}

static void node_place(void);

kiln_err kiln_mpi_start(int *rank, int *size)
{
	*rank = 0;
	*size = 1;
	if (env_int(size_vars, 0) <= 0 && env_int(rank_vars, -1) < 0)
		return 0; /* not launched by mpirun / srun */
	int provided = 0;
	if (MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
		return kiln_error_set(KILN_EIO, "MPI_Init_thread failed");
	started = true;
	MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
	MPI_Comm_size(MPI_COMM_WORLD, &world_size);
	*rank = world_rank;
	*size = world_size;
	node_place();
	if (provided < MPI_THREAD_SERIALIZED && world_size > 1)
		return kiln_error_set(KILN_EINVAL, "this MPI library gives thread level %d; kiln needs MPI_THREAD_SERIALIZED", provided);
	return 0;
}

int kiln_mpi_workers(void)
{
	return started && world_rank == 0 && world_size > 1 ? world_size - 1 : 0;
}

/* Waits (polling, the lock free between polls) for a message from src with tag (or any
 * tag when tag < 0); returns it NUL-terminated in *out and its tag. */
static kiln_err recv_text(char **out, int *got_tag, int src, int tag)
{
	MPI_Status st;
	for (;;) {
		int flag = 0;
		pthread_mutex_lock(&mpi_lock);
		MPI_Iprobe(src, tag < 0 ? MPI_ANY_TAG : tag, MPI_COMM_WORLD, &flag, &st);
		if (flag) {
			int n = 0;
			MPI_Get_count(&st, MPI_CHAR, &n);
			char *buf = malloc((size_t)n + 1);
			if (!buf) {
				pthread_mutex_unlock(&mpi_lock);
				return KILN_ENOMEM;
			}
			MPI_Recv(buf, n, MPI_CHAR, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
			pthread_mutex_unlock(&mpi_lock);
			buf[n] = 0;
			*out = buf;
			*got_tag = st.MPI_TAG;
			return 0;
		}
		pthread_mutex_unlock(&mpi_lock);
		nap_ms(5);
	}
}

static kiln_err send_text(const char *text, int dst, int tag)
{
	size_t n = text ? strlen(text) : 0;
	if (n > (size_t)0x7fffffff)
		return kiln_error_set(KILN_EOVERFLOW, "an MPI message of %zu bytes", n);
	pthread_mutex_lock(&mpi_lock);
	int rc = MPI_Send(text ? text : "", (int)n, MPI_CHAR, dst, tag, MPI_COMM_WORLD);
	pthread_mutex_unlock(&mpi_lock);
	return rc == MPI_SUCCESS ? 0 : kiln_error_set(KILN_EIO, "MPI_Send to rank %d failed (%d)", dst, rc);
}

/* ---- rank 0 ---- */

static char *job_json(const kiln_eval_job *j)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "target", j->target->name);
	cJSON_AddStringToObject(o, "target_dir", j->target->dir);
	cJSON_AddStringToObject(o, "source", j->source);
	cJSON_AddStringToObject(o, "launch", j->launch_json);
	cJSON *d = cJSON_AddArrayToObject(o, "defines");
	for (size_t i = 0; d && i < j->ndefines; i++)
		cJSON_AddItemToArray(d, cJSON_CreateString(j->defines[i]));
	cJSON_AddStringToObject(o, "device", j->device);
	if (j->gpu)
		cJSON_AddStringToObject(o, "gpu", j->gpu);
	cJSON_AddStringToObject(o, "arch", j->arch);
	if (j->cache_dir)
		cJSON_AddStringToObject(o, "cache_dir", j->cache_dir);
	cJSON_AddNumberToObject(o, "seeds", (double)j->nseeds);
	char seed[24];
	snprintf(seed, sizeof seed, "%llu", (unsigned long long)j->timing_seed);
	cJSON_AddStringToObject(o, "timing_seed", seed);
	cJSON_AddNumberToObject(o, "timeout_s", j->timeout_s);
	cJSON_AddStringToObject(o, "rank_time", kiln_rank_time_name(j->rank));
	cJSON *bs = cJSON_AddArrayToObject(o, "bench_sizes"); /* the run's, --size included */
	for (size_t i = 0; bs && i < j->target->nbench_sizes; i++) {
		char spec[256];
		if (kiln_target_bench_spec(spec, sizeof spec, j->target, i) == 0)
			cJSON_AddItemToArray(bs, cJSON_CreateString(spec));
	}
	char *text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return text;
}

static kiln_err take_answer(kiln_child_result *r, const char *text, int rank)
{
	cJSON *o = cJSON_Parse(text);
	const char *err = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "error"));
	const char *answer = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "text"));
	kiln_err e = 0;
	if (!o)
		e = kiln_error_set(KILN_EIO, "worker rank %d sent an answer that is not JSON", rank);
	else if (err)
		e = kiln_error_set(KILN_EIO, "worker rank %d: %s", rank, err);
	else if (!(r->text = kiln_strdup(answer ? answer : "")))
		e = KILN_ENOMEM;
	if (!e) {
		r->timed_out = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "timed_out"));
		r->too_large = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "too_large"));
		r->signal = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "signal"));
		r->exit_code = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "exit_code"));
		r->wall_s = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "wall_s"));
	}
	cJSON_Delete(o);
	return e;
}

kiln_err kiln_mpi_eval(kiln_child_result *r, const kiln_eval_job *job)
{
	memset(r, 0, sizeof *r);
	if (!started || job->mpi_rank <= 0 || job->mpi_rank >= world_size)
		return kiln_error_set(KILN_EINVAL, "no MPI worker rank %d", job->mpi_rank);
	char *js = job_json(job);
	if (!js)
		return KILN_ENOMEM;
	kiln_err e = send_text(js, job->mpi_rank, TAG_JOB);
	free(js);
	char *answer = NULL;
	int tag = 0;
	if (!e)
		e = recv_text(&answer, &tag, job->mpi_rank, TAG_RESULT);
	if (!e)
		e = take_answer(r, answer, job->mpi_rank);
	free(answer);
	return e;
}

void kiln_mpi_finish(void)
{
	if (!started)
		return;
	if (world_rank == 0)
		for (int r = 1; r < world_size; r++)
			send_text("", r, TAG_QUIT);
	MPI_Finalize();
	started = false;
}

/* ---- a worker rank ---- */

typedef struct worker {
	kiln_target *t;      /* the last job's target, kept for the next */
	char cache_dir[1024];
	size_t threads;      /* verification threads: this node's cores over its workers */
} worker;

/* The worker's place on its node: its GPU (KILN_GPU_INDEX, unless set) and its share of
 * the cores. Rank 0 takes no GPU. Collective: every rank calls it from kiln_mpi_start. */
static int node_local = 0, node_workers = 1;

static void node_place(void)
{
	MPI_Comm node = MPI_COMM_NULL;
	MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank, MPI_INFO_NULL, &node);
	int node_rank = 0, node_size = 1;
	MPI_Comm_rank(node, &node_rank);
	MPI_Comm_size(node, &node_size);
	/* rank 0 (the coordinator) on this node does not count */
	int has0 = 0, zero = world_rank == 0;
	MPI_Allreduce(&zero, &has0, 1, MPI_INT, MPI_MAX, node);
	MPI_Comm_free(&node);
	node_local = node_rank - (has0 ? 1 : 0);
	node_workers = node_size - (has0 ? 1 : 0);
	if (node_local < 0)
		node_local = 0;
	if (node_workers < 1)
		node_workers = 1;
}

static void worker_place(worker *w)
{
	char ix[16];
	snprintf(ix, sizeof ix, "%d", node_local);
	if (!getenv("KILN_GPU_INDEX"))
		setenv("KILN_GPU_INDEX", ix, 1);
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	const char *th = getenv("KILN_THREADS");
	long total = th && atol(th) > 0 ? atol(th) : cores > 0 ? cores : 1;
	w->threads = (size_t)(total / node_workers > 0 ? total / node_workers : 1);
	const char *cd = getenv("KILN_CACHE_DIR");
	snprintf(w->cache_dir, sizeof w->cache_dir, "%s", cd && *cd ? cd : "/tmp/kiln-worker-cache");
}

static kiln_err worker_target(worker *w, const char *name, const char *dir)
{
	if (w->t && strcmp(w->t->name, name) == 0)
		return 0;
	kiln_target_free(w->t);
	w->t = NULL;
	/* the coordinator's folder when this node sees it, else this node's target of that name */
	kiln_err e = kiln_target_find(&w->t, dir && kiln_path_exists(dir) ? dir : name, NULL);
	return e ? kiln_error_wrap(e, "target %s on this node", name) : 0;
}

static char *answer_json(const kiln_child_result *r, const char *error)
{
	cJSON *o = cJSON_CreateObject();
	if (error) {
		cJSON_AddStringToObject(o, "error", error);
	} else {
		cJSON_AddStringToObject(o, "text", r->text ? r->text : "");
		cJSON_AddBoolToObject(o, "timed_out", r->timed_out);
		cJSON_AddBoolToObject(o, "too_large", r->too_large);
		cJSON_AddNumberToObject(o, "signal", r->signal);
		cJSON_AddNumberToObject(o, "exit_code", r->exit_code);
		cJSON_AddNumberToObject(o, "wall_s", r->wall_s);
	}
	char *text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return text;
}

static kiln_err run_job(worker *w, const char *text, kiln_child_result *r)
{
	cJSON *o = cJSON_Parse(text);
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "target"));
	const char *src = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "source"));
	const char *launch = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "launch"));
	const char *cache = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "cache_dir"));
	const char *defs[KILN_ENV_MAX];
	size_t nd = 0;
	const cJSON *d;
	cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(o, "defines"))
		if (nd < KILN_ENV_MAX && cJSON_IsString(d))
			defs[nd++] = d->valuestring;
	kiln_plan *plan = NULL;
	kiln_err e = !o || !name || !src || !launch
		? kiln_error_set(KILN_EINVAL, "a job without target, source or launch plan") : 0;
	if (!e)
		e = worker_target(w, name, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "target_dir")));
	if (!e)
		e = kiln_plan_parse(&plan, launch, strlen(launch), w->t, "launch.json");
	if (!e) {
		kiln_eval_job job;
		memset(&job, 0, sizeof job);
		job.target = w->t;
		job.source = src;
		job.launch_json = launch;
		job.defines = defs;
		job.ndefines = nd;
		job.device = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "device"));
		job.gpu = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "gpu"));
		job.arch = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "arch"));
		job.cache_dir = cache && kiln_path_exists(cache) ? cache : w->cache_dir;
		job.nseeds = (size_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "seeds"));
		job.threads = w->threads;
		const char *ts = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "timing_seed"));
		job.timing_seed = ts ? strtoull(ts, NULL, 10) : 0;
		job.timeout_s = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "timeout_s"));
		job.gpu_index = -1; /* KILN_GPU_INDEX of this rank */
		const cJSON *bs = cJSON_GetObjectItemCaseSensitive(o, "bench_sizes"), *b;
		const char *specs[KILN_TARGET_MAX_BENCH];
		size_t nspecs = 0;
		cJSON_ArrayForEach(b, bs)
			if (cJSON_IsString(b) && nspecs < KILN_TARGET_MAX_BENCH)
				specs[nspecs++] = b->valuestring;
		if (!job.device || !job.arch || !(job.timeout_s > 0))
			e = kiln_error_set(KILN_EINVAL, "a job without device, arch or deadline");
		else if (!(e = kiln_rank_time_parse(&job.rank, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "rank_time")))) &&
			 (!nspecs || !(e = kiln_target_set_bench_sizes(w->t, specs, nspecs))))
			e = kiln_eval_in_child(r, &job, plan);
	}
	kiln_plan_free(plan);
	cJSON_Delete(o);
	return e;
}

kiln_err kiln_mpi_worker(void)
{
	worker w;
	memset(&w, 0, sizeof w);
	worker_place(&w);
	signal(SIGINT, SIG_IGN); /* rank 0 decides when the search stops; it tells us */
	kiln_err e = 0;
	for (;;) {
		char *text = NULL;
		int tag = 0;
		if ((e = recv_text(&text, &tag, 0, -1)))
			break;
		if (tag == TAG_QUIT) {
			free(text);
			break;
		}
		kiln_child_result r;
		memset(&r, 0, sizeof r);
		kiln_err je = run_job(&w, text, &r);
		free(text);
		char *ans = answer_json(&r, je ? kiln_error_last() : NULL);
		kiln_child_result_free(&r);
		e = ans ? send_text(ans, 0, TAG_RESULT) : KILN_ENOMEM;
		free(ans);
		if (e)
			break;
	}
	kiln_target_free(w.t);
	MPI_Finalize();
	started = false;
	return e;
}

#else /* built without MPI */

kiln_err kiln_mpi_start(int *rank, int *size)
{
	*rank = 0;
	*size = 1;
	if (env_int(size_vars, 1) > 1 && env_int(rank_vars, 0) > 0)
		return kiln_error_set(KILN_EINVAL, "kiln was built without MPI (meson -Dmpi=enabled with libopenmpi-dev): "
				      "under mpirun every rank would run its own search; this rank stops");
	return 0;
}

int kiln_mpi_workers(void)
{
	return 0;
}

kiln_err kiln_mpi_eval(kiln_child_result *r, const kiln_eval_job *job)
{
	memset(r, 0, sizeof *r);
	return kiln_error_set(KILN_EINVAL, "kiln was built without MPI: no worker rank %d", job->mpi_rank);
}

kiln_err kiln_mpi_worker(void)
{
	return kiln_error_set(KILN_EINVAL, "kiln was built without MPI");
}

void kiln_mpi_finish(void)
{
}

#endif
