/* Prompt building for the llm policy. Every prompt is [stable prefix | variable part]:
 * the prefix (rules, the target, the seed kernel) is byte-identical across a run so
 * OpenAI's automatic prefix cache and Anthropic's cache_control hit; the world model,
 * the evidence and the task follow. Sizes are capped so a long night stays cheap. */
#include "agent/agent.h"

#include <stdlib.h>
#include <string.h>

#define EVIDENCE_MAX (24u << 10) /* bytes of compile log / verdict / source quoted back */

static const char rules[] =
	"You are kiln's kernel engineer. You write CUDA C++ device code that kiln compiles with "
	"NVRTC, verifies against a float64 reference on fresh random inputs (including odd sizes "
	"such as 1, 7 and sizes that are not a multiple of any block size), and times.\n"
	"Replies: an analyse or reflect task is answered with exactly one ```json edit script for the "
	"world model (nothing else is read). A kernel task (implement, fix, make faster) is answered with "
	"the kernel in exactly one of three forms, plus one line outside the blocks, `CHANGED: <what this "
	"candidate changes and why, one line>` (kiln records it and shows it in later prompts, the log "
	"and the report):\n"
	"(a) the whole kernel: one ```cuda block (device code only: one or more extern \"C\" __global__ "
	"kernels and __device__ helpers; no host code, no main, no <<<>>>) and one ```json block with "
	"the launch plan: {\"launches\": [{\"kernel\", \"grid\": [expr...], \"block\": [expr...], "
	"\"shared_bytes\": expr, \"args\": [names]}], \"scratch\": [{\"name\", \"dtype\", \"count\": "
	"expr}], \"nvrtc_flags\": []}. Expressions are integer arithmetic over the target's symbols, "
	"knobs and sm_count with ceil_div, min, max, + - * / %.\n"
	"(b) edits of kernel.cu, the kernel the task quotes (the one to start from, or your last one), in "
	"one ```edit block of search/replace blocks, each\n"
	"<<<<<<< SEARCH\nlines copied exactly from kernel.cu\n=======\nthe lines that replace them\n"
	">>>>>>> REPLACE\n"
	"Each SEARCH is whole lines, byte for byte (indentation and trailing spaces count), and must "
	"occur exactly once in kernel.cu (add neighbouring lines until it does); an empty SEARCH is "
	"refused; blocks may not overlap and all match kernel.cu as quoted, not each other's result; at "
	"most 64 blocks.\n"
	"(c) a unified diff of kernel.cu in one ```diff block: '--- a/kernel.cu', '+++ b/kernel.cu', "
	"then hunks '@@ -OLD,COUNT +NEW,COUNT @@' whose context and removed lines must match kernel.cu "
	"exactly and whose counts must match their lines.\n"
	"With (b) or (c) the task's launch plan is kept unless you also send a ```json launch plan. "
	"Edits that do not apply are refused with the reason, and the attempt is repeated; a small "
	"change costs far less output as an edit than as a whole kernel.\n"
	"Rules:\n"
	"- Include only the CUDA toolkit's own headers (cuda_fp16.h, cuda_bf16.h, cuda_fp8.h, "
	"cooperative_groups.h, cub/..., cuda/std/...); any other #include, #pragma other than "
	"unroll/nounroll/nv_diag_*, token pasting (##) and raw strings are refused before compiling.\n"
	"- Argument ABI: buffers are device pointers of their dtype, scalars are passed by value "
	"(f32 -> float, i32 -> int), symbols and knobs are long long. Scratch buffers are device "
	"pointers of their dtype too (f32 -> float*, i32 -> int*, i64 -> long long*) and are NOT "
	"zeroed: they arrive filled with garbage, so write before you read (or clear them in an "
	"earlier launch).\n"
	"- Every output element must be written; inputs must not be modified; masked positions "
	"may hold NaN/Inf garbage that must never leak into outputs (select, never multiply).\n"
	"- Work through the world model: implement only the chosen action on top of the parent's "
	"best kernel.\n";

