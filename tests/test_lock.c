/* Unit tests for the work-directory lock (archive/lock.c) with real processes: a second
 * acquire refused with the holder's pid, a forked holder, a holder killed with SIGKILL
 * (stale lock taken over with a warning), a stale file naming a dead pid, and an orphaned
 * grandchild still holding the flock after its run died. A killed holder not yet reaped
 * (a zombie) counts as dead. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "archive/archive.h"

typedef struct fixture {
	char dir[64];
	char *lock_path;
	char err_path[96]; /* captured stderr */
	int saved_stderr;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/kiln-test-lock-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	f->lock_path = kiln_path_join(f->dir, "lock");
	snprintf(f->err_path, sizeof(f->err_path), "%s.stderr", f->dir);
	f->saved_stderr = -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	char *cmd = kiln_asprintf("rm -rf '%s' '%s'", f->dir, f->err_path);
	int rc = system(cmd);
	free(cmd);
	free(f->lock_path);
	free(f);
	return rc == 0 ? 0 : -1;
}

/* stderr into f->err_path until capture_end, which returns what was written (caller frees). */
static void capture_begin(fixture *f)
{
	fflush(stderr);
	f->saved_stderr = dup(2);
	int fd = open(f->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0 && f->saved_stderr >= 0);
	dup2(fd, 2);
	close(fd);
}

static char *capture_end(fixture *f)
{
	fflush(stderr);
	dup2(f->saved_stderr, 2);
	close(f->saved_stderr);
	char *text = NULL;
	assert_int_equal(kiln_file_read(&text, NULL, f->err_path, 0), 0);
	return text;
}

static long file_pid(const char *path)
{
	char *text = NULL;
	if (kiln_file_read(&text, NULL, path, 0))
		return -1;
	long pid = strtol(text, NULL, 10);
	free(text);
	return pid;
}

/* A pid that is certainly not running: a child that exited and was reaped. */
static pid_t dead_pid(void)
{
	pid_t p = fork();
	assert_true(p >= 0);
	if (p == 0)
		_exit(0);
	waitpid(p, NULL, 0);
	return p;
}

/* A child that takes the lock, reports (1 byte) and then sleeps until killed. With
 * orphan: the child forks a grandchild that inherits the lock, writes its pid to the
 * pipe and the child exits without releasing (a run killed mid-evaluation). */
static pid_t spawn_holder(const char *dir, bool orphan, pid_t *grandchild)
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t p = fork();
	assert_true(p >= 0);
	if (p == 0) {
		close(fds[0]);
		kiln_lock *l = NULL;
		if (kiln_lock_acquire(&l, dir) != 0)
			_exit(3);
		if (orphan) {
			pid_t g = fork();
			if (g == 0) {
				for (;;)
					pause();
			}
			if (write(fds[1], &g, sizeof(g)) != sizeof(g))
				_exit(4);
			_exit(0);
		}
		char ok = 1;
		if (write(fds[1], &ok, 1) != 1)
			_exit(4);
		for (;;)
			pause();
	}
	close(fds[1]);
	if (orphan) {
		assert_int_equal(read(fds[0], grandchild, sizeof(*grandchild)), sizeof(*grandchild));
		int st = 0;
		waitpid(p, &st, 0);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	} else {
		char ok = 0;
		assert_int_equal(read(fds[0], &ok, 1), 1);
	}
	close(fds[0]);
	return p;
}

static void kill_wait(pid_t p)
{
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);
}

static void test_lock__acquire_release_reacquire(void **state)
{
	fixture *f = *state;
	kiln_lock *l = NULL, *l2 = NULL;
	char *sub = kiln_path_join(f->dir, "work/.kiln");
	assert_int_equal(kiln_lock_acquire(&l, sub), 0); /* creates the work directory */
	char *lp = kiln_path_join(sub, "lock");
	assert_int_equal(file_pid(lp), (long)getpid());
	/* a second acquire, even from the same process, is refused with the holder's pid */
	assert_int_equal(kiln_lock_acquire(&l2, sub), KILN_ELOCKED);
	assert_null(l2);
	char *want = kiln_asprintf("work directory %s is in use by kiln run (pid %ld)", sub, (long)getpid());
	assert_string_equal(kiln_error_last(), want);
	free(want);
	kiln_lock_release(l);
	kiln_lock_release(NULL);
	/* released cleanly: no warning on the next acquire */
	capture_begin(f);
	assert_int_equal(kiln_lock_acquire(&l, sub), 0);
	char *err = capture_end(f);
	assert_string_equal(err, "");
	free(err);
	kiln_lock_release(l);
	free(lp);
	free(sub);
}

