/*
 * test_import.c — cache/import: hand-built OCI layouts in the three manifest
 * forms are read into a fresh cache; keys, links, results and trees are
 * checked against the key storage and against tree_ingest of the same files.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array.h"
#include "cache.h"
#include "export.h"
#include "fixture.h"
#include "import.h"
#include "strbuf.h"
#include "tap.h"
#include "tree.h"

#define MT_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_IMAGE "application/vnd.oci.image.manifest.v1+json"
#define MT_CC "application/vnd.buildkit.cacheconfig.v0"
#define MT_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define MT_OCI_LAYER "application/vnd.oci.image.layer.v1.tar+gzip"

enum form { FORM_LIST, FORM_INDEX, FORM_IMAGE };

/* A tar entry: 'd', 'f', 'l' (data = target), 'h' (hardlink, data = target), 'p' (fifo),
 * 's' (a sparse file: data is its one extent). */
struct tent {
	char type;
	const char *name;
	unsigned mode;
	const char *data;
};

static void rm_blob(const char *dir, const char *digest)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir, digest + 7);
	CHECK(unlink(path) == 0);
}

/* A gzip tar of the entries, stored as a blob. */
static void put_layer(const char *dir, const struct tent *e, size_t n, char ret[SFS_DIGEST_SIZE])
{
	struct archive *a = archive_write_new();
	struct archive_entry *ae = archive_entry_new();
	static char buf[8 << 20];
	size_t used = 0;

	archive_write_add_filter_gzip(a);
	archive_write_set_format_pax_restricted(a);
	CHECK(archive_write_open_memory(a, buf, sizeof(buf), &used) == ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		archive_entry_clear(ae);
		archive_entry_set_pathname(ae, e[i].name);
		archive_entry_set_perm(ae, e[i].mode);
		archive_entry_set_uid(ae, 1234);
		archive_entry_set_mtime(ae, 1000000, 0);
		switch (e[i].type) {
		case 'd':
			archive_entry_set_filetype(ae, AE_IFDIR);
			break;
		case 'f':
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_size(ae, (la_int64_t)strlen(e[i].data));
			break;
		case 'l':
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_symlink(ae, e[i].data);
			break;
		case 'h':
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_hardlink(ae, e[i].data);
			break;
		case 'p':
			archive_entry_set_filetype(ae, AE_IFIFO);
			break;
		case 's':
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_size(ae, 1 << 20);
			archive_entry_sparse_add_entry(ae, 0, (la_int64_t)strlen(e[i].data));
			break;
		}
		CHECK(archive_write_header(a, ae) == ARCHIVE_OK);
		if (e[i].type == 'f' || e[i].type == 's')
			CHECK(archive_write_data(a, e[i].data, strlen(e[i].data)) ==
			      (la_ssize_t)strlen(e[i].data));
	}
	CHECK(archive_write_close(a) == ARCHIVE_OK);
	archive_write_free(a);
	archive_entry_free(ae);
	fx_layout_put_blob(dir, buf, used, ret);
}

/* Writes the manifest (listing `blobs`) and index.json around config. */
static void put_layout(const char *dir, enum form form, const char *config,
		       const char *const *blobs, size_t nblobs)
{
	struct strbuf m = STRBUF_INIT, idx = STRBUF_INIT;
	char cfg[SFS_DIGEST_SIZE], man[SFS_DIGEST_SIZE], desc[512];
	const char *lt = form == FORM_LIST ? MT_DOCKER_LAYER : MT_OCI_LAYER;
	const char *mt = form == FORM_LIST ? MT_LIST : form == FORM_INDEX ? MT_INDEX : MT_IMAGE;

	fx_layout_put_blob(dir, config, strlen(config), cfg);
	snprintf(desc, sizeof(desc), "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}", MT_CC,
		 cfg, strlen(config));
	strbuf_addf(&m, "{\"schemaVersion\":2,\"mediaType\":\"%s\",", mt);
	strbuf_addstr(&m, form == FORM_IMAGE ? "\"config\":" : "\"manifests\":[");
	if (form == FORM_IMAGE)
		strbuf_addf(&m, "%s,\"layers\":[", desc);
	for (size_t i = 0; i < nblobs; i++)
		strbuf_addf(&m, "%s{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":1}",
			    i ? "," : "", lt, blobs[i]);
	if (form != FORM_IMAGE) /* the v0.7 form puts the config last */
		strbuf_addf(&m, "%s%s", nblobs ? "," : "", desc);
	strbuf_addstr(&m, "]}");
	fx_layout_put_blob(dir, m.buf, m.len, man);
	strbuf_addf(
	    &idx,
	    "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"%s\",\"digest\":\"%s\","
	    "\"size\":%zu,\"annotations\":{\"org.opencontainers.image.ref.name\":\"latest\"}}]}",
	    mt, man, m.len);
	snprintf(desc, sizeof(desc), "%s/index.json", dir);
	fx_write_file(desc, idx.buf, idx.len);
	strbuf_release(&m);
	strbuf_release(&idx);
}

/* docs/export.md §9.1: C = sha256("seed:seedA"), P = sha256("seed:seedP"). */
struct example {
	char c[SFS_DIGEST_SIZE], p[SFS_DIGEST_SIZE], sel[SFS_DIGEST_SIZE];
	char root[SFS_DIGEST_SIZE], top[SFS_DIGEST_SIZE];
};

static void example_init(struct example *x)
{
	sfs_sha256_digest("seed:seedA", 10, x->c);
	sfs_sha256_digest("seed:seedP", 10, x->p);
	sfs_sha256_digest("sel0", 4, x->sel);
	sfs_root_key(x->c, 0, x->root);
	sfs_root_key(x->p, 0, x->top);
}

/* The config of docs/export.md §9.1, with `layers` as its layers array and record 0's
 * result on layer `top`. */
