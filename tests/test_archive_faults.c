/* Fault tests for archive/ on real files: history.db overwritten with garbage, truncated,
 * with a damaged page, a table dropped, a non-kiln SQLite file, a newer schema; a git
 * archive with a missing object, a garbage ref, a ref to a missing commit, a broken HEAD
 * and a non-repository folder. Each must be refused at open with a clear message and a
 * recovery hint. Disk full: a write failure (RLIMIT_FSIZE, and a real full tmpfs when
 * mounting one is allowed) while committing a candidate or a git best is a clear error,
 * loses nothing committed before, and once space is back the next commit works. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/archive.h"
#include "tests/archive_fixture.h"

static int setup(void **state)
{
	return fixture_setup(state, "faults");
}

static int teardown(void **state)
{
	return fixture_teardown(state);
}

static void sh(const char *fmt, const char *arg)
{
	char *cmd = kiln_asprintf(fmt, arg, arg, arg);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static size_t file_size(const char *path)
{
	struct stat s;
	assert_int_equal(stat(path, &s), 0);
	return (size_t)s.st_size;
}

/* Candidate `it` of run with a source of `bytes` bytes (varied text). */
static kiln_err commit_candidate(kiln_db *db, int64_t run, int64_t it, size_t bytes)
{
	char *src = malloc(bytes + 1);
	for (size_t i = 0; i < bytes; i++)
		src[i] = (char)('a' + (i * 31 + (size_t)it * 7 + i / 97) % 26);
	src[bytes] = '\0';
	kiln_candidate_rec c = {0};
	c.run_id = run;
	c.iteration = it;
	c.source = src;
	c.launch_json = "{\"launches\":[]}";
	kiln_verify_rec v = {0};
	v.passed = true;
	v.device = "emu";
	v.worst_error = 0.5;
	int64_t id = 0;
	kiln_err e = kiln_db_candidate_commit(db, &id, &c, NULL, &v, NULL);
	free(src);
	return e;
}

/* A closed history.db with one run and n candidates of `bytes` each (WAL checkpointed). */
static int64_t make_db(const char *path, int n, size_t bytes)
{
	kiln_db *db = NULL;
	assert_int_equal(kiln_db_open(&db, path, 0), 0);
	kiln_run_rec r = {"adamw", "tune", NULL, "emu", NULL, "sm_90", NULL, NULL, 1};
	int64_t run = 0;
	assert_int_equal(kiln_db_run_begin(db, &run, &r), 0);
	for (int i = 0; i < n; i++)
		assert_int_equal(commit_candidate(db, run, i, bytes), 0);
	kiln_db_close(db);
	return run;
}

static void assert_db_refused(const char *path, kiln_err want, const char *needle)
{
	kiln_db *db = NULL;
	assert_int_equal(kiln_db_open(&db, path, 0), want);
	assert_null(db);
	const char *m = kiln_error_last();
	assert_non_null(strstr(m, path));
	if (!strstr(m, needle))
		fail_msg("message '%s' lacks '%s'", m, needle);
	assert_null(strchr(m, '\n'));
}

/* ---------------- history.db ---------------- */

static void test_archive_faults__db_garbage(void **state)
{
	fixture *f = *state;
	char junk[20000];
	uint64_t x = 88172645463325252ull;
	for (size_t i = 0; i < sizeof(junk); i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		junk[i] = (char)x;
	}
	assert_int_equal(kiln_file_write_atomic(f->db_path, junk, sizeof(junk)), 0);
	assert_db_refused(f->db_path, KILN_ECORRUPT, "move it aside");
	assert_non_null(strstr(kiln_error_last(), ".recover"));
	kiln_db *db = NULL;
	assert_int_equal(kiln_db_open(&db, f->db_path, KILN_DB_READONLY), KILN_ECORRUPT);
	/* nothing was written over the user's file */
	assert_int_equal(file_size(f->db_path), sizeof(junk));
}

