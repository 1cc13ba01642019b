/* archive: the fields of a candidate's compile result, verification and timing, described
 * once (archive.h kiln_field), and the generic code that writes them as the evaluation
 * child's JSON and reads them back in the parent. The parse trusts nothing: every keyed
 * field must be present with its type, integers must be integral and in range, so a
 * misspelt key or a hostile child's 1e300 registers is an error, never a silent -1. */
#include "archive/archive_int.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define F(rec, member, ty, k, col, u, fl) \
	.name = #member, .type = KILN_FIELD_##ty, .offset = offsetof(rec, member), .key = k, .column = col, \
	.unit = u, .flags = fl

static const kiln_field compile_fields[] = {
	{F(kiln_compile_rec, ok, BOOL, "ok", "ok", NULL, 0)},
	{F(kiln_compile_rec, log, TEXT, "log", "log", NULL, 0), .if_null = "", .cap = KILN_DB_CAP_LOG},
	{F(kiln_compile_rec, arch, TEXT, NULL, "arch", NULL, KILN_FIELD_REQUIRED)},
	{F(kiln_compile_rec, toolkit, TEXT, "toolkit", "toolkit", NULL, 0)},
	{F(kiln_compile_rec, cache_key, TEXT, "key", "cache_key", NULL, 0)},
	{F(kiln_compile_rec, registers, INT, "registers", "registers", NULL, KILN_FIELD_COUNT),
	 .label = "registers", .fmt = "%.0f"},
	{F(kiln_compile_rec, spill_store_bytes, INT64, "spill_store_bytes", "spill_store_bytes", "bytes",
	   KILN_FIELD_COUNT), .label = "spill st/ld bytes", .fmt = "%.0f"},
	{F(kiln_compile_rec, spill_load_bytes, INT64, "spill_load_bytes", "spill_load_bytes", "bytes",
	   KILN_FIELD_COUNT)},
	{F(kiln_compile_rec, shared_bytes, INT64, "shared_bytes", "shared_bytes", "bytes", KILN_FIELD_COUNT),
	 .label = "shared bytes", .fmt = "%.0f"},
	{F(kiln_compile_rec, wall_s, REAL, "wall_s", "wall_s", "s", KILN_FIELD_NONNEG), .label = "seconds", .fmt = "%.2f"},
	{F(kiln_compile_rec, cache_hit, BOOL, "cache_hit", "cache_hit", NULL, 0)},
	{F(kiln_compile_rec, resources_json, JSON, "resources", "resources", NULL, 0)},
};

static const kiln_field verify_fields[] = {
	{F(kiln_verify_rec, passed, BOOL, NULL, "passed", NULL, 0)},
	{F(kiln_verify_rec, failed_check, TEXT, NULL, "failed_check", NULL, 0)},
	{F(kiln_verify_rec, message, TEXT, NULL, "message", NULL, 0), .cap = KILN_DB_CAP_MESSAGE},
	{F(kiln_verify_rec, worst_error, REAL, NULL, "worst_error", "tolerances", 0), .label = "worst error (tol)",
	 .fmt = "%.3g"},
	{F(kiln_verify_rec, worst_index, INT64, NULL, "worst_index", "elements", KILN_FIELD_COUNT)},
	{F(kiln_verify_rec, worst_buffer, TEXT, NULL, "worst_buffer", NULL, 0)},
	{F(kiln_verify_rec, worst_set, INT64, NULL, "worst_set", NULL, KILN_FIELD_COUNT)},
	{F(kiln_verify_rec, seeds_json, JSON, NULL, "seeds", NULL, 0), .if_null = "[]"},
	{F(kiln_verify_rec, checks_json, JSON, NULL, "checks_run", NULL, 0), .if_null = "[]"},
	{F(kiln_verify_rec, device, TEXT, NULL, "device", NULL, KILN_FIELD_REQUIRED)},
	{F(kiln_verify_rec, wall_s, REAL, NULL, "wall_s", "s", 0)},
	{F(kiln_verify_rec, details_json, JSON, NULL, "details", NULL, 0)},
};