static char *example_config(const struct example *x, const char *layers, int top)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_addf(&sb,
		    "{\"layers\":%s,\"records\":[{\"layers\":[{\"layer\":%d,\"createdAt\":"
		    "\"2020-07-27T10:00:00Z\"}],\"digest\":\"%s\",\"inputs\":[[{\"selector\":"
		    "\"%s\",\"link\":1}]]},{\"digest\":\"%s\"}]}",
		    layers, top, x->top, x->sel, x->root);
	return strbuf_detach(&sb, NULL);
}

static const struct tent files[] = {
    {'d', "./", 0755, NULL},
    {'f', "./a", 0644, "hello\n"},
    {'d', "d", 0750, NULL},
    {'f', "d/x", 0755, "#!/bin/sh\n"},
    {'l', "l", 0777, "a"},
    {'h', "h", 0644, "./a"},
    {'f', "e/deep/f", 0600, "implicit parents\n"},
};

/* The same tree on disk, ingested: what the import must produce. */
static void expected_files(struct cas *cas, char ret[SFS_DIGEST_SIZE])
{
	char *d = tap_tmpdir(), p[4096];
	struct tree *t = NULL;

	chmod(d, 0755);
	snprintf(p, sizeof(p), "%s/a", d);
	fx_write_file(p, "hello\n", 6);
	chmod(p, 0644);
	snprintf(p, sizeof(p), "%s/h", d);
	fx_write_file(p, "hello\n", 6);
	chmod(p, 0644);
	snprintf(p, sizeof(p), "%s/d", d);
	mkdir(p, 0750);
	chmod(p, 0750);
	snprintf(p, sizeof(p), "%s/d/x", d);
	fx_write_file(p, "#!/bin/sh\n", 10);
	chmod(p, 0755);
	snprintf(p, sizeof(p), "%s/l", d);
	CHECK(symlink("a", p) == 0);
	snprintf(p, sizeof(p), "%s/e", d);
	mkdir(p, 0755);
	chmod(p, 0755);
	snprintf(p, sizeof(p), "%s/e/deep", d);
	mkdir(p, 0755);
	chmod(p, 0755);
	snprintf(p, sizeof(p), "%s/e/deep/f", d);
	fx_write_file(p, "implicit parents\n", 17);
	chmod(p, 0600);
	CHECK(tree_ingest(cas, d, NULL, &t, NULL) == 0);
	snprintf(ret, SFS_DIGEST_SIZE, "%s", t ? t->id : "");
	tree_free(t);
}

static int collect_id(const char *id, void *arg)
{
	struct strbuf *sb = arg;
	strbuf_addf(sb, "%s%s", sb->len ? " " : "", id);
	return 0;
}

static int collect_result(const struct cache_result *r, void *arg)
{
	struct strbuf *sb = arg;
	strbuf_addf(sb, "%s%s", sb->len ? " " : "", r->result);
	return 0;
}

/* The key the import made for the parent record of docs/export.md §9.1, or "" (via its
 * link form). */
static void top_key(struct keystore *ks, const struct example *x, struct strbuf *ret)
{
	struct cache_link l;

	CHECK(keystore_record_link_form());
	keystore_record_link(0, 0, x->p, x->sel, &l);
	strbuf_reset(ret);
	CHECK(ks->ops->walk_links(ks, x->root, &l, collect_id, ret) == 0);
}

static void results_of(struct keystore *ks, const char *id, struct strbuf *ret)
{
	strbuf_reset(ret);
	CHECK(ks->ops->walk_results(ks, id, collect_result, ret) == 0);
}

/* Imports dir into c; returns the error, *msg gets the message. */
static int do_import(const char *dir, struct sfs_cache *c, char **msg)
{
	struct cache_import *im = NULL;
	int r = cache_import_open(dir, &im, msg);

	if (r == 0)
		r = cache_import_into(im, c, msg);
	cache_import_free(im);
	return r;
}

static void check_form(enum form form)
{
	char *dir = tap_tmpdir(), *cfg, *msg = NULL, blob[SFS_DIGEST_SIZE], want[SFS_DIGEST_SIZE];
	char layers[256];
	const char *blobs[1] = {blob};
	struct sfs_cache *c = fx_cache_open();
	struct keystore *ks = cache_manager_keystore(c->main);
	struct strbuf top = STRBUF_INIT, res = STRBUF_INIT;
	struct example x;
	struct tree *t = NULL;

	example_init(&x);
	put_layer(dir, files, ARRAY_SIZE(files), blob);
	snprintf(layers, sizeof(layers), "[{\"blob\":\"%s\",\"parent\":-1}]", blob);
	cfg = example_config(&x, layers, 0);
	put_layout(dir, form, cfg, blobs, 1);
	CHECK_EQ_INT(do_import(dir, c, &msg), 0);
	if (msg)
		fprintf(stderr, "  %s\n", msg);

	/* The root key is its record digest, the solver's rootKey(C, 0). */
	CHECK(ks->ops->exists(ks, x.root));
	results_of(ks, x.root, &res);
	CHECK_EQ_STR(res.buf ? res.buf : "", "");
	top_key(ks, &x, &top);
	CHECK(top.len > 0 && !strchr(top.buf, ' '));
	results_of(ks, top.buf, &res);
	expected_files(c->cas, want);
	CHECK_EQ_STR(res.buf, want);

	CHECK(tree_load(c->cas, want, &t) == 0);
	if (t) {
		const struct tree_entry *e = tree_find(t, "l");
		CHECK(e && e->type == 'l' && e->size == 1);
		CHECK((e = tree_find(t, "d")) && e->type == 'd' && e->mode == 0750);
		CHECK((e = tree_find(t, "d/x")) && e->type == 'f' && e->mode == 0755);
		CHECK((e = tree_find(t, "h")) && e->type == 'f' && e->size == 6);
	}
	tree_free(t);

	/* The solver finds the root with a plain Query. */
	struct cache_key **keys = NULL;
	size_t n = 0;
	CHECK(cache_manager_query(c->main, NULL, 0, 0, x.c, 0, &keys, &n) == 0);
	CHECK_EQ_INT(n, 1);
	for (size_t i = 0; i < n; i++)
		cache_key_unref(keys[i]);
	free(keys);

	free(msg);
	free(cfg);
	strbuf_release(&top);
	strbuf_release(&res);
	sfs_cache_close(c);
}

