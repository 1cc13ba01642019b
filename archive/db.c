/* archive: opening history.db. WAL, 5 s busy timeout, foreign keys; the schema version
 * is PRAGMA user_version and migrations is a table of functions, each run in its own
 * IMMEDIATE transaction that also bumps user_version, so a crash mid-migration leaves
 * the old version intact. Every SQLite result code becomes a kiln_err in kiln_db_err. */
#include "archive/archive_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Schema v1: see docs/schema.md for every table and column. */
static const char *const schema_v1[] = {
	"CREATE TABLE runs ("
	" id INTEGER PRIMARY KEY,"
	" target TEXT NOT NULL,"
	" policy TEXT NOT NULL,"
	" llm_model TEXT,"
	" device TEXT NOT NULL,"
	" gpu TEXT,"
	" arch TEXT NOT NULL,"
	" started TEXT NOT NULL,"
	" ended TEXT,"
	" status TEXT NOT NULL CHECK (status IN ('running','finished','interrupted','failed')),"
	" budgets TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(budgets)),"
	" spent TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(spent)),"
	" seed_candidate INTEGER REFERENCES candidates(id),"
	" best_candidate INTEGER REFERENCES candidates(id),"
	" config TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config)),"
	" pid INTEGER);"
	"CREATE INDEX runs_target ON runs(target, id);",

	"CREATE TABLE llm_calls ("
	" id INTEGER PRIMARY KEY,"
	" run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	" provider TEXT NOT NULL,"
	" model TEXT NOT NULL,"
	" request_id TEXT,"
	" status TEXT NOT NULL,"
	" attempts INTEGER NOT NULL DEFAULT 1,"
	" latency_s REAL,"
	" prompt_tokens INTEGER,"
	" cached_tokens INTEGER,"
	" completion_tokens INTEGER,"
	" reasoning_tokens INTEGER,"
	" cost_usd REAL,"
	" purpose TEXT NOT NULL,"
	" prompt TEXT NOT NULL,"
	" reply TEXT,"
	" error TEXT,"
	" created TEXT NOT NULL);"
	"CREATE INDEX llm_calls_run ON llm_calls(run_id, id);",

	"CREATE TABLE candidates ("
	" id INTEGER PRIMARY KEY,"
	" run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	" iteration INTEGER NOT NULL,"
	" node_id TEXT,"
	" parent_id INTEGER REFERENCES candidates(id),"
	" source TEXT NOT NULL,"
	" launch TEXT NOT NULL CHECK (json_valid(launch)),"
	" knobs TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(knobs)),"
	" source_hash TEXT NOT NULL,"
	" hash TEXT NOT NULL,"
	" created TEXT NOT NULL,"
	" llm_call_id INTEGER REFERENCES llm_calls(id),"
	" outcome TEXT NOT NULL CHECK (outcome IN ('compile_error','failed','passed','unverified')),"
	" UNIQUE (run_id, iteration));"
	"CREATE INDEX candidates_hash ON candidates(hash);"
	"CREATE INDEX candidates_source_hash ON candidates(source_hash);",

	"CREATE TABLE compile_results ("
	" candidate_id INTEGER PRIMARY KEY REFERENCES candidates(id) ON DELETE CASCADE,"
	" ok INTEGER NOT NULL CHECK (ok IN (0,1)),"
	" log TEXT NOT NULL DEFAULT '',"
	" arch TEXT NOT NULL,"
	" toolkit TEXT,"
	" cache_key TEXT,"
	" registers INTEGER,"
	" spill_store_bytes INTEGER,"
	" spill_load_bytes INTEGER,"
	" shared_bytes INTEGER,"
	" wall_s REAL,"
	" cache_hit INTEGER NOT NULL DEFAULT 0 CHECK (cache_hit IN (0,1)),"
	" resources TEXT CHECK (resources IS NULL OR json_valid(resources)));",

	"CREATE TABLE verifications ("
	" candidate_id INTEGER PRIMARY KEY REFERENCES candidates(id) ON DELETE CASCADE,"
	" passed INTEGER NOT NULL CHECK (passed IN (0,1)),"
	" failed_check TEXT,"
	" message TEXT,"
	" worst_error REAL,"
	" worst_index INTEGER,"
	" worst_buffer TEXT,"
	" worst_set INTEGER,"
	" seeds TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(seeds)),"
	" checks_run TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(checks_run)),"
	" device TEXT NOT NULL,"
	" wall_s REAL,"
	" details TEXT CHECK (details IS NULL OR json_valid(details)),"
	" CHECK (passed = 1 OR failed_check IS NOT NULL));",

	"CREATE TABLE timings ("
	" candidate_id INTEGER PRIMARY KEY REFERENCES candidates(id) ON DELETE CASCADE,"
	" device TEXT NOT NULL,"
	" kind TEXT NOT NULL CHECK (kind IN ('measured','modeled')),"
	" time_us REAL NOT NULL CHECK (time_us > 0),"
	" min_us REAL,"
	" spread REAL,"
	" reps INTEGER NOT NULL DEFAULT 1 CHECK (reps >= 1),"
	" roofline REAL,"
	" bandwidth_gbs REAL,"
	" speedup REAL,"
	" samples TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(samples)),"
	" counters TEXT CHECK (counters IS NULL OR json_valid(counters)),"
	" spec TEXT CHECK (spec IS NULL OR json_valid(spec)));",

	"CREATE TABLE wm_revisions ("
	" id INTEGER PRIMARY KEY,"
	" run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	" iteration INTEGER NOT NULL,"
	" tree TEXT NOT NULL CHECK (json_valid(tree)),"
	" edits TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(edits)),"
	" rejected TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(rejected)),"
	" llm_call_id INTEGER REFERENCES llm_calls(id),"
	" created TEXT NOT NULL);"
	"CREATE INDEX wm_revisions_run ON wm_revisions(run_id, id);",

	"CREATE TABLE events ("
	" id INTEGER PRIMARY KEY,"
	" run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,"
	" time TEXT NOT NULL,"
	" level TEXT NOT NULL CHECK (level IN ('debug','info','warn','error')),"
	" kind TEXT NOT NULL,"
	" message TEXT NOT NULL,"
	" data TEXT CHECK (data IS NULL OR json_valid(data)));"
	"CREATE INDEX events_run ON events(run_id, id);",

	"CREATE TABLE checkpoints ("
	" run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,"
	" iteration INTEGER NOT NULL,"
	" state TEXT NOT NULL CHECK (json_valid(state)),"
	" updated TEXT NOT NULL);"
};

