/*
 * test_export.c — cache export (docs/export.md): key graphs
 * saved through a real cache manager, exported, and the written layout read
 * back with jansson.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "cache.h"
#include "clock.h"
#include "export.h"
#include "fixture.h"
#include "import.h"
#include "layer.h"
#include "tap.h"
#include "tree.h"

static void seed(const char *s, char ret[SFS_DIGEST_SIZE])
{
	sfs_sha256_digest(s, strlen(s), ret);
}

static struct cache_key *root(const char *name)
{
	char d[SFS_DIGEST_SIZE];
	seed(name, d);
	return cache_key_new(d, 0, 0);
}

/* The key of op `name` over in0 as input 0 and, unless NULL, in1 as input 1. */
static struct cache_key *key_on(const char *name, struct cache_key *in0, struct cache_key *in1)
{
	char d[SFS_DIGEST_SIZE];
	seed(name, d);
	struct cache_key *k = cache_key_new(d, 0, in1 ? 2 : 1);
	cache_key_add_dep(k, 0, "", in0);
	if (in1)
		cache_key_add_dep(k, 1, "", in1);
	return k;
}

static void save(struct sfs_cache *c, struct cache_key *k, const char *content, int64_t t)
{
	char res[SFS_DIGEST_SIZE];
	fx_tree(c, "a", 0644, content, res);
	CHECK_EQ_INT(cache_manager_save(c->main, k, res, t, NULL, NULL), 0);
}

static json_t *config_of(struct sfs_cache *c, struct cache_key **k, size_t n,
			 enum cache_export_mode mode)
{
	char *s = NULL, *msg = NULL;
	json_t *j;

	CHECK_EQ_INT(cache_export_config(c, c->main, k, n, mode, &s, &msg), 0);
	j = s ? json_loads(s, 0, NULL) : NULL;
	CHECK(j != NULL);
	free(s);
	free(msg);
	return j;
}

static json_t *record_by_digest(json_t *cfg, const char *digest)
{
	size_t i;
	json_t *r;

	json_array_foreach(json_object_get(cfg, "records"), i,
			   r) if (strcmp(json_string_value(json_object_get(r, "digest")), digest) ==
				  0) return r;
	return NULL;
}

static size_t nresults(json_t *rec)
{
	return json_array_size(json_object_get(rec, "layers"));
}

static size_t nlinks(json_t *rec, size_t input)
{
	return json_array_size(json_array_get(json_object_get(rec, "inputs"), input));
}

static size_t total_results(json_t *cfg)
{
	size_t i, n = 0;
	json_t *r;

	json_array_foreach(json_object_get(cfg, "records"), i, r) n += nresults(r);
	return n;
}

/* TestCacheExporting: sum[const, const], Max: 3 records, top 1 result, 2 links. */
static void test_exporting(void)
{
	struct sfs_cache *c = fx_cache_open();
	struct cache_key *c1 = root("vtx1"), *c2 = root("vtx2"), *sum = key_on("sum", c1, c2);
	char d[SFS_DIGEST_SIZE], top[SFS_DIGEST_SIZE];

	save(c, c1, "one", 1);
	save(c, c2, "two", 2);
	save(c, sum, "three", 3);
	json_t *cfg = config_of(c, &sum, 1, CACHE_EXPORT_MAX);
	CHECK_EQ_INT(json_array_size(json_object_get(cfg, "records")), 3);
	CHECK_EQ_INT(json_array_size(json_object_get(cfg, "layers")), 1);
	sfs_root_key(sum->digest, 0, top);
	json_t *t = record_by_digest(cfg, top);
	CHECK(t != NULL);
	CHECK_EQ_INT(nresults(t), 1);
	CHECK_EQ_INT(json_array_size(json_object_get(t, "inputs")), 2);
	CHECK_EQ_INT(nlinks(t, 0) + nlinks(t, 1), 2);
	CHECK_EQ_INT(total_results(cfg), 1);
	sfs_root_key(c1->digest, 0, d);
	CHECK(record_by_digest(cfg, d) != NULL);
	CHECK(json_object_get(record_by_digest(cfg, d), "inputs") == NULL);
	json_decref(cfg);
	cache_key_unref(sum);
	cache_key_unref(c1);
	cache_key_unref(c2);
	sfs_cache_close(c);
}

