/* archive: reading history.db for people. kiln_db_query_json turns any read-only SELECT
 * into JSON rows (the review commands and the report are built on it, so their --json
 * keys are the schema's column names); kiln_diff_text is libgit2's unified diff of two
 * texts; kiln_report_html writes one self-contained HTML page (inline CSS and SVG, no
 * scripts, no network) about one run. Everything here only reads the database. */
#include "archive/archive_int.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <git2.h>

/* ---------------- rows as JSON ---------------- */

static const char *const json_columns[] = {"launch", "knobs", "budgets", "spent", "config", "resources",
	"seeds", "checks_run", "details", "samples", "counters", "spec", "tree", "edits", "rejected",
	"state", "data", "sizes", NULL};

static bool is_json_column(const char *name)
{
	for (const char *const *p = json_columns; *p; p++)
		if (strcmp(*p, name) == 0)
			return true;
	return false;
}

static cJSON *column_json(sqlite3_stmt *st, int i)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_NULL:
		return cJSON_CreateNull();
	case SQLITE_INTEGER:
		return cJSON_CreateNumber((double)sqlite3_column_int64(st, i));
	case SQLITE_FLOAT:
		return cJSON_CreateNumber(sqlite3_column_double(st, i));
	default: {
		const char *text = (const char *)sqlite3_column_text(st, i);
		cJSON *j = is_json_column(sqlite3_column_name(st, i)) && text ? cJSON_Parse(text) : NULL;
		return j ? j : cJSON_CreateString(text ? text : "");
	}
	}
}

static void bind_param(sqlite3_stmt *st, int i, const char *p)
{
	size_t n = p ? strlen(p) : 0;
	bool digits = n > 0 && n < 19;
	for (size_t k = 0; digits && k < n; k++)
		digits = isdigit((unsigned char)p[k]);
	if (digits)
		sqlite3_bind_int64(st, i, strtoll(p, NULL, 10));
	else
		kiln_db_bind_text(st, i, p);
}

kiln_err kiln_db_query_json(kiln_db *db, cJSON **out, const char *sql, const char *const *params,
			    size_t nparams, const char *what)
{
	sqlite3_stmt *st = NULL;
	cJSON *rows = cJSON_CreateArray();
	kiln_err e;
	int rc;
	*out = NULL;
	if (!rows)
		return KILN_ENOMEM;
	if ((e = kiln_db_prepare(db, &st, sql)))
		goto done;
	for (size_t i = 0; i < nparams; i++)
		bind_param(st, (int)i + 1, params[i]);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cJSON *row = cJSON_CreateObject();
		if (!row || !cJSON_AddItemToArray(rows, row)) {
			cJSON_Delete(row);
			e = KILN_ENOMEM;
			goto done;
		}
		for (int i = 0; i < sqlite3_column_count(st); i++) {
			cJSON *v = column_json(st, i);
			if (!v || !cJSON_AddItemToObject(row, sqlite3_column_name(st, i), v)) {
				cJSON_Delete(v);
				e = KILN_ENOMEM;
				goto done;
			}
		}
	}
	if (rc != SQLITE_DONE)
		e = kiln_db_err(db, rc, what);
done:
	sqlite3_finalize(st);
	if (e) {
		cJSON_Delete(rows);
		return e;
	}
	*out = rows;
	return KILN_OK;
}

/* ---------------- unified diff ---------------- */

kiln_err kiln_diff_text(char **out, const char *a, const char *a_name, const char *b, const char *b_name)
{
	git_patch *patch = NULL;
	git_buf buf = {0};
	git_diff_options opt;
	kiln_err e = KILN_OK;
	*out = NULL;
	git_libgit2_init();
	git_diff_options_init(&opt, GIT_DIFF_OPTIONS_VERSION);
	opt.context_lines = 3;
	int rc = git_patch_from_buffers(&patch, a, strlen(a), a_name, b, strlen(b), b_name, &opt);
	if (rc >= 0 && patch)
		rc = git_patch_to_buf(&buf, patch);
	if (rc < 0) {
		const git_error *ge = git_error_last();
		e = kiln_error_set(KILN_EGIT, "diffing %s and %s: %s", a_name, b_name,
				   ge && ge->message ? ge->message : "libgit2 error");
		goto done;
	}
	/* libgit2 writes "diff --git" and "index" lines first; the ---/+++ headers are what people read */
	const char *text = buf.ptr ? buf.ptr : "";
	while (*text && strncmp(text, "--- ", 4) != 0)
		text = strchr(text, '\n') ? strchr(text, '\n') + 1 : text + strlen(text);
	if (!(*out = kiln_strdup(text)))
		e = KILN_ENOMEM;
done:
	git_buf_dispose(&buf);
	git_patch_free(patch);
	git_libgit2_shutdown();
	return e;
}

/* ---------------- the HTML report ---------------- */