static void test_lock__forked_holder_then_killed(void **state)
{
	fixture *f = *state;
	kiln_lock *l = NULL;
	pid_t child = spawn_holder(f->dir, false, NULL);
	assert_int_equal(file_pid(f->lock_path), (long)child);
	assert_int_equal(kiln_lock_acquire(&l, f->dir), KILN_ELOCKED);
	char *want = kiln_asprintf("work directory %s is in use by kiln run (pid %ld)", f->dir, (long)child);
	assert_string_equal(kiln_error_last(), want);
	free(want);
	/* kill -9: the kernel drops the flock, the file still names the dead pid, which
	 * stays a zombie until reaped: that counts as not running */
	kill(child, SIGKILL);
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	assert_int_equal(waitid(P_PID, (id_t)child, &si, WEXITED | WNOWAIT), 0);
	assert_int_equal(file_pid(f->lock_path), (long)child);
	capture_begin(f);
	assert_int_equal(kiln_lock_acquire(&l, f->dir), 0);
	char *err = capture_end(f);
	waitpid(child, NULL, 0);
	char *pid = kiln_asprintf("stale lock of pid %ld (not running)", (long)child);
	assert_non_null(strstr(err, "warning"));
	assert_non_null(strstr(err, pid));
	free(pid);
	free(err);
	assert_int_equal(file_pid(f->lock_path), (long)getpid());
	kiln_lock_release(l);
}

static void test_lock__stale_file_with_dead_pid(void **state)
{
	fixture *f = *state;
	kiln_lock *l = NULL;
	pid_t dead = dead_pid();
	char *text = kiln_asprintf("%ld\n", (long)dead);
	assert_int_equal(kiln_file_write_atomic(f->lock_path, text, strlen(text)), 0);
	free(text);
	capture_begin(f);
	assert_int_equal(kiln_lock_acquire(&l, f->dir), 0);
	char *err = capture_end(f);
	char *pid = kiln_asprintf("pid %ld", (long)dead);
	assert_non_null(strstr(err, pid));
	free(pid);
	free(err);
	assert_int_equal(file_pid(f->lock_path), (long)getpid());
	/* and now it is really held */
	pid_t p = fork();
	if (p == 0) {
		kiln_lock *l2 = NULL;
		_exit(kiln_lock_acquire(&l2, f->dir) == KILN_ELOCKED ? 0 : 1);
	}
	int st = 0;
	waitpid(p, &st, 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	kiln_lock_release(l);
}

static void test_lock__orphan_child_of_dead_run(void **state)
{
	fixture *f = *state;
	kiln_lock *l = NULL;
	pid_t grandchild = 0;
	pid_t child = spawn_holder(f->dir, true, &grandchild);
	/* the run is dead (reaped), its evaluation child still holds the flock */
	assert_int_equal(file_pid(f->lock_path), (long)child);
	capture_begin(f);
	kiln_err e = kiln_lock_acquire(&l, f->dir);
	char *err = capture_end(f);
	kill_wait(grandchild);
	assert_int_equal(e, 0);
	char *pid = kiln_asprintf("lock of pid %ld (not running", (long)child);
	assert_non_null(strstr(err, pid));
	free(pid);
	free(err);
	assert_int_equal(file_pid(f->lock_path), (long)getpid());
	kiln_lock_release(l);
}

static void test_lock__unusable_directory(void **state)
{
	fixture *f = *state;
	kiln_lock *l = NULL;
	char *file = kiln_path_join(f->dir, "plain");
	assert_int_equal(kiln_file_write_atomic(file, "x", 1), 0);
	/* a work directory path that is a file: an I/O error, not a lock */
	assert_true(kiln_lock_acquire(&l, file) < 0);
	assert_null(l);
	assert_non_null(strstr(kiln_error_last(), "plain"));
	free(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lock__acquire_release_reacquire, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock__forked_holder_then_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock__stale_file_with_dead_pid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock__orphan_child_of_dead_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock__unusable_directory, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
