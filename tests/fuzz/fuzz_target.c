/* libFuzzer harness for target.json (targets/target.c): each input is written as
 * <tmp>/fz/target.json and loaded (the loader reads a folder). A target that loads must
 * give sizes, buffer element counts and traffic for every verification size without
 * crashing; when its buffers are small, inputs are generated and the reference it names
 * runs on them (a reference must reject shapes it cannot handle, not overrun them). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "targets/targets.h"

#define MAX_ELEMS 4096 /* per buffer, for running the reference */

static char tmp[64], dir[80], file[96];

static void cleanup(void)
{
	remove(file);
	rmdir(dir);
	rmdir(tmp);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	snprintf(tmp, sizeof(tmp), "/tmp/kiln-fuzz-target-XXXXXX");
	if (!mkdtemp(tmp))
		abort();
	snprintf(dir, sizeof(dir), "%s/fz", tmp);
	snprintf(file, sizeof(file), "%s/target.json", dir);
	if (kiln_mkdir_p(dir))
		abort();
	atexit(cleanup);
	return 0;
}

static void exercise(const kiln_target *t)
{
	for (size_t s = 0; s < t->nverify_sizes; s++) {
		kiln_env env;
		if (kiln_target_sizes(&env, t, false, s))
			continue;
		int64_t traffic;
		(void)kiln_expr_eval(&traffic, t->traffic_bytes, &env, "traffic");
		bool small = true;
		for (size_t b = 0; b < t->nbuffers; b++) {
			size_t n = 0;
			if (kiln_target_count(&n, t, &t->buffers[b], &env) || n > MAX_ELEMS)
				small = false;
		}
		if (!small)
			continue;
		/* the default draw, then every regime and the multi-step steps */
		for (long r = -1; r < (long)t->nregimes; r++) {
			kiln_inputs *in = NULL;
			kiln_refdata *ref = NULL;
			if (kiln_inputs_generate_regime(&in, t, &env, 1234 + s, r) == 0) {
				(void)kiln_reference_run(&ref, t, in);
				for (size_t k = 1; k < t->multistep.steps; k++)
					(void)kiln_inputs_step(in, t, k);
			}
			kiln_refdata_free(ref);
			kiln_inputs_free(in);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (1u << 16))
		return 0;
	FILE *f = fopen(file, "wb");
	if (!f)
		abort();
	fwrite(data, 1, size, f);
	fclose(f);
	kiln_target *t = NULL;
	if (kiln_target_load(&t, dir) == 0) {
		exercise(t);
	} else if (!kiln_error_last()[0] || strchr(kiln_error_last(), '\n')) {
		fprintf(stderr, "fuzz_target: an error without a one-line message: '%s'\n", kiln_error_last());
		abort();
	}
	kiln_target_free(t);
	kiln_error_clear();
	return 0;
}
