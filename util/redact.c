/* Redaction: the values kiln must never store, print or send (the provider key, and the
 * environment's variables whose names look secret) are replaced by "[redacted]" at every
 * boundary: history.db writes, the progress line, LLM request bodies, archive commits.
 * Linear time: one memmem pass (glibc's two-way search) per secret, one output buffer,
 * so a 1 MiB reply that repeats the key costs milliseconds. Secrets are registered before
 * any thread starts (cli/main.c, kiln_llm_new) and are process-wide. */
#include "util/util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SECRETS 256
#define MIN_SECRET 8 /* shorter values would redact ordinary words and numbers */

static char *secrets[MAX_SECRETS];
static size_t nsecrets;
static const char mark[] = "[redacted]";

kiln_err kiln_redact_add(const char *secret)
{
	size_t n = secret ? strlen(secret) : 0;
	bool letter = false;
	for (size_t i = 0; i < n; i++)
		letter = letter || isalpha((unsigned char)secret[i]);
	if (n < MIN_SECRET || !letter)
		return KILN_OK; /* too short, or a number: not worth breaking every text for */
	for (size_t i = 0; i < nsecrets; i++)
		if (strcmp(secrets[i], secret) == 0)
			return KILN_OK;
	if (nsecrets == MAX_SECRETS)
		return kiln_error_set(KILN_EOVERFLOW, "more than %d secrets to redact", MAX_SECRETS);
	char *s = kiln_strdup(secret);
	if (!s)
		return KILN_ENOMEM;
	/* longest first, so a secret that contains another is redacted whole */
	size_t at = nsecrets;
	while (at > 0 && strlen(secrets[at - 1]) < n) {
		secrets[at] = secrets[at - 1];
		at--;
	}
	secrets[at] = s;
	nsecrets++;
	return KILN_OK;
}

static bool secret_name(const char *name, size_t n)
{
	static const char *const words[] = {"KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", NULL};
	for (const char *const *w = words; *w; w++) {
		size_t wl = strlen(*w);
		for (size_t i = 0; i + wl <= n; i++)
			if (strncasecmp(name + i, *w, wl) == 0)
				return true;
	}
	return false;
}

extern char **environ;

kiln_err kiln_redact_from_env(void)
{
	for (char **e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		kiln_err r;
		if (eq && secret_name(*e, (size_t)(eq - *e)) && (r = kiln_redact_add(eq + 1)))
			return r;
	}
	return KILN_OK;
}

size_t kiln_redact_count(void)
{
	return nsecrets;
}

void kiln_redact_reset(void)
{
	for (size_t i = 0; i < nsecrets; i++) {
		memset(secrets[i], 0, strlen(secrets[i]));
		free(secrets[i]);
	}
	nsecrets = 0;
}

/* One secret over s[0..n): a fresh buffer when it occurs (length in *out_n), else NULL.
 * *fail set when out of memory. */
static char *replace_one(const char *s, size_t n, const char *sec, size_t *out_n, bool *fail)
{
	size_t sl = strlen(sec);
	const char *hit = memmem(s, n, sec, sl);
	if (!hit)
		return NULL;
	kiln_buf b;
	kiln_buf_init(&b, 0);
	const char *p = s, *end = s + n;
	while (hit) {
		if (kiln_buf_append(&b, p, (size_t)(hit - p)) || kiln_buf_append(&b, mark, sizeof mark - 1)) {
			*fail = true;
			kiln_buf_free(&b);
			return NULL;
		}
		p = hit + sl;
		hit = memmem(p, (size_t)(end - p), sec, sl);
	}
	if (kiln_buf_append(&b, p, (size_t)(end - p))) {
		*fail = true;
		kiln_buf_free(&b);
		return NULL;
	}
	*out_n = b.len;
	return kiln_buf_detach(&b);
}

/* Blanks every occurrence in place when there is no memory for a copy. */
static void blank(char *s, size_t n, const char *sec)
{
	size_t sl = strlen(sec);
	for (char *h = memmem(s, n, sec, sl); h; h = memmem(h + sl, n - (size_t)(h + sl - s), sec, sl))
		memset(h, '*', sl);
}

static char *redact_list(char *s, char *const *list, size_t nlist)
{
	if (!s)
		return s;
	size_t n = strlen(s);
	for (size_t i = 0; i < nlist; i++) {
		bool fail = false;
		size_t nn = 0;
		char *r = replace_one(s, n, list[i], &nn, &fail);
		if (fail)
			blank(s, n, list[i]);
		if (r) {
			free(s);
			s = r;
			n = nn;
		}
	}
	return s;
}

char *kiln_redact(char *s)
{
	return redact_list(s, secrets, nsecrets);
}

char *kiln_redact_one(char *s, const char *secret)
{
	if (!secret || strlen(secret) < MIN_SECRET)
		return s;
	char *list[1] = {(char *)secret};
	return redact_list(s, list, 1);
}

char *kiln_redact_dup(const char *s)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < nsecrets; i++)
		if (strstr(s, secrets[i]))
			return kiln_redact(kiln_strdup(s));
	return NULL;
}
