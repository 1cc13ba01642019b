/* libFuzzer harness for the LLM client's stream handling: the SSE parser (agent/llm/sse.c)
 * and the per-event JSON handling of both APIs (wire.c, errors.c). Invariants checked:
 * feeding the input in two pieces (split at a point taken from the input) produces exactly
 * the events of feeding it whole; every event is NUL-terminated at its length; the reply text
 * never exceeds its cap; nothing crashes, leaks or reads out of bounds on any bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/llm/llm_int.h"

typedef struct sink {
	kiln_buf log;            /* "event\0data\0" of every event, to compare runs */
	kiln_llm_result oai, anth;
} sink;

static kiln_err on_event(void *arg, const char *event, const char *data, size_t len)
{
	sink *s = arg;
	if (data[len] != '\0') /* events are NUL-terminated at len (data may hold NULs itself) */
		abort();
	kiln_buf_append(&s->log, event, strlen(event) + 1);
	kiln_buf_append(&s->log, data, len);
	kiln_buf_append(&s->log, "", 1);
	kiln_llm_stream_event(&s->oai, KILN_LLM_API_OPENAI, event, data, len);
	kiln_llm_stream_event(&s->anth, KILN_LLM_API_ANTHROPIC, event, data, len);
	if (s->oai.text.len > s->oai.text.max || s->anth.text.len > s->anth.text.max)
		abort();
	(void)kiln_llm_result_status(&s->oai);
	return KILN_OK;
}

static void run(sink *s, const uint8_t *data, size_t size, size_t split)
{
	kiln_sse p;
	kiln_sse_init(&p, 1 << 16);
	kiln_buf_init(&s->log, 0);
	kiln_llm_result_init(&s->oai, 4096);
	kiln_llm_result_init(&s->anth, 4096);
	kiln_err e1 = kiln_sse_feed(&p, (const char *)data, split, on_event, s);
	if (!e1)
		kiln_sse_feed(&p, (const char *)data + split, size - split, on_event, s);
	kiln_sse_free(&p);
	kiln_llm_result_free(&s->oai);
	kiln_llm_result_free(&s->anth);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t split = (data[0] | (size_t)data[1] << 8) % (size - 1);
	data += 2;
	size -= 2;
	if (split > size)
		split = size;
	sink whole, parts;
	run(&whole, data, size, size);
	run(&parts, data, size, split);
	if (whole.log.len != parts.log.len ||
	    (whole.log.len && memcmp(whole.log.data, parts.log.data, whole.log.len) != 0))
		abort(); /* the split changed the events */
	kiln_buf_free(&whole.log);
	kiln_buf_free(&parts.log);
	/* an error body of any shape gives one bounded line */
	kiln_llm_errinfo ei;
	kiln_llm_error_parse(&ei, 500, (const char *)data, size);
	if (strlen(ei.line) >= sizeof ei.line || strchr(ei.line, '\n'))
		abort();
	return 0;
}
