/*
 * import.c — reads a BuildKit cache export (OCI image layout) into the local
 * cache for good (docs/export.md §10).
 *
 * Open parses everything but the layer blobs: index.json -> manifest (three
 * forms) -> cache config, then checks the records (links in range, no loops)
 * and resolves each result to its layer chain, base first.  Into unpacks each
 * distinct chain into a result tree, saves one record per tree, and then, in
 * one key-storage batch, writes keys, links and results in dependency order.
 *
 * Keys: a record without inputs is the root key whose id is its digest (the
 * solver's rootKey id).  A record with inputs gets the id its inputs already
 * link to in the record form (import.h), or a fresh random id.  Links
 * are written in that form on every input alternative, so a re-import finds
 * the same ids and adds nothing.
 *
 * Trees keep dirs, regular files and symlinks; owners and times are dropped,
 * hardlinks become copies, other types are dropped with a warning.  Whiteouts
 * (".wh.<name>", ".wh..wh..opq") delete what lower layers put there.
 *
 * Blobs are opened with O_NOFOLLOW and checked against their digests, so a
 * crafted layout cannot make the daemon read files other than its blobs.
 *
 * Locking: a cache_import is used by one thread at a time; it holds no locks.
 * The content store and key storage lock themselves.
 */
#include "import.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "array.h"
#include "clock.h"
#include "err.h"
#include "fdio.h"
#include "idset.h"
#include "oci.h"
#include "result_storage.h"
#include "strbuf.h"
#include "strmap.h"
#include "tree.h"
#include "unpack.h"

/* A mark of the depth-first walks over layers and over records. */
enum visit {
	VISIT_NEW,	/* not reached yet */
	VISIT_ON_STACK, /* being walked: reaching it again is a loop */
	VISIT_DONE,
};

/* A layer and, once a result names it as its top, what its parent chain
 * is (worked out once per layer, not once per result). */
struct im_layer {
	char blob[SFS_DIGEST_SIZE];
	int parent;
	unsigned char state;	    /* enum visit */
	bool absent;		    /* a blob of its chain is not in the manifest */
	unsigned depth;		    /* layers in its chain, itself included */
	char chain_id[SFS_HEX_SIZE]; /* see chain_step */
};

/*
 * One result of a record: its layer chain, either the parent chain of layer
 * top (chain NULL) or the explicit list chain (indices, base first).
 */
struct im_result {
	size_t n;
	int top;
	int *chain;
	char chain_id[SFS_HEX_SIZE]; /* equal chains of blobs have equal ids */
	int64_t created_at;
	bool absent; /* a blob of the chain is missing: silently skipped */
	/* Filled by cache_import_into: */
	char tree[SFS_DIGEST_SIZE]; /* result tree id; "" when absent (or not unpacked yet) */
	char lazy[SFS_DIGEST_SIZE]; /* a lazy import's stand-in result id (see lazy_id) */
	char record[CACHE_ID_SIZE]; /* record saved for it */
};

struct im_input {
	int link;
	char selector[SFS_DIGEST_SIZE];
};

struct im_alts {
	size_t n;
	struct im_input *v;
};

struct im_record {
	char digest[SFS_DIGEST_SIZE];
	size_t nresults, results_cap;
	struct im_result *results;
	size_t ninputs;
	struct im_alts *inputs;
};

/* A blob the manifest lists (other than the config). */
struct im_desc {
	char digest[SFS_DIGEST_SIZE];
	char *media_type;
	uint64_t size; /* the descriptor's "size" (0 when absent) */
};

struct cache_import {
	char *dir;
	struct strmap desc_by; /* digest -> struct im_desc (borrowed keys), after read_manifest */
	int dirfd;   /* dir, opened once */
	int blobsfd; /* dir/blobs/sha256, opened without following symlinks */
	struct cache_import_opts opts;
	struct strmap verified; /* hex of the blobs whose digest was checked */
	size_t nwarnings;
	size_t ndescs, descs_cap;
	struct im_desc *descs;
	size_t nlayers;
	struct im_layer *layers;
	size_t nrecords;
	struct im_record *records;
	size_t *order; /* record indices, inputs before the records using them */
	struct strmap lazy_by; /* lazy id -> struct im_result (borrowed keys), lazy imports */
};

size_t cache_import_nrecords(const struct cache_import *im)
{
	return im ? im->nrecords : 0;
}

struct cache_import *cache_import_free(struct cache_import *im)
{
	if (!im)
		return NULL;
	for (size_t i = 0; i < im->nrecords; i++) {
		struct im_record *r = &im->records[i];
		for (size_t j = 0; j < r->nresults; j++)
			free(r->results[j].chain);
		free(r->results);
		for (size_t j = 0; j < r->ninputs; j++)
			free(r->inputs[j].v);
		free(r->inputs);
	}
	for (size_t i = 0; i < im->ndescs; i++)
		free(im->descs[i].media_type);
	free(im->descs);
	free(im->records);
	free(im->layers);
	free(im->order);
	free(im->dir);
	if (im->dirfd >= 0)
		close(im->dirfd);
	if (im->blobsfd >= 0)
		close(im->blobsfd);
	strmap_release(&im->verified);
	strmap_release(&im->desc_by);
	strmap_release(&im->lazy_by);
	free(im);
	return NULL;
}

void cache_import_opts_default(struct cache_import_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->limits.json_max = CACHE_IMPORT_JSON_MAX;
	o->limits.layer_max = CACHE_IMPORT_LAYER_MAX;
	o->limits.entries_max = CACHE_IMPORT_ENTRIES_MAX;
}

static bool im_cancelled(const struct cache_import *im)
{
	return im->opts.cancelled && im->opts.cancelled(im->opts.arg);
}

static int cancelled_err(char **ret_msg)
{
	return sfs_errf(ret_msg, ECANCELED, "context canceled");
}

/* A line for the user: the first CACHE_IMPORT_WARN_MAX go to the warn
 * callback, all to the daemon log; im_warn_end counts the rest. */
