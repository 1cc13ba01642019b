/* Strict readers over cJSON: every failure names the file and the field path and
 * says what was expected, so a user can fix a target.json from one line. */
#include "util/util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

kiln_err kiln_json_parse(cJSON **out, const char *text, size_t len, const char *where)
{
	const char *end = NULL;
	*out = NULL;
	kiln_err e = kiln_json_check(text, len, where);
	if (e)
		return e;
	*out = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (!*out) {
		size_t off = end ? (size_t)(end - text) : 0;
		size_t line = 1;
		for (size_t i = 0; i < off && i < len; i++)
			line += text[i] == '\n';
		return kiln_error_set(KILN_EINVAL, "%s: invalid JSON near line %zu", where, line);
	}
	return KILN_OK;
}

kiln_err kiln_json_parse_file(cJSON **out, const char *path, size_t max_bytes)
{
	char *text = NULL;
	size_t len = 0;
	*out = NULL;
	kiln_err e = kiln_file_read(&text, &len, path, max_bytes ? max_bytes : (16u << 20));
	if (e)
		return e;
	e = kiln_json_parse(out, text, len, path);
	free(text);
	return e;
}

static kiln_err expect(const cJSON *obj, const char *key, const char *where, const char *what,
		       const cJSON **item)
{
	if (!cJSON_IsObject(obj))
		return kiln_error_set(KILN_EINVAL, "%s: expected an object", where);
	*item = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!*item)
		return kiln_error_set(KILN_EINVAL, "%s: missing field \"%s\" (%s)", where, key, what);
	return KILN_OK;
}

static kiln_err wrong(const char *where, const char *key, const char *what)
{
	return kiln_error_set(KILN_EINVAL, "%s: field \"%s\": expected %s", where, key, what);
}

kiln_err kiln_json_string(const char **out, const cJSON *obj, const char *key, const char *where)
{
	const cJSON *it;
	kiln_err e = expect(obj, key, where, "a string", &it);
	if (e)
		return e;
	if (!cJSON_IsString(it))
		return wrong(where, key, "a string");
	*out = it->valuestring;
	return KILN_OK;
}

kiln_err kiln_json_number(double *out, const cJSON *obj, const char *key, const char *where)
{
	const cJSON *it;
	kiln_err e = expect(obj, key, where, "a number", &it);
	if (e)
		return e;
	if (!cJSON_IsNumber(it))
		return wrong(where, key, "a number");
	*out = it->valuedouble;
	return KILN_OK;
}

kiln_err kiln_json_int(int64_t *out, const cJSON *obj, const char *key, const char *where)
{
	double d;
	kiln_err e = kiln_json_number(&d, obj, key, where);
	if (e)
		return e;
	if (d != floor(d) || fabs(d) > 9007199254740992.0)
		return wrong(where, key, "an integer");
	*out = (int64_t)d;
	return KILN_OK;
}

kiln_err kiln_json_bool(bool *out, const cJSON *obj, const char *key, const char *where)
{
	const cJSON *it;
	kiln_err e = expect(obj, key, where, "true or false", &it);
	if (e)
		return e;
	if (!cJSON_IsBool(it))
		return wrong(where, key, "true or false");
	*out = cJSON_IsTrue(it);
	return KILN_OK;
}

kiln_err kiln_json_array(const cJSON **out, const cJSON *obj, const char *key, const char *where)
{
	kiln_err e = expect(obj, key, where, "an array", out);
	if (e)
		return e;
	return cJSON_IsArray(*out) ? KILN_OK : wrong(where, key, "an array");
}

kiln_err kiln_json_object(const cJSON **out, const cJSON *obj, const char *key, const char *where)
{
	kiln_err e = expect(obj, key, where, "an object", out);
	if (e)
		return e;
	return cJSON_IsObject(*out) ? KILN_OK : wrong(where, key, "an object");
}

#define OPTIONAL(fn, type)                                                                 \
	kiln_err kiln_json_opt_##fn(type *out, const cJSON *obj, const char *key,          \
				    const char *where)                                     \
	{                                                                                  \
		if (!cJSON_IsObject(obj))                                                  \
			return kiln_error_set(KILN_EINVAL, "%s: expected an object", where); \
		if (!cJSON_GetObjectItemCaseSensitive(obj, key))                           \
			return KILN_OK;                                                    \
		return kiln_json_##fn(out, obj, key, where);                               \
	}
OPTIONAL(string, const char *)
OPTIONAL(number, double)
OPTIONAL(int, int64_t)
OPTIONAL(bool, bool)

kiln_err kiln_json_only_keys(const cJSON *obj, const char *const *allowed, const char *where)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, obj) {
		bool ok = false;
		for (const char *const *a = allowed; *a; a++)
			if (it->string && strcmp(it->string, *a) == 0)
				ok = true;
		if (!ok) {
			kiln_buf b;
			kiln_buf_init(&b, 1024);
			for (const char *const *a = allowed; *a; a++)
				kiln_buf_printf(&b, "%s%s", a == allowed ? "" : ", ", *a);
			kiln_err e = kiln_error_set(KILN_EINVAL, "%s: unknown field \"%s\" (known: %s)",
						    where, it->string ? it->string : "?", b.data ? b.data : "");
			kiln_buf_free(&b);
			return e;
		}
	}
	return KILN_OK;
}