static double jnum(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int64_t jid(const cJSON *o, const char *key)
{
	double v = jnum(o, key);
	return isfinite(v) ? (int64_t)v : 0;
}

/* Text escaped for HTML element content and attribute values; control characters first
 * become visible escapes (kiln_text_escape), so none reaches a terminal that shows the file. */
static kiln_err esc(kiln_buf *b, const char *s)
{
	char *t = kiln_text_escape(s, KILN_TEXT_MULTILINE);
	kiln_err e = t ? KILN_OK : KILN_ENOMEM;
	for (const char *p = t ? t : ""; *p && !e; p++) {
		switch (*p) {
		case '<': e = kiln_buf_puts(b, "&lt;"); break;
		case '>': e = kiln_buf_puts(b, "&gt;"); break;
		case '&': e = kiln_buf_puts(b, "&amp;"); break;
		case '"': e = kiln_buf_puts(b, "&quot;"); break;
		default: e = kiln_buf_append(b, p, 1);
		}
	}
	free(t);
	return e;
}

/* The reason a candidate did not pass, usable as a CSS class: "compile_error", the failed
 * check, or "unverified"; NULL for a pass. */
static const char *fail_reason(const cJSON *c, char *out, size_t n)
{
	const char *outcome = jstr(c, "outcome"), *check = jstr(c, "failed_check");
	if (outcome && strcmp(outcome, "passed") == 0)
		return NULL;
	const char *r = outcome && strcmp(outcome, "failed") == 0 && check ? check : outcome ? outcome : "unknown";
	size_t k = 0;
	for (; r[k] && k + 1 < n; k++)
		out[k] = isalnum((unsigned char)r[k]) ? (char)tolower((unsigned char)r[k]) : '_';
	out[k] = '\0';
	return out;
}

typedef struct report {
	kiln_buf b;
	kiln_db *db;
	const char *archive_dir;
	cJSON *run;         /* the runs row (+ computed columns) */
	cJSON *cands;       /* candidates with verdict, timing and the cost so far */
	cJSON *tree;        /* the newest world-model tree, or NULL */
	cJSON *totals;      /* LLM call sums */
	int64_t best_id, seed_id;
	const cJSON *best, *seed;
	int64_t *bests;     /* candidates committed as new bests (the archive), when known */
	size_t nbests;
	bool have_bests;
	kiln_err e;         /* the first error; every writer stops after it */
} report;

static void put(report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(report *r, const char *fmt, ...)
{
	if (r->e)
		return;
	va_list ap;
	va_start(ap, fmt);
	r->e = kiln_buf_vprintf(&r->b, fmt, ap);
	va_end(ap);
}

static void put_esc(report *r, const char *s)
{
	if (!r->e)
		r->e = esc(&r->b, s);
}

/* ---- charts ---- */

typedef struct point {
	double x, y;
	int64_t id;        /* candidate */
	char cls[40];      /* "passed", "fail-<reason>" */
	bool new_best;
	char tip[200];
} point;

typedef struct chart {
	const char *id, *title, *xlabel, *ylabel;
	bool logy;
	double ymin, ymax;    /* fixed range when ymax > ymin */
	point *pts;           /* passed ones at y; failed ones (NaN y) in the strip above */
	size_t npts;
	double *lx, *ly;      /* the best-so-far step line */
	size_t nl;
} chart;

enum { CW = 600, CH = 280, ML = 64, MR = 24, MT = 52, MB = 44 };

typedef struct axis {
	double lo, hi;
	bool log;
	int px0, px1;  /* pixel range */
} axis;

static double ax_map(const axis *a, double v)
{
	double t = a->log ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo)) : (v - a->lo) / (a->hi - a->lo);
	return a->px0 + t * (a->px1 - a->px0);
}

static void ax_fit(axis *a, double lo, double hi, bool logscale)
{
	a->log = logscale && lo > 0;
	if (!isfinite(lo) || !isfinite(hi)) {
		lo = 0;
		hi = 1;
	}
	if (hi <= lo) {
		double d = lo != 0 ? fabs(lo) * 0.1 : 1;
		lo -= d;
		hi += d;
		if (a->log && lo <= 0)
			lo = hi / 4;
	}
	if (a->log) {
		double f = pow(hi / lo, 0.05);
		lo /= f;
		hi *= f;
	} else {
		double pad = (hi - lo) * 0.05;
		lo = lo >= 0 && lo - pad < 0 ? 0 : lo - pad;
		hi += pad;
	}
	a->lo = lo;
	a->hi = hi;
}

