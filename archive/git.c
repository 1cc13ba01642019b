/* archive: the git archive through libgit2 (never the git CLI). A bare repository; each
 * new best is a commit of kernel.cu, launch.json and result.json on refs/heads/<target>/
 * <arch> whose parent is the branch tip (libgit2 refuses the update if the tip moved),
 * with Kiln-Candidate / Kiln-Run trailers that tie it to history.db. libgit2 errors are
 * translated once, in git_fail, keeping git_error_last()'s message. */
#include "archive/archive_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <errno.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <git2.h>

struct kiln_git {
	git_repository *repo;
	char *dir;
};

static const char *const best_files[] = {"kernel.cu", "launch.json", "result.json"};

static kiln_err git_fail(int rc, const char *fmt, const char *arg)
{
	const git_error *ge = git_error_last();
	char what[512];
	snprintf(what, sizeof(what), fmt, arg);
	return kiln_error_set(rc == GIT_ENOTFOUND ? KILN_ENOTFOUND : KILN_EGIT, "%s: %s", what,
			      ge && ge->message ? ge->message : "libgit2 error");
}

/* Branch components: letters, digits, '_', '-', '.', not starting with '.' or '-'. */
static kiln_err check_component(const char *s, const char *what)
{
	if (!s || !*s)
		return kiln_error_set(KILN_EINVAL, "git archive: %s is empty", what);
	if (s[0] == '.' || s[0] == '-' || strstr(s, ".."))
		goto bad;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '_' || *p == '-' || *p == '.'))
			goto bad;
	return KILN_OK;
bad:
	return kiln_error_set(KILN_EINVAL, "git archive: %s '%s' cannot be part of a branch name", what, s);
}

/* True when dir holds anything (an existing folder that is not a repository). */
static bool dir_has_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *ent;
	bool any = false;
	if (!d)
		return false;
	while (!any && (ent = readdir(d)))
		any = strcmp(ent->d_name, ".") != 0 && strcmp(ent->d_name, "..") != 0;
	closedir(d);
	return any;
}

/* Loose refs under <dir>/<sub> that do not resolve (libgit2's iterators skip a ref file
 * holding garbage): the first one becomes KILN_ECORRUPT. depth bounds the recursion. */
static kiln_err check_loose_refs(kiln_git *g, const char *sub, int depth)
{
	char *path = kiln_path_join(g->dir, sub);
	DIR *d = path ? opendir(path) : NULL;
	struct dirent *ent;
	struct stat st;
	kiln_err e = path ? KILN_OK : KILN_ENOMEM;
	while (d && !e && (ent = readdir(d))) {
		if (ent->d_name[0] == '.')
			continue;
		char *name = kiln_asprintf("%s/%s", sub, ent->d_name), *full = NULL;
		git_oid oid;
		if (!name || !(full = kiln_path_join(g->dir, name)))
			e = KILN_ENOMEM;
		else if (stat(full, &st) == 0 && S_ISDIR(st.st_mode))
			e = depth > 0 ? check_loose_refs(g, name, depth - 1) : KILN_OK;
		else if (git_reference_name_to_id(&oid, g->repo, name) < 0)
			e = git_fail(GIT_ERROR, "ref %s does not resolve", name);
		free(full);
		free(name);
	}
	if (d)
		closedir(d);
	free(path);
	return e == KILN_EGIT ? KILN_ECORRUPT : e;
}

/* An existing archive must be whole before kiln adds to it: every branch resolves, every
 * commit and the files of each are readable (kiln_git_verify_refs). Damage becomes
 * KILN_ECORRUPT with a recovery hint. */
