/* cli: private helpers shared by the subcommands (cmd_*.c). Only cli/ decides exit
 * codes and prints; every subcommand is `int kiln_cmd_<name>(int argc, char **argv)`
 * where argv[0] is the subcommand name. */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "util/util.h"

/* Exit codes (documented in README "Exit codes"). */
enum {
	KILN_EXIT_OK = 0,       /* success */
	KILN_EXIT_FAIL = 1,     /* the operation ran and said no: compile error, failed verification */
	KILN_EXIT_USAGE = 2,    /* bad command line */
	KILN_EXIT_ERROR = 3,    /* could not run: bad input file, missing toolkit, I/O, database */
	KILN_EXIT_INTR = 130,   /* interrupted before a checkpoint could be written */
};

/* One option of a subcommand. has_arg: 0 flag, 1 requires a value. */
typedef struct kiln_cli_opt {
	const char *name;   /* long name without dashes, e.g. "json" */
	int has_arg;
	const char **value; /* where a value goes (has_arg), or NULL */
	bool *flag;         /* set true when present (flags), or NULL */
} kiln_cli_opt;

/* Parses argv[1..] for the given options (terminated by {0}). `--opt=value` and
 * `--opt value` both work; `--help`/`-h` prints usage and returns KILN_EXIT_OK via
 * *exit_now. Positionals are collected into pos (at most max_pos). An unknown option
 * or too many positionals print "kiln <cmd>: ..." and the usage line to stderr and
 * set *exit_now = KILN_EXIT_USAGE. Returns true when the caller should go on. */
bool kiln_cli_parse(int argc, char **argv, const kiln_cli_opt *opts, const char **pos,
		    int max_pos, int *npos, const char *usage, const char *help, int *exit_now);

/* Prints "kiln <cmd>: <last error>" to stderr and returns KILN_EXIT_ERROR (or
 * KILN_EXIT_USAGE / KILN_EXIT_FAIL as the code implies). */
int kiln_cli_fail(const char *cmd, kiln_err e);

/* The work directory: --workdir, else $KILN_WORKDIR, else ./.kiln */
const char *kiln_cli_workdir(const char *flag_value);

#define KILN_COMMANDS(X)                                                                 \
	X(doctor, "check the toolkit, driver, LLM configuration and work directory")    \
	X(compile, "compile a .cu file with NVRTC and print registers, spills, shared memory") \
	X(targets, "list the kernel targets, or show one in full (targets show NAME)") \
	X(verify, "verify a kernel against a target's float64 reference (PASS/FAIL, worst error)") \
	X(run, "search for a faster kernel until a budget runs out (LLM or tuner); --resume")

#define KILN_DECLARE_CMD(name, summary) int kiln_cmd_##name(int argc, char **argv);
KILN_COMMANDS(KILN_DECLARE_CMD)

#endif
