/* External references written in C (a target folder's reference.c against the public
 * kiln/reference.h): compiled with $CC (else cc) into a shared object cached by the
 * content of the source, the header, the shim and the compiler's version, loaded once
 * per process with dlopen and run in a forked child with a deadline, on buffers in a
 * shared mapping. A crash, a hang or an exit() in the reference is an error naming the
 * target; kiln itself never runs the user's code in its own process past dlopen. */
#include "targets/targets_int.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LOG_MAX (64u << 10)
#define SRC_MAX (4u << 20)
#define FAIL_MAX 512
#define LOADED_MAX 32

/* The table the shim's accessors call through (ABI 1); the shim is compiled into every
 * reference's shared object so that kiln need not export its symbols. */
typedef struct ref_api {
	int abi;
	double *(*buf)(kiln_ref_io *, const char *);
	double *(*slack)(kiln_ref_io *, const char *);
	size_t (*count)(const kiln_ref_io *, const char *);
	double (*scalar)(const kiln_ref_io *, const char *);
	int64_t (*symbol)(const kiln_ref_io *, const char *);
	void (*fail)(kiln_ref_io *, const char *);
} ref_api;

static const char shim_src[] =
	"/* kiln's accessor shim for reference.c (generated; ABI 1) */\n"
	"#include \"kiln/reference.h\"\n"
	"#include <stdarg.h>\n#include <stdio.h>\n"
	"struct kiln_ref_api_ { int abi; double *(*buf)(kiln_ref_io *, const char *);\n"
	"  double *(*slack)(kiln_ref_io *, const char *); size_t (*count)(const kiln_ref_io *, const char *);\n"
	"  double (*scalar)(const kiln_ref_io *, const char *); int64_t (*symbol)(const kiln_ref_io *, const char *);\n"
	"  void (*fail)(kiln_ref_io *, const char *); };\n"
	"static const struct kiln_ref_api_ *api_;\n"
	"int kiln_ref_bind_(const struct kiln_ref_api_ *a) { api_ = a; return KILN_REF_ABI; }\n"
	"double *kiln_ref_buf(kiln_ref_io *io, const char *n) { return api_->buf(io, n); }\n"
	"double *kiln_ref_slack(kiln_ref_io *io, const char *n) { return api_->slack(io, n); }\n"
	"size_t kiln_ref_count(const kiln_ref_io *io, const char *n) { return api_->count(io, n); }\n"
	"double kiln_ref_scalar(const kiln_ref_io *io, const char *n) { return api_->scalar(io, n); }\n"
	"int64_t kiln_ref_symbol(const kiln_ref_io *io, const char *n) { return api_->symbol(io, n); }\n"
	"int kiln_ref_fail(kiln_ref_io *io, const char *fmt, ...)\n"
	"{ char m[512]; va_list ap; va_start(ap, fmt); vsnprintf(m, sizeof m, fmt, ap); va_end(ap);\n"
	"  api_->fail(io, m); return -1; }\n";

static void api_fail(kiln_ref_io *io, const char *msg)
{
	if (io && io->fail_msg && !io->fail_msg[0])
		snprintf(io->fail_msg, FAIL_MAX, "%s", msg ? msg : "");
}

static const ref_api api = {1, kiln_ref_buf, kiln_ref_slack, kiln_ref_count, kiln_ref_scalar, kiln_ref_symbol,
			    api_fail};

typedef int (*ref_entry)(kiln_ref_io *);
typedef int (*ref_bind)(const ref_api *);

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t build_mu = PTHREAD_MUTEX_INITIALIZER; /* one compile at a time per process */
static struct {
	char key[65];
	ref_entry fn;
} loaded[LOADED_MAX];
static size_t nloaded;
static char *cache_override;

void kiln_reference_cache_set(const char *dir)
{
	pthread_mutex_lock(&mu);
	free(cache_override);
	cache_override = dir ? kiln_strdup(dir) : NULL;
	pthread_mutex_unlock(&mu);
}