static kiln_err check_archive(kiln_git *g)
{
	kiln_git_branch *br = NULL;
	size_t n = 0;
	git_reference *head = NULL;
	int rc = git_repository_head(&head, g->repo);
	git_reference_free(head);
	kiln_err e = KILN_OK;
	if (rc < 0 && rc != GIT_EUNBORNBRANCH && rc != GIT_ENOTFOUND) {
		git_fail(rc, "%s: HEAD is unreadable", g->dir);
		e = KILN_ECORRUPT; /* the wrap below sets the code with the hint */
	}
	if (!e)
		e = check_loose_refs(g, "refs/heads", 8);
	if (!e) {
		e = kiln_git_verify_refs(g, &br, &n);
		kiln_git_branches_free(br, n);
	}
	if (!e || e == KILN_ENOMEM)
		return e;
	return kiln_error_wrap(KILN_ECORRUPT, "the git archive is damaged (history.db still has every "
			       "candidate): try `git -C %s fsck`, or move %s aside and kiln starts a fresh "
			       "archive; details", g->dir, g->dir);
}

/* A fresh archive is made beside dir and renamed into place, so a kill half-way leaves
 * no half-made repository that the next open would refuse as "not empty". */
static kiln_err create_archive(kiln_git *g, const char *dir)
{
	kiln_err e = kiln_mkdir_p(dir); /* the parent folders; dir itself is replaced */
	char *tmp = e ? NULL : kiln_asprintf("%s.init-XXXXXX", dir);
	if (e || !tmp) {
		free(tmp);
		return e ? e : KILN_ENOMEM;
	}
	if (!mkdtemp(tmp)) {
		e = kiln_error_set(KILN_EIO, "%s: creating the archive beside it: %s", dir, strerror(errno));
		goto done;
	}
	git_repository *r = NULL;
	int rc = git_repository_init(&r, tmp, 1);
	git_repository_free(r);
	if (rc < 0) {
		e = git_fail(rc, "%s: creating the archive", dir);
		goto done;
	}
	if (rename(tmp, dir) != 0) { /* dir is empty (checked), so it is replaced */
		e = kiln_error_set(KILN_EIO, "%s: moving the new archive into place: %s", dir, strerror(errno));
		goto done;
	}
	if ((rc = git_repository_open_ext(&g->repo, dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL)) < 0)
		e = git_fail(rc, "%s: opening the new archive", dir);
done:
	if (e)
		rmdir(tmp); /* best effort: only an empty folder can go */
	free(tmp);
	return e;
}