static void test_manifest_list(void)
{
	check_form(FORM_LIST);
}

static void test_oci_index(void)
{
	check_form(FORM_INDEX);
}

static void test_image_manifest(void)
{
	check_form(FORM_IMAGE);
}

/* A one-layer layout of these entries, shaped as docs/export.md §9.1, in the image form;
 * blob gets the layer. */
static void one_layer(const char *dir, const struct tent *e, size_t n, char blob[SFS_DIGEST_SIZE])
{
	char layers[256], *cfg;
	const char *blobs[1] = {blob};
	struct example x;

	example_init(&x);
	put_layer(dir, e, n, blob);
	snprintf(layers, sizeof(layers), "[{\"blob\":\"%s\",\"parent\":-1}]", blob);
	cfg = example_config(&x, layers, 0);
	put_layout(dir, FORM_IMAGE, cfg, blobs, 1);
	free(cfg);
}

/* cache_import_open of dir fails with err and a message containing what. */
static void check_open_fails(const char *dir, int err, const char *what)
{
	struct cache_import *im = NULL;
	char *msg = NULL;

	CHECK_EQ_INT(cache_import_open(dir, &im, &msg), err);
	CHECK(im == NULL);
	CHECK(msg && strstr(msg, what));
	if (msg && !strstr(msg, what))
		fprintf(stderr, "  # got: %s\n", msg);
	free(msg);
	cache_import_free(im);
}

/* A bad layer fails the import, names the entry, and leaves no key behind. */
static void check_rejected(const struct tent *e, size_t n, const char *what)
{
	char *dir = tap_tmpdir(), *msg = NULL, blob[SFS_DIGEST_SIZE];
	struct sfs_cache *c = fx_cache_open();
	struct keystore *ks = cache_manager_keystore(c->main);
	struct example x;

	example_init(&x);
	one_layer(dir, e, n, blob);
	CHECK(do_import(dir, c, &msg) == -EINVAL);
	CHECK(msg && strstr(msg, what));
	if (msg)
		fprintf(stderr, "  # %s\n", msg);
	CHECK(!ks->ops->exists(ks, x.root));
	free(msg);
	sfs_cache_close(c);
}

static void test_dotdot_rejected(void)
{
	const struct tent e[] = {{'f', "a", 0644, "x"}, {'f', "d/../../evil", 0644, "x"}};
	check_rejected(e, 2, "absolute or \"..\" name");
}

static void test_absolute_rejected(void)
{
	const struct tent e[] = {{'f', "/etc/evil", 0644, "x"}};
	check_rejected(e, 1, "absolute or \"..\" name");
}

static void test_under_file_rejected(void)
{
	const struct tent e[] = {{'f', "a", 0644, "x"}, {'f', "a/b", 0644, "x"}};
	check_rejected(e, 2, "path under a non-directory");
}

static void test_under_symlink_rejected(void)
{
	const struct tent e[] = {{'l', "etc", 0777, "/etc"}, {'f', "etc/passwd", 0644, "x"}};
	check_rejected(e, 2, "path under a non-directory");
}

static void test_looping_record(void)
{
	char *dir = tap_tmpdir(), cfg[1024];
	struct example x;

	example_init(&x);
	snprintf(cfg, sizeof(cfg),
		 "{\"records\":[{\"digest\":\"%s\",\"inputs\":[[{\"link\":1}]]},"
		 "{\"digest\":\"%s\",\"inputs\":[[{\"link\":0}]]}]}",
		 x.top, x.root);
	put_layout(dir, FORM_LIST, cfg, NULL, 0);
	check_open_fails(dir, -EINVAL, "invalid looping record");

	/* A record linking to itself, and a link out of range. */
	snprintf(cfg, sizeof(cfg), "{\"records\":[{\"digest\":\"%s\",\"inputs\":[[{}]]}]}", x.top);
	put_layout(dir, FORM_IMAGE, cfg, NULL, 0);
	check_open_fails(dir, -EINVAL, "invalid looping record");
	snprintf(cfg, sizeof(cfg),
		 "{\"records\":[{\"digest\":\"%s\",\"inputs\":[[{\"link\":7}]]}]}", x.top);
	put_layout(dir, FORM_IMAGE, cfg, NULL, 0);
	check_open_fails(dir, -EINVAL, "invalid record ID");
}

/* A missing blob (from the directory, or from the manifest) makes the result
 * absent; the records and links are still imported. */
static void test_missing_blob(void)
{
	for (int from_manifest = 0; from_manifest < 2; from_manifest++) {
		char *dir = tap_tmpdir(), *msg = NULL, *cfg, blob[SFS_DIGEST_SIZE], layers[256];
		const char *blobs[1] = {blob};
		struct sfs_cache *c = fx_cache_open();
		struct keystore *ks = cache_manager_keystore(c->main);
		struct strbuf top = STRBUF_INIT, res = STRBUF_INIT;
		struct example x;

		example_init(&x);
		put_layer(dir, files, 2, blob);
		snprintf(layers, sizeof(layers), "[{\"blob\":\"%s\",\"parent\":-1}]", blob);
		cfg = example_config(&x, layers, 0);
		put_layout(dir, FORM_LIST, cfg, blobs, from_manifest ? 0 : 1);
		if (!from_manifest)
			rm_blob(dir, blob);
		CHECK_EQ_INT(do_import(dir, c, &msg), 0);
		CHECK(ks->ops->exists(ks, x.root));
		top_key(ks, &x, &top);
		CHECK(top.len > 0);
		results_of(ks, top.len ? top.buf : "none", &res);
		CHECK(res.len == 0);
		free(cfg);
		free(msg);
		strbuf_release(&top);
		strbuf_release(&res);
		sfs_cache_close(c);
	}
}

