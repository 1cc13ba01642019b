/* util: the one error type, per-thread error messages, bounded buffers, files,
 * SHA-256, a portable seeded RNG, clocks and strict JSON field readers.
 * Everything else in kiln builds on these; util depends on nothing of kiln's. */
#ifndef KILN_UTIL_H
#define KILN_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdbool.h>

/* ---- errors (libgit2 style): 0 ok, negative codes, a per-thread message ---- */
typedef int kiln_err;
enum {
	KILN_OK = 0,
	KILN_ERR = -1,          /* generic failure */
	KILN_ENOMEM = -2,
	KILN_EIO = -3,          /* file or OS error */
	KILN_EINVAL = -4,       /* bad input from a user, a file or an LLM */
	KILN_ENOTFOUND = -5,
	KILN_EUNSUPPORTED = -6, /* valid but not supported here (e.g. by the emulator) */
	KILN_ECOMPILE = -7,     /* NVRTC / nvJitLink rejected the source */
	KILN_ETIMEOUT = -8,
	KILN_EDEVICE = -9,      /* driver / device failure */
	KILN_EFAULT = -10,      /* a kernel faulted (out of bounds, race, budget, ...) */
	KILN_ELLM = -11,        /* the LLM service failed */
	KILN_EBUDGET = -12,     /* a budget is exhausted */
	KILN_EINTR = -13,       /* interrupted by a signal */
	KILN_ELOCKED = -14,     /* resource held by another process */
	KILN_EDB = -15,         /* SQLite */
	KILN_EGIT = -16,        /* libgit2 */
	KILN_EOVERFLOW = -17,   /* arithmetic overflow in an expression */
	KILN_ENET = -18,        /* network / HTTP */
	KILN_ECORRUPT = -19,    /* damaged file or database */
	KILN_EVERIFY = -20,     /* a candidate failed verification */
};

/* Sets the calling thread's message (printf-style, one line) and returns code,
 * so callers write `return kiln_error_set(KILN_EINVAL, "...")`. */