static void im_warn(struct cache_import *im, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void im_warn(struct cache_import *im, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (!msg)
		return;
	sfs_log(SFS_LOG_WARN, "cache import from %s: %s", im->dir, msg);
	if (im->opts.warn && im->nwarnings < CACHE_IMPORT_WARN_MAX)
		im->opts.warn(im->opts.arg, msg);
	im->nwarnings++;
	free(msg);
}

static void im_warn_end(struct cache_import *im)
{
	char msg[96];

	if (!im->opts.warn || im->nwarnings <= CACHE_IMPORT_WARN_MAX)
		return;
	snprintf(msg, sizeof(msg), "... and %zu more warnings (the daemon log has them all)",
		 im->nwarnings - CACHE_IMPORT_WARN_MAX);
	im->opts.warn(im->opts.arg, msg);
}

/* ---- reading files of the layout ---- */

/* Every path inside the layout is opened as oci.h says: relative to a dir fd,
 * no symlink followed, files non-blocking, nothing but regular files. */

/* "DIR/REL: why" for a failed open of REL inside the layout. */
static int layout_err(const char *rel, int r, char **ret_msg)
{
	return sfs_errf(ret_msg, r, "%s: %s", rel, oci_open_strerror(r));
}

/* blobs/sha256 of the layout. */
static int open_blobs_dir(struct cache_import *im, char **ret_msg)
{
	int blobs = -1, r;

	r = oci_open_dir_at(im->dirfd, "blobs", &blobs);
	if (r < 0)
		return layout_err("blobs", r, ret_msg);
	r = oci_open_dir_at(blobs, "sha256", &im->blobsfd);
	close(blobs);
	if (r < 0)
		return layout_err("blobs/sha256", r, ret_msg);
	return 0;
}

/*
 * Reads a whole file of the layout, REL under dirfd (at most json_max bytes);
 * when digest is not NULL the bytes must hash to it.
 */
static int read_small(const struct cache_import *im, int dirfd, const char *rel, const char *name,
		      const char *digest, char **ret_buf, size_t *ret_len, char **ret_msg)
{
	uint64_t max = im->opts.limits.json_max;
	off_t size = 0;
	int fd = -1, r = oci_open_regular_at(dirfd, name, &fd, &size);

	if (r < 0)
		return layout_err(rel, r, ret_msg);
	r = oci_read_all(fd, size, max, digest, ret_buf, ret_len);
	if (r == -EFBIG)
		return sfs_errf(ret_msg, EFBIG,
				"%s: larger than %llu bytes (mount option import_config_max)", rel,
				(unsigned long long)max);
	if (r == -EBADMSG)
		return sfs_errf(ret_msg, EINVAL, "%s: content does not match its digest", rel);
	if (r < 0)
		return sfs_errf(ret_msg, r, "%s: %s", rel, strerror(-r));
	return 0;
}

/* index.json (digest NULL) or a blob (digest its name), parsed. */
static int load_json(const struct cache_import *im, const char *digest, json_t **ret,
		     char **ret_msg)
{
	char rel[OCI_BLOB_PATH_SIZE];
	const char *path = rel;
	json_error_t jerr;
	char *buf = NULL;
	size_t len = 0;
	int r;

	if (digest)
		oci_blob_path(digest, rel);
	else
		snprintf(rel, sizeof(rel), "index.json");
	r = read_small(im, digest ? im->blobsfd : im->dirfd, rel, digest ? digest + 7 : rel,
		       digest, &buf, &len, ret_msg);
	if (r < 0)
		return r;
	*ret = json_loadb(buf, len, 0, &jerr);
	free(buf);
	if (!*ret)
		return sfs_errf(ret_msg, EINVAL, "%s: invalid JSON: %s (line %d)", path, jerr.text,
				jerr.line);
	if (!json_is_object(*ret)) {
		*ret = (json_decref(*ret), NULL);
		return sfs_errf(ret_msg, EINVAL, "%s: not a JSON object", path);
	}
	return 0;
}

/* NULL when o is not an object, key is absent or its value is not a string. */
static const char *obj_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* The value of key when it is a "sha256:<hex>" string, else NULL. */
static const char *obj_digest(const json_t *o, const char *key)
{
	const char *s = obj_str(o, key);
	return sfs_is_digest(s) ? s : NULL;
}

/* Go's json: an absent int is 0 (omitempty fields such as "parent" rely on it). */
static int obj_int(const json_t *o, const char *key, int *ret)
{
	json_t *v = json_object_get(o, key);
	json_int_t i;

	if (!v || json_is_null(v)) {
		*ret = 0;
		return 0;
	}
	if (!json_is_integer(v))
		return -EINVAL;
	i = json_integer_value(v);
	if (i < -1 || i > 1 << 30)
		return -EINVAL;
	*ret = (int)i;
	return 0;
}

/* ---- index.json and the manifest ---- */

/* The manifest descriptor: the entry tagged "latest", else the only entry. */
static int pick_manifest(const char *path, json_t *index, char digest[SFS_DIGEST_SIZE],
			 char **ret_msg)
{
	json_t *m = json_object_get(index, "manifests");
	json_t *pick = NULL, *e;
	size_t i;

	json_array_foreach(m, i, e) if (oci_desc_is_tagged(e, "latest")) pick = e;
	if (!pick && json_array_size(m) == 1)
		pick = json_array_get(m, 0);
	if (!pick)
		return sfs_errf(ret_msg, ENOENT, "%s: no manifest tagged \"latest\"", path);
	const char *d = oci_desc_digest(pick);
	if (!d)
		return sfs_errf(ret_msg, EINVAL, "%s: manifest digest is not sha256:<hex>", path);
	sfs_copy_str(digest, SFS_DIGEST_SIZE, d);
	return 0;
}

static int add_desc(struct cache_import *im, const json_t *d)
{
	const char *digest = oci_desc_digest(d), *mt = oci_desc_media_type(d);
	struct im_desc *v;

	if (!digest)
		return -EINVAL;
	if (sfs_grow((void **)&im->descs, &im->descs_cap, im->ndescs + 1, sizeof(*v)) < 0)
		return -ENOMEM;
	v = im->descs;
	sfs_copy_str(v[im->ndescs].digest, SFS_DIGEST_SIZE, digest);
	json_t *size = json_object_get(d, "size");
	v[im->ndescs].size = json_is_integer(size) && json_integer_value(size) > 0
				 ? (uint64_t)json_integer_value(size)
				 : 0;
	if (!(v[im->ndescs].media_type = strdup(mt ? mt : "")))
		return -ENOMEM;
	im->ndescs++;
	return 0;
}

/* The manifest's blobs by digest, once they are all read (descs no longer
 * moves). */
static int index_descs(struct cache_import *im)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < im->ndescs; i++)
		r = strmap_put(&im->desc_by, im->descs[i].digest, &im->descs[i], NULL);
	return r;
}