static void test_archive_faults__db_truncated(void **state)
{
	fixture *f = *state;
	make_db(f->db_path, 60, 3000);
	size_t full = file_size(f->db_path);
	assert_true(full > 100000);
	const size_t cuts[] = {4096 * 5, 4096, 100, 50, 0}; /* shrinking */
	for (size_t i = 0; cuts[i]; i++) {
		assert_int_equal(truncate(f->db_path, (off_t)cuts[i]), 0);
		assert_db_refused(f->db_path, KILN_ECORRUPT, "move it aside");
		kiln_db *db = NULL;
		assert_int_equal(kiln_db_open(&db, f->db_path, KILN_DB_READONLY), KILN_ECORRUPT);
	}
}

static void test_archive_faults__db_damaged_page(void **state)
{
	fixture *f = *state;
	make_db(f->db_path, 40, 5000);
	size_t full = file_size(f->db_path);
	/* overwrite pages in the middle (not the header page) with noise */
	FILE *fp = fopen(f->db_path, "r+b");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, (long)(full / 2 / 4096 * 4096), SEEK_SET), 0);
	for (int i = 0; i < 3 * 4096; i++)
		fputc((i * 131 + 7) & 0xff, fp);
	fclose(fp);
	assert_db_refused(f->db_path, KILN_ECORRUPT, "recover");
}

static void test_archive_faults__db_not_kiln(void **state)
{
	fixture *f = *state;
	/* someone else's database, user_version 0, with data */
	raw_exec(f->db_path, "CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT);"
		 "INSERT INTO photos (name) VALUES ('cat.jpg');");
	assert_db_refused(f->db_path, KILN_ECORRUPT, "not a kiln history");
	assert_non_null(strstr(kiln_error_last(), "photos"));
	assert_int_equal(raw_int(f->db_path, "SELECT count(*) FROM sqlite_schema WHERE name = 'runs'"), 0);
	assert_int_equal(raw_int(f->db_path, "PRAGMA user_version"), 0);
	/* the same with a user_version of its own, current or newer than kiln's */
	raw_exec(f->db_path, "PRAGMA user_version = 1");
	assert_db_refused(f->db_path, KILN_ECORRUPT, "not a kiln history");
	raw_exec(f->db_path, "PRAGMA user_version = 7");
	assert_db_refused(f->db_path, KILN_ECORRUPT, "not a kiln history");
	kiln_db *db = NULL;
	assert_int_equal(kiln_db_open(&db, f->db_path, KILN_DB_READONLY), KILN_ECORRUPT);
	assert_int_equal(raw_int(f->db_path, "SELECT count(*) FROM photos"), 1);
}

static void test_archive_faults__db_missing_table_and_newer(void **state)
{
	fixture *f = *state;
	make_db(f->db_path, 2, 100);
	raw_exec(f->db_path, "DROP TABLE timings");
	assert_db_refused(f->db_path, KILN_ECORRUPT, "table 'timings' is missing");
	/* a newer kiln's file: upgrade, not "damaged" */
	remove(f->db_path);
	make_db(f->db_path, 1, 100);
	raw_exec(f->db_path, "PRAGMA user_version = 9");
	assert_db_refused(f->db_path, KILN_EINVAL, "upgrade kiln");
}

/* ---------------- git archive ---------------- */

static void commit_bests(kiln_git *g, int n)
{
	char oid[41];
	for (int i = 0; i < n; i++) {
		char src[64];
		snprintf(src, sizeof(src), "// best %d\n", i);
		kiln_git_best b = {"adamw", "sm_90", src, "{\"launches\":[]}", "{\"time_us\":1}",
				   1.0 + i, 10.0, true, i + 1, 1, NULL};
		assert_int_equal(kiln_git_commit_best(g, oid, &b), 0);
	}
}

static void make_archive(const char *dir)
{
	kiln_git *g = NULL;
	assert_int_equal(kiln_git_open(&g, dir), 0);
	commit_bests(g, 3);
	kiln_git_close(g);
}

static void assert_git_refused(const char *dir, const char *needle)
{
	kiln_git *g = NULL;
	kiln_err e = kiln_git_open(&g, dir);
	if (e != KILN_ECORRUPT)
		fail_msg("kiln_git_open: %d (%s), wanted KILN_ECORRUPT", e, kiln_error_last());
	assert_null(g);
	const char *m = kiln_error_last();
	assert_non_null(strstr(m, dir));
	assert_non_null(strstr(m, "aside"));
	if (!strstr(m, needle))
		fail_msg("message '%s' lacks '%s'", m, needle);
}

