/* Unit tests for util/: errors, capped buffers, SHA-256 vectors, the deterministic RNG,
 * atomic files and the strict JSON readers' messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"

static void test_util__error_wrap_keeps_lower_message(void **state)
{
	(void)state;
	kiln_error_set(KILN_ENOTFOUND, "x.json: no such file");
	kiln_err e = kiln_error_wrap(KILN_EINVAL, "loading target '%s'", "adamw");
	assert_int_equal(e, KILN_EINVAL);
	assert_string_equal(kiln_error_last(), "loading target 'adamw': x.json: no such file");
	kiln_error_set(KILN_EIO, "two\nlines");
	assert_null(strchr(kiln_error_last(), '\n'));
}

static void test_util__buf_cap(void **state)
{
	(void)state;
	kiln_buf b;
	kiln_buf_init(&b, 8);
	assert_int_equal(kiln_buf_puts(&b, "12345678"), 0);
	assert_int_equal(kiln_buf_puts(&b, "9"), KILN_EOVERFLOW);
	assert_string_equal(b.data, "12345678");
	char *s = kiln_buf_detach(&b);
	assert_string_equal(s, "12345678");
	free(s);
	kiln_buf_free(&b);

	/* sticky: after a refused append nothing more goes in, so no text has a hole */
	kiln_buf_init(&b, 10);
	kiln_buf_puts(&b, "head ");
	assert_int_equal(kiln_buf_printf(&b, "%s", "too long for it"), KILN_EOVERFLOW);
	assert_int_equal(kiln_buf_puts(&b, "t"), KILN_EOVERFLOW);
	assert_int_equal(kiln_buf_append(&b, "", 0), KILN_EOVERFLOW);
	assert_string_equal(b.data, "head ");
	assert_int_equal(kiln_buf_error(&b), KILN_EOVERFLOW);
	assert_int_equal(kiln_buf_check(&b, "the improve prompt"), KILN_EOVERFLOW);
	assert_string_equal(kiln_error_last(), "the improve prompt exceeds the 10-byte cap");
	kiln_buf_reset(&b);
	assert_int_equal(kiln_buf_check(&b, "x"), KILN_OK);
	assert_int_equal(kiln_buf_puts(&b, "again"), KILN_OK);
	assert_string_equal(b.data, "again");
	kiln_buf_free(&b);
	/* a size near SIZE_MAX is refused, not wrapped */
	kiln_buf_init(&b, 0);
	assert_int_equal(kiln_buf_append(&b, "x", SIZE_MAX - 1), KILN_ENOMEM);
	assert_int_equal(kiln_buf_error(&b), KILN_ENOMEM);
	kiln_buf_free(&b);
}