kiln_err kiln_error_set(kiln_err code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Prefixes the current message with context ("loading x: <old message>"); returns code.
 * Use it instead of kiln_error_set when a lower level already explained the failure. */
kiln_err kiln_error_wrap(kiln_err code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The calling thread's last message; "" when none. Borrowed until the next set. */
const char *kiln_error_last(void);
kiln_err kiln_error_code(void);
void kiln_error_clear(void);
/* A short name for a code ("invalid input", "out of memory", ...). */
const char *kiln_err_name(kiln_err code);

/* ---- allocation helpers: abort-free, set KILN_ENOMEM on failure ---- */
void *kiln_malloc(size_t n);
void *kiln_calloc(size_t n, size_t size);
void *kiln_realloc(void *p, size_t n);
/* Allocation-failure injection for tests (thread-local): after n more successful
 * allocations through kiln_malloc/calloc/realloc, every one fails (KILN_ENOMEM) until
 * kiln_alloc_fail_after(-1). kiln_alloc_should_fail() counts one allocation against the
 * budget, for hooks of other allocators (cJSON_InitHooks in tests). */
void kiln_alloc_fail_after(long n);
bool kiln_alloc_should_fail(void);
char *kiln_strdup(const char *s);
char *kiln_strndup(const char *s, size_t n);
/* printf into a fresh heap string (caller frees); NULL + KILN_ENOMEM on failure. */
char *kiln_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- growable byte buffer with a cap (curl dynbuf, sqlite3_str): text from the network
 * or an LLM always goes into one of these. data is NUL-terminated whenever len > 0.
 * Errors are sticky: once an append fails (cap or memory), every later append is a no-op
 * that returns the same error, so a text is never sent with a hole in its middle; build
 * it with unchecked appends and check kiln_buf_error once at the end. ---- */
typedef struct kiln_buf {
	char *data;   /* owned */
	size_t len;   /* bytes used, excluding the terminating NUL */
	size_t cap;   /* bytes allocated */
	size_t max;   /* hard cap on len; 0 = unlimited */
	kiln_err err; /* the first failed append's error; KILN_OK until then */
} kiln_buf;
#define KILN_BUF_INIT {NULL, 0, 0, 0, KILN_OK}
void kiln_buf_init(kiln_buf *b, size_t max);
kiln_err kiln_buf_append(kiln_buf *b, const void *data, size_t n);
kiln_err kiln_buf_puts(kiln_buf *b, const char *s);
kiln_err kiln_buf_printf(kiln_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
kiln_err kiln_buf_vprintf(kiln_buf *b, const char *fmt, va_list ap);
/* The sticky error (KILN_OK when every append so far succeeded). When it is set the
 * thread's last error still describes it only if nothing failed since; callers that
 * report it later should use kiln_buf_check. */
static inline kiln_err kiln_buf_error(const kiln_buf *b) { return b->err; }
/* KILN_OK, or sets "WHAT exceeds the N-byte cap" / out of memory and returns the error:
 * the one check at the end of building a text. */
kiln_err kiln_buf_check(const kiln_buf *b, const char *what);
/* Hands the data to the caller (who frees it) and resets the buffer. Never NULL:
 * an empty buffer yields "". */
char *kiln_buf_detach(kiln_buf *b);
/* Empties the buffer and clears its sticky error. */
void kiln_buf_reset(kiln_buf *b);
void kiln_buf_free(kiln_buf *b);

/* ---- text for terminals and commit messages (text.c) ----
 * Everything kiln prints for a human or writes into a commit message that came from the
 * model (titles, notes, sources, replies, compile logs, error messages quoting them) goes
 * through these: C0 controls, DEL, C1 controls, invalid UTF-8 bytes and bidi overrides
 * become visible escapes (\x1b, \r, \u202e), so no ESC/OSC/CSI sequence, carriage return
 * or forged line reaches a terminal. KILN_TEXT_MULTILINE keeps \n and \t (sources, logs,
 * diffs); without it a value stays on one line. Linear time. JSON output needs none of it
 * (cJSON escapes controls). */
enum { KILN_TEXT_LINE = 0, KILN_TEXT_MULTILINE = 1 };
/* Appends text[0..n) escaped to b. */
kiln_err kiln_text_escape_to(kiln_buf *b, const char *text, size_t n, unsigned flags);
/* A fresh escaped copy (caller frees); NULL + KILN_ENOMEM on failure. NULL text -> "". */
char *kiln_text_escape(const char *text, unsigned flags);
/* Writes text escaped to f (no newline added). */
void kiln_text_print(FILE *f, const char *text, unsigned flags);
/* Where to cut text for one line of at most max bytes: after a whole word (never inside a
 * word or a UTF-8 sequence; trailing " ,;:" dropped); strlen(text) when it fits. */
size_t kiln_text_word_cut(const char *text, size_t max);
/* Every log kiln keeps is capped: at most max bytes, the head and the tail with a marker
 * line between ("[... N bytes cut by kiln ...]"), cut at UTF-8 character boundaries. Takes
 * s (heap, may be NULL) and returns it or a fresh copy (s freed then). */
#define KILN_LOG_MAX ((size_t)64 << 10)
char *kiln_text_cap(char *s, size_t max);

/* ---- files ---- */
/* Reads a whole file into a NUL-terminated heap buffer (caller frees). max = 0: no cap. */
kiln_err kiln_file_read(char **out, size_t *out_len, const char *path, size_t max);
/* Writes via a temp file + fsync + rename, so readers never see a partial file. */
kiln_err kiln_file_write_atomic(const char *path, const void *data, size_t len);
kiln_err kiln_mkdir_p(const char *path);
bool kiln_path_exists(const char *path);
/* path joined with name into a fresh heap string. */
char *kiln_path_join(const char *dir, const char *name);

/* ---- SHA-256 (content hashes for caches and candidates) ---- */
typedef struct kiln_sha256 {
	uint32_t h[8];
	uint64_t total;    /* bytes hashed */
	uint8_t block[64];
	size_t used;       /* bytes in block */
} kiln_sha256;
void kiln_sha256_init(kiln_sha256 *s);
void kiln_sha256_update(kiln_sha256 *s, const void *data, size_t n);
void kiln_sha256_final(kiln_sha256 *s, uint8_t out[32]);
/* Hex digest of data (65 bytes incl. NUL). */
void kiln_sha256_hex(char out[65], const void *data, size_t n);
void kiln_hex(char *out, const uint8_t *bytes, size_t n); /* out holds 2n+1 */

/* ---- deterministic RNG: same seed, same stream on every machine ----
 * xoshiro256** seeded through splitmix64; normals by Box-Muller in double. */
typedef struct kiln_rng { uint64_t s[4]; } kiln_rng;
void kiln_rng_seed(kiln_rng *r, uint64_t seed);
uint64_t kiln_rng_u64(kiln_rng *r);
double kiln_rng_uniform(kiln_rng *r);          /* [0, 1) with 53 random bits */
double kiln_rng_normal(kiln_rng *r);           /* mean 0, sd 1 */
uint64_t kiln_rng_below(kiln_rng *r, uint64_t n); /* [0, n), unbiased; n > 0 */
/* A fresh seed from the OS (getrandom / /dev/urandom), for "fresh inputs each time". */
uint64_t kiln_seed_fresh(void);

/* ---- clocks ---- */
double kiln_now_s(void);        /* monotonic seconds */
double kiln_wall_s(void);       /* seconds since the Unix epoch */
/* ISO-8601 UTC "2026-11-23T23:05:00Z" of epoch seconds into out (>= 21 bytes). */
void kiln_iso8601(char *out, size_t n, double epoch_s);

/* ---- strict JSON readers over cJSON. Every failure message names the file and
 * the field path, e.g. "targets/adamw/target.json: buffers[2].dtype: expected a
 * string". `where` is "file" or "file: field" context supplied by the caller. ---- */
struct cJSON;
kiln_err kiln_json_parse_file(struct cJSON **out, const char *path, size_t max_bytes);
/* Both parse with the one strict rule (kiln_json_check) first: text after the value, a
 * comment, a raw control character in a string, a leading zero... are KILN_EINVAL. */
kiln_err kiln_json_parse(struct cJSON **out, const char *text, size_t len, const char *where);
/* RFC 8259, strictly (util/json_check.c): 0 when text[0..len) is one JSON value and
 * nothing else; KILN_EINVAL naming where, the line, the column and the reason. Linear. */
kiln_err kiln_json_check(const char *text, size_t len, const char *where);
/* Length of the valid UTF-8 sequence at s (s[0] >= 0x80), 0 when invalid. */
size_t kiln_utf8_seq_len(const unsigned char *s, size_t avail);
/* Required fields: missing or wrong type is KILN_EINVAL naming where.key. */
kiln_err kiln_json_string(const char **out, const struct cJSON *obj, const char *key, const char *where);
kiln_err kiln_json_number(double *out, const struct cJSON *obj, const char *key, const char *where);
kiln_err kiln_json_int(int64_t *out, const struct cJSON *obj, const char *key, const char *where);
kiln_err kiln_json_bool(bool *out, const struct cJSON *obj, const char *key, const char *where);
kiln_err kiln_json_array(const struct cJSON **out, const struct cJSON *obj, const char *key, const char *where);
kiln_err kiln_json_object(const struct cJSON **out, const struct cJSON *obj, const char *key, const char *where);
/* Optional variants: absent -> *out unchanged, returns 0; present but wrong type -> error. */
kiln_err kiln_json_opt_string(const char **out, const struct cJSON *obj, const char *key, const char *where);
kiln_err kiln_json_opt_number(double *out, const struct cJSON *obj, const char *key, const char *where);
kiln_err kiln_json_opt_int(int64_t *out, const struct cJSON *obj, const char *key, const char *where);
kiln_err kiln_json_opt_bool(bool *out, const struct cJSON *obj, const char *key, const char *where);
/* Rejects keys not in the NULL-terminated list `allowed` (catches typos in user files). */
kiln_err kiln_json_only_keys(const struct cJSON *obj, const char *const *allowed, const char *where);

/* ---- limits on what model-written code may cost (util/limits.c) ---- */
#define KILN_COMPILE_TIMEOUT_DEFAULT 60.0            /* seconds per NVRTC + nvJitLink */
#define KILN_CACHE_MAX_DEFAULT ((int64_t)1 << 30)    /* compile cache bytes (LRU) */
#define KILN_SCRATCH_FACTOR_DEFAULT 4.0              /* scratch <= 4 x the target's buffers */
typedef struct kiln_limits {
	double compile_timeout_s; /* --compile-timeout */
	int64_t max_memory;       /* --max-memory, bytes per child; 0 = half the RAM */
	int64_t cache_max;        /* --cache-max, bytes; 0 = no cap */
	double scratch_factor;    /* --max-scratch: scratch bytes per byte of target buffers */
} kiln_limits;
/* The process-wide limits (defaults until cli/main.c sets them). Borrowed. */
const kiln_limits *kiln_limits_get(void);
void kiln_limits_set(const kiln_limits *l);
/* max_memory, or half the physical RAM (at least 1 GiB) when it is 0. */
int64_t kiln_limits_memory(void);
/* "512M", "4G", "1GiB", "1048576" -> bytes. */
kiln_err kiln_parse_size(int64_t *out, const char *s);
/* In a freshly forked child: RLIMIT_CPU (cpu_s + 1, then SIGKILL 5 s later), RLIMIT_AS
 * (memory; skipped under ASan), RLIMIT_FSIZE (file_bytes), no core files. 0 = unset. */
void kiln_limits_apply_child(double cpu_s, int64_t memory, int64_t file_bytes);
/* False in sanitizer builds, where the memory limit cannot be set. */
bool kiln_limits_memory_enforced(void);

/* ---- redaction (util/redact.c): secrets never stored, printed or sent ---- */
/* Registers a value to redact (process-wide; call before threads start). Values under 8
 * bytes or without a letter are ignored. */
kiln_err kiln_redact_add(const char *secret);
/* Registers the values of environment variables whose names contain KEY, TOKEN, SECRET,
 * PASSWORD, PASSWD or CREDENTIAL (case-insensitive). */
kiln_err kiln_redact_from_env(void);
size_t kiln_redact_count(void);
void kiln_redact_reset(void); /* tests */
/* Takes s (heap, may be NULL) and returns it with every registered secret replaced by
 * "[redacted]" (possibly a new pointer; s is freed then). Linear in strlen(s) per secret.
 * Out of memory: the secrets are overwritten with '*' in place instead. */
char *kiln_redact(char *s);
/* The same for one extra secret (a key not registered, e.g. in a test). */
char *kiln_redact_one(char *s, const char *secret);
/* A redacted heap copy of s when s holds a secret, else NULL (nothing to do). */
char *kiln_redact_dup(const char *s);

#define KILN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