/* Linear axes get "nice" ticks (1, 2 or 5 times a power of ten); log axes five even ones. */
static void axis_ticks(report *r, const axis *a, bool vertical)
{
	double raw = (a->hi - a->lo) / 4, mag = pow(10, floor(log10(raw))), f = raw / mag;
	double step = (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag, first = ceil(a->lo / step) * step;
	for (int i = 0; i <= 10; i++) {
		double v = a->log ? a->lo * pow(a->hi / a->lo, i / 4.0) : first + i * step;
		if ((a->log && i > 4) || (!a->log && v > a->hi + step * 1e-9))
			break;
		double p = ax_map(a, v);
		if (vertical)
			put(r, "<line class=\"grid\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>"
			       "<text class=\"tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.4g</text>\n",
			    ML, CW - MR, p, p, ML - 6, p + 4, v);
		else
			put(r, "<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.4g</text>\n", p,
			    CH - MB + 16, v);
	}
}

static void chart_render(report *r, const chart *c)
{
	double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
	for (size_t i = 0; i < c->npts; i++) {
		xlo = fmin(xlo, c->pts[i].x);
		xhi = fmax(xhi, c->pts[i].x);
		if (isfinite(c->pts[i].y) && (!c->logy || c->pts[i].y > 0)) {
			ylo = fmin(ylo, c->pts[i].y);
			yhi = fmax(yhi, c->pts[i].y);
		}
	}
	for (size_t i = 0; i < c->nl; i++) {
		xlo = fmin(xlo, c->lx[i]);
		xhi = fmax(xhi, c->lx[i]);
		ylo = fmin(ylo, c->ly[i]);
		yhi = fmax(yhi, c->ly[i]);
	}
	axis ax = {0}, ay = {0};
	ax.px0 = ML;
	ax.px1 = CW - MR;
	ay.px0 = CH - MB;
	ay.px1 = MT;
	ax_fit(&ax, fmin(xlo, 0), xhi, false); /* iterations, minutes and dollars start at 0 */
	if (c->ymax > c->ymin) {
		ay.lo = c->ymin;
		ay.hi = c->ymax;
	} else {
		ax_fit(&ay, ylo, yhi, c->logy);
	}
	put(r, "<figure class=\"chart\"><svg id=\"%s\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" "
	       "viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"", c->id, CW, CH, CW, CH);
	put_esc(r, c->title);
	put(r, "\">\n<text class=\"ctitle\" x=\"%d\" y=\"16\">", ML);
	put_esc(r, c->title);
	put(r, "</text>\n");
	if (c->npts > 0)
		put(r, "<text class=\"strip\" x=\"%d\" y=\"%d\" text-anchor=\"end\">failed</text>\n", ML - 6, MT - 14);
	axis_ticks(r, &ay, true);
	axis_ticks(r, &ax, false);
	put(r, "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>"
	       "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n",
	    ML, CH - MB, CW - MR, CH - MB, ML, CH - MB, ML, MT);
	put(r, "<text class=\"alabel\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">", (ML + CW - MR) / 2, CH - 8);
	put_esc(r, c->xlabel);
	put(r, "</text><text class=\"alabel\" transform=\"translate(14 %d) rotate(-90)\" text-anchor=\"middle\">",
	    (MT + CH - MB) / 2);
	put_esc(r, c->ylabel);
	put(r, "</text>\n");
	if (c->nl > 0) {
		put(r, "<path class=\"best\" d=\"M%.1f %.1f", ax_map(&ax, c->lx[0]), ax_map(&ay, c->ly[0]));
		for (size_t i = 1; i < c->nl; i++)
			put(r, " H%.1f V%.1f", ax_map(&ax, c->lx[i]), ax_map(&ay, c->ly[i]));
		put(r, " H%d\"/>\n", CW - MR);
	}
	for (size_t i = 0; i < c->npts; i++) {
		const point *p = &c->pts[i];
		bool failed = !isfinite(p->y) || (c->logy && p->y <= 0);
		double y = failed ? MT - 18 : ax_map(&ay, p->y);
		put(r, "<circle class=\"pt %s%s%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"%s\" data-candidate=\"%lld\"><title>",
		    failed ? "failed " : "", p->cls, p->new_best ? " newbest" : "", ax_map(&ax, p->x), y,
		    p->new_best ? "5" : "3.5", (long long)p->id);
		put_esc(r, p->tip);
		put(r, "</title></circle>\n");
	}
	put(r, "</svg></figure>\n");
}

/* ---- data ---- */

/* The candidates of a run; SIZES: timings.sizes (schema v4) or NULL for an older file */
#define CANDS_SQL(SIZES) \
	"SELECT c.id, c.iteration, c.node_id, c.parent_id, c.created, c.outcome, c.hash, c.source, c.changed," \
	" c.launch, c.knobs, c.llm_call_id, v.failed_check, v.message, t.kind, t.time_us, t.speedup," \
	" t.roofline, t.counters, " SIZES " AS sizes, cr.registers, cr.wall_s AS compile_s, v.wall_s AS verify_s," \
	" (julianday(c.created) - julianday(r.started)) * 1440.0 AS minutes," \
	" (SELECT coalesce(sum(l.cost_usd), 0) FROM llm_calls l WHERE l.run_id = c.run_id" \
	"   AND l.id <= coalesce((SELECT max(c2.llm_call_id) FROM candidates c2 WHERE c2.run_id = c.run_id" \
	"   AND c2.iteration <= c.iteration), 0)) AS cost_usd" \
	" FROM candidates c JOIN runs r ON r.id = c.run_id" \
	" LEFT JOIN compile_results cr ON cr.candidate_id = c.id" \
	" LEFT JOIN verifications v ON v.candidate_id = c.id" \
	" LEFT JOIN timings t ON t.candidate_id = c.id" \
	" WHERE c.run_id = ?1 ORDER BY c.iteration, c.id"

static kiln_err load(report *r, int64_t run_id)
{
	char id[24];
	snprintf(id, sizeof(id), "%lld", (long long)run_id);
	const char *p[1] = {id};
	cJSON *rows = NULL;
	kiln_err e = kiln_db_query_json(r->db, &rows,
		"SELECT r.*, (julianday(coalesce(r.ended, strftime('%Y-%m-%dT%H:%M:%SZ','now'))) -"
		" julianday(r.started)) * 86400.0 AS duration_s FROM runs r WHERE r.id = ?1", p, 1, "reading the run");
	if (e)
		return e;
	r->run = cJSON_DetachItemFromArray(rows, 0);
	cJSON_Delete(rows);
	if (!r->run)
		return kiln_error_set(KILN_ENOTFOUND, "run %s not found", id);
	r->best_id = jid(r->run, "best_candidate");
	r->seed_id = jid(r->run, "seed_candidate");
	if ((e = kiln_db_query_json(r->db, &r->cands, kiln_db_has_size_times(r->db) ? CANDS_SQL("t.sizes") : CANDS_SQL("NULL"),
				    p, 1, "reading the candidates")))
		return e;
	if ((e = kiln_db_query_json(r->db, &rows,
		"SELECT count(*) AS calls, sum(status <> 'ok') AS failed_calls, sum(prompt_tokens) AS prompt_tokens,"
		" sum(cached_tokens) AS cached_tokens, sum(completion_tokens) AS completion_tokens,"
		" sum(reasoning_tokens) AS reasoning_tokens, sum(cost_usd) AS cost_usd,"
		" sum(cost_usd IS NULL) AS unpriced, sum(latency_s) AS llm_s,"
		" (SELECT sum(cr.wall_s) FROM compile_results cr JOIN candidates c ON c.id = cr.candidate_id"
		"  WHERE c.run_id = ?1) AS compile_s,"
		" (SELECT sum(v.wall_s) FROM verifications v JOIN candidates c ON c.id = v.candidate_id"
		"  WHERE c.run_id = ?1) AS verify_s"
		" FROM llm_calls WHERE run_id = ?1", p, 1, "summing the LLM calls")))
		return e;
	r->totals = cJSON_DetachItemFromArray(rows, 0);
	cJSON_Delete(rows);
	if ((e = kiln_db_query_json(r->db, &rows, "SELECT tree FROM wm_revisions WHERE run_id = ?1"
						  " ORDER BY id DESC LIMIT 1", p, 1, "reading the world model")))
		return e;
	cJSON *row = cJSON_GetArrayItem(rows, 0);
	r->tree = row ? cJSON_DetachItemFromObject(row, "tree") : NULL;
	cJSON_Delete(rows);
	if (r->archive_dir && jstr(r->run, "target") && jstr(r->run, "arch"))
		r->have_bests = kiln_git_best_candidates(&r->bests, &r->nbests, r->archive_dir, jstr(r->run, "target"),
							 jstr(r->run, "arch")) == KILN_OK;
	const cJSON *c;
	cJSON_ArrayForEach(c, r->cands) {
		if (jid(c, "id") == r->best_id)
			r->best = c;
		if (jid(c, "id") == r->seed_id)
			r->seed = c;
	}
	return KILN_OK;
}

/* ---- sections ---- */

static void head(report *r)
{
	const cJSON *run = r->run;
	put(r, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>kiln report: ");
	put_esc(r, jstr(run, "target"));
	put(r, " run %lld</title>\n<style>\n"
	       "body{font:14px/1.4 system-ui,sans-serif;margin:24px auto;max-width:1400px;color:#222;padding:0 16px}\n"
	       "h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}\n"
	       "table{border-collapse:collapse}td,th{padding:3px 9px;border-bottom:1px solid #eee;text-align:right}\n"
	       "td.l,th.l{text-align:left}pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px;max-height:480px}\n"
	       ".charts{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0}\n"
	       "svg text{font:11px system-ui,sans-serif;fill:#333}.ctitle{font-size:13px;font-weight:600}\n"
	       ".axis{stroke:#444}.grid{stroke:#eee}.best{fill:none;stroke:#1a5fb4;stroke-width:2}\n"
	       ".pt{stroke:#fff;stroke-width:.5}.passed{fill:#2e9e4f;background:#2e9e4f}.newbest{stroke:#000;stroke-width:1.5}\n"
	       ".failed{fill:#d33;background:#d33}.fail-compile_error{fill:#888;background:#888}\n"
	       ".fail-race{fill:#a33fbf;background:#a33fbf}.fail-oob,.fail-bounds{fill:#f08a00;background:#f08a00}\n"
	       ".fail-unwritten,.fail-written{fill:#c9a400;background:#c9a400}\n"
	       ".fail-timeout,.fail-budget{fill:#8b5a2b;background:#8b5a2b}.fail-unverified{fill:#bbb;background:#bbb}\n"
	       ".legend i.newbest{border:2px solid #000;width:8px;height:8px}\n"
	       ".legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:10px;height:10px;"
	       "border-radius:5px;margin-right:4px;vertical-align:middle}\n"
	       ".wm rect{fill:#fff;stroke:#999;rx:4}.wm .on-path rect{fill:#e6f0ff;stroke:#1a5fb4;stroke-width:2}\n"
	       ".wm .st-pruned text{fill:#aaa}.wm .st-too_hard rect{stroke-dasharray:3 2}.wm path{fill:none;stroke:#bbb}\n"
	       ".wm path.on-path{stroke:#1a5fb4;stroke-width:2}\n"
	       ".diff .add{color:#116329;background:#e6ffec}.diff .del{color:#82071e;background:#ffebe9}.diff .hunk{color:#0550ae}\n"
	       "</style></head><body>\n<h1>kiln: ", (long long)jid(run, "id"));
	put_esc(r, jstr(run, "target"));
	put(r, ", run %lld</h1>\n<p id=\"summary\">", (long long)jid(run, "id"));
	put_esc(r, jstr(run, "policy"));
	if (jstr(run, "llm_model")) {
		put(r, " (");
		put_esc(r, jstr(run, "llm_model"));
		put(r, ")");
	}
	put(r, " on ");
	put_esc(r, jstr(run, "device"));
	if (jstr(run, "gpu")) {
		put(r, " / ");
		put_esc(r, jstr(run, "gpu"));
	}
	put(r, ", %s, started ", jstr(run, "arch") ? jstr(run, "arch") : "?");
	put_esc(r, jstr(run, "started"));
	put(r, ", <b>");
	put_esc(r, jstr(run, "status"));
	put(r, "</b> after %.1f h, %d candidates.", jnum(run, "duration_s") / 3600.0, cJSON_GetArraySize(r->cands));
	if (r->best && isfinite(jnum(r->best, "speedup")))
		put(r, " Best: candidate %lld, <b>%.2fx</b> over the seed (%.4g us, %s).", (long long)r->best_id,
		    jnum(r->best, "speedup"), jnum(r->best, "time_us"), jstr(r->best, "kind") ? jstr(r->best, "kind") : "");
	put(r, "</p>\n");
}

/* Fills the points of every candidate and the best-so-far step lines of the charts. */
typedef struct series {
	point *pts;
	double *iter, *minutes, *cost, *best_us, *best_x, *best_roof;
	size_t n, nbest;
} series;

/* Whether candidate c is a new best after *best (the best time so far), which it updates:
 * the search's own verdict (an archive commit, past its noise margin) when the archive is
 * known, else any strict improvement. */
static bool next_best(const report *r, const cJSON *c, double *best)
{
	double t = jnum(c, "time_us");
	const char *o = jstr(c, "outcome");
	bool better = o && strcmp(o, "passed") == 0 && isfinite(t) && t < *best;
	if (r->have_bests) {
		better = false;
		for (size_t i = 0; i < r->nbests && o && strcmp(o, "passed") == 0 && isfinite(t); i++)
			better = better || r->bests[i] == jid(c, "id");
	}
	if (better)
		*best = t;
	return better;
}

static kiln_err series_build(series *s, const report *r)
{
	const cJSON *cands = r->cands;
	size_t n = (size_t)cJSON_GetArraySize(cands);
	memset(s, 0, sizeof(*s));
	s->pts = kiln_calloc(n + 1, sizeof(point));
	double **arrs[] = {&s->iter, &s->minutes, &s->cost, &s->best_us, &s->best_x, &s->best_roof};
	for (size_t i = 0; i < KILN_ARRAY_LEN(arrs); i++)
		*arrs[i] = kiln_calloc(n + 1, sizeof(double));
	if (!s->pts || !s->iter || !s->minutes || !s->cost || !s->best_us || !s->best_x || !s->best_roof)
		return KILN_ENOMEM;
	double best = INFINITY;
	const cJSON *c;
	cJSON_ArrayForEach(c, cands) {
		point *p = &s->pts[s->n++];
		double t = jnum(c, "time_us");
		char why_buf[32];
		const char *why = fail_reason(c, why_buf, sizeof(why_buf));
		p->x = jnum(c, "iteration");
		p->id = jid(c, "id");
		p->y = why ? NAN : t;
		snprintf(p->cls, sizeof(p->cls), "%s%s", why ? "fail-" : "passed", why ? why : "");
		if (why)
			snprintf(p->tip, sizeof(p->tip), "candidate %lld (iteration %lld, node %s): %s", (long long)p->id,
				 (long long)p->x, jstr(c, "node_id") ? jstr(c, "node_id") : "-", why);
		else
			snprintf(p->tip, sizeof(p->tip), "candidate %lld (iteration %lld, node %s): passed, %.4g us, %.3gx",
				 (long long)p->id, (long long)p->x, jstr(c, "node_id") ? jstr(c, "node_id") : "-", t,
				 jnum(c, "speedup"));
		if (why || !next_best(r, c, &best))
			continue;
		p->new_best = true;
		s->iter[s->nbest] = p->x;
		s->minutes[s->nbest] = fmax(0, jnum(c, "minutes"));
		s->cost[s->nbest] = fmax(0, jnum(c, "cost_usd"));
		s->best_us[s->nbest] = t;
		s->best_x[s->nbest] = jnum(c, "speedup");
		s->best_roof[s->nbest] = jnum(c, "roofline");
		s->nbest++;
	}
	return KILN_OK;
}

static void series_free(series *s)
{
	free(s->pts);
	free(s->iter);
	free(s->minutes);
	free(s->cost);
	free(s->best_us);
	free(s->best_x);
	free(s->best_roof);
}

/* The legend: one entry per outcome with its count. */
static void legend(report *r, const series *s)
{
	const char *seen[64];
	size_t counts[64], nseen = 0;
	for (size_t i = 0; i < s->n; i++) {
		size_t k = 0;
		while (k < nseen && strcmp(seen[k], s->pts[i].cls) != 0)
			k++;
		if (k == nseen && nseen < 64) {
			seen[nseen] = s->pts[i].cls;
			counts[nseen++] = 0;
		}
		if (k < nseen)
			counts[k]++;
	}
	put(r, "<p class=\"legend\" id=\"legend\">");
	for (size_t k = 0; k < nseen; k++) {
		bool failed = strcmp(seen[k], "passed") != 0;
		put(r, "<span data-outcome=\"%s\"><i class=\"%s%s\"></i>%s: %zu</span>", seen[k], failed ? "failed " : "",
		    seen[k], failed ? seen[k] + 5 : "passed", counts[k]);
	}
	put(r, "<span><i class=\"passed newbest\"></i>ringed: new best</span></p>\n");
}

static void charts(report *r)
{
	series s;
	if ((r->e = series_build(&s, r))) {
		series_free(&s);
		return;
	}
	/* speedup points (passed only carry one) */
	point *sp = kiln_calloc(s.n + 1, sizeof(point)), *rp = kiln_calloc(s.n + 1, sizeof(point));
	if (!sp || !rp) {
		r->e = KILN_ENOMEM;
		goto done;
	}
	size_t i = 0;
	const cJSON *c;
	cJSON_ArrayForEach(c, r->cands) {
		sp[i] = rp[i] = s.pts[i];
		sp[i].y = isfinite(s.pts[i].y) ? jnum(c, "speedup") : NAN;
		rp[i].y = isfinite(s.pts[i].y) ? jnum(c, "roofline") : NAN;
		i++;
	}
	put(r, "<h2 id=\"progress\">Progress</h2>\n");
	legend(r, &s);
	put(r, "<div class=\"charts\">\n");
	/* an unpriced model's spend is unknown, not $0: no dollar axis to draw it on */
	bool cost_unknown = jnum(r->totals, "calls") > 0 && jnum(r->totals, "unpriced") >= jnum(r->totals, "calls");
	chart ch[] = {
		{"chart-time", "Kernel time by iteration (every candidate; line: best so far)", "iteration",
		 "time (us, log)", true, 0, 0, s.pts, s.n, s.iter, s.best_us, s.nbest},
		{"chart-speedup", "Speedup over the seed by iteration", "iteration", "speedup (x)", false, 0, 0, sp, s.n,
		 s.iter, s.best_x, s.nbest},
		{"chart-wallclock", "Best speedup over wall-clock time", "minutes since the start", "best speedup (x)",
		 false, 0, 0, NULL, 0, s.minutes, s.best_x, s.nbest},
		{"chart-cost", jnum(r->totals, "calls") > 0 ? "Best speedup over LLM cost"
							      : "Best speedup over LLM cost (no LLM calls in this run)",
		 "dollars spent", "best speedup (x)", false, 0, 0, NULL, 0, s.cost, s.best_x, s.nbest},
		{"chart-roofline", "Roofline fraction (achieved / peak bandwidth)", "iteration", "fraction of peak",
		 false, 0, 1, rp, s.n, s.iter, s.best_roof, s.nbest},
	};
	for (size_t k = 0; k < KILN_ARRAY_LEN(ch); k++) {
		if (cost_unknown && !strcmp(ch[k].id, "chart-cost"))
			put(r, "<figure class=\"chart\" id=\"chart-cost\"><p class=\"ctitle\">Best speedup over LLM cost: "
			       "cost unknown (the model has no price in kiln's table; tokens are in the budget below)</p></figure>\n");
		else
			chart_render(r, &ch[k]);
	}
	put(r, "</div>\n");
done:
	free(sp);
	free(rp);
	series_free(&s);
}

/* ---- the world-model tree ---- */

typedef struct wm_row {
	const cJSON *node;
	int64_t id, parent;
	int depth;
	bool on_path;
} wm_row;

/* Depth-first order of the tree's nodes (children in id order, as stored). */
static void wm_order(wm_row *rows, size_t *n, size_t cap, const cJSON *nodes, int64_t id, int depth)
{
	const cJSON *nd;
	cJSON_ArrayForEach(nd, nodes) {
		if (jid(nd, "id") != id || *n >= cap)
			continue;
		rows[*n] = (wm_row){nd, id, jid(nd, "parent"), depth, false};
		(*n)++;
	}
	const cJSON *ch;
	cJSON_ArrayForEach(ch, nodes)
		if (jid(ch, "parent") == id && jid(ch, "id") != id && depth < 64)
			wm_order(rows, n, cap, nodes, jid(ch, "id"), depth + 1);
}

/* Marks the winner's node and its ancestors. */
static void wm_mark_path(wm_row *rows, size_t n, const char *node_ref, int64_t best_id)
{
	int64_t at = -1;
	for (size_t i = 0; i < n && at < 0; i++) {
		char buf[32];
		snprintf(buf, sizeof(buf), "%lld", (long long)rows[i].id);
		if (node_ref && (strcmp(node_ref, buf) == 0 || (node_ref[0] == '#' && strcmp(node_ref + 1, buf) == 0)))
			at = rows[i].id;
	}
	for (size_t i = 0; i < n && at < 0; i++)
		if (rows[i].id != 0 && best_id > 0 && jid(rows[i].node, "best_candidate") == best_id)
			at = rows[i].id;
	if (at < 0)
		at = 0;
	for (int guard = 0; guard < 128 && at >= 0; guard++) {
		size_t i = 0;
		while (i < n && rows[i].id != at)
			i++;
		if (i == n)
			break;
		rows[i].on_path = true;
		at = rows[i].parent;
	}
}

static void tree_section(report *r)
{
	put(r, "<h2 id=\"world-model\">World model</h2>\n");
	const cJSON *nodes = r->tree ? cJSON_GetObjectItemCaseSensitive(r->tree, "nodes") : NULL;
	size_t cap = (size_t)cJSON_GetArraySize(nodes), n = 0;
	if (!cap) {
		put(r, "<p>No world-model revision recorded.</p>\n");
		return;
	}
	wm_row *rows = kiln_calloc(cap, sizeof(*rows));
	if (!rows) {
		r->e = KILN_ENOMEM;
		return;
	}
	wm_order(rows, &n, cap, nodes, 0, 0);
	wm_mark_path(rows, n, r->best ? jstr(r->best, "node_id") : NULL, r->best_id);
	int row_h = 26, w = 0;
	for (size_t i = 0; i < n; i++)
		w = rows[i].depth * 28 + 560 > w ? rows[i].depth * 28 + 560 : w;
	put(r, "<p>Revision %lld; highlighted: the path from the target to the winner's node.</p>\n"
	       "<svg id=\"wm-tree\" class=\"wm\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%zu\" "
	       "viewBox=\"0 0 %d %zu\">\n", (long long)jid(r->tree, "revision"), w, n * (size_t)row_h + 8, w,
	    n * (size_t)row_h + 8);
	for (size_t i = 0; i < n; i++) {
		/* elbow from the parent's row to this one */
		for (size_t k = 0; k < i; k++)
			if (rows[k].id == rows[i].parent) {
				int px = rows[k].depth * 28 + 10, x = rows[i].depth * 28 + 4;
				put(r, "<path class=\"%s\" d=\"M%d %zu V%zu H%d\"/>\n", rows[i].on_path ? "on-path" : "",
				    px, k * (size_t)row_h + 24, i * (size_t)row_h + 15, x);
			}
	}
	for (size_t i = 0; i < n; i++) {
		const cJSON *nd = rows[i].node;
		const char *st = jstr(nd, "status") ? jstr(nd, "status") : "open";
		double sx = jnum(nd, "best_speedup");
		int x = rows[i].depth * 28 + 4;
		size_t y = i * (size_t)row_h + 4;
		put(r, "<g class=\"node st-%s%s\" data-node=\"%lld\"><rect x=\"%d\" y=\"%zu\" width=\"520\" height=\"21\"/>"
		       "<text x=\"%d\" y=\"%zu\">#%lld ", st, rows[i].on_path ? " on-path" : "", (long long)rows[i].id, x, y,
		    x + 6, y + 15, (long long)rows[i].id);
		put_esc(r, jstr(nd, "title"));
		put(r, " \xc2\xb7 %s \xc2\xb7 score %.2f \xc2\xb7 %lld tries", st, jnum(nd, "score"),
		    (long long)jid(nd, "attempts"));
		if (isfinite(sx) && sx > 0)
			put(r, " \xc2\xb7 %.2fx", sx);
		put(r, "</text><title>");
		put_esc(r, jstr(nd, "notes"));
		put(r, "</title></g>\n");
	}
	put(r, "</svg>\n");
	free(rows);
}

/* ---- tables and sources ---- */

static void diff_html(report *r, const char *diff)
{
	const char *p = diff;
	while (*p && !r->e) {
		size_t len = strcspn(p, "\n");
		const char *cls = p[0] == '@' ? "hunk" : (p[0] == '+' && strncmp(p, "+++", 3)) ? "add"
			: (p[0] == '-' && strncmp(p, "---", 3)) ? "del" : NULL;
		char *line = kiln_strndup(p, len);
		if (!line) {
			r->e = KILN_ENOMEM;
			return;
		}
		if (cls)
			put(r, "<span class=\"%s\">", cls);
		put_esc(r, line);
		put(r, cls ? "</span>\n" : "\n");
		free(line);
		p += len + (p[len] == '\n');
	}
}


/* "B=256 T=4096: 14.87; B=512 T=8192: 33.33" (timings.sizes), "-" when not recorded. */
static void put_sizes(report *r, const cJSON *sizes)
{
	const cJSON *z, *v;
	int k = 0;
	cJSON_ArrayForEach(z, sizes) {
		put(r, "%s", k++ ? "; " : "");
		int i = 0;
		cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(z, "sizes")) {
			put(r, "%s", i++ ? " " : "");
			put_esc(r, v->string);
			put(r, "=%.0f", v->valuedouble);
		}
		put(r, ": %.4g", jnum(z, "time_us"));
	}
	if (!k)
		put(r, "-");
}

static void best_table(report *r)
{
	put(r, "<h2 id=\"bests\">Best candidates</h2>\n<p>Every new best in order (the last is the winner); "
	       "each id links to its source below. With several bench sizes the time is the weighted geometric "
	       "mean of the per-size times (the objective), and the speedup that of the per-size speedups.</p>\n"
	       "<table id=\"best-table\"><thead><tr><th>candidate</th><th>iteration</th><th class=\"l\">action</th>"
	       "<th class=\"l\">what changed</th><th>time (us)</th><th class=\"l\">per bench size (us)</th>"
	       "<th>speedup</th><th>roofline</th><th>registers</th><th class=\"l\">archive commit</th></tr></thead>"
	       "<tbody>\n");
	double best = INFINITY;
	const cJSON *c;
	cJSON_ArrayForEach(c, r->cands) {
		if (!next_best(r, c, &best))
			continue;
		double t = best;
		int64_t id = jid(c, "id");
		char oid[41] = "";
		if (r->archive_dir && jstr(r->run, "target") && jstr(r->run, "arch") &&
		    kiln_git_find_candidate(oid, r->archive_dir, jstr(r->run, "target"), jstr(r->run, "arch"), id))
			oid[0] = '\0';
		put(r, "<tr class=\"best-row%s\" data-candidate=\"%lld\"><td><a href=\"#src-%lld\">%lld</a></td><td>%lld</td>"
		       "<td class=\"l\">", id == r->best_id ? " winner" : "", (long long)id, (long long)id, (long long)id,
		    (long long)jid(c, "iteration"));
		put_esc(r, jstr(c, "node_id") ? jstr(c, "node_id") : "seed");
		put(r, "</td><td class=\"l changed\">");
		put_esc(r, jstr(c, "changed") ? jstr(c, "changed") : "-");
		put(r, "</td><td>%.4g</td><td class=\"l\">", t);
		put_sizes(r, cJSON_GetObjectItemCaseSensitive(c, "sizes"));
		put(r, "</td><td>%.3fx</td><td>%.3f</td><td>%.0f</td><td class=\"l\"><code>%.12s</code></td></tr>\n",
		    jnum(c, "speedup"), jnum(c, "roofline"), jnum(c, "registers"), oid);
	}
	put(r, "</tbody></table>\n<h3>Sources</h3>\n");
	best = INFINITY;
	cJSON_ArrayForEach(c, r->cands) {
		if (!next_best(r, c, &best))
			continue;
		double t = best;
		put(r, "<details id=\"src-%lld\" class=\"source\"><summary>candidate %lld (%.4g us)</summary><pre>",
		    (long long)jid(c, "id"), (long long)jid(c, "id"), t);
		put_esc(r, jstr(c, "source"));
		put(r, "</pre></details>\n");
	}
}

/* The cost model's per-launch evidence of every timed candidate: the deciding term, the
 * occupancy, the waves and the terms, and a fit that did not hold. */
static void evidence_section(report *r)
{
	put(r, "<h2 id=\"evidence\">Timing evidence</h2>\n<p>Per launch of every timed candidate: the term that "
	       "decided the modeled time, occupancy, waves and the terms in microseconds (measured timings have "
	       "none).</p>\n<table id=\"evidence-table\"><thead><tr><th>candidate</th><th>launch</th>"
	       "<th class=\"l\">bound</th><th>time (us)</th><th>occupancy</th><th>waves</th><th>dram</th><th>l2</th>"
	       "<th>issue</th><th>latency</th><th>atomics</th><th class=\"l\">fit</th></tr></thead><tbody>\n");
	const cJSON *c;
	cJSON_ArrayForEach(c, r->cands) {
		const cJSON *ctr = cJSON_GetObjectItemCaseSensitive(c, "counters"), *b;
		const cJSON *fit = cJSON_GetObjectItemCaseSensitive(ctr, "fit");
		int li = 0;
		cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(ctr, "breakdown")) {
			put(r, "<tr data-candidate=\"%lld\"><td>%lld</td><td>%d</td><td class=\"l\">", (long long)jid(c, "id"),
			    (long long)jid(c, "id"), li);
			put_esc(r, jstr(b, "bound") ? jstr(b, "bound") : "?");
			put(r, "</td><td>%.4g</td><td>%.2f</td><td>%.2f</td><td>%.3g</td><td>%.3g</td><td>%.3g</td><td>%.3g</td>"
			       "<td>%.3g</td><td class=\"l\">%s</td></tr>\n",
			    jnum(b, "time_us"), jnum(b, "occupancy"), jnum(b, "waves"), jnum(b, "dram_us"), jnum(b, "l2_us"),
			    jnum(b, "issue_us"), jnum(b, "latency_us"), jnum(b, "atomic_us"),
			    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(fit, "raised_to_floor")) ? "undercounted: raised to the traffic floor" : "");
			li++;
		}
	}
	put(r, "</tbody></table>\n");
}

/* "#3 Title" of the winner's world-model node, "the seed" or "#3" when the tree lacks it. */
static const char *winner_action(const report *r, char *buf, size_t size)
{
	const char *id = jstr(r->best, "node_id");
	if (!id || !strcmp(id, "0") || !strcmp(id, "-1"))
		return "none (the seed or the tuner)";
	snprintf(buf, size, "#%s", id);
	const cJSON *n;
	cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(r->tree, "nodes"))
		if (jid(n, "id") == strtoll(id, NULL, 10) && jstr(n, "title"))
			snprintf(buf, size, "#%s %s", id, jstr(n, "title"));
	return buf;
}