static void test_archive_faults__git_missing_object(void **state)
{
	fixture *f = *state;
	make_archive(f->git_dir);
	/* remove the blob of kernel.cu of the first commit (an old one, not the tip) */
	sh("cd '%s' && b=$(git rev-parse 'adamw/sm_90~2:kernel.cu') && "
	   "rm -f objects/$(echo $b | cut -c1-2)/$(echo $b | cut -c3-)", f->git_dir);
	assert_git_refused(f->git_dir, "kernel.cu");
	assert_non_null(strstr(kiln_error_last(), "fsck"));
}

static void test_archive_faults__git_missing_commit(void **state)
{
	fixture *f = *state;
	make_archive(f->git_dir);
	sh("cd '%s' && c=$(git rev-parse 'adamw/sm_90~1') && "
	   "rm -f objects/$(echo $c | cut -c1-2)/$(echo $c | cut -c3-)", f->git_dir);
	assert_git_refused(f->git_dir, "damaged");
}

static void test_archive_faults__git_broken_refs(void **state)
{
	fixture *f = *state;
	make_archive(f->git_dir);
	/* a ref holding garbage */
	sh("printf 'this is not an oid\\n' > '%s/refs/heads/adamw/sm_90'", f->git_dir);
	assert_git_refused(f->git_dir, "damaged");
	/* a well-formed ref to a commit that does not exist */
	sh("printf '0123456789abcdef0123456789abcdef01234567\\n' > '%s/refs/heads/adamw/sm_90'", f->git_dir);
	assert_git_refused(f->git_dir, "missing commit");
	/* a broken HEAD */
	sh("rm -rf '%s' && mkdir -p '%s'", f->git_dir);
	make_archive(f->git_dir);
	sh("printf 'garbage\\n' > '%s/HEAD'", f->git_dir);
	assert_git_refused(f->git_dir, "HEAD");
}

static void test_archive_faults__git_not_a_repository(void **state)
{
	fixture *f = *state;
	sh("mkdir -p '%s' && echo notes > '%s/README'", f->git_dir);
	assert_git_refused(f->git_dir, "not a git repository");
	char *head = kiln_path_join(f->git_dir, "HEAD");
	assert_false(kiln_path_exists(head));
	free(head);
	/* an empty folder is fine: the archive is created there */
	sh("rm -rf '%s' && mkdir -p '%s'", f->git_dir);
	kiln_git *g = NULL;
	assert_int_equal(kiln_git_open(&g, f->git_dir), 0);
	kiln_git_close(g);
	/* and reopening a healthy archive passes the open-time check */
	make_archive(f->git_dir);
	assert_int_equal(kiln_git_open(&g, f->git_dir), 0);
	kiln_git_close(g);
}

/* ---------------- disk full ---------------- */

static void set_fsize(rlim_t soft)
{
	struct rlimit rl;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &rl), 0);
	rl.rlim_cur = soft == RLIM_INFINITY ? rl.rlim_max : soft;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

/* A candidate too big for the space left fails cleanly; earlier ones survive a reopen
 * and, with space back, the same iteration commits. `full` makes space run out and
 * `room` gives it back. */
