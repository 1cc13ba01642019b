/* Edit replies: search/replace blocks (<<<<<<< SEARCH / ======= / >>>>>>> REPLACE) or a
 * unified diff of kernel.cu, applied strictly to the kernel the task quoted. Every edit is
 * matched against that kernel as it was (never against an earlier edit's result), at line
 * starts, exactly once, with exact bytes; edits may not overlap; the result is capped at
 * the compiler's source limit. Anything else is KILN_EINVAL with one line the retry prompt
 * quotes ("block 2: SEARCH text not found ..."). Linear in the inputs up to small caps. */
#include "agent/agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile/compile.h"

#define MAX_HITS 8      /* occurrences counted per SEARCH ("matches 8 or more times") */
#define QUOTE_MAX 60    /* bytes of a line quoted in a message */

typedef struct edit {
	const char *old; /* whole lines, each ending in '\n'; not NUL-terminated */
	size_t old_len;
	const char *new_;
	size_t new_len;
	size_t hint;     /* diff: the hunk's old start line (1-based); 0 = none */
	size_t at;       /* where it matched in the base */
} edit;

typedef struct edits {
	edit e[KILN_EDIT_MAX_BLOCKS];
	size_t n;
	const char *what; /* "block" | "hunk" */
	char *owned[2 * KILN_EDIT_MAX_BLOCKS]; /* diff: the hunks' old and new texts */
	size_t nowned;
} edits;

static void edits_free(edits *es)
{
	for (size_t i = 0; i < es->nowned; i++)
		free(es->owned[i]);
	es->nowned = 0;
}

/* ---- lines ---- */

typedef struct line {
	const char *p;
	size_t len;     /* without the '\n' */
	size_t next;    /* offset of the next line */
} line;

static bool next_line(line *l, const char *t, size_t n, size_t pos)
{
	*l = (line){t + n, 0, n};
	if (pos >= n)
		return false;
	const char *nl = memchr(t + pos, '\n', n - pos);
	l->p = t + pos;
	l->len = nl ? (size_t)(nl - (t + pos)) : n - pos;
	l->next = nl ? (size_t)(nl - t) + 1 : n;
	return true;
}

/* The line without trailing spaces, tabs and a CR. */
static size_t trimmed(const line *l)
{
	size_t k = l->len;
	while (k > 0 && (l->p[k - 1] == ' ' || l->p[k - 1] == '\t' || l->p[k - 1] == '\r'))
		k--;
	return k;
}

static bool line_is(const line *l, const char *s)
{
	return trimmed(l) == strlen(s) && memcmp(l->p, s, strlen(s)) == 0;
}

static bool blank(const line *l)
{
	return trimmed(l) == 0;
}

/* ---- search/replace blocks ---- */

static kiln_err add_edit(edits *es, const char *old, size_t old_len, const char *new_, size_t new_len, size_t hint)
{
	if (es->n >= KILN_EDIT_MAX_BLOCKS)
		return kiln_error_set(KILN_EINVAL, "more than %d edit %ss; send the whole kernel in a ```cuda block instead",
				      KILN_EDIT_MAX_BLOCKS, es->what);
	es->e[es->n++] = (edit){old, old_len, new_, new_len, hint, 0};
	return KILN_OK;
}

static kiln_err parse_blocks(edits *es, const char *t, size_t n)
{
	enum { OUT, SEARCH, REPLACE } st = OUT;
	size_t pos = 0, lno = 0, s0 = 0, s1 = 0, r0 = 0;
	line l;
	es->what = "block";
	while (next_line(&l, t, n, pos)) {
		lno++;
		bool mk_s = line_is(&l, "<<<<<<< SEARCH"), mk_d = line_is(&l, "======="),
		     mk_r = line_is(&l, ">>>>>>> REPLACE");
		size_t here = (size_t)(l.p - t);
		if (st == OUT) {
			if (mk_s) {
				st = SEARCH;
				s0 = l.next;
			} else if (!blank(&l)) {
				return kiln_error_set(KILN_EINVAL, "edit line %zu: text outside a <<<<<<< SEARCH / ======= / "
						      ">>>>>>> REPLACE block", lno);
			}
		} else if (st == SEARCH) {
			if (mk_d) {
				st = REPLACE;
				s1 = here;
				r0 = l.next;
			} else if (mk_s || mk_r) {
				return kiln_error_set(KILN_EINVAL, "edit line %zu: block %zu has no ======= between SEARCH and REPLACE",
						      lno, es->n + 1);
			}
		} else {
			if (mk_r) {
				kiln_err e = add_edit(es, t + s0, s1 - s0, t + r0, here - r0, 0);
				if (e)
					return e;
				st = OUT;
			} else if (mk_s || mk_d) {
				return kiln_error_set(KILN_EINVAL, "edit line %zu: block %zu is not closed with >>>>>>> REPLACE before "
						      "this marker", lno, es->n + 1);
			}
		}
		pos = l.next;
	}
	if (st != OUT)
		return kiln_error_set(KILN_EINVAL, "block %zu is not closed with >>>>>>> REPLACE", es->n + 1);
	if (es->n == 0)
		return kiln_error_set(KILN_EINVAL, "the ```edit block holds no <<<<<<< SEARCH / ======= / >>>>>>> REPLACE block");
	return KILN_OK;
}