/* kiln show prints the labelled ones in this order */
static const kiln_field timing_fields[] = {
	{F(kiln_timing_rec, device, TEXT, "device", "device", NULL, KILN_FIELD_REQUIRED)},
	{F(kiln_timing_rec, modeled, BOOL, "modeled", "kind", NULL, 0), .words = {"measured", "modeled"}},
	/* not finite -> NULL, which NOT NULL rejects: a timing without a time is an error */
	{F(kiln_timing_rec, time_us, REAL, "time_us", "time_us", "us", KILN_FIELD_NONNEG), .label = "median us",
	 .fmt = "%.4g"},
	{F(kiln_timing_rec, min_us, REAL, "min_us", "min_us", "us", KILN_FIELD_NONNEG), .label = "min us", .fmt = "%.4g"},
	{F(kiln_timing_rec, spread, REAL, "spread", "spread", "fraction of the median", KILN_FIELD_NONNEG),
	 .label = "spread", .fmt = "%.3f"},
	{F(kiln_timing_rec, speedup, REAL, NULL, "speedup", "x", 0), .label = "speedup", .fmt = "%.3fx"},
	{F(kiln_timing_rec, reps, INT64, "reps", "reps", NULL, KILN_FIELD_NONNEG | KILN_FIELD_AT_LEAST_1)},
	{F(kiln_timing_rec, roofline, REAL, "roofline", "roofline", "fraction of peak", KILN_FIELD_NONNEG),
	 .label = "roofline", .fmt = "%.3f"},
	{F(kiln_timing_rec, bandwidth_gbs, REAL, "bandwidth_gbs", "bandwidth_gbs", "GB/s", KILN_FIELD_NONNEG),
	 .label = "bandwidth GB/s", .fmt = "%.0f"},
	{F(kiln_timing_rec, samples_json, JSON, "samples", "samples", "us", 0), .if_null = "[]"},
	{F(kiln_timing_rec, counters_json, JSON, "counters", "counters", NULL, 0)},
	{F(kiln_timing_rec, spec_json, JSON, "spec", "spec", NULL, 0)},
	{F(kiln_timing_rec, sizes_json, JSON, "sizes", "sizes", NULL, 0)},
};

const kiln_record_desc kiln_compile_desc = {"compile_results", "compile", "compile result", compile_fields,
					    KILN_ARRAY_LEN(compile_fields)};
const kiln_record_desc kiln_verify_desc = {"verifications", "verification", "verification", verify_fields,
					   KILN_ARRAY_LEN(verify_fields)};
const kiln_record_desc kiln_timing_desc = {"timings", "timing", "timing", timing_fields,
					   KILN_ARRAY_LEN(timing_fields)};

/* ---- typed access to a record's member (the texts are const char * in the records) ---- */

double kiln_field_num(const void *rec, const kiln_field *f)
{
	const char *p = (const char *)rec + f->offset;
	bool b;
	int i;
	int64_t l;
	double d;
	switch (f->type) {
	case KILN_FIELD_BOOL: memcpy(&b, p, sizeof b); return b;
	case KILN_FIELD_INT: memcpy(&i, p, sizeof i); return i;
	case KILN_FIELD_INT64: memcpy(&l, p, sizeof l); return (double)l;
	case KILN_FIELD_REAL: memcpy(&d, p, sizeof d); return d;
	default: return NAN;
	}
}

int64_t kiln_field_int(const void *rec, const kiln_field *f)
{
	const char *p = (const char *)rec + f->offset;
	int i;
	int64_t l;
	if (f->type == KILN_FIELD_INT) {
		memcpy(&i, p, sizeof i);
		return i;
	}
	if (f->type == KILN_FIELD_INT64) {
		memcpy(&l, p, sizeof l);
		return l;
	}
	return (int64_t)kiln_field_num(rec, f);
}

const char *kiln_field_text(const void *rec, const kiln_field *f)
{
	const char *s;
	memcpy(&s, (const char *)rec + f->offset, sizeof s);
	return s;
}

static void set_text(void *rec, const kiln_field *f, char *s)
{
	memcpy((char *)rec + f->offset, &s, sizeof s);
}

/* v fits f's type (checked by the caller). */
static void set_num(void *rec, const kiln_field *f, double v)
{
	char *p = (char *)rec + f->offset;
	bool b;
	int i;
	int64_t l;
	switch (f->type) { /* each cast only for its own type: (int)NaN is undefined */
	case KILN_FIELD_BOOL: b = v != 0; memcpy(p, &b, sizeof b); break;
	case KILN_FIELD_INT: i = (int)v; memcpy(p, &i, sizeof i); break;
	case KILN_FIELD_INT64: l = (int64_t)v; memcpy(p, &l, sizeof l); break;
	case KILN_FIELD_REAL: memcpy(p, &v, sizeof v); break;
	default: break;
	}
}

/* ---- the child's side ---- */

