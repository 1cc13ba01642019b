/* Unit tests for archive/: a real SQLite file in a temp dir (create, migrate, reopen,
 * newer-schema and corrupt-file refusal, one-transaction candidates with a real
 * constraint failure mid-way, prefix lookup, a WAL reader beside a writer) and a real
 * bare git repository (commits on a branch, files at each commit, `git log`, tags, the
 * consistency check catching a damaged commit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <glob.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "archive/archive.h"
#include "tests/archive_fixture.h"

static int setup(void **state)
{
	return fixture_setup(state, "archive");
}

static int teardown(void **state)
{
	return fixture_teardown(state);
}

/* One value of a query on a raw connection (the test's independent view of the file). */
static int64_t add_run(kiln_db *db, const char *target)
{
	kiln_run_rec r = {target, "tune", NULL, "emu", "H100-SXM", "sm_90",
			  "{\"iterations\":10}", NULL, 1234};
	int64_t id = 0;
	assert_int_equal(kiln_db_run_begin(db, &id, &r), 0);
	assert_true(id > 0);
	return id;
}

static kiln_candidate_rec cand(int64_t run, int64_t it, const char *src)
{
	kiln_candidate_rec c = {0};
	c.run_id = run;
	c.iteration = it;
	c.node_id = "n1";
	c.source = src;
	c.launch_json = "{\"launches\":[]}";
	c.knobs_json = "{\"BLOCK\":256}";
	return c;
}

static const kiln_compile_rec compile_ok = {true, "", "sm_90", "NVRTC 13.0, nvJitLink 13.0", "abcd",
					    24, 0, 0, 512, 0.05, false, "{\"kernels\":[]}"};

static kiln_verify_rec verify_pass(void)
{
	kiln_verify_rec v = {0};
	v.passed = true;
	v.message = "4 input sets passed";
	v.worst_error = 0.25;
	v.worst_index = 17;
	v.worst_buffer = "p";
	v.worst_set = 2;
	v.seeds_json = "[1,2,3,4]";
	v.checks_json = "[\"values\",\"written\"]";
	v.device = "emu";
	v.wall_s = 0.3;
	return v;
}

static kiln_timing_rec timing(double us)
{
	kiln_timing_rec t = {0};
	t.device = "emu";
	t.modeled = true;
	t.time_us = us;
	t.min_us = NAN;
	t.spread = NAN;
	t.reps = 1;
	t.roofline = 0.5;
	t.bandwidth_gbs = 1500;
	t.speedup = 1.0;
	return t;
}

/* ---------------- history.db ---------------- */

static void test_archive__create_and_reopen(void **state)
{
	fixture *f = *state;
	kiln_db *db = NULL;
	assert_int_equal(kiln_db_open(&db, f->db_path, 0), 0);
	assert_int_equal(kiln_db_schema_version(db), KILN_DB_SCHEMA_VERSION);
	int64_t run = add_run(db, "adamw");
	assert_int_equal(kiln_db_integrity_check(db), 0);
	kiln_db_close(db);
	kiln_db_close(NULL);
	/* an independent look at the file */
	assert_int_equal(raw_int(f->db_path, "PRAGMA user_version"), KILN_DB_SCHEMA_VERSION);
	assert_int_equal(raw_int(f->db_path, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"), 9);
	assert_int_equal(raw_int(f->db_path, "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'"), 1);
	/* reopen: the run is still there; a read-only open sees it too */
	assert_int_equal(kiln_db_open(&db, f->db_path, 0), 0);
	kiln_run_info *r = NULL;
	assert_int_equal(kiln_db_run_get(db, &r, run), 0);
	assert_string_equal(r->target, "adamw");
	assert_string_equal(r->status, "running");
	assert_string_equal(r->budgets_json, "{\"iterations\":10}");
	assert_null(r->ended);
	assert_null(r->llm_model);
	assert_int_equal(r->pid, 1234);
	assert_int_equal(r->seed_candidate, 0);
	kiln_run_infos_free(r, 1);
	assert_int_equal(kiln_db_run_end(db, run, "finished", "{\"iterations\":10}"), 0);
	assert_int_equal(kiln_db_run_end(db, run, "done", NULL), KILN_EINVAL);
	assert_int_equal(kiln_db_run_end(db, 999, "failed", NULL), KILN_ENOTFOUND);
	kiln_db_close(db);
	assert_int_equal(kiln_db_open(&db, f->db_path, KILN_DB_READONLY), 0);
	assert_int_equal(kiln_db_run_get(db, &r, run), 0);
	assert_string_equal(r->status, "finished");
	assert_non_null(r->ended);
	assert_int_equal(strlen(r->ended), 20); /* 2026-11-23T23:05:00Z */
	kiln_run_infos_free(r, 1);
	/* readers cannot write */
	assert_int_not_equal(kiln_db_event_add(db, run, "info", "x", "y", NULL), 0);
	kiln_db_close(db);
}

static void test_archive__migrates_v0_file(void **state)
{
	fixture *f = *state;
	/* an existing SQLite file at user_version 0 (e.g. created empty by a crashed kiln) */
	raw_exec(f->db_path, "CREATE TABLE scratch (x); PRAGMA user_version = 0;");
	kiln_db *db = NULL;
	assert_int_equal(kiln_db_open(&db, f->db_path, KILN_DB_READONLY), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "older"));
	assert_int_equal(kiln_db_open(&db, f->db_path, 0), 0);
	assert_int_equal(kiln_db_schema_version(db), KILN_DB_SCHEMA_VERSION);
	kiln_db_close(db);
	assert_int_equal(raw_int(f->db_path, "SELECT count(*) FROM sqlite_master WHERE name = 'candidates'"), 1);
	assert_int_equal(raw_int(f->db_path, "SELECT count(*) FROM sqlite_master WHERE name = 'scratch'"), 1);
}

static void test_archive__newer_schema_refused(void **state)
{
	fixture *f = *state;
	kiln_db *db = NULL;
	assert_int_equal(kiln_db_open(&db, f->db_path, 0), 0);
	kiln_db_close(db);
	raw_exec(f->db_path, "PRAGMA user_version = 5");
	assert_int_equal(kiln_db_open(&db, f->db_path, 0), KILN_EINVAL);
	assert_null(db);
	char *want = kiln_asprintf("%s schema v5 is newer than this kiln (v%d): upgrade kiln", f->db_path, KILN_DB_SCHEMA_VERSION);
	assert_string_equal(kiln_error_last(), want);
	free(want);
	assert_int_equal(kiln_db_open(&db, f->db_path, KILN_DB_READONLY), KILN_EINVAL);
	/* and the file was left alone */
	assert_int_equal(raw_int(f->db_path, "PRAGMA user_version"), 5);
}

static void test_archive__corrupt_file_refused(void **state)
{
	fixture *f = *state;
	char garbage[8192];
	for (size_t i = 0; i < sizeof(garbage); i++)
		garbage[i] = (char)('a' + (i * 7) % 26);
	assert_int_equal(kiln_file_write_atomic(f->db_path, garbage, sizeof(garbage)), 0);
	kiln_db *db = NULL;
	assert_int_equal(kiln_db_open(&db, f->db_path, 0), KILN_ECORRUPT);
	assert_null(db);
	assert_non_null(strstr(kiln_error_last(), f->db_path));
	assert_non_null(strstr(kiln_error_last(), "recover"));
	assert_int_equal(kiln_db_open(&db, f->db_path, KILN_DB_READONLY), KILN_ECORRUPT);
	/* a missing file for a reader */
	char *missing = kiln_path_join(f->dir, "nope.db");
	assert_int_equal(kiln_db_open(&db, missing, KILN_DB_READONLY), KILN_ENOTFOUND);
	assert_false(kiln_path_exists(missing));
	free(missing);
}

/* ---------------- the record fields (archive/fields.c) ---------------- */

static const kiln_record_desc *const record_descs[3] = {&kiln_compile_desc, &kiln_verify_desc, &kiln_timing_desc};

/* A distinct value in every field of rec: field i of a record gets i in its value, texts
 * name their column, JSON texts are [i]. The texts point into names (one per field). */
static void fill_distinct(void *rec, const kiln_record_desc *d, char (*names)[40])
{
	for (size_t i = 0; i < d->nfields; i++) {
		const kiln_field *f = &d->fields[i];
		char *p = (char *)rec + f->offset;
		bool b = true;
		int n = (int)i + 3;
		int64_t l = 1000 + (int64_t)i;
		double x = 0.25 + (double)i;
		const char *t = names[i];
		switch (f->type) {
		case KILN_FIELD_BOOL: memcpy(p, &b, sizeof b); break;
		case KILN_FIELD_INT: memcpy(p, &n, sizeof n); break;
		case KILN_FIELD_INT64: memcpy(p, &l, sizeof l); break;
		case KILN_FIELD_REAL: memcpy(p, &x, sizeof x); break;
		case KILN_FIELD_TEXT: snprintf(names[i], 40, "text of %s", f->column); memcpy(p, &t, sizeof t); break;
		case KILN_FIELD_JSON: snprintf(names[i], 40, "[%zu]", i); memcpy(p, &t, sizeof t); break;
		}
	}
}

/* Field f of rec as text ("1", "1003", "3.25", the text itself). */
static void field_text(char *out, size_t n, const void *rec, const kiln_field *f)
{
	const char *p = (const char *)rec + f->offset, *t;
	bool b;
	int i;
	int64_t l;
	double x;
	switch (f->type) {
	case KILN_FIELD_BOOL: memcpy(&b, p, sizeof b); snprintf(out, n, "%d", b); break;
	case KILN_FIELD_INT: memcpy(&i, p, sizeof i); snprintf(out, n, "%d", i); break;
	case KILN_FIELD_INT64: memcpy(&l, p, sizeof l); snprintf(out, n, "%lld", (long long)l); break;
	case KILN_FIELD_REAL: memcpy(&x, p, sizeof x); snprintf(out, n, "%g", x); break;
	default: memcpy(&t, p, sizeof t); snprintf(out, n, "%s", t ? t : "(null)"); break;
	}
}

/* The column of a stored row as text, in field_text's form. */
static void column_text(char *out, size_t n, const cJSON *row, const kiln_field *f)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, f->column);
	assert_non_null(v);
	if (f->type == KILN_FIELD_BOOL && f->words[0]) {
		assert_true(cJSON_IsString(v));
		snprintf(out, n, "%d", strcmp(v->valuestring, f->words[1]) == 0);
	} else if (f->type == KILN_FIELD_REAL) {
		snprintf(out, n, "%g", v->valuedouble);
	} else if (cJSON_IsNumber(v)) {
		snprintf(out, n, "%lld", (long long)v->valuedouble);
	} else if (f->type == KILN_FIELD_JSON) { /* kiln_db_query_json parses the JSON columns */
		assert_false(cJSON_IsString(v));
		char *t = cJSON_PrintUnformatted(v);
		snprintf(out, n, "%s", t);
		free(t);
	} else {
		assert_true(cJSON_IsString(v));
		snprintf(out, n, "%s", v->valuestring);
	}
}