typedef kiln_err (*migration_fn)(kiln_db *db);

static kiln_err migrate_to_v1(kiln_db *db)
{
	kiln_err e = KILN_OK;
	for (size_t i = 0; i < KILN_ARRAY_LEN(schema_v1) && !e; i++)
		e = kiln_db_exec(db, schema_v1[i], "creating schema v1");
	return e;
}

/* Schema v3: each candidate's one-line "what changed" (the model's CHANGED line or kiln's
 * diff summary); NULL for candidates recorded before it. */
static kiln_err migrate_to_v3(kiln_db *db)
{
	return kiln_db_exec(db, "ALTER TABLE candidates ADD COLUMN changed TEXT", "adding candidates.changed");
}

/* Schema v4: timings gain `sizes`, every bench size's time (the row's time_us is their
 * weighted geometric mean); rows recorded before stay NULL there (one size). */
static kiln_err migrate_size_times(kiln_db *db)
{
	return kiln_db_exec(db, "ALTER TABLE timings ADD COLUMN sizes TEXT CHECK (sizes IS NULL OR json_valid(sizes))",
			    "adding timings.sizes (schema v4)");
}

/* migrations[i] takes a file from user_version i to i + 1. */
static const migration_fn migrations[KILN_DB_SCHEMA_VERSION] = {migrate_to_v1, kiln_db_migrate_wm_deltas,
								migrate_to_v3, migrate_size_times};

