/*
 * specop.h — what an op's normaliser (struct sfs_op_type.normalise, op.h) may use
 * of the spec parser: field getters that check a value and report
 * `vertex "KEY": field "FP.FIELD": reason`, references to other vertices, and
 * the normalised op tree it writes (spec.h states the normalised shapes).
 *
 * A normaliser runs once per vertex, in pass 1 of sfs_spec_parse (spec.c): it
 * validates the raw vertex object, writes every hashed field with its default
 * into `op`, appends the progress summary, and keeps what its op will need at
 * run time in a typed struct it hangs on sfs_norm_vertex(c)->params (freed with
 * the type's params_free).  A reference becomes a placeholder in `op` whose
 * place in the op's canonical bytes pass 3 fills with "sha256:<hex>:<N>"
 * (`op` itself is dropped when the normaliser returns: keep nothing of it, nor
 * of any jansson value made meanwhile; the raw vertex lives as long as the
 * parse, so params copy what they keep), and its input index is written to the
 * slot the normaliser gives (a field of its params; the params must not move).
 *
 * Tree allocations may fail silently into a sticky flag (sfs_norm_set/put);
 * sfs_norm_oom() tells.  Every getter returns 0 or a negative errno, having set
 * the message.  fp is the field path of the object the field sits in ("" at the
 * top, "mounts[0]", "actions[2].mkfile").
 */
#ifndef SFS_SPECOP_H
#define SFS_SPECOP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"
#include "strv.h"
#include "spec.h"

#define SFS_NORM_NO_INPUT ((size_t)-1) /* an input slot no ref fills */

struct sfs_norm; /* one vertex being normalised */

const struct sfs_spec_ctx *sfs_norm_ctx(const struct sfs_norm *c);
const struct sfs_spec_limits *sfs_norm_limits(const struct sfs_norm *c);
/* The vertex being made: a normaliser sets noutputs, timeout and params. */
struct sfs_spec_vertex *sfs_norm_vertex(struct sfs_norm *c);
/* Uses of the same ref share one input (file: base and copy `from`). */
void sfs_norm_share_inputs(struct sfs_norm *c);

/* ---- errors ---- */

/* The message for field fp.field (either may be ""); returns -abs(err). */
int sfs_norm_errc(struct sfs_norm *c, int err, const char *fp, const char *field, const char *fmt,
		  ...) __attribute__((format(printf, 5, 6)));
#define sfs_norm_err(c, fp, field, ...) sfs_norm_errc(c, EINVAL, fp, field, __VA_ARGS__)
/* "field[i]", or "field[i].sub" when sub is not NULL, into fp (size bytes, cut
 * to fit): the path an element's messages name, made for every element. */
void sfs_norm_elem_path(char *fp, size_t size, const char *field, size_t i, const char *sub);
/* A user-written name made safe to quote in a message: escaped and truncated. */
const char *sfs_norm_esc(char *buf, size_t size, const char *s);
/* "unknown field" for a member of obj named in neither list (NULL-terminated). */
int sfs_norm_unknown_fields(struct sfs_norm *c, const char *fp, json_t *obj, const char *const *a,
			    const char *const *b);

/* ---- field getters (the field absent: the default, or "is required") ---- */

int sfs_norm_str(struct sfs_norm *c, json_t *obj, const char *fp, const char *field, bool required,
		 const char *def, const char **ret);
int sfs_norm_bool(struct sfs_norm *c, json_t *obj, const char *fp, const char *field, bool *ret);
/* A path inside a tree; "" (the root) only when allow_root. */
int sfs_norm_path(struct sfs_norm *c, json_t *obj, const char *fp, const char *field, bool required,
		  bool allow_root, const char *def, const char **ret);
/* A list of fnmatch patterns, as a new array. */
int sfs_norm_globs(struct sfs_norm *c, json_t *obj, const char *fp, const char *field,
		   json_t **ret);
/* `mode`: a string of octal digits <= 07777, as a new string of 4 digits. */
int sfs_norm_mode(struct sfs_norm *c, json_t *obj, const char *fp, unsigned def, json_t **ret);
/* An absolute host path j, outside the mount; *ret gets it cleaned and malloc'd. */
int sfs_norm_host_path(struct sfs_norm *c, const char *fp, const char *field, json_t *j,
		       char **ret);
/*
 * A reference "key" / "key:N" j in field fp.field: checks it, records the use
 * and returns its placeholder (filled in pass 3).  top: the top-level field
 * (for a cycle's message); path: the selector used through (NULL or "" for the
 * whole input); input: where pass 3 writes the input index (may be NULL).
 */
int sfs_norm_ref(struct sfs_norm *c, json_t *j, const char *fp, const char *field, const char *top,
		 const char *path, bool content_func, size_t *input, json_t **ret);
/* Splits "key" / "key:N"; 0 or -EINVAL for bad syntax. */
int sfs_spec_split_ref(const char *s, size_t *ret_keylen, int *ret_output);

/* The strings of a normalised array of strings (a glob list), NULL-terminated
 * and malloc'd for a vertex's params; NULL when out of memory. */
char **sfs_norm_strv(const json_t *arr); /* freed by strv_free_argv (strv.h) */

/* ---- the normalised tree ---- */

/* Sets v (a new reference, stolen; NULL means out of memory) under k. */
void sfs_norm_set(struct sfs_norm *c, json_t *o, const char *k, json_t *v);
/* Sets child (stolen) under k, or appends it when k is NULL. */
void sfs_norm_put(struct sfs_norm *c, json_t *o, const char *k, json_t *child);
/* o is not NULL (else the out-of-memory flag is set). */
bool sfs_norm_ok(struct sfs_norm *c, json_t *o);
/* A jansson call's result r < 0 sets the out-of-memory flag. */
void sfs_norm_check(struct sfs_norm *c, int r);
bool sfs_norm_oom(const struct sfs_norm *c);

#endif