/* Every field goes child JSON -> parent parse -> history.db -> read back unchanged. */
static void test_archive__record_fields_round_trip(void **state)
{
	fixture *f = *state;
	kiln_db *db = NULL;
	kiln_compile_rec cr = {0}, cr2 = {0};
	kiln_verify_rec vr = {0}, vr2 = {0};
	kiln_timing_rec tr = {0}, tr2 = {0};
	void *recs[3] = {&cr, &vr, &tr}, *back[3] = {&cr2, &vr2, &tr2};
	static char names[3][32][40];
	for (int k = 0; k < 3; k++) {
		const kiln_record_desc *d = record_descs[k];
		assert_true(d->nfields <= 32);
		for (size_t i = 0; i < d->nfields; i++) /* one member, one column, one key per row */
			for (size_t j = 0; j < i; j++) {
				assert_int_not_equal(d->fields[i].offset, d->fields[j].offset);
				assert_string_not_equal(d->fields[i].column, d->fields[j].column);
				if (d->fields[i].key && d->fields[j].key)
					assert_string_not_equal(d->fields[i].key, d->fields[j].key);
			}
		fill_distinct(recs[k], d, names[k]);
		cJSON *o = cJSON_CreateObject();
		assert_int_equal(kiln_record_to_json(o, d, recs[k]), 0);
		char *wire = cJSON_PrintUnformatted(o); /* what crosses the pipe */
		cJSON_Delete(o);
		o = cJSON_Parse(wire);
		free(wire);
		assert_int_equal(kiln_record_from_json(back[k], d, o), 0);
		cJSON_Delete(o);
		for (size_t i = 0; i < d->nfields; i++) {
			char a[64], b[64];
			field_text(a, sizeof a, recs[k], &d->fields[i]);
			field_text(b, sizeof b, back[k], &d->fields[i]);
			if (d->fields[i].key)
				assert_string_equal(a, b);
			else /* a field the parent fills is never read from the child */
				assert_true(strcmp(b, "0") == 0 || strcmp(b, "(null)") == 0);
		}
	}
	assert_int_equal(kiln_db_open(&db, f->db_path, 0), 0);
	kiln_candidate_rec c = cand(add_run(db, "adamw"), 0, "/* all fields */");
	int64_t id = 0;
	vr.passed = true; /* a CHECK: a failure names its check */
	assert_int_equal(kiln_db_candidate_commit(db, &id, &c, &cr, &vr, &tr), 0);
	for (int k = 0; k < 3; k++) {
		const kiln_record_desc *d = record_descs[k];
		char sql[128], idt[24];
		const char *p[1] = {idt};
		cJSON *rows = NULL;
		snprintf(sql, sizeof sql, "SELECT * FROM %s WHERE candidate_id = ?1", d->table);
		snprintf(idt, sizeof idt, "%lld", (long long)id);
		assert_int_equal(kiln_db_query_json(db, &rows, sql, p, 1, "test"), 0);
		assert_int_equal(cJSON_GetArraySize(rows), 1);
		for (size_t i = 0; i < d->nfields; i++) {
			char a[64], b[64];
			field_text(a, sizeof a, recs[k], &d->fields[i]);
			column_text(b, sizeof b, cJSON_GetArrayItem(rows, 0), &d->fields[i]);
			assert_string_equal(a, b);
		}
		cJSON_Delete(rows);
		/* the schema's columns are the rows' (and candidate_id) */
		const char *tp[1] = {d->table};
		const cJSON *col;
		assert_int_equal(kiln_db_query_json(db, &rows, "SELECT name FROM pragma_table_info(?1)", tp, 1, "test"), 0);
		assert_int_equal(cJSON_GetArraySize(rows), (int)d->nfields + 1);
		cJSON_ArrayForEach(col, rows) {
			const char *name = cJSON_GetObjectItemCaseSensitive(col, "name")->valuestring;
			size_t i = 0;
			while (i < d->nfields && strcmp(d->fields[i].column, name) != 0)
				i++;
			if (strcmp(name, "candidate_id") != 0 && i == d->nfields)
				fail_msg("%s.%s has no row in archive/fields.c", d->table, name);
		}
		cJSON_Delete(rows);
	}
	kiln_record_free(&cr2, &kiln_compile_desc);
	kiln_record_free(&vr2, &kiln_verify_desc);
	kiln_record_free(&tr2, &kiln_timing_desc);
	assert_null(tr2.device);
	kiln_db_close(db);
}

/* The parse of the child's answer as the parent sees it: text that failed to parse names
 * the field; NULL: it parsed. */
static const char *parse_timing(const char *json)
{
	static char msg[256];
	kiln_timing_rec t = {0};
	cJSON *o = cJSON_Parse(json);
	assert_non_null(o);
	kiln_err e = kiln_record_from_json(&t, &kiln_timing_desc, o);
	snprintf(msg, sizeof msg, "%s", e ? kiln_error_last() : "");
	if (e)
		assert_int_equal(e, KILN_EINVAL);
	cJSON_Delete(o);
	kiln_record_free(&t, &kiln_timing_desc);
	return e ? msg : NULL;
}

