/* archive: the typed insert/query API over history.db. Each public write is one
 * statement or one transaction (kiln_db_candidate_commit wraps the candidate and all its
 * parts in a savepoint, so it nests inside a caller's kiln_db_tx_begin). Timestamps are
 * ISO-8601 UTC; absent values are stored as NULL, never as magic numbers. */
#include "archive/archive_int.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void now_iso(char out[32])
{
	kiln_iso8601(out, 32, kiln_wall_s());
}

/* Steps a write statement to completion and finalizes it. */
static kiln_err step_done(kiln_db *db, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	kiln_err e = rc == SQLITE_DONE ? KILN_OK : kiln_db_err(db, rc, what);
	sqlite3_finalize(st);
	return e;
}

static int bind_capped(sqlite3_stmt *st, int i, const char *s, size_t max)
{
	if (!s || strlen(s) <= max)
		return kiln_db_bind_text(st, i, s);
	/* redacted before the cut, so no part of a secret survives at the edge of a cut */
	char *r = kiln_redact_dup(s), *c = kiln_text_cap(r ? r : kiln_strdup(s), max);
	int rc = c ? kiln_db_bind_text(st, i, c) : SQLITE_NOMEM;
	free(c); /* kiln_text_cap took r (or the copy) */
	return rc;
}

static kiln_err need(const char *v, const char *field, const char *what)
{
	if (!v)
		return kiln_error_set(KILN_EINVAL, "%s: %s is required", what, field);
	return KILN_OK;
}

static kiln_err changed_one(kiln_db *db, int64_t run_id, const char *what)
{
	if (sqlite3_changes(db->h) == 0)
		return kiln_error_set(KILN_ENOTFOUND, "%s: run %lld not found", what, (long long)run_id);
	return KILN_OK;
}

/* Prepares sql with ?1 bound to id. */
static kiln_err prepare_by(kiln_db *db, sqlite3_stmt **st, const char *sql, int64_t id)
{
	kiln_err e = kiln_db_prepare(db, st, sql);
	if (!e)
		sqlite3_bind_int64(*st, 1, id);
	return e;
}

/* ---------------- runs ---------------- */

kiln_err kiln_db_run_begin(kiln_db *db, int64_t *out_id, const kiln_run_rec *r)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	kiln_err e;
	if ((e = need(r->target, "target", "recording a run")) ||
	    (e = need(r->policy, "policy", "recording a run")) ||
	    (e = need(r->device, "device", "recording a run")) || (e = need(r->arch, "arch", "recording a run")))
		return e;
	if ((e = kiln_db_prepare(db, &st,
				 "INSERT INTO runs (target, policy, llm_model, device, gpu, arch, started,"
				 " status, budgets, config, pid) VALUES (?,?,?,?,?,?,?,'running',?,?,?)")))
		return e;
	now_iso(now);
	kiln_db_bind_text(st, 1, r->target);
	kiln_db_bind_text(st, 2, r->policy);
	kiln_db_bind_text(st, 3, r->llm_model);
	kiln_db_bind_text(st, 4, r->device);
	kiln_db_bind_text(st, 5, r->gpu);
	kiln_db_bind_text(st, 6, r->arch);
	kiln_db_bind_text(st, 7, now);
	kiln_db_bind_text(st, 8, r->budgets_json ? r->budgets_json : "{}");
	kiln_db_bind_text(st, 9, r->config_json ? r->config_json : "{}");
	kiln_db_bind_id(st, 10, r->pid);
	if ((e = step_done(db, st, "recording a run")))
		return e;
	if (out_id)
		*out_id = sqlite3_last_insert_rowid(db->h);
	return KILN_OK;
}