/* <cache>/references: the override, $KILN_REF_CACHE, $XDG_CACHE_HOME/kiln, ~/.cache/kiln,
 * or /tmp/kiln-cache-UID. Caller frees. */
static char *cache_dir(void)
{
	const char *env;
	pthread_mutex_lock(&mu);
	char *o = cache_override ? kiln_strdup(cache_override) : NULL;
	pthread_mutex_unlock(&mu);
	if (o)
		return o;
	if ((env = getenv("KILN_REF_CACHE")) && *env)
		return kiln_strdup(env);
	if ((env = getenv("XDG_CACHE_HOME")) && *env)
		return kiln_asprintf("%s/kiln/references", env);
	if ((env = getenv("HOME")) && *env)
		return kiln_asprintf("%s/.cache/kiln/references", env);
	return kiln_asprintf("/tmp/kiln-cache-%u/references", (unsigned)getuid());
}

double kiln_reference_timeout_s(void)
{
	const char *env = getenv("KILN_REF_TIMEOUT");
	char *end = NULL;
	double v = env && *env ? strtod(env, &end) : 0;
	return end && !*end && v > 0 && v < 1e6 ? v : 300.0;
}

const char *kiln_reference_include_dir(void)
{
	static char found[4096];
	static bool done;
	pthread_mutex_lock(&mu);
	if (!done) {
		done = true;
		if (!kiln_targets_data_find(found, sizeof found, "include", "include", "kiln/reference.h"))
			found[0] = 0;
	}
	pthread_mutex_unlock(&mu);
	return found[0] ? found : NULL;
}

/* $CC split by the shell, or cc. */
static const char *compiler(void)
{
	const char *cc = getenv("CC");
	return cc && *cc ? cc : "cc";
}

/* Single-quotes s for sh into b. */
static kiln_err sh_quote(kiln_buf *b, const char *s)
{
	kiln_err e = kiln_buf_puts(b, "'");
	for (; !e && *s; s++)
		e = *s == '\'' ? kiln_buf_puts(b, "'\\''") : kiln_buf_append(b, s, 1);
	return e ? e : kiln_buf_puts(b, "'");
}

/* Runs a shell command, its stdout and stderr into *log (caller frees); *status is the
 * exit status (-1 when it could not run). */
static kiln_err run_capture(char **log, int *status, const char *cmd)
{
	kiln_buf b;
	kiln_buf_init(&b, LOG_MAX);
	*log = NULL;
	*status = -1;
	fflush(NULL);
	FILE *p = popen(cmd, "r");
	if (!p)
		return kiln_error_set(KILN_EIO, "cannot run the C compiler: %s", strerror(errno));
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
		if (b.len + n < LOG_MAX)
			(void)kiln_buf_append(&b, chunk, n);
	int st = pclose(p);
	*status = st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	*log = kiln_buf_detach(&b);
	return *log ? KILN_OK : kiln_error_set(KILN_ENOMEM, "out of memory");
}

/* The compiler's `--version` first line, once per process (what the cache key holds). */
static kiln_err compiler_version(char *out, size_t cap)
{
	static char ver[256];
	static char for_cc[256];
	kiln_err e = KILN_OK;
	pthread_mutex_lock(&mu);
	if (strcmp(for_cc, compiler()) != 0 || !ver[0]) {
		char *cmd = kiln_asprintf("%s --version 2>&1", compiler()), *log = NULL;
		int st;
		if (!cmd)
			e = kiln_error_set(KILN_ENOMEM, "out of memory");
		else if (!(e = run_capture(&log, &st, cmd)) && st != 0)
			e = kiln_error_set(KILN_ENOTFOUND, "the C compiler \"%s\" ($CC, else cc) does not run (`%s --version` "
					   "exit %d): install a C compiler (apt-get install gcc) or set CC",
					   compiler(), compiler(), st);
		if (!e) {
			size_t n = strcspn(log, "\n");
			snprintf(ver, sizeof ver, "%.*s", (int)(n < sizeof ver - 1 ? n : sizeof ver - 1), log);
			snprintf(for_cc, sizeof for_cc, "%s", compiler());
		}
		free(cmd);
		free(log);
	}
	if (!e)
		snprintf(out, cap, "%s", ver);
	pthread_mutex_unlock(&mu);
	return e;
}

