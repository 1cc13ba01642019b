/* kiln: the command-line entry point. Dispatches to one function per subcommand
 * (the KILN_COMMANDS table in cli.h); only this folder prints and picks exit codes. */
#include "cli/cli.h"

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
	fprintf(f, "\nexit codes: 0 ok, 1 compile/verification said no, 2 usage error, 3 could not run, 130 interrupted\n");
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
	for (size_t i = 0; i < KILN_ARRAY_LEN(commands); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "kiln: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return KILN_EXIT_USAGE;
}
