/* compile: the cache stays under --cache-max (default 1 GiB) by evicting least recently
 * used entries. A hit touches its entry's .json (the "last used" time); after each store
 * the cache is measured and, when over the cap, whole entries are removed oldest first
 * (the .json first, so a half-removed entry reads as a miss) until it is under 90% of it.
 * Races with another process's store or read are benign: a missing file is a miss. */
#include "compile/compile_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct entry {
	char key[72];    /* file stem */
	char sub[3];     /* the two-hex-digit folder */
	double used;     /* mtime of the .json, 0 when none (torn: evicted first) */
	int64_t bytes;
} entry;

typedef struct entries {
	entry *v;
	size_t n, cap;
	int64_t total;
} entries;

void kiln_compile_cache_touch(const char *dir, const char *key)
{
	char *p = kiln_asprintf("%s/%.2s/%s.json", dir, key, key);
	if (p)
		utimensat(AT_FDCWD, p, NULL, 0);
	free(p);
}

static entry *find_or_add(entries *es, const char *sub, const char *stem, size_t stem_len)
{
	for (size_t i = es->n; i > 0; i--) /* files of one entry are listed together, mostly */
		if (strncmp(es->v[i - 1].key, stem, stem_len) == 0 && !es->v[i - 1].key[stem_len] &&
		    strcmp(es->v[i - 1].sub, sub) == 0)
			return &es->v[i - 1];
	if (es->n == es->cap) {
		size_t cap = es->cap ? 2 * es->cap : 256;
		entry *v = kiln_realloc(es->v, cap * sizeof(*v));
		if (!v)
			return NULL;
		es->v = v;
		es->cap = cap;
	}
	entry *e = &es->v[es->n++];
	memset(e, 0, sizeof *e);
	snprintf(e->key, sizeof e->key, "%.*s", (int)stem_len, stem);
	snprintf(e->sub, sizeof e->sub, "%s", sub);
	return e;
}

static kiln_err scan_sub(entries *es, const char *dir, const char *sub)
{
	char *path = kiln_path_join(dir, sub);
	DIR *d = path ? opendir(path) : NULL;
	struct dirent *de;
	kiln_err e = path ? KILN_OK : KILN_ENOMEM;
	while (d && !e && (de = readdir(d))) {
		const char *dot = strchr(de->d_name, '.');
		size_t stem = dot ? (size_t)(dot - de->d_name) : strlen(de->d_name);
		if (de->d_name[0] == '.' || stem == 0 || stem >= sizeof(es->v[0].key))
			continue;
		struct stat st;
		char *f = kiln_path_join(path, de->d_name);
		if (!f) {
			e = KILN_ENOMEM;
			break;
		}
		if (lstat(f, &st) == 0 && S_ISREG(st.st_mode)) {
			entry *en = find_or_add(es, sub, de->d_name, stem);
			if (!en)
				e = KILN_ENOMEM;
			else {
				en->bytes += (int64_t)st.st_blocks * 512;
				es->total += (int64_t)st.st_blocks * 512;
				if (dot && strcmp(dot, ".json") == 0)
					en->used = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec * 1e-9;
			}
		}
		free(f);
	}
	if (d)
		closedir(d);
	free(path);
	return e;
}

static int by_use(const void *a, const void *b)
{
	double x = ((const entry *)a)->used, y = ((const entry *)b)->used;
	return x < y ? -1 : x > y;
}

static void remove_entry(const char *dir, const entry *en)
{
	static const char *const exts[] = {"json", "ptx", "cubin", "log"};
	for (size_t i = 0; i < KILN_ARRAY_LEN(exts); i++) {
		char *p = kiln_asprintf("%s/%s/%s.%s", dir, en->sub, en->key, exts[i]);
		if (p)
			remove(p);
		free(p);
	}
	/* leftovers of an interrupted atomic write (<key>.<ext>.tmp...) */
	char *sub = kiln_path_join(dir, en->sub);
	DIR *d = sub ? opendir(sub) : NULL;
	struct dirent *de;
	size_t kl = strlen(en->key);
	while (d && (de = readdir(d)))
		if (strncmp(de->d_name, en->key, kl) == 0 && de->d_name[kl] == '.') {
			char *p = kiln_path_join(sub, de->d_name);
			if (p)
				remove(p);
			free(p);
		}
	if (d)
		closedir(d);
	free(sub);
}

kiln_err kiln_compile_cache_evict(const char *dir, int64_t max_bytes, int64_t *out_bytes)
{
	entries es = {NULL, 0, 0, 0};
	kiln_err e = KILN_OK;
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && !e && (de = readdir(d)))
		if (strlen(de->d_name) == 2 && de->d_name[0] != '.')
			e = scan_sub(&es, dir, de->d_name);
	if (d)
		closedir(d);
	if (!e && max_bytes > 0 && es.total > max_bytes) {
		qsort(es.v, es.n, sizeof(*es.v), by_use);
		int64_t goal = max_bytes - max_bytes / 10;
		for (size_t i = 0; i < es.n && es.total > goal; i++) {
			remove_entry(dir, &es.v[i]);
			es.total -= es.v[i].bytes;
		}
	}
	if (out_bytes)
		*out_bytes = es.total;
	free(es.v);
	return e;
}
