/* libFuzzer harness for launch.json (targets/plan.c): the input is parsed as a launch plan
 * against a built-in target (the first byte picks adamw, ratio_token or scale_rownorm:
 * 1-D, 2-D, knobs, masks). A plan that parses must print to canonical JSON that parses
 * again to the same canonical text, and its dimensions must evaluate (or fail cleanly) at
 * every verification and bench size. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "targets/targets.h"

static void must(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_launch: %s: %s\n", what, kiln_error_last());
		abort();
	}
}

#define NTARGETS 3
static kiln_target *targets[NTARGETS];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const names[NTARGETS] = {"adamw", "ratio_token", "scale_rownorm"};
	(void)argc, (void)argv;
	for (int i = 0; i < NTARGETS; i++)
		must(kiln_target_find(&targets[i], names[i], NULL) == 0, names[i]);
	return 0;
}

static void eval_dims(const kiln_target *t, const kiln_plan *p, bool bench, size_t nsizes)
{
	for (size_t s = 0; s < nsizes; s++) {
		kiln_env env;
		if (kiln_target_sizes(&env, t, bench, s))
			continue;
		for (size_t k = 0; k < t->nknobs; k++)
			if (t->knobs[k].n)
				kiln_env_set(&env, t->knobs[k].name, t->knobs[k].values[0]);
		kiln_env_set(&env, "sm_count", 132);
		for (size_t i = 0; i < p->nlaunches; i++) {
			kiln_dims d;
			if (kiln_plan_dims(&d, p, i, &env) == 0)
				must(d.grid[0] > 0 && d.block[0] > 0 && d.block[0] * d.block[1] * d.block[2] <= 1024,
				     "dims out of range accepted");
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > (1u << 18))
		return 0;
	const kiln_target *t = targets[data[0] % NTARGETS];
	size_t len = size - 1;
	char *json = malloc(len ? len : 1); /* exact size: no NUL to lean on */
	memcpy(json, data + 1, len);
	kiln_plan *p = NULL, *q = NULL;
	if (kiln_plan_parse(&p, json, len, t, "fuzz.json") == 0) {
		char *c1 = kiln_plan_to_json(p);
		must(c1 != NULL, "to_json");
		must(kiln_plan_parse(&q, c1, strlen(c1), t, "canonical") == 0, "canonical text does not parse");
		char *c2 = kiln_plan_to_json(q);
		must(c2 && strcmp(c1, c2) == 0, "round trip changed the plan");
		eval_dims(t, p, false, t->nverify_sizes);
		eval_dims(t, p, true, t->nbench_sizes);
		free(c1);
		free(c2);
	} else {
		must(p == NULL && kiln_error_last()[0], "error without message or with a plan");
	}
	kiln_plan_free(q);
	kiln_plan_free(p);
	kiln_error_clear();
	free(json);
	return 0;
}
