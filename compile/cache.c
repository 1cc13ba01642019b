/* compile: the content-addressed cache. key = SHA-256 over length-prefixed fields:
 * format tag, source, arch, toolkit versions, sorted flags, sorted defines, include dirs
 * in order (paths only: headers under them are not hashed — candidates are single files).
 * want_cubin is not in the key: an entry with a cubin serves a PTX-only request too (one
 * compile per candidate: evaluation links the cubin, verification on the emulator wants
 * the same PTX), and a cubin request on a PTX-only entry is a miss that rewrites it. An entry is <dir>/<aa>/<key>.{ptx,cubin,log,json}; the .json, written
 * last, records the SHA-256 of the others, so a torn or damaged entry is detected,
 * counted, ignored and rewritten. Every file is written atomically. */
#include "compile/compile_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#define CACHE_FORMAT 1
#define CACHE_MAX_FILE (256u << 20)

static void put_field(kiln_sha256 *h, const void *data, size_t n)
{
	uint8_t len[8];
	for (int i = 0; i < 8; i++)
		len[i] = (uint8_t)((uint64_t)n >> (8 * i));
	kiln_sha256_update(h, len, sizeof(len));
	kiln_sha256_update(h, data, n);
}

static void put_str(kiln_sha256 *h, const char *s)
{
	put_field(h, s, strlen(s));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Hashes a list as count + entries, sorted when order does not matter to NVRTC. */
static kiln_err put_list(kiln_sha256 *h, const char *const *v, size_t n, bool sort)
{
	char count[32];
	snprintf(count, sizeof(count), "%zu", n);
	put_str(h, count);
	if (n == 0)
		return KILN_OK;
	const char **copy = kiln_malloc(n * sizeof(*copy));
	if (!copy)
		return KILN_ENOMEM;
	memcpy(copy, v, n * sizeof(*copy));
	if (sort)
		qsort(copy, n, sizeof(*copy), cmp_str);
	for (size_t i = 0; i < n; i++)
		put_str(h, copy[i]);
	free(copy);
	return KILN_OK;
}

kiln_err kiln_compile_key(char out[65], const kiln_compile_options *opts)
{
	char tk[64];
	kiln_sha256 h;
	uint8_t d[32];
	kiln_err e;
	if (!opts->source)
		return kiln_error_set(KILN_EINVAL, "no source to compile");
	if ((e = kiln_compile_toolkit_version(tk, sizeof(tk))))
		return e;
	kiln_sha256_init(&h);
	put_str(&h, "kiln-compile-cache-v2");
	put_str(&h, opts->source);
	put_str(&h, opts->arch ? opts->arch : "sm_90");
	put_str(&h, tk);
	put_str(&h, KILN_CUDA_ROOT);
	if ((e = put_list(&h, opts->flags, opts->nflags, true)) ||
	    (e = put_list(&h, opts->defines, opts->ndefines, true)) ||
	    (e = put_list(&h, opts->include_dirs, opts->nincludes, false)))
		return e;
	kiln_sha256_final(&h, d);
	kiln_hex(out, d, sizeof(d));
	return KILN_OK;
}

static char *entry_path(const char *dir, const char *key, const char *ext)
{
	return kiln_asprintf("%s/%.2s/%s.%s", dir, key, key, ext);
}

/* Reads one entry file and checks its hash against the record; NULL data for an
 * absent optional part (recorded hash ""). */
static bool read_part(char **data, size_t *len, const char *dir, const char *key,
		      const char *ext, const char *want_hash)
{
	*data = NULL;
	*len = 0;
	if (!want_hash[0])
		return true;
	char *path = entry_path(dir, key, ext), hex[65];
	bool ok = path && kiln_file_read(data, len, path, CACHE_MAX_FILE) == KILN_OK;
	free(path);
	if (ok) {
		kiln_sha256_hex(hex, *data, *len);
		ok = strcmp(hex, want_hash) == 0;
	}
	if (!ok) {
		free(*data);
		*data = NULL;
	}
	return ok;
}

/* "old(" at a line start and "\"old\"" become the new name, so a cached log names the file asked for now. */
static char *rename_log(const char *log, const char *old, const char *new)
{
	kiln_buf b = KILN_BUF_INIT;
	size_t ol = strlen(old);
	if (ol == 0 || strcmp(old, new) == 0)
		return kiln_strdup(log);
	for (const char *p = log; *p;) {
		const char *hit = strstr(p, old);
		if (!hit) {
			if (kiln_buf_puts(&b, p))
				goto fail;
			break;
		}
		if (kiln_buf_append(&b, p, (size_t)(hit - p)))
			goto fail;
		bool at_line = hit[ol] == '(' && (hit == log || hit[-1] == '\n');
		bool quoted = hit > log && hit[-1] == '"' && hit[ol] == '"';
		if (at_line || quoted) {
			if (kiln_buf_puts(&b, new))
				goto fail;
		} else if (kiln_buf_append(&b, hit, ol)) {
			goto fail;
		}
		p = hit + ol;
	}
	return kiln_buf_detach(&b);
fail:
	kiln_buf_free(&b);
	return NULL;
}

bool kiln_compile_cache_get(kiln_compiled **out, const char *dir, const char *key,
			    const char *name, bool want_cubin)
{
	*out = NULL;
	char *meta_path = entry_path(dir, key, "json"), *log = NULL;
	cJSON *meta = NULL;
	kiln_compiled *c = NULL;
	bool hit = false, corrupt = true;
	const char *h_ptx = NULL, *h_cubin = NULL, *h_log = NULL, *old_name = NULL, *info = NULL;
	const char *rkey = NULL;
	const cJSON *res = NULL;
	int64_t format = 0;
	bool ok = false;
	size_t loglen = 0;
	if (!meta_path)
		goto done;
	if (!kiln_path_exists(meta_path)) {
		corrupt = false;
		goto done;
	}
	if (kiln_json_parse_file(&meta, meta_path, CACHE_MAX_FILE) ||
	    kiln_json_int(&format, meta, "format", meta_path) || format != CACHE_FORMAT ||
	    kiln_json_string(&rkey, meta, "key", meta_path) || strcmp(rkey, key) != 0 ||
	    kiln_json_bool(&ok, meta, "ok", meta_path) ||
	    kiln_json_string(&old_name, meta, "name", meta_path) ||
	    kiln_json_string(&h_ptx, meta, "ptx_sha256", meta_path) ||
	    kiln_json_string(&h_cubin, meta, "cubin_sha256", meta_path) ||
	    kiln_json_string(&h_log, meta, "log_sha256", meta_path) ||
	    kiln_json_string(&info, meta, "info_log", meta_path) ||
	    kiln_json_object(&res, meta, "resources", meta_path))
		goto done;
	if (ok && (!h_ptx[0] || (want_cubin && !h_cubin[0])))
		goto done;
	if (!(c = kiln_calloc(1, sizeof(*c))))
		goto done;
	c->ok = ok;
	memcpy(c->key, key, 65);
	if (kiln_compile_resources_from_cjson(c, res, meta_path) ||
	    !read_part(&c->ptx, &c->ptx_len, dir, key, "ptx", h_ptx) ||
	    !read_part((char **)&c->cubin, &c->cubin_len, dir, key, "cubin", h_cubin) ||
	    !read_part(&log, &loglen, dir, key, "log", h_log))
		goto done;
	if (!(c->log = kiln_text_cap(rename_log(log ? log : "", old_name, name), KILN_LOG_MAX)) || !(c->info_log = kiln_strdup(info))) {
		corrupt = false; /* out of memory, not damage */
		goto done;
	}
	hit = true;
	corrupt = false;
done:
	if (corrupt)
		kiln_compile_count_corrupt();
	if (!hit)
		kiln_compiled_free(c);
	else
		*out = c;
	kiln_error_clear(); /* a miss or a damaged entry is not an error to report */
	cJSON_Delete(meta);
	free(log);
	free(meta_path);
	return hit;
}

static kiln_err write_part(const char *dir, const char *key, const char *ext, const void *data,
			   size_t len, char hash[65])
{
	hash[0] = '\0';
	if (!data)
		return KILN_OK;
	char *path = entry_path(dir, key, ext);
	if (!path)
		return KILN_ENOMEM;
	kiln_err e = kiln_file_write_atomic(path, data, len);
	free(path);
	if (!e)
		kiln_sha256_hex(hash, data, len);
	return e;
}

kiln_err kiln_compile_cache_put(const char *dir, const kiln_compiled *c, const char *name)
{
	char *sub = kiln_asprintf("%s/%.2s", dir, c->key), *meta_path = NULL, *text = NULL;
	char h_ptx[65], h_cubin[65], h_log[65];
	cJSON *meta = NULL, *res = NULL;
	kiln_err e = KILN_OK;
	if (!sub)
		return KILN_ENOMEM;
	if ((e = kiln_mkdir_p(sub)) ||
	    (e = write_part(dir, c->key, "ptx", c->ptx, c->ptx_len, h_ptx)) ||
	    (e = write_part(dir, c->key, "cubin", c->cubin, c->cubin_len, h_cubin)) ||
	    (e = write_part(dir, c->key, "log", c->log, strlen(c->log), h_log)))
		goto done;
	if (!(meta = cJSON_CreateObject()) || !(res = kiln_compile_resources_to_cjson(c)) ||
	    !cJSON_AddItemToObject(meta, "resources", res)) {
		cJSON_Delete(res);
		e = kiln_error_set(KILN_ENOMEM, "out of memory");
		goto done;
	}
	if (!cJSON_AddNumberToObject(meta, "format", CACHE_FORMAT) ||
	    !cJSON_AddStringToObject(meta, "key", c->key) ||
	    !cJSON_AddBoolToObject(meta, "ok", c->ok) ||
	    !cJSON_AddStringToObject(meta, "name", name) ||
	    !cJSON_AddStringToObject(meta, "ptx_sha256", h_ptx) ||
	    !cJSON_AddStringToObject(meta, "cubin_sha256", h_cubin) ||
	    !cJSON_AddStringToObject(meta, "log_sha256", h_log) ||
	    !cJSON_AddStringToObject(meta, "info_log", c->info_log ? c->info_log : "")) {
		e = kiln_error_set(KILN_ENOMEM, "out of memory");
		goto done;
	}
	if (!(text = cJSON_Print(meta)) || !(meta_path = entry_path(dir, c->key, "json"))) {
		e = kiln_error_set(KILN_ENOMEM, "out of memory");
		goto done;
	}
	e = kiln_file_write_atomic(meta_path, text, strlen(text));
done:
	if (text)
		cJSON_free(text);
	cJSON_Delete(meta);
	free(meta_path);
	free(sub);
	return e;
}
