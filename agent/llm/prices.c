/* llm: the price table (USD per million tokens) from data/prices.json, with a user's file
 * merged over it, and the cost of a call. A model missing from the table has no price: its
 * calls cost NaN (unknown), never 0. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/llm/llm_int.h"

typedef struct price_entry {
	char *name;            /* "anthropic:claude-sonnet-4-5" or "gpt-5" */
	kiln_llm_price price;
} price_entry;

struct kiln_llm_prices {
	price_entry *e;
	size_t n;
};

static kiln_err put_entry(kiln_llm_prices *p, const char *name, const kiln_llm_price *pr)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->e[i].name, name) == 0) {
			p->e[i].price = *pr;
			return KILN_OK;
		}
	price_entry *ne = kiln_realloc(p->e, (p->n + 1) * sizeof *ne);
	if (!ne)
		return KILN_ENOMEM;
	p->e = ne;
	if (!(ne[p->n].name = kiln_strdup(name)))
		return KILN_ENOMEM;
	ne[p->n++].price = *pr;
	return KILN_OK;
}

static kiln_err read_price(kiln_llm_price *out, const cJSON *m, const char *where)
{
	static const char *const keys[] = {"input", "cached_input", "cache_write", "output", "note", NULL};
	kiln_err e;
	if ((e = kiln_json_only_keys(m, keys, where)) || (e = kiln_json_number(&out->input, m, "input", where)) ||
	    (e = kiln_json_number(&out->output, m, "output", where)))
		return e;
	out->cached_input = out->input; /* no cache discount unless stated */
	out->cache_write = out->input;
	if ((e = kiln_json_opt_number(&out->cached_input, m, "cached_input", where)) ||
	    (e = kiln_json_opt_number(&out->cache_write, m, "cache_write", where)))
		return e;
	double v[4] = {out->input, out->cached_input, out->cache_write, out->output};
	for (int i = 0; i < 4; i++)
		if (!(v[i] >= 0 && v[i] < 1e6))
			return kiln_error_set(KILN_EINVAL, "%s: prices must be USD per million tokens, >= 0", where);
	return KILN_OK;
}

static kiln_err load_file(kiln_llm_prices *p, const char *path)
{
	static const char *const top[] = {"models", "units", "updated", "sources", "_comment", NULL};
	cJSON *root = NULL;
	const cJSON *models;
	kiln_err e = kiln_json_parse_file(&root, path, 4u << 20);
	if (e)
		return e;
	if ((e = kiln_json_only_keys(root, top, path)) || (e = kiln_json_object(&models, root, "models", path)))
		goto done;
	const cJSON *m;
	cJSON_ArrayForEach(m, models) {
		char where[512];
		snprintf(where, sizeof where, "%s: models.%s", path, m->string);
		kiln_llm_price pr;
		if (!cJSON_IsObject(m)) {
			e = kiln_error_set(KILN_EINVAL, "%s: expected an object", where);
			goto done;
		}
		if ((e = read_price(&pr, m, where)) || (e = put_entry(p, m->string, &pr)))
			goto done;
	}
done:
	cJSON_Delete(root);
	return e;
}

kiln_err kiln_llm_prices_load(kiln_llm_prices **out, const char *base, const char *override)
{
	kiln_llm_prices *p = kiln_calloc(1, sizeof *p);
	if (!p)
		return KILN_ENOMEM;
	kiln_err e = KILN_OK;
	if (base && (e = load_file(p, base)))
		goto fail;
	if (override && *override && (e = load_file(p, override)))
		goto fail;
	*out = p;
	return KILN_OK;
fail:
	kiln_llm_prices_free(p);
	return e;
}

void kiln_llm_prices_free(kiln_llm_prices *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->e[i].name);
	free(p->e);
	free(p);
}

static const price_entry *exact(const kiln_llm_prices *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->e[i].name, name) == 0)
			return &p->e[i];
	return NULL;
}

/* A dated snapshot or alias of a priced model: "-20250929", "-2024-08-06", "-latest". */
static bool snapshot_suffix(const char *rest)
{
	if (rest[0] != '-')
		return false;
	if (strcmp(rest, "-latest") == 0)
		return true;
	size_t d = 0;
	while (rest[1 + d] >= '0' && rest[1 + d] <= '9')
		d++;
	return d >= 4;
}

/* Longest entry (bare, or of this provider) that model extends with a snapshot suffix:
 * "claude-sonnet-4-5-20250929" costs what "claude-sonnet-4-5" does; "gpt-5-nano" never
 * costs what "gpt-5" does. */
static const price_entry *prefix(const kiln_llm_prices *p, const char *provider, const char *model)
{
	const price_entry *best = NULL;
	size_t best_len = 0, plen = strlen(provider);
	for (size_t i = 0; i < p->n; i++) {
		const char *n = p->e[i].name, *colon = strchr(n, ':');
		if (colon) {
			if ((size_t)(colon - n) != plen || strncmp(n, provider, plen) != 0)
				continue;
			n = colon + 1;
		}
		size_t l = strlen(n);
		if (l > best_len && strncmp(model, n, l) == 0 && snapshot_suffix(model + l)) {
			best = &p->e[i];
			best_len = l;
		}
	}
	return best;
}

bool kiln_llm_prices_find(const kiln_llm_prices *p, kiln_llm_price *out, const char *provider,
			  const char *model)
{
	if (!p || !model)
		return false;
	char full[256];
	snprintf(full, sizeof full, "%s:%s", provider ? provider : "", model);
	const char *slash = strrchr(model, '/');
	const price_entry *e = exact(p, full);
	if (!e)
		e = exact(p, model);
	if (!e && slash)
		e = exact(p, slash + 1);
	if (!e)
		e = prefix(p, provider ? provider : "", slash ? slash + 1 : model);
	if (e)
		*out = e->price;
	return e != NULL;
}

double kiln_llm_cost(const kiln_llm_price *p, const kiln_llm_usage *u)
{
	if (!u->known)
		return NAN;
	int64_t fresh = u->prompt - u->cached - u->cache_write;
	if (fresh < 0)
		fresh = 0;
	return ((double)fresh * p->input + (double)u->cached * p->cached_input +
		(double)u->cache_write * p->cache_write + (double)u->completion * p->output) / 1e6;
}
