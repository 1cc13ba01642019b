/* cli: `kiln run TARGET` searches for a faster kernel until a budget runs out: the LLM
 * policy (K-Search) when an LLM is configured, else the knob tuner; `--resume [RUN]`
 * continues a stopped or killed run. Exit 0 when the run finished or was interrupted
 * cleanly (the checkpoint is written), 3 when it could not run. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "agent/agent.h"
#include "cli/cli.h"

static const char usage[] =
	"kiln run TARGET... | --all [--iterations N] [--hours H] [--max-cost USD] [--max-tokens N] "
	"[--policy auto|llm|tune] [--llm provider:model] [--device auto|emu|cuda] [--gpu SPEC] [--gpu-index N] "
	"[--rank-time launches|kernels] [--parallel N] [--threads N] [--size SPEC ...] [--workdir DIR] [--json] | "
	"kiln run --resume [RUN]";
static const char help[] =
	"Searches for a faster kernel for TARGET and records every attempt.\n"
	"  --iterations N      stop after N candidates (all sessions of the run)\n"
	"  --hours H           stop after H hours of wall-clock\n"
	"  --max-cost USD      stop when the LLM calls cost this much\n"
	"  --max-tokens N      stop after N LLM tokens\n"
	"  --policy P          auto (llm when one is configured, else tune), llm or tune\n"
	"  --llm MODEL         provider:model, e.g. openai:gpt-5 (default $KILN_LLM)\n"
	"  --base-url URL      the provider's base URL (an OpenAI-compatible server)\n"
	"  --stream            stream LLM replies (SSE)\n"
	"  --llm-timeout S     seconds one LLM HTTP attempt may take (default 600)\n"
	"  --device KIND       auto, emu or cuda (default auto)\n"
	"  --gpu SPEC          the GPU the emulator's cost model stands for (data/gpus.json)\n"
	"  --gpu-index N       cuda: the GPU ordinal among CUDA_VISIBLE_DEVICES (sets KILN_GPU_INDEX)\n"
	KILN_CLI_RANK_TIME_HELP
	"                      (stored with the run; a resumed run keeps its own)\n"
	"  --seed S            tuner / selection seed (default: fresh, stored with the run)\n"
	"  --seeds N           input sets per verification size (default 3)\n"
	"  --parallel N        actions in flight: N LLM calls and evaluations at once (default: the number\n"
	"                      of GPUs, 1 on the emulator; kept by --resume)\n"
	"  --threads N         verification threads, one emulator each, shared by the parallel workers\n"
	"                      (default $KILN_THREADS, else all cores)\n"
	"  --timeout S         seconds one candidate's evaluation may take (default 600)\n"
	"  --stagnation N      llm: attempts without improvement that close an action (default 3)\n"
	"  --max-attempts N    llm: attempts per action (default 6)\n"
	"  --size SPEC         bench sizes to rank on (repeatable): B=1024,T=4096 replaces the target's list\n"
	"                      with the sizes given, +B=1024,T=4096 adds one; @W weighs it (B=512,T=8192@2);\n"
	"                      the objective is the weighted geometric mean of the per-size speedups\n"
	"  --all               every target (kiln targets); with several TARGETs each gets its own run,\n"
	"                      one after the other, and an equal share of each budget\n"
	"  --resume [RUN]      continue run RUN (default: the latest) with its budgets and bench sizes\n"
	"  --workdir DIR       history.db, archive/, cache/ (default $KILN_WORKDIR or ./.kiln)\n"
	"  --targets-dir DIR   where to find TARGET\n"
	"  --json              print the summary as JSON\n"
	"SIGINT/SIGTERM let the candidate in flight finish, write the checkpoint and exit 0.\n"
	"Exit status: 0 finished or interrupted cleanly, 2 usage, 3 could not run.\n";

static bool parse_num(const char *s, double *out, const char *what)
{
	if (!s)
		return true;
	char *end = NULL;
	*out = strtod(s, &end);
	if (!*s || *end || !(*out >= 0)) {
		fprintf(stderr, "kiln run: %s '%s': expected a non-negative number\nusage: %s\n", what, s, usage);
		return false;
	}
	return true;
}

static void print_summary(const kiln_run_summary *r, bool json)
{
	if (json) {
		cJSON *b = r->bench_check[0] ? cJSON_CreateString(r->bench_check) : NULL;
		char *bench = b ? cJSON_PrintUnformatted(b) : NULL;
		cJSON_Delete(b);
		printf("{\"run\": %lld, \"policy\": \"%s\", \"status\": \"%s\", \"iterations\": %lld, "
		       "\"passed\": %lld, \"failed\": %lld, \"seed_candidate\": %lld, \"best_candidate\": %lld, "
		       "\"seed_us\": %.6g, \"best_us\": %.6g, \"speedup\": %.6g, \"modeled\": %s, "
		       "\"cost_usd\": %.6f, \"unpriced_calls\": %lld, \"tokens\": %lld, \"best_commit\": \"%s\", "
		       "\"bench_check\": %s}\n",
		       (long long)r->run_id, r->policy, r->status, (long long)r->iterations,
		       (long long)r->passed, (long long)r->failed, (long long)r->seed_candidate,
		       (long long)r->best_candidate, r->seed_us, r->best_us, r->speedup,
		       r->modeled ? "true" : "false", r->cost_usd, (long long)r->unpriced_calls, (long long)r->tokens,
		       r->best_commit, bench ? bench : "null");
		free(bench);
		return;
	}
	printf("run %lld %s (%s): %lld candidates, %lld passed, %lld failed\n", (long long)r->run_id,
	       r->status, r->stop_reason[0] ? r->stop_reason : "done", (long long)r->iterations,
	       (long long)r->passed, (long long)r->failed);
	if (r->best_candidate)
		printf("best: candidate %lld, %.3f us %s, %.2fx over the seed (%.3f us)%s%s\n",
		       (long long)r->best_candidate, r->best_us, r->modeled ? "modeled" : "measured",
		       r->speedup, r->seed_us, r->best_commit[0] ? ", archive commit " : "",
		       r->best_commit[0] ? r->best_commit : "");
	else
		printf("no candidate passed verification\n");
	if (r->bench_check[0])
		printf("bench-size check of the best: %s\n", r->bench_check);
	char cost[48];
	if (r->tokens || r->unpriced_calls)
		printf("LLM: %lld tokens, %s\n", (long long)r->tokens,
		       kiln_cost_text(cost, sizeof cost, r->cost_usd, r->cost_usd > 0, r->unpriced_calls, 4));
}

#define MAX_TARGETS 32

/* Several targets in one coordinator: each gets its own run (world model, archive branch)
 * and an equal share of every budget, one after the other with all the workers; a
 * side-by-side table at the end. An interrupt stops the sequence. */