static void winner_section(report *r)
{
	put(r, "<h2 id=\"winner\">The winner</h2>\n");
	if (!r->best) {
		put(r, "<p>No candidate has passed yet.</p>\n");
		return;
	}
	put(r, "<p>Candidate %lld, hash <code>%.12s</code>.</p>\n<p id=\"winner-changed\">What it changed: ",
	    (long long)r->best_id, jstr(r->best, "hash") ? jstr(r->best, "hash") : "");
	put_esc(r, jstr(r->best, "changed") ? jstr(r->best, "changed") : "(not recorded)");
	/* the action is what the search set out to do; a model may change method inside it */
	put(r, "</p>\n<p>Found while working on action ");
	char action[320];
	put_esc(r, winner_action(r, action, sizeof action));
	put(r, ".</p>\n<p>Promote it with <code>kiln promote ");
	put_esc(r, jstr(r->run, "target"));
	put(r, " %lld --to DIR</code>.</p>\n<pre id=\"winner-source\">", (long long)r->best_id);
	put_esc(r, jstr(r->best, "source"));
	put(r, "</pre>\n<h3>Diff to the seed</h3>\n<pre id=\"winner-diff\" class=\"diff\">");
	char *d = NULL;
	if (r->seed && !r->e &&
	    !(r->e = kiln_diff_text(&d, jstr(r->seed, "source") ? jstr(r->seed, "source") : "", "seed.cu",
				   jstr(r->best, "source") ? jstr(r->best, "source") : "", "winner.cu")))
		diff_html(r, d[0] ? d : "(identical sources: the difference is in the launch plan or knobs)");
	free(d);
	put(r, "</pre>\n");
}

