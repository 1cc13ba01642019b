/* libFuzzer harness for the checked integer expression evaluator (targets/expr.c): the
 * input is an expression, evaluated with names bound to small, huge and negative values
 * and syntax-checked against the same names. Must hold: no crash or UB (UBSan catches
 * signed overflow), an evaluation that succeeds also passes the check, every error has a
 * one-line message, and evaluating twice gives the same answer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "targets/targets.h"

#define MAX_LEN 4096

static void must(int ok, const char *what, const char *expr)
{
	if (!ok) {
		fprintf(stderr, "fuzz_expr: %s: '%s': %s\n", what, expr, kiln_error_last());
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"n", "B", "T", "BLOCK", "big", "neg", "sm_count"};
	static const int64_t values[] = {7, 3, 65539, 256, INT64_MAX, INT64_MIN, 132};
	if (size > MAX_LEN)
		return 0;
	char *expr = malloc(size + 1);
	memcpy(expr, data, size);
	expr[size] = '\0';
	kiln_env env;
	kiln_env_init(&env);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		kiln_env_set(&env, names[i], values[i]);
	int64_t v1 = 0, v2 = 0;
	kiln_err e1 = kiln_expr_eval(&v1, expr, &env, "fuzz");
	if (e1)
		must(kiln_error_last()[0] && !strchr(kiln_error_last(), '\n'), "error message", expr);
	kiln_err e2 = kiln_expr_eval(&v2, expr, &env, "fuzz");
	must(e1 == e2 && (e1 || v1 == v2), "not deterministic", expr);
	kiln_err ec = kiln_expr_check(expr, names, sizeof(names) / sizeof(names[0]), "fuzz");
	if (!e1)
		must(ec == 0, "evaluates but fails the check", expr);
	/* with no names bound, an expression that uses one must fail, never crash */
	kiln_env empty;
	kiln_env_init(&empty);
	(void)kiln_expr_eval(&v1, expr, &empty, "fuzz");
	(void)kiln_expr_check(expr, NULL, 0, "fuzz");
	kiln_error_clear();
	free(expr);
	return 0;
}