kiln_err kiln_db_run_end(kiln_db *db, int64_t run_id, const char *status, const char *spent_json)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	kiln_err e;
	if (!status || (strcmp(status, "finished") && strcmp(status, "interrupted") && strcmp(status, "failed")))
		return kiln_error_set(KILN_EINVAL, "ending run %lld: status '%s' is not finished, interrupted or failed",
				      (long long)run_id, status ? status : "(null)");
	if ((e = kiln_db_prepare(db, &st, "UPDATE runs SET status = ?, ended = ?, spent = coalesce(?, spent)"
					  " WHERE id = ?")))
		return e;
	now_iso(now);
	kiln_db_bind_text(st, 1, status);
	kiln_db_bind_text(st, 2, now);
	kiln_db_bind_text(st, 3, spent_json);
	sqlite3_bind_int64(st, 4, run_id);
	if ((e = step_done(db, st, "ending a run")))
		return e;
	return changed_one(db, run_id, "ending a run");
}

kiln_err kiln_db_run_resume(kiln_db *db, int64_t run_id, int64_t pid)
{
	sqlite3_stmt *st = NULL;
	kiln_err e = kiln_db_prepare(db, &st, "UPDATE runs SET status = 'running', ended = NULL, pid = ?"
					      " WHERE id = ?");
	if (e)
		return e;
	kiln_db_bind_id(st, 1, pid);
	sqlite3_bind_int64(st, 2, run_id);
	if ((e = step_done(db, st, "resuming a run")))
		return e;
	return changed_one(db, run_id, "resuming a run");
}

kiln_err kiln_db_run_spent(kiln_db *db, int64_t run_id, const char *spent_json)
{
	sqlite3_stmt *st = NULL;
	kiln_err e = kiln_db_prepare(db, &st, "UPDATE runs SET spent = ? WHERE id = ?");
	if (e)
		return e;
	kiln_db_bind_text(st, 1, spent_json ? spent_json : "{}");
	sqlite3_bind_int64(st, 2, run_id);
	if ((e = step_done(db, st, "updating a run's spending")))
		return e;
	return changed_one(db, run_id, "updating a run's spending");
}

#define RUN_COLUMNS                                                                     \
	"r.id, r.target, r.policy, r.llm_model, r.device, r.gpu, r.arch, r.started, r.ended, " \
	"r.status, r.budgets, r.spent, r.config, r.seed_candidate, r.best_candidate, r.pid, "  \
	"(SELECT count(*) FROM candidates c WHERE c.run_id = r.id)"

static kiln_err read_run(kiln_run_info *r, sqlite3_stmt *st)
{
	r->id = sqlite3_column_int64(st, 0);
	char **texts[] = {&r->target, &r->policy, &r->llm_model, &r->device, &r->gpu, &r->arch,
			  &r->started, &r->ended, &r->status, &r->budgets_json, &r->spent_json, &r->config_json};
	for (int i = 0; i < 12; i++) {
		*texts[i] = kiln_db_col_dup(st, i + 1);
		if (!*texts[i] && sqlite3_column_type(st, i + 1) != SQLITE_NULL)
			return KILN_ENOMEM;
	}
	r->seed_candidate = kiln_db_col_int(st, 13, 0);
	r->best_candidate = kiln_db_col_int(st, 14, 0);
	r->pid = kiln_db_col_int(st, 15, 0);
	r->ncandidates = kiln_db_col_int(st, 16, 0);
	return KILN_OK;
}

void kiln_run_infos_free(kiln_run_info *runs, size_t n)
{
	if (!runs)
		return;
	for (size_t i = 0; i < n; i++) {
		kiln_run_info *r = &runs[i];
		free(r->target);
		free(r->policy);
		free(r->llm_model);
		free(r->device);
		free(r->gpu);
		free(r->arch);
		free(r->started);
		free(r->ended);
		free(r->status);
		free(r->budgets_json);
		free(r->spent_json);
		free(r->config_json);
	}
	free(runs);
}