/* KILN_ECORRUPT with the recovery hint every damaged-file message carries. */
static kiln_err corrupt(const char *path, const char *what, const char *msg)
{
	return kiln_error_set(KILN_ECORRUPT,
			      "%s: %s: %s: the file is damaged or not a kiln database; move it "
			      "aside (kiln starts a fresh one) or try `sqlite3 %s .recover`",
			      path, what, msg, path);
}

kiln_err kiln_db_err(kiln_db *db, int rc, const char *what)
{
	const char *path = db && db->path ? db->path : "history.db";
	const char *msg = db && db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc);
	switch (rc & 0xff) {
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		return corrupt(path, what, msg);
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return kiln_error_set(KILN_ELOCKED, "%s: %s: %s (another kiln holds it)", path, what, msg);
	case SQLITE_NOMEM:
		return kiln_error_set(KILN_ENOMEM, "%s: %s: out of memory", path, what);
	case SQLITE_IOERR:
	case SQLITE_FULL: {
		/* disk full, a file-size limit, a failing disk: nothing committed is lost */
		int sys = db && db->h ? sqlite3_system_errno(db->h) : 0;
		return kiln_error_set(KILN_EIO, "%s: %s: %s%s%s%s; free space (or fix the disk) and run "
				      "again: everything committed before this is kept", path, what, msg,
				      sys ? " (" : "", sys ? strerror(sys) : "", sys ? ")" : "");
	}
	case SQLITE_CANTOPEN:
	case SQLITE_READONLY:
		return kiln_error_set(KILN_EIO, "%s: %s: %s", path, what, msg);
	default:
		return kiln_error_set(KILN_EDB, "%s: %s: %s", path, what, msg);
	}
}

kiln_err kiln_db_prepare(kiln_db *db, sqlite3_stmt **st, const char *sql)
{
	int rc = sqlite3_prepare_v2(db->h, sql, -1, st, NULL);
	if (rc != SQLITE_OK) {
		*st = NULL;
		return kiln_db_err(db, rc, "preparing a statement");
	}
	return KILN_OK;
}

kiln_err kiln_db_exec(kiln_db *db, const char *sql, const char *what)
{
	int rc = sqlite3_exec(db->h, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? KILN_OK : kiln_db_err(db, rc, what);
}

/* Every text history.db stores passes here: a boundary where secrets are redacted. A
 * JSON text stays valid JSON (a secret that would only match across JSON syntax is not a
 * secret's text, and breaking the column's json_valid() would stop the run). */
int kiln_db_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (!s)
		return sqlite3_bind_null(st, i);
	char *r = kiln_redact_dup(s);
	if (r && kiln_json_check(s, strlen(s), "") == 0 && kiln_json_check(r, strlen(r), "")) {
		free(r);
		r = NULL;
	}
	kiln_error_clear();
	int rc = sqlite3_bind_text(st, i, r ? r : s, -1, SQLITE_TRANSIENT);
	free(r);
	return rc;
}

int kiln_db_bind_id(sqlite3_stmt *st, int i, int64_t id)
{
	return id > 0 ? sqlite3_bind_int64(st, i, id) : sqlite3_bind_null(st, i);
}

int kiln_db_bind_real(sqlite3_stmt *st, int i, double v)
{
	return isfinite(v) ? sqlite3_bind_double(st, i, v) : sqlite3_bind_null(st, i);
}

int kiln_db_bind_count(sqlite3_stmt *st, int i, int64_t v)
{
	return v >= 0 ? sqlite3_bind_int64(st, i, v) : sqlite3_bind_null(st, i);
}

char *kiln_db_col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	return s ? kiln_strdup((const char *)s) : NULL;
}

int64_t kiln_db_col_int(sqlite3_stmt *st, int i, int64_t if_null)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? if_null : sqlite3_column_int64(st, i);
}