/* ---- unified diff ---- */

/* "--- a/kernel.cu" or "+++ b/kernel.cu" (a tab and a date may follow): the one file. */
static kiln_err diff_file(const line *l, size_t lno)
{
	const char *p = l->p + 4;
	size_t k = trimmed(l) > 4 ? trimmed(l) - 4 : 0;
	const char *tab = memchr(p, '\t', k);
	if (tab)
		k = (size_t)(tab - p);
	if (k >= 2 && (p[0] == 'a' || p[0] == 'b') && p[1] == '/') {
		p += 2;
		k -= 2;
	}
	if (k == strlen("kernel.cu") && memcmp(p, "kernel.cu", k) == 0)
		return KILN_OK;
	return kiln_error_set(KILN_EINVAL, "diff line %zu: the diff names %.*s; it may only change kernel.cu (the kernel "
			      "the task quotes)", lno, (int)(k > QUOTE_MAX ? QUOTE_MAX : k), p);
}

static bool parse_count(const char **p, const char *end, size_t *out)
{
	size_t v = 0, digits = 0;
	while (*p < end && **p >= '0' && **p <= '9' && digits < 8) {
		v = v * 10 + (size_t)(**p - '0');
		(*p)++;
		digits++;
	}
	*out = v;
	return digits > 0 && !(*p < end && **p >= '0' && **p <= '9');
}

/* "@@ -a[,b] +c[,d] @@ ..." */
static bool hunk_header(const line *l, size_t *a, size_t *b, size_t *c, size_t *d)
{
	const char *p = l->p, *end = l->p + l->len;
	*b = *d = 1;
	if (l->len < 4 || memcmp(p, "@@ -", 4))
		return false;
	p += 4;
	if (!parse_count(&p, end, a))
		return false;
	if (p < end && *p == ',' && (p++, !parse_count(&p, end, b)))
		return false;
	if (end - p < 2 || memcmp(p, " +", 2))
		return false;
	p += 2;
	if (!parse_count(&p, end, c))
		return false;
	if (p < end && *p == ',' && (p++, !parse_count(&p, end, d)))
		return false;
	return end - p >= 3 && memcmp(p, " @@", 3) == 0;
}