/* Runs a query whose rows are read by `read` into a growing array of `size`-byte items. */
static kiln_err collect(kiln_db *db, sqlite3_stmt *st, void **out, size_t *n, size_t size,
			kiln_err (*read)(void *item, sqlite3_stmt *st), void (*free_all)(void *, size_t),
			const char *what)
{
	char *arr = NULL;
	size_t cap = 0, cnt = 0;
	kiln_err e = KILN_OK;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap) {
			size_t nc = cap ? 2 * cap : 8;
			char *na = kiln_realloc(arr, nc * size);
			if (!na) {
				e = KILN_ENOMEM;
				goto done;
			}
			arr = na;
			cap = nc;
		}
		memset(arr + cnt * size, 0, size);
		cnt++;
		if ((e = read(arr + (cnt - 1) * size, st)))
			goto done;
	}
	if (rc != SQLITE_DONE)
		e = kiln_db_err(db, rc, what);
done:
	sqlite3_finalize(st);
	if (e) {
		free_all(arr, cnt);
		return e;
	}
	*out = arr;
	*n = cnt;
	return KILN_OK;
}

/* collect() over sql bound with one integer (?1); *n 0 when no row matched. */
static kiln_err collect_by(kiln_db *db, const char *sql, int64_t id, void **out, size_t *n, size_t size,
			   kiln_err (*read)(void *item, sqlite3_stmt *st), void (*free_all)(void *, size_t),
			   const char *what)
{
	sqlite3_stmt *st = NULL;
	*out = NULL;
	*n = 0;
	kiln_err e = prepare_by(db, &st, sql, id);
	return e ? e : collect(db, st, out, n, size, read, free_all, what);
}

static kiln_err read_run_v(void *item, sqlite3_stmt *st)
{
	return read_run(item, st);
}

static void free_runs_v(void *p, size_t n)
{
	kiln_run_infos_free(p, n);
}

kiln_err kiln_db_runs_list(kiln_db *db, kiln_run_info **out, size_t *n, const char *target)
{
	sqlite3_stmt *st = NULL;
	*out = NULL;
	*n = 0;
	kiln_err e = kiln_db_prepare(db, &st, "SELECT " RUN_COLUMNS " FROM runs r"
					      " WHERE ?1 IS NULL OR r.target = ?1 ORDER BY r.id DESC");
	if (e)
		return e;
	kiln_db_bind_text(st, 1, target);
	return collect(db, st, (void **)out, n, sizeof(**out), read_run_v, free_runs_v, "listing runs");
}

kiln_err kiln_db_run_get(kiln_db *db, kiln_run_info **out, int64_t run_id)
{
	size_t n = 0;
	kiln_err e = collect_by(db, "SELECT " RUN_COLUMNS " FROM runs r WHERE r.id = ?", run_id, (void **)out, &n,
				sizeof(**out), read_run_v, free_runs_v, "reading a run");
	if (e)
		return e;
	if (n == 0) {
		free(*out);
		*out = NULL;
		return kiln_error_set(KILN_ENOTFOUND, "%s: run %lld not found", db->path, (long long)run_id);
	}
	return KILN_OK;
}

/* ---------------- candidates ---------------- */

static void candidate_hash(char out[65], const kiln_candidate_rec *c, const char *knobs)
{
	kiln_sha256 h;
	uint8_t d[32];
	const char *parts[3] = {c->source, c->launch_json, knobs};
	kiln_sha256_init(&h);
	for (int i = 0; i < 3; i++)
		kiln_sha256_update(&h, parts[i], strlen(parts[i]) + 1); /* the NUL separates */
	kiln_sha256_final(&h, d);
	kiln_hex(out, d, sizeof(d));
}

static const char *outcome_of(const kiln_compile_rec *cr, const kiln_verify_rec *v)
{
	if (cr && !cr->ok)
		return "compile_error";
	if (!v)
		return "unverified";
	return v->passed ? "passed" : "failed";
}

