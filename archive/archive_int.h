/* archive: private to the folder. The database handle, the one place SQLite result
 * codes become kiln_err (db_err), and small binding/column helpers shared by db.c
 * (open, migrations, transactions) and records.c (typed inserts and queries). */
#ifndef KILN_ARCHIVE_INT_H
#define KILN_ARCHIVE_INT_H

#include <math.h>
#include <sqlite3.h>

#include "archive/archive.h"

struct kiln_db {
	sqlite3 *h;
	char *path;
	bool readonly;
	int depth;      /* open transactions/savepoints from kiln_db_tx_begin */
};

/* Translates an SQLite failure: corruption -> KILN_ECORRUPT with a recovery hint, busy ->
 * KILN_ELOCKED, the rest KILN_EDB; the message names the file, what was being done and
 * sqlite3_errmsg. */
kiln_err kiln_db_err(kiln_db *db, int rc, const char *what);

/* Prepares sql or sets the error. */
kiln_err kiln_db_prepare(kiln_db *db, sqlite3_stmt **st, const char *sql);
/* Runs sql (no results) or sets the error. */
kiln_err kiln_db_exec(kiln_db *db, const char *sql, const char *what);

/* Binders that map "absent" to NULL: text NULL, ids <= 0, NaN doubles, negative counts. */
int kiln_db_bind_text(sqlite3_stmt *st, int i, const char *s);
int kiln_db_bind_id(sqlite3_stmt *st, int i, int64_t id);
int kiln_db_bind_real(sqlite3_stmt *st, int i, double v);
int kiln_db_bind_count(sqlite3_stmt *st, int i, int64_t v);
/* Column readers: NULL text -> NULL (or "" with _dup_nn), NULL number -> fallback. */
char *kiln_db_col_dup(sqlite3_stmt *st, int i);
int64_t kiln_db_col_int(sqlite3_stmt *st, int i, int64_t if_null);
double kiln_db_col_real(sqlite3_stmt *st, int i); /* NaN when NULL */

/* What history.db keeps of texts the model controls (a reply may be 8 MiB; its kernel is
 * stored whole in candidates.source, so the reply is not kept twice): head and tail with a
 * marker past these (kiln_text_cap). */
#define KILN_DB_CAP_LLM_TEXT (256u << 10) /* llm_calls.prompt, reply, error (bytes) */
#define KILN_DB_CAP_LOG (64u << 10)       /* compile_results.log */
#define KILN_DB_CAP_MESSAGE (4u << 10)    /* verifications.message, events.message */

/* A record's member as fields.c describes it (kiln_field): numbers (bool 0/1, NaN for a
 * text), an integer, a text (borrowed from the record). */
double kiln_field_num(const void *rec, const kiln_field *f);
int64_t kiln_field_int(const void *rec, const kiln_field *f);
const char *kiln_field_text(const void *rec, const kiln_field *f);

/* Schema v2 (wm_store.c): wm_revisions gains `delta`; stored trees become deltas. */
kiln_err kiln_db_migrate_wm_deltas(kiln_db *db);

/* ---- promote (promote_run.c, promote_header.c) ---- */
#include <cjson/cJSON.h>

#include "compile/compile.h"
#include "profile/profile.h"
#include "targets/targets.h"

#define KILN_PROMOTE_MAX_DEFINES 48

/* The state of one kiln_promote call; res receives what the caller sees. */
typedef struct kiln_promotion {
	const char *workdir, *out_dir, *name;
	kiln_db *db;
	kiln_target *t;
	kiln_plan *plan;
	cJSON *cand;            /* candidate + run + verification + timing columns */
	char *cu;               /* NAME.cu: the exact bytes compiled, re-verified and written */
	const char *archs[KILN_PROMOTE_MAX_ARCHS]; /* res->archs */
	size_t narchs;
	char *defines[KILN_PROMOTE_MAX_DEFINES];
	size_t ndefines;
	kiln_verdict *verdict;  /* res->verdict: the first failing arch's, else the last arch's */
	const char *verdict_arch;
	kiln_verdict *bench;    /* res->bench: at the bench size (bench->sets == 0: not run) */
	size_t threads;
	kiln_fatbin *fatbin;
	bool python;            /* also NAME.py */
	cJSON *tags;
	kiln_promote_result *res;
} kiln_promotion;

/* The knob value of name: the candidate's knobs, else the target's first listed value. */
bool kiln_promotion_knob(const kiln_promotion *pr, const char *name, long long *out);
/* NAME.h / NAME.cu text (caller frees *out); the launch spec NAME.py embeds (NULL: no memory). */
kiln_err kiln_promotion_header(char **out, const kiln_promotion *pr);
kiln_err kiln_promotion_cu(char **out, const kiln_promotion *pr);
char *kiln_promotion_python_spec(const kiln_promotion *pr);

/* A candidate row's number (NaN when absent or not a number) / string (if_null otherwise). */
static inline double promote_jnum(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static inline const char *promote_jstr(const cJSON *o, const char *key, const char *if_null)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : if_null;
}

#endif