/* One hunk's body from pos: its old and new texts. */
static kiln_err parse_hunk(edits *es, const char *t, size_t n, size_t *pos, size_t *lno, size_t a, size_t b, size_t d)
{
	kiln_buf o, w;
	kiln_buf_init(&o, 0);
	kiln_buf_init(&w, 0);
	size_t no = 0, nw = 0, h = es->n + 1;
	kiln_err e = KILN_OK;
	line l;
	while ((no < b || nw < d) && next_line(&l, t, n, *pos)) {
		char c = l.len ? l.p[0] : ' ';
		const char *body = l.len ? l.p + 1 : l.p;
		size_t blen = l.len ? l.len - 1 : 0;
		(*lno)++;
		*pos = l.next;
		if (c == '\\')
			continue; /* "\ No newline at end of file" */
		if (c != ' ' && c != '-' && c != '+') {
			e = kiln_error_set(KILN_EINVAL, "diff line %zu: hunk %zu ends after %zu old and %zu new lines, but its "
					   "header says %zu and %zu", *lno, h, no, nw, b, d);
			goto done;
		}
		if (c != '+') {
			kiln_buf_append(&o, body, blen);
			kiln_buf_append(&o, "\n", 1);
			no++;
		}
		if (c != '-') {
			kiln_buf_append(&w, body, blen);
			kiln_buf_append(&w, "\n", 1);
			nw++;
		}
		if (no > b || nw > d) {
			e = kiln_error_set(KILN_EINVAL, "diff line %zu: hunk %zu has more lines than its header's %zu old and %zu new",
					   *lno, h, b, d);
			goto done;
		}
	}
	if (no < b || nw < d) {
		e = kiln_error_set(KILN_EINVAL, "hunk %zu: the diff ends after %zu old and %zu new lines, but its header says "
				   "%zu and %zu", h, no, nw, b, d);
		goto done;
	}
	if (no == 0) {
		e = kiln_error_set(KILN_EINVAL, "hunk %zu has neither context nor removed lines: kiln cannot place it; include "
				   "the lines around the insertion", h);
		goto done;
	}
	if ((o.len && !o.data) || (w.len && !w.data)) {
		e = KILN_ENOMEM;
		goto done;
	}
	char *os = kiln_buf_detach(&o), *ws = kiln_buf_detach(&w);
	es->owned[es->nowned++] = os;
	es->owned[es->nowned++] = ws;
	e = add_edit(es, os, strlen(os), ws, strlen(ws), a);
done:
	kiln_buf_free(&o);
	kiln_buf_free(&w);
	return e;
}

static kiln_err parse_diff(edits *es, const char *t, size_t n)
{
	size_t pos = 0, lno = 0;
	int files = 0; /* 0 before "---", 1 after "---", 2 after "+++" */
	line l;
	es->what = "hunk";
	while (next_line(&l, t, n, pos)) {
		lno++;
		pos = l.next;
		size_t a, b, c, d;
		if (l.len >= 4 && memcmp(l.p, "--- ", 4) == 0 && files != 1) {
			if (files == 2)
				return kiln_error_set(KILN_EINVAL, "diff line %zu: a second file header; the diff may only "
						      "change kernel.cu, once", lno);
			kiln_err e = diff_file(&l, lno);
			if (e)
				return e;
			files = 1;
		} else if (files == 1) {
			if (l.len < 4 || memcmp(l.p, "+++ ", 4))
				return kiln_error_set(KILN_EINVAL, "diff line %zu: expected the '+++ b/kernel.cu' header", lno);
			kiln_err e = diff_file(&l, lno);
			if (e)
				return e;
			files = 2;
		} else if (files == 2 && hunk_header(&l, &a, &b, &c, &d)) {
			if (es->n >= KILN_EDIT_MAX_BLOCKS)
				return add_edit(es, NULL, 0, NULL, 0, 0); /* the limit's message */
			kiln_err e = parse_hunk(es, t, n, &pos, &lno, a, b, d);
			if (e)
				return e;
		} else if (files == 0 && (blank(&l) || (l.len >= 5 && !memcmp(l.p, "diff ", 5)) ||
					     (l.len >= 6 && !memcmp(l.p, "index ", 6)))) {
			continue; /* git's preamble */
		} else if (!blank(&l)) {
			return kiln_error_set(KILN_EINVAL, "diff line %zu: %s", lno, files == 0
					      ? "expected the '--- a/kernel.cu' header"
					      : "expected a hunk header '@@ -OLD,COUNT +NEW,COUNT @@'");
		}
	}
	if (es->n == 0)
		return kiln_error_set(KILN_EINVAL, "the ```diff block holds no hunk ('--- a/kernel.cu', '+++ b/kernel.cu', "
				      "'@@ ... @@' and its lines)");
	return KILN_OK;
}

/* ---- matching ---- */

static size_t line_of(const char *t, size_t at)
{
	size_t k = 1;
	for (const char *p = t; (p = memchr(p, '\n', (size_t)(t + at - p))) != NULL; p++)
		k++;
	return k;
}

/* Line-aligned occurrences of ed->old in base: how many (up to MAX_HITS); the first, or
 * the one at the diff's stated line, goes to ed->at. */
static size_t find(const char *base, size_t n, edit *ed)
{
	size_t hits = 0, pos = 0;
	bool hinted = false;
	while (hits < MAX_HITS && pos + ed->old_len <= n) {
		const char *p = memmem(base + pos, n - pos, ed->old, ed->old_len);
		if (!p)
			break;
		size_t at = (size_t)(p - base);
		pos = at + 1;
		if (at > 0 && base[at - 1] != '\n')
			continue;
		if (hits++ == 0)
			ed->at = at;
		if (ed->hint && !hinted && line_of(base, at) == ed->hint) {
			ed->at = at;
			hinted = true;
		}
	}
	return hinted ? 1 : hits;
}