static bool has_desc(const struct cache_import *im, const char *digest)
{
	return strmap_get(&im->desc_by, digest) != NULL;
}

/*
 * The three forms: a manifest list or OCI index ("manifests": the config is
 * the entry of the cacheconfig media type, the others are layers), or an OCI
 * image manifest ("config" of that media type, "layers").
 */
static int read_manifest(struct cache_import *im, json_t *m, char config[SFS_DIGEST_SIZE],
			 char **ret_msg)
{
	json_t *list = json_object_get(m, "manifests"), *d;
	json_t *cfg = json_object_get(m, "config");
	size_t i;
	int r = 0;

	config[0] = '\0';
	if (json_is_array(list)) {
		json_array_foreach(list, i, d)
		{
			if (oci_desc_is(d, OCI_MT_CACHECONFIG))
				sfs_copy_str(config, SFS_DIGEST_SIZE, oci_desc_digest(d));
			else if (r == 0)
				r = add_desc(im, d);
		}
	} else if (json_is_object(cfg)) {
		if (oci_desc_is(cfg, OCI_MT_CACHECONFIG))
			sfs_copy_str(config, SFS_DIGEST_SIZE, oci_desc_digest(cfg));
		json_array_foreach(json_object_get(m, "layers"), i, d) if (r == 0) r =
		    add_desc(im, d);
	}
	if (r < 0)
		return sfs_errf(ret_msg, r, "cache manifest: %s",
				r == -EINVAL ? "a descriptor has a bad digest" : strerror(-r));
	if (!config[0])
		return sfs_errf(ret_msg, EINVAL,
				"cache manifest has no %s config (not a cache export)",
				OCI_MT_CACHECONFIG);
	return 0;
}

/* ---- the cache config ---- */

/* RFC 3339 with optional fraction: "2020-07-27T10:00:00.5Z", "...+02:00". */
static int parse_time(const char *s, int64_t *ret)
{
	struct tm tm = {0};
	int n = 0, off = 0;
	int64_t frac = 0, t;

	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			 &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return -EINVAL;
	s += n;
	if (*s == '.') {
		int digits = 0;
		for (s++; *s >= '0' && *s <= '9'; s++, digits++)
			if (digits < 9)
				frac = frac * 10 + (*s - '0');
		for (; digits < 9; digits++)
			frac *= 10;
	}
	if ((*s == '+' || *s == '-') && strlen(s) == 6 && s[3] == ':')
		off = (s[0] == '-' ? -1 : 1) * (atoi(s + 1) * 3600 + atoi(s + 4) * 60);
	else if (strcmp(s, "Z") != 0)
		return -EINVAL;
	/* Go's zero time (year 1) and the far future do not fit in ns. */
	if (tm.tm_year < 1970 || tm.tm_year > 2260)
		return -ERANGE;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = (int64_t)timegm(&tm) - off;
	*ret = t * 1000000000 + frac;
	return 0;
}

static int parse_layers(struct cache_import *im, json_t *layers, char **ret_msg)
{
	json_t *l;
	size_t i;

	if (layers && !json_is_array(layers))
		return sfs_errf(ret_msg, EINVAL, "cache config: \"layers\" is not an array");
	im->nlayers = json_array_size(layers);
	if (im->nlayers && !(im->layers = calloc(im->nlayers, sizeof(*im->layers))))
		return -ENOMEM;
	json_array_foreach(layers, i, l)
	{
		const char *blob = obj_digest(l, "blob");
		if (!blob || obj_int(l, "parent", &im->layers[i].parent) < 0)
			return sfs_errf(ret_msg, EINVAL, "cache config: layer %zu is invalid", i);
		sfs_copy_str(im->layers[i].blob, SFS_DIGEST_SIZE, blob);
	}
	return 0;
}

static int parse_inputs(struct im_record *rec, json_t *inputs, size_t nrecords)
{
	json_t *alts, *in;
	size_t i, j;

	rec->ninputs = json_array_size(inputs);
	if (rec->ninputs && !(rec->inputs = calloc(rec->ninputs, sizeof(*rec->inputs))))
		return -ENOMEM;
	json_array_foreach(inputs, i, alts)
	{
		struct im_alts *a = &rec->inputs[i];
		if (!json_is_array(alts))
			return -EINVAL;
		a->n = json_array_size(alts);
		if (a->n && !(a->v = calloc(a->n, sizeof(*a->v))))
			return -ENOMEM;
		json_array_foreach(alts, j, in)
		{
			const char *sel = obj_str(in, "selector");
			if (obj_int(in, "link", &a->v[j].link) < 0 ||
			    (sel && sel[0] && !sfs_is_digest(sel)))
				return -EINVAL;
			if (a->v[j].link < 0 || (size_t)a->v[j].link >= nrecords)
				return -ERANGE;
			sfs_copy_str(a->v[j].selector, SFS_DIGEST_SIZE, sel);
		}
	}
	return 0;
}