/* A misspelt or missing key, a wrong type or a hostile number is an error naming the
 * field, never a silent -1. */
static void test_archive__record_fields_bad_answers(void **state)
{
	(void)state;
	kiln_timing_rec t = {0};
	t.device = "emu";
	t.time_us = 12.5;
	t.roofline = 0.5;
	t.bandwidth_gbs = 900;
	t.reps = 3;
	cJSON *o = cJSON_CreateObject();
	assert_int_equal(kiln_record_to_json(o, &kiln_timing_desc, &t), 0);
	char *good = cJSON_PrintUnformatted(o);
	assert_null(parse_timing(good));
	/* every key the child sends, left out in turn */
	for (size_t i = 0; i < kiln_timing_desc.nfields; i++) {
		const kiln_field *fd = &kiln_timing_desc.fields[i];
		if (!fd->key)
			continue;
		cJSON *c = cJSON_Duplicate(o, 1);
		cJSON_DeleteItemFromObjectCaseSensitive(c, fd->key);
		char *text = cJSON_PrintUnformatted(c), want[96];
		snprintf(want, sizeof want, "timing.%s is missing", fd->key);
		const char *m = parse_timing(text);
		assert_non_null(m);
		assert_non_null(strstr(m, want));
		free(text);
		cJSON_Delete(c);
	}
	/* a misspelt key, in the text itself */
	char *typo = kiln_strdup(good), *at = strstr(typo, "\"bandwidth_gbs\"");
	assert_non_null(at);
	memcpy(at, "\"bandwith_gbs \"", 15);
	assert_non_null(strstr(parse_timing(typo), "timing.bandwidth_gbs is missing"));
	free(typo);
	static const struct { const char *key, *value, *why; } bad[] = {
		{"bandwidth_gbs", "\"900\"", "is not a number"}, {"time_us", "1e999", "is not finite"},
		{"roofline", "-1", "is negative"},                {"reps", "1.5", "is not an integer"},
		{"reps", "1e300", "is out of range"},             {"modeled", "1", "is not true or false"},
		{"device", "7", "is not a string"},
	};
	for (size_t i = 0; i < KILN_ARRAY_LEN(bad); i++) {
		cJSON *c = cJSON_Duplicate(o, 1);
		cJSON_ReplaceItemInObjectCaseSensitive(c, bad[i].key, cJSON_Parse(bad[i].value));
		char *text = cJSON_PrintUnformatted(c), *patched = NULL;
		if (strcmp(bad[i].value, "1e999") == 0) { /* cJSON prints inf as null: patch the text */
			char *n = strstr(text, "\"time_us\":null");
			assert_non_null(n);
			patched = kiln_asprintf("%.*s\"time_us\":1e999%s", (int)(n - text), text, n + strlen("\"time_us\":null"));
		}
		const char *m = parse_timing(patched ? patched : text);
		assert_non_null(m);
		assert_non_null(strstr(m, bad[i].key));
		assert_non_null(strstr(m, bad[i].why));
		free(patched);
		free(text);
		cJSON_Delete(c);
	}
	/* null: an unknown number (NaN), not an error */
	cJSON *c = cJSON_Duplicate(o, 1);
	cJSON_ReplaceItemInObjectCaseSensitive(c, "roofline", cJSON_CreateNull());
	char *text = cJSON_PrintUnformatted(c);
	assert_null(parse_timing(text));
	free(text);
	cJSON_Delete(c);
	free(good);
	cJSON_Delete(o);
}

static void test_archive__candidate_commit_is_one_transaction(void **state)
{
	fixture *f = *state;
	kiln_db *db = NULL;
	assert_int_equal(kiln_db_open(&db, f->db_path, 0), 0);
	int64_t run = add_run(db, "adamw"), seed = 0, bad = 0, cid = 0;
	kiln_candidate_rec c = cand(run, 0, "/* seed */");
	c.is_seed = c.new_best = true;
	kiln_verify_rec v = verify_pass();
	kiln_timing_rec t = timing(40.0);
	assert_int_equal(kiln_db_candidate_commit(db, &seed, &c, &compile_ok, &v, &t), 0);

	/* a failure in the LAST part (time_us <= 0 violates a CHECK) after the candidate,
	 * compile and verification rows were inserted: none of them may remain */
	kiln_candidate_rec c2 = cand(run, 1, "/* faster? */");
	c2.new_best = true;
	kiln_timing_rec t_bad = timing(-1.0);
	t_bad.time_us = 0.0;
	kiln_err e = kiln_db_candidate_commit(db, &bad, &c2, &compile_ok, &v, &t_bad);
	assert_int_equal(e, KILN_EDB);
	assert_non_null(strstr(kiln_error_last(), "iteration 1"));
	assert_non_null(strstr(kiln_error_last(), "timing"));
	assert_int_equal(bad, 0);
	assert_int_equal(raw_int(f->db_path, "SELECT count(*) FROM candidates"), 1);
	assert_int_equal(raw_int(f->db_path, "SELECT count(*) FROM compile_results"), 1);
	assert_int_equal(raw_int(f->db_path, "SELECT count(*) FROM verifications"), 1);
	assert_int_equal(raw_int(f->db_path, "SELECT best_candidate FROM runs"), seed);
	/* the same iteration again is refused (a resumed run never records twice) */
	kiln_candidate_rec dup = cand(run, 0, "/* other */");
	assert_int_not_equal(kiln_db_candidate_commit(db, &cid, &dup, NULL, NULL, NULL), 0);
	/* the connection is healthy after the rollback */
	c2.parent_id = seed;
	kiln_timing_rec t2 = timing(20.0);
	t2.speedup = 2.0;
	assert_int_equal(kiln_db_candidate_commit(db, &cid, &c2, &compile_ok, &v, &t2), 0);
	kiln_candidate_info *best = NULL;
	assert_int_equal(kiln_db_candidate_best(db, &best, run), 0);
	assert_int_equal(best->id, cid);
	assert_int_equal(best->parent_id, seed);
	assert_string_equal(best->outcome, "passed");
	assert_true(best->has_compile && best->compile_ok && best->has_verify && best->passed);
	assert_true(best->has_timing && best->modeled);
	assert_true(fabs(best->time_us - 20.0) < 1e-9);
	assert_true(fabs(best->speedup - 2.0) < 1e-9);
	assert_int_equal(best->registers, 24);
	assert_int_equal(best->shared_bytes, 512);
	kiln_candidate_infos_free(best, 1);
	/* a compile error: outcome says so, no verification */
	kiln_candidate_rec c3 = cand(run, 2, "broken(");
	kiln_compile_rec ce = compile_ok;
	ce.ok = false;
	ce.log = "kernel.cu(1): error: expected a )";
	ce.registers = -1;
	assert_int_equal(kiln_db_candidate_commit(db, &cid, &c3, &ce, NULL, NULL), 0);
	kiln_candidate_info *list = NULL;
	size_t n = 0;
	assert_int_equal(kiln_db_candidates_list(db, &list, &n, run), 0);
	assert_int_equal(n, 3);
	assert_int_equal(list[0].iteration, 0);
	assert_int_equal(list[2].iteration, 2);
	assert_string_equal(list[2].outcome, "compile_error");
	assert_false(list[2].has_verify);
	assert_int_equal(list[2].registers, -1);
	assert_string_equal(list[2].compile_log, "kernel.cu(1): error: expected a )");
	assert_true(isnan(list[2].time_us));
	kiln_candidate_infos_free(list, n);
	kiln_run_info *runs = NULL;
	assert_int_equal(kiln_db_runs_list(db, &runs, &n, "adamw"), 0);
	assert_int_equal(n, 1);
	assert_int_equal(runs[0].ncandidates, 3);
	assert_int_equal(runs[0].seed_candidate, seed);
	kiln_run_infos_free(runs, n);
	assert_int_equal(kiln_db_runs_list(db, &runs, &n, "lion"), 0);
	assert_int_equal(n, 0);
	kiln_run_infos_free(runs, n);
	assert_int_equal(kiln_db_integrity_check(db), 0);
	kiln_db_close(db);
}

