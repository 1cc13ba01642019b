/* libFuzzer harness for the source gate (compile/source.c kiln_compile_source_check), the
 * only thing between a model-written source and NVRTC reading host files. Must hold: no
 * crash or out-of-bounds read (the input is an exact-size copy, not NUL-terminated for the
 * gate's raw pass); an accepted source is under 1 MiB, has no NUL and is valid UTF-8; and
 * an accepted source with `#include "/etc/passwd"` put before or after it (on lines of
 * their own) is refused: nothing in an accepted text may leave the tokenizer inside a
 * comment, literal or directive at its end. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile/compile.h"

static void must(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_source: %s\n", what);
		abort();
	}
}

static int check(const char *a, size_t an, const char *b, size_t bn, const char *c, size_t cn)
{
	size_t n = an + bn + cn;
	char *t = malloc(n + 1);
	memcpy(t, a, an);
	memcpy(t + an, b, bn);
	memcpy(t + an + bn, c, cn);
	t[n] = '\0';
	kiln_err e = kiln_compile_source_check(t, n, "fuzz.cu");
	if (e)
		must(kiln_error_last()[0] != '\0' && !strchr(kiln_error_last(), '\n'), "a refusal without one line");
	kiln_error_clear();
	free(t);
	return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (1u << 16))
		return 0;
	char *text = malloc(size ? size : 1);
	memcpy(text, data, size);
	kiln_err e = kiln_compile_source_check(text, size, "fuzz.cu");
	kiln_error_clear();
	if (e == 0) {
		must(memchr(text, '\0', size) == NULL, "accepted a NUL byte");
		static const char inc[] = "#include \"/etc/passwd\"\n";
		static const char tail[] = "\n\n#include \"/etc/passwd\"\n";
		must(check(inc, sizeof inc - 1, text, size, "", 0) != 0, "an include before an accepted source passed");
		must(check("", 0, text, size, tail, sizeof tail - 1) != 0, "an include after an accepted source passed");
	}
	free(text);
	return 0;
}