double kiln_db_col_real(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

static kiln_err user_version(kiln_db *db, int *out)
{
	sqlite3_stmt *st = NULL;
	kiln_err e = kiln_db_prepare(db, &st, "PRAGMA user_version");
	if (e)
		return kiln_error_wrap(e, "reading the schema version");
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int(st, 0);
	else
		e = kiln_db_err(db, rc, "reading the schema version");
	sqlite3_finalize(st);
	return e;
}

static kiln_err check_not_newer(kiln_db *db, int v)
{
	if (v > KILN_DB_SCHEMA_VERSION)
		return kiln_error_set(KILN_EINVAL, "%s schema v%d is newer than this kiln (v%d): upgrade kiln",
				      db->path, v, KILN_DB_SCHEMA_VERSION);
	return KILN_OK;
}

/* The tables of schema v1 (a later schema extends this list). */
static const char *const kiln_tables[] = {"runs", "llm_calls", "candidates", "compile_results",
					  "verifications", "timings", "wm_revisions", "events",
					  "checkpoints"};

/* One integer from sql with one text parameter; -1 when there is no row. */
static kiln_err query_int(kiln_db *db, int64_t *out, const char *sql, const char *arg, const char *what)
{
	sqlite3_stmt *st = NULL;
	kiln_err e = kiln_db_prepare(db, &st, sql);
	if (e)
		return kiln_error_wrap(e, "%s", what);
	if (arg)
		kiln_db_bind_text(st, 1, arg);
	int rc = sqlite3_step(st);
	*out = -1;
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		e = kiln_db_err(db, rc, what);
	sqlite3_finalize(st);
	return e;
}

/* A SQLite file that is not kiln's is refused before anything is written to it: at v0 a
 * table holding rows is someone else's data (a crashed first open leaves only empty ones);
 * at v1+ every kiln table must be there (a newer schema needs only some of them). */
static kiln_err check_kiln_file(kiln_db *db, int v)
{
	int64_t n = 0;
	kiln_err e;
	if (v == 0) {
		sqlite3_stmt *st = NULL;
		if ((e = kiln_db_prepare(db, &st, "SELECT name FROM sqlite_schema WHERE type = 'table' AND "
					 "name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")))
			return e;
		int rc;
		while (!e && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *name = (const char *)sqlite3_column_text(st, 0);
			if (!name)
				name = "";
			char *sql = kiln_asprintf("SELECT 1 FROM \"%s\" LIMIT 1", name);
			if (!sql)
				e = KILN_ENOMEM;
			else if (!strchr(name, '"') && !(e = query_int(db, &n, sql, NULL, "reading a table")) && n == 1)
				e = kiln_error_set(KILN_ECORRUPT, "%s: a SQLite database but not a kiln history (its "
						   "table '%s' holds data); kiln leaves it alone: use another work "
						   "directory or move the file aside", db->path, name);
			free(sql);
		}
		if (!e && rc != SQLITE_DONE)
			e = kiln_db_err(db, rc, "listing tables");
		sqlite3_finalize(st);
		return e;
	}
	size_t missing = 0;
	const char *first = NULL;
	for (size_t i = 0; i < KILN_ARRAY_LEN(kiln_tables); i++) {
		if ((e = query_int(db, &n, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
				   kiln_tables[i], "listing tables")))
			return e;
		if (n != 1 && !missing++)
			first = kiln_tables[i];
	}
	if (missing == KILN_ARRAY_LEN(kiln_tables))
		return kiln_error_set(KILN_ECORRUPT, "%s: a SQLite database (user_version %d) but not a kiln "
				      "history: it has none of kiln's tables; use another work directory or "
				      "move the file aside", db->path, v);
	if (missing && v <= KILN_DB_SCHEMA_VERSION) { /* a newer schema may have moved tables */
		char msg[96];
		snprintf(msg, sizeof(msg), "table '%s' is missing", first ? first : "?");
		return corrupt(db->path, "checking the schema", msg);
	}
	return KILN_OK;
}

/* The first row of a checking PRAGMA ("ok" when all is well) into out, one line. */
static kiln_err pragma_text(kiln_db *db, const char *sql, const char *what, char *out, size_t n)
{
	sqlite3_stmt *st = NULL;
	kiln_err e = kiln_db_prepare(db, &st, sql);
	if (e)
		return e;
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		e = kiln_db_err(db, rc, what);
	} else {
		const char *r = (const char *)sqlite3_column_text(st, 0);
		snprintf(out, n, "%s", r ? r : "?");
		for (char *p = out; *p; p++)
			if (*p == '\n')
				*p = ' ';
	}
	sqlite3_finalize(st);
	return e;
}