/* TestCacheExportingModeMin: sum[sum[const], const]. */
static void test_mode_min(void)
{
	struct sfs_cache *c = fx_cache_open();
	struct cache_key *c1 = root("vtx1"), *c2 = root("vtx2"), *inner = key_on("inner", c1, NULL),
			 *top = key_on("top", inner, c2);
	char dtop[SFS_DIGEST_SIZE], dinner[SFS_DIGEST_SIZE];

	sfs_root_key(inner->digest, 0, dinner);
	sfs_root_key(top->digest, 0, dtop);
	save(c, c1, "one", 1);
	save(c, inner, "inner", 2);
	save(c, c2, "two", 3);
	save(c, top, "top", 4);

	json_t *cfg = config_of(c, &top, 1, CACHE_EXPORT_REMOTE_ONLY);
	CHECK_EQ_INT(json_array_size(json_object_get(cfg, "records")), 4);
	CHECK_EQ_INT(total_results(cfg), 0);
	json_decref(cfg);

	cfg = config_of(c, &top, 1, CACHE_EXPORT_MIN);
	CHECK_EQ_INT(json_array_size(json_object_get(cfg, "records")), 4);
	CHECK_EQ_INT(total_results(cfg), 1);
	CHECK_EQ_INT(nresults(record_by_digest(cfg, dtop)), 1);
	CHECK_EQ_INT(
	    nlinks(record_by_digest(cfg, dtop), 0) + nlinks(record_by_digest(cfg, dtop), 1), 2);
	CHECK_EQ_INT(nlinks(record_by_digest(cfg, dinner), 0), 1);
	json_decref(cfg);

	cfg = config_of(c, &top, 1, CACHE_EXPORT_MAX);
	CHECK_EQ_INT(json_array_size(json_object_get(cfg, "records")), 4);
	CHECK_EQ_INT(total_results(cfg), 2);
	CHECK_EQ_INT(nresults(record_by_digest(cfg, dinner)), 1);
	json_decref(cfg);

	/* The inner layer now exists, so Min exports it too (LoadRemote). */
	cfg = config_of(c, &top, 1, CACHE_EXPORT_MIN);
	CHECK_EQ_INT(total_results(cfg), 2);
	json_decref(cfg);
	cache_key_unref(top);
	cache_key_unref(inner);
	cache_key_unref(c1);
	cache_key_unref(c2);
	sfs_cache_close(c);
}

/* docs/export.md §9.1: childA <- parent through selector sha256("sel0"). */
static void test_worked_example(void)
{
	struct sfs_cache *c = fx_cache_open();
	char dc[SFS_DIGEST_SIZE], dp[SFS_DIGEST_SIZE], sel[SFS_DIGEST_SIZE];
	struct tm tm = {.tm_year = 120, .tm_mon = 6, .tm_mday = 27, .tm_hour = 10};
	int64_t t = (int64_t)timegm(&tm) * 1000000000;

	seed("seed:seedA", dc);
	seed("seed:seedP", dp);
	seed("sel0", sel);
	struct cache_key *child = cache_key_new(dc, 0, 0), *parent = cache_key_new(dp, 0, 1);
	cache_key_add_dep(parent, 0, sel, child);
	save(c, child, "child", t);
	save(c, parent, "parent", t);
	char *s = NULL;
	CHECK_EQ_INT(cache_export_config(c, c->main, &parent, 1, CACHE_EXPORT_MIN, &s, NULL), 0);
	json_t *cfg = json_loads(s, 0, NULL);
	const char *blob = json_string_value(
	    json_object_get(json_array_get(json_object_get(cfg, "layers"), 0), "blob"));
	char want[2048];
	snprintf(
	    want, sizeof(want),
	    "{\"layers\":[{\"blob\":\"%s\",\"parent\":-1}],\"records\":[{\"layers\":[{\"layer\":0,"
	    "\"createdAt\":\"2020-07-27T10:00:00Z\"}],\"digest\":\"sha256:"
	    "7da1c8c364181466a2cdfb6a163"
	    "ce5f1c45920a2bf73e6fa471f73cff1d83f90\",\"inputs\":[[{\"selector\":\"sha256:"
	    "60a70555a3d2"
	    "19edb1bac44f8c16aceeea510bc9a638722d3bb3eab600f2d3fe\",\"link\":1}]]},{\"digest\":"
	    "\"sha2"
	    "56:ff926b92a5b42ed57bbed128c744d8de8089dc249c901e455e5f5cc3c65c3007\"}]}",
	    blob ? blob : "");
	CHECK_EQ_STR(s, want);
	json_decref(cfg);
	free(s);
	cache_key_unref(parent);
	cache_key_unref(child);
	sfs_cache_close(c);
}