/* Binds one field of rec (archive/fields.c) as history.db stores it: absent values as NULL. */
static int bind_field(sqlite3_stmt *st, int i, const kiln_field *f, const void *rec)
{
	const char *s;
	int64_t v;
	switch (f->type) {
	case KILN_FIELD_BOOL:
		v = kiln_field_int(rec, f);
		return f->words[0] ? kiln_db_bind_text(st, i, f->words[v != 0]) : sqlite3_bind_int(st, i, v != 0);
	case KILN_FIELD_INT:
	case KILN_FIELD_INT64:
		v = kiln_field_int(rec, f);
		if ((f->flags & KILN_FIELD_AT_LEAST_1) && v < 1)
			v = 1;
		return f->flags & KILN_FIELD_COUNT ? kiln_db_bind_count(st, i, v) : sqlite3_bind_int64(st, i, v);
	case KILN_FIELD_REAL:
		return kiln_db_bind_real(st, i, kiln_field_num(rec, f));
	default:
		s = kiln_field_text(rec, f);
		s = s ? s : f->if_null;
		return f->cap ? bind_capped(st, i, s, f->cap) : kiln_db_bind_text(st, i, s);
	}
}

/* INSERT INTO <d->table> (candidate_id, <every column of d>) with rec's fields. */
static kiln_err insert_part(kiln_db *db, int64_t id, const kiln_record_desc *d, const void *rec)
{
	sqlite3_stmt *st = NULL;
	char sql[1024], what[64];
	size_t at = (size_t)snprintf(sql, sizeof sql, "INSERT INTO %s (candidate_id", d->table);
	for (size_t i = 0; i < d->nfields; i++) {
		const kiln_field *f = &d->fields[i];
		if ((f->flags & KILN_FIELD_REQUIRED) && !kiln_field_text(rec, f))
			return kiln_error_set(KILN_EINVAL, "recording a %s: %s %s is required", d->noun, d->part, f->column);
		at += (size_t)snprintf(sql + at, sizeof sql - at, ", %s", f->column);
	}
	at += (size_t)snprintf(sql + at, sizeof sql - at, ") VALUES (?");
	for (size_t i = 0; i < d->nfields; i++)
		at += (size_t)snprintf(sql + at, sizeof sql - at, ",?");
	snprintf(sql + at, sizeof sql - at, ")");
	kiln_err e = kiln_db_prepare(db, &st, sql);
	if (e)
		return e;
	sqlite3_bind_int64(st, 1, id);
	for (size_t i = 0; i < d->nfields; i++)
		bind_field(st, (int)i + 2, &d->fields[i], rec);
	snprintf(what, sizeof what, "recording the %s", d->noun);
	return step_done(db, st, what);
}