static int run_several(kiln_run_options *o, const char *const *names, size_t n, bool json)
{
	char **listed = NULL;
	size_t nl = 0;
	if (!names) {
		kiln_err le = kiln_targets_list(&listed, &nl, o->targets_dir);
		if (le)
			return kiln_cli_fail("run", le);
		names = (const char *const *)listed;
		n = nl < MAX_TARGETS ? nl : MAX_TARGETS;
	}
	double k = n ? (double)n : 1;
	o->iterations = o->iterations > 0 ? (int64_t)((double)o->iterations / k + 0.999999) : 0;
	o->hours /= k;
	o->max_cost /= k;
	o->max_tokens = (int64_t)((double)o->max_tokens / k);
	kiln_run_summary *r = calloc(n ? n : 1, sizeof *r);
	int rc = r ? KILN_EXIT_OK : KILN_EXIT_ERROR;
	size_t done = 0;
	for (; r && done < n; done++) {
		o->target = names[done];
		fprintf(stderr, "kiln run: target %zu of %zu: %s\n", done + 1, n, names[done]);
		kiln_err e = kiln_run(&r[done], o);
		if (e) {
			rc = kiln_cli_fail("run", e);
			snprintf(r[done].status, sizeof r[done].status, "failed");
			continue;
		}
		print_summary(&r[done], json);
		if (r[done].bench_failed && rc == KILN_EXIT_OK)
			rc = KILN_EXIT_FAIL;
		if (strcmp(r[done].status, "interrupted") == 0) {
			done++;
			break;
		}
	}
	if (!json && r) {
		printf("\n%-18s %5s %-12s %10s %12s %8s\n", "target", "run", "status", "candidates", "best us", "speedup");
		for (size_t i = 0; i < done; i++)
			printf("%-18s %5lld %-12s %10lld %12.3f %7.2fx\n", names[i], (long long)r[i].run_id, r[i].status,
			       (long long)r[i].iterations, r[i].best_us, r[i].speedup);
	}
	free(r);
	for (size_t i = 0; i < nl; i++)
		free(listed[i]);
	free(listed);
	return rc;
}