/* PRAGMA quick_check: damaged pages and indexes in O(file size), read-only. */
static kiln_err quick_check(kiln_db *db)
{
	char r[256];
	kiln_err e = pragma_text(db, "PRAGMA quick_check(1)", "quick check", r, sizeof(r));
	if (!e && strcmp(r, "ok") != 0)
		e = corrupt(db->path, "quick check", r);
	return e;
}

static kiln_err migrate(kiln_db *db)
{
	int v = 0;
	kiln_err e = user_version(db, &v);
	if (e || (e = check_not_newer(db, v)))
		return e;
	while (v < KILN_DB_SCHEMA_VERSION) {
		/* IMMEDIATE: two processes opening a new file serialise here; re-read inside */
		if ((e = kiln_db_exec(db, "BEGIN IMMEDIATE", "starting a migration")))
			return e;
		if ((e = user_version(db, &v)) || (e = check_not_newer(db, v)))
			goto fail;
		if (v == KILN_DB_SCHEMA_VERSION) {
			kiln_db_exec(db, "COMMIT", "ending a migration");
			break;
		}
		if ((e = migrations[v](db)))
			goto fail;
		char sql[64];
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if ((e = kiln_db_exec(db, sql, "setting the schema version")) ||
		    (e = kiln_db_exec(db, "COMMIT", "committing a migration")))
			goto fail;
		v++;
	}
	return KILN_OK;
fail:
	sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
	return kiln_error_wrap(e, "migrating %s to schema v%d", db->path, v + 1);
}

kiln_err kiln_db_open(kiln_db **out, const char *path, int flags)
{
	*out = NULL;
	kiln_db *db = kiln_calloc(1, sizeof(*db));
	kiln_err e = KILN_OK;
	if (!db || !(db->path = kiln_strdup(path))) {
		free(db);
		return KILN_ENOMEM;
	}
	db->readonly = flags & KILN_DB_READONLY;
	if (db->readonly && !kiln_path_exists(path)) {
		e = kiln_error_set(KILN_ENOTFOUND, "%s: no history database here (run `kiln run` first)", path);
		goto done;
	}
	int oflags = db->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	int rc = sqlite3_open_v2(path, &db->h, oflags, NULL);
	if (rc != SQLITE_OK) {
		e = kiln_db_err(db, rc, "opening");
		goto done;
	}
	sqlite3_extended_result_codes(db->h, 1);
	sqlite3_busy_timeout(db->h, 5000);
	/* the first real read: a file that is not a database fails here */
	int v = 0;
	if ((e = user_version(db, &v)))
		goto done;
	if ((e = check_kiln_file(db, v)) || (e = check_not_newer(db, v)))
		goto done;
	if ((e = kiln_db_exec(db, "PRAGMA foreign_keys = ON", "enabling foreign keys")))
		goto done;
	if (db->readonly) {
		/* v1 reads as v2 does (every v1 revision holds its whole tree) */
		if (v < 1) {
			e = kiln_error_set(KILN_EINVAL, "%s: schema v%d is older than this kiln (v%d); open it "
					   "once for writing (any `kiln run`) to migrate it", path, v,
					   KILN_DB_SCHEMA_VERSION);
			goto done;
		}
		/* before v3: a connection-private view (the temp schema, never the file) adds the
		 * missing column, so every query reads the current shape */
		if (v < 3 && (e = kiln_db_exec(db, "CREATE TEMP VIEW candidates AS SELECT *, NULL AS changed FROM "
					      "main.candidates", "reading an older schema")))
			goto done;
		/* before v4: the same for timings.sizes (one size, NULL) */
		if (v < 4 && (e = kiln_db_exec(db, "CREATE TEMP VIEW timings AS SELECT *, NULL AS sizes FROM "
					      "main.timings", "reading an older schema")))
			goto done;
	} else {
		/* WAL: readers see the last committed state while a writer works */
		if ((e = kiln_db_exec(db, "PRAGMA journal_mode = WAL", "enabling WAL")) ||
		    (e = kiln_db_exec(db, "PRAGMA synchronous = NORMAL", "setting synchronous")) ||
		    (e = migrate(db)) || (e = quick_check(db)))
			goto done;
	}
done:
	if (e) {
		kiln_db_close(db);
		return e;
	}
	*out = db;
	return KILN_OK;
}