kiln_err kiln_db_candidate_commit(kiln_db *db, int64_t *out_id, const kiln_candidate_rec *c,
				  const kiln_compile_rec *compile, const kiln_verify_rec *verify,
				  const kiln_timing_rec *timing)
{
	sqlite3_stmt *st = NULL;
	char now[32], hash[65], src_hash[65];
	const char *knobs = c->knobs_json ? c->knobs_json : "{}";
	int64_t id = 0;
	kiln_err e;
	if ((e = need(c->source, "source", "recording a candidate")) ||
	    (e = need(c->launch_json, "launch plan", "recording a candidate")))
		return e;
	if ((e = kiln_db_tx_begin(db)))
		return kiln_error_wrap(e, "recording run %lld iteration %lld", (long long)c->run_id,
				       (long long)c->iteration);
	if ((e = kiln_db_prepare(db, &st,
				 "INSERT INTO candidates (run_id, iteration, node_id, parent_id, source, launch,"
				 " knobs, source_hash, hash, created, llm_call_id, outcome, changed)"
				 " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)")))
		goto fail;
	now_iso(now);
	candidate_hash(hash, c, knobs);
	kiln_sha256_hex(src_hash, c->source, strlen(c->source));
	sqlite3_bind_int64(st, 1, c->run_id);
	sqlite3_bind_int64(st, 2, c->iteration);
	kiln_db_bind_text(st, 3, c->node_id);
	kiln_db_bind_id(st, 4, c->parent_id);
	kiln_db_bind_text(st, 5, c->source);
	kiln_db_bind_text(st, 6, c->launch_json);
	kiln_db_bind_text(st, 7, knobs);
	kiln_db_bind_text(st, 8, src_hash);
	kiln_db_bind_text(st, 9, hash);
	kiln_db_bind_text(st, 10, now);
	kiln_db_bind_id(st, 11, c->llm_call_id);
	kiln_db_bind_text(st, 12, outcome_of(compile, verify));
	kiln_db_bind_text(st, 13, c->changed);
	if ((e = step_done(db, st, "recording the candidate")))
		goto fail;
	id = sqlite3_last_insert_rowid(db->h);
	if ((compile && (e = insert_part(db, id, &kiln_compile_desc, compile))) ||
	    (verify && (e = insert_part(db, id, &kiln_verify_desc, verify))) ||
	    (timing && (e = insert_part(db, id, &kiln_timing_desc, timing))))
		goto fail;
	if (c->is_seed || c->new_best) {
		const char *sql = c->is_seed && c->new_best
			? "UPDATE runs SET seed_candidate = ?1, best_candidate = ?1 WHERE id = ?2"
			: c->is_seed ? "UPDATE runs SET seed_candidate = ?1 WHERE id = ?2"
				     : "UPDATE runs SET best_candidate = ?1 WHERE id = ?2";
		if ((e = kiln_db_prepare(db, &st, sql)))
			goto fail;
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, c->run_id);
		if ((e = step_done(db, st, "marking the run's seed/best")))
			goto fail;
	}
	if ((e = kiln_db_tx_commit(db)))
		goto fail;
	if (out_id)
		*out_id = id;
	return KILN_OK;
fail:
	kiln_db_tx_rollback(db);
	return kiln_error_wrap(e, "recording run %lld iteration %lld", (long long)c->run_id,
			       (long long)c->iteration);
}

#define CAND_COLUMNS                                                                          \
	"c.id, c.run_id, c.iteration, c.parent_id, c.llm_call_id, c.node_id, c.source, c.launch, " \
	"c.knobs, c.source_hash, c.hash, c.created, c.outcome, "                                   \
	"cr.candidate_id, cr.ok, cr.log, cr.registers, cr.spill_store_bytes, cr.spill_load_bytes, " \
	"cr.shared_bytes, v.candidate_id, v.passed, v.failed_check, v.message, v.worst_error, "     \
	"t.candidate_id, t.kind, t.time_us, t.speedup, t.roofline, c.changed, t.sizes "             \
	"FROM candidates c LEFT JOIN compile_results cr ON cr.candidate_id = c.id "                \
	"LEFT JOIN verifications v ON v.candidate_id = c.id "                                      \
	"LEFT JOIN timings t ON t.candidate_id = c.id "