static void test_util__sha256_vectors(void **state)
{
	(void)state;
	char hex[65];
	kiln_sha256_hex(hex, "", 0);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	kiln_sha256_hex(hex, "abc", 3);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	kiln_sha256_hex(hex, m, strlen(m));
	assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_util__rng_is_deterministic(void **state)
{
	(void)state;
	kiln_rng a, b;
	kiln_rng_seed(&a, 42);
	kiln_rng_seed(&b, 42);
	for (int i = 0; i < 1000; i++)
		assert_true(kiln_rng_u64(&a) == kiln_rng_u64(&b));
	/* a pinned value keeps the stream identical across releases and machines */
	kiln_rng_seed(&a, 1);
	uint64_t first = kiln_rng_u64(&a);
	kiln_rng_seed(&a, 1);
	assert_true(kiln_rng_u64(&a) == first);
	double sum = 0, sq = 0;
	kiln_rng_seed(&a, 7);
	for (int i = 0; i < 100000; i++) {
		double x = kiln_rng_normal(&a);
		sum += x;
		sq += x * x;
	}
	assert_true(sum / 100000 < 0.02 && sum / 100000 > -0.02);
	assert_true(sq / 100000 > 0.97 && sq / 100000 < 1.03);
	for (int i = 0; i < 1000; i++)
		assert_true(kiln_rng_below(&a, 7) < 7);
}

static void test_util__atomic_write_and_read(void **state)
{
	(void)state;
	char dir[] = "/tmp/kiln-util-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *sub = kiln_asprintf("%s/a/b", dir);
	assert_int_equal(kiln_mkdir_p(sub), 0);
	char *path = kiln_path_join(sub, "f.txt");
	assert_int_equal(kiln_file_write_atomic(path, "hello", 5), 0);
	char *text;
	size_t len;
	assert_int_equal(kiln_file_read(&text, &len, path, 0), 0);
	assert_int_equal(len, 5);
	assert_string_equal(text, "hello");
	free(text);
	assert_int_equal(kiln_file_read(&text, &len, path, 3), KILN_EINVAL);
	assert_int_equal(kiln_file_read(&text, &len, "/nonexistent/x", 0), KILN_ENOTFOUND);
	unlink(path);
	free(path);
	free(sub);
	char *cmd = kiln_asprintf("rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static void test_util__json_messages_name_the_field(void **state)
{
	(void)state;
	cJSON *j;
	const char *txt = "{\"name\": 3, \"n\": 1.5, \"ok\": true}";
	assert_int_equal(kiln_json_parse(&j, txt, strlen(txt), "t.json"), 0);
	const char *s;
	int64_t i;
	assert_int_equal(kiln_json_string(&s, j, "name", "t.json"), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "t.json: field \"name\": expected a string"));
	assert_int_equal(kiln_json_int(&i, j, "n", "t.json"), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "expected an integer"));
	assert_int_equal(kiln_json_string(&s, j, "missing", "t.json"), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "missing field \"missing\""));
	s = "default";
	assert_int_equal(kiln_json_opt_string(&s, j, "missing", "t.json"), 0);
	assert_string_equal(s, "default");
	const char *allowed[] = {"name", "n", NULL};
	assert_int_equal(kiln_json_only_keys(j, allowed, "t.json"), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "unknown field \"ok\""));
	cJSON_Delete(j);
	assert_int_equal(kiln_json_parse(&j, "{\n\n,}", 5, "bad.json"), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "bad.json: invalid JSON near line 3"));
}

static void test_util__text_escape_controls(void **state)
{
	(void)state;
	/* ESC/OSC (window title, OSC 52 clipboard), CSI, CR, BEL, DEL, C1 as UTF-8 and raw,
	 * an invalid byte, a bidi override; plain UTF-8 and backslashes stay as they are */
	const char *in = "a\x1b]0;pwn\x07" "b\x1b]52;c;aWQ=\x1b\\\r\x1b[2KPASSED\x7f\xc2\x9b\x9d\xff\xe2\x80\xae\xc3\xa9\\n\t\nz";
	char *line = kiln_text_escape(in, KILN_TEXT_LINE), *multi = kiln_text_escape(in, KILN_TEXT_MULTILINE);
	assert_string_equal(line, "a\\x1b]0;pwn\\ab\\x1b]52;c;aWQ=\\x1b\\\\r\\x1b[2KPASSED\\x7f\\u009b\\x9d\\xff"
				  "\\u202e\xc3\xa9\\n\\t\\nz");
	assert_string_equal(multi, "a\\x1b]0;pwn\\ab\\x1b]52;c;aWQ=\\x1b\\\\r\\x1b[2KPASSED\\x7f\\u009b\\x9d\\xff"
				   "\\u202e\xc3\xa9\\n\t\nz");
	for (const char *p = line; *p; p++)
		assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
	free(line);
	free(multi);
	/* truncated and overlong sequences, surrogates: byte escapes; linear time on 4 MiB */
	char *bad = kiln_text_escape("\xe2\x80|\xc0\xaf|\xed\xa0\x80|\xf0\x9f\x98\x80", 0);
	assert_string_equal(bad, "\\xe2\\x80|\\xc0\\xaf|\\xed\\xa0\\x80|\xf0\x9f\x98\x80");
	free(bad);
	size_t n = 4u << 20;
	char *big = malloc(n + 1);
	for (size_t i = 0; i < n; i++)
		big[i] = i % 3 ? 'x' : '\x1b';
	big[n] = 0;
	char *eb = kiln_text_escape(big, 0);
	assert_int_equal(strlen(eb), n + 3 * ((n + 2) / 3));
	free(eb);
	free(big);
}

