/* kiln/reference.h: the public interface of a target's float64 reference written in C
 * (a target folder's reference.c). kiln compiles reference.c with $CC (else cc) into a
 * shared object, caches it by content and compiler version, and calls kiln_reference()
 * in a child process with a deadline for every input set. Stable: a reference written
 * against KILN_REF_ABI 1 keeps building and running with later kilns. */
#ifndef KILN_REFERENCE_H
#define KILN_REFERENCE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KILN_REF_ABI 1

/* One input set as the reference sees it (opaque). Every buffer of target.json is a
 * row-major double array: `in` buffers hold the inputs, `inout` buffers the initial
 * values that the reference overwrites with the final ones, `out` buffers zeros that it
 * fills. */
typedef struct kiln_ref_io kiln_ref_io;

/* The buffer named `name` (NULL when the target has none). */
double *kiln_ref_buf(kiln_ref_io *io, const char *name);
/* The per-element slack of an out/inout buffer: extra absolute tolerance, zero unless
 * the reference sets it, for elements where the math allows two answers (a clip
 * boundary, a sign tie, a rounding midpoint). NULL for `in` buffers and unknown names. */
double *kiln_ref_slack(kiln_ref_io *io, const char *name);
/* Elements of the buffer (0 for unknown names). */
size_t kiln_ref_count(const kiln_ref_io *io, const char *name);
/* A scalar as the kernel sees it (rounded to its dtype; the value of this input set's
 * regime); NaN for unknown names. */
double kiln_ref_scalar(const kiln_ref_io *io, const char *name);
/* A size symbol's value for this input set; -1 for unknown names. */
int64_t kiln_ref_symbol(const kiln_ref_io *io, const char *name);
/* Records a one-line, printf-style reason why the reference cannot run these inputs
 * (kiln reports it with the target's name) and returns -1 for `return kiln_ref_fail(...)`. */
int kiln_ref_fail(kiln_ref_io *io, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

/* What reference.c defines: computes every out/inout buffer from the inputs. Returns 0,
 * or nonzero (after kiln_ref_fail) when it cannot. It must be deterministic (the same
 * inputs give the same bits) and must not keep state between calls. */
int kiln_reference(kiln_ref_io *io);

#ifdef __cplusplus
}
#endif

#endif
