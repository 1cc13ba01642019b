/* Strict parsing of an LLM reply into its parts: the kernel (a ```cuda / ```cpp / ```c++
 * / ```cu fenced block, or edits to the task's kernel: an ```edit block of search/replace
 * blocks or a ```diff block), the launch plan (a ```json block whose object has
 * "launches"), the world-model edit script (a ```json block whose object has "ops") and
 * the one-line "CHANGED: ..." outside the blocks. Anything ambiguous — two kernels, a
 * kernel and edits, an unterminated fence — is an error the LLM is told about. */
#include "agent/agent.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fence {
	const char *lang; /* points into the text; length lang_len */
	size_t lang_len;
	const char *body;
	size_t body_len;
	size_t line;      /* 1-based line of the opening fence */
} fence;

static bool lang_is(const fence *f, const char *const *names)
{
	for (; *names; names++)
		if (strlen(*names) == f->lang_len && strncasecmp(f->lang, *names, f->lang_len) == 0)
			return true;
	return false;
}

/* Finds the next fenced block at or after *pos. Returns 1 found, 0 none, <0 error. */
static int next_fence(fence *out, const char *text, size_t len, size_t *pos, size_t *line)
{
	size_t i = *pos;
	while (i < len) {
		size_t eol = i;
		while (eol < len && text[eol] != '\n')
			eol++;
		const char *l = text + i;
		size_t n = eol - i, k = 0;
		while (k < n && (l[k] == ' ' || l[k] == '\t') && k < 4)
			k++;
		if (n - k >= 3 && strncmp(l + k, "```", 3) == 0) {
			size_t open_line = *line;
			const char *lang = l + k + 3;
			size_t lang_len = 0;
			while (lang + lang_len < text + eol && !isspace((unsigned char)lang[lang_len]))
				lang_len++;
			size_t body_start = eol < len ? eol + 1 : len;
			size_t j = body_start;
			(*line)++;
			while (j < len) {
				size_t e2 = j;
				while (e2 < len && text[e2] != '\n')
					e2++;
				size_t m = 0;
				while (j + m < e2 && (text[j + m] == ' ' || text[j + m] == '\t'))
					m++;
				if (e2 - j - m >= 3 && strncmp(text + j + m, "```", 3) == 0) {
					out->lang = lang;
					out->lang_len = lang_len;
					out->body = text + body_start;
					out->body_len = j - body_start;
					out->line = open_line;
					*pos = e2 < len ? e2 + 1 : len;
					(*line)++;
					return 1;
				}
				(*line)++;
				j = e2 < len ? e2 + 1 : len;
			}
			kiln_error_set(KILN_EINVAL, "reply line %zu: code block opened with ``` is never closed",
				       open_line);
			return -1;
		}
		(*line)++;
		i = eol < len ? eol + 1 : len;
	}
	*pos = len;
	return 0;
}

static const char *const kernel_langs[] = {"cuda", "cu", "cpp", "c++", "cxx", "c", NULL};
static const char *const json_langs[] = {"json", "jsonc", NULL};
static const char *const edit_langs[] = {"edit", "edits", NULL};
static const char *const diff_langs[] = {"diff", "patch", "udiff", NULL};

/* Classifies a ```json block by its top-level keys. */
static kiln_err classify_json(const fence *f, bool *is_launch, bool *is_edits)
{
	cJSON *j = NULL;
	char where[64];
	*is_launch = *is_edits = false;
	snprintf(where, sizeof where, "reply line %zu: the ```json block", f->line);
	/* the one strict rule: a plan that passes here is valid JSON for history.db too */
	kiln_err e = kiln_json_parse(&j, f->body, f->body_len, where);
	if (e)
		return e;
	*is_launch = cJSON_IsObject(j) && cJSON_GetObjectItemCaseSensitive(j, "launches");
	*is_edits = cJSON_IsObject(j) && cJSON_GetObjectItemCaseSensitive(j, "ops");
	cJSON_Delete(j);
	if (!*is_launch && !*is_edits)
		return kiln_error_set(KILN_EINVAL,
				      "reply line %zu: a ```json block must be a launch plan (with \"launches\") or an edit script (with \"ops\")",
				      f->line);
	return KILN_OK;
}

static kiln_err take(char **slot, const fence *f, const char *what)
{
	if (*slot)
		return kiln_error_set(KILN_EINVAL, "reply line %zu: a second %s block; send exactly one", f->line, what);
	/* a NUL would cut the stored text short of what was checked (found by fuzz_reply) */
	if (memchr(f->body, '\0', f->body_len))
		return kiln_error_set(KILN_EINVAL, "reply line %zu: the %s block contains a NUL byte", f->line, what);
	*slot = kiln_strndup(f->body, f->body_len);
	return *slot ? KILN_OK : KILN_ENOMEM;
}

/* True when a line (without its '\n') opens or closes a fence: ``` after at most 4 blanks. */
static bool fence_line(const char *l, size_t n)
{
	size_t k = 0;
	while (k < n && k < 4 && (l[k] == ' ' || l[k] == '\t'))
		k++;
	return n - k >= 3 && strncmp(l + k, "```", 3) == 0;
}

/* The first "CHANGED: ..." line outside the fenced blocks (markdown emphasis, a list
 * bullet or a heading mark before it allowed): escaped to one visible line, redacted and
 * cut after a word at KILN_CHANGED_MAX bytes. NULL when there is none or it is empty. */