static void budget_section(report *r)
{
	const cJSON *t = r->totals;
	put(r, "<h2 id=\"budget\">Budget spent</h2>\n<table id=\"budget-table\"><tbody>\n"
	       "<tr><td class=\"l\">LLM calls (failed)</td><td>%.0f (%.0f)</td></tr>\n"
	       "<tr><td class=\"l\">prompt tokens (cached)</td><td>%.0f (%.0f)</td></tr>\n"
	       "<tr><td class=\"l\">completion tokens (reasoning)</td><td>%.0f (%.0f)</td></tr>\n",
	    jnum(t, "calls"), fmax(0, jnum(t, "failed_calls")), fmax(0, jnum(t, "prompt_tokens")),
	    fmax(0, jnum(t, "cached_tokens")), fmax(0, jnum(t, "completion_tokens")),
	    fmax(0, jnum(t, "reasoning_tokens")));
	if (jnum(t, "calls") > 0 && jnum(t, "unpriced") >= jnum(t, "calls"))
		put(r, "<tr><td class=\"l\">dollars</td><td id=\"cost\">unknown (unpriced model)</td></tr>\n");
	else
		put(r, "<tr><td class=\"l\">dollars</td><td id=\"cost\">$%.2f%s</td></tr>\n", fmax(0, jnum(t, "cost_usd")),
		    jnum(t, "unpriced") > 0 ? " + calls of unknown price" : "");
	put(r, "<tr><td class=\"l\">LLM wall time (s)</td><td>%.0f</td></tr>\n"
	       "<tr><td class=\"l\">compile seconds</td><td>%.1f</td></tr>\n"
	       "<tr><td class=\"l\">%s seconds (verification)</td><td>%.1f</td></tr>\n"
	       "<tr><td class=\"l\">run wall-clock (h)</td><td>%.2f</td></tr>\n",
	    fmax(0, jnum(t, "llm_s")), fmax(0, jnum(t, "compile_s")),
	    jstr(r->run, "device") && strcmp(jstr(r->run, "device"), "cuda") == 0 ? "GPU" : "emulator",
	    fmax(0, jnum(t, "verify_s")), jnum(r->run, "duration_s") / 3600.0);
	char *budgets = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(r->run, "budgets"));
	char *spent = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(r->run, "spent"));
	put(r, "<tr><td class=\"l\">budgets asked</td><td class=\"l\"><code>");
	put_esc(r, budgets ? budgets : "{}");
	put(r, "</code></td></tr>\n<tr><td class=\"l\">spent (as recorded)</td><td class=\"l\"><code>");
	put_esc(r, spent ? spent : "{}");
	put(r, "</code></td></tr>\n</tbody></table>\n");
	cJSON_free(budgets);
	cJSON_free(spent);
}

kiln_err kiln_report_html(char **out, kiln_db *db, const char *archive_dir, int64_t run_id)
{
	report r = {0};
	*out = NULL;
	r.db = db;
	r.archive_dir = archive_dir;
	kiln_buf_init(&r.b, 0);
	if (!(r.e = load(&r, run_id))) {
		head(&r);
		charts(&r);
		tree_section(&r);
		best_table(&r);
		evidence_section(&r);
		winner_section(&r);
		budget_section(&r);
		put(&r, "<footer><p>Written by kiln %s. One file: no scripts, fonts or network.</p></footer>\n"
			"</body></html>\n", KILN_VERSION);
	}
	cJSON_Delete(r.run);
	cJSON_Delete(r.cands);
	cJSON_Delete(r.tree);
	cJSON_Delete(r.totals);
	free(r.bests);
	if (r.e) {
		kiln_buf_free(&r.b);
		return r.e;
	}
	*out = kiln_buf_detach(&r.b);
	return KILN_OK;
}