/* The one strict JSON rule: what history.db's json_valid() and RFC 8259 accept, no more. */
static void test_util__json_check_is_strict(void **state)
{
	(void)state;
	static const char *const good[] = {
		"{}", "[]", " {\"a\": [1, -0.5, 2e10, 1E-3, true, false, null]} \n", "\"\\u00e9\\n\"", "0",
		"-0", "\"caf\xc3\xa9\"", "[[[[]]]]", "{\"a\":{\"b\":{}}}", "\"\\ud83d\\ude00\"", "\"\\uD83D\\uDE00x\""};
	static const char *const bad[] = {
		"{} // comment", "{}x", "{} {}", "{\"a\": 01}", "[1,]", "{\"a\":1,}", "[+1]", "[.5]", "[1.]",
		"[1e]", "[0x10]", "{\"a\":\"tab\there\"}", "\"\\x41\"", "\"\\u12\"", "/* c */ {}",
		"{'a': 1}", "[NaN]", "[Infinity]", "\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "[", "{\"a\"}",
		"{\"a\" 1}", "[1 2]", "", "   ", "tru", "[true false]", "{\"a\":1 \"b\":2}", "[}", "{]", "\xEF\xBB\xBF{}",
		/* lone surrogates (cJSON refuses them too: the fuzzer found the difference) */
		"\"x\\udddd\"", "\"\\ud83d\"", "\"\\ud83dx\"", "\"\\ud83d\\u0041\"", "\"\\ud83d\\ud83d\"", "\"\\ud83d\\"};
	for (size_t i = 0; i < KILN_ARRAY_LEN(good); i++)
		if (kiln_json_check(good[i], strlen(good[i]), "t") != 0)
			fail_msg("rejected good JSON %zu (%s): %s", i, good[i], kiln_error_last());
	for (size_t i = 0; i < KILN_ARRAY_LEN(bad); i++)
		if (kiln_json_check(bad[i], strlen(bad[i]), "t") != KILN_EINVAL)
			fail_msg("accepted bad JSON %zu: %s", i, bad[i]);
	assert_int_equal(kiln_json_check("{\"a\": 1} // x", 14, "plan"), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "comment"));
	assert_non_null(strstr(kiln_error_last(), "plan: invalid JSON near line 1, column 10"));
	/* nesting past the cap is refused, not recursed into */
	char deep[2000];
	memset(deep, '[', sizeof deep);
	assert_int_equal(kiln_json_check(deep, sizeof deep, "t"), KILN_EINVAL);
	/* kiln_json_parse applies it */
	cJSON *j = NULL;
	assert_int_equal(kiln_json_parse(&j, "{\"launches\": []}\n// tail", 24, "launch.json"), KILN_EINVAL);
	assert_null(j);
}

/* Redaction: registered secrets and secret-named environment variables, everywhere in a
 * text, in one linear pass per secret (a 1 MiB text made of the key is fine). */
static void test_util__redact(void **state)
{
	(void)state;
	kiln_redact_reset();
	setenv("KILN_TEST_API_KEY", "sk-test-0123456789abcdef", 1);
	setenv("my_db_password", "correct horse battery", 1);
	setenv("KILN_TEST_TOKEN_SHORT", "abc", 1);    /* too short: ignored */
	setenv("KILN_TEST_KEY_NUMBER", "123456789", 1); /* a number: ignored */
	setenv("KILN_TEST_PLAIN", "not-a-secret-value", 1);
	assert_int_equal(kiln_redact_from_env(), 0);
	assert_int_equal(kiln_redact_add("sk-test-0123456789abcdef"), 0); /* twice: once */
	char *s = kiln_redact(kiln_strdup("a sk-test-0123456789abcdef b correct horse battery c abc 123456789 "
					  "not-a-secret-value sk-test-0123456789abcdef"));
	assert_string_equal(s, "a [redacted] b [redacted] c abc 123456789 not-a-secret-value [redacted]");
	free(s);
	assert_null(kiln_redact_dup("nothing to see"));
	char *d = kiln_redact_dup("x correct horse battery");
	assert_string_equal(d, "x [redacted]");
	free(d);
	/* longest first: a secret inside a longer one does not leave the rest */
	assert_int_equal(kiln_redact_add("sk-test-0123456789abcdef-and-more"), 0);
	s = kiln_redact(kiln_strdup("[sk-test-0123456789abcdef-and-more]"));
	assert_string_equal(s, "[[redacted]]");
	free(s);
	/* 1 MiB of nothing but the key: every copy goes */
	const char *key = "sk-test-0123456789abcdef";
	size_t kl = strlen(key), reps = (1u << 20) / kl;
	char *big = malloc(reps * kl + 1);
	for (size_t i = 0; i < reps; i++)
		memcpy(big + i * kl, key, kl);
	big[reps * kl] = '\0';
	big = kiln_redact(big);
	assert_int_equal(strlen(big), reps * 10);
	assert_null(strstr(big, "sk-test"));
	free(big);
	/* an extra key that is not registered */
	s = kiln_redact_one(kiln_strdup("Bearer zz-unregistered-key"), "zz-unregistered-key");
	assert_string_equal(s, "Bearer [redacted]");
	free(s);
	unsetenv("KILN_TEST_API_KEY");
	unsetenv("my_db_password");
	kiln_redact_reset();
	assert_int_equal(kiln_redact_count(), 0);
}

/* A capped log keeps its head and tail, says what was cut and never splits a character. */
static void test_util__text_cap(void **state)
{
	(void)state;
	size_t n = 200000;
	char *s = malloc(n + 1);
	for (size_t i = 0; i < n; i += 2) {
		s[i] = (char)0xC3; /* é, two bytes, so a cut at an odd offset would split one */
		s[i + 1] = (char)0xA9;
	}
	memcpy(s, "HEAD", 4);
	memcpy(s + n - 4, "TAIL", 4);
	s[n] = '\0';
	s = kiln_text_cap(s, KILN_LOG_MAX);
	size_t len = strlen(s);
	assert_true(len <= KILN_LOG_MAX);
	assert_true(len > KILN_LOG_MAX - 8);
	assert_memory_equal(s, "HEAD", 4);
	assert_memory_equal(s + len - 4, "TAIL", 4);
	assert_non_null(strstr(s, "[... 200000 bytes cut by kiln: head and tail kept ...]"));
	assert_int_equal(kiln_json_check("\"x\"", 3, "t"), 0); /* sanity */
	char *q = kiln_asprintf("\"%s\"", strstr(s, "]\n") + 2);
	assert_int_equal(kiln_json_check(q, strlen(q), "tail"), 0); /* still valid UTF-8 */
	free(q);
	free(s);
	char *small = kiln_text_cap(kiln_strdup("short"), KILN_LOG_MAX);
	assert_string_equal(small, "short");
	free(small);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util__error_wrap_keeps_lower_message),
		cmocka_unit_test(test_util__buf_cap),
		cmocka_unit_test(test_util__sha256_vectors),
		cmocka_unit_test(test_util__rng_is_deterministic),
		cmocka_unit_test(test_util__atomic_write_and_read),
		cmocka_unit_test(test_util__json_messages_name_the_field),
		cmocka_unit_test(test_util__text_escape_controls),
		cmocka_unit_test(test_util__json_check_is_strict),
		cmocka_unit_test(test_util__redact),
		cmocka_unit_test(test_util__text_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