void kiln_db_close(kiln_db *db)
{
	if (!db)
		return;
	if (db->h)
		sqlite3_close_v2(db->h);
	free(db->path);
	free(db);
}

int kiln_db_schema_version(kiln_db *db)
{
	int v = -1;
	if (user_version(db, &v))
		return -1;
	return v;
}

bool kiln_db_has_size_times(kiln_db *db)
{
	sqlite3_stmt *st = NULL;
	bool has = false;
	if (sqlite3_prepare_v2(db->h, "SELECT count(*) FROM pragma_table_info('timings') WHERE name = 'sizes'", -1, &st,
			       NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		has = sqlite3_column_int(st, 0) == 1;
	sqlite3_finalize(st);
	return has;
}

struct sqlite3 *kiln_db_sqlite(kiln_db *db)
{
	return db->h;
}

kiln_err kiln_db_integrity_check(kiln_db *db)
{
	sqlite3_stmt *st = NULL;
	char r[512];
	kiln_err e = pragma_text(db, "PRAGMA integrity_check", "integrity check", r, sizeof(r));
	if (!e && strcmp(r, "ok") != 0)
		e = kiln_error_set(KILN_ECORRUPT, "%s: integrity check: %s", db->path, r);
	if (e)
		return e;
	if ((e = kiln_db_prepare(db, &st, "PRAGMA foreign_key_check")))
		return e;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		e = kiln_error_set(KILN_ECORRUPT, "%s: foreign key check: row %lld of %s points at a missing %s",
				   db->path, (long long)sqlite3_column_int64(st, 1),
				   (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 2));
	else if (rc != SQLITE_DONE)
		e = kiln_db_err(db, rc, "foreign key check");
	sqlite3_finalize(st);
	return e;
}

kiln_err kiln_db_tx_begin(kiln_db *db)
{
	kiln_err e = kiln_db_exec(db, db->depth == 0 ? "BEGIN IMMEDIATE" : "SAVEPOINT kiln_tx",
				  "starting a transaction");
	if (!e)
		db->depth++;
	return e;
}

kiln_err kiln_db_tx_commit(kiln_db *db)
{
	if (db->depth == 0)
		return kiln_error_set(KILN_EINVAL, "%s: commit without a transaction", db->path);
	kiln_err e = kiln_db_exec(db, db->depth == 1 ? "COMMIT" : "RELEASE kiln_tx",
				  "committing a transaction");
	if (!e)
		db->depth--;
	return e;
}

void kiln_db_tx_rollback(kiln_db *db)
{
	if (db->depth == 0)
		return;
	if (db->depth == 1)
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
	else
		sqlite3_exec(db->h, "ROLLBACK TO kiln_tx; RELEASE kiln_tx", NULL, NULL, NULL);
	db->depth--;
}
