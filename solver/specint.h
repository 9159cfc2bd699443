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

/* ---- specalloc.c: the arena jansson allocates from during a parse ---- */

struct sfs_jchunk;
#define SFS_JARENA_CLASSES 8 /* spare small blocks: 8, 16, ... 64 bytes */
#define SFS_JARENA_RECENT 8  /* allocations remembered with their size */
struct sfs_jarena {
	struct sfs_jchunk *chunks; /* newest first */
	struct sfs_jchunk *reserve; /* a bump chunk a release dropped, or NULL */
	char *pos, *lim;	   /* the bump chunk's free space */
	size_t next;		   /* the size of the next chunk */
	struct sfs_jarena *outer;  /* the thread's arena before this one */
	/* small blocks freed soon after they were made (the lexer's copy of each
	 * object key, dropped once the object's pair holds its own): a list a
	 * size class, linked through the blocks, taken by allocations of that
	 * class; emptied by a release */
	void *spare[SFS_JARENA_CLASSES];
	struct sfs_jrecent {
		void *p;
		size_t n;
	} recent[SFS_JARENA_RECENT]; /* a ring, the newest at recent_next - 1 */
	unsigned recent_next;
};
struct sfs_jarena_mark {
	struct sfs_jchunk *chunks;
	char *pos, *lim;
};

/* From now on this thread's jansson values are carved from a (until _end, which
 * drops them all: no value made in between may be used or decref'd after). */
void sfs_jarena_begin(struct sfs_jarena *a);
void sfs_jarena_end(struct sfs_jarena *a);
/* Everything allocated after the mark is dropped by the release. */
struct sfs_jarena_mark sfs_jarena_mark(const struct sfs_jarena *a);
void sfs_jarena_release(struct sfs_jarena *a, struct sfs_jarena_mark m);
/* A deep copy of v made with malloc: it may outlive the arena.  NULL: no memory. */
json_t *sfs_jarena_copy_out(const json_t *v);

/* ---- specscan.c: an object's members by their byte spans ---- */

/* Deeper documents are loaded whole (jansson's own limit is 2048). */
#define SFS_JSCAN_MAX_DEPTH 1024
struct sfs_jobj { /* a cursor over one object's members */
	const char *buf;
	size_t len;
	size_t pos; /* after the '{' or the last member; after the '}' at the end */
	bool first;
	unsigned depth; /* the object's: the document's top level is 1 */
};
struct sfs_jmember {
	const char *key; /* the key's bytes between its quotes (plain: no escapes) */
	size_t klen;
	size_t at, len; /* the value's bytes in buf, for jansson to load */
};

/* Opens the object starting at `at` (after blanks) whose depth is depth.
 * -1: not an object, or not plain (specscan.c says what plain is). */
int sfs_jobj_open(struct sfs_jobj *o, const char *buf, size_t len, size_t at, unsigned depth);
/* 1 and *m: the next member; 0: the object's end; -1: not plain from here. */
int sfs_jobj_next(struct sfs_jobj *o, struct sfs_jmember *m);
/* Only blanks after the object's end. */
bool sfs_jscan_rest_blank(const struct sfs_jobj *o);

/* One reference of a vertex to an output of another, in Inputs() order. */
struct use {
	json_t *op_node; /* placeholder in the op tree (pass 1 only) */
	size_t op_at, map_at; /* its hole in the op and cache map templates */
	size_t vertex;	 /* index in bytewise key order (pass 1 and 2) */
	int output;
	const char *field; /* top-level field, for the cycle message */
	char *path;	   /* the path used through, malloc'd (the JSON goes first); NULL: whole */
	bool content_func;
	size_t *input; /* the normaliser's slot for the input index, or NULL */
};

struct pv {
	struct sfs_spec_vertex v;
	struct use *uses;
	size_t nuses, cap;
	bool dedup; /* file: uses of the same ref share one input */
	/* pass 1 to 3: the canonical op bytes, then the cache map's, with a hole
	 * (nothing written) for each ref; the op's take tpl_op bytes */
	char *tpl;
	size_t tpl_op, tpl_len;
};

struct parse {
	const struct sfs_spec_ctx *ctx;
	struct sfs_spec_limits lim;
	size_t n;
	const char **keys; /* sorted bytewise; borrowed from the root or from key_bytes */
	json_t **raw;	   /* a vertex's JSON; streamed: only while it is parsed */
	struct span {	   /* streamed: where each vertex's JSON is in the spec */
		const char *key;
		size_t at, len;
	} * spans;
	char *key_bytes; /* streamed: the keys, each ended by a NUL */
	size_t *noutputs; /* SIZE_MAX: not known yet (streamed: not parsed yet) */
	struct strmap index; /* key -> (void *)(index + 1) */
	struct pv *pv;
	bool oom; /* a jansson allocation failed; checked once per vertex */
	char **ret_msg;
	struct sfs_jarena arena; /* every jansson value of the parse */
	struct strbuf scratch;	 /* reused by each vertex's templates and cache map */
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
/* End of pass 1 for a vertex: its op tree written as the two templates. */
int sfs_spec_write_templates(struct parse *p, struct pv *pv);
/* Pass 3 for one vertex whose inputs are done: Inputs(), selectors, the op
 * bytes and both digests, from the templates (then freed). */
int sfs_spec_finish_vertex(struct parse *p, struct pv *pv);

/* ---- specpath.c ---- */

/* Why a path inside a tree is bad, or NULL when it is fine. */
const char *sfs_spec_tree_path_problem(const char *s, size_t len, bool allow_root);
/* "/a//b/./c/" -> "/a/b/c"; ".." is kept (it depends on symlinks).  malloc'd. */
char *sfs_spec_clean_host_path(const char *s);
/* Does host path p resolve into the mount point mp (canonical)? */
int sfs_spec_host_path_inside(const char *p, const char *mp, bool *ret_inside);

#endif