/* A copy with spaces and tabs before each newline dropped. */
static char *strip_trailing(const char *t, size_t n, size_t *out_len)
{
	char *o = kiln_malloc(n + 1);
	size_t k = 0, keep = 0;
	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (t[i] == '\n')
			k = keep;
		o[k++] = t[i];
		if (t[i] != ' ' && t[i] != '\t')
			keep = k;
	}
	o[k] = '\0';
	*out_len = k;
	return o;
}

static void quote_line(char *out, size_t size, const char *p, size_t len)
{
	snprintf(out, size, "'%.*s%s'", (int)(len > QUOTE_MAX ? QUOTE_MAX : len), p, len > QUOTE_MAX ? "..." : "");
}

/* Why ed->old is not in base, as precisely as is cheap to say. */
static kiln_err not_found(const char *base, size_t n, const edit *ed, const char *what, size_t k)
{
	size_t bn = 0, sn = 0;
	char *b = strip_trailing(base, n, &bn), *s = strip_trailing(ed->old, ed->old_len, &sn);
	bool ws = b && s && sn > 0 && memmem(b, bn, s, sn) != NULL;
	free(b);
	free(s);
	if (ws)
		return kiln_error_set(KILN_EINVAL, "%s %zu: the old text is not in the parent kernel as sent; it matches "
				      "only when trailing spaces are ignored: copy the lines exactly", what, k);
	/* where its first line occurs, and the first line after it that differs */
	line first = {ed->old, 0, 0};
	next_line(&first, ed->old, ed->old_len, 0);
	size_t best = 0, best_at = 0, pos = 0, tries = 0;
	while (tries < MAX_HITS && pos < n) {
		const char *p = memmem(base + pos, n - pos, first.p, first.len + 1);
		if (!p)
			break;
		size_t at = (size_t)(p - base), same = 0, bp = at, sp = 0;
		pos = at + 1;
		if (at > 0 && base[at - 1] != '\n')
			continue;
		tries++;
		line bl = {base, 0, 0}, sl = {ed->old, 0, 0};
		while (next_line(&sl, ed->old, ed->old_len, sp) && next_line(&bl, base, n, bp) && bl.len == sl.len &&
		       memcmp(bl.p, sl.p, sl.len) == 0) {
			same++;
			sp = sl.next;
			bp = bl.next;
		}
		if (same > best) {
			best = same;
			best_at = at;
		}
	}
	if (best == 0) {
		char q[QUOTE_MAX + 8];
		quote_line(q, sizeof q, first.p, first.len);
		return kiln_error_set(KILN_EINVAL, "%s %zu: the old text is not in the parent kernel (its first line %s "
				      "is not a line of it)", what, k, q);
	}
	line bl = {base, 0, 0}, sl = {ed->old, 0, 0};
	size_t bp = best_at, sp = 0;
	for (size_t i = 0; i < best; i++) {
		next_line(&bl, base, n, bp);
		next_line(&sl, ed->old, ed->old_len, sp);
		bp = bl.next;
		sp = sl.next;
	}
	next_line(&sl, ed->old, ed->old_len, sp);
	char qs[QUOTE_MAX + 8], qb[QUOTE_MAX + 8] = "the end of the kernel";
	quote_line(qs, sizeof qs, sl.p, sl.len);
	if (next_line(&bl, base, n, bp))
		quote_line(qb, sizeof qb, bl.p, bl.len);
	return kiln_error_set(KILN_EINVAL, "%s %zu: the old text is not in the parent kernel: its first %zu line(s) match "
			      "at line %zu, then it has %s where the kernel has %s", what, k, best,
			      line_of(base, best_at), qs, qb);
}

static int by_position(const void *a, const void *b)
{
	const edit *x = *(const edit *const *)a, *y = *(const edit *const *)b;
	return x->at < y->at ? -1 : x->at > y->at;
}