/* The bench sizes, each a whole size (never symbol lists read across), and the objective. */
static void bench_sizes_section(kiln_buf *b, const kiln_target *t)
{
	if (t->nbench_sizes == 1)
		kiln_buf_puts(b, "\nBench size: every candidate is timed at this size:");
	else
		kiln_buf_printf(b, "\nBench sizes: every candidate is timed at each of these %zu sizes:", t->nbench_sizes);
	for (size_t k = 0; k < t->nbench_sizes; k++) {
		kiln_env env;
		if (kiln_target_sizes(&env, t, true, k))
			continue;
		kiln_buf_printf(b, "%s ", k ? ";" : "");
		for (size_t i = 0; i < env.n; i++)
			kiln_buf_printf(b, "%s%s=%lld", i ? ", " : "", env.names[i], (long long)env.values[i]);
		kiln_buf_printf(b, " (weight %g)", kiln_target_bench_weight(t, k));
	}
	kiln_buf_puts(b, t->nbench_sizes > 1
			 ? ". The objective is the weighted geometric mean of the per-size speedups over the seed (the "
			   "\"time\" of a candidate is the weighted geometric mean of its per-size times): a change that "
			   "helps one size and hurts another by as much gains nothing."
			 : ". The objective is the time at this size.");
}

static kiln_err target_section(kiln_buf *b, const kiln_target *t, const char *seed_knobs)
{
	kiln_buf_printf(b, "\n## Target: %s (%s)\n%s\n\nMath:\n%s\n\nBuffers:\n", t->name, t->family,
			t->summary, t->math);
	for (size_t i = 0; i < t->nbuffers; i++) {
		const kiln_buffer_spec *s = &t->buffers[i];
		kiln_buf_printf(b, "- %s: %s[", s->name, kiln_dtype_name(s->dtype));
		for (size_t d = 0; d < s->ndim; d++)
			kiln_buf_printf(b, "%s%s", d ? ", " : "", s->shape[d]);
		kiln_buf_printf(b, "], %s\n", s->role == KILN_ROLE_IN ? "in" : s->role == KILN_ROLE_OUT ? "out" : "inout");
	}
	kiln_buf_puts(b, "Scalars:");
	for (size_t i = 0; i < t->nscalars; i++)
		kiln_buf_printf(b, " %s (%s) = %g;", t->scalars[i].name, kiln_dtype_name(t->scalars[i].dtype),
				t->scalars[i].value);
	kiln_buf_puts(b, "\nSymbols (verified at these values and at odd sizes besides):");
	for (size_t i = 0; i < t->nsymbols; i++) {
		const kiln_symbol *s = &t->symbols[i];
		kiln_buf_printf(b, " %s in {", s->name);
		for (size_t j = 0; j < s->nverify; j++)
			kiln_buf_printf(b, "%s%lld", j ? ", " : "", (long long)s->verify[j]);
		kiln_buf_puts(b, "};");
	}
	bench_sizes_section(b, t);
	size_t masked = 0;
	for (size_t i = 0; i < t->nbuffers; i++)
		masked += t->buffers[i].masked_by != NULL;
	if (!masked) {
		kiln_buf_printf(b, "\nMinimum traffic: %s bytes (the roofline is this over peak DRAM bandwidth).\n",
				t->traffic_bytes);
	} else {
		kiln_buf_printf(b, "\nDeclared traffic: %s bytes, masked positions included. A kernel need not load masked "
				   "elements of", t->traffic_bytes);
		for (size_t i = 0; i < t->nbuffers; i++)
			if (t->buffers[i].masked_by)
				kiln_buf_printf(b, " %s", t->buffers[i].name);
		kiln_buf_puts(b, ", so the roofline (and the physical-limit check) is over the floor: the declared bytes "
				 "less those elements, counted on the drawn mask.\n");
	}
	if (t->nknobs) {
		kiln_buf_printf(b, "Knobs (every candidate is compiled with -D NAME=VALUE at the seed's values%s%s%s and "
				   "the same values are set in launch expressions; guard them with #ifndef, or give "
				   "constants you choose names of your own):", seed_knobs ? ", " : "",
				seed_knobs ? seed_knobs : "", seed_knobs ? "," : "");
		for (size_t i = 0; i < t->nknobs; i++) {
			kiln_buf_printf(b, " %s in {", t->knobs[i].name);
			for (size_t j = 0; j < t->knobs[i].n; j++)
				kiln_buf_printf(b, "%s%lld", j ? "," : "", (long long)t->knobs[i].values[j]);
			kiln_buf_puts(b, "};");
		}
		kiln_buf_puts(b, "\n");
	}
	return KILN_OK;
}

