/* Option parsing shared by every subcommand: long options only, `--x=v` or `--x v`,
 * `--help` everywhere, unknown options are usage errors that print the usage line. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int usage_error(const char *cmd, const char *usage, const char *what, const char *arg)
{
	fprintf(stderr, "kiln %s: %s '%s'\nusage: %s\n", cmd, what, arg, usage);
	return KILN_EXIT_USAGE;
}

static bool define_ok(const char *d)
{
	if (!(d[0] == '_' || (d[0] >= 'A' && d[0] <= 'Z') || (d[0] >= 'a' && d[0] <= 'z')))
		return false;
	for (d++; *d && *d != '='; d++)
		if (!(*d == '_' || (*d >= 'A' && *d <= 'Z') || (*d >= 'a' && *d <= 'z') || (*d >= '0' && *d <= '9')))
			return false;
	return true;
}

bool kiln_cli_take_defines(int argc, char **argv, const char **defs, size_t max, size_t *ndefs,
			   char **rest, int *nrest, const char *cmd)
{
	*ndefs = 0;
	*nrest = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *val;
		if (i == 0 || strcmp(a, "--") == 0) {
			rest[(*nrest)++] = argv[i];
			continue;
		}
		if (strcmp(a, "-D") == 0 || strcmp(a, "--define") == 0)
			val = i + 1 < argc ? argv[++i] : "";
		else if (strncmp(a, "-D", 2) == 0)
			val = a + 2;
		else if (strncmp(a, "--define=", 9) == 0)
			val = a + 9;
		else {
			rest[(*nrest)++] = argv[i];
			continue;
		}
		if (*ndefs >= max || !define_ok(val)) {
			fprintf(stderr, "kiln %s: -D '%s': expected NAME=VALUE with a C identifier for NAME (at most %zu)\n",
				cmd, val, max);
			return false;
		}
		defs[(*ndefs)++] = val;
	}
	return true;
}

static const kiln_cli_opt *find_opt(const kiln_cli_opt *opts, const char *name, size_t n)
{
	for (const kiln_cli_opt *o = opts; o && o->name; o++)
		if (strlen(o->name) == n && strncmp(o->name, name, n) == 0)
			return o;
	return NULL;
}

bool kiln_cli_parse(int argc, char **argv, const kiln_cli_opt *opts, const char **pos,
		    int max_pos, int *npos, const char *usage, const char *help, int *exit_now)
{
	const char *cmd = argv[0];
	bool only_pos = false;
	*npos = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!only_pos && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
			printf("usage: %s\n%s", usage, help ? help : "");
			*exit_now = KILN_EXIT_OK;
			return false;
		}
		if (!only_pos && strcmp(a, "--") == 0) {
			only_pos = true;
			continue;
		}
		if (!only_pos && a[0] == '-' && a[1] == '-') {
			const char *name = a + 2, *eq = strchr(name, '=');
			size_t n = eq ? (size_t)(eq - name) : strlen(name);
			const kiln_cli_opt *o = find_opt(opts, name, n);
			if (!o) {
				*exit_now = usage_error(cmd, usage, "unknown option", a);
				return false;
			}
			if (o->has_arg) {
				const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
				if (!v) {
					*exit_now = usage_error(cmd, usage, "missing value for", a);
					return false;
				}
				if (o->value)
					*o->value = v;
			} else if (eq) {
				*exit_now = usage_error(cmd, usage, "option takes no value", a);
				return false;
			}
			if (o->flag)
				*o->flag = true;
			continue;
		}
		if (!only_pos && a[0] == '-' && a[1]) {
			*exit_now = usage_error(cmd, usage, "unknown option", a);
			return false;
		}
		if (*npos >= max_pos) {
			*exit_now = usage_error(cmd, usage, "unexpected argument", a);
			return false;
		}
		pos[(*npos)++] = a;
	}
	return true;
}

int kiln_cli_fail(const char *cmd, kiln_err e)
{
	/* messages may quote a reply, a title or a compile log: escaped, on one line */
	fprintf(stderr, "kiln %s: ", cmd);
	kiln_text_print(stderr, kiln_error_last()[0] ? kiln_error_last() : kiln_err_name(e), KILN_TEXT_LINE);
	fputc('\n', stderr);
	if (e == KILN_EVERIFY || e == KILN_ECOMPILE)
		return KILN_EXIT_FAIL;
	if (e == KILN_EINTR)
		return KILN_EXIT_INTR;
	return KILN_EXIT_ERROR;
}

const char *kiln_cli_workdir(const char *flag_value)
{
	if (flag_value && *flag_value)
		return flag_value;
	const char *env = getenv("KILN_WORKDIR");
	return env && *env ? env : ".kiln";
}

bool kiln_cli_threads(size_t *out, const char *cmd, const char *flag_value)
{
	const char *v = flag_value ? flag_value : getenv("KILN_THREADS");
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	*out = cores > 0 ? (size_t)cores : 1;
	if (!v || !*v)
		return true;
	char *end = NULL;
	long long n = strtoll(v, &end, 10);
	if (*end || n < 1 || n > 256) {
		fprintf(stderr, "kiln %s: %s '%s': expected 1..256 verification threads\n", cmd,
			flag_value ? "--threads" : "KILN_THREADS", v);
		return false;
	}
	*out = (size_t)n;
	return true;
}

char *kiln_cli_cache_dir(const char *flag_value)
{
	return kiln_path_join(kiln_cli_workdir(flag_value), "cache");
}

bool kiln_cli_rank_time(kiln_rank_time *out, const char *cmd, const char *value)
{
	kiln_rank_time r = KILN_RANK_LAUNCHES;
	if (kiln_rank_time_parse(&r, value)) {
		fprintf(stderr, "kiln %s: --rank-time: %s\n", cmd, kiln_error_last());
		return false;
	}
	*out = r;
	return true;
}

bool kiln_cli_gpu_index(const char *cmd, const char *value)
{
	if (!value)
		return true;
	if (!*value || strspn(value, "0123456789") != strlen(value) || strlen(value) > 6) {
		fprintf(stderr, "kiln %s: --gpu-index '%s': expected a GPU ordinal (0, 1, ...)\n", cmd, value);
		return false;
	}
	setenv("KILN_GPU_INDEX", value, 1); /* read by the cuda backend, here and in every child */
	return true;
}

bool kiln_cli_take_repeated(int argc, char **argv, const char *name, const char **vals, size_t max, size_t *n,
			    char **rest, int *nrest, const char *cmd)
{
	size_t len = strlen(name);
	*n = 0;
	*nrest = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *val;
		bool after = i > 0 && strcmp(argv[i - 1], "--") == 0;
		if (i == 0 || after || strncmp(a, "--", 2) != 0 || strncmp(a + 2, name, len) != 0 ||
		    (a[2 + len] && a[2 + len] != '=')) {
			rest[(*nrest)++] = argv[i];
			continue;
		}
		val = a[2 + len] == '=' ? a + 3 + len : i + 1 < argc ? argv[++i] : NULL;
		if (!val || !*val || *n >= max) {
			fprintf(stderr, "kiln %s: --%s: %s\n", cmd, name, !val || !*val ? "expects a value" : "given too often");
			return false;
		}
		vals[(*n)++] = val;
	}
	return true;
}