static kiln_err read_cand(void *item, sqlite3_stmt *st)
{
	kiln_candidate_info *c = item;
	c->id = sqlite3_column_int64(st, 0);
	c->run_id = sqlite3_column_int64(st, 1);
	c->iteration = sqlite3_column_int64(st, 2);
	c->parent_id = kiln_db_col_int(st, 3, 0);
	c->llm_call_id = kiln_db_col_int(st, 4, 0);
	struct { char **dst; int col; } texts[] = {
		{&c->node_id, 5}, {&c->source, 6}, {&c->launch_json, 7}, {&c->knobs_json, 8},
		{&c->source_hash, 9}, {&c->hash, 10}, {&c->created, 11}, {&c->outcome, 12},
		{&c->compile_log, 15}, {&c->failed_check, 22}, {&c->verify_message, 23}, {&c->changed, 30},
		{&c->sizes_json, 31},
	};
	for (size_t i = 0; i < KILN_ARRAY_LEN(texts); i++) {
		*texts[i].dst = kiln_db_col_dup(st, texts[i].col);
		if (!*texts[i].dst && sqlite3_column_type(st, texts[i].col) != SQLITE_NULL)
			return KILN_ENOMEM;
	}
	c->has_compile = sqlite3_column_type(st, 13) != SQLITE_NULL;
	c->compile_ok = kiln_db_col_int(st, 14, 0) != 0;
	c->registers = (int)kiln_db_col_int(st, 16, -1);
	c->spill_store_bytes = kiln_db_col_int(st, 17, -1);
	c->spill_load_bytes = kiln_db_col_int(st, 18, -1);
	c->shared_bytes = kiln_db_col_int(st, 19, -1);
	c->has_verify = sqlite3_column_type(st, 20) != SQLITE_NULL;
	c->passed = kiln_db_col_int(st, 21, 0) != 0;
	c->worst_error = kiln_db_col_real(st, 24);
	c->has_timing = sqlite3_column_type(st, 25) != SQLITE_NULL;
	const unsigned char *kind = sqlite3_column_text(st, 26);
	c->modeled = kind && strcmp((const char *)kind, "modeled") == 0;
	c->time_us = kiln_db_col_real(st, 27);
	c->speedup = kiln_db_col_real(st, 28);
	c->roofline = kiln_db_col_real(st, 29);
	return KILN_OK;
}

void kiln_candidate_infos_free(kiln_candidate_info *c, size_t n)
{
	if (!c)
		return;
	for (size_t i = 0; i < n; i++) {
		free(c[i].node_id);
		free(c[i].source);
		free(c[i].launch_json);
		free(c[i].knobs_json);
		free(c[i].source_hash);
		free(c[i].hash);
		free(c[i].created);
		free(c[i].outcome);
		free(c[i].compile_log);
		free(c[i].failed_check);
		free(c[i].verify_message);
		free(c[i].changed);
		free(c[i].sizes_json);
	}
	free(c);
}

static void free_cands_v(void *p, size_t n)
{
	kiln_candidate_infos_free(p, n);
}

kiln_err kiln_db_candidates_list(kiln_db *db, kiln_candidate_info **out, size_t *n, int64_t run_id)
{
	return collect_by(db, "SELECT " CAND_COLUMNS "WHERE c.run_id = ? ORDER BY c.iteration, c.id", run_id, (void **)out,
			  n, sizeof(**out), read_cand, free_cands_v, "listing candidates");
}

/* Runs a candidate query expected to give one row; n says how many it gave. */
static kiln_err cand_query(kiln_db *db, kiln_candidate_info **out, size_t *n, sqlite3_stmt *st)
{
	return collect(db, st, (void **)out, n, sizeof(**out), read_cand, free_cands_v, "reading a candidate");
}

kiln_err kiln_db_candidate_get(kiln_db *db, kiln_candidate_info **out, int64_t id)
{
	size_t n = 0;
	kiln_err e = collect_by(db, "SELECT " CAND_COLUMNS "WHERE c.id = ?", id, (void **)out, &n, sizeof(**out),
				read_cand, free_cands_v, "reading a candidate");
	if (e)
		return e;
	if (n == 0) {
		free(*out);
		*out = NULL;
		return kiln_error_set(KILN_ENOTFOUND, "candidate %lld not found in %s", (long long)id, db->path);
	}
	return KILN_OK;
}