static kiln_err apply_all(char **out, const char *base, size_t n, edits *es)
{
	const char *what = es->what;
	edit *order[KILN_EDIT_MAX_BLOCKS];
	for (size_t i = 0; i < es->n; i++) {
		edit *ed = &es->e[i];
		order[i] = ed;
		if (ed->old_len == 0)
			return kiln_error_set(KILN_EINVAL, "%s %zu: the SEARCH text is empty; to add code, put the lines next "
					      "to it in SEARCH and repeat them in REPLACE with the new code", what, i + 1);
		if (ed->old_len == ed->new_len && memcmp(ed->old, ed->new_, ed->old_len) == 0)
			return kiln_error_set(KILN_EINVAL, "%s %zu changes nothing (the new text equals the old)", what, i + 1);
		size_t hits = find(base, n, ed);
		if (hits == 0)
			return not_found(base, n, ed, what, i + 1);
		if (hits > 1)
			return kiln_error_set(KILN_EINVAL, "%s %zu: the old text matches %zu%s times in the parent kernel "
					      "(lines %zu, ...); add lines around it until it matches once", what, i + 1, hits,
					      hits >= MAX_HITS ? " or more" : "", line_of(base, ed->at));
	}
	qsort(order, es->n, sizeof order[0], by_position);
	size_t removed = 0, added = 0; /* removed <= n: the old texts are disjoint parts of base */
	for (size_t i = 0; i < es->n; i++) {
		if (i > 0 && order[i]->at < order[i - 1]->at + order[i - 1]->old_len) {
			size_t a = (size_t)(order[i - 1] - es->e) + 1, b = (size_t)(order[i] - es->e) + 1;
			return kiln_error_set(KILN_EINVAL, "%s %zu and %s %zu change the same lines (from line %zu); merge them "
					      "into one", what, a < b ? a : b, what, a < b ? b : a, line_of(base, order[i]->at));
		}
		removed += order[i]->old_len;
		added += order[i]->new_len; /* each a part of the reply: no overflow */
	}
	size_t size = n - removed + added;
	if (size > KILN_COMPILE_MAX_SOURCE)
		return kiln_error_set(KILN_EINVAL, "the edited kernel would be over %u bytes (1 MiB), the source limit",
				      KILN_COMPILE_MAX_SOURCE);
	char *o = kiln_malloc(size + 1);
	if (!o)
		return KILN_ENOMEM;
	size_t k = 0, from = 0;
	for (size_t i = 0; i < es->n; i++) {
		memcpy(o + k, base + from, order[i]->at - from);
		k += order[i]->at - from;
		memcpy(o + k, order[i]->new_, order[i]->new_len);
		k += order[i]->new_len;
		from = order[i]->at + order[i]->old_len;
	}
	memcpy(o + k, base + from, n - from);
	k += n - from;
	o[k] = '\0';
	*out = o;
	return KILN_OK;
}

/* The edits' text with CR before LF dropped (a reply sent with CRLF line ends), when the
 * base has no CR of its own. */
static char *normalise(const char *t, size_t n, const char *base)
{
	char *o = kiln_malloc(n + 1);
	size_t k = 0;
	bool keep_cr = strchr(base, '\r') != NULL;
	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (keep_cr || !(t[i] == '\r' && i + 1 < n && t[i + 1] == '\n'))
			o[k++] = t[i];
	o[k] = '\0';
	return o;
}

kiln_err kiln_edit_apply(char **out, const char *base, const char *text, size_t len, kiln_edit_kind kind)
{
	*out = NULL;
	if (memchr(text, '\0', len))
		return kiln_error_set(KILN_EINVAL, "the edits contain a NUL byte");
	size_t n = strlen(base);
	char *b = NULL, *t = normalise(text, len, base);
	edits es;
	memset(&es, 0, sizeof es);
	kiln_err e = t ? KILN_OK : KILN_ENOMEM;
	/* a kernel whose last line has no newline: give it one, so SEARCH lines match it */
	if (!e && n > 0 && base[n - 1] != '\n') {
		if (!(b = kiln_asprintf("%s\n", base)))
			e = KILN_ENOMEM;
		base = b;
		n++;
	}
	if (!e)
		e = kind == KILN_EDIT_DIFF ? parse_diff(&es, t, strlen(t)) : parse_blocks(&es, t, strlen(t));
	if (!e)
		e = apply_all(out, base, n, &es);
	if (!e && strcmp(*out, base) == 0) {
		free(*out);
		*out = NULL;
		e = kiln_error_set(KILN_EINVAL, "the edits leave the kernel unchanged");
	}
	edits_free(&es);
	free(t);
	free(b);
	return e;
}
