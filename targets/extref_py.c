/* External references written in Python (a target folder's reference.py with
 * `def reference(inputs, scalars, sizes) -> outputs`), run by `python3 driver.py DIR`
 * in a child process with a deadline. The protocol (README "Adding your own kernel"):
 * DIR holds manifest.json and in_<buffer>.npy (float64, C order) for every in/inout
 * buffer; the driver writes out_<buffer>.npy for every out/inout buffer, optionally
 * slack_<buffer>.npy, and result.json {"ok": bool, "error": "one line"}. */
#include "targets/targets_int.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NPY_MAX_HEADER 4096

static const char driver_src[] =
	"# kiln's driver for reference.py (generated; protocol 1): see README 'Adding your own kernel'\n"
	"import json, os, sys, traceback\n"
	"d = sys.argv[1]\n"
	"def done(err=None):\n"
	"    with open(os.path.join(d, 'result.json'), 'w') as f:\n"
	"        json.dump({'ok': err is None, 'error': ' '.join(str(err or '').split())[:900]}, f)\n"
	"    sys.exit(0)\n"
	"def where(e):\n"
	"    tb = [f for f in traceback.extract_tb(e.__traceback__) if os.path.abspath(f.filename) == os.path.abspath(m['reference'])]\n"
	"    return ' (%s:%d)' % (tb[-1].filename, tb[-1].lineno) if tb else ''\n"
	"try:\n"
	"    import numpy as np\n"
	"except ImportError:\n"
	"    done('numpy is not installed for %s: apt-get install python3-numpy (or pip install numpy)' % sys.executable)\n"
	"m = json.load(open(os.path.join(d, 'manifest.json')))\n"
	"path = m['reference']\n"
	"sys.path.insert(0, os.path.dirname(path))\n"
	"import importlib.util\n"
	"try:\n"
	"    spec = importlib.util.spec_from_file_location('kiln_reference', path)\n"
	"    mod = importlib.util.module_from_spec(spec)\n"
	"    spec.loader.exec_module(mod)\n"
	"except SyntaxError as e:\n"
	"    done('%s:%s: syntax error: %s' % (path, e.lineno, e.msg))\n"
	"except Exception as e:\n"
	"    done('importing %s raised %s: %s%s' % (path, type(e).__name__, e, where(e)))\n"
	"fn = getattr(mod, 'reference', None)\n"
	"if not callable(fn):\n"
	"    done('%s defines no function reference(inputs, scalars, sizes)' % path)\n"
	"inputs = {}\n"
	"for k, v in m['inputs'].items():\n"
	"    inputs[k] = np.load(os.path.join(d, 'in_%s.npy' % k)).reshape(v['shape'])\n"
	"try:\n"
	"    res = fn(inputs, dict(m['scalars']), dict(m['sizes']))\n"
	"except Exception as e:\n"
	"    done('reference raised %s: %s%s' % (type(e).__name__, e, where(e)))\n"
	"slack = {}\n"
	"if isinstance(res, tuple) and len(res) == 2:\n"
	"    res, slack = res\n"
	"if not isinstance(res, dict) or not isinstance(slack, dict):\n"
	"    done('reference returned %s; expected a dict {output name: array} or a pair (outputs, slack)' % type(res).__name__)\n"
	"outs = m['outputs']\n"
	"if sorted(res) != sorted(outs):\n"
	"    done('reference returned the outputs %s; expected exactly %s (every out and inout buffer)' % (sorted(res), sorted(outs)))\n"
	"bad = [k for k in slack if k not in outs]\n"
	"if bad:\n"
	"    done('reference returned slack for %s, which is not an out or inout buffer' % bad[0])\n"
	"for k, v in outs.items():\n"
	"    shape = tuple(v['shape'])\n"
	"    try:\n"
	"        a = np.asarray(res[k], dtype=np.float64)\n"
	"    except Exception as e:\n"
	"        done('output %s is not an array of numbers: %s' % (k, e))\n"
	"    if a.shape != shape:\n"
	"        done('output %s has shape %s, expected %s' % (k, list(a.shape), list(shape)))\n"
	"    np.save(os.path.join(d, 'out_%s.npy' % k), np.ascontiguousarray(a))\n"
	"    if k in slack:\n"
	"        try:\n"
	"            s = np.ascontiguousarray(np.broadcast_to(np.asarray(slack[k], dtype=np.float64), shape))\n"
	"        except Exception as e:\n"
	"            done('slack of %s does not fit its shape %s: %s' % (k, list(shape), e))\n"
	"        if not (s >= 0).all():\n"
	"            done('slack of %s has negative or NaN entries' % k)\n"
	"        np.save(os.path.join(d, 'slack_%s.npy' % k), s)\n"
	"done()\n";

/* ---- .npy (format 1.0, '<f8', C order) ---- */