static void test_time(void)
{
	char t[SFS_TIME_SIZE];

	sfs_format_time_go(0, t);
	CHECK_EQ_STR(t, "1970-01-01T00:00:00Z");
	sfs_format_time_go(1595844000LL * 1000000000 + 500000000, t);
	CHECK_EQ_STR(t, "2020-07-27T10:00:00.5Z");
	sfs_format_time_go(1595844000LL * 1000000000 + 123456789, t);
	CHECK_EQ_STR(t, "2020-07-27T10:00:00.123456789Z");
	sfs_format_time_go(1595844000LL * 1000000000 + 1000, t);
	CHECK_EQ_STR(t, "2020-07-27T10:00:00.000001Z");
}

/* ---- layers ---- */

static char *read_blob(struct sfs_cache *c, const char *digest, size_t *len)
{
	char *buf = NULL;
	CHECK_EQ_INT(cas_read_all(c->cas, digest + 7, &buf, len), 0);
	return buf;
}

/* gunzips buf into a malloc'd buffer. */
static char *gunzip(const char *buf, size_t len, size_t *ret_len)
{
	z_stream z = {0};
	size_t cap = 1 << 20;
	char *out = malloc(cap);

	CHECK_EQ_INT(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (unsigned char *)buf;
	z.avail_in = (uInt)len;
	z.next_out = (unsigned char *)out;
	z.avail_out = (uInt)cap;
	CHECK_EQ_INT(inflate(&z, Z_FINISH), Z_STREAM_END);
	*ret_len = z.total_out;
	inflateEnd(&z);
	return out;
}

static void test_layer_deterministic(void)
{
	struct sfs_cache *a = fx_cache_open(), *b = fx_cache_open();
	char ra[SFS_DIGEST_SIZE], rb[SFS_DIGEST_SIZE], rc[SFS_DIGEST_SIZE], hex[SFS_DIGEST_SIZE];
	struct cache_layer la, lb, la2, lc;

	fx_tree(a, "a", 0644, "same", ra);
	fx_tree(b, "a", 0644, "same", rb);
	fx_tree(a, "a", 0644, "other", rc);
	CHECK_EQ_STR(ra, rb);
	CHECK_EQ_INT(cache_layer_get(a, ra, false, &la), -ENOENT);
	CHECK_EQ_INT(cache_layer_get(a, ra, true, &la), 0);
	CHECK_EQ_INT(cache_layer_get(b, rb, true, &lb), 0);
	CHECK_EQ_INT(cache_layer_get(a, ra, false, &la2), 0);
	CHECK_EQ_INT(cache_layer_get(a, rc, true, &lc), 0);
	CHECK_EQ_STR(la.blob, lb.blob);
	CHECK_EQ_STR(la.diff_id, lb.diff_id);
	CHECK_EQ_STR(la.blob, la2.blob);
	CHECK(strcmp(la.blob, lc.blob) != 0);
	CHECK_EQ_INT(la.size, cas_size(a->cas, la.blob + 7));

	size_t len, tlen;
	char *gz = read_blob(a, la.blob, &len);
	CHECK(len > 10);
	CHECK_EQ_INT((unsigned char)gz[0], 0x1f);
	CHECK_EQ_INT(gz[3], 0);					     /* no FNAME */
	CHECK(gz[4] == 0 && gz[5] == 0 && gz[6] == 0 && gz[7] == 0); /* mtime 0 */
	char *tar = gunzip(gz, len, &tlen);
	sfs_sha256_digest(tar, tlen, hex);
	CHECK_EQ_STR(hex, la.diff_id);

	/* the entries, as an importer sees them */
	struct archive *ar = archive_read_new();
	struct archive_entry *e;
	const char *want[] = {"./", "a/", "a/f", "l"};
	int n = 0;
	archive_read_support_format_tar(ar);
	CHECK_EQ_INT(archive_read_open_memory(ar, tar, tlen), ARCHIVE_OK);
	while (archive_read_next_header(ar, &e) == ARCHIVE_OK) {
		CHECK(n < 4);
		if (n >= 4)
			break;
		CHECK_EQ_STR(archive_entry_pathname(e), want[n]);
		CHECK_EQ_INT(archive_entry_uid(e), 0);
		CHECK_EQ_INT(archive_entry_mtime(e), 0);
		CHECK(archive_entry_uname(e) == NULL || !*archive_entry_uname(e));
		if (n == 1)
			CHECK_EQ_INT(archive_entry_perm(e), 0750);
		if (n == 2) {
			char data[16] = {0};
			CHECK_EQ_INT(archive_read_data(ar, data, sizeof(data)), 4);
			CHECK_EQ_STR(data, "same");
		}
		if (n == 3)
			CHECK_EQ_STR(archive_entry_symlink(e), "a/f");
		n++;
	}
	CHECK_EQ_INT(n, 4);
	archive_read_free(ar);
	free(tar);
	free(gz);

	/* a pruned blob is no layer until made again */
	CHECK_EQ_INT(cas_remove(a->cas, la.blob + 7), 0);
	CHECK_EQ_INT(cache_layer_get(a, ra, false, &la2), -ENOENT);
	CHECK_EQ_INT(cache_layer_get(a, ra, true, &la2), 0);
	CHECK_EQ_STR(la2.blob, la.blob);
	sfs_cache_close(a);
	sfs_cache_close(b);
}

/* ---- the layout ---- */

static json_t *load_json(const char *dir, const char *name)
{
	char path[8192];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	json_t *j = json_load_file(path, 0, NULL);
	CHECK(j != NULL);
	return j;
}

/* The blob a descriptor names exists with that digest and size; returns it parsed when JSON. */
static json_t *check_desc(const char *dir, json_t *desc, bool parse)
{
	const char *dg = json_string_value(json_object_get(desc, "digest"));
	char path[8192], hex[SFS_DIGEST_SIZE];
	json_t *j = NULL;

	CHECK(dg && strncmp(dg, "sha256:", 7) == 0);
	if (!dg)
		return NULL;
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir, dg + 7);
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	if (fd < 0)
		return NULL;
	struct stat st;
	fstat(fd, &st);
	char *buf = malloc((size_t)st.st_size + 1);
	CHECK_EQ_INT(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	CHECK_EQ_INT(st.st_size, json_integer_value(json_object_get(desc, "size")));
	sfs_sha256_digest(buf, (size_t)st.st_size, hex);
	CHECK_EQ_STR(hex, dg);
	if (parse) {
		j = json_loadb(buf, (size_t)st.st_size, 0, NULL);
		CHECK(j != NULL);
	}
	free(buf);
	return j;
}

static void check_layer_desc(const char *dir, json_t *d, const char *mt)
{
	json_t *ann = json_object_get(d, "annotations");

	CHECK_EQ_STR(json_string_value(json_object_get(d, "mediaType")), mt);
	CHECK(sfs_is_digest(json_string_value(json_object_get(ann, "containerd.io/uncompressed"))));
	CHECK(json_string_value(json_object_get(ann, "buildkit/createdat")) != NULL);
	check_desc(dir, d, false);
}

/* Checks index.json, oci-layout and every blob; returns the parsed cacheconfig. */
static json_t *check_layout(const char *dir, enum cache_export_form form)
{
	bool image = form == CACHE_EXPORT_IMAGE;
	json_t *layout = load_json(dir, "oci-layout"), *idx = load_json(dir, "index.json");
	json_t *m0 = json_array_get(json_object_get(idx, "manifests"), 0), *cfg = NULL;

	CHECK_EQ_STR(json_string_value(json_object_get(layout, "imageLayoutVersion")), "1.0.0");
	CHECK_EQ_INT(json_integer_value(json_object_get(idx, "schemaVersion")), 2);
	CHECK_EQ_STR(json_string_value(json_object_get(idx, "mediaType")),
		     "application/vnd.oci.image.index.v1+json");
	CHECK_EQ_INT(json_array_size(json_object_get(idx, "manifests")), 1);
	CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(m0, "annotations"),
						       "org.opencontainers.image.ref.name")),
		     "latest");
	const char *mmt = image ? "application/vnd.oci.image.manifest.v1+json"
				: "application/vnd.docker.distribution.manifest.list.v2+json";
	CHECK_EQ_STR(json_string_value(json_object_get(m0, "mediaType")), mmt);
	json_t *man = check_desc(dir, m0, true);
	CHECK_EQ_STR(json_string_value(json_object_get(man, "mediaType")), mmt);
	CHECK_EQ_INT(json_integer_value(json_object_get(man, "schemaVersion")), 2);
	size_t i;
	json_t *d;
	if (image) {
		json_t *cd = json_object_get(man, "config");
		CHECK_EQ_STR(json_string_value(json_object_get(cd, "mediaType")),
			     "application/vnd.buildkit.cacheconfig.v0");
		cfg = check_desc(dir, cd, true);
		json_array_foreach(json_object_get(man, "layers"), i, d)
		    check_layer_desc(dir, d, "application/vnd.oci.image.layer.v1.tar+gzip");
	} else {
		json_t *ms = json_object_get(man, "manifests");
		size_t n = json_array_size(ms);
		CHECK(n >= 1);
		json_t *cd = json_array_get(ms, n - 1);
		CHECK_EQ_STR(json_string_value(json_object_get(cd, "mediaType")),
			     "application/vnd.buildkit.cacheconfig.v0");
		cfg = check_desc(dir, cd, true);
		for (i = 0; i + 1 < n; i++)
			check_layer_desc(dir, json_array_get(ms, i),
					 "application/vnd.docker.image.rootfs.diff.tar.gzip");
	}
	/* every config layer is in the manifest, in order */
	json_t *ls = json_object_get(cfg, "layers");
	json_t *mls = image ? json_object_get(man, "layers") : json_object_get(man, "manifests");
	CHECK_EQ_INT(json_array_size(mls), json_array_size(ls) + (image ? 0 : 1));
	json_array_foreach(ls, i, d)
	    CHECK_EQ_STR(json_string_value(json_object_get(d, "blob")),
			 json_string_value(json_object_get(json_array_get(mls, i), "digest")));
	json_decref(man);
	json_decref(idx);
	json_decref(layout);
	return cfg;
}