kiln_err kiln_db_candidate_find(kiln_db *db, kiln_candidate_info **out, const char *ref)
{
	sqlite3_stmt *st = NULL;
	size_t n = 0, len = strlen(ref);
	bool digits = len > 0, hex = len > 0;
	*out = NULL;
	for (size_t i = 0; i < len; i++) {
		digits = digits && isdigit((unsigned char)ref[i]);
		hex = hex && isxdigit((unsigned char)ref[i]);
	}
	/* all-digit references shorter than 7 are row ids; longer ones may be hash prefixes */
	if (digits && len < 7)
		return kiln_db_candidate_get(db, out, strtoll(ref, NULL, 10));
	if (!hex || len < 4 || len > 64)
		return kiln_error_set(KILN_EINVAL, "candidate '%s': expected a row id or at least 4 hex digits of its hash", ref);
	char *lower = kiln_strdup(ref);
	if (!lower)
		return KILN_ENOMEM;
	for (char *p = lower; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	/* a hash prefix; a long all-digit reference that matches no hash is tried as an id */
	kiln_err e = kiln_db_prepare(db, &st, "SELECT " CAND_COLUMNS "WHERE substr(c.hash, 1, ?1) = ?2"
					      " ORDER BY c.id LIMIT 3");
	if (e)
		goto done;
	sqlite3_bind_int(st, 1, (int)len);
	kiln_db_bind_text(st, 2, lower);
	if ((e = cand_query(db, out, &n, st)))
		goto done;
	if (n > 1) {
		e = kiln_error_set(KILN_EINVAL, "candidate '%s' is ambiguous: %s candidates have hashes starting "
				   "with it (give more digits)", ref, n > 2 ? "several" : "2");
		kiln_candidate_infos_free(*out, n);
		*out = NULL;
		goto done;
	}
	if (n == 0) {
		free(*out);
		*out = NULL;
		if (digits)
			e = kiln_db_candidate_get(db, out, strtoll(ref, NULL, 10));
		else
			e = kiln_error_set(KILN_ENOTFOUND, "no candidate with a hash starting '%s' in %s", ref, db->path);
	}
done:
	free(lower);
	return e;
}

kiln_err kiln_db_candidate_best(kiln_db *db, kiln_candidate_info **out, int64_t run_id)
{
	kiln_run_info *r = NULL;
	*out = NULL;
	kiln_err e = kiln_db_run_get(db, &r, run_id);
	if (e)
		return e;
	int64_t best = r->best_candidate;
	kiln_run_infos_free(r, 1);
	if (best == 0)
		return kiln_error_set(KILN_ENOTFOUND, "run %lld has no best candidate yet", (long long)run_id);
	return kiln_db_candidate_get(db, out, best);
}

kiln_err kiln_db_run_set_best(kiln_db *db, int64_t run_id, int64_t candidate_id)
{
	sqlite3_stmt *st = NULL;
	kiln_err e = kiln_db_prepare(db, &st, "UPDATE runs SET best_candidate = ?1 WHERE id = ?2");
	if (e)
		return e;
	sqlite3_bind_int64(st, 1, candidate_id);
	sqlite3_bind_int64(st, 2, run_id);
	return step_done(db, st, "changing the run's best");
}

/* ---------------- llm calls, world model, events, checkpoints ---------------- */

kiln_err kiln_db_llm_call_add(kiln_db *db, int64_t *out_id, const kiln_llm_call_rec *r)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	kiln_err e;
	const char *what = "recording an LLM call";
	if ((e = need(r->provider, "provider", what)) || (e = need(r->model, "model", what)) ||
	    (e = need(r->status, "status", what)) || (e = need(r->purpose, "purpose", what)) ||
	    (e = need(r->prompt, "prompt", what)))
		return e;
	if ((e = kiln_db_prepare(db, &st,
				 "INSERT INTO llm_calls (run_id, provider, model, request_id, status, attempts,"
				 " latency_s, prompt_tokens, cached_tokens, completion_tokens, reasoning_tokens,"
				 " cost_usd, purpose, prompt, reply, error, created)"
				 " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")))
		return e;
	now_iso(now);
	sqlite3_bind_int64(st, 1, r->run_id);
	kiln_db_bind_text(st, 2, r->provider);
	kiln_db_bind_text(st, 3, r->model);
	kiln_db_bind_text(st, 4, r->request_id);
	kiln_db_bind_text(st, 5, r->status);
	sqlite3_bind_int(st, 6, r->attempts > 0 ? r->attempts : 1);
	kiln_db_bind_real(st, 7, r->latency_s);
	kiln_db_bind_count(st, 8, r->prompt_tokens);
	kiln_db_bind_count(st, 9, r->cached_tokens);
	kiln_db_bind_count(st, 10, r->completion_tokens);
	kiln_db_bind_count(st, 11, r->reasoning_tokens);
	kiln_db_bind_real(st, 12, r->cost_usd);
	kiln_db_bind_text(st, 13, r->purpose);
	bind_capped(st, 14, r->prompt, KILN_DB_CAP_LLM_TEXT);
	bind_capped(st, 15, r->reply, KILN_DB_CAP_LLM_TEXT);
	bind_capped(st, 16, r->error, KILN_DB_CAP_LLM_TEXT);
	kiln_db_bind_text(st, 17, now);
	if ((e = step_done(db, st, what)))
		return e;
	if (out_id)
		*out_id = sqlite3_last_insert_rowid(db->h);
	return KILN_OK;
}

