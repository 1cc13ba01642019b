/* libFuzzer harness for the one strict JSON rule (util/json_check.c kiln_json_check).
 * Must hold: no crash or read past the exact-size input; whatever it accepts cJSON parses
 * to the end (so history.db's json_valid() takes it), and a refusal is one line. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size ? size : 1);
	memcpy(text, data, size);
	if (kiln_json_check(text, size, "fuzz") == 0) {
		const char *end = NULL;
		cJSON *j = cJSON_ParseWithLengthOpts(text, size, &end, 0);
		if (!j) {
			fprintf(stderr, "fuzz_json: accepted but cJSON refuses\n");
			abort();
		}
		cJSON_Delete(j);
	} else if (!kiln_error_last()[0] || strchr(kiln_error_last(), '\n')) {
		fprintf(stderr, "fuzz_json: a refusal without one line\n");
		abort();
	}
	kiln_error_clear();
	free(text);
	return 0;
}