/* Records sorted by digest, layers by blob, links of an input by index. */
static void check_sorted(json_t *cfg)
{
	size_t i, j;
	json_t *r, *in;
	const char *prev = "";

	json_array_foreach(json_object_get(cfg, "records"), i, r)
	{
		const char *dg = json_string_value(json_object_get(r, "digest"));
		CHECK(strcmp(prev, dg) <= 0);
		prev = dg;
		json_array_foreach(json_object_get(r, "inputs"), j, in)
		{
			for (size_t k = 1; k < json_array_size(in); k++)
				CHECK(json_integer_value(
					  json_object_get(json_array_get(in, k - 1), "link")) <=
				      json_integer_value(
					  json_object_get(json_array_get(in, k), "link")));
		}
	}
	prev = "";
	json_array_foreach(json_object_get(cfg, "layers"), i, r)
	{
		const char *b = json_string_value(json_object_get(r, "blob"));
		CHECK(strcmp(prev, b) < 0);
		prev = b;
		CHECK_EQ_INT(json_integer_value(json_object_get(r, "parent")), -1);
	}
}

static void test_layout(void)
{
	struct sfs_cache *c = fx_cache_open();
	struct cache_key *c1 = root("vtx1"), *c2 = root("vtx2"), *mid, *top;
	char d[SFS_DIGEST_SIZE], *base = tap_tmpdir(), dirs[4][4096], *msg = NULL;

	mid = key_on("mid", c1, NULL);
	seed("top", d);
	top = cache_key_new(d, 0, 2);
	cache_key_add_dep(
	    top, 0, "sha256:0000000000000000000000000000000000000000000000000000000000000000", mid);
	cache_key_add_dep(top, 1, "", c2);
	cache_key_add_dep(top, 1, "", c1);
	save(c, c1, "one", 1);
	save(c, c2, "two", 2);
	save(c, mid, "mid", 3);
	save(c, top, "top", 4);
	for (int i = 0; i < 4; i++)
		snprintf(dirs[i], sizeof(dirs[i]), "%s/export%d", base, i);
	CHECK_EQ_INT(
	    cache_export(c, c->main, &top, 1, CACHE_EXPORT_MAX, CACHE_EXPORT_IMAGE, dirs[0], &msg),
	    0);
	CHECK_EQ_INT(
	    cache_export(c, c->main, &top, 1, CACHE_EXPORT_MAX, CACHE_EXPORT_IMAGE, dirs[1], &msg),
	    0);
	CHECK_EQ_INT(cache_export(c, c->main, &top, 1, CACHE_EXPORT_MAX, CACHE_EXPORT_MANIFEST_LIST,
				  dirs[2], &msg),
		     0);
	CHECK_EQ_INT(
	    cache_export(c, c->main, &top, 1, CACHE_EXPORT_MAX, CACHE_EXPORT_IMAGE, dirs[0], &msg),
	    -EEXIST);
	free(msg);
	msg = NULL;
	json_t *a = check_layout(dirs[0], CACHE_EXPORT_IMAGE);
	json_t *b = check_layout(dirs[1], CACHE_EXPORT_IMAGE);
	json_t *l = check_layout(dirs[2], CACHE_EXPORT_MANIFEST_LIST);
	CHECK(json_equal(a, b));
	CHECK(json_equal(a, l));
	CHECK_EQ_INT(json_array_size(json_object_get(a, "records")), 4);
	CHECK_EQ_INT(json_array_size(json_object_get(a, "layers")), 2);
	check_sorted(a);
	/* identical index.json: same manifest bytes */
	json_t *ia = load_json(dirs[0], "index.json"), *ib = load_json(dirs[1], "index.json");
	CHECK(json_equal(ia, ib));
	json_decref(ia);
	json_decref(ib);
	json_decref(a);
	json_decref(b);
	json_decref(l);

	/* no records: an empty config, still a layout */
	CHECK_EQ_INT(
	    cache_export(c, c->main, NULL, 0, CACHE_EXPORT_MAX, CACHE_EXPORT_IMAGE, dirs[3], &msg),
	    0);
	json_t *e = check_layout(dirs[3], CACHE_EXPORT_IMAGE);
	CHECK_EQ_INT(json_object_size(e), 0);
	json_decref(e);
	free(msg);
	cache_key_unref(top);
	cache_key_unref(mid);
	cache_key_unref(c1);
	cache_key_unref(c2);
	sfs_cache_close(c);
}