/* The first line of the log that says "error" (else its first line), for the one-line
 * error. */
static void first_error(char *out, size_t cap, const char *log)
{
	const char *p = strstr(log, "error");
	if (p)
		while (p > log && p[-1] != '\n')
			p--;
	else
		p = log;
	size_t n = strcspn(p, "\n");
	snprintf(out, cap, "%.*s", (int)(n < cap - 1 ? n : cap - 1), p);
}

/* Compiles ref (its text src) into so_path. */
static kiln_err compile_so(const kiln_target *t, const char *dir, const char *so_path, const char *inc)
{
	kiln_buf cmd;
	char *shim = kiln_path_join(dir, "kiln_ref_shim.c"), *tmp = kiln_asprintf("%s.tmp%ld", so_path, (long)getpid());
	char *log = NULL, *log_path = kiln_asprintf("%s.log", so_path);
	int st;
	kiln_err e = KILN_ENOMEM;
	kiln_buf_init(&cmd, 1u << 16);
	if (!shim || !tmp || !log_path)
		goto done;
	if ((e = kiln_file_write_atomic(shim, shim_src, sizeof shim_src - 1)))
		goto done;
	if ((e = kiln_buf_printf(&cmd, "%s -std=c11 -O2 -fPIC -shared -ffp-contract=off -I", compiler())) ||
	    (e = sh_quote(&cmd, inc)) || (e = kiln_buf_puts(&cmd, " -o ")) || (e = sh_quote(&cmd, tmp)) ||
	    (e = kiln_buf_puts(&cmd, " ")) || (e = sh_quote(&cmd, t->ref_path)) || (e = kiln_buf_puts(&cmd, " ")) ||
	    (e = sh_quote(&cmd, shim)) || (e = kiln_buf_puts(&cmd, " -lm 2>&1")))
		goto done;
	if ((e = run_capture(&log, &st, cmd.data)))
		goto done;
	(void)kiln_file_write_atomic(log_path, log, strlen(log));
	if (st != 0) {
		char first[400];
		first_error(first, sizeof first, log);
		e = kiln_error_set(KILN_EINVAL, "target %s: %s does not compile with %s (exit %d): %s (the whole log: %s)",
				   t->name, t->ref_path, compiler(), st, first, log_path);
		unlink(tmp);
		goto done;
	}
	if (rename(tmp, so_path) != 0) {
		e = kiln_error_set(KILN_EIO, "%s: cannot store the compiled reference: %s", so_path, strerror(errno));
		unlink(tmp);
	}
done:
	if (e == KILN_ENOMEM)
		kiln_error_set(KILN_ENOMEM, "out of memory compiling %s", t->ref_path);
	kiln_buf_free(&cmd);
	free(shim);
	free(tmp);
	free(log);
	free(log_path);
	return e;
}

/* The cache key: the source, the header, the shim, the compiler and its version. */
static kiln_err ref_key(char out[65], const kiln_target *t, const char *inc)
{
	char *src = NULL, *hdr = NULL, *hpath = kiln_path_join(inc, "kiln/reference.h"), ver[256];
	size_t sn = 0, hn = 0;
	kiln_err e;
	if (!hpath)
		return kiln_error_set(KILN_ENOMEM, "out of memory");
	if (!(e = kiln_file_read(&src, &sn, t->ref_path, SRC_MAX)) && !(e = kiln_file_read(&hdr, &hn, hpath, SRC_MAX)) &&
	    !(e = compiler_version(ver, sizeof ver))) {
		kiln_sha256 s;
		uint8_t d[32];
		kiln_sha256_init(&s);
		const char *parts[] = {src, hdr, shim_src, compiler(), ver};
		size_t lens[] = {sn, hn, sizeof shim_src - 1, strlen(compiler()), strlen(ver)};
		for (size_t i = 0; i < 5; i++) {
			uint64_t n = lens[i];
			kiln_sha256_update(&s, &n, sizeof n);
			kiln_sha256_update(&s, parts[i], lens[i]);
		}
		kiln_sha256_final(&s, d);
		kiln_hex(out, d, 32);
	}
	free(src);
	free(hdr);
	free(hpath);
	return e;
}