static int run_main(int argc, char **argv)
{
	const char *workdir = NULL, *targets_dir = NULL, *policy = NULL, *llm = NULL, *base_url = NULL;
	const char *device = NULL, *gpu = NULL, *iters = NULL, *hours = NULL, *cost = NULL;
	const char *tokens = NULL, *seed = NULL, *seeds = NULL, *timeout = NULL, *threads_s = NULL, *gpu_index = NULL;
	const char *stagnation = NULL, *max_attempts = NULL, *llm_timeout = NULL, *rank_time = NULL, *parallel = NULL;
	bool json = false, resume = false, stream = false, all = false;
	const kiln_cli_opt opts[] = {
		{"workdir", 1, &workdir, NULL}, {"targets-dir", 1, &targets_dir, NULL},
		{"policy", 1, &policy, NULL}, {"llm", 1, &llm, NULL}, {"base-url", 1, &base_url, NULL},
		{"stream", 0, NULL, &stream}, {"device", 1, &device, NULL}, {"gpu", 1, &gpu, NULL},
		{"iterations", 1, &iters, NULL}, {"hours", 1, &hours, NULL}, {"max-cost", 1, &cost, NULL},
		{"max-tokens", 1, &tokens, NULL}, {"seed", 1, &seed, NULL}, {"seeds", 1, &seeds, NULL},
		{"timeout", 1, &timeout, NULL}, {"resume", 0, NULL, &resume}, {"json", 0, NULL, &json},
		{"stagnation", 1, &stagnation, NULL}, {"max-attempts", 1, &max_attempts, NULL},
		{"llm-timeout", 1, &llm_timeout, NULL}, {"threads", 1, &threads_s, NULL},
		{"gpu-index", 1, &gpu_index, NULL}, {"rank-time", 1, &rank_time, NULL}, {"parallel", 1, &parallel, NULL},
		{"all", 0, NULL, &all}, {0}};
	const char *pos[MAX_TARGETS], *sizes[KILN_TARGET_MAX_BENCH];
	size_t nsizes = 0;
	int npos = 0, exit_now = 0, nrest = 0;
	char **rest = calloc((size_t)argc + 1, sizeof(char *));
	if (!rest)
		return KILN_EXIT_ERROR;
	if (!kiln_cli_take_repeated(argc, argv, "size", sizes, KILN_TARGET_MAX_BENCH, &nsizes, rest, &nrest, "run")) {
		free(rest);
		return KILN_EXIT_USAGE;
	}
	bool ok = kiln_cli_parse(nrest, rest, opts, pos, MAX_TARGETS, &npos, usage, help, &exit_now);
	free(rest); /* pos and the values point into argv's strings, not into rest */
	if (!ok)
		return exit_now;
	if (resume && nsizes) {
		fprintf(stderr, "kiln run: --size with --resume: a run keeps the bench sizes it started with\nusage: %s\n", usage);
		return KILN_EXIT_USAGE;
	}
	kiln_rank_time rank;
	if (!kiln_cli_gpu_index("run", gpu_index) || !kiln_cli_rank_time(&rank, "run", rank_time))
		return KILN_EXIT_USAGE;
	if (policy && strcmp(policy, "auto") && strcmp(policy, "llm") && strcmp(policy, "tune")) {
		fprintf(stderr, "kiln run: --policy '%s': expected auto, llm or tune\nusage: %s\n", policy, usage);
		return KILN_EXIT_USAGE;
	}
	if ((!resume && !all && npos < 1) || (resume && (npos > 1 || all)) || (all && npos > 0)) {
		fprintf(stderr, "kiln run: %s\nusage: %s\n", resume ? "--resume takes at most one run id" :
			all ? "--all or TARGETs, not both" : "a TARGET is required (kiln targets lists them)", usage);
		return KILN_EXIT_USAGE;
	}
	double d_iters = 0, d_tokens = 0, d_seeds = 0, d_seed = 0, d_stag = 0, d_max = 0, d_par = 0;
	kiln_run_options o;
	memset(&o, 0, sizeof o);
	if (!parse_num(iters, &d_iters, "--iterations") || !parse_num(hours, &o.hours, "--hours") ||
	    !parse_num(cost, &o.max_cost, "--max-cost") || !parse_num(tokens, &d_tokens, "--max-tokens") ||
	    !parse_num(seeds, &d_seeds, "--seeds") || !parse_num(seed, &d_seed, "--seed") ||
	    !parse_num(timeout, &o.eval_timeout_s, "--timeout") ||
	    !parse_num(stagnation, &d_stag, "--stagnation") || !parse_num(max_attempts, &d_max, "--max-attempts") ||
	    !parse_num(llm_timeout, &o.llm_timeout_s, "--llm-timeout") || !parse_num(parallel, &d_par, "--parallel"))
		return KILN_EXIT_USAGE;
	if (parallel && (d_par < 1 || d_par > 64 || d_par != (double)(int)d_par)) {
		fprintf(stderr, "kiln run: --parallel '%s': expected 1..64 actions in flight\nusage: %s\n", parallel, usage);
		return KILN_EXIT_USAGE;
	}
	o.parallel = (size_t)d_par;
	o.iterations = (int64_t)d_iters;
	o.max_tokens = (int64_t)d_tokens;
	o.stagnation = (int)d_stag;
	o.max_attempts = (int)d_max;
	o.verify_seeds = (size_t)d_seeds;
	if (!kiln_cli_threads(&o.verify_threads, "run", threads_s))
		return KILN_EXIT_USAGE;
	o.seed = seed ? strtoull(seed, NULL, 10) : 0;
	o.workdir = kiln_cli_workdir(workdir);
	o.targets_dir = targets_dir;
	o.policy = policy ? policy : "auto";
	o.llm = llm;
	o.base_url = base_url;
	o.stream = stream;
	o.device = device ? device : "auto";
	o.gpu = gpu;
	o.rank_time = rank_time;
	o.bench_sizes = sizes;
	o.nbench_sizes = nsizes;
	if (resume) {
		o.resume_run = -1;
		if (npos == 1) {
			char *end = NULL;
			o.resume_run = strtoll(pos[0], &end, 10);
			if (*end || o.resume_run <= 0) {
				fprintf(stderr, "kiln run: --resume '%s': expected a run id\nusage: %s\n", pos[0], usage);
				return KILN_EXIT_USAGE;
			}
		}
	} else if (all || npos > 1) {
		return run_several(&o, all ? NULL : pos, (size_t)npos, json);
	} else {
		o.target = pos[0];
	}
	kiln_run_summary r;
	kiln_err e = kiln_run(&r, &o);
	if (e) {
		int rc = kiln_cli_fail("run", e);
		if (r.run_id)
			fprintf(stderr, "kiln run: run %lld is recorded; continue it with kiln run --resume %lld\n",
				(long long)r.run_id, (long long)r.run_id);
		return rc;
	}
	print_summary(&r, json);
	return r.bench_failed ? KILN_EXIT_FAIL : KILN_EXIT_OK;
}

/* Under mpirun / srun the ranks but 0 are evaluation workers (agent/mpi.c); rank 0 runs the
 * search and stops them when it ends. */
int kiln_cmd_run(int argc, char **argv)
{
	int rank = 0, size = 1;
	if (kiln_mpi_start(&rank, &size)) {
		fprintf(stderr, "kiln run: %s\n", kiln_error_last());
		return KILN_EXIT_ERROR;
	}
	if (rank > 0) {
		kiln_err e = kiln_mpi_worker();
		if (e)
			fprintf(stderr, "kiln run: MPI worker rank %d: %s\n", rank, kiln_error_last());
		return e ? KILN_EXIT_ERROR : KILN_EXIT_OK;
	}
	int rc = run_main(argc, argv);
	kiln_mpi_finish();
	return rc;
}