static kiln_err npy_write(const char *path, const double *v, size_t count, const kiln_target *t,
			  const kiln_buffer_spec *b, const kiln_env *sizes)
{
	char shape[512] = "", hdr[NPY_MAX_HEADER];
	size_t sl = 0;
	for (size_t d = 0; d < b->ndim; d++) {
		int64_t x;
		kiln_err e = kiln_expr_eval(&x, b->shape[d], sizes, b->name);
		if (e)
			return e;
		sl += (size_t)snprintf(shape + sl, sizeof shape - sl, "%lld,%s", (long long)x, d + 1 < b->ndim ? " " : "");
		if (sl >= sizeof shape)
			return kiln_error_set(KILN_EINVAL, "target %s: buffer %s: shape too long", t->name, b->name);
	}
	if (b->ndim == 0)
		snprintf(shape, sizeof shape, "%zu,", count);
	int n = snprintf(hdr + 10, sizeof hdr - 10, "{'descr': '<f8', 'fortran_order': False, 'shape': (%s), }", shape);
	size_t len = 10 + (size_t)n + 1, pad = (64 - len % 64) % 64;
	memset(hdr + 10 + n, ' ', pad);
	hdr[10 + n + pad] = '\n';
	len += pad;
	memcpy(hdr, "\x93NUMPY\x01\x00", 8);
	hdr[8] = (char)((len - 10) & 0xff);
	hdr[9] = (char)((len - 10) >> 8);
	FILE *f = fopen(path, "wb");
	if (!f)
		return kiln_error_set(KILN_EIO, "%s: cannot write: %s", path, strerror(errno));
	bool ok = fwrite(hdr, 1, len, f) == len && fwrite(v, sizeof(double), count, f) == count;
	ok = fclose(f) == 0 && ok;
	return ok ? KILN_OK : kiln_error_set(KILN_EIO, "%s: cannot write: %s", path, strerror(errno));
}

/* Reads a float64 array of exactly `count` elements written by numpy.save. */
static kiln_err npy_read(double *out, size_t count, const char *path, const char *what)
{
	char *data = NULL;
	size_t len = 0;
	kiln_err e = kiln_file_read(&data, &len, path, count * sizeof(double) + 2 * NPY_MAX_HEADER);
	if (e)
		return e;
	e = KILN_EINVAL;
	size_t hl = 0, off = 0;
	if (len < 10 || memcmp(data, "\x93NUMPY", 6) != 0)
		goto bad;
	if (data[6] == 1) {
		hl = (unsigned char)data[8] | (size_t)(unsigned char)data[9] << 8;
		off = 10;
	} else if (len >= 12) {
		hl = (unsigned char)data[8] | (size_t)(unsigned char)data[9] << 8 | (size_t)(unsigned char)data[10] << 16 |
		     (size_t)(unsigned char)data[11] << 24;
		off = 12;
	}
	if (!off || hl > NPY_MAX_HEADER || off + hl > len)
		goto bad;
	char hdr[NPY_MAX_HEADER + 1];
	memcpy(hdr, data + off, hl);
	hdr[hl] = 0;
	if (!strstr(hdr, "'descr': '<f8'") || !strstr(hdr, "'fortran_order': False") || len - off - hl != count * sizeof(double))
		goto bad;
	memcpy(out, data + off + hl, count * sizeof(double));
	e = KILN_OK;
bad:
	if (e)
		kiln_error_set(KILN_EINVAL, "%s: %s is not a float64 C-order .npy of %zu elements", path, what, count);
	free(data);
	return e;
}

/* ---- the run ---- */

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char *p = kiln_path_join(dir, de->d_name);
		if (p)
			unlink(p);
		free(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

static kiln_err write_manifest(const char *dir, const kiln_target *t, kiln_ref_io *io)
{
	cJSON *m = cJSON_CreateObject(), *ins = cJSON_AddObjectToObject(m, "inputs");
	cJSON *outs = cJSON_AddObjectToObject(m, "outputs"), *sc = cJSON_AddObjectToObject(m, "scalars");
	cJSON *sz = cJSON_AddObjectToObject(m, "sizes");
	kiln_err e = KILN_OK;
	cJSON_AddNumberToObject(m, "protocol", 1);
	cJSON_AddStringToObject(m, "reference", t->ref_path);
	cJSON_AddStringToObject(m, "target", t->name);
	for (size_t i = 0; i < t->nbuffers && !e; i++) {
		const kiln_buffer_spec *b = &t->buffers[i];
		cJSON *o = cJSON_CreateObject(), *shape = cJSON_AddArrayToObject(o, "shape");
		for (size_t d = 0; d < b->ndim && !e; d++) {
			int64_t x = 0;
			e = kiln_expr_eval(&x, b->shape[d], io->sizes, b->name);
			cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)x));
		}
		cJSON_AddStringToObject(o, "dtype", kiln_dtype_name(b->dtype));
		if (b->role != KILN_ROLE_OUT)
			cJSON_AddItemToObject(ins, b->name, b->role == KILN_ROLE_INOUT ? cJSON_Duplicate(o, 1) : o);
		if (b->role != KILN_ROLE_IN)
			cJSON_AddItemToObject(outs, b->name, o);
		char *p = kiln_asprintf("%s/in_%s.npy", dir, b->name);
		if (!e && b->role != KILN_ROLE_OUT)
			e = p ? npy_write(p, io->bufs[i], io->count[i], t, b, io->sizes) : KILN_ENOMEM;
		free(p);
	}
	for (size_t i = 0; i < t->nscalars; i++)
		cJSON_AddNumberToObject(sc, t->scalars[i].name, kiln_ref_scalar(io, t->scalars[i].name));
	for (size_t i = 0; i < io->sizes->n; i++)
		cJSON_AddNumberToObject(sz, io->sizes->names[i], (double)io->sizes->values[i]);
	char *text = e ? NULL : cJSON_PrintUnformatted(m);
	char *path = kiln_path_join(dir, "manifest.json");
	if (!e)
		e = text && path ? kiln_file_write_atomic(path, text, strlen(text))
				 : kiln_error_set(KILN_ENOMEM, "out of memory");
	cJSON_free(text);
	free(path);
	cJSON_Delete(m);
	return e;
}