/* TestCacheMultipleMaps: a root saved under 3 maps with one record. */
static void test_multiple_maps(void)
{
	struct sfs_cache *c = fx_cache_open();
	struct cache_key *m[3] = {root("map0"), root("map1"), root("map2")}, *top;
	struct cache_result rec;
	char res[SFS_DIGEST_SIZE], d[SFS_DIGEST_SIZE];

	fx_tree(c, "a", 0644, "root", res);
	CHECK_EQ_INT(cache_manager_save(c->main, m[0], res, 1, NULL, &rec), 0);
	CHECK_EQ_INT(cache_manager_save(c->main, m[1], res, 1, &rec, NULL), 0);
	CHECK_EQ_INT(cache_manager_save(c->main, m[2], res, 1, &rec, NULL), 0);
	json_t *cfg = config_of(c, &m[0], 1, CACHE_EXPORT_MAX);
	CHECK_EQ_INT(json_array_size(json_object_get(cfg, "records")), 3);
	CHECK_EQ_INT(total_results(cfg), 0);
	json_decref(cfg);

	top = key_on("top", m[0], NULL);
	save(c, top, "top", 2);
	cfg = config_of(c, &top, 1, CACHE_EXPORT_MAX);
	CHECK_EQ_INT(json_array_size(json_object_get(cfg, "records")), 4);
	sfs_root_key(top->digest, 0, d);
	CHECK_EQ_INT(nlinks(record_by_digest(cfg, d), 0), 3);
	json_decref(cfg);
	cache_key_unref(top);
	for (int i = 0; i < 3; i++)
		cache_key_unref(m[i]);
	sfs_cache_close(c);
}