static void disk_full_roundtrip(const char *path, void (*full)(const char *), void (*room)(const char *),
				const char *arg, const char *needle)
{
	kiln_db *db = NULL;
	assert_int_equal(kiln_db_open(&db, path, 0), 0);
	kiln_run_rec r = {"adamw", "tune", NULL, "emu", NULL, "sm_90", NULL, NULL, 1};
	int64_t run = 0;
	assert_int_equal(kiln_db_run_begin(db, &run, &r), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(commit_candidate(db, run, i, 2000), 0);
	full(arg);
	kiln_err e = commit_candidate(db, run, 5, 3 << 20);
	room(arg);
	if (e != KILN_EIO)
		fail_msg("commit on a full disk: %d (%s), wanted KILN_EIO", e, kiln_error_last());
	const char *m = kiln_error_last();
	assert_non_null(strstr(m, path));
	assert_non_null(strstr(m, "free space"));
	if (!strstr(m, needle))
		fail_msg("message '%s' lacks '%s'", m, needle);
	/* the same handle goes on once space is back */
	assert_int_equal(commit_candidate(db, run, 5, 3000), 0);
	kiln_db_close(db);
	assert_int_equal(kiln_db_open(&db, path, 0), 0);
	kiln_candidate_info *c = NULL;
	size_t n = 0;
	assert_int_equal(kiln_db_candidates_list(db, &c, &n, run), 0);
	assert_int_equal(n, 6);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(c[i].iteration, (int64_t)i);
	assert_int_equal(strlen(c[5].source), 3000);
	kiln_candidate_infos_free(c, n);
	assert_int_equal(kiln_db_integrity_check(db), 0);
	kiln_db_close(db);
}

static void fsize_full(const char *path)
{
	set_fsize(file_size(path) + 64 * 1024);
}

static void fsize_room(const char *path)
{
	(void)path;
	set_fsize(RLIM_INFINITY);
}

static void test_archive_faults__disk_full_db_rlimit(void **state)
{
	fixture *f = *state;
	void (*old)(int) = signal(SIGXFSZ, SIG_IGN);
	disk_full_roundtrip(f->db_path, fsize_full, fsize_room, f->db_path, "File too large");
	signal(SIGXFSZ, old);
}

static void test_archive_faults__disk_full_git_rlimit(void **state)
{
	fixture *f = *state;
	void (*old)(int) = signal(SIGXFSZ, SIG_IGN);
	kiln_git *g = NULL;
	char oid[41], tip[41], tip2[41];
	assert_int_equal(kiln_git_open(&g, f->git_dir), 0);
	commit_bests(g, 2);
	assert_int_equal(kiln_git_branch_tip(g, tip, "adamw", "sm_90"), 0);
	/* a big incompressible kernel.cu does not fit */
	size_t big = 4 << 20;
	char *src = malloc(big + 1);
	uint64_t x = 2463534242ull;
	for (size_t i = 0; i < big; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		src[i] = (char)(' ' + x % 90);
	}
	src[big] = '\0';
	kiln_git_best b = {"adamw", "sm_90", src, "{}", "{}", 3.0, 5.0, true, 9, 1, NULL};
	set_fsize(1 << 20);
	kiln_err e = kiln_git_commit_best(g, oid, &b);
	set_fsize(RLIM_INFINITY);
	assert_int_equal(e, KILN_EGIT);
	assert_non_null(strstr(kiln_error_last(), "kernel.cu"));
	/* the branch did not move; after space is back the commit goes through */
	assert_int_equal(kiln_git_branch_tip(g, tip2, "adamw", "sm_90"), 0);
	assert_string_equal(tip, tip2);
	assert_int_equal(kiln_git_commit_best(g, oid, &b), 0);
	kiln_git_close(g);
	assert_int_equal(kiln_git_open(&g, f->git_dir), 0); /* and the archive checks whole */
	kiln_git_close(g);
	free(src);
	signal(SIGXFSZ, old);
}

static void tmpfs_full(const char *mnt)
{
	(void)mnt; /* the tmpfs is already small */
}

static void tmpfs_room(const char *mnt)
{
	assert_int_equal(mount("tmpfs", mnt, "tmpfs", MS_REMOUNT, "size=32m"), 0);
}

static void test_archive_faults__disk_full_db_tmpfs(void **state)
{
	fixture *f = *state;
	char *mnt = kiln_path_join(f->dir, "mnt");
	assert_int_equal(kiln_mkdir_p(mnt), 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") != 0) {
		free(mnt);
		skip(); /* not allowed to mount here: the RLIMIT_FSIZE tests cover it */
	}
	char *path = kiln_path_join(mnt, "history.db");
	disk_full_roundtrip(path, tmpfs_full, tmpfs_room, mnt, "disk is full");
	umount(mnt);
	free(path);
	free(mnt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_archive_faults__db_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_faults__db_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_faults__db_damaged_page, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_faults__db_not_kiln, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_faults__db_missing_table_and_newer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_faults__git_missing_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_faults__git_missing_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_faults__git_broken_refs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_faults__git_not_a_repository, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_faults__disk_full_db_rlimit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_faults__disk_full_git_rlimit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_faults__disk_full_db_tmpfs, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