/* The entry point of t's reference.c: from this process's table, else the cache, else
 * compiled now. */
static kiln_err load_entry(ref_entry *out, const kiln_target *t)
{
	const char *inc = kiln_reference_include_dir();
	char key[65], *dir = NULL, *so = NULL;
	kiln_err e;
	if (!inc)
		return kiln_error_set(KILN_ENOTFOUND, "target %s: kiln/reference.h is not installed next to kiln "
				      "(looked in ../include of the binary and the source tree)", t->name);
	if ((e = ref_key(key, t, inc)))
		return e;
	pthread_mutex_lock(&build_mu);
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < nloaded; i++)
		if (strcmp(loaded[i].key, key) == 0) {
			*out = loaded[i].fn;
			pthread_mutex_unlock(&mu);
			pthread_mutex_unlock(&build_mu);
			return KILN_OK;
		}
	pthread_mutex_unlock(&mu);
	e = KILN_ENOMEM;
	if (!(dir = cache_dir()) || !(so = kiln_asprintf("%s/%s.so", dir, key)))
		goto done;
	if ((e = kiln_mkdir_p(dir)))
		goto done;
	if (!kiln_path_exists(so) && (e = compile_so(t, dir, so, inc)))
		goto done;
	void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		e = kiln_error_set(KILN_EINVAL, "target %s: cannot load the compiled %s: %s", t->name, t->ref_path, dlerror());
		goto done;
	}
	ref_bind bind = (ref_bind)(uintptr_t)dlsym(h, "kiln_ref_bind_");
	ref_entry fn = (ref_entry)(uintptr_t)dlsym(h, "kiln_reference");
	if (!fn || !bind) {
		e = kiln_error_set(KILN_EINVAL, "target %s: %s defines no function `int kiln_reference(kiln_ref_io *io)`",
				   t->name, t->ref_path);
		dlclose(h);
		goto done;
	}
	if (bind(&api) != 1) {
		e = kiln_error_set(KILN_EINVAL, "target %s: %s was built against another kiln/reference.h ABI", t->name,
				   t->ref_path);
		dlclose(h);
		goto done;
	}
	pthread_mutex_lock(&mu);
	if (nloaded < LOADED_MAX) {
		snprintf(loaded[nloaded].key, sizeof loaded[nloaded].key, "%s", key);
		loaded[nloaded++].fn = fn;
	}
	pthread_mutex_unlock(&mu);
	*out = fn;
	e = KILN_OK;
done:
	if (e == KILN_ENOMEM)
		kiln_error_set(KILN_ENOMEM, "out of memory loading %s", t->ref_path);
	pthread_mutex_unlock(&build_mu);
	free(dir);
	free(so);
	return e;
}

static const char *signal_name(int sig)
{
	switch (sig) {
	case SIGSEGV: return "SIGSEGV, a bad memory access";
	case SIGBUS: return "SIGBUS, a bad memory access";
	case SIGFPE: return "SIGFPE, an integer division by zero";
	case SIGABRT: return "SIGABRT, abort() or a failed assert";
	case SIGILL: return "SIGILL";
	case SIGKILL: return "SIGKILL, out of memory?";
	default: return "a signal";
	}
}