/* Appends text, cut to `max` bytes with a marker when longer. */
static void quote(kiln_buf *b, const char *what, const char *text, size_t max)
{
	size_t n = text ? strlen(text) : 0;
	kiln_buf_printf(b, "\n### %s\n", what);
	if (n <= max) {
		kiln_buf_append(b, text ? text : "", n);
	} else {
		kiln_buf_append(b, text, max);
		kiln_buf_printf(b, "\n[... %zu more bytes cut]", n - max);
	}
	kiln_buf_puts(b, "\n");
}

/* The last attempt's kernel (the base of edits) and, when known, its launch plan. */
static void last_attempt(kiln_buf *b, const kiln_prompt_input *in, const char *title)
{
	quote(b, title, in->last_source, EVIDENCE_MAX);
	if (in->last_launch)
		quote(b, "Its launch plan (kept with edits unless you send a plan)", in->last_launch, EVIDENCE_MAX);
}

/* The action's earlier attempts, so a model without memory does not repeat one. */
static void attempts(kiln_buf *b, const kiln_prompt_input *in)
{
	if (in->attempts && *in->attempts)
		quote(b, "This action's earlier attempts (oldest first)", in->attempts, EVIDENCE_MAX);
}

kiln_err kiln_prompt_build(kiln_prompt *out, const kiln_prompt_input *in)
{
	kiln_buf pre, var;
	kiln_buf_init(&pre, 1u << 20);
	kiln_buf_init(&var, 1u << 20);
	memset(out, 0, sizeof *out);
	kiln_buf_puts(&pre, rules);
	target_section(&pre, in->target, in->seed_knobs);
	if (in->seed_source)
		kiln_buf_printf(&pre, "\n## Seed kernel (the baseline)\n```cuda\n%s```\n```json\n%s\n```\n",
				in->seed_source, in->seed_launch ? in->seed_launch : "{}");
	if (in->world_model)
		kiln_buf_printf(&var, "\n## World model (tree of optimization hypotheses)\n%s\n", in->world_model);
	if (in->rejected_ops && *in->rejected_ops)
		kiln_buf_printf(&var, "\nYour previous edit script had rejected operations:\n%s\n", in->rejected_ops);
	if (in->search_state)
		kiln_buf_printf(&var, "\n## Search state\n%s\n", in->search_state);
	switch (in->kind) {
	case KILN_PROMPT_INIT:
		kiln_buf_puts(&var,
			"\n## Task: analyse the target\nAnalyse the math, the data layout, the bytes that must move and the "
			"bottleneck regimes (bandwidth, latency, launch overhead), then propose at least three mutually "
			"exclusive kernel families as open actions under the root (id 0). Reply with one ```json edit "
			"script: {\"ops\": [{\"op\": \"insert\", \"parent\": 0, \"title\", \"description\", \"rationale\", "
			"\"difficulty\": 1-5, \"score\": 0-1, \"expected_speedup\"}...]}.\n");
		break;
	case KILN_PROMPT_IMPLEMENT:
		kiln_buf_printf(&var, "\n## Task: implement action %lld\n%s\n", (long long)in->node_id,
				in->action ? in->action : "");
		if (in->parent_source)
			quote(&var, "Parent's best kernel: kernel.cu (start from this; edits apply to it)", in->parent_source,
			      EVIDENCE_MAX);
		if (in->parent_launch)
			quote(&var, "Parent's launch plan", in->parent_launch, EVIDENCE_MAX);
		if (in->best_source) {
			kiln_buf_printf(&var, "\n### The run's current best (%.3f us %s), for reference\nAnother family "
					      "holds the best time so far; this action starts from the seed, but what made "
					      "that kernel fast may apply here too, and this is the time to beat.\n",
					in->best_us, in->best_modeled ? "modeled" : "measured");
			quote(&var, "Current best kernel", in->best_source, EVIDENCE_MAX);
			if (in->best_launch)
				quote(&var, "Current best launch plan", in->best_launch, EVIDENCE_MAX);
		}
		kiln_buf_puts(&var, "\nReply with the kernel (a whole ```cuda kernel and its ```json launch plan, or ```edit / "
				 "```diff edits of the parent's best kernel above) and a CHANGED: line.\n");
		break;
	case KILN_PROMPT_DEBUG:
		kiln_buf_printf(&var, "\n## Task: fix your last attempt at action %lld\n%s\n", (long long)in->node_id,
				in->action ? in->action : "");
		last_attempt(&var, in, "Your last kernel: kernel.cu (edits apply to it)");
		quote(&var, "What went wrong", in->evidence, EVIDENCE_MAX);
		attempts(&var, in);
		kiln_buf_puts(&var, "\nReply with the corrected kernel (a whole ```cuda kernel and its ```json launch plan, or "
				 "```edit / ```diff edits of your last kernel above) and a CHANGED: line.\n");
		break;
	case KILN_PROMPT_IMPROVE:
		kiln_buf_printf(&var, "\n## Task: make action %lld faster\n%s\n", (long long)in->node_id,
				in->action ? in->action : "");
		last_attempt(&var, in, "Your last kernel, it passed: kernel.cu (edits apply to it)");
		quote(&var, "Timing and counters", in->evidence, EVIDENCE_MAX);
		attempts(&var, in);
		kiln_buf_puts(&var, "\nReply with a faster kernel (a whole ```cuda kernel and its ```json launch plan, or "
				 "```edit / ```diff edits of your last kernel above) and a CHANGED: line. Do not repeat an "
				 "experiment the table of earlier attempts already shows.\n");
		break;
	case KILN_PROMPT_REFLECT:
		kiln_buf_printf(&var, "\n## Task: reflect on action %lld\n", (long long)in->node_id);
		quote(&var, "Outcome", in->evidence, EVIDENCE_MAX);
		attempts(&var, in);
		kiln_buf_puts(&var,
			"\nUpdate the world model with one ```json edit script: re-score nodes, record what you learned "
			"in notes, and insert at least one open child under a solved node (ops: insert, update, split, "
			"delete of an open leaf).\n");
		break;
	}
	if (in->retry_reason) {
		quote(&var, "Your last reply to this task could not be used", in->retry_reason, EVIDENCE_MAX);
		kiln_buf_puts(&var, "\nAnswer the same task again, in the format it asks for.\n");
	}
	/* the appends above are unchecked: a kiln_buf's error is sticky, so one check here
	 * fails the call rather than send a prompt with a hole in it */
	kiln_err e = kiln_buf_check(&pre, "the prompt's stable prefix");
	if (!e)
		e = kiln_buf_check(&var, "the prompt's task");
	if (!e && (!pre.data || !var.data))
		e = kiln_error_set(KILN_ENOMEM, "building the prompt");
	if (e) {
		kiln_buf_free(&pre);
		kiln_buf_free(&var);
		return e;
	}
	out->prefix = kiln_buf_detach(&pre);
	out->task = kiln_buf_detach(&var);
	return out->prefix && out->task ? KILN_OK : KILN_ENOMEM;
}

void kiln_prompt_free(kiln_prompt *p)
{
	if (!p)
		return;
	free(p->prefix);
	free(p->task);
	p->prefix = p->task = NULL;
}