/* One row of (text, integer) from sql bound with run_id; KILN_ENOTFOUND when none. */
static kiln_err get_text_int(kiln_db *db, char **text, int64_t *num, int64_t run_id, const char *sql,
			     const char *what)
{
	sqlite3_stmt *st = NULL;
	*text = NULL;
	kiln_err e = prepare_by(db, &st, sql, run_id);
	if (e)
		return e;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (!(*text = kiln_db_col_dup(st, 0)))
			e = KILN_ENOMEM;
		if (num)
			*num = sqlite3_column_int64(st, 1);
	} else if (rc == SQLITE_DONE) {
		e = kiln_error_set(KILN_ENOTFOUND, "run %lld has no %s", (long long)run_id, what);
	} else {
		e = kiln_db_err(db, rc, what);
	}
	sqlite3_finalize(st);
	return e;
}

kiln_err kiln_db_event_add(kiln_db *db, int64_t run_id, const char *level, const char *kind,
			   const char *message, const char *data_json)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	kiln_err e;
	if ((e = need(level, "level", "recording an event")) || (e = need(kind, "kind", "recording an event")) ||
	    (e = need(message, "message", "recording an event")) ||
	    (e = kiln_db_prepare(db, &st, "INSERT INTO events (run_id, time, level, kind, message, data)"
					  " VALUES (?,?,?,?,?,?)")))
		return e;
	now_iso(now);
	kiln_db_bind_id(st, 1, run_id);
	kiln_db_bind_text(st, 2, now);
	kiln_db_bind_text(st, 3, level);
	kiln_db_bind_text(st, 4, kind);
	bind_capped(st, 5, message, KILN_DB_CAP_MESSAGE);
	kiln_db_bind_text(st, 6, data_json);
	return step_done(db, st, "recording an event");
}

kiln_err kiln_db_checkpoint_put(kiln_db *db, int64_t run_id, int64_t iteration, const char *state_json)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	kiln_err e;
	if ((e = need(state_json, "state", "writing a checkpoint")) ||
	    (e = kiln_db_prepare(db, &st, "INSERT INTO checkpoints (run_id, iteration, state, updated)"
					  " VALUES (?,?,?,?) ON CONFLICT(run_id) DO UPDATE SET"
					  " iteration = excluded.iteration, state = excluded.state,"
					  " updated = excluded.updated")))
		return e;
	now_iso(now);
	sqlite3_bind_int64(st, 1, run_id);
	sqlite3_bind_int64(st, 2, iteration);
	kiln_db_bind_text(st, 3, state_json);
	kiln_db_bind_text(st, 4, now);
	return step_done(db, st, "writing a checkpoint");
}

kiln_err kiln_db_checkpoint_get(kiln_db *db, char **state_json, int64_t *iteration, int64_t run_id)
{
	return get_text_int(db, state_json, iteration, run_id,
			    "SELECT state, iteration FROM checkpoints WHERE run_id = ?", "checkpoint");
}