/* Two layers through "parent"; whiteouts delete what the base put there. */
static void test_whiteouts(void)
{
	const struct tent base[] = {
	    {'f', "a", 0644, "a"},	{'d', "d", 0755, NULL},	     {'f', "d/x", 0644, "x"},
	    {'d', "d/sub", 0755, NULL}, {'f', "d/sub/y", 0644, "y"}, {'f', "keep", 0600, "k"},
	    {'d', "gone", 0755, NULL},	{'f', "gone/z", 0644, "z"},
	};
	const struct tent upper[] = {
	    {'f', ".wh.a", 0644, ""},	 {'f', "d/.wh..wh..opq", 0644, ""},
	    {'f', "d/new", 0644, "new"}, {'f', ".wh.gone", 0644, ""},
	    {'f', "keep", 0640, "kept"},
	};
	char *dir = tap_tmpdir(), *msg = NULL, b0[SFS_DIGEST_SIZE], b1[SFS_DIGEST_SIZE], cfg[2048];
	const char *blobs[2] = {b0, b1};
	struct sfs_cache *c = fx_cache_open();
	struct keystore *ks = cache_manager_keystore(c->main);
	struct strbuf top = STRBUF_INIT, res = STRBUF_INIT;
	struct tree *t = NULL;
	struct example x;
	char layers[512], *cc;

	example_init(&x);
	put_layer(dir, base, ARRAY_SIZE(base), b0);
	put_layer(dir, upper, ARRAY_SIZE(upper), b1);
	/* Layer 1 is the base; layer 0 (the top) has it as parent. */
	snprintf(layers, sizeof(layers),
		 "[{\"blob\":\"%s\",\"parent\":1},{\"blob\":\"%s\",\"parent\":-1}]", b1, b0);
	cc = example_config(&x, layers, 0);
	snprintf(cfg, sizeof(cfg), "%s", cc);
	put_layout(dir, FORM_INDEX, cfg, blobs, 2);
	CHECK_EQ_INT(do_import(dir, c, &msg), 0);
	top_key(ks, &x, &top);
	results_of(ks, top.buf ? top.buf : "", &res);
	CHECK(res.len > 0 && tree_load(c->cas, res.buf, &t) == 0);
	if (t) {
		CHECK_EQ_INT(t->n, 4); /* ., d, d/new, keep */
		CHECK(!tree_find(t, "a") && !tree_find(t, "d/x") && !tree_find(t, "d/sub"));
		CHECK(!tree_find(t, "gone") && !tree_find(t, "gone/z"));
		CHECK(tree_find(t, "d/new") && tree_find(t, "keep"));
		CHECK(tree_find(t, "keep") && tree_find(t, "keep")->mode == 0640);
		CHECK(tree_find(t, "keep") && tree_find(t, "keep")->size == 4);
	}
	tree_free(t);
	free(cc);
	free(msg);
	strbuf_release(&top);
	strbuf_release(&res);
	sfs_cache_close(c);
}

/* Importing twice adds nothing: same key, one result. */
static void test_reimport(void)
{
	char *dir = tap_tmpdir(), *msg = NULL, blob[SFS_DIGEST_SIZE];
	struct sfs_cache *c = fx_cache_open();
	struct keystore *ks = cache_manager_keystore(c->main);
	struct strbuf top1 = STRBUF_INIT, top2 = STRBUF_INIT, res = STRBUF_INIT;
	struct example x;

	example_init(&x);
	one_layer(dir, files, ARRAY_SIZE(files), blob);
	CHECK_EQ_INT(do_import(dir, c, &msg), 0);
	top_key(ks, &x, &top1);
	CHECK_EQ_INT(do_import(dir, c, &msg), 0);
	top_key(ks, &x, &top2);
	CHECK(top1.len > 0);
	CHECK_EQ_STR(top1.buf, top2.buf);
	results_of(ks, top2.buf ? top2.buf : "", &res);
	CHECK(res.len > 0 && !strchr(res.buf, ' '));
	free(msg);
	strbuf_release(&top1);
	strbuf_release(&top2);
	strbuf_release(&res);
	sfs_cache_close(c);
}

/* A root record with a result (BuildKit's ExportRoots; our exports) gets it
 * under its digest; a fifo in the layer is dropped with a warning. */
static void test_root_result_and_special(void)
{
	const struct tent e[] = {{'f', "f", 0644, "f"}, {'p', "fifo", 0644, NULL}};
	char *dir = tap_tmpdir(), *msg = NULL, blob[SFS_DIGEST_SIZE], cfg[1024];
	const char *blobs[1] = {blob};
	struct sfs_cache *c = fx_cache_open();
	struct keystore *ks = cache_manager_keystore(c->main);
	struct strbuf res = STRBUF_INIT;
	struct tree *t = NULL;
	struct example x;

	example_init(&x);
	put_layer(dir, e, 2, blob);
	/* "parent" absent means 0 in Go's JSON: here -1 is spelled out, and the
	 * result's "layer" 0 is left out (omitted as Go's zero). */
	snprintf(cfg, sizeof(cfg),
		 "{\"layers\":[{\"blob\":\"%s\",\"parent\":-1}],\"records\":[{\"digest\":\"%s\","
		 "\"layers\":[{\"createdAt\":\"2021-01-02T03:04:05.5+01:00\"}]}]}",
		 blob, x.root);
	put_layout(dir, FORM_IMAGE, cfg, blobs, 1);
	CHECK_EQ_INT(do_import(dir, c, &msg), 0);
	results_of(ks, x.root, &res);
	CHECK(res.len > 0 && tree_load(c->cas, res.buf, &t) == 0);
	if (t) {
		CHECK_EQ_INT(t->n, 2);
		CHECK(tree_find(t, "f") && !tree_find(t, "fifo"));
	}
	tree_free(t);

	/* The record keeps the export's createdAt. */
	struct cache_key *k = cache_key_new(x.c, 0, 0);
	struct cache_record *recs = NULL;
	size_t n = 0;
	CHECK(cache_manager_records(c->main, k, &recs, &n) == 0);
	CHECK_EQ_INT(n, 1);
	if (n)
		CHECK_EQ_INT(recs[0].created_at, 1609553045500000000LL);
	free(recs);
	cache_key_unref(k);
	free(msg);
	strbuf_release(&res);
	sfs_cache_close(c);
}

