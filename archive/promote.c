/* archive: what `kiln promote` needs from the archive beyond kiln_git_tag: finding the
 * commit of a candidate by its Kiln-Candidate trailer, a detached commit for a candidate
 * that was never a new best, and the translation of launch expressions into C for the
 * generated header. The git functions open their own libgit2 handle on the archive folder
 * (never creating it); libgit2 errors are translated once, in fail_git. */
#include "archive/archive_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>

static kiln_err fail_git(int rc, const char *what, const char *arg)
{
	const git_error *ge = git_error_last();
	return kiln_error_set(rc == GIT_ENOTFOUND ? KILN_ENOTFOUND : KILN_EGIT, "%s %s: %s", what, arg,
			      ge && ge->message ? ge->message : "libgit2 error");
}

static kiln_err open_repo(git_repository **out, const char *dir)
{
	git_libgit2_init();
	int rc = git_repository_open_ext(out, dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
	if (rc == GIT_ENOTFOUND)
		return kiln_error_set(KILN_ENOTFOUND, "%s: no git archive here", dir);
	return rc < 0 ? fail_git(rc, "opening the archive", dir) : KILN_OK;
}

static void close_repo(git_repository *r)
{
	if (!r)
		return;
	git_repository_free(r);
	git_libgit2_shutdown();
}

/* The value of trailer key in a commit message as an integer; 0 when absent. */
static int64_t trailer_value(const char *msg, const char *key)
{
	git_message_trailer_array t = {0};
	int64_t v = 0;
	if (git_message_trailers(&t, msg) < 0)
		return 0;
	for (size_t i = 0; i < t.count; i++)
		if (strcmp(t.trailers[i].key, key) == 0)
			v = strtoll(t.trailers[i].value, NULL, 10);
	git_message_trailer_array_free(&t);
	return v;
}

/* Calls visit(ctx, oid, candidate) for each commit on <target>/<arch>, newest first, until
 * it returns true. KILN_ENOTFOUND when the archive or the branch does not exist. */
static kiln_err walk_branch(const char *archive_dir, const char *target, const char *arch,
			    bool (*visit)(void *ctx, const git_oid *oid, int64_t candidate), void *ctx)
{
	git_repository *repo = NULL;
	git_revwalk *walk = NULL;
	char *ref = kiln_asprintf("refs/heads/%s/%s", target, arch);
	git_oid oid;
	kiln_err e;
	int rc = 0;
	if (!ref)
		return KILN_ENOMEM;
	if ((e = open_repo(&repo, archive_dir)))
		goto done;
	if (git_reference_name_to_id(&oid, repo, ref) == GIT_ENOTFOUND) {
		e = kiln_error_set(KILN_ENOTFOUND, "%s: no branch %s/%s (no new best recorded yet)", archive_dir, target, arch);
		goto done;
	}
	if ((rc = git_revwalk_new(&walk, repo)) < 0 || (rc = git_revwalk_push_ref(walk, ref)) < 0) {
		e = fail_git(rc, "walking", ref);
		goto done;
	}
	while ((rc = git_revwalk_next(&oid, walk)) == 0) {
		git_commit *c = NULL;
		if ((rc = git_commit_lookup(&c, repo, &oid)) < 0)
			break;
		int64_t cand = trailer_value(git_commit_message(c), "Kiln-Candidate");
		git_commit_free(c);
		if (visit(ctx, &oid, cand))
			break;
	}
	if (rc < 0 && rc != GIT_ITEROVER)
		e = fail_git(rc, "walking", ref);
done:
	git_revwalk_free(walk);
	close_repo(repo);
	free(ref);
	return e;
}

typedef struct find_ctx {
	int64_t want;
	char *oid;
	bool found;
} find_ctx;

static bool find_visit(void *ctx, const git_oid *oid, int64_t candidate)
{
	find_ctx *f = ctx;
	if (candidate != f->want)
		return false;
	git_oid_tostr(f->oid, 41, oid);
	f->found = true;
	return true;
}

kiln_err kiln_git_find_candidate(char out_oid[41], const char *archive_dir, const char *target,
				 const char *arch, int64_t candidate_id)
{
	find_ctx f = {candidate_id, out_oid, false};
	kiln_err e = walk_branch(archive_dir, target, arch, find_visit, &f);
	if (!e && !f.found)
		e = kiln_error_set(KILN_ENOTFOUND, "candidate %lld has no commit on %s/%s in %s", (long long)candidate_id,
				   target, arch, archive_dir);
	return e;
}

typedef struct list_ctx {
	int64_t *ids;
	size_t n, cap;
	bool oom;
} list_ctx;

static bool list_visit(void *ctx, const git_oid *oid, int64_t candidate)
{
	list_ctx *l = ctx;
	(void)oid;
	if (candidate <= 0)
		return false;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		int64_t *ids = kiln_realloc(l->ids, cap * sizeof(*ids));
		if (!ids) {
			l->oom = true;
			return true;
		}
		l->ids = ids;
		l->cap = cap;
	}
	l->ids[l->n++] = candidate;
	return false;
}

