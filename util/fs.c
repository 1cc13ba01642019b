/* Files: whole-file reads with a cap, atomic writes (temp + fsync + rename),
 * mkdir -p. Errors name the path and keep strerror's text. */
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

kiln_err kiln_file_read(char **out, size_t *out_len, const char *path, size_t max)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f)
		return kiln_error_set(errno == ENOENT ? KILN_ENOTFOUND : KILN_EIO,
				      "%s: %s", path, strerror(errno));
	kiln_buf b;
	kiln_buf_init(&b, max);
	char chunk[65536];
	size_t n;
	kiln_err e = KILN_OK;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if ((e = kiln_buf_append(&b, chunk, n))) {
			if (e == KILN_EOVERFLOW)
				e = kiln_error_set(KILN_EINVAL, "%s: larger than %zu bytes", path, max);
			goto done;
		}
	}
	if (ferror(f))
		e = kiln_error_set(KILN_EIO, "%s: read failed: %s", path, strerror(errno));
done:
	fclose(f);
	if (e) {
		kiln_buf_free(&b);
		return e;
	}
	if (out_len)
		*out_len = b.len;
	*out = kiln_buf_detach(&b);
	return *out ? KILN_OK : KILN_ENOMEM;
}

kiln_err kiln_file_write_atomic(const char *path, const void *data, size_t len)
{
	char *tmp = kiln_asprintf("%s.tmp.%ld", path, (long)getpid());
	if (!tmp)
		return KILN_ENOMEM;
	kiln_err e = KILN_OK;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		e = kiln_error_set(KILN_EIO, "%s: %s", tmp, strerror(errno));
		goto done;
	}
	const char *p = data;
	size_t left = len;
	while (left) {
		ssize_t w = write(fd, p, left);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			e = kiln_error_set(KILN_EIO, "%s: write failed: %s", path, strerror(errno));
			break;
		}
		p += w;
		left -= (size_t)w;
	}
	if (!e && fsync(fd) != 0)
		e = kiln_error_set(KILN_EIO, "%s: fsync failed: %s", path, strerror(errno));
	if (close(fd) != 0 && !e)
		e = kiln_error_set(KILN_EIO, "%s: close failed: %s", path, strerror(errno));
	if (!e && rename(tmp, path) != 0)
		e = kiln_error_set(KILN_EIO, "%s: rename failed: %s", path, strerror(errno));
	if (e)
		unlink(tmp);
done:
	free(tmp);
	return e;
}

kiln_err kiln_mkdir_p(const char *path)
{
	char *p = kiln_strdup(path);
	if (!p)
		return KILN_ENOMEM;
	kiln_err e = KILN_OK;
	for (char *s = p + 1;; s++) {
		if (*s == '/' || *s == 0) {
			char c = *s;
			*s = 0;
			if (mkdir(p, 0755) != 0 && errno != EEXIST) {
				e = kiln_error_set(KILN_EIO, "cannot create directory %s: %s", p, strerror(errno));
				break;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	free(p);
	return e;
}

bool kiln_path_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

char *kiln_path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir);
	if (n && dir[n - 1] == '/')
		return kiln_asprintf("%s%s", dir, name);
	return kiln_asprintf("%s/%s", dir, name);
}