static char *changed_line(const char *text, size_t len)
{
	bool in = false;
	for (size_t i = 0; i < len;) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (text + i)) : len - i;
		const char *l = text + i;
		i += n + 1;
		if (fence_line(l, n)) {
			in = !in;
			continue;
		}
		size_t k = 0;
		while (!in && k < n && strchr(" \t*_#>-", l[k]))
			k++;
		if (in || n - k < 8 || strncasecmp(l + k, "changed", 7))
			continue;
		k += 7;
		while (k < n && (l[k] == '*' || l[k] == '_' || l[k] == ' '))
			k++;
		if (k >= n || l[k] != ':')
			continue;
		k++;
		while (k < n && strchr(" \t*_", l[k]))
			k++;
		size_t e = n;
		while (e > k && strchr(" \t\r*_", l[e - 1]))
			e--;
		if (e == k)
			return NULL;
		char *raw = kiln_strndup(l + k, e - k > 4 * KILN_CHANGED_MAX ? 4 * KILN_CHANGED_MAX : e - k);
		char *red = raw ? kiln_redact(raw) : NULL;
		char *esc = red ? kiln_text_escape(red, KILN_TEXT_LINE) : NULL;
		free(red);
		if (esc)
			esc[kiln_text_word_cut(esc, KILN_CHANGED_MAX)] = '\0';
		return esc;
	}
	return NULL;
}

kiln_err kiln_reply_check_kernel(const char *k, const char *what)
{
	if (strstr(k, "<<<<<<< SEARCH") || strstr(k, ">>>>>>> REPLACE"))
		return kiln_error_set(KILN_EINVAL, "%s holds search/replace markers: send edits in an ```edit block, "
				      "or the whole kernel without them", what);
	if (strstr(k, "__global__") == NULL)
		return kiln_error_set(KILN_EINVAL, "%s has no __global__ kernel", what);
	if (strstr(k, "int main(") || strstr(k, "cudaMalloc") || strstr(k, "<<<"))
		return kiln_error_set(KILN_EINVAL, "%s contains host code (main, cudaMalloc or <<<>>>); send device code only",
				      what);
	return KILN_OK;
}

kiln_err kiln_reply_parse(kiln_reply_parts *out, const char *text, size_t len, unsigned want)
{
	memset(out, 0, sizeof *out);
	size_t pos = 0, line = 1;
	kiln_err e = KILN_OK;
	fence f;
	int r;
	while ((r = next_fence(&f, text, len, &pos, &line)) == 1) {
		if (lang_is(&f, kernel_langs)) {
			if ((e = take(&out->kernel, &f, "kernel (```cuda)")))
				goto done;
		} else if (lang_is(&f, edit_langs)) {
			if ((e = take(&out->edit, &f, "```edit")))
				goto done;
		} else if (lang_is(&f, diff_langs)) {
			if ((e = take(&out->diff, &f, "```diff")))
				goto done;
		} else if (lang_is(&f, json_langs)) {
			bool is_launch, is_edits;
			if ((e = classify_json(&f, &is_launch, &is_edits)))
				goto done;
			if (is_launch && (e = take(&out->launch_json, &f, "launch plan (```json with \"launches\")")))
				goto done;
			if (is_edits && (e = take(&out->edits_json, &f, "edit script (```json with \"ops\")")))
				goto done;
		}
		/* other languages (text, sh) are commentary and ignored */
	}
	if (r < 0) {
		e = KILN_EINVAL;
		goto done;
	}
	int code = !!out->kernel + !!out->edit + !!out->diff;
	if (code > 1) {
		e = kiln_error_set(KILN_EINVAL, "reply has %s; send exactly one: a whole kernel (```cuda), search/replace "
				   "blocks (```edit) or a unified diff (```diff)",
				   out->kernel ? (out->edit ? "a ```cuda kernel and an ```edit block" : "a ```cuda kernel and a ```diff block")
					       : "an ```edit block and a ```diff block");
		goto done;
	}
	if ((want & KILN_REPLY_KERNEL) && code == 0) {
		/* markers outside a block: say where they belong */
		bool loose = len >= 14 && memmem(text, len, "<<<<<<< SEARCH", 14) != NULL;
		e = kiln_error_set(KILN_EINVAL, loose
				   ? "reply has search/replace blocks outside a fenced block: put them in one ```edit block"
				   : "reply has no kernel: send a whole kernel in a ```cuda block, or edits in an ```edit "
				     "(search/replace) or ```diff block");
		goto done;
	}
	if ((want & KILN_REPLY_LAUNCH) && out->kernel && !out->launch_json) {
		e = kiln_error_set(KILN_EINVAL, "reply has no ```json block with the launch plan (\"launches\")");
		goto done;
	}
	if ((want & KILN_REPLY_EDITS) && !out->edits_json) {
		e = kiln_error_set(KILN_EINVAL, "reply has no ```json block with the edit script (\"ops\")");
		goto done;
	}
	if (out->kernel && (e = kiln_reply_check_kernel(out->kernel, "the ```cuda block")))
		goto done;
	out->changed = changed_line(text, len);
done:
	if (e)
		kiln_reply_parts_free(out);
	return e;
}

void kiln_reply_parts_free(kiln_reply_parts *p)
{
	if (!p)
		return;
	free(p->kernel);
	free(p->edit);
	free(p->diff);
	free(p->changed);
	free(p->launch_json);
	free(p->edits_json);
	memset(p, 0, sizeof *p);
}
