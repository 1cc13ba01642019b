/* cli: private helpers shared by the subcommands (cmd_*.c). Only cli/ decides exit
 * codes and prints; every subcommand is `int kiln_cmd_<name>(int argc, char **argv)`
 * where argv[0] is the subcommand name. */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "profile/profile.h"
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

/* Takes -D NAME=V, -DNAME=V and --define NAME=V (repeatable, at most max) out of argv
 * (kiln_cli_parse knows only long options); the rest, argv[0] first, goes to rest (room
 * for argc). A -D without a value, a NAME that is not a C identifier or too many print
 * "kiln <cmd>: ..." and return false. */
bool kiln_cli_take_defines(int argc, char **argv, const char **defs, size_t max, size_t *ndefs,
			   char **rest, int *nrest, const char *cmd);

/* Takes every `--NAME V` / `--NAME=V` (repeatable, at most max) out of argv into vals; the
 * rest, argv[0] first, goes to rest (room for argc). A missing value or too many print
 * "kiln <cmd>: ..." and return false. */
bool kiln_cli_take_repeated(int argc, char **argv, const char *name, const char **vals, size_t max, size_t *n,
			    char **rest, int *nrest, const char *cmd);

/* `kiln targets new` and `kiln targets check` (cmd_targets_new.c), argv[0] = "new"/"check". */
int kiln_cmd_targets_new(int argc, char **argv);
int kiln_cmd_targets_check(int argc, char **argv);

/* Prints "kiln <cmd>: <last error>" to stderr and returns KILN_EXIT_ERROR (or
 * KILN_EXIT_USAGE / KILN_EXIT_FAIL as the code implies). */
int kiln_cli_fail(const char *cmd, kiln_err e);

/* Verification threads: --threads VALUE, else $KILN_THREADS, else every online core.
 * A bad value prints "kiln <cmd>: ..." and returns false. */
bool kiln_cli_threads(size_t *out, const char *cmd, const char *flag_value);
/* --gpu-index N: checks N (a line on stderr and false when bad) and sets $KILN_GPU_INDEX,
 * which the cuda backend reads in this process and in every evaluation child; NULL: no-op. */
bool kiln_cli_gpu_index(const char *cmd, const char *value);
/* --rank-time launches|kernels (NULL: launches): false with a line on stderr when bad. */
bool kiln_cli_rank_time(kiln_rank_time *out, const char *cmd, const char *value);
#define KILN_CLI_RANK_TIME_HELP                                                                        \
	"  --rank-time WHAT    launches: a plan's time is its kernels' durations + the gaps between\n" \
	"                      its dependent launches (default); kernels: the durations alone\n"

/* The work directory: --workdir, else $KILN_WORKDIR, else ./.kiln. One rule for every
 * command: what it compiles is cached in <workdir>/cache (compile, verify, bench, run,
 * promote), what it records or reads is <workdir>/history.db and <workdir>/archive. */
const char *kiln_cli_workdir(const char *flag_value);
/* <workdir>/cache (caller frees); NULL when out of memory. */
char *kiln_cli_cache_dir(const char *flag_value);

/* Review helpers (cmd_runs.c), shared by runs, log, show, diff, tree, report, promote. */
struct kiln_db;
struct cJSON;
/* Opens <workdir>/history.db read-only (works while a run writes); an exit code, 0 = ok. */
int kiln_cli_history_open(struct kiln_db **out, const char *cmd, const char *workdir);
/* RUN (digits: that run) or TARGET (its newest run) -> run id; an exit code, 0 = ok. */
int kiln_cli_run_resolve(int64_t *out, struct kiln_db *db, const char *cmd, const char *ref);
/* Replaces every string in j (recursively) by its terminal-safe form (kiln_text_escape):
 * multi-line texts (source, log, prompt, reply, diffs) keep \n and \t, the rest stays on
 * one line. Every human-readable print of history data calls it first; --json output
 * does not need it (cJSON escapes controls). */
void kiln_cli_escape_doc(struct cJSON *j);
/* A wm_revisions row whose "tree" is NULL (an older revision, stored as a delta) gets its
 * whole tree rebuilt (kiln_db_wm_tree of row[id_key]); a kiln_err. */
int kiln_cli_fill_tree(struct kiln_db *db, struct cJSON *row, const char *id_key);
/* One line: the work directory's disk use, total and per part (history.db with its WAL,
 * the git archive, the compile cache), for `kiln runs` and `kiln doctor`. */
void kiln_cli_print_workdir_size(const char *workdir);
/* Prints j formatted; an exit code. */
int kiln_cli_print_json(const struct cJSON *j);
/* obj[key] as a number (NaN when absent or not a number) / a string (if_null otherwise). */
double kiln_cli_jnum(const struct cJSON *obj, const char *key);
const char *kiln_cli_jstr(const struct cJSON *obj, const char *key, const char *if_null);

/* The LLM lines of `kiln doctor` (cmd_llm.c): spec, key variable (never its value), base URL. */
void kiln_cli_llm_doctor(void);

#define KILN_COMMANDS(X)                                                                 \
	X(doctor, "check the toolkit, driver, LLM configuration and work directory")    \
	X(compile, "compile a .cu file with NVRTC and print registers, spills, shared memory") \
	X(targets, "list the kernel targets, or show one in full (targets show NAME)") \
	X(verify, "verify a kernel against a target's float64 reference (PASS/FAIL, worst error)") \
	X(bench, "verify, then time a kernel (measured on a GPU, modeled on the emulator); --compare ranks several") \
	X(run, "search for a faster kernel until a budget runs out (LLM or tuner); --resume") \
	X(llm, "check the LLM set-up: `kiln llm ping` makes one small call (model, latency, tokens, cost)") \
	X(runs, "list the runs in the history: target, policy, duration, best speedup, cost, status") \
	X(log, "list a target's or run's candidates: verdict, time, speedup (--passed, --node, --since)") \
	X(show, "show one candidate: source, launch plan, compile, verdict, timing, node, LLM call") \
	X(diff, "diff two candidates' sources and launch plans, metrics side by side") \
	X(tree, "print a run's world model as a tree, at any iteration (--at)") \
	X(report, "write a self-contained HTML report of a run (-o report.html)") \
	X(promote, "re-verify a candidate and export .cu, .h launcher, .fatbin and a manifest; tag it")

#define KILN_DECLARE_CMD(name, summary) int kiln_cmd_##name(int argc, char **argv);
KILN_COMMANDS(KILN_DECLARE_CMD)

#endif