/* A parent index pointing at itself: "invalid looping layer". */
static void test_looping_layer(void)
{
	char *dir = tap_tmpdir(), cfg[1024];
	struct example x;

	example_init(&x);
	/* "parent" left out is 0: layer 0 is its own parent. */
	snprintf(cfg, sizeof(cfg),
		 "{\"layers\":[{\"blob\":\"%s\"}],\"records\":[{\"digest\":\"%s\","
		 "\"layers\":[{\"layer\":0}]}]}",
		 x.c, x.root);
	put_layout(dir, FORM_IMAGE, cfg, NULL, 0);
	check_open_fails(dir, -EINVAL, "invalid looping layer");
}

static void test_not_a_layout(void)
{
	char *dir = tap_tmpdir(), p[4096];

	check_open_fails(dir, -ENOENT, "index.json");
	snprintf(p, sizeof(p), "%s/index.json", dir);
	fx_write_file(p, "{\"manifests\":[]}", 16);
	check_open_fails(dir, -ENOENT, "latest");
}

/* ---- round trip through cache/export ---- */

static struct cache_key *rt_key(const char *seed, size_t ndeps)
{
	char d[SFS_DIGEST_SIZE];
	sfs_sha256_digest(seed, strlen(seed), d);
	return cache_key_new(d, 0, ndeps);
}

/* The single key the record-form link {input, k's digest, sel} leads to from src. */
static void rt_follow(struct keystore *ks, const char *src, int input, const struct cache_key *k,
		      const char *sel, struct strbuf *ret)
{
	struct cache_link l;

	keystore_record_link(input, k->output, k->digest, sel, &l);
	strbuf_reset(ret);
	CHECK(ks->ops->walk_links(ks, src, &l, collect_id, ret) == 0);
	CHECK(ret->len > 0 && !strchr(ret->buf, ' '));
}

/*
 * Keys saved with cache_manager_save, exported in both forms, imported into a
 * fresh cache: every link leads to the same key whichever alternative it is
 * followed from, and the results are the same trees (equal ids).
 */
static void test_round_trip(void)
{
	char sel[SFS_DIGEST_SIZE], r_mid[SFS_DIGEST_SIZE], r_top[SFS_DIGEST_SIZE];
	char r_one[SFS_DIGEST_SIZE], r_two[SFS_DIGEST_SIZE], *base = tap_tmpdir(), dir[4096];
	struct sfs_cache *a = fx_cache_open();
	struct cache_key *one = rt_key("one", 0), *two = rt_key("two", 0);
	struct cache_key *mid = rt_key("mid", 1), *top = rt_key("top", 2);
	struct strbuf m = STRBUF_INIT, t = STRBUF_INIT, t2 = STRBUF_INIT, res = STRBUF_INIT;

	sfs_sha256_digest("sel", 3, sel);
	cache_key_add_dep(mid, 0, "", one);
	cache_key_add_dep(top, 0, sel, mid);
	cache_key_add_dep(top, 1, "", two);
	cache_key_add_dep(top, 1, "", one);
	fx_tree(a, "d", 0640, "one", r_one);
	fx_tree(a, "d", 0640, "two", r_two);
	fx_tree(a, "d", 0640, "mid", r_mid);
	fx_tree(a, "d", 0640, "top", r_top);
	CHECK(cache_manager_save(a->main, one, r_one, 1, NULL, NULL) == 0);
	CHECK(cache_manager_save(a->main, two, r_two, 2, NULL, NULL) == 0);
	CHECK(cache_manager_save(a->main, mid, r_mid, 3000000000LL, NULL, NULL) == 0);
	CHECK(cache_manager_save(a->main, top, r_top, 4000000000LL, NULL, NULL) == 0);
	for (int form = 0; form < 2; form++) {
		struct sfs_cache *b = fx_cache_open();
		struct keystore *ks = cache_manager_keystore(b->main);
		char *msg = NULL;

		snprintf(dir, sizeof(dir), "%s/export%d", base, form);
		CHECK(cache_export(a, a->main, &top, 1, CACHE_EXPORT_MAX,
				   form ? CACHE_EXPORT_MANIFEST_LIST : CACHE_EXPORT_IMAGE, dir,
				   &msg) == 0);
		CHECK_EQ_INT(do_import(dir, b, &msg), 0);
		if (msg)
			fprintf(stderr, "  # %s\n", msg);
		CHECK(ks->ops->exists(ks, one->root_id) && ks->ops->exists(ks, two->root_id));
		rt_follow(ks, one->root_id, 0, mid, "", &m);
		results_of(ks, m.buf ? m.buf : "", &res);
		CHECK_EQ_STR(res.buf, r_mid);
		rt_follow(ks, m.buf ? m.buf : "", 0, top, sel, &t);
		rt_follow(ks, two->root_id, 1, top, "", &t2);
		CHECK_EQ_STR(t.buf, t2.buf);
		rt_follow(ks, one->root_id, 1, top, "", &t2);
		CHECK_EQ_STR(t.buf, t2.buf);
		results_of(ks, t.buf ? t.buf : "", &res);
		CHECK_EQ_STR(res.buf, r_top);
		free(msg);
		sfs_cache_close(b);
	}
	cache_key_unref(one);
	cache_key_unref(two);
	cache_key_unref(mid);
	cache_key_unref(top);
	strbuf_release(&m);
	strbuf_release(&t);
	strbuf_release(&t2);
	strbuf_release(&res);
	sfs_cache_close(a);
}