/* Adds a result whose chain is res's (chain, n, top, chain_id, absent);
 * takes res->chain. */
static int add_result(struct im_record *rec, const struct im_result *res, const char *created)
{
	struct im_result *v;
	int r;

	r = sfs_grow((void **)&rec->results, &rec->results_cap, rec->nresults + 1, sizeof(*v));
	if (r < 0) {
		free(res->chain);
		return -ENOMEM;
	}
	v = rec->results + rec->nresults++;
	*v = *res;
	v->tree[0] = v->record[0] = '\0';
	if (parse_time(created, &v->created_at) < 0)
		v->created_at = sfs_now_ns(); /* absent or Go's zero time: the import's time */
	return 0;
}

/*
 * A chain's id: the id of the chain below it and the top blob, hashed (the
 * base's "below" is empty), so a result's chain is compared by one string.
 */
static int chain_step(const char *below, const char *blob, char ret[SFS_HEX_SIZE])
{
	struct sfs_sha256 h;
	int r = sfs_sha256_init(&h);

	if (r < 0)
		return r;
	sfs_sha256_update(&h, below, strlen(below));
	sfs_sha256_update(&h, blob, strlen(blob));
	sfs_sha256_final_hex(&h, ret);
	return 0;
}

static int chain_too_long(char **ret_msg)
{
	return sfs_errf(ret_msg, EINVAL, "cache config: a layer chain longer than %d layers",
			CACHE_IMPORT_CHAIN_MAX);
}

/*
 * getRemoteChain for layer top, memoized per layer: from the top down through
 * "parent" (-1 ends) to a layer already worked out, then back up filling
 * depth, absent and chain_id.  stack has room for nlayers indices.  A loop, an
 * index out of range or a chain over CACHE_IMPORT_CHAIN_MAX is an error.
 */
static int walk_layer(struct cache_import *im, int top, int *stack, char **ret_msg)
{
	size_t sp = 0;
	int idx;

	for (idx = top; idx != -1 && im->layers[idx].state != VISIT_DONE;
	     idx = im->layers[idx].parent) {
		if (im->layers[idx].state == VISIT_ON_STACK)
			return sfs_errf(ret_msg, EINVAL, "cache config: invalid looping layer");
		if (sp == CACHE_IMPORT_CHAIN_MAX)
			return chain_too_long(ret_msg);
		im->layers[idx].state = VISIT_ON_STACK;
		stack[sp++] = idx;
		int p = im->layers[idx].parent;
		if (p != -1 && (p < 0 || (size_t)p >= im->nlayers))
			return sfs_errf(ret_msg, EINVAL, "cache config: invalid layer index %d", p);
	}
	while (sp) {
		struct im_layer *l = &im->layers[stack[--sp]];
		const struct im_layer *below = l->parent == -1 ? NULL : &im->layers[l->parent];
		l->depth = below ? below->depth + 1 : 1;
		if (l->depth > CACHE_IMPORT_CHAIN_MAX)
			return chain_too_long(ret_msg);
		l->absent = (below && below->absent) || !has_desc(im, l->blob);
		if (chain_step(below ? below->chain_id : "", l->blob, l->chain_id) < 0)
			return -ENOMEM;
		l->state = VISIT_DONE;
	}
	return 0;
}

/* The result on top layer `top`, through its parents. */
static int parent_chain(struct cache_import *im, int top, int *stack, struct im_result *ret,
			char **ret_msg)
{
	int r;

	if (top < 0 || (size_t)top >= im->nlayers)
		return sfs_errf(ret_msg, EINVAL, "cache config: invalid layer index %d", top);
	r = walk_layer(im, top, stack, ret_msg);
	if (r < 0)
		return r;
	memset(ret, 0, sizeof(*ret));
	ret->top = top;
	ret->n = im->layers[top].depth;
	ret->absent = im->layers[top].absent;
	memcpy(ret->chain_id, im->layers[top].chain_id, SFS_HEX_SIZE);
	return 0;
}

/* "chains" (v0.10+): explicit layer lists, base first, parents ignored. */
static int explicit_chain(struct cache_import *im, json_t *layers, struct im_result *ret,
			  char **ret_msg)
{
	size_t n = json_array_size(layers), i;
	json_t *v;

	memset(ret, 0, sizeof(*ret));
	if (n > CACHE_IMPORT_CHAIN_MAX)
		return chain_too_long(ret_msg);
	if (!(ret->chain = calloc(n ? n : 1, sizeof(*ret->chain))))
		return -ENOMEM;
	ret->n = n;
	ret->top = -1;
	json_array_foreach(layers, i, v)
	{
		json_int_t idx = json_integer_value(v);
		if (!json_is_integer(v) || idx < 0 || (size_t)idx >= im->nlayers) {
			ret->chain = (free(ret->chain), NULL);
			return sfs_errf(ret_msg, EINVAL, "cache config: bad result chain");
		}
		ret->chain[i] = (int)idx;
		ret->absent |= !has_desc(im, im->layers[idx].blob);
		if (chain_step(ret->chain_id, im->layers[idx].blob, ret->chain_id) < 0) {
			ret->chain = (free(ret->chain), NULL);
			return -ENOMEM;
		}
	}
	return 0;
}