static const char *python(void)
{
	const char *p = getenv("KILN_PYTHON");
	return p && *p ? p : "python3";
}

static kiln_err read_result(const char *dir, const kiln_target *t, kiln_ref_io *io)
{
	cJSON *r = NULL;
	char *path = kiln_path_join(dir, "result.json");
	kiln_err e = path ? kiln_json_parse_file(&r, path, 1u << 16) : KILN_ENOMEM;
	if (e) {
		e = kiln_error_set(KILN_EINVAL, "target %s: reference.py ended without a result (did it call sys.exit or "
				   "os._exit?)", t->name);
		goto done;
	}
	const cJSON *ok = cJSON_GetObjectItemCaseSensitive(r, "ok"), *err = cJSON_GetObjectItemCaseSensitive(r, "error");
	if (!cJSON_IsTrue(ok)) {
		e = kiln_error_set(KILN_EINVAL, "target %s: reference.py: %s", t->name,
				   cJSON_IsString(err) ? err->valuestring : "failed");
		goto done;
	}
	for (size_t i = 0; i < t->nbuffers && !e; i++) {
		const kiln_buffer_spec *b = &t->buffers[i];
		if (b->role == KILN_ROLE_IN)
			continue;
		char *op = kiln_asprintf("%s/out_%s.npy", dir, b->name), *sp = kiln_asprintf("%s/slack_%s.npy", dir, b->name);
		if (!op || !sp)
			e = kiln_error_set(KILN_ENOMEM, "out of memory");
		else if (!(e = npy_read(io->bufs[i], io->count[i], op, b->name)) && kiln_path_exists(sp))
			e = npy_read(io->slack[i], io->count[i], sp, "slack");
		free(op);
		free(sp);
	}
done:
	cJSON_Delete(r);
	free(path);
	return e;
}

kiln_err kiln_extref_run_py(const kiln_target *t, kiln_ref_io *io)
{
	const char *tmp = getenv("TMPDIR");
	char *dir = kiln_asprintf("%s/kiln-ref-XXXXXX", tmp && *tmp ? tmp : "/tmp"), *driver = NULL;
	kiln_err e = KILN_ENOMEM;
	bool made = false;
	if (!dir)
		goto done;
	if (!mkdtemp(dir)) {
		e = kiln_error_set(KILN_EIO, "%s: cannot make a temporary folder: %s", dir, strerror(errno));
		goto done;
	}
	made = true;
	if (!(driver = kiln_path_join(dir, "kiln_driver.py")))
		goto done;
	if ((e = kiln_file_write_atomic(driver, driver_src, sizeof driver_src - 1)) || (e = write_manifest(dir, t, io)))
		goto done;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		e = kiln_error_set(KILN_EIO, "target %s: cannot fork for python: %s", t->name, strerror(errno));
		goto done;
	}
	if (pid == 0) {
		setpgid(0, 0);
		dup2(2, 1);
		execlp(python(), python(), "-B", driver, dir, (char *)NULL);
		_exit(127);
	}
	int st = 0;
	if ((e = kiln_extref_wait(&st, pid, true, t, "reference.py")))
		goto done;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127) {
		e = kiln_error_set(KILN_ENOTFOUND, "target %s: reference.py needs %s, which is not installed (apt-get install "
				   "python3 python3-numpy, or set KILN_PYTHON)", t->name, python());
		goto done;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
		e = kiln_error_set(KILN_EINVAL, "target %s: the python driver of reference.py exited with status %d (see "
				   "its message above)", t->name, WEXITSTATUS(st));
		goto done;
	}
	e = read_result(dir, t, io);
done:
	if (e == KILN_ENOMEM)
		kiln_error_set(KILN_ENOMEM, "target %s: out of memory running reference.py", t->name);
	if (made)
		remove_dir(dir);
	free(driver);
	free(dir);
	return e;
}
