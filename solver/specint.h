/*
 * specint.h — the parser's own state, shared by spec.c (document, vertices, job
 * fields, assembly), specgraph.c (pass 2 and 3: order, inputs, digests) and
 * specpath.c (paths inside trees and on the host).  Private to those files;
 * ops see only specop.h.
 */
#ifndef SFS_SPECINT_H
#define SFS_SPECINT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "strmap.h"
#include "specop.h"

#define SFS_SPEC_KEY_MAX 128
#define SFS_SPEC_COMPONENT_MAX 255

/* One reference of a vertex to an output of another, in Inputs() order. */
struct use {
	json_t *op_node; /* placeholder string in the op tree */
	size_t vertex;	 /* index in bytewise key order (pass 1 and 2) */
	int output;
	const char *field; /* top-level field, for the cycle message */
	const char *path;  /* the path used through (borrowed from the raw JSON); NULL: whole */
	bool content_func;
	size_t *input; /* the normaliser's slot for the input index, or NULL */
};

struct pv {
	struct sfs_spec_vertex v;
	struct use *uses;
	size_t nuses, cap;
	bool dedup; /* file: uses of the same ref share one input */
};

struct parse {
	const struct sfs_spec_ctx *ctx;
	struct sfs_spec_limits lim;
	size_t n;
	const char **keys; /* sorted bytewise; borrowed from the root */
	json_t **raw;
	size_t *noutputs;
	struct strmap index; /* key -> (void *)(index + 1) */
	struct pv *pv;
	bool oom; /* a jansson allocation failed; checked once per vertex */
	char **ret_msg;
};

/* The vertex being validated; key NULL for the job-level fields. */
struct sfs_norm {
	struct parse *p;
	struct pv *pv;
	const char *key;
};

/* ---- specgraph.c ---- */

/* Pass 2: fills order[] with indexes so inputs come first, ties by key; a cycle
 * is reported naming its vertices. */
int sfs_spec_topo_sort(struct parse *p, size_t *order);
/* Pass 3 for one vertex whose inputs are done: Inputs(), selectors, the op
 * bytes and both digests; drops the op tree. */
int sfs_spec_finish_vertex(struct parse *p, struct pv *pv);

/* ---- specpath.c ---- */

/* Why a path inside a tree is bad, or NULL when it is fine. */
const char *sfs_spec_tree_path_problem(const char *s, size_t len, bool allow_root);
/* "/a//b/./c/" -> "/a/b/c"; ".." is kept (it depends on symlinks).  malloc'd. */
char *sfs_spec_clean_host_path(const char *s);
/* Does host path p resolve into the mount point mp (canonical)? */
int sfs_spec_host_path_inside(const char *p, const char *mp, bool *ret_inside);

#endif
