/* Rendering the tree as prompt text: one line per node (id, status, score, difficulty,
 * attempts, best), notes and frontier descriptions indented below, frontier nodes marked
 * '>' and listed in the header. The text never exceeds max_bytes: deep subtrees, pruned
 * subtrees and whatever does not fit are replaced by counts. */
#include "worldmodel/wm_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAIL_RESERVE 80 /* bytes kept for the closing "... more nodes" line */

typedef struct render_ctx {
	const kiln_wm *wm;
	kiln_wm_render_options o;
	kiln_buf b;
	size_t accounted; /* nodes printed or summarised by a count */
	bool full;        /* stopped: the next line did not fit */
} render_ctx;

/* One line of text: control characters become spaces, at most max bytes (cut on a UTF-8
 * boundary, "..." appended). */
static void clean(char *dst, size_t dstn, const char *src, size_t max)
{
	size_t n = strlen(src), k = 0;
	bool cut = n > max;
	if (cut) {
		n = max;
		while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
			n--;
	}
	for (size_t i = 0; i < n && k + 4 < dstn; i++) {
		unsigned char ch = (unsigned char)src[i];
		dst[k++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
	}
	if (cut && k + 4 <= dstn) {
		memcpy(dst + k, "...", 3);
		k += 3;
	}
	dst[k] = 0;
}

static size_t descendants(const kiln_wm *wm, int64_t id)
{
	size_t c = 0;
	for (size_t i = 1; i < wm->n; i++) {
		const wm_node *x = &wm->nodes[i];
		while (x && x->id != KILN_WM_ROOT && x->parent != id)
			x = wmi_find(wm, x->parent);
		c += x && x->id != KILN_WM_ROOT && wm->nodes[i].id != id;
	}
	return c;
}

/* Appends text when the whole of it fits in the budget; otherwise marks the render full. */
static kiln_err emit(render_ctx *r, const char *text)
{
	if (r->full)
		return KILN_OK;
	if (r->b.len + strlen(text) + TAIL_RESERVE > r->o.max_bytes) {
		r->full = true;
		return KILN_OK;
	}
	return kiln_buf_puts(&r->b, text);
}

static kiln_err node_line(render_ctx *r, const wm_node *n, int depth, size_t hidden, const char *why)
{
	char title[WM_TITLE_MAX + 8], line[1024], stats[256] = "";
	const kiln_wm *wm = r->wm;
	bool front = kiln_wm_is_frontier(wm, n->id);
	clean(title, sizeof(title), n->title, 80);
	int k = 0;
	if (n->id == KILN_WM_ROOT) {
		if (n->best_us > 0)
			snprintf(stats, sizeof(stats), " | seed %.4gus", n->best_us);
		k = snprintf(line, sizeof(line), "#0 %s [target]%s", title, stats);
	} else {
		int s = snprintf(stats, sizeof(stats), " | s%.2f d%d", n->score, n->difficulty);
		if (n->expected_speedup > 0)
			s += snprintf(stats + s, sizeof(stats) - (size_t)s, " exp %.3gx", n->expected_speedup);
		s += snprintf(stats + s, sizeof(stats) - (size_t)s, " | %lld tries, %lld passed",
			      (long long)n->attempts, (long long)n->passed);
		if (n->best_candidate > 0) {
			s += snprintf(stats + s, sizeof(stats) - (size_t)s, " | best %.4gus", n->best_us);
			if (n->best_speedup > 0)
				s += snprintf(stats + s, sizeof(stats) - (size_t)s, " = %.3gx", n->best_speedup);
			snprintf(stats + s, sizeof(stats) - (size_t)s, " (cand %lld)", (long long)n->best_candidate);
		}
		k = snprintf(line, sizeof(line), "%*s%s#%lld [%s] %s%s", depth * 2, "", front ? "> " : "",
			     (long long)n->id, kiln_wm_status_name(n->status), title, stats);
	}
	if (hidden && k > 0 && (size_t)k < sizeof(line))
		k += snprintf(line + k, sizeof(line) - (size_t)k, " (+%zu %s hidden)", hidden, why);
	/* the action being worked on; once closed (reflection) it is no longer "chosen" */
	if (n->id == r->o.highlight && n->id != KILN_WM_ROOT && k > 0 && (size_t)k < sizeof(line))
		k += snprintf(line + k, sizeof(line) - (size_t)k, "%s",
			      n->status == KILN_WM_OPEN ? "  <- chosen" : "  <- just closed");
	if (k > 0 && (size_t)k < sizeof(line))
		snprintf(line + k, sizeof(line) - (size_t)k, "\n");
	else
		memcpy(line + sizeof(line) - 2, "\n", 2);
	return emit(r, line);
}

static kiln_err text_line(render_ctx *r, int depth, const char *label, const char *text)
{
	if (!text[0])
		return KILN_OK;
	char body[260], line[400];
	clean(body, sizeof(body), text, 200);
	snprintf(line, sizeof(line), "%*s%s: %s\n", depth * 2 + 4, "", label, body);
	return emit(r, line);
}

static kiln_err walk(render_ctx *r, const wm_node *n, int depth)
{
	const kiln_wm *wm = r->wm;
	if (r->full)
		return KILN_OK;
	bool collapse_pruned = n->status == KILN_WM_PRUNED && !r->o.show_pruned;
	bool collapse_deep = depth >= r->o.max_depth;
	size_t hidden = collapse_pruned || collapse_deep ? descendants(wm, n->id) : 0;
	size_t before = r->b.len;
	kiln_err e = node_line(r, n, depth, hidden, collapse_pruned ? "below, pruned" : "deeper");
	if (e || r->b.len == before)
		return e; /* did not fit */
	r->accounted += 1 + hidden;
	if (!collapse_pruned) {
		if (kiln_wm_is_frontier(wm, n->id) && (e = text_line(r, depth, "what", n->description)))
			return e;
		if ((e = text_line(r, depth, "notes", n->notes)))
			return e;
	}
	if (collapse_pruned || collapse_deep)
		return KILN_OK;
	for (size_t i = 1; i < wm->n && !r->full; i++)
		if (wm->nodes[i].parent == n->id && (e = walk(r, &wm->nodes[i], depth + 1)))
			return e;
	return KILN_OK;
}

kiln_err kiln_wm_render(char **out, const kiln_wm *wm, const kiln_wm_render_options *opt)
{
	render_ctx r = {0};
	kiln_wm_render_options def = KILN_WM_RENDER_OPTIONS_INIT;
	int64_t *front = NULL;
	size_t nf = 0;
	kiln_err e;
	*out = NULL;
	r.wm = wm;
	r.o = opt ? *opt : def;
	if (!r.o.max_bytes)
		r.o.max_bytes = 6000;
	if (r.o.max_bytes < 2 * TAIL_RESERVE + 240)
		r.o.max_bytes = 2 * TAIL_RESERVE + 240;
	if (r.o.max_depth <= 0)
		r.o.max_depth = 6;
	kiln_buf_init(&r.b, r.o.max_bytes);
	if ((e = kiln_wm_frontier(&front, &nf, wm)))
		goto done;
	char head[320];
	int k = snprintf(head, sizeof(head), "World model (revision %lld, %zu nodes). Frontier:",
			 (long long)wm->revision, wm->n);
	size_t i = 0;
	for (; i < nf && k > 0 && (size_t)k < 240; i++)
		k += snprintf(head + k, sizeof(head) - (size_t)k, "%s #%lld", i ? "," : "", (long long)front[i]);
	if (i < nf && k > 0 && (size_t)k < sizeof(head))
		k += snprintf(head + k, sizeof(head) - (size_t)k, " ... (+%zu more)", nf - i);
	if (!nf && k > 0 && (size_t)k < sizeof(head))
		k += snprintf(head + k, sizeof(head) - (size_t)k, " none");
	if (k > 0 && (size_t)k < sizeof(head))
		snprintf(head + k, sizeof(head) - (size_t)k, "\n");
	if ((e = emit(&r, head)) || (e = walk(&r, &wm->nodes[0], 0)))
		goto done;
	if (r.accounted < wm->n) {
		char tail[TAIL_RESERVE];
		snprintf(tail, sizeof(tail), "... (%zu more nodes not shown)\n", wm->n - r.accounted);
		r.full = false; /* the reserve is there for this line */
		r.o.max_bytes += TAIL_RESERVE;
		e = emit(&r, tail);
		r.o.max_bytes -= TAIL_RESERVE;
	}
done:
	free(front);
	if (e) {
		kiln_buf_free(&r.b);
		return e;
	}
	*out = kiln_buf_detach(&r.b);
	return KILN_OK;
}