/* The candidate hash as documented: SHA-256 of source, launch, knobs, each NUL-ended. */
static void doc_hash(char out[65], const char *src, const char *launch, const char *knobs)
{
	kiln_sha256 h;
	uint8_t d[32];
	kiln_sha256_init(&h);
	kiln_sha256_update(&h, src, strlen(src) + 1);
	kiln_sha256_update(&h, launch, strlen(launch) + 1);
	kiln_sha256_update(&h, knobs, strlen(knobs) + 1);
	kiln_sha256_final(&h, d);
	kiln_hex(out, d, 32);
}

static void test_archive__prefix_lookup(void **state)
{
	fixture *f = *state;
	kiln_db *db = NULL;
	assert_int_equal(kiln_db_open(&db, f->db_path, 0), 0);
	int64_t run = add_run(db, "lion");
	/* find two sources whose hashes share their first 4 hex digits (birthday search) */
	static int first[65536];
	char src_a[32] = "", src_b[32] = "", h[65], ha[65], hb[65];
	memset(first, -1, sizeof(first));
	for (int i = 0; i < 100000; i++) {
		char s[32];
		snprintf(s, sizeof(s), "/* %d */", i);
		kiln_candidate_rec c = cand(run, 0, s);
		doc_hash(h, s, c.launch_json, c.knobs_json);
		unsigned p = (unsigned)strtoul((char[]){h[0], h[1], h[2], h[3], 0}, NULL, 16);
		if (first[p] >= 0) {
			snprintf(src_a, sizeof(src_a), "/* %d */", first[p]);
			strcpy(src_b, s);
			break;
		}
		first[p] = i;
	}
	assert_true(src_a[0] != '\0');
	int64_t ida = 0, idb = 0;
	kiln_candidate_rec ca = cand(run, 1, src_a), cb = cand(run, 2, src_b);
	assert_int_equal(kiln_db_candidate_commit(db, &ida, &ca, NULL, NULL, NULL), 0);
	assert_int_equal(kiln_db_candidate_commit(db, &idb, &cb, NULL, NULL, NULL), 0);
	doc_hash(ha, src_a, ca.launch_json, ca.knobs_json);
	doc_hash(hb, src_b, cb.launch_json, cb.knobs_json);
	kiln_candidate_info *c = NULL;
	/* by id */
	char ref[32];
	snprintf(ref, sizeof(ref), "%lld", (long long)idb);
	assert_int_equal(kiln_db_candidate_find(db, &c, ref), 0);
	assert_int_equal(c->id, idb);
	assert_string_equal(c->hash, hb);
	assert_string_equal(c->outcome, "unverified");
	kiln_candidate_infos_free(c, 1);
	/* the shared 4-digit prefix is ambiguous */
	char p4[5];
	memcpy(p4, ha, 4);
	p4[4] = '\0';
	assert_int_equal(kiln_db_candidate_find(db, &c, p4), KILN_EINVAL);
	assert_null(c);
	assert_non_null(strstr(kiln_error_last(), "ambiguous"));
	/* the full hash and a longer (upper-case) prefix are unique */
	assert_int_equal(kiln_db_candidate_find(db, &c, ha), 0);
	assert_int_equal(c->id, ida);
	kiln_candidate_infos_free(c, 1);
	char p12[13];
	for (int i = 0; i < 12; i++)
		p12[i] = (char)(hb[i] >= 'a' ? hb[i] - 32 : hb[i]);
	p12[12] = '\0';
	assert_int_equal(kiln_db_candidate_find(db, &c, p12), 0);
	assert_int_equal(c->id, idb);
	kiln_candidate_infos_free(c, 1);
	/* too short, not hex, not there */
	assert_int_equal(kiln_db_candidate_find(db, &c, "ab"), KILN_EINVAL);
	assert_int_equal(kiln_db_candidate_find(db, &c, "zzzzzz"), KILN_EINVAL);
	assert_int_equal(kiln_db_candidate_find(db, &c, "999"), KILN_ENOTFOUND);
	char other[9];
	snprintf(other, sizeof(other), "%c%c%c%c%c%c%c%c", ha[0] == 'f' ? 'e' : 'f', 'f', 'f', 'f', 'f', 'f', 'f', 'f');
	assert_int_equal(kiln_db_candidate_find(db, &c, other), KILN_ENOTFOUND);
	kiln_db_close(db);
}

static void test_archive__wal_reader_beside_writer(void **state)
{
	fixture *f = *state;
	kiln_db *w = NULL, *r = NULL;
	assert_int_equal(kiln_db_open(&w, f->db_path, 0), 0);
	int64_t run = add_run(w, "adamw"), id = 0;
	kiln_candidate_rec c0 = cand(run, 0, "/* 0 */");
	assert_int_equal(kiln_db_candidate_commit(w, &id, &c0, NULL, NULL, NULL), 0);
	assert_int_equal(kiln_db_open(&r, f->db_path, KILN_DB_READONLY), 0);
	/* the writer holds an open transaction with a new candidate in it */
	assert_int_equal(kiln_db_tx_begin(w), 0);
	kiln_candidate_rec c1 = cand(run, 1, "/* 1 */");
	kiln_verify_rec v = verify_pass();
	assert_int_equal(kiln_db_candidate_commit(w, &id, &c1, &compile_ok, &v, NULL), 0); /* nested */
	assert_int_equal(kiln_db_event_add(w, run, "info", "candidate", "iteration 1 passed", "{\"it\":1}"), 0);
	/* the reader is not blocked and sees the last committed state */
	double t0 = kiln_now_s();
	kiln_candidate_info *list = NULL;
	size_t n = 0;
	assert_int_equal(kiln_db_candidates_list(r, &list, &n, run), 0);
	assert_true(kiln_now_s() - t0 < 1.0); /* not a busy-timeout wait */
	assert_int_equal(n, 1);
	kiln_candidate_infos_free(list, n);
	assert_int_equal(kiln_db_tx_commit(w), 0);
	assert_int_equal(kiln_db_candidates_list(r, &list, &n, run), 0);
	assert_int_equal(n, 2);
	assert_true(list[1].passed);
	kiln_candidate_infos_free(list, n);
	/* a rolled-back outer transaction takes its nested candidate with it */
	assert_int_equal(kiln_db_tx_begin(w), 0);
	kiln_candidate_rec c2 = cand(run, 2, "/* 2 */");
	assert_int_equal(kiln_db_candidate_commit(w, &id, &c2, NULL, NULL, NULL), 0);
	kiln_db_tx_rollback(w);
	assert_int_equal(kiln_db_candidates_list(r, &list, &n, run), 0);
	assert_int_equal(n, 2);
	kiln_candidate_infos_free(list, n);
	assert_int_equal(kiln_db_tx_commit(w), KILN_EINVAL);
	kiln_db_close(r);
	kiln_db_close(w);
}

