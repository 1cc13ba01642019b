/* libFuzzer harness for the LLM reply parser (agent/reply.c kiln_reply_parse): the first
 * byte picks which parts are required, the rest is the reply (not NUL-terminated, so a
 * read past len is an ASan report). Must hold: success yields every required part (a
 * kernel: a whole one, an ```edit or a ```diff block, exactly one; a launch plan: with a
 * whole kernel), a launch/edit part that parses as JSON, the text of each part inside the
 * reply, a CHANGED line of one line within its cap; failure yields no parts and a message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"

static void must(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_reply: %s: %s\n", what, kiln_error_last());
		abort();
	}
}

static int json_ok(const char *s)
{
	/* the one strict rule: whatever the parser hands on, history.db's json_valid() takes */
	return kiln_json_check(s, strlen(s), "part") == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > (1u << 20))
		return 0;
	unsigned want = data[0] & (KILN_REPLY_KERNEL | KILN_REPLY_LAUNCH | KILN_REPLY_EDITS);
	/* an exact-size heap copy: ASan sees any read past the end */
	size_t len = size - 1;
	char *text = malloc(len ? len : 1);
	memcpy(text, data + 1, len);
	kiln_reply_parts p;
	memset(&p, 0x5a, sizeof(p)); /* the parser must set every field */
	kiln_err e = kiln_reply_parse(&p, text, len, want);
	if (e) {
		must(e < 0 && kiln_error_last()[0], "an error without a message");
		must(!p.kernel && !p.edit && !p.diff && !p.launch_json && !p.edits_json && !p.changed,
		     "parts left after an error");
	} else {
		int code = !!p.kernel + !!p.edit + !!p.diff;
		must(!(want & KILN_REPLY_KERNEL) || code == 1, "kernel missing");
		must(code <= 1, "a kernel and edits together");
		must(!(want & KILN_REPLY_LAUNCH) || !p.kernel || p.launch_json, "launch missing");
		must(!p.changed || (strlen(p.changed) <= KILN_CHANGED_MAX && !strchr(p.changed, '\n')),
		     "a CHANGED line over its cap or of several lines");
		must(!p.edit || strlen(p.edit) <= len, "edits longer than the reply");
		must(!(want & KILN_REPLY_EDITS) || p.edits_json, "edits missing");
		must(!p.launch_json || json_ok(p.launch_json), "launch part is not JSON");
		must(!p.edits_json || json_ok(p.edits_json), "edit part is not JSON");
		must(!p.kernel || strlen(p.kernel) <= len, "kernel longer than the reply");
	}
	kiln_reply_parts_free(&p);
	kiln_error_clear();
	free(text);
	return 0;
}