/* ---- hostile layouts ---- */

/* Writes manifest as a blob and index.json naming it (tagged "latest"). */
static void put_raw_layout(const char *dir, const char *manifest)
{
	char man[SFS_DIGEST_SIZE], path[4096], idx[512];

	fx_layout_put_blob(dir, manifest, strlen(manifest), man);
	snprintf(idx, sizeof(idx),
		 "{\"manifests\":[{\"mediaType\":\"%s\",\"digest\":\"%s\",\"annotations\":"
		 "{\"org.opencontainers.image.ref.name\":\"latest\"}}]}",
		 MT_IMAGE, man);
	snprintf(path, sizeof(path), "%s/index.json", dir);
	fx_write_file(path, idx, strlen(idx));
}

static void test_digest_of_null(void)
{
	CHECK(!sfs_is_digest(NULL));
	CHECK(!sfs_is_hex(NULL));
	CHECK(!sfs_is_digest(""));
	CHECK(!sfs_is_digest("sha256:"));
}

/* An index.json entry without "digest", or not an object at all. */
static void test_index_entry_without_digest(void)
{
	char *dir = tap_tmpdir(), path[4096];
	const char *bad[] = {
	    "{\"manifests\":[{\"mediaType\":\"" MT_IMAGE "\"}]}",
	    "{\"manifests\":[{\"digest\":7}]}",
	    "{\"manifests\":[5]}",
	};

	snprintf(path, sizeof(path), "%s/index.json", dir);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		fx_write_file(path, bad[i], strlen(bad[i]));
		check_open_fails(dir, -EINVAL, "manifest digest is not sha256:<hex>");
	}
}

/* Manifest descriptors without "digest": a layer, the config. */
static void test_manifest_entry_without_digest(void)
{
	char *dir = tap_tmpdir();

	put_raw_layout(dir, "{\"manifests\":[{\"mediaType\":\"" MT_DOCKER_LAYER "\"}]}");
	check_open_fails(dir, -EINVAL, "a descriptor has a bad digest");
	put_raw_layout(dir, "{\"config\":{\"mediaType\":\"" MT_CC "\"},\"layers\":[]}");
	check_open_fails(dir, -EINVAL, "not a cache export");
	put_raw_layout(dir, "{\"manifests\":[{\"mediaType\":\"" MT_CC "\"}]}");
	check_open_fails(dir, -EINVAL, "a descriptor has a bad digest");
	put_raw_layout(dir, "{\"config\":{\"mediaType\":\"" MT_CC "\"},\"layers\":[{}]}");
	check_open_fails(dir, -EINVAL, "a descriptor has a bad digest");
}

/* A cache config whose layer lacks "blob", whose record lacks "digest". */
static void test_config_without_digests(void)
{
	char *dir = tap_tmpdir(), cfg[1024];
	struct example x;

	example_init(&x);
	put_layout(dir, FORM_IMAGE, "{\"layers\":[{\"parent\":-1}]}", NULL, 0);
	check_open_fails(dir, -EINVAL, "layer 0 is invalid");
	put_layout(dir, FORM_IMAGE, "{\"layers\":[7]}", NULL, 0);
	check_open_fails(dir, -EINVAL, "layer 0 is invalid");
	put_layout(dir, FORM_IMAGE, "{\"records\":[{\"inputs\":[]}]}", NULL, 0);
	check_open_fails(dir, -EINVAL, "record 0 has no digest");
	put_layout(dir, FORM_IMAGE, "{\"records\":[\"x\"]}", NULL, 0);
	check_open_fails(dir, -EINVAL, "record 0 has no digest");
	snprintf(cfg, sizeof(cfg), "{\"records\":[{\"digest\":\"%s\"},{\"digest\":null}]}",
		 x.root);
	put_layout(dir, FORM_IMAGE, cfg, NULL, 0);
	check_open_fails(dir, -EINVAL, "record 1 has no digest");
}

/* A FIFO as index.json or as a layer blob is refused at once: the open does
 * not wait for a writer (the alarm ends the test if it does). */
static void test_fifo_refused(void)
{
	char *dir = tap_tmpdir(), *msg = NULL, path[4096], blob[SFS_DIGEST_SIZE];
	struct sfs_cache *c = fx_cache_open();

	alarm(60);
	snprintf(path, sizeof(path), "%s/index.json", dir);
	CHECK(mkfifo(path, 0644) == 0);
	check_open_fails(dir, -EINVAL, "not a regular file");
	CHECK(unlink(path) == 0);
	one_layer(dir, files, 2, blob);
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir, blob + 7);
	CHECK(unlink(path) == 0 && mkfifo(path, 0644) == 0);
	CHECK_EQ_INT(do_import(dir, c, &msg), -EINVAL);
	CHECK(msg && strstr(msg, "not a regular file"));
	alarm(0);
	free(msg);
	sfs_cache_close(c);
}

/* blobs/, blobs/sha256/ or index.json as a symlink: refused, not followed. */
static void test_symlinks_refused(void)
{
	const char *names[] = {"blobs", "blobs/sha256", "index.json"};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		char *dir = tap_tmpdir(), blob[SFS_DIGEST_SIZE], from[4096], to[4096];

		one_layer(dir, files, 2, blob);
		snprintf(from, sizeof(from), "%s/%s", dir, names[i]);
		snprintf(to, sizeof(to), "%s/%s.real", dir, names[i]);
		CHECK(rename(from, to) == 0);
		snprintf(to, sizeof(to), "%s.real", strrchr(names[i], '/') ? "sha256" : names[i]);
		CHECK(symlink(to, from) == 0);
		check_open_fails(dir, -ELOOP, "is a symlink");
	}
}

