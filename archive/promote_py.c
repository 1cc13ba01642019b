/* `kiln promote --python`: NAME.py, a PyTorch module that loads NAME.fatbin through
 * libcuda with ctypes and launches the promoted plan on torch's current stream. The
 * module is archive/promote_py.py.in (embedded at build time) with the launch spec
 * (buffers, scalars, symbols, launches, scratch, knob values; JSON from the caller)
 * and the function's signature filled in. Every name must be a Python identifier that
 * is not a keyword, so the generated source always parses. */
#include "archive/archive.h"

#include <cjson/cJSON.h>
#include <string.h>

#include "archive/promote_py_template.h"

static const char *const py_keywords[] = {
	"False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def",
	"del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is",
	"lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
	"torch", "ctypes", "json", "os", "threading", "SPEC", "FATBIN", "check_args", "launch_dims", NULL};

static kiln_err py_name(const char *s, const char *what)
{
	bool ok = s && (s[0] == '_' || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z'));
	for (const char *p = s; ok && *p; p++)
		ok = *p == '_' || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9');
	for (size_t i = 0; ok && py_keywords[i]; i++)
		ok = strcmp(s, py_keywords[i]) != 0;
	return ok ? KILN_OK
		  : kiln_error_set(KILN_EINVAL, "--python: %s \"%s\" is not usable as a Python name (a keyword or a "
				   "name the module uses); promote with --name or rename it", what, s ? s : "");
}

/* Text safe inside a """docstring""": no quotes or backslashes, one line. */
static kiln_err put_doc(kiln_buf *b, const char *s)
{
	kiln_err e = KILN_OK;
	for (; !e && s && *s; s++)
		e = kiln_buf_append(b, *s == '"' ? "'" : *s == '\\' ? "/" : *s == '\n' ? " " : s, 1);
	return e;
}

typedef struct fills {
	kiln_buf params, sig, tensors, scalars, tdoc, sdoc;
} fills;

static void fills_free(fills *f)
{
	kiln_buf_free(&f->params);
	kiln_buf_free(&f->sig);
	kiln_buf_free(&f->tensors);
	kiln_buf_free(&f->scalars);
	kiln_buf_free(&f->tdoc);
	kiln_buf_free(&f->sdoc);
}

static kiln_err make_fills(fills *f, const cJSON *spec)
{
	const cJSON *bufs = cJSON_GetObjectItemCaseSensitive(spec, "buffers");
	const cJSON *scs = cJSON_GetObjectItemCaseSensitive(spec, "scalars"), *it;
	kiln_err e = KILN_OK;
	size_t k = 0;
	cJSON_ArrayForEach(it, bufs) {
		const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "name"));
		const char *dt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "dtype"));
		const char *role = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "role"));
		char *shape = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(it, "shape"));
		if ((e = py_name(n, "buffer")))
			return e;
		if ((e = kiln_buf_printf(&f->params, "%s%s", k ? ", " : "", n)) ||
		    (e = kiln_buf_printf(&f->sig, "%s%s", k ? ", " : "", n)) ||
		    (e = kiln_buf_printf(&f->tensors, "%s%s", k ? ", " : "", n)) ||
		    (e = kiln_buf_printf(&f->tdoc, "%s%s %s %s (%s)", k ? "; " : "", n, dt ? dt : "?",
					 shape ? shape : "?", role ? role : "?"))) {
			cJSON_free(shape);
			return e;
		}
		cJSON_free(shape);
		for (char *p = f->tdoc.data; p && *p; p++)
			if (*p == '"')
				*p = '\'';
		k++;
	}
	size_t j = 0;
	cJSON_ArrayForEach(it, scs) {
		const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "name"));
		const char *dt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "dtype"));
		double v = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(it, "value"));
		bool integer = dt && dt[0] != 'f';
		if ((e = py_name(n, "scalar")))
			return e;
		if ((e = integer ? kiln_buf_printf(&f->params, ", %s=%lld", n, (long long)v)
				 : kiln_buf_printf(&f->params, ", %s=%.17g", n, v)) ||
		    (e = kiln_buf_printf(&f->sig, ", %s=...", n)) ||
		    (e = kiln_buf_printf(&f->scalars, "%s%s", j ? ", " : "", n)) ||
		    (e = kiln_buf_printf(&f->sdoc, "%s%s %s", j ? "; " : "", n, dt ? dt : "?")))
			return e;
		j++;
	}
	if (!j)
		e = kiln_buf_puts(&f->sdoc, "none");
	return e;
}

kiln_err kiln_promote_python(char **out, const char *name, const char *spec_json, const char *summary,
			     const char *provenance)
{
	fills f;
	kiln_buf b, doc;
	cJSON *spec = NULL;
	kiln_err e;
	*out = NULL;
	memset(&f, 0, sizeof f);
	kiln_buf_init(&b, 16u << 20);
	kiln_buf_init(&doc, 1u << 16);
	if ((e = py_name(name, "the name")))
		return e;
	if (strstr(spec_json, "'''") || strchr(spec_json, '\\'))
		return kiln_error_set(KILN_EINVAL, "--python: the launch spec holds characters the module cannot embed");
	if ((e = kiln_json_parse(&spec, spec_json, strlen(spec_json), "promote --python spec")) ||
	    (e = make_fills(&f, spec)) || (e = put_doc(&doc, summary)))
		goto done;
	const struct {
		const char *key;
		const char *val;
	} subst[] = {
		{"@NAME@", name}, {"@PROVENANCE@", provenance}, {"@SPEC@", spec_json},
		{"@SIGNATURE@", f.sig.data ? f.sig.data : ""}, {"@PARAMS@", f.params.data ? f.params.data : ""},
		{"@SUMMARY@", doc.data ? doc.data : ""}, {"@TENSOR_DOC@", f.tdoc.data ? f.tdoc.data : ""},
		{"@SCALAR_DOC@", f.sdoc.data ? f.sdoc.data : ""}, {"@TENSORS@", f.tensors.data ? f.tensors.data : ""},
		{"@SCALARS@", f.scalars.data ? f.scalars.data : ""},
	};
	for (const char *p = kiln_promote_py_template; *p && !e;) {
		const char *at = strchr(p, '@');
		if (!at) {
			e = kiln_buf_puts(&b, p);
			break;
		}
		if ((e = kiln_buf_append(&b, p, (size_t)(at - p))))
			break;
		size_t i = 0;
		for (; i < KILN_ARRAY_LEN(subst); i++)
			if (strncmp(at, subst[i].key, strlen(subst[i].key)) == 0)
				break;
		if (i < KILN_ARRAY_LEN(subst)) {
			const char *v = subst[i].val ? subst[i].val : "";
			if (subst[i].key[1] == 'P' && subst[i].key[2] == 'R') /* provenance: docstring-safe */
				e = put_doc(&b, v);
			else
				e = kiln_buf_puts(&b, v);
			p = at + strlen(subst[i].key);
		} else {
			e = kiln_buf_append(&b, "@", 1);
			p = at + 1;
		}
	}
	if (!e)
		*out = kiln_buf_detach(&b);
done:
	if (e == KILN_ENOMEM)
		kiln_error_set(KILN_ENOMEM, "out of memory writing %s.py", name);
	kiln_buf_free(&b);
	kiln_buf_free(&doc);
	fills_free(&f);
	cJSON_Delete(spec);
	return e;
}
