/* libFuzzer harness for edit replies (agent/edit_apply.c kiln_edit_apply): byte 0 picks
 * search/replace blocks or a diff, bytes 1-2 the length of the base kernel (NULs in it
 * become spaces: a base is a NUL-terminated source), the rest are the edits (not
 * NUL-terminated, so a read past len is an ASan report). Must hold: success yields a new
 * kernel within the source cap that differs from the base; failure yields nothing and one
 * line of message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "compile/compile.h"

static void must(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_edit: %s: %s\n", what, kiln_error_last());
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3 || size > (1u << 20))
		return 0;
	kiln_edit_kind kind = data[0] & 1 ? KILN_EDIT_DIFF : KILN_EDIT_BLOCKS;
	size_t blen = (size_t)data[1] | (size_t)data[2] << 8;
	if (blen > size - 3)
		blen = size - 3;
	char *base = malloc(blen + 1);
	for (size_t i = 0; i < blen; i++)
		base[i] = data[3 + i] ? (char)data[3 + i] : ' ';
	base[blen] = '\0';
	size_t len = size - 3 - blen;
	char *edits = malloc(len ? len : 1);
	memcpy(edits, data + 3 + blen, len);
	char *out = (char *)1;
	kiln_err e = kiln_edit_apply(&out, base, edits, len, kind);
	if (e) {
		must(e < 0 && kiln_error_last()[0], "an error without a message");
		must(out == NULL, "a result after an error");
		must(e == KILN_ENOMEM || strchr(kiln_error_last(), '\n') == NULL, "a message of more than one line");
	} else {
		must(out != NULL, "no result");
		must(strlen(out) <= KILN_COMPILE_MAX_SOURCE, "a result over the source cap");
		must(strcmp(out, base) != 0, "an unchanged result");
	}
	if (!e)
		free(out);
	kiln_error_clear();
	free(edits);
	free(base);
	return 0;
}
