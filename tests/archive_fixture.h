/* Shared by the archive tests: a temporary work directory (history.db and archive/ paths
 * inside it) as the cmocka state, and raw SQLite access that bypasses kiln's API so a test
 * can look at or damage the file directly. Include after cmocka.h. */
#ifndef KILN_TESTS_ARCHIVE_FIXTURE_H
#define KILN_TESTS_ARCHIVE_FIXTURE_H

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

typedef struct fixture {
	char dir[64];
	char *db_path;
	char *git_dir;
} fixture;

/* A fresh directory /tmp/kiln-test-<name>-XXXXXX. */
static inline int fixture_setup(void **state, const char *name)
{
	fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/kiln-test-%s-XXXXXX", name);
	if (!mkdtemp(f->dir))
		return -1;
	f->db_path = kiln_path_join(f->dir, "history.db");
	f->git_dir = kiln_path_join(f->dir, "archive");
	*state = f;
	return 0;
}

/* Removes the directory (lazily unmounting <dir>/mnt, which a disk-full test may mount). */
static inline int fixture_teardown(void **state)
{
	fixture *f = *state;
	char *cmd = kiln_asprintf("umount -l '%s/mnt' 2>/dev/null; rm -rf '%s'", f->dir, f->dir);
	int rc = system(cmd);
	free(cmd);
	free(f->db_path);
	free(f->git_dir);
	free(f);
	return rc == 0 ? 0 : -1;
}

/* The first column of the first row of sql; NULL reads as -1, no row as -999. */
static inline long long raw_int(const char *path, const char *sql)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;
	long long v = -999;
	assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

static inline void raw_exec(const char *path, const char *sql)
{
	sqlite3 *h = NULL;
	assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
}

#endif
