/* Runs a function in a forked child with a wall-clock deadline and brings back its
 * text result through a pipe. A candidate that hangs, crashes the emulator or poisons a
 * CUDA context costs that child, never the run: the parent sees a timeout or a signal. */
#include "agent/agent.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_FILE_MAX ((int64_t)1 << 30) /* the compile cache is all a child writes */

static volatile sig_atomic_t *stop_flag;
static double stop_grace_s;

void kiln_child_set_stop(volatile sig_atomic_t *flag, double grace_s)
{
	stop_flag = flag;
	stop_grace_s = grace_s;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

static void child_main(int fd, kiln_child_fn fn, void *arg, double timeout_s)
{
	/* Faults must kill the child (the parent reports the signal), whatever handlers the
	 * parent installed; Ctrl-C reaches the whole process group, and the parent decides
	 * whether the candidate in flight may finish, so the child ignores SIGINT. */
	static const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTERM};
	for (size_t i = 0; i < KILN_ARRAY_LEN(fatal); i++)
		signal(fatal[i], SIG_DFL);
	signal(SIGINT, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN); /* a write past the file-size limit fails with EFBIG instead */
	/* model-written code runs here: bounded memory, CPU (threads may share the work)
	 * and file size; a limit hit is that candidate's failure (resource-limit) */
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	kiln_limits_apply_child(timeout_s * (double)(cpus > 0 ? cpus : 1), kiln_limits_memory(), CHILD_FILE_MAX);
	char *text = NULL;
	kiln_err e = fn(&text, arg);
	if (e && !text) {
		cJSON *o = cJSON_CreateObject();
		if (o && cJSON_AddStringToObject(o, "error", kiln_error_last()[0] ? kiln_error_last() : kiln_err_name(e)) &&
		    cJSON_AddNumberToObject(o, "code", e))
			text = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
	}
	if (text)
		write_all(fd, text, strlen(text));
	close(fd);
	_exit(e ? 1 : 0);
}

/* Reads until EOF or the deadline; returns 1 on EOF, 0 on timeout, 2 when the answer is
 * over the cap, <0 on error. */
static int read_until(int fd, kiln_buf *b, double deadline)
{
	char chunk[65536];
	bool stopping = false;
	for (;;) {
		if (!stopping && stop_flag && *stop_flag) {
			stopping = true; /* the user asked to stop: a short grace, then abandon */
			if (deadline > kiln_now_s() + stop_grace_s)
				deadline = kiln_now_s() + stop_grace_s;
		}
		double left = deadline - kiln_now_s();
		if (left <= 0)
			return 0;
		struct pollfd p = {fd, POLLIN, 0};
		int r = poll(&p, 1, (int)((left < 0.25 ? left : 0.25) * 1000) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return kiln_error_set(KILN_EIO, "waiting for the evaluation child: %s", strerror(errno));
		if (r == 0)
			continue;
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kiln_error_set(KILN_EIO, "reading the evaluation child: %s", strerror(errno));
		if (n == 0)
			return 1;
		if (kiln_buf_append(b, chunk, (size_t)n) == KILN_EOVERFLOW) {
			kiln_error_clear();
			return 2; /* over the cap: the candidate's failure, not the run's */
		}
	}
}

kiln_err kiln_child_run(kiln_child_result *out, kiln_child_fn fn, void *arg, double timeout_s)
{
	memset(out, 0, sizeof *out);
	int fds[2];
	if (pipe(fds) != 0)
		return kiln_error_set(KILN_EIO, "pipe: %s", strerror(errno));
	double start = kiln_now_s();
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return kiln_error_set(KILN_EIO, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		close(fds[0]);
		child_main(fds[1], fn, arg, timeout_s);
	}
	close(fds[1]);
	kiln_buf b;
	kiln_buf_init(&b, KILN_CHILD_ANSWER_MAX);
	int r = read_until(fds[0], &b, start + timeout_s);
	close(fds[0]);
	if (r != 1)
		kill(pid, SIGKILL);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	out->wall_s = kiln_now_s() - start;
	out->timed_out = r == 0;
	out->too_large = r == 2;
	out->signal = WIFSIGNALED(status) && !out->timed_out && !out->too_large ? WTERMSIG(status) : 0;
	if (out->too_large)
		kiln_buf_reset(&b); /* half an answer is no answer */
	out->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	out->text = kiln_buf_detach(&b);
	if (r < 0)
		return r;
	return out->text ? KILN_OK : KILN_ENOMEM;
}

void kiln_child_result_free(kiln_child_result *r)
{
	if (!r)
		return;
	free(r->text);
	r->text = NULL;
}