kiln_err kiln_git_best_candidates(int64_t **out, size_t *n, const char *archive_dir, const char *target,
				  const char *arch)
{
	list_ctx l = {NULL, 0, 0, false};
	kiln_err e = walk_branch(archive_dir, target, arch, list_visit, &l);
	if (!e && l.oom)
		e = KILN_ENOMEM;
	if (e) {
		free(l.ids);
		l.ids = NULL;
		l.n = 0;
	}
	*out = l.ids;
	*n = l.n;
	return e;
}

/* Writes kernel.cu, launch.json and result.json into a tree. */
static kiln_err write_tree(git_tree **out, git_repository *repo, const kiln_git_best *b)
{
	static const char *const names[] = {"kernel.cu", "launch.json", "result.json"};
	const char *contents[] = {b->kernel_cu, b->launch_json, b->result_json ? b->result_json : "{}"};
	git_treebuilder *tb = NULL;
	git_oid blob, tree;
	kiln_err e = KILN_OK;
	int rc = git_treebuilder_new(&tb, repo, NULL);
	for (size_t i = 0; rc >= 0 && i < KILN_ARRAY_LEN(names); i++) {
		rc = git_blob_create_from_buffer(&blob, repo, contents[i], strlen(contents[i]));
		if (rc >= 0)
			rc = git_treebuilder_insert(NULL, tb, names[i], &blob, GIT_FILEMODE_BLOB);
	}
	if (rc >= 0 && (rc = git_treebuilder_write(&tree, tb)) >= 0)
		rc = git_tree_lookup(out, repo, &tree);
	if (rc < 0)
		e = fail_git(rc, "writing the tree of candidate", b->target);
	git_treebuilder_free(tb);
	return e;
}

kiln_err kiln_git_commit_detached(char out_oid[41], const char *archive_dir, const kiln_git_best *b)
{
	git_repository *repo = NULL;
	git_tree *tree = NULL;
	git_commit *parent = NULL;
	git_signature *sig = NULL;
	git_oid oid;
	char *ref = NULL, *msg = NULL;
	kiln_err e;
	int rc;
	if (!b->target || !b->arch || !b->kernel_cu || !b->launch_json)
		return kiln_error_set(KILN_EINVAL, "detached commit: target, arch, kernel and launch plan are required");
	if (!(ref = kiln_asprintf("refs/heads/%s/%s", b->target, b->arch)) ||
	    !(msg = kiln_asprintf("%s %s: candidate %lld, promoted without being a new best\n\n"
				  "Kiln-Candidate: %lld\nKiln-Run: %lld\n", b->target, b->arch,
				  (long long)b->candidate_id, (long long)b->candidate_id, (long long)b->run_id))) {
		e = KILN_ENOMEM;
		goto done;
	}
	if ((e = open_repo(&repo, archive_dir)) || (e = write_tree(&tree, repo, b)))
		goto done;
	if (git_reference_name_to_id(&oid, repo, ref) == 0 && (rc = git_commit_lookup(&parent, repo, &oid)) < 0) {
		e = fail_git(rc, "reading", ref);
		goto done;
	}
	if ((rc = git_signature_now(&sig, "kiln", "kiln@localhost")) < 0) {
		e = fail_git(rc, "signing a commit in", archive_dir);
		goto done;
	}
	const git_commit *parents[1] = {parent};
	if ((rc = git_commit_create(&oid, repo, NULL, sig, sig, "UTF-8", msg, tree, parent ? 1 : 0, parents)) < 0) {
		e = fail_git(rc, "committing in", archive_dir);
		goto done;
	}
	git_oid_tostr(out_oid, 41, &oid);
done:
	git_signature_free(sig);
	git_commit_free(parent);
	git_tree_free(tree);
	close_repo(repo);
	free(ref);
	free(msg);
	return e;
}

/* ---- launch expressions -> C ---- */

typedef struct xlate {
	const char *s;   /* the expression */
	size_t pos;
	const char *prefix;
	const char *(*map)(void *, const char *);
	void *ctx;
	kiln_buf out;
	int depth;
} xlate;

static void skip_ws(xlate *x)
{
	while (isspace((unsigned char)x->s[x->pos]))
		x->pos++;
}

static kiln_err bad(xlate *x, const char *what)
{
	return kiln_error_set(KILN_EINVAL, "launch expression '%s': %s at offset %zu", x->s, what, x->pos);
}

static kiln_err sum(xlate *x);