static cJSON *field_json(const void *rec, const kiln_field *f)
{
	const char *s;
	double v;
	cJSON *j;
	switch (f->type) {
	case KILN_FIELD_BOOL:
		return cJSON_CreateBool(kiln_field_num(rec, f) != 0);
	case KILN_FIELD_TEXT:
		s = kiln_field_text(rec, f);
		return s ? cJSON_CreateString(s) : cJSON_CreateNull();
	case KILN_FIELD_JSON:
		s = kiln_field_text(rec, f);
		j = s ? cJSON_Parse(s) : NULL;
		return j ? j : cJSON_CreateNull();
	default:
		v = kiln_field_num(rec, f);
		return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
	}
}

kiln_err kiln_record_to_json(cJSON *obj, const kiln_record_desc *d, const void *rec)
{
	for (size_t i = 0; i < d->nfields; i++) {
		const kiln_field *f = &d->fields[i];
		if (!f->key)
			continue;
		cJSON *v = field_json(rec, f);
		if (!v || !cJSON_AddItemToObject(obj, f->key, v)) {
			cJSON_Delete(v);
			return KILN_ENOMEM;
		}
	}
	return KILN_OK;
}

/* ---- the parent's side: the child's answer is untrusted ---- */

static kiln_err bad(const kiln_record_desc *d, const kiln_field *f, const char *why)
{
	return kiln_error_set(KILN_EINVAL, "the evaluation's answer: %s.%s %s", d->part, f->key, why);
}

static kiln_err read_number(void *rec, const kiln_record_desc *d, const kiln_field *f, const cJSON *v)
{
	if (f->type == KILN_FIELD_REAL && cJSON_IsNull(v)) {
		set_num(rec, f, NAN);
		return KILN_OK;
	}
	if (!cJSON_IsNumber(v))
		return bad(d, f, "is not a number");
	double x = v->valuedouble;
	if (!isfinite(x))
		return bad(d, f, "is not finite");
	if ((f->flags & KILN_FIELD_NONNEG) && x < 0)
		return bad(d, f, "is negative");
	if (f->type != KILN_FIELD_REAL && x != floor(x))
		return bad(d, f, "is not an integer");
	if ((f->type == KILN_FIELD_INT && (x < INT_MIN || x > INT_MAX)) ||
	    (f->type == KILN_FIELD_INT64 && (x < -9.0e18 || x > 9.0e18)))
		return bad(d, f, "is out of range");
	set_num(rec, f, x);
	return KILN_OK;
}

static kiln_err read_field(void *rec, const kiln_record_desc *d, const kiln_field *f, const cJSON *v)
{
	char *s = NULL;
	switch (f->type) {
	case KILN_FIELD_BOOL:
		if (!cJSON_IsBool(v))
			return bad(d, f, "is not true or false");
		set_num(rec, f, cJSON_IsTrue(v));
		return KILN_OK;
	case KILN_FIELD_TEXT:
		if (!cJSON_IsString(v) && !cJSON_IsNull(v))
			return bad(d, f, "is not a string");
		if (cJSON_IsString(v) && !(s = kiln_strdup(v->valuestring)))
			return KILN_ENOMEM;
		set_text(rec, f, s);
		return KILN_OK;
	case KILN_FIELD_JSON:
		if (!cJSON_IsNull(v) && !(s = cJSON_PrintUnformatted(v)))
			return KILN_ENOMEM;
		set_text(rec, f, s);
		return KILN_OK;
	default:
		return read_number(rec, d, f, v);
	}
}

kiln_err kiln_record_from_json(void *rec, const kiln_record_desc *d, const cJSON *obj)
{
	if (!cJSON_IsObject(obj))
		return kiln_error_set(KILN_EINVAL, "the evaluation's answer: %s is not an object", d->part);
	for (size_t i = 0; i < d->nfields; i++) {
		const kiln_field *f = &d->fields[i];
		if (!f->key)
			continue;
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, f->key);
		kiln_err e = v ? read_field(rec, d, f, v) : bad(d, f, "is missing");
		if (e)
			return e;
	}
	return KILN_OK;
}

void kiln_record_free(void *rec, const kiln_record_desc *d)
{
	for (size_t i = 0; rec && i < d->nfields; i++) {
		const kiln_field *f = &d->fields[i];
		if (f->key && (f->type == KILN_FIELD_TEXT || f->type == KILN_FIELD_JSON)) {
			free((void *)(uintptr_t)kiln_field_text(rec, f));
			set_text(rec, f, NULL);
		}
	}
}
