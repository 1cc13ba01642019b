/* kiln: the command-line entry point. Dispatches to one function per subcommand
 * (the KILN_COMMANDS table in cli.h); only this folder prints and picks exit codes. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
	const char *name;
	int (*fn)(int, char **);
	const char *summary;
} command;

#define KILN_CMD_ENTRY(n, s) {#n, kiln_cmd_##n, s},
static const command commands[] = {KILN_COMMANDS(KILN_CMD_ENTRY)};

static void usage(FILE *f)
{
	fprintf(f, "usage: kiln <command> [options]   (kiln <command> --help for details)\n\ncommands:\n");
	for (size_t i = 0; i < KILN_ARRAY_LEN(commands); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nlimits (any command): --compile-timeout S (default 60), --max-memory SIZE per compile or\n"
		   "evaluation child (default half the RAM), --cache-max SIZE (compile cache, default 1G, LRU),\n"
		   "--max-scratch F (a plan's scratch <= F x the target's buffers, default 4)\n");
	fprintf(f, "\nexit codes: 0 ok, 1 compile/verification said no, 2 usage error, 3 could not run, 130 interrupted\n");
}

/* Options every command takes (they bound what model-written code may cost): taken out
 * of argv before the command parses the rest. Returns false after printing a usage error. */
static bool global_options(int *argc, char **argv)
{
	kiln_limits l = *kiln_limits_get();
	int out = 2;
	for (int i = 2; i < *argc; i++) {
		static const char *const names[] = {"--compile-timeout", "--max-memory", "--cache-max", "--max-scratch"};
		const char *a = argv[i], *val = NULL;
		size_t which = KILN_ARRAY_LEN(names);
		for (size_t k = 0; k < KILN_ARRAY_LEN(names); k++) {
			size_t n = strlen(names[k]);
			if (strncmp(a, names[k], n) == 0 && (a[n] == '=' || a[n] == '\0')) {
				which = k;
				val = a[n] == '=' ? a + n + 1 : (i + 1 < *argc ? argv[++i] : NULL);
			}
		}
		if (which == KILN_ARRAY_LEN(names)) {
			argv[out++] = argv[i];
			continue;
		}
		char *end = NULL;
		double d = val ? strtod(val, &end) : -1;
		bool ok = val != NULL;
		if (which == 0) {
			ok = ok && end != val && !*end && d > 0 && d <= 86400;
			l.compile_timeout_s = d;
		} else if (which == 1)
			ok = ok && kiln_parse_size(&l.max_memory, val) == 0 && l.max_memory >= (64 << 20);
		else if (which == 2)
			ok = ok && kiln_parse_size(&l.cache_max, val) == 0;
		else {
			ok = ok && end != val && !*end && d > 0 && d <= 1e6;
			l.scratch_factor = d;
		}
		if (!ok) {
			fprintf(stderr, "kiln: %s needs %s\n", names[which],
				which == 0 ? "seconds (0 < S <= 86400)" : which == 3 ? "a factor > 0" :
				which == 1 ? "a size of at least 64M (e.g. 8G)" : "a size (e.g. 1G; 0 = no cap)");
			return false;
		}
	}
	argv[out] = NULL;
	*argc = out;
	kiln_limits_set(&l);
	return true;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return KILN_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return KILN_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("kiln %s\n", KILN_VERSION);
		return KILN_EXIT_OK;
	}
	if (!global_options(&argc, argv))
		return KILN_EXIT_USAGE;
	if (kiln_redact_from_env()) { /* before anything is stored, printed or sent */
		fprintf(stderr, "kiln: %s\n", kiln_error_last());
		return KILN_EXIT_ERROR;
	}
	for (size_t i = 0; i < KILN_ARRAY_LEN(commands); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "kiln: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return KILN_EXIT_USAGE;
}