/* A chain persisted in storage reaches the export through backlinks: a
 * carry-over link from a second input key (TestCarryOverFromSublink). */
static void test_backlinks(void)
{
	struct sfs_cache *c = fx_cache_open();
	struct cache_key *c1 = root("vtx1"), *c3 = root("vtx3"), *top, **found = NULL;
	char d[SFS_DIGEST_SIZE], dtop[SFS_DIGEST_SIZE];
	size_t nfound = 0;

	seed("top", d);
	sfs_root_key(d, 0, dtop);
	top = cache_key_new(d, 0, 1);
	cache_key_add_dep(top, 0, "", c1);
	save(c, c1, "one", 1);
	save(c, top, "top", 2);
	struct cache_key_with_selector alts[2] = {{"", c1}, {"", c3}};
	CHECK_EQ_INT(cache_manager_query(c->main, alts, 2, 0, d, 0, &found, &nfound), 0);
	CHECK_EQ_INT(nfound, 1);
	for (size_t i = 0; i < nfound; i++)
		cache_key_unref(found[i]);
	free(found);

	json_t *cfg = config_of(c, &top, 1, CACHE_EXPORT_MAX);
	CHECK_EQ_INT(json_array_size(json_object_get(cfg, "records")), 3);
	CHECK_EQ_INT(nlinks(record_by_digest(cfg, dtop), 0), 2);
	CHECK(record_by_digest(cfg, c3->root_id) != NULL);
	CHECK_EQ_INT(total_results(cfg), 1);
	json_decref(cfg);
	cache_key_unref(top);
	cache_key_unref(c1);
	cache_key_unref(c3);
	sfs_cache_close(c);
}