kiln_err kiln_git_open(kiln_git **out, const char *dir)
{
	*out = NULL;
	kiln_git *g = kiln_calloc(1, sizeof(*g));
	kiln_err e = KILN_OK;
	if (!g)
		return KILN_ENOMEM;
	git_libgit2_init();
	if (!(g->dir = kiln_strdup(dir))) {
		e = KILN_ENOMEM;
		goto done;
	}
	int rc = git_repository_open_ext(&g->repo, dir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
	if (rc == GIT_ENOTFOUND) {
		if (dir_has_entries(dir)) {
			e = kiln_error_set(KILN_ECORRUPT, "%s: not a git repository but not empty either; "
					   "kiln will not create its archive over it: move it aside", dir);
			goto done;
		}
		if ((e = create_archive(g, dir)))
			goto done;
	} else if (rc < 0) {
		e = git_fail(rc, "%s: opening the archive", dir);
		if (e == KILN_EGIT) /* a damaged HEAD, config or objects folder */
			e = kiln_error_wrap(KILN_ECORRUPT, "the git archive cannot be opened: move %s aside "
					    "and kiln starts a fresh one (history.db keeps every candidate); "
					    "details", dir);
		goto done;
	} else {
		e = check_archive(g);
	}
done:
	if (e) {
		kiln_git_close(g);
		return e;
	}
	*out = g;
	return KILN_OK;
}

void kiln_git_close(kiln_git *g)
{
	if (!g)
		return;
	git_repository_free(g->repo);
	free(g->dir);
	free(g);
	git_libgit2_shutdown();
}

static char *branch_ref(const char *target, const char *arch)
{
	return kiln_asprintf("refs/heads/%s/%s", target, arch);
}

kiln_err kiln_git_branch_tip(kiln_git *g, char out_oid[41], const char *target, const char *arch)
{
	kiln_err e;
	git_oid oid;
	if ((e = check_component(target, "target")) || (e = check_component(arch, "arch")))
		return e;
	char *ref = branch_ref(target, arch);
	if (!ref)
		return KILN_ENOMEM;
	int rc = git_reference_name_to_id(&oid, g->repo, ref);
	if (rc == GIT_ENOTFOUND)
		e = kiln_error_set(KILN_ENOTFOUND, "%s: no branch %s/%s yet", g->dir, target, arch);
	else if (rc < 0)
		e = git_fail(rc, "reading %s", ref);
	else
		git_oid_tostr(out_oid, 41, &oid);
	free(ref);
	return e;
}

static char *best_message(const kiln_git_best *b)
{
	kiln_buf m = KILN_BUF_INIT;
	kiln_err e = kiln_buf_printf(&m, "%s %s: ", b->target, b->arch);
	if (!e && isfinite(b->speedup) && b->speedup > 0)
		e = kiln_buf_printf(&m, "%.2fx over seed", b->speedup);
	else if (!e)
		e = kiln_buf_puts(&m, "new best");
	if (!e && isfinite(b->time_us) && b->time_us > 0)
		e = kiln_buf_printf(&m, " (%.1f us, %s)", b->time_us, b->modeled ? "modeled" : "measured");
	if (!e && b->candidate_id > 0)
		e = kiln_buf_printf(&m, " \xe2\x80\x94 candidate %lld", (long long)b->candidate_id);
	if (!e && b->body && b->body[0] && !(e = kiln_buf_puts(&m, "\n\n"))) /* no raw control reaches git log */
		e = kiln_text_escape_to(&m, b->body, strlen(b->body), KILN_TEXT_MULTILINE);
	if (!e && (b->candidate_id > 0 || b->run_id > 0))
		e = kiln_buf_puts(&m, "\n");
	if (!e && b->candidate_id > 0)
		e = kiln_buf_printf(&m, "\nKiln-Candidate: %lld", (long long)b->candidate_id);
	if (!e && b->run_id > 0)
		e = kiln_buf_printf(&m, "\nKiln-Run: %lld", (long long)b->run_id);
	if (!e)
		e = kiln_buf_puts(&m, "\n");
	if (e) {
		kiln_buf_free(&m);
		return NULL;
	}
	return kiln_buf_detach(&m);
}

kiln_err kiln_git_commit_best(kiln_git *g, char out_oid[41], const kiln_git_best *b)
{
	const char *contents[3] = {b->kernel_cu, b->launch_json, b->result_json};
	git_treebuilder *tb = NULL;
	git_tree *tree = NULL;
	git_signature *sig = NULL;
	git_commit *parent = NULL;
	git_oid blob, tree_oid, parent_oid, commit_oid;
	char *ref = NULL, *msg = NULL, *redacted[3] = {NULL, NULL, NULL};
	kiln_err e;
	int rc;
	if ((e = check_component(b->target, "target")) || (e = check_component(b->arch, "arch")))
		return e;
	for (int i = 0; i < 3; i++)
		if (!contents[i])
			return kiln_error_set(KILN_EINVAL, "git archive: %s for %s/%s is missing", best_files[i],
					      b->target, b->arch);
	cJSON *rj = cJSON_Parse(b->result_json);
	bool valid = rj != NULL;
	cJSON_Delete(rj);
	if (!valid)
		return kiln_error_set(KILN_EINVAL, "git archive: result.json for %s/%s is not valid JSON",
				      b->target, b->arch);
	if (!(ref = branch_ref(b->target, b->arch)) || !(msg = kiln_redact(best_message(b)))) {
		e = KILN_ENOMEM;
		goto done;
	}
	for (int i = 0; i < 3; i++) /* a boundary: no secret goes into the archive */
		if ((redacted[i] = kiln_redact_dup(contents[i])))
			contents[i] = redacted[i];
	if ((rc = git_treebuilder_new(&tb, g->repo, NULL)) < 0) {
		e = git_fail(rc, "%s: building a tree", g->dir);
		goto done;
	}
	for (int i = 0; i < 3; i++) {
		if ((rc = git_blob_create_from_buffer(&blob, g->repo, contents[i], strlen(contents[i]))) < 0 ||
		    (rc = git_treebuilder_insert(NULL, tb, best_files[i], &blob, GIT_FILEMODE_BLOB)) < 0) {
			e = git_fail(rc, "writing %s", best_files[i]);
			goto done;
		}
	}
	if ((rc = git_treebuilder_write(&tree_oid, tb)) < 0 || (rc = git_tree_lookup(&tree, g->repo, &tree_oid)) < 0) {
		e = git_fail(rc, "%s: writing the tree", g->dir);
		goto done;
	}
	rc = git_reference_name_to_id(&parent_oid, g->repo, ref);
	if (rc == 0)
		rc = git_commit_lookup(&parent, g->repo, &parent_oid);
	if (rc < 0 && rc != GIT_ENOTFOUND) {
		e = git_fail(rc, "reading %s", ref);
		goto done;
	}
	if ((rc = git_signature_now(&sig, "kiln", "kiln@localhost")) < 0) {
		e = git_fail(rc, "%s", "making the commit signature");
		goto done;
	}
	const git_commit *parents[1] = {parent};
	rc = git_commit_create(&commit_oid, g->repo, ref, sig, sig, "UTF-8", msg, tree, parent ? 1 : 0, parents);
	if (rc < 0) {
		e = git_fail(rc, "committing on %s", ref);
		goto done;
	}
	/* HEAD follows the latest search so a plain `git log` in the archive shows it */
	if ((rc = git_repository_set_head(g->repo, ref)) < 0) {
		e = git_fail(rc, "pointing HEAD at %s", ref);
		goto done;
	}
	git_oid_tostr(out_oid, 41, &commit_oid);
done:
	git_commit_free(parent);
	git_signature_free(sig);
	git_tree_free(tree);
	git_treebuilder_free(tb);
	free(ref);
	free(msg);
	for (int i = 0; i < 3; i++)
		free(redacted[i]);
	return e;
}

kiln_err kiln_git_tag(kiln_git *g, char *out_name, size_t name_size, const char *target,
		      const char *arch, const char *rev, const char *message)
{
	git_strarray tags = {0};
	git_object *obj = NULL, *commit = NULL;
	git_signature *sig = NULL;
	git_oid oid;
	char *pattern = NULL, *name = NULL, *branch = NULL, *safe = NULL;
	kiln_err e;
	int rc;
	if ((e = check_component(target, "target")) || (e = check_component(arch, "arch")))
		return e;
	if (!(pattern = kiln_asprintf("promoted/%s/%s/v*", target, arch)) ||
	    !(branch = branch_ref(target, arch))) {
		e = KILN_ENOMEM;
		goto done;
	}
	if ((rc = git_tag_list_match(&tags, pattern, g->repo)) < 0) {
		e = git_fail(rc, "listing tags %s", pattern);
		goto done;
	}
	long next = 1;
	size_t prefix = strlen(pattern) - 1; /* without the '*' */
	for (size_t i = 0; i < tags.count; i++) {
		char *end = NULL;
		long v = strtol(tags.strings[i] + prefix, &end, 10);
		if (end && *end == '\0' && v >= next)
			next = v + 1;
	}
	if (!(name = kiln_asprintf("promoted/%s/%s/v%ld", target, arch, next))) {
		e = KILN_ENOMEM;
		goto done;
	}
	if ((rc = git_revparse_single(&obj, g->repo, rev ? rev : branch)) < 0) {
		e = git_fail(rc, "resolving %s", rev ? rev : branch);
		goto done;
	}
	if ((rc = git_object_peel(&commit, obj, GIT_OBJECT_COMMIT)) < 0) {
		e = git_fail(rc, "%s is not a commit", rev ? rev : branch);
		goto done;
	}
	if ((rc = git_signature_now(&sig, "kiln", "kiln@localhost")) < 0) {
		e = git_fail(rc, "%s", "making the tag signature");
		goto done;
	}
	if (!(safe = kiln_text_escape(message ? message : name, KILN_TEXT_MULTILINE))) {
		e = KILN_ENOMEM;
		goto done;
	}
	if ((rc = git_tag_create(&oid, g->repo, name, commit, sig, safe, 0)) < 0) {
		e = git_fail(rc, "creating tag %s", name);
		goto done;
	}
	if (strlen(name) + 1 > name_size) {
		e = kiln_error_set(KILN_EINVAL, "tag name %s does not fit the caller's buffer", name);
		goto done;
	}
	memcpy(out_name, name, strlen(name) + 1);
done:
	git_signature_free(sig);
	git_object_free(commit);
	git_object_free(obj);
	git_strarray_dispose(&tags);
	free(pattern);
	free(branch);
	free(safe);
	free(name);
	return e;
}

/* The blob at path in commit; KILN_ENOTFOUND when absent. */
static kiln_err blob_at(git_blob **out, git_repository *repo, const git_commit *commit, const char *path,
			const char *rev)
{
	git_tree *tree = NULL;
	git_tree_entry *entry = NULL;
	kiln_err e = KILN_OK;
	*out = NULL;
	int rc = git_commit_tree(&tree, commit);
	if (rc < 0)
		return git_fail(rc, "reading the tree of %s", rev);
	rc = git_tree_entry_bypath(&entry, tree, path);
	if (rc == GIT_ENOTFOUND)
		e = kiln_error_set(KILN_ENOTFOUND, "%s has no %s", rev, path);
	else if (rc < 0)
		e = git_fail(rc, "reading %s", path);
	else if (git_tree_entry_type(entry) != GIT_OBJECT_BLOB)
		e = kiln_error_set(KILN_EINVAL, "%s: %s is not a file", rev, path);
	else if ((rc = git_blob_lookup(out, repo, git_tree_entry_id(entry))) < 0)
		e = git_fail(rc, "reading %s", path);
	git_tree_entry_free(entry);
	git_tree_free(tree);
	return e;
}

kiln_err kiln_git_read_file(kiln_git *g, char **out, size_t *len, const char *rev, const char *path)
{
	git_object *obj = NULL, *cobj = NULL;
	git_blob *blob = NULL;
	kiln_err e = KILN_OK;
	*out = NULL;
	int rc = git_revparse_single(&obj, g->repo, rev);
	if (rc < 0) {
		e = git_fail(rc, "%s: resolving revision", rev);
		goto done;
	}
	if ((rc = git_object_peel(&cobj, obj, GIT_OBJECT_COMMIT)) < 0) {
		e = git_fail(rc, "%s is not a commit", rev);
		goto done;
	}
	if ((e = blob_at(&blob, g->repo, (git_commit *)cobj, path, rev)))
		goto done;
	size_t n = (size_t)git_blob_rawsize(blob);
	if (!(*out = kiln_malloc(n + 1))) {
		e = KILN_ENOMEM;
		goto done;
	}
	memcpy(*out, git_blob_rawcontent(blob), n);
	(*out)[n] = '\0';
	if (len)
		*len = n;
done:
	git_blob_free(blob);
	git_object_free(cobj);
	git_object_free(obj);
	return e;
}

static int64_t trailer_int(const git_message_trailer_array *t, const char *key)
{
	for (size_t i = 0; i < t->count; i++)
		if (strcmp(t->trailers[i].key, key) == 0)
			return strtoll(t->trailers[i].value, NULL, 10);
	return 0;
}

/* Every commit reachable from oid has the three files and a result.json that parses. */
static kiln_err check_history(kiln_git *g, kiln_git_branch *br, const git_oid *tip)
{
	git_revwalk *walk = NULL;
	git_oid oid;
	kiln_err e = KILN_OK;
	int rc;
	if ((rc = git_revwalk_new(&walk, g->repo)) < 0 || (rc = git_revwalk_push(walk, tip)) < 0)
		return git_fail(rc, "walking %s", br->name);
	while (!e && (rc = git_revwalk_next(&oid, walk)) == 0) {
		git_commit *c = NULL;
		char hex[41];
		git_oid_tostr(hex, sizeof(hex), &oid);
		if ((rc = git_commit_lookup(&c, g->repo, &oid)) < 0) {
			e = kiln_error_set(KILN_ECORRUPT, "%s: branch %s: commit %s is unreadable", g->dir,
					   br->name, hex);
			break;
		}
		br->commits++;
		for (int i = 0; i < 3 && !e; i++) {
			git_blob *blob = NULL;
			if (blob_at(&blob, g->repo, c, best_files[i], hex)) {
				e = kiln_error_set(KILN_ECORRUPT, "%s: branch %s: commit %s has no readable %s",
						   g->dir, br->name, hex, best_files[i]);
			} else if (i == 2) {
				cJSON *j = cJSON_ParseWithLength(git_blob_rawcontent(blob),
								 (size_t)git_blob_rawsize(blob));
				if (!j)
					e = kiln_error_set(KILN_ECORRUPT, "%s: branch %s: commit %s: result.json "
							   "is not valid JSON", g->dir, br->name, hex);
				cJSON_Delete(j);
			}
			git_blob_free(blob);
		}
		git_commit_free(c);
	}
	if (!e && rc != GIT_ITEROVER)
		e = git_fail(rc, "walking %s", br->name);
	git_revwalk_free(walk);
	return e;
}

kiln_err kiln_git_verify_refs(kiln_git *g, kiln_git_branch **out, size_t *n)
{
	git_branch_iterator *it = NULL;
	git_reference *ref = NULL;
	git_branch_t type;
	kiln_git_branch *arr = NULL;
	size_t cnt = 0;
	kiln_err e = KILN_OK;
	*out = NULL;
	*n = 0;
	int rc = git_branch_iterator_new(&it, g->repo, GIT_BRANCH_LOCAL);
	if (rc < 0)
		return git_fail(rc, "%s: listing branches", g->dir);
	while (!e && (rc = git_branch_next(&ref, &type, it)) == 0) {
		const char *name = NULL;
		const git_oid *tip = git_reference_target(ref);
		git_commit *c = NULL;
		kiln_git_branch *na = kiln_realloc(arr, (cnt + 1) * sizeof(*arr));
		if (!na) {
			e = KILN_ENOMEM;
			git_reference_free(ref);
			break;
		}
		arr = na;
		memset(&arr[cnt], 0, sizeof(arr[cnt]));
		if (git_branch_name(&name, ref) < 0 || !tip) {
			e = kiln_error_set(KILN_ECORRUPT, "%s: a branch has no name or target", g->dir);
		} else if (!(arr[cnt].name = kiln_strdup(name))) {
			e = KILN_ENOMEM;
		} else {
			cnt++;
			git_oid_tostr(arr[cnt - 1].oid, 41, tip);
			if (git_commit_lookup(&c, g->repo, tip) < 0) {
				e = kiln_error_set(KILN_ECORRUPT, "%s: branch %s points at a missing commit %s",
						   g->dir, name, arr[cnt - 1].oid);
			} else {
				git_message_trailer_array t = {0};
				if (git_message_trailers(&t, git_commit_message(c)) == 0) {
					arr[cnt - 1].candidate_id = trailer_int(&t, "Kiln-Candidate");
					arr[cnt - 1].run_id = trailer_int(&t, "Kiln-Run");
					git_message_trailer_array_free(&t);
				}
				e = check_history(g, &arr[cnt - 1], tip);
			}
			git_commit_free(c);
		}
		git_reference_free(ref);
	}
	if (!e && rc != GIT_ITEROVER && rc != 0)
		e = git_fail(rc, "%s: listing branches", g->dir);
	git_branch_iterator_free(it);
	if (e) {
		kiln_git_branches_free(arr, cnt);
		return e;
	}
	*out = arr;
	*n = cnt;
	return KILN_OK;
}

void kiln_git_branches_free(kiln_git_branch *b, size_t n)
{
	if (!b)
		return;
	for (size_t i = 0; i < n; i++)
		free(b[i].name);
	free(b);
}