static void test_archive__llm_calls_revisions_checkpoints(void **state)
{
	fixture *f = *state;
	kiln_db *db = NULL;
	assert_int_equal(kiln_db_open(&db, f->db_path, 0), 0);
	int64_t run = add_run(db, "adamw"), call = 0, rev = 0, it = 0;
	kiln_llm_call_rec lc = {run, "openai", "gpt-5", "req-1", "ok", 2, 3.5, 1000, 800, 200, -1,
				NAN, "propose", "PROMPT", "REPLY", NULL};
	assert_int_equal(kiln_db_llm_call_add(db, &call, &lc), 0);
	lc.cost_usd = 0.0125;
	lc.status = "error";
	lc.error = "HTTP 429";
	assert_int_equal(kiln_db_llm_call_add(db, &call, &lc), 0);
	assert_int_equal(raw_int(f->db_path, "SELECT count(*) FROM llm_calls WHERE cost_usd IS NULL"), 1);
	assert_int_equal(raw_int(f->db_path, "SELECT count(*) FROM llm_calls WHERE reasoning_tokens IS NULL"), 2);
	assert_int_equal(raw_int(f->db_path, "SELECT sum(cached_tokens) FROM llm_calls"), 1600);
	/* a reply just under the client's 8 MiB cap is kept as head and tail (its kernel is in
	 * candidates.source), not twice */
	char *huge = malloc((8u << 20) - 1);
	memset(huge, 'k', (8u << 20) - 2);
	huge[(8u << 20) - 2] = 0;
	lc.reply = huge;
	assert_int_equal(kiln_db_llm_call_add(db, &call, &lc), 0);
	free(huge);
	assert_true(raw_int(f->db_path, "SELECT max(length(reply)) FROM llm_calls") <= (256 << 10));
	assert_int_equal(raw_int(f->db_path, "SELECT count(*) FROM llm_calls WHERE reply LIKE '%cut by kiln%'"), 1);
	lc.prompt = NULL;
	assert_int_equal(kiln_db_llm_call_add(db, &call, &lc), KILN_EINVAL);
	char *tree = NULL, *state_json = NULL;
	assert_int_equal(kiln_db_wm_revision_latest(db, &tree, &it, run), KILN_ENOTFOUND);
	kiln_wm_revision_rec wr = {run, 1, "{\"root\":1}", NULL, NULL, call};
	assert_int_equal(kiln_db_wm_revision_add(db, &rev, &wr), 0);
	wr.iteration = 4;
	wr.tree_json = "{\"root\":2}";
	wr.rejected_json = "[{\"op\":\"delete\",\"why\":\"node 3 is solved\"}]";
	assert_int_equal(kiln_db_wm_revision_add(db, &rev, &wr), 0);
	assert_int_equal(kiln_db_wm_revision_latest(db, &tree, &it, run), 0);
	assert_string_equal(tree, "{\"root\":2}");
	assert_int_equal(it, 4);
	free(tree);
	wr.tree_json = "{not json";
	assert_int_not_equal(kiln_db_wm_revision_add(db, &rev, &wr), 0);
	assert_int_equal(kiln_db_checkpoint_get(db, &state_json, &it, run), KILN_ENOTFOUND);
	assert_int_equal(kiln_db_checkpoint_put(db, run, 3, "{\"it\":3}"), 0);
	assert_int_equal(kiln_db_checkpoint_put(db, run, 7, "{\"it\":7}"), 0);
	assert_int_equal(kiln_db_checkpoint_get(db, &state_json, &it, run), 0);
	assert_string_equal(state_json, "{\"it\":7}");
	assert_int_equal(it, 7);
	free(state_json);
	assert_int_equal(raw_int(f->db_path, "SELECT count(*) FROM checkpoints"), 1);
	assert_int_equal(kiln_db_event_add(db, 0, "warn", "startup", "no GPU: using the emulator", NULL), 0);
	assert_int_not_equal(kiln_db_event_add(db, run, "loud", "x", "y", NULL), 0);
	assert_int_equal(kiln_db_run_resume(db, run, 4321), 0);
	assert_int_equal(raw_int(f->db_path, "SELECT pid FROM runs"), 4321);
	assert_int_equal(kiln_db_integrity_check(db), 0);
	kiln_db_close(db);
}

/* ---------------- git archive ---------------- */

static int count_lines(const char *cmd, char *first, size_t first_size)
{
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char line[512];
	int n = 0;
	while (fgets(line, sizeof(line), p)) {
		if (n == 0 && first)
			snprintf(first, first_size, "%s", line);
		n++;
	}
	assert_int_equal(pclose(p), 0);
	return n;
}

static void test_archive__git_commits_and_log(void **state)
{
	fixture *f = *state;
	kiln_git *g = NULL;
	char o1[41], o2[41], tip[41], first[512];
	assert_int_equal(kiln_git_open(&g, f->git_dir), 0);
	assert_int_equal(kiln_git_branch_tip(g, tip, "adamw", "sm_90"), KILN_ENOTFOUND);
	kiln_git_best b = {"adamw", "sm_90", "// v1\n", "{\"launches\":[1]}", "{\"time_us\":40}",
			   1.10, 40.0, true, 7, 1, NULL};
	assert_int_equal(kiln_git_commit_best(g, o1, &b), 0);
	b.kernel_cu = "// v2\n";
	b.result_json = "{\"time_us\":31.2}";
	b.speedup = 1.42;
	b.time_us = 31.2;
	b.candidate_id = 17;
	b.body = "node: vectorize > unroll\nmodel: gpt-5";
	assert_int_equal(kiln_git_commit_best(g, o2, &b), 0);
	assert_string_not_equal(o1, o2);
	assert_int_equal(kiln_git_branch_tip(g, tip, "adamw", "sm_90"), 0);
	assert_string_equal(tip, o2);
	/* files at each commit */
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(kiln_git_read_file(g, &text, &len, o1, "kernel.cu"), 0);
	assert_string_equal(text, "// v1\n");
	assert_int_equal(len, 6);
	free(text);
	assert_int_equal(kiln_git_read_file(g, &text, NULL, "adamw/sm_90", "kernel.cu"), 0);
	assert_string_equal(text, "// v2\n");
	free(text);
	assert_int_equal(kiln_git_read_file(g, &text, NULL, o1, "result.json"), 0);
	assert_string_equal(text, "{\"time_us\":40}");
	free(text);
	assert_int_equal(kiln_git_read_file(g, &text, NULL, o1, "missing.txt"), KILN_ENOTFOUND);
	assert_int_equal(kiln_git_read_file(g, &text, NULL, "nosuchbranch", "kernel.cu"), KILN_ENOTFOUND);
	/* the real git CLI reads it: two commits on the branch, newest first, with the speedup */
	char *cmd = kiln_asprintf("git -C '%s' log --format=%%s adamw/sm_90", f->git_dir);
	assert_int_equal(count_lines(cmd, first, sizeof(first)), 2);
	assert_string_equal(first, "adamw sm_90: 1.42x over seed (31.2 us, modeled) \xe2\x80\x94 candidate 17\n");
	free(cmd);
	cmd = kiln_asprintf("git -C '%s' log --oneline", f->git_dir); /* HEAD follows the branch */
	assert_int_equal(count_lines(cmd, NULL, 0), 2);
	free(cmd);
	cmd = kiln_asprintf("git -C '%s' log -1 '--format=%%an%%x20%%ae%%n%%(trailers:key=Kiln-Candidate,valueonly)' adamw/sm_90",
			    f->git_dir);
	assert_int_equal(count_lines(cmd, first, sizeof(first)), 3);
	assert_string_equal(first, "kiln kiln@localhost\n");
	free(cmd);
	/* another target gets its own branch; bad names and bad result.json are refused */
	kiln_git_best l = b;
	l.target = "lion";
	l.candidate_id = 3;
	assert_int_equal(kiln_git_commit_best(g, o1, &l), 0);
	l.target = "li on";
	assert_int_equal(kiln_git_commit_best(g, o1, &l), KILN_EINVAL);
	l.target = "lion";
	l.result_json = "{oops";
	assert_int_equal(kiln_git_commit_best(g, o1, &l), KILN_EINVAL);
	kiln_git_branch *br = NULL;
	size_t n = 0;
	assert_int_equal(kiln_git_verify_refs(g, &br, &n), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(br[i].name, "adamw/sm_90") == 0) {
			assert_int_equal(br[i].commits, 2);
			assert_int_equal(br[i].candidate_id, 17);
			assert_int_equal(br[i].run_id, 1);
			assert_string_equal(br[i].oid, o2);
		} else {
			assert_string_equal(br[i].name, "lion/sm_90");
			assert_int_equal(br[i].commits, 1);
			assert_int_equal(br[i].candidate_id, 3);
		}
	}
	kiln_git_branches_free(br, n);
	kiln_git_close(g);
	/* reopening finds the same history */
	assert_int_equal(kiln_git_open(&g, f->git_dir), 0);
	assert_int_equal(kiln_git_branch_tip(g, tip, "adamw", "sm_90"), 0);
	assert_string_equal(tip, o2);
	kiln_git_close(g);
}