struct rt_found {
	int n;
	char id[CACHE_ID_SIZE];
	char result[SFS_DIGEST_SIZE];
	int64_t created_at;
};

static int rt_target(const char *id, void *arg)
{
	struct rt_found *f = arg;
	snprintf(f->id, sizeof(f->id), "%s", id);
	f->n++;
	return 0;
}

static int rt_result(const struct cache_result *r, void *arg)
{
	struct rt_found *f = arg;
	snprintf(f->result, sizeof(f->result), "%s", r->result);
	f->created_at = r->created_at;
	return 0;
}

/* The importer reads what we write: a fresh cache finds the same result. */
static void test_round_trip(void)
{
	struct sfs_cache *c = fx_cache_open(), *f = fx_cache_open();
	char dc[SFS_DIGEST_SIZE], dp[SFS_DIGEST_SIZE], sel[SFS_DIGEST_SIZE], res[SFS_DIGEST_SIZE];
	char dir[4096], *msg = NULL;
	struct cache_import *im = NULL;

	seed("seed:seedA", dc);
	seed("seed:seedP", dp);
	seed("sel0", sel);
	struct cache_key *child = cache_key_new(dc, 0, 0), *parent = cache_key_new(dp, 0, 1);
	cache_key_add_dep(parent, 0, sel, child);
	save(c, child, "child", 5);
	fx_tree(c, "a", 0644, "parent", res);
	CHECK_EQ_INT(cache_manager_save(c->main, parent, res, 6, NULL, NULL), 0);
	snprintf(dir, sizeof(dir), "%s/rt", tap_tmpdir());
	CHECK_EQ_INT(cache_export(c, c->main, &parent, 1, CACHE_EXPORT_MIN,
				  CACHE_EXPORT_MANIFEST_LIST, dir, &msg),
		     0);
	CHECK_EQ_INT(cache_import_open(dir, &im, &msg), 0);
	if (msg)
		fprintf(stderr, "  %s\n", msg);
	CHECK_EQ_INT(cache_import_into(im, f, &msg), 0);
	if (msg)
		fprintf(stderr, "  %s\n", msg);
	cache_import_free(im);
	free(msg);

	/* The importer's link form (import.h): {0, 0, rootKey(P, 0), S} on the
	 * child's root id leads to a key holding the parent's result. */
	struct keystore *ks = cache_manager_keystore(f->main);
	struct cache_link l;
	struct rt_found rf = {0};
	keystore_record_link(0, 0, dp, sel, &l);
	CHECK_EQ_INT(ks->ops->walk_links(ks, child->root_id, &l, rt_target, &rf), 0);
	CHECK_EQ_INT(rf.n, 1);
	if (rf.n == 1)
		CHECK_EQ_INT(ks->ops->walk_results(ks, rf.id, rt_result, &rf), 0);
	CHECK_EQ_STR(rf.result, res);
	CHECK_EQ_INT(rf.created_at, 6);
	cache_key_unref(parent);
	cache_key_unref(child);
	sfs_cache_close(c);
	sfs_cache_close(f);
}

int main(void)
{
	RUN(test_time);
	RUN(test_exporting);
	RUN(test_mode_min);
	RUN(test_worked_example);
	RUN(test_layer_deterministic);
	RUN(test_layout);
	RUN(test_multiple_maps);
	RUN(test_backlinks);
	RUN(test_round_trip);
	return tap_done();
}