static int parse_results(struct cache_import *im, struct im_record *rec, json_t *o, int *stack,
			 char **ret_msg)
{
	struct im_result res;
	json_t *v;
	size_t i;
	int r = 0, top;

	json_array_foreach(json_object_get(o, "layers"), i, v)
	{
		if (obj_int(v, "layer", &top) < 0)
			return sfs_errf(ret_msg, EINVAL, "cache config: bad result layer");
		r = parent_chain(im, top, stack, &res, ret_msg);
		if (r == 0)
			r = add_result(rec, &res, obj_str(v, "createdAt"));
		if (r < 0)
			return r;
	}
	json_array_foreach(json_object_get(o, "chains"), i, v)
	{
		r = explicit_chain(im, json_object_get(v, "layers"), &res, ret_msg);
		if (r == 0)
			r = add_result(rec, &res, obj_str(v, "createdAt"));
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_records(struct cache_import *im, json_t *records, char **ret_msg)
{
	int *stack; /* for walk_layer */
	json_t *o;
	size_t i;
	int r;

	if (records && !json_is_array(records))
		return sfs_errf(ret_msg, EINVAL, "cache config: \"records\" is not an array");
	im->nrecords = json_array_size(records);
	if (im->nrecords && !(im->records = calloc(im->nrecords, sizeof(*im->records))))
		return -ENOMEM;
	stack = calloc(im->nlayers ? im->nlayers : 1, sizeof(*stack));
	if (!stack)
		return -ENOMEM;
	r = 0;
	json_array_foreach(records, i, o)
	{
		struct im_record *rec = &im->records[i];
		const char *digest = obj_digest(o, "digest");
		if (!digest) {
			r = sfs_errf(ret_msg, EINVAL, "cache config: record %zu has no digest", i);
			break;
		}
		sfs_copy_str(rec->digest, SFS_DIGEST_SIZE, digest);
		r = parse_inputs(rec, json_object_get(o, "inputs"), im->nrecords);
		if (r == -ERANGE)
			r = sfs_errf(ret_msg, EINVAL, "cache config: invalid record ID in record %zu",
				     i);
		else if (r < 0)
			r = sfs_errf(ret_msg, r, "cache config: record %zu has bad inputs", i);
		if (r == 0)
			r = parse_results(im, rec, o, stack, ret_msg);
		if (r < 0)
			break;
	}
	free(stack);
	return r;
}

/* ---- dependency order (parseRecord's recursion, without the recursion) ---- */

struct frame {
	size_t rec, input, alt;
};

/* Visits record start depth first, appending to im->order after its inputs.
 * state: an enum visit per record. */
static int order_from(struct cache_import *im, size_t start, unsigned char *state,
		      struct frame *stack, size_t *norder)
{
	size_t sp = 0;

	stack[sp++] = (struct frame){start, 0, 0};
	state[start] = VISIT_ON_STACK;
	while (sp) {
		struct frame *f = &stack[sp - 1];
		const struct im_record *rec = &im->records[f->rec];
		if (f->input == rec->ninputs) {
			state[f->rec] = VISIT_DONE;
			im->order[(*norder)++] = f->rec;
			sp--;
			continue;
		}
		if (f->alt == rec->inputs[f->input].n) {
			f->input++;
			f->alt = 0;
			continue;
		}
		size_t next = (size_t)rec->inputs[f->input].v[f->alt++].link;
		if (state[next] == VISIT_ON_STACK)
			return -ELOOP;
		if (state[next] == VISIT_NEW) {
			state[next] = VISIT_ON_STACK;
			stack[sp++] = (struct frame){next, 0, 0};
		}
	}
	return 0;
}

static int order_records(struct cache_import *im, char **ret_msg)
{
	size_t n = im->nrecords ? im->nrecords : 1, norder = 0;
	unsigned char *state = calloc(n, 1);
	struct frame *stack = calloc(n, sizeof(*stack));
	int r = 0;

	im->order = calloc(n, sizeof(*im->order));
	if (!state || !stack || !im->order)
		r = -ENOMEM;
	for (size_t i = 0; r == 0 && i < im->nrecords; i++)
		if (state[i] == VISIT_NEW)
			r = order_from(im, i, state, stack, &norder);
	free(state);
	free(stack);
	if (r == -ELOOP)
		return sfs_errf(ret_msg, EINVAL, "cache config: invalid looping record");
	return r;
}

static int parse_config(struct cache_import *im, const char *digest, char **ret_msg)
{
	json_t *cc = NULL;
	int r;

	r = load_json(im, digest, &cc, ret_msg);
	if (r == 0)
		r = parse_layers(im, json_object_get(cc, "layers"), ret_msg);
	if (r == 0)
		r = parse_records(im, json_object_get(cc, "records"), ret_msg);
	json_decref(cc);
	if (r == 0)
		r = order_records(im, ret_msg);
	return r;
}

static int open_layout(struct cache_import *im, char **ret_msg)
{
	char digest[SFS_DIGEST_SIZE], config[SFS_DIGEST_SIZE];
	json_t *index = NULL, *m = NULL;
	int r = 0;

	im->dirfd = open(im->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (im->dirfd < 0)
		r = sfs_errf(ret_msg, errno, "%s", strerror(errno));
	if (r == 0)
		r = load_json(im, NULL, &index, ret_msg);
	if (r == 0)
		r = pick_manifest("index.json", index, digest, ret_msg);
	if (r == 0)
		r = open_blobs_dir(im, ret_msg);
	if (r == 0)
		r = load_json(im, digest, &m, ret_msg);
	if (r == 0)
		r = read_manifest(im, m, config, ret_msg);
	if (r == 0)
		r = index_descs(im);
	if (r == 0)
		r = parse_config(im, config, ret_msg);
	json_decref(index);
	json_decref(m);
	return r;
}

int cache_import_open_opts(const char *dir, const struct cache_import_opts *o,
			   struct cache_import **ret, char **ret_msg)
{
	struct cache_import *im = calloc(1, sizeof(*im));
	int r;

	if (!im || !(im->dir = strdup(dir))) {
		free(im);
		return -ENOMEM;
	}
	im->dirfd = im->blobsfd = -1;
	im->verified = (struct strmap)STRMAP_INIT;
	im->desc_by = (struct strmap)STRMAP_INIT_BORROWED;
	im->lazy_by = (struct strmap)STRMAP_INIT_BORROWED;
	if (o)
		im->opts = *o;
	else
		cache_import_opts_default(&im->opts);
	r = open_layout(im, ret_msg);
	if (r < 0) {
		cache_import_free(im);
		return sfs_err_prefix(ret_msg, r, "cache import from %s", dir);
	}
	*ret = im;
	return 0;
}

bool cache_import_absent(const char *dir)
{
	struct stat st;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool absent;

	if (fd < 0)
		return errno == ENOENT;
	absent = fstatat(fd, "index.json", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT;
	close(fd);
	return absent;
}

int cache_import_open(const char *dir, struct cache_import **ret, char **ret_msg)
{
	return cache_import_open_opts(dir, NULL, ret, ret_msg);
}

/* ---- unpacking layer chains (unpack.c) ---- */

/* Hashes fd (from its start) and compares with digest; cancellation is
 * checked every few MiB. */
static int check_digest(struct cache_import *im, int fd, const char *digest, char **ret_msg)
{
	char hex[SFS_HEX_SIZE], buf[65536];
	struct sfs_sha256 h = {0};
	ssize_t n = 0;
	int r = sfs_sha256_init(&h);

	for (unsigned i = 1; r == 0 && (n = read(fd, buf, sizeof(buf))) != 0; i++) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = -errno;
		else if (i % 64 == 0 && im_cancelled(im))
			r = cancelled_err(ret_msg);
		else
			sfs_sha256_update(&h, buf, (size_t)n);
	}
	if (r < 0 && h.ctx) {
		sfs_sha256_abort(&h);
		return r;
	}
	if (r < 0)
		return r;
	sfs_sha256_final_hex(&h, hex);
	if (strcmp(hex, digest + 7) != 0)
		return sfs_errf(ret_msg, EINVAL, "blobs/sha256/%s: content does not match its digest",
				digest + 7);
	return strmap_put(&im->verified, digest + 7, (void *)1, NULL);
}

/* A blob the layout lacks, from the fetch callback (a remote source): it
 * comes from the content store, whose names are the digests of its blobs. */
static int fetch_blob(struct cache_import *im, const char *digest, int *ret_fd, char **ret_msg)
{
	const struct im_desc *d = strmap_get(&im->desc_by, digest);
	if (!d)
		return 1;
	if (d->size > im->opts.limits.layer_max)
		return sfs_errf(ret_msg, EFBIG, "layer %s: %llu bytes, more than the %llu allowed",
				digest, (unsigned long long)d->size,
				(unsigned long long)im->opts.limits.layer_max);
	return im->opts.fetch(im->opts.fetch_arg, digest, d->size, ret_fd, ret_msg);
}

/* Opens a layer blob, its digest checked the first time it is used; 1 when
 * it is not in the layout (nor to be fetched). */
static int open_blob(struct cache_import *im, const char *digest, int *ret_fd, char **ret_msg)
{
	char rel[OCI_BLOB_PATH_SIZE];
	off_t size = 0;
	int fd = -1, r;

	oci_blob_path(digest, rel);
	r = oci_open_regular_at(im->blobsfd, digest + 7, &fd, &size);
	if (r == -ENOENT && im->opts.fetch)
		return fetch_blob(im, digest, ret_fd, ret_msg);
	if (r == -ENOENT)
		return 1;
	if (r < 0)
		return layout_err(rel, r, ret_msg);
	if (!strmap_get(&im->verified, digest + 7)) {
		r = check_digest(im, fd, digest, ret_msg);
		if (r == 0 && lseek(fd, 0, SEEK_SET) < 0)
			r = -errno;
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

static bool unpack_cancelled_cb(void *arg)
{
	return im_cancelled(arg);
}

static void unpack_warn_cb(void *arg, const char *msg)
{
	im_warn(arg, "%s", msg);
}

/* Applies one layer; 1 when its blob is missing. */
static int apply_layer(struct cache_import *im, struct unpack *u, const char *digest,
		       char **ret_msg)
{
	int fd = -1, r = open_blob(im, digest, &fd, ret_msg);

	if (r != 0)
		return r;
	r = unpack_apply(u, fd, digest, ret_msg);
	close(fd);
	return r;
}

/* The layer indices of res's chain, base first (n of them; malloc'd). */
static int *chain_layers(const struct cache_import *im, const struct im_result *res)
{
	int *v = malloc((res->n ? res->n : 1) * sizeof(*v));

	if (!v)
		return NULL;
	if (res->chain) {
		memcpy(v, res->chain, res->n * sizeof(*v));
		return v;
	}
	size_t i = res->n;
	for (int idx = res->top; i && idx != -1; idx = im->layers[idx].parent)
		v[--i] = idx;
	return v;
}

/* Unpacks a chain into a stored tree; ret_id is "" when a blob is missing. */
static int unpack_chain(struct cache_import *im, struct cas *cas, const struct im_result *res,
			char ret_id[SFS_DIGEST_SIZE], char **ret_msg)
{
	int *chain = chain_layers(im, res);
	const struct unpack_opts o = {.layer_max = im->opts.limits.layer_max,
				      .entries_max = im->opts.limits.entries_max,
				      .cancelled = unpack_cancelled_cb,
				      .warn = unpack_warn_cb,
				      .arg = im};
	struct unpack *u = NULL;
	int r = chain ? unpack_new(cas, &o, &u) : -ENOMEM;

	ret_id[0] = '\0';
	for (size_t i = 0; r == 0 && i < res->n; i++)
		r = apply_layer(im, u, im->layers[chain[i]].blob, ret_msg);
	if (r == 0)
		r = unpack_finish(u, ret_id);
	if (r == 1) {
		/* a missing blob: the result is absent (BuildKit says nothing) */
		im_warn(im, "a layer blob is not in the layout; a result of %zu layers is skipped",
			res->n);
		r = 0;
	}
	if (r == -EINVAL && ret_msg && !*ret_msg)
		r = sfs_errf(ret_msg, r, "layer chain of %zu layers gives an invalid tree", res->n);
	unpack_free(u);
	free(chain);
	return r;
}

/* ---- results: one tree and one record per distinct chain ---- */

/*
 * A lazy import's result ids: one per distinct chain, a digest that is no
 * tree's ("lazy:" and the chain's id hashed), standing for the tree the chain
 * unpacks to until a load makes it (cache_import_lazy_storage).
 */
static void lazy_id(const char *chain_key, char ret[SFS_DIGEST_SIZE])
{
	char buf[SFS_HEX_SIZE + 8];
	int n = snprintf(buf, sizeof(buf), "lazy:%s", chain_key);
	sfs_sha256_digest(buf, (size_t)n, ret);
}

/* The result id a record of res names: its tree, or its lazy id. */
static const char *res_id(const struct im_result *res)
{
	return res->lazy[0] ? res->lazy : res->tree;
}

/*
 * Unpacks the chain of res unless an earlier result had the same one, then
 * saves a record for its tree.  Records are shared by results of one chain, as
 * BuildKit's imported records are named by their remote.
 */
static int import_result(struct cache_import *im, struct sfs_cache *c, struct result_storage *rs,
			 struct strmap *done, struct im_result *res, char **ret_msg)
{
	struct im_result *first;
	struct cache_result rec;
	const char *key = res->n ? res->chain_id : "."; /* the empty chain is a key too */
	int r;

	if (res->absent)
		return 0;
	if (im_cancelled(im))
		return cancelled_err(ret_msg);
	first = strmap_get(done, key);
	if (first) {
		sfs_copy_str(res->tree, SFS_DIGEST_SIZE, first->tree);
		sfs_copy_str(res->lazy, SFS_DIGEST_SIZE, first->lazy);
		sfs_copy_str(res->record, CACHE_ID_SIZE, first->record);
		return 0;
	}
	if (im->opts.lazy) {
		lazy_id(key, res->lazy);
		keystore_new_id(res->record);
		r = strmap_put(&im->lazy_by, res->lazy, res, NULL);
		if (r == 0)
			r = strmap_put(done, key, res, NULL);
		return r;
	}
	r = unpack_chain(im, c->cas, res, res->tree, ret_msg);
	if (r == 0 && res->tree[0]) {
		r = rs->ops->save(rs, res->tree, res->created_at, &rec);
		sfs_copy_str(res->record, CACHE_ID_SIZE, rec.id);
	}
	if (r == 0)
		r = strmap_put(done, key, res, NULL);
	return r;
}

/* db (may be NULL) gets the results rows; see cache_import_into_manager. */
static int import_results(struct cache_import *im, struct sfs_cache *c, struct sfs_db *db,
			  char **ret_msg)
{
	struct strmap done = STRMAP_INIT;
	struct result_storage *rs = NULL;
	int r = result_storage_cas_new(c->cas, db, &rs);

	for (size_t i = 0; r == 0 && i < im->nrecords; i++) {
		struct im_record *rec = &im->records[i];
		for (size_t j = 0; r == 0 && j < rec->nresults; j++)
			r = import_result(im, c, rs, &done, &rec->results[j], ret_msg);
	}
	strmap_release(&done);
	if (rs)
		rs->ops->free(rs);
	return r;
}

/* ---- keys and links ---- */

/* The record-form link from input i of rec. */
static void record_link(const struct im_record *rec, size_t i, const struct im_input *in,
			struct cache_link *l)
{
	memset(l, 0, sizeof(*l));
	l->input = (int)i;
	l->output = KEYSTORE_RECORD_LINK_OUTPUT;
	sfs_copy_str(l->digest, SFS_DIGEST_SIZE, rec->digest);
	sfs_copy_str(l->selector, SFS_DIGEST_SIZE, in->selector);
}

/* getIDFromDeps over record-form links: the key a previous import of
 * the same record made, else a fresh random id. */
static int record_id(struct keystore *ks, const struct im_record *rec, char (*ids)[CACHE_ID_SIZE],
		     char ret[CACHE_ID_SIZE])
{
	struct idset cand = {0}, t = {0};
	struct cache_link l;
	int r = 0;

	for (size_t i = 0; r == 0 && i < rec->ninputs && (i == 0 || cand.n); i++) {
		for (size_t j = 0; r == 0 && j < rec->inputs[i].n; j++) {
			const struct im_input *in = &rec->inputs[i].v[j];
			record_link(rec, i, in, &l);
			t.n = 0;
			r = ks->ops->walk_links(ks, ids[in->link], &l, idset_add, i ? &t : &cand);
			if (i)
				idset_intersect(&cand, &t);
		}
	}
	if (r == 0 && cand.n)
		sfs_copy_str(ret, CACHE_ID_SIZE, cand.v[0]);
	else if (r == 0)
		keystore_new_id(ret);
	idset_release(&cand);
	idset_release(&t);
	return r;
}

struct has_tree {
	const char *tree;
	bool found;
};

static int find_tree(const struct cache_result *res, void *arg)
{
	struct has_tree *h = arg;

	if (strcmp(res->result, h->tree) == 0)
		h->found = true;
	return 0;
}

static int import_record(struct cache_import *im, struct keystore *ks, size_t idx,
			 char (*ids)[CACHE_ID_SIZE])
{
	const struct im_record *rec = &im->records[idx];
	struct cache_link l;
	int r = 0;

	if (rec->ninputs == 0)
		sfs_copy_str(ids[idx], CACHE_ID_SIZE, rec->digest);
	else
		r = record_id(ks, rec, ids, ids[idx]);
	for (size_t i = 0; r == 0 && i < rec->ninputs; i++) {
		for (size_t j = 0; r == 0 && j < rec->inputs[i].n; j++) {
			const struct im_input *in = &rec->inputs[i].v[j];
			record_link(rec, i, in, &l);
			if (!ks->ops->has_link(ks, ids[in->link], &l, ids[idx]))
				r = ks->ops->add_link(ks, ids[in->link], &l, ids[idx]);
		}
	}
	for (size_t j = 0; r == 0 && j < rec->nresults; j++) {
		const struct im_result *res = &rec->results[j];
		struct has_tree h = {.tree = res_id(res)};
		struct cache_result cr = {0};
		if (!res_id(res)[0])
			continue;
		/* A re-import adds no second record of the same tree. */
		r = ks->ops->walk_results(ks, ids[idx], find_tree, &h);
		if (r < 0 || h.found)
			continue;
		sfs_copy_str(cr.id, CACHE_ID_SIZE, res->record);
		sfs_copy_str(cr.result, SFS_DIGEST_SIZE, res_id(res));
		cr.created_at = res->created_at;
		r = ks->ops->add_result(ks, ids[idx], &cr);
	}
	return r;
}

static int import_keys(struct cache_import *im, struct keystore *ks)
{
	char(*ids)[CACHE_ID_SIZE] = calloc(im->nrecords ? im->nrecords : 1, sizeof(*ids));
	int r;

	if (!ids)
		return -ENOMEM;
	r = ks->ops->batch_begin(ks);
	if (r == 0) {
		int err = 0;
		for (size_t i = 0; err == 0 && i < im->nrecords; i++)
			err = import_record(im, ks, im->order[i], ids);
		r = ks->ops->batch_end(ks, err);
	}
	free(ids);
	return r;
}

int cache_import_into_manager(struct cache_import *im, struct sfs_cache *c,
			      struct cache_manager *cm, char **ret_msg)
{
	size_t nres = 0;
	int r;

	/* Trees and records first, outside the key batch, which holds the
	 * database: a bad layer then fails the import before any key exists.
	 * Only the main cache's records get results rows: a tree known only to
	 * another manager gets its row when a combined load copies it in. */
	r = import_results(im, c, cm == c->main ? c->db : NULL, ret_msg);
	im_warn_end(im);
	if (r == 0)
		r = import_keys(im, cache_manager_keystore(cm));
	if (r < 0)
		return sfs_err_prefix(ret_msg, r, "cache import from %s", im->dir);
	for (size_t i = 0; i < im->nrecords; i++)
		for (size_t j = 0; j < im->records[i].nresults; j++)
			nres += res_id(&im->records[i].results[j])[0] != '\0';
	sfs_log(SFS_LOG_INFO, "cache import from %s into %s: %zu records, %zu results", im->dir,
		cache_manager_id(cm), im->nrecords, nres);
	return 0;
}

int cache_import_into(struct cache_import *im, struct sfs_cache *c, char **ret_msg)
{
	return cache_import_into_manager(im, c, c->main, ret_msg);
}

/* ---- lazy results (cache_import_lazy_storage) ---- */

struct lazy_rs {
	struct result_storage rs;
	struct cache_import *im; /* owned */
	struct cas *cas;
	void (*fetch_free)(void *arg);
	pthread_mutex_t lock; /* im: one unpack at a time */
};

static struct lazy_rs *to_lazy(struct result_storage *rs)
{
	return (struct lazy_rs *)rs;
}

static int lazy_save(struct result_storage *rs, const char *result_id, int64_t created_at,
		     struct cache_result *ret)
{
	return -EROFS; /* records of a source are made by its import only */
}

/* The tree of the lazy result, unpacked (its blobs fetched) the first time. */
static int lazy_tree(struct lazy_rs *l, struct im_result *res, char ret[SFS_DIGEST_SIZE],
		     char **ret_msg)
{
	struct cache_import *im = l->im;
	if (res->tree[0] && cas_has(l->cas, res->tree + 7)) {
		sfs_copy_str(ret, SFS_DIGEST_SIZE, res->tree);
		return 0;
	}
	int r = unpack_chain(im, l->cas, res, res->tree, ret_msg);
	im_warn_end(im);
	if (r == 0 && !res->tree[0])
		r = sfs_errf(ret_msg, ENOENT, "a layer of the result is missing from %s", im->dir);
	if (r == 0)
		sfs_copy_str(ret, SFS_DIGEST_SIZE, res->tree);
	return r;
}

static int lazy_load(struct result_storage *rs, const struct cache_result *res,
		     char ret_result_id[SFS_DIGEST_SIZE], char **ret_msg)
{
	struct lazy_rs *l = to_lazy(rs);
	pthread_mutex_lock(&l->lock);
	struct im_result *ir = strmap_get(&l->im->lazy_by, res->result);
	int r = ir ? lazy_tree(l, ir, ret_result_id, ret_msg)
		   : sfs_errf(ret_msg, ENOENT, "cache record %s: result %s is not of %s", res->id,
			      res->result, l->im->dir);
	pthread_mutex_unlock(&l->lock);
	return r;
}

static bool lazy_exists(struct result_storage *rs, const struct cache_result *res)
{
	struct lazy_rs *l = to_lazy(rs);
	pthread_mutex_lock(&l->lock);
	bool have = strmap_get(&l->im->lazy_by, res->result) != NULL;
	pthread_mutex_unlock(&l->lock);
	return have;
}

static void lazy_free(struct result_storage *rs)
{
	struct lazy_rs *l = to_lazy(rs);
	void *arg = l->im ? l->im->opts.fetch_arg : NULL;
	cache_import_free(l->im);
	if (l->fetch_free && arg)
		l->fetch_free(arg);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

static const struct result_storage_ops lazy_ops = {
	.save = lazy_save,
	.load = lazy_load,
	.exists = lazy_exists,
	.free = lazy_free,
};

int cache_import_lazy_storage(struct cache_import *im, struct cas *cas,
			      void (*fetch_free)(void *arg), struct result_storage **ret)
{
	struct lazy_rs *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->rs.ops = &lazy_ops;
	l->im = im;
	l->cas = cas;
	l->fetch_free = fetch_free;
	pthread_mutex_init(&l->lock, NULL);
	/* the open's callbacks belong to the job that read the source */
	im->opts.cancelled = NULL;
	im->opts.warn = NULL;
	im->opts.arg = NULL;
	*ret = &l->rs;
	return 0;
}