kiln_err kiln_extref_wait(int *status, pid_t pid, bool group, const kiln_target *t, const char *what)
{
	double timeout = kiln_reference_timeout_s(), end = kiln_now_s() + timeout, nap = 0.0005;
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			return kiln_error_set(KILN_EIO, "target %s: lost the %s process: %s", t->name, what, strerror(errno));
		}
		if (kiln_now_s() > end) {
			kill(group ? -pid : pid, SIGKILL);
			kill(pid, SIGKILL);
			while (waitpid(pid, status, 0) < 0 && errno == EINTR)
				;
			return kiln_error_set(KILN_ETIMEOUT, "target %s: the reference %s did not finish within %.3g s and was "
					      "stopped (a hang or an endless loop? $KILN_REF_TIMEOUT sets the deadline)",
					      t->name, what, timeout);
		}
		struct timespec ts = {0, (long)(nap * 1e9)};
		nanosleep(&ts, NULL);
		if (nap < 0.02)
			nap *= 2;
	}
	if (WIFSIGNALED(*status))
		return kiln_error_set(KILN_EFAULT, "target %s: the reference %s crashed (signal %d, %s)", t->name, what,
				      WTERMSIG(*status), signal_name(WTERMSIG(*status)));
	return KILN_OK;
}

/* The shared mapping a child computes in: a header, then every buffer and slack array. */
typedef struct shared_hdr {
	volatile int done; /* 1 once kiln_reference returned */
	volatile int rc;
	char fail[FAIL_MAX];
} shared_hdr;

kiln_err kiln_extref_run_c(const kiln_target *t, kiln_ref_io *io)
{
	ref_entry fn = NULL;
	kiln_err e;
	if ((e = load_entry(&fn, t)))
		return e;
	size_t total = sizeof(shared_hdr), n = io->n;
	for (size_t i = 0; i < n; i++)
		total += (io->count[i] ? io->count[i] : 1) * sizeof(double) * (io->slack[i] ? 2 : 1);
	void *map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	double **bufs = kiln_calloc(n ? n : 1, sizeof(double *)), **slack = kiln_calloc(n ? n : 1, sizeof(double *));
	if (map == MAP_FAILED || !bufs || !slack) {
		e = kiln_error_set(KILN_ENOMEM, "target %s: out of memory for the reference's shared arrays", t->name);
		goto done;
	}
	shared_hdr *hdr = map;
	double *p = (double *)((char *)map + ((sizeof(shared_hdr) + 15) & ~(size_t)15));
	for (size_t i = 0; i < n; i++) {
		size_t c = io->count[i] ? io->count[i] : 1;
		bufs[i] = p;
		memcpy(p, io->bufs[i], io->count[i] * sizeof(double));
		p += c;
		if (io->slack[i]) {
			slack[i] = p;
			p += c;
		}
	}
	kiln_ref_io cio = *io;
	cio.bufs = bufs;
	cio.slack = slack;
	cio.fail_msg = hdr->fail;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		e = kiln_error_set(KILN_EIO, "target %s: cannot fork for the reference: %s", t->name, strerror(errno));
		goto done;
	}
	if (pid == 0) {
		/* the default dispositions: a crash must kill the child, not reach a handler of the
		 * parent's (a test framework's, a sanitizer's) in a copy of the parent */
		static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTERM, SIGINT, SIGALRM};
		for (size_t i = 0; i < KILN_ARRAY_LEN(sigs); i++)
			signal(sigs[i], SIG_DFL);
		dup2(2, 1); /* what the reference prints must not mix with kiln's --json */
		hdr->rc = fn(&cio);
		hdr->done = 1;
		_exit(0);
	}
	int st = 0;
	if ((e = kiln_extref_wait(&st, pid, false, t, "reference.c")))
		goto done;
	if (!hdr->done) {
		e = kiln_error_set(KILN_EINVAL, "target %s: reference.c exited (status %d) before kiln_reference returned",
				   t->name, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		goto done;
	}
	if (hdr->rc != 0) {
		e = kiln_error_set(KILN_EINVAL, "target %s: reference.c failed (returned %d): %s", t->name, hdr->rc,
				   hdr->fail[0] ? hdr->fail : "it gave no reason (call kiln_ref_fail)");
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		memcpy(io->bufs[i], bufs[i], io->count[i] * sizeof(double));
		if (io->slack[i])
			memcpy(io->slack[i], slack[i], io->count[i] * sizeof(double));
	}
done:
	if (map != MAP_FAILED)
		munmap(map, total);
	free(bufs);
	free(slack);
	return e;
}
