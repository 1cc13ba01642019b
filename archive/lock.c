/* archive: the work-directory lock of `kiln run`. <workdir>/lock holds the owner's pid and
 * an flock(LOCK_EX) that the kernel drops when the owner dies, however it dies. Acquiring
 * runs under a short flock of the directory itself, so two newcomers never both take a
 * stale lock over. The fd is O_CLOEXEC; a forked evaluation child shares the lock, so a
 * child orphaned by a killed run keeps it until the recorded pid is found dead. */
#include "archive/archive_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOCK_NAME "lock"

struct kiln_lock {
	int fd;     /* the lock file, flocked LOCK_EX */
	char *path; /* <workdir>/lock */
};

/* The pid recorded in the lock file; 0 when empty or unreadable. */
static long read_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *end = NULL;
	long pid = strtol(buf, &end, 10);
	return pid > 0 && end != buf ? pid : 0;
}

/* Running (a zombie, killed but not yet reaped, is not): kill(pid, 0), then the state
 * letter of /proc/<pid>/stat where there is one. */
static bool pid_alive(long pid)
{
	if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno != EPERM))
		return false;
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return true;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *paren = strrchr(buf, ')'); /* "pid (comm) S ..." */
	return !(paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X'));
}

static kiln_err write_pid(int fd, const char *path)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n)
		return kiln_error_set(KILN_EIO, "%s: writing the pid: %s", path, strerror(errno));
	return KILN_OK;
}

static kiln_err open_lock(int *fd, const char *path)
{
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (*fd < 0)
		return kiln_error_set(KILN_EIO, "%s: cannot open the lock file: %s", path, strerror(errno));
	return KILN_OK;
}

/* With the directory guard held: takes the lock file, or takes a stale one over. */
static kiln_err take(int *out_fd, const char *path, const char *workdir)
{
	int fd;
	kiln_err e = open_lock(&fd, path);
	if (e)
		return e;
	long pid = read_pid(fd);
	if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
		/* free: a dead owner's pid may still be written there */
		if (pid > 0 && pid != (long)getpid())
			fprintf(stderr, "kiln: warning: work directory %s: taking over a stale lock of pid %ld "
				"(%s)\n", workdir, pid, pid_alive(pid) ? "it no longer holds it" : "not running");
		goto own;
	}
	if (errno != EWOULDBLOCK) {
		e = kiln_error_set(KILN_EIO, "%s: flock: %s", path, strerror(errno));
		goto fail;
	}
	if (pid_alive(pid) || pid == 0) {
		e = kiln_error_set(KILN_ELOCKED, "work directory %s is in use by kiln run (pid %ld)", workdir, pid);
		goto fail;
	}
	/* held, but its recorded owner is dead: an orphaned child of a killed run still has
	 * the descriptor. Replace the file; the orphan keeps only the old inode. */
	fprintf(stderr, "kiln: warning: work directory %s: taking over the lock of pid %ld (not running; "
		"a leftover child may still hold the old lock file)\n", workdir, pid);
	close(fd);
	if (unlink(path) != 0 && errno != ENOENT)
		return kiln_error_set(KILN_EIO, "%s: removing a stale lock: %s", path, strerror(errno));
	if ((e = open_lock(&fd, path)))
		return e;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		e = kiln_error_set(KILN_ELOCKED, "work directory %s is in use by kiln run (lock file %s "
				   "was taken meanwhile)", workdir, path);
		goto fail;
	}
own:
	if ((e = write_pid(fd, path)))
		goto fail;
	*out_fd = fd;
	return KILN_OK;
fail:
	close(fd);
	return e;
}

kiln_err kiln_lock_acquire(kiln_lock **out, const char *workdir)
{
	*out = NULL;
	kiln_err e = kiln_mkdir_p(workdir);
	if (e)
		return e;
	kiln_lock *l = kiln_calloc(1, sizeof(*l));
	if (!l || !(l->path = kiln_path_join(workdir, LOCK_NAME))) {
		free(l);
		return KILN_ENOMEM;
	}
	l->fd = -1;
	/* the guard: a blocking flock on the directory, held only while deciding */
	int dfd = open(workdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || flock(dfd, LOCK_EX) != 0) {
		e = kiln_error_set(KILN_EIO, "%s: cannot lock the work directory: %s", workdir, strerror(errno));
		goto done;
	}
	e = take(&l->fd, l->path, workdir);
done:
	if (dfd >= 0)
		close(dfd); /* drops the guard */
	if (e) {
		kiln_lock_release(l);
		return e;
	}
	*out = l;
	return KILN_OK;
}

void kiln_lock_release(kiln_lock *l)
{
	if (!l)
		return;
	if (l->fd >= 0) {
		/* an empty file says "released cleanly"; the flock goes with the close */
		if (ftruncate(l->fd, 0) != 0) {
			/* nothing to do: the next owner overwrites it */
		}
		close(l->fd);
	}
	free(l->path);
	free(l);
}