/* Imports dir into c with opts; returns the error, *msg gets the message. */
static int do_import_opts(const char *dir, struct sfs_cache *c, const struct cache_import_opts *o,
			  char **msg)
{
	struct cache_import *im = NULL;
	int r = cache_import_open_opts(dir, o, &im, msg);

	if (r == 0)
		r = cache_import_into(im, c, msg);
	cache_import_free(im);
	return r;
}

/* A layer of these entries imported with opts fails with err, saying what. */
static void check_limited(const struct tent *e, size_t n, const struct cache_import_opts *o,
			  int err, const char *what)
{
	char *dir = tap_tmpdir(), *msg = NULL, blob[SFS_DIGEST_SIZE];
	struct sfs_cache *c = fx_cache_open();
	struct keystore *ks = cache_manager_keystore(c->main);
	struct example x;

	example_init(&x);
	one_layer(dir, e, n, blob);
	CHECK_EQ_INT(do_import_opts(dir, c, o, &msg), err);
	CHECK(msg && strstr(msg, what));
	if (msg)
		fprintf(stderr, "  # %s\n", msg);
	CHECK(!ks->ops->exists(ks, x.root));
	free(msg);
	sfs_cache_close(c);
}

static char big[6001];

/* import_layer_max: one large file, or many files adding up, stop the layer. */
static void test_layer_size_cap(void)
{
	const struct tent one[] = {{'f', "big", 0644, big}};
	const struct tent many[] = {{'f', "a", 0644, big + 3000},
				    {'f', "b", 0644, big + 3000},
				    {'f', "c", 0644, big + 3000}};
	struct cache_import_opts o;

	memset(big, 'x', sizeof(big) - 1);
	cache_import_opts_default(&o);
	o.limits.layer_max = 5000;
	check_limited(one, 1, &o, -EFBIG, "import_layer_max");
	check_limited(many, 3, &o, -EFBIG, "import_layer_max");
}

/* import_entries_max: entries of one layer. */
static void test_entries_cap(void)
{
	const struct tent e[] = {{'f', "a", 0644, "a"}, {'f', "b", 0644, "b"},
				 {'f', "c", 0644, "c"}, {'f', "d", 0644, "d"}};
	struct cache_import_opts o;

	cache_import_opts_default(&o);
	const struct tent wh[] = {{'f', "a", 0644, "a"}, {'f', ".wh.a", 0644, ""},
				  {'f', ".wh.b", 0644, ""}, {'f', ".wh.c", 0644, ""}};

	o.limits.entries_max = 3;
	check_limited(e, 4, &o, -EFBIG, "the tree would have more than 3 entries");
	/* Whiteouts make no tree entries but count as entries of the layer. */
	check_limited(wh, 4, &o, -EFBIG, "more than 3 entries (mount option import_entries_max)");
}

/* A sparse entry would import as an empty or wrong file: refused. */
static void test_sparse_refused(void)
{
	const struct tent e[] = {{'f', "a", 0644, "a"}, {'s', "holes", 0644, "data"}};
	check_rejected(e, 2, "sparse");
}

static int ncancel_polls;

static bool cancel_after_two(void *arg)
{
	(void)arg;
	return ++ncancel_polls > 2;
}

/* The cancel poll stops an import between entries. */
static void test_cancel_stops_import(void)
{
	struct tent e[64];
	struct cache_import_opts o;

	for (size_t i = 0; i < 64; i++)
		e[i] = (struct tent){'f', "f", 0644, "x"};
	cache_import_opts_default(&o);
	o.cancelled = cancel_after_two;
	check_limited(e, 64, &o, -ECANCELED, "context canceled");
	CHECK(ncancel_polls > 2);
}

static int nwarned;
static char last_warning[256];

static void count_warning(void *arg, const char *msg)
{
	(void)arg;
	nwarned++;
	snprintf(last_warning, sizeof(last_warning), "%s", msg);
}

/* Dropped entries are warnings for the user: the first few, then a count. */
static void test_warnings(void)
{
	char *dir = tap_tmpdir(), *msg = NULL, blob[SFS_DIGEST_SIZE], names[15][8];
	struct sfs_cache *c = fx_cache_open();
	struct cache_import_opts o;
	struct tent e[15];

	for (int i = 0; i < 15; i++) {
		snprintf(names[i], sizeof(names[i]), "p%d", i);
		e[i] = (struct tent){'p', names[i], 0644, NULL};
	}
	one_layer(dir, e, 15, blob);
	cache_import_opts_default(&o);
	o.warn = count_warning;
	CHECK_EQ_INT(do_import_opts(dir, c, &o, &msg), 0);
	CHECK_EQ_INT(nwarned, CACHE_IMPORT_WARN_MAX + 1);
	CHECK(strstr(last_warning, "5 more warnings"));
	free(msg);
	sfs_cache_close(c);
}

/* Many whiteouts over many files (quadratic when each whiteout scans every
 * path: minutes for 60,000 of each); nested dirs go with their parent. */
