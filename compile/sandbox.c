/* compile: NVRTC and nvJitLink run in a forked child, so model-written source never meets
 * kiln's own process state: the child's environment is emptied (also the bytes
 * /proc/self/environ shows), its working directory is a fresh empty temporary one, it
 * holds no descriptor of kiln's but its answer pipe, and it runs under a deadline
 * (--compile-timeout) and memory, CPU and file-size limits. A compile that times out, is
 * killed or runs out of memory is that source's failed compile, never kiln's error. */
#include "compile/compile_int.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define ANSWER_MAX ((size_t)1 << 30)   /* PTX + cubin + logs of one compile, bytes */
#define CHILD_FILE_MAX ((int64_t)1 << 28) /* RLIMIT_FSIZE in the child, bytes */

typedef struct answer_head {
	int32_t err;       /* kiln_err of kiln_compile_fresh */
	uint8_t ok;
	uint32_t nvrtc, jitlink; /* calls made, for kiln_compile_stats */
} answer_head;

/* ---- the child ---- */

static void write_all(int fd, const void *p, size_t n)
{
	const char *b = p;
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(3);
		b += w;
		n -= (size_t)w;
	}
}

static void write_part(int fd, const void *p, size_t n, bool present)
{
	uint64_t len = present ? n : UINT64_MAX;
	write_all(fd, &len, sizeof len);
	if (present)
		write_all(fd, p, n);
}

static void write_str(int fd, const char *s)
{
	write_part(fd, s, s ? strlen(s) : 0, s != NULL);
}

/* Zeroes the environment block the kernel shows as /proc/self/environ (clearenv only
 * drops the pointers), then leaves only what the toolkit needs. */
static void scrub_environment(const char *tmp)
{
	char stat[4096];
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, stat, sizeof stat - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n > 0) {
		stat[n] = '\0';
		char *p = strrchr(stat, ')');
		unsigned long long v[52] = {0};
		for (int field = 3; p && field <= 51; field++) {
			p = strchr(p + 1, ' ');
			if (p)
				v[field] = strtoull(p + 1, NULL, 10);
		}
		if (v[50] && v[51] > v[50] && v[51] - v[50] < (1u << 24))
			memset((void *)(uintptr_t)v[50], 0, (size_t)(v[51] - v[50]));
	}
	clearenv();
	setenv("PATH", "/usr/bin:/bin", 1);
	setenv("HOME", tmp, 1);
	setenv("TMPDIR", tmp, 1);
	setenv("LC_ALL", "C", 1);
}

static void child_main(int fd, kiln_compiled *c, const kiln_compile_options *o, const char *arch,
		       const char *name, const char *tmp)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	static const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTERM, SIGXCPU, SIGXFSZ};
	for (size_t i = 0; i < KILN_ARRAY_LEN(fatal); i++)
		signal(fatal[i], SIG_DFL);
	signal(SIGINT, SIG_IGN); /* the parent decides what Ctrl-C means */
	int null = open("/dev/null", O_RDWR);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0 || dup2(fd, 3) < 0)
		_exit(4);
	close_range(4, ~0u, 0); /* the database, the lock, sockets: none of them */
	if (chdir(tmp) != 0)
		_exit(5);
	scrub_environment(tmp);
	const kiln_limits *l = kiln_limits_get();
	kiln_limits_apply_child(l->compile_timeout_s, kiln_limits_memory(), CHILD_FILE_MAX);
	kiln_compile_stats before, after;
	kiln_compile_stats_get(&before);
	kiln_err e = kiln_compile_fresh(c, o, arch, name);
	kiln_compile_stats_get(&after);
	answer_head h = {e, c->ok, (uint32_t)(after.nvrtc_calls - before.nvrtc_calls),
			 (uint32_t)(after.jitlink_calls - before.jitlink_calls)};
	write_all(3, &h, sizeof h);
	write_str(3, e ? kiln_error_last() : NULL);
	write_str(3, c->log);
	write_str(3, c->info_log);
	write_part(3, c->ptx, c->ptx_len, c->ptx != NULL);
	write_part(3, c->cubin, c->cubin_len, c->cubin != NULL);
	_exit(0);
}

/* ---- the parent ---- */

typedef struct reader {
	int fd;
	double deadline;
	size_t total;
	int state; /* 0 ok, 1 timed out, 2 ended early, 3 too large, 4 I/O error */
} reader;

static bool read_exact(reader *r, void *p, size_t n)
{
	char *b = p;
	while (n && !r->state) {
		double left = r->deadline - kiln_now_s();
		if (left <= 0) {
			r->state = 1;
			break;
		}
		struct pollfd pf = {r->fd, POLLIN, 0};
		int pr = poll(&pf, 1, (int)((left < 0.25 ? left : 0.25) * 1000) + 1);
		if (pr < 0 && errno != EINTR)
			r->state = 4;
		if (pr <= 0)
			continue;
		ssize_t got = read(r->fd, b, n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			r->state = got == 0 ? 2 : 4;
			break;
		}
		b += got;
		n -= (size_t)got;
	}
	return r->state == 0;
}

