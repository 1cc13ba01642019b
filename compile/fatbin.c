/* compile: fat binaries for `kiln promote`. nvJitLink links for one architecture at a
 * time, so each arch is its own (cached) kiln_compile; the toolkit's `fatbinary` tool,
 * run directly (fork + exec, no shell) on files in a private temp dir, packs every cubin
 * plus the PTX of the highest arch so GPUs newer than the list can still JIT it. */
#include "compile/compile_int.h"

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nvrtc.h>

extern char **environ;

#define FATBINARY KILN_CUDA_ROOT "/bin/fatbinary"

static kiln_err write_tmp(char **path, const char *dir, const char *name, const void *d, size_t n)
{
	*path = kiln_path_join(dir, name);
	if (!*path)
		return KILN_ENOMEM;
	return kiln_file_write_atomic(*path, d, n);
}

static kiln_err run_fatbinary(char **argv)
{
	pid_t pid;
	int status = 0;
	int rc = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);
	if (rc != 0)
		return kiln_error_set(KILN_ECOMPILE, "%s: %s", argv[0], strerror(rc));
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return kiln_error_set(KILN_ECOMPILE, "%s: waitpid: %s", argv[0], strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return kiln_error_set(KILN_ECOMPILE, "%s failed (status %d)", argv[0], status);
	return KILN_OK;
}

/* "sm_90a" -> "90a" as fatbinary's sm= wants it */
static const char *sm_of(const char *arch)
{
	return arch + 3;
}

static kiln_err pack(kiln_fatbin *f)
{
	char tmpl[] = "/tmp/kiln-fatbin-XXXXXX";
	char *dir = mkdtemp(tmpl), *out = NULL, **files = NULL, **argv = NULL;
	size_t nfiles = 0, argc = 0;
	kiln_err e = KILN_OK;
	if (!dir)
		return kiln_error_set(KILN_EIO, "fatbin: mkdtemp: %s", strerror(errno));
	files = kiln_calloc(f->nparts + 1, sizeof(*files));
	argv = kiln_calloc(f->nparts + 6, sizeof(*argv));
	if (!files || !argv || !(out = kiln_path_join(dir, "out.fatbin"))) {
		e = KILN_ENOMEM;
		goto done;
	}
	argv[argc++] = kiln_strdup(FATBINARY);
	argv[argc++] = kiln_strdup("-64");
	argv[argc++] = kiln_asprintf("--create=%s", out);
	size_t top = 0;
	for (size_t i = 0; i < f->nparts; i++) {
		kiln_compiled *c = f->parts[i];
		char name[64];
		snprintf(name, sizeof(name), "k%zu.cubin", i);
		if ((e = write_tmp(&files[nfiles], dir, name, c->cubin, c->cubin_len)))
			goto done;
		argv[argc++] = kiln_asprintf("--image3=kind=elf,sm=%s,file=%s", sm_of(c->arch), files[nfiles]);
		nfiles++;
		if (atoi(sm_of(c->arch)) > atoi(sm_of(f->parts[top]->arch)))
			top = i;
	}
	if ((e = write_tmp(&files[nfiles], dir, "top.ptx", f->parts[top]->ptx, f->parts[top]->ptx_len)))
		goto done;
	argv[argc++] = kiln_asprintf("--image3=kind=ptx,sm=%s,file=%s", sm_of(f->parts[top]->arch), files[nfiles]);
	nfiles++;
	for (size_t i = 0; i < argc; i++)
		if (!argv[i]) {
			e = KILN_ENOMEM;
			goto done;
		}
	if ((e = run_fatbinary(argv)))
		goto done;
	e = kiln_file_read((char **)&f->data, &f->len, out, 0);
done:
	for (size_t i = 0; i < nfiles; i++)
		if (files[i])
			unlink(files[i]);
	for (size_t i = 0; files && i <= f->nparts; i++)
		free(files[i]);
	if (out)
		unlink(out);
	rmdir(dir);
	for (size_t i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);
	free(files);
	free(out);
	return e;
}

kiln_err kiln_compile_fatbin(kiln_fatbin **out, const kiln_compile_options *opts,
			     const char *const *archs, size_t narchs)
{
	*out = NULL;
	kiln_fatbin *f = NULL;
	kiln_err e = KILN_OK;
	if (narchs == 0)
		return kiln_error_set(KILN_EINVAL, "fatbin: no architectures given");
	if (!(f = kiln_calloc(1, sizeof(*f))) || !(f->parts = kiln_calloc(narchs, sizeof(*f->parts)))) {
		free(f);
		return KILN_ENOMEM;
	}
	f->ok = true;
	for (size_t i = 0; i < narchs; i++) {
		kiln_compile_options o = *opts;
		o.arch = archs[i];
		o.want_cubin = true;
		if ((e = kiln_compile(&f->parts[i], &o)))
			goto done;
		f->nparts++;
		f->ok = f->ok && f->parts[i]->ok;
	}
	if (!f->ok)
		goto done;
	if (!kiln_path_exists(FATBINARY)) {
		e = kiln_error_set(KILN_EUNSUPPORTED, "fatbin: %s not found: ship the per-arch cubins instead",
				   FATBINARY);
		goto done;
	}
	e = pack(f);
done:
	if (e && f->nparts < narchs) {
		kiln_fatbin_free(f);
		return e;
	}
	*out = f;
	return e;
}

kiln_err kiln_compile_default_archs(char *out, size_t n)
{
	int num = 0, *a = NULL;
	size_t at = 0;
	if (nvrtcGetNumSupportedArchs(&num) != NVRTC_SUCCESS || num <= 0 || !(a = kiln_calloc((size_t)num, sizeof(int))))
		return kiln_error_set(KILN_ECOMPILE, "NVRTC lists no supported architectures");
	kiln_err e = nvrtcGetSupportedArchs(a) == NVRTC_SUCCESS ? KILN_OK : kiln_error_set(KILN_ECOMPILE, "nvrtcGetSupportedArchs failed");
	out[0] = 0;
	for (int i = 0; !e && i < num; i++) {
		if (a[i] < 80)
			continue;
		int w = snprintf(out + at, n - at, "%ssm_%d", at ? "," : "", a[i]);
		if (w < 0 || (size_t)w >= n - at)
			e = kiln_error_set(KILN_EOVERFLOW, "too many supported architectures");
		else
			at += (size_t)w;
	}
	if (!e && !at)
		e = kiln_error_set(KILN_ECOMPILE, "NVRTC supports no architecture from sm_80 up");
	free(a);
	return e;
}

void kiln_fatbin_free(kiln_fatbin *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->nparts; i++)
		kiln_compiled_free(f->parts[i]);
	free(f->parts);
	free(f->data);
	free(f);
}