static void test_archive__git_tags_increment(void **state)
{
	fixture *f = *state;
	kiln_git *g = NULL;
	char o1[41], o2[41], name[128];
	assert_int_equal(kiln_git_open(&g, f->git_dir), 0);
	assert_int_equal(kiln_git_tag(g, name, sizeof(name), "adamw", "sm_90", NULL, NULL), KILN_ENOTFOUND);
	kiln_git_best b = {"adamw", "sm_90", "// a\n", "{}", "{}", 1.5, 10.0, false, 1, 1, NULL};
	assert_int_equal(kiln_git_commit_best(g, o1, &b), 0);
	b.kernel_cu = "// b\n";
	assert_int_equal(kiln_git_commit_best(g, o2, &b), 0);
	assert_int_equal(kiln_git_tag(g, name, sizeof(name), "adamw", "sm_90", o1, "promote 1"), 0);
	assert_string_equal(name, "promoted/adamw/sm_90/v1");
	assert_int_equal(kiln_git_tag(g, name, sizeof(name), "adamw", "sm_90", NULL, NULL), 0);
	assert_string_equal(name, "promoted/adamw/sm_90/v2");
	char *text = NULL;
	assert_int_equal(kiln_git_read_file(g, &text, NULL, "promoted/adamw/sm_90/v1", "kernel.cu"), 0);
	assert_string_equal(text, "// a\n");
	free(text);
	assert_int_equal(kiln_git_read_file(g, &text, NULL, "promoted/adamw/sm_90/v2", "kernel.cu"), 0);
	assert_string_equal(text, "// b\n");
	free(text);
	/* another arch numbers its own tags */
	b.arch = "sm_80";
	assert_int_equal(kiln_git_commit_best(g, o1, &b), 0);
	assert_int_equal(kiln_git_tag(g, name, sizeof(name), "adamw", "sm_80", NULL, NULL), 0);
	assert_string_equal(name, "promoted/adamw/sm_80/v1");
	kiln_git_close(g);
	char *cmd = kiln_asprintf("git -C '%s' tag -l 'promoted/*'", f->git_dir);
	assert_int_equal(count_lines(cmd, NULL, 0), 3);
	free(cmd);
}