/* One part: *out NULL when absent; the answer as a whole is capped. */
static bool read_part(reader *r, char **out, size_t *len)
{
	uint64_t n;
	*out = NULL;
	if (len)
		*len = 0;
	if (!read_exact(r, &n, sizeof n))
		return false;
	if (n == UINT64_MAX)
		return true;
	if (n > ANSWER_MAX - r->total) {
		r->state = 3;
		return false;
	}
	r->total += n;
	if (!(*out = kiln_malloc(n + 1))) {
		r->state = 4;
		return false;
	}
	if (!read_exact(r, *out, n))
		return false;
	(*out)[n] = '\0';
	if (len)
		*len = n;
	return true;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* A failed compile the candidate caused (deadline, memory, a crash inside NVRTC). */
static kiln_err fail_compile(kiln_compiled *c, bool *no_cache, const char *name, const char *why)
{
	free(c->log);
	c->ok = false;
	*no_cache = true; /* a machine under load may finish next time */
	c->log = kiln_asprintf("%s: refused: %s\n", name, why);
	return c->log ? KILN_OK : KILN_ENOMEM;
}

static kiln_err take_answer(kiln_compiled *c, reader *r, const char *name, bool *no_cache)
{
	answer_head h;
	char *msg = NULL, *log = NULL, *info = NULL, *ptx = NULL, *cubin = NULL;
	size_t ptx_len = 0, cubin_len = 0;
	kiln_err e = KILN_OK;
	if (!read_exact(r, &h, sizeof h) || !read_part(r, &msg, NULL) || !read_part(r, &log, NULL) ||
	    !read_part(r, &info, NULL) || !read_part(r, &ptx, &ptx_len) || !read_part(r, &cubin, &cubin_len))
		goto done;
	kiln_compile_count_calls(h.nvrtc, h.jitlink);
	if (h.err == KILN_ENOMEM) {
		char why[160];
		snprintf(why, sizeof why, "NVRTC ran out of memory under the limit of %lld MiB (--max-memory)",
			 (long long)(kiln_limits_memory() >> 20));
		e = fail_compile(c, no_cache, name, why);
		goto done;
	}
	if (h.err) {
		e = kiln_error_set(h.err, "%s", msg ? msg : "the compile child failed");
		goto done;
	}
	free(c->log);
	free(c->info_log);
	c->log = kiln_text_cap(log ? log : kiln_strdup(""), KILN_LOG_MAX);
	c->info_log = info ? info : kiln_strdup("");
	log = info = NULL;
	c->ok = h.ok;
	c->ptx = ptx;
	c->ptx_len = ptx_len;
	c->cubin = (uint8_t *)cubin;
	c->cubin_len = cubin_len;
	ptx = cubin = NULL;
	if (!c->log || !c->info_log)
		e = KILN_ENOMEM;
	else if (c->ok && c->ptx && !(e = kiln_compile_parse_entries(c)) && c->cubin)
		kiln_compile_parse_info_log(c, c->info_log);
done:
	free(msg);
	free(log);
	free(info);
	free(ptx);
	free(cubin);
	return e;
}

kiln_err kiln_compile_isolated(kiln_compiled *c, const kiln_compile_options *o, const char *arch,
			       const char *name, bool *no_cache)
{
	*no_cache = false;
	const char *base = getenv("TMPDIR");
	char *tmp = kiln_asprintf("%s/kiln-nvrtc-XXXXXX", base && *base == '/' ? base : "/tmp");
	int fds[2] = {-1, -1};
	kiln_err e = KILN_OK;
	if (!tmp)
		return KILN_ENOMEM;
	if (!mkdtemp(tmp)) {
		e = kiln_error_set(KILN_EIO, "creating a directory for the compile in %s: %s", base ? base : "/tmp",
				   strerror(errno));
		free(tmp);
		return e;
	}
	if (pipe2(fds, O_CLOEXEC) != 0) {
		e = kiln_error_set(KILN_EIO, "pipe: %s", strerror(errno));
		goto done;
	}
	double timeout = kiln_limits_get()->compile_timeout_s;
	double start = kiln_now_s();
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		e = kiln_error_set(KILN_EIO, "fork: %s", strerror(errno));
		goto done;
	}
	if (pid == 0)
		child_main(fds[1], c, o, arch, name, tmp);
	close(fds[1]);
	fds[1] = -1;
	reader r = {fds[0], start + timeout, 0, 0};
	e = take_answer(c, &r, name, no_cache);
	if (r.state)
		kill(pid, SIGKILL);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (e || !r.state)
		goto done;
	char why[200];
	if (r.state == 1)
		snprintf(why, sizeof why, "NVRTC did not finish within %.0f s (--compile-timeout); killed", timeout);
	else if (r.state == 3)
		snprintf(why, sizeof why, "the compile's output is over %zu MiB", ANSWER_MAX >> 20);
	else if (WIFSIGNALED(status))
		snprintf(why, sizeof why, "NVRTC was killed by signal %d (%s): memory limit %lld MiB (--max-memory) or a crash",
			 WTERMSIG(status), strsignal(WTERMSIG(status)), (long long)(kiln_limits_memory() >> 20));
	else
		snprintf(why, sizeof why, "the compile process ended without an answer (exit %d)",
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	e = fail_compile(c, no_cache, name, why);
done:
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	nftw(tmp, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(tmp);
	return e;
}