static void test_many_whiteouts(void)
{
	enum { N = 20000 };
	struct tent *base = calloc(N + 2, sizeof(*base)), *upper = calloc(N + 1, sizeof(*upper));
	char (*names)[32] = calloc(2 * N, sizeof(*names));
	char *dir = tap_tmpdir(), *msg = NULL, b0[SFS_DIGEST_SIZE], b1[SFS_DIGEST_SIZE];
	char layers[512], *cc;
	const char *blobs[2] = {b0, b1};
	struct sfs_cache *c = fx_cache_open();
	struct keystore *ks = cache_manager_keystore(c->main);
	struct strbuf top = STRBUF_INIT, res = STRBUF_INIT;
	struct tree *t = NULL;
	struct example x;

	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "d/f%d", i);
		snprintf(names[N + i], sizeof(names[i]), "d/.wh.f%d", i);
		base[i] = (struct tent){'f', names[i], 0644, "x"};
		upper[i] = (struct tent){'f', names[N + i], 0644, ""};
	}
	base[N] = (struct tent){'d', "gone/sub/deeper", 0755, NULL};
	base[N + 1] = (struct tent){'f', "gone/sub/deeper/f", 0644, "y"};
	upper[N] = (struct tent){'f', ".wh.gone", 0644, ""};
	example_init(&x);
	put_layer(dir, base, N + 2, b0);
	put_layer(dir, upper, N + 1, b1);
	snprintf(layers, sizeof(layers),
		 "[{\"blob\":\"%s\",\"parent\":1},{\"blob\":\"%s\",\"parent\":-1}]", b1, b0);
	cc = example_config(&x, layers, 0);
	put_layout(dir, FORM_IMAGE, cc, blobs, 2);
	CHECK_EQ_INT(do_import(dir, c, &msg), 0);
	top_key(ks, &x, &top);
	results_of(ks, top.buf ? top.buf : "", &res);
	CHECK(res.len > 0 && tree_load(c->cas, res.buf, &t) == 0);
	if (t)
		CHECK_EQ_INT(t->n, 2); /* ., d */
	tree_free(t);
	free(cc);
	free(msg);
	free(names);
	free(base);
	free(upper);
	strbuf_release(&top);
	strbuf_release(&res);
	sfs_cache_close(c);
}

/* A chain longer than CACHE_IMPORT_CHAIN_MAX, explicit ("chains": [0,0,...],
 * once re-read per entry) or through "parent", is refused at open. */
static void test_long_chain_refused(void)
{
	enum { N = CACHE_IMPORT_CHAIN_MAX + 1 };
	char *dir = tap_tmpdir(), blob[SFS_DIGEST_SIZE];
	struct strbuf cfg = STRBUF_INIT;
	const char *blobs[1] = {blob};
	struct example x;

	example_init(&x);
	put_layer(dir, files, 2, blob);
	strbuf_addf(&cfg, "{\"layers\":[{\"blob\":\"%s\",\"parent\":-1}],\"records\":[{\"digest\":"
		    "\"%s\",\"chains\":[{\"layers\":[0", blob, x.root);
	for (int i = 1; i < N; i++)
		strbuf_addstr(&cfg, ",0");
	strbuf_addstr(&cfg, "]}]}]}");
	put_layout(dir, FORM_IMAGE, cfg.buf, blobs, 1);
	check_open_fails(dir, -EINVAL, "a layer chain longer than");

	strbuf_reset(&cfg);
	strbuf_addf(&cfg, "{\"layers\":[{\"blob\":\"%s\",\"parent\":-1}", blob);
	for (int i = 1; i < N; i++)
		strbuf_addf(&cfg, ",{\"blob\":\"%s\",\"parent\":%d}", blob, i - 1);
	strbuf_addf(&cfg, "],\"records\":[{\"digest\":\"%s\",\"layers\":[{\"layer\":%d}]}]}",
		    x.root, N - 1);
	put_layout(dir, FORM_IMAGE, cfg.buf, blobs, 1);
	check_open_fails(dir, -EINVAL, "a layer chain longer than");
	strbuf_release(&cfg);
}

/* Results on one deep chain share its walk and its unpack: each layer blob is
 * applied once per distinct chain, not once per result. */
static void test_results_share_chain(void)
{
	enum { NLAYERS = 200, NRESULTS = 5000 };
	char *dir = tap_tmpdir(), *msg = NULL, blob[SFS_DIGEST_SIZE];
	struct strbuf cfg = STRBUF_INIT, res = STRBUF_INIT;
	const char *blobs[1] = {blob};
	struct sfs_cache *c = fx_cache_open();
	struct keystore *ks = cache_manager_keystore(c->main);
	struct example x;

	example_init(&x);
	put_layer(dir, files, 2, blob);
	strbuf_addf(&cfg, "{\"layers\":[{\"blob\":\"%s\",\"parent\":-1}", blob);
	for (int i = 1; i < NLAYERS; i++)
		strbuf_addf(&cfg, ",{\"blob\":\"%s\",\"parent\":%d}", blob, i - 1);
	strbuf_addf(&cfg, "],\"records\":[{\"digest\":\"%s\",\"layers\":[", x.root);
	for (int i = 0; i < NRESULTS; i++)
		strbuf_addf(&cfg, "%s{\"layer\":%d}", i ? "," : "", NLAYERS - 1);
	strbuf_addstr(&cfg, "]}]}");
	put_layout(dir, FORM_IMAGE, cfg.buf, blobs, 1);
	CHECK_EQ_INT(do_import(dir, c, &msg), 0);
	results_of(ks, x.root, &res);
	CHECK(res.len > 0 && !strchr(res.buf, ' '));
	free(msg);
	strbuf_release(&cfg);
	strbuf_release(&res);
	sfs_cache_close(c);
}

int main(void)
{
	RUN(test_long_chain_refused);
	RUN(test_results_share_chain);
	RUN(test_many_whiteouts);
	RUN(test_layer_size_cap);
	RUN(test_entries_cap);
	RUN(test_sparse_refused);
	RUN(test_cancel_stops_import);
	RUN(test_warnings);
	RUN(test_fifo_refused);
	RUN(test_symlinks_refused);
	RUN(test_digest_of_null);
	RUN(test_index_entry_without_digest);
	RUN(test_manifest_entry_without_digest);
	RUN(test_config_without_digests);
	RUN(test_round_trip);
	RUN(test_dotdot_rejected);
	RUN(test_absolute_rejected);
	RUN(test_under_file_rejected);
	RUN(test_under_symlink_rejected);
	RUN(test_looping_record);
	RUN(test_looping_layer);
	RUN(test_missing_blob);
	RUN(test_whiteouts);
	RUN(test_reimport);
	RUN(test_root_result_and_special);
	RUN(test_not_a_layout);
	RUN(test_manifest_list);
	RUN(test_oci_index);
	RUN(test_image_manifest);
	return tap_done();
}