static void test_archive__git_verify_catches_damage(void **state)
{
	fixture *f = *state;
	kiln_git *g = NULL;
	char oid[41];
	assert_int_equal(kiln_git_open(&g, f->git_dir), 0);
	kiln_git_best b = {"adamw", "sm_90", "// a\n", "{}", "{}", 1.5, 10.0, false, 1, 1, NULL};
	assert_int_equal(kiln_git_commit_best(g, oid, &b), 0);
	/* a commit made behind kiln's back with only kernel.cu on top of the branch */
	char *cmd = kiln_asprintf(
		"cd '%s' && export GIT_AUTHOR_NAME=x GIT_AUTHOR_EMAIL=x@x GIT_COMMITTER_NAME=x GIT_COMMITTER_EMAIL=x@x"
		" && b=$(printf 'x' | git hash-object -w --stdin)"
		" && t=$(printf '100644 blob %%s\\tkernel.cu\\n' $b | git mktree)"
		" && c=$(git commit-tree $t -p adamw/sm_90 -m damaged)"
		" && git update-ref refs/heads/adamw/sm_90 $c",
		f->git_dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	kiln_git_branch *br = NULL;
	size_t n = 0;
	assert_int_equal(kiln_git_verify_refs(g, &br, &n), KILN_ECORRUPT);
	assert_null(br);
	assert_non_null(strstr(kiln_error_last(), "adamw/sm_90"));
	assert_non_null(strstr(kiln_error_last(), "launch.json"));
	kiln_git_close(g);
}

/* A tree shaped as worldmodel/wm_json.c writes it, revision r: nodes 0..n-1 (node 2 gone
 * after r 10, node order swapped at r 20), a double that needs 17 digits, escapes. */
static char *tree_at(int r)
{
	kiln_buf b = KILN_BUF_INIT;
	int n = 3 + r;
	assert_int_equal(kiln_buf_printf(&b, "{\"version\":1,\"revision\":%d,\"next_id\":%d,\"nodes\":[", r, n), 0);
	for (int k = 0, first = 1; k < n; k++) {
		int id = r == 20 && k < 2 ? 1 - k : k;
		if (id == 2 && r > 10)
			continue;
		assert_int_equal(kiln_buf_printf(&b, "%s{\"id\":%d,\"parent\":%d,\"title\":\"node %d \\u001b]0;x\\u0007 \\\"q\\\"\","
						    "\"notes\":\"%0500d\",\"score\":0.30000000000000004,\"attempts\":%d,"
						    "\"best_us\":%d.25}", first ? "" : ",", id, id ? 0 : -1, id, id,
						    id == r % n ? r : id, id), 0);
		first = 0;
	}
	assert_int_equal(kiln_buf_puts(&b, "]}"), 0);
	return kiln_buf_detach(&b);
}

static void test_archive__wm_revisions_as_deltas(void **state)
{
	fixture *f = *state;
	kiln_db *db = NULL;
	assert_int_equal(kiln_db_open(&db, f->db_path, 0), 0);
	int64_t run = add_run(db, "adamw"), ids[70];
	size_t whole = 0;
	for (int r = 0; r < 70; r++) {
		char *t = tree_at(r);
		whole += strlen(t);
		kiln_wm_revision_rec wr = {run, r, t, NULL, NULL, 0};
		assert_int_equal(kiln_db_wm_revision_add(db, &ids[r], &wr), 0);
		free(t);
	}
	for (int r = 0; r < 70; r++) { /* every revision rebuilds byte for byte */
		char *want = tree_at(r), *got = NULL;
		assert_int_equal(kiln_db_wm_tree(db, &got, ids[r]), 0);
		assert_string_equal(got, want);
		free(want);
		free(got);
	}
	/* the newest keeps its tree, and one row after at most 64 deltas: the rest are deltas */
	assert_int_equal(raw_int(f->db_path, "SELECT count(*) FROM wm_revisions WHERE tree IS NOT NULL"), 2);
	assert_int_equal(raw_int(f->db_path, "SELECT tree IS NOT NULL FROM wm_revisions ORDER BY id DESC LIMIT 1"), 1);
	long long stored = raw_int(f->db_path, "SELECT sum(length(coalesce(tree, delta))) FROM wm_revisions");
	assert_true(stored * 10 < (long long)whole);
	/* a broken chain is damage, said so, not a crash */
	raw_exec(f->db_path, "UPDATE wm_revisions SET delta = '{\"next\": 1}' WHERE id = 5");
	char *got = NULL;
	assert_int_equal(kiln_db_wm_tree(db, &got, ids[4]), KILN_ECORRUPT);
	assert_null(got);
	kiln_db_close(db);
}

/* A history.db written by kiln at schema v1 (tests/fixtures/history-v1.db: a 30-iteration
 * llm run against fake_llm, prompts shortened) opens read-only as it is, migrates on the
 * first read-write open, and every world-model revision reads back as it was stored. */
/* Copies tests/fixtures/history-v1.db (written by the v1 code) to the fixture's path. */
static void copy_v1_fixture(const fixture *f)
{
	const char *root = getenv("KILN_SOURCE_ROOT");
	char *src = kiln_asprintf("%s/tests/fixtures/history-v1.db", root ? root : ".");
	char *cmd = kiln_asprintf("cp '%s' '%s'", src, f->db_path);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(src);
}

/* Schema v3 adds timings.sizes (every bench size's time): an older file's timings are
 * kept with sizes NULL, and new rows carry the per-size JSON. */
static void test_archive__migrates_size_times(void **state)
{
	fixture *f = *state;
	copy_v1_fixture(f);
	long long before = raw_int(f->db_path, "SELECT count(*) FROM timings");
	double sum = (double)raw_int(f->db_path, "SELECT CAST(sum(time_us) * 1000 AS INTEGER) FROM timings");
	assert_true(before > 0);
	assert_int_equal(raw_int(f->db_path, "SELECT count(*) FROM pragma_table_info('timings') WHERE name = 'sizes'"), 0);
	kiln_db *db = NULL;
	assert_int_equal(kiln_db_open(&db, f->db_path, KILN_DB_READONLY), 0); /* read as it is */
	kiln_candidate_info *ci = NULL; /* a connection-private view reads the column as NULL */
	size_t nci = 0;
	assert_int_equal(kiln_db_candidates_list(db, &ci, &nci, 1), 0);
	assert_true(nci > 0);
	for (size_t i = 0; i < nci; i++)
		assert_null(ci[i].sizes_json);
	kiln_candidate_infos_free(ci, nci);
	kiln_db_close(db);
	assert_int_equal(raw_int(f->db_path, "SELECT count(*) FROM pragma_table_info('timings') WHERE name = 'sizes'"), 0);
	assert_int_equal(kiln_db_open(&db, f->db_path, 0), 0);
	assert_int_equal(kiln_db_schema_version(db), KILN_DB_SCHEMA_VERSION);
	assert_true(kiln_db_has_size_times(db));
	assert_int_equal(raw_int(f->db_path, "SELECT count(*) FROM pragma_table_info('timings') WHERE name = 'sizes'"), 1);
	assert_int_equal(raw_int(f->db_path, "SELECT count(*) FROM timings"), before);
	assert_int_equal(raw_int(f->db_path, "SELECT count(*) FROM timings WHERE sizes IS NULL"), before);
	assert_true((double)raw_int(f->db_path, "SELECT CAST(sum(time_us) * 1000 AS INTEGER) FROM timings") == sum);
	/* a new row keeps its per-size times; invalid JSON there is refused */
	int64_t run = add_run(db, "adamw"), id = 0;
	kiln_candidate_rec c = cand(run, 0, "/* seed */");
	c.is_seed = c.new_best = true;
	kiln_verify_rec v = verify_pass();
	kiln_timing_rec t = timing(40.0);
	t.sizes_json = "[{\"sizes\":{\"n\":16777216},\"weight\":1,\"time_us\":20},"
		       "{\"sizes\":{\"n\":268435456},\"weight\":1,\"time_us\":80}]";
	assert_int_equal(kiln_db_candidate_commit(db, &id, &c, &compile_ok, &v, &t), 0);
	char *q = kiln_asprintf("SELECT json_extract(sizes, '$[1].time_us') FROM timings WHERE candidate_id = %lld",
				(long long)id);
	assert_int_equal(raw_int(f->db_path, q), 80);
	free(q);
	kiln_candidate_rec c2 = cand(run, 1, "/* other */");
	t.sizes_json = "[{";
	assert_int_not_equal(kiln_db_candidate_commit(db, &id, &c2, &compile_ok, &v, &t), 0);
	kiln_db_close(db);
}

static void test_archive__migrates_v1_history(void **state)
{
	fixture *f = *state;
	copy_v1_fixture(f);
	assert_int_equal(raw_int(f->db_path, "PRAGMA user_version"), 1);
	int n = (int)raw_int(f->db_path, "SELECT count(*) FROM wm_revisions");
	assert_true(n > 16);
	int64_t *ids = calloc((size_t)n, sizeof(*ids));
	char **trees = calloc((size_t)n, sizeof(*trees));
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_open_v2(f->db_path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, "SELECT id, tree FROM wm_revisions ORDER BY id", -1, &st, NULL), SQLITE_OK);
	for (int i = 0; i < n && sqlite3_step(st) == SQLITE_ROW; i++) {
		ids[i] = sqlite3_column_int64(st, 0);
		trees[i] = kiln_strdup((const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_finalize(st);
	sqlite3_close(h);
	kiln_db *db = NULL;
	char *t = NULL;
	assert_int_equal(kiln_db_open(&db, f->db_path, KILN_DB_READONLY), 0); /* v1 reads as it is */
	assert_int_equal(kiln_db_wm_tree(db, &t, ids[3]), 0);
	assert_string_equal(t, trees[3]);
	free(t);
	kiln_db_close(db);
	assert_int_equal(kiln_db_open(&db, f->db_path, 0), 0);
	assert_int_equal(kiln_db_schema_version(db), KILN_DB_SCHEMA_VERSION);
	for (int i = 0; i < n; i++) {
		assert_int_equal(kiln_db_wm_tree(db, &t, ids[i]), 0);
		assert_string_equal(t, trees[i]);
		free(t);
	}
	assert_true(raw_int(f->db_path, "SELECT count(*) FROM wm_revisions WHERE delta IS NOT NULL") > n / 2);
	int64_t run = raw_int(f->db_path, "SELECT max(run_id) FROM wm_revisions"), it = 0, rev = 0;
	assert_int_equal(kiln_db_wm_revision_latest(db, &t, &it, run), 0);
	assert_string_equal(t, trees[n - 1]);
	kiln_wm_revision_rec wr = {run, it + 1, t, NULL, NULL, 0}; /* and the run goes on */
	assert_int_equal(kiln_db_wm_revision_add(db, &rev, &wr), 0);
	free(t);
	assert_int_equal(kiln_db_wm_tree(db, &t, ids[n - 1]), 0);
	assert_string_equal(t, trees[n - 1]);
	free(t);
	kiln_db_close(db);
	for (int i = 0; i < n; i++)
		free(trees[i]);
	free(trees);
	free(ids);
}

/* Schema v3: a candidate's one-line "what changed" round-trips; a v2 file (no column)
 * reads as it is (changed NULL) and gains the column on its first read-write open. */
static void test_archive__changed_column_v3(void **state)
{
	fixture *f = *state;
	kiln_db *db = NULL;
	assert_int_equal(kiln_db_open(&db, f->db_path, 0), 0);
	int64_t run = add_run(db, "adamw"), id = 0;
	kiln_candidate_rec c = cand(run, 0, "/* a */");
	c.changed = "ITEMS 4->8: more bytes in flight";
	assert_int_equal(kiln_db_candidate_commit(db, &id, &c, NULL, NULL, NULL), 0);
	kiln_candidate_info *ci = NULL;
	assert_int_equal(kiln_db_candidate_get(db, &ci, id), 0);
	assert_string_equal(ci->changed, "ITEMS 4->8: more bytes in flight");
	kiln_candidate_infos_free(ci, 1);
	kiln_db_close(db);
	/* the file as schema v2 wrote it */
	raw_exec(f->db_path, "ALTER TABLE candidates DROP COLUMN changed; ALTER TABLE timings DROP COLUMN sizes; "
			     "PRAGMA user_version = 2;");
	assert_int_equal(kiln_db_open(&db, f->db_path, KILN_DB_READONLY), 0);
	assert_int_equal(kiln_db_candidate_get(db, &ci, id), 0);
	assert_null(ci->changed);
	assert_string_equal(ci->source, "/* a */");
	kiln_candidate_infos_free(ci, 1);
	cJSON *rows = NULL;
	assert_int_equal(kiln_db_query_json(db, &rows, "SELECT c.id, c.changed FROM candidates c", NULL, 0, "t"), 0);
	assert_int_equal(cJSON_GetArraySize(rows), 1);
	cJSON_Delete(rows);
	kiln_db_close(db);
	assert_int_equal(raw_int(f->db_path, "PRAGMA user_version"), 2); /* a reader changes nothing */
	assert_int_equal(kiln_db_open(&db, f->db_path, 0), 0);
	assert_int_equal(raw_int(f->db_path, "PRAGMA user_version"), KILN_DB_SCHEMA_VERSION);
	c = cand(run, 1, "/* b */");
	c.changed = "+1 -1 lines";
	assert_int_equal(kiln_db_candidate_commit(db, &id, &c, NULL, NULL, NULL), 0);
	assert_int_equal(kiln_db_candidate_get(db, &ci, id), 0);
	assert_string_equal(ci->changed, "+1 -1 lines");
	kiln_candidate_infos_free(ci, 1);
	kiln_db_close(db);
}

/* promote's device-only rule: every shipped seed passes; each way of showing nvcc's host
 * pass (or another architecture) code NVRTC did not verify is refused, naming the line. */
static void test_archive__promote_device_only(void **state)
{
	(void)state;
	const char *root = getenv("KILN_SOURCE_ROOT");
	static const char *const knobs[] = {"BLOCK", "ITEMS", "QBLOCK"};
	char *pattern = kiln_asprintf("%s/targets/*/target.json", root ? root : ".");
	glob_t g;
	assert_int_equal(glob(pattern, 0, NULL, &g), 0);
	assert_true(g.gl_pathc >= 9); /* the built-in targets: every folder with a target.json */
	for (size_t i = 0; i < g.gl_pathc; i++) {
		char *path = kiln_asprintf("%.*sseed.cu", (int)(strlen(g.gl_pathv[i]) - strlen("target.json")),
					   g.gl_pathv[i]), *src = NULL;
		assert_int_equal(kiln_file_read(&src, NULL, path, 0), 0);
		if (kiln_promote_check_device_only(src, knobs, 3) != 0)
			fail_msg("%s: %s", path, kiln_error_last());
		free(src);
		free(path);
	}
	globfree(&g);
	free(pattern);
	static const char *const ok[] = {
		"#include <cuda_fp16.h>\nnamespace { __device__ __forceinline__ float sq(float x) { return x * x; } }\n"
		"extern \"C\" __global__ void __launch_bounds__(256) k(float *a, int n = 3) {\n"
		"  int i = blockIdx.x; if (i < n) a[i] = sq(a[i]); asm volatile(\"\" ::: \"memory\"); }\n",
		"struct P { float x; __device__ float get() const { return x; } static constexpr int N = 4; };\n"
		"__constant__ float tbl[4] = {1, 2, 3, 4};\ntypedef float real;\nusing f4 = float4;\n"
		"enum { W = 32 };\ntemplate <int N> __device__ int f() { return N; }\n"
		"extern \"C\" { __global__ void k2(real *o) { o[0] = tbl[0] + f<W>(); } }\n",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (kiln_promote_check_device_only(ok[i], knobs, 3) != 0)
			fail_msg("ok[%zu]: %s", i, kiln_error_last());
	static const char *const bad[] = {
		"#ifndef __CUDACC_RTC__\nstatic int pwn = system(\"id\");\n#endif\n__global__ void k() {}\n",
		"#ifndef __CUDA_ARCH__\n#define X 1\n#endif\n",
		"#if __CUDA_ARCH__ < 900\n__global__ void k(float *a) { a[0] = 1; }\n#endif\n",
		"#if defined(__NVCC__)\n#endif\n",
		"#ifdef BLOCK\n#endif\n",
		"#ifndef BLOCK\n#define BLOCK 1\n#else\n#endif\n",
		"#ifndef BLOCK\n#define BLOCK 1\n#elif 1\n#endif\n",
		"#ifndef NOT_A_KNOB\n#define NOT_A_KNOB 1\n#endif\n",
		"#define ARCH __CUDA_ARCH__\n",
		"#define CAT(a, b) a##b\n",
		"#define __CUDA_ARCH__ 900\n",
		"#undef __CUDACC_RTC__\n",
		"#define STMT int x = 1;\n",
		"%:if 1\n%:endif\n",
		"_Pragma(\"once\")\n",
		"#pragma GCC poison x\n",
		"__global__ void k() { int a = __CUDA_ARCH__; }\n",
		"static int pwn = system(\"id\");\n__global__ void k() {}\n",
		"extern \"C\" int system(const char *);\n",
		"int host_fn() { return 1; }\n",
		"__attribute__((constructor)) static void init() {}\n",
		"asm(\".section .init_array\");\n",
		"struct S { S() {} } s;\n",
		"struct S { static inline int x = 1; };\n",
		"auto l = [] { return 1; }();\n",
		"int x{5};\n",
		"[[gnu::constructor]] __device__ void f() {}\n",
		"__global__ void k() { \\\n}\n #  if 1\n#endif\n",
		"/* c */ #if 1\n#endif\n",
		"__global__ void k() {}\n#ifndef BLOCK\n",
		"const char *s = R\"x(\n#if 1\n)x\";\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (kiln_promote_check_device_only(bad[i], knobs, 3) != KILN_EVERIFY)
			fail_msg("bad[%zu] was not refused: %s", i, bad[i]);
		assert_non_null(strstr(kiln_error_last(), "line "));
	}
	/* a line splice keeps the line numbers */
	assert_int_equal(kiln_promote_check_device_only("#define A \\\n  1\n\n#if A\n#endif\n", knobs, 3), KILN_EVERIFY);
	assert_non_null(strstr(kiln_error_last(), "line 4:"));
}

/* Redaction at the archive's boundaries: a registered secret never lands in history.db
 * (any text column) or an archive commit, and a JSON column stays valid JSON. */
static void test_archive__secrets_are_redacted(void **state)
{
	fixture *f = *state;
	const char *secret = "sk-archive-test-secret-42";
	kiln_redact_reset();
	assert_int_equal(kiln_redact_add(secret), 0);
	kiln_db *db = NULL;
	assert_int_equal(kiln_db_open(&db, f->db_path, 0), 0);
	int64_t run = add_run(db, "adamw"), id = 0;
	kiln_candidate_rec c = cand(run, 0, "// sk-archive-test-secret-42 leaked\n");
	c.launch_json = "{\"launches\":[],\"note\":\"sk-archive-test-secret-42\"}";
	kiln_compile_rec comp = compile_ok;
	comp.log = "kernel.cu(1): sk-archive-test-secret-42";
	assert_int_equal(kiln_db_candidate_commit(db, &id, &c, &comp, NULL, NULL), 0);
	kiln_candidate_info *ci = NULL;
	assert_int_equal(kiln_db_candidate_get(db, &ci, id), 0);
	assert_string_equal(ci->source, "// [redacted] leaked\n");
	assert_string_equal(ci->launch_json, "{\"launches\":[],\"note\":\"[redacted]\"}");
	assert_null(strstr(ci->compile_log, secret));
	kiln_candidate_infos_free(ci, 1);
	kiln_db_close(db);
	kiln_git *g = NULL;
	char oid[41];
	assert_int_equal(kiln_git_open(&g, f->git_dir), 0);
	kiln_git_best b = {"adamw", "sm_90", "// sk-archive-test-secret-42\n", "{\"launches\":[]}",
			   "{\"note\":\"sk-archive-test-secret-42\"}", 1.1, 40.0, true, 7, 1,
			   "node: sk-archive-test-secret-42"};
	assert_int_equal(kiln_git_commit_best(g, oid, &b), 0);
	char *cmd = kiln_asprintf("git -C '%s' log -p --all | grep -c 'sk-archive' || true", f->git_dir);
	char first[64] = "";
	count_lines(cmd, first, sizeof first);
	assert_string_equal(first, "0\n");
	free(cmd);
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(kiln_git_read_file(g, &text, &len, oid, "kernel.cu"), 0);
	assert_string_equal(text, "// [redacted]\n");
	free(text);
	kiln_git_close(g);
	kiln_redact_reset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_archive__create_and_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive__migrates_v0_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive__newer_schema_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive__corrupt_file_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive__candidate_commit_is_one_transaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive__prefix_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive__wal_reader_beside_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive__llm_calls_revisions_checkpoints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive__wm_revisions_as_deltas, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive__migrates_v1_history, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive__changed_column_v3, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive__migrates_size_times, setup, teardown),
		cmocka_unit_test(test_archive__promote_device_only),
		cmocka_unit_test_setup_teardown(test_archive__record_fields_round_trip, setup, teardown),
		cmocka_unit_test(test_archive__record_fields_bad_answers),
		cmocka_unit_test_setup_teardown(test_archive__git_commits_and_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive__git_tags_increment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive__secrets_are_redacted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive__git_verify_catches_damage, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