/* A call's arguments after '(': each becomes its own parenthesized C text. */
static kiln_err call_args(xlate *x, char ***args, size_t *n)
{
	kiln_err e = KILN_OK;
	*args = NULL;
	*n = 0;
	for (;;) {
		kiln_buf saved = x->out;
		kiln_buf_init(&x->out, 0);
		e = sum(x);
		char *a = e ? NULL : kiln_buf_detach(&x->out);
		kiln_buf_free(&x->out);
		x->out = saved;
		char **na = e ? NULL : kiln_realloc(*args, (*n + 1) * sizeof(char *));
		if (!na) {
			free(a);
			return e ? e : KILN_ENOMEM;
		}
		*args = na;
		(*args)[(*n)++] = a;
		skip_ws(x);
		if (x->s[x->pos] == ',') {
			x->pos++;
			continue;
		}
		if (x->s[x->pos] != ')')
			return bad(x, "expected ',' or ')'");
		x->pos++;
		return KILN_OK;
	}
}

/* ceil_div(a, b) or min/max(a, b, ...) folded into nested two-argument calls. */
static kiln_err call(xlate *x, const char *fn, size_t len)
{
	char **args = NULL;
	size_t n = 0;
	bool is_ceil = len == 8 && strncmp(fn, "ceil_div", 8) == 0;
	bool is_minmax = len == 3 && (strncmp(fn, "min", 3) == 0 || strncmp(fn, "max", 3) == 0);
	if (!is_ceil && !is_minmax)
		return bad(x, "unknown function");
	kiln_err e = call_args(x, &args, &n);
	if (!e && ((is_ceil && n != 2) || (is_minmax && n < 2)))
		e = bad(x, is_ceil ? "ceil_div takes two arguments" : "min/max take two or more arguments");
	/* f(f(a, b), c): open n-1 calls, then close one after each argument past the first */
	for (size_t i = 0; !e && i + 1 < n; i++)
		e = kiln_buf_printf(&x->out, "%s%.*s(", x->prefix, (int)len, fn);
	for (size_t i = 0; !e && i < n; i++)
		e = kiln_buf_printf(&x->out, i == 0 ? "%s" : ", %s)", args[i]);
	for (size_t i = 0; i < n; i++)
		free(args[i]);
	free(args);
	return e;
}

static kiln_err primary(xlate *x)
{
	skip_ws(x);
	const char *p = x->s + x->pos;
	if (++x->depth > 64)
		return bad(x, "nested too deeply");
	kiln_err e;
	if (*p == '(') {
		x->pos++;
		if ((e = kiln_buf_puts(&x->out, "(")) || (e = sum(x)))
			return e;
		skip_ws(x);
		if (x->s[x->pos] != ')')
			return bad(x, "expected ')'");
		x->pos++;
		e = kiln_buf_puts(&x->out, ")");
	} else if (*p == '-') {
		x->pos++;
		if ((e = kiln_buf_puts(&x->out, "(-")) || (e = primary(x)))
			return e;
		e = kiln_buf_puts(&x->out, ")");
	} else if (isdigit((unsigned char)*p)) {
		size_t n = strspn(p, "0123456789");
		x->pos += n;
		e = kiln_buf_printf(&x->out, "%.*sLL", (int)n, p);
	} else if (isalpha((unsigned char)*p) || *p == '_') {
		size_t n = 1;
		while (isalnum((unsigned char)p[n]) || p[n] == '_')
			n++;
		x->pos += n;
		skip_ws(x);
		if (x->s[x->pos] == '(') {
			x->pos++;
			e = call(x, p, n);
		} else {
			char *name = kiln_strndup(p, n);
			const char *c = name ? x->map(x->ctx, name) : NULL;
			e = !name ? KILN_ENOMEM
				  : c ? kiln_buf_printf(&x->out, "(long long)(%s)", c)
				      : kiln_error_set(KILN_EINVAL, "launch expression '%s': unknown name '%s'", x->s, name);
			free(name);
		}
	} else {
		e = bad(x, "expected a number, a name or '('");
	}
	x->depth--;
	return e;
}

static kiln_err product(xlate *x)
{
	kiln_err e = primary(x);
	for (skip_ws(x); !e && strchr("*/%", x->s[x->pos]) && x->s[x->pos]; skip_ws(x)) {
		if (!(e = kiln_buf_printf(&x->out, " %c ", x->s[x->pos++])))
			e = primary(x);
	}
	return e;
}

static kiln_err sum(xlate *x)
{
	kiln_err e = product(x);
	for (skip_ws(x); !e && (x->s[x->pos] == '+' || x->s[x->pos] == '-'); skip_ws(x)) {
		if (!(e = kiln_buf_printf(&x->out, " %c ", x->s[x->pos++])))
			e = product(x);
	}
	return e;
}

kiln_err kiln_promote_c_expr(char **out, const char *expr, const char *prefix,
			     const char *(*map)(void *ctx, const char *name), void *ctx)
{
	xlate x = {expr, 0, prefix ? prefix : "", map, ctx, KILN_BUF_INIT, 0};
	*out = NULL;
	kiln_err e = sum(&x);
	skip_ws(&x);
	if (!e && x.s[x.pos])
		e = bad(&x, "trailing text");
	if (!e && x.out.len == 0)
		e = bad(&x, "empty expression");
	if (e) {
		kiln_buf_free(&x.out);
		return e;
	}
	*out = kiln_buf_detach(&x.out);
	return KILN_OK;
}
