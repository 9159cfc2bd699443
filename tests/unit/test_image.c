/*
 * test_image.c — cache/image.h over OCI layouts written here, with layers made
 * by libarchive: whiteouts, opaque dirs, hardlinks and devices as the unpack
 * applies them; platforms of an index; layer compressions and media types;
 * digests that do not match; tags that are not there.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cache.h"
#include "fixture.h"
#include "image.h"
#include "imageref.h"
#include "strbuf.h"
#include "tap.h"
#include "tree.h"

#define MT_TAR "application/vnd.oci.image.layer.v1.tar"
#define MT_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"

/* A tar entry: 'd', 'f', 'l' (data: target), 'h' (hardlink, data: target),
 * 'c' and 'b' (devices), 'p' (fifo). */
struct tent {
	char type;
	const char *name;
	unsigned mode;
	const char *data;
};

struct layer {
	char digest[SFS_DIGEST_SIZE];
	size_t size;
	const char *mt;
};

static void set_entry(struct archive_entry *ae, const struct tent *e)
{
	archive_entry_set_pathname(ae, e->name);
	archive_entry_set_perm(ae, e->mode);
	archive_entry_set_uid(ae, 1234);
	archive_entry_set_gid(ae, 5678);
	archive_entry_set_mtime(ae, 1000000, 0);
	switch (e->type) {
	case 'd':
		archive_entry_set_filetype(ae, AE_IFDIR);
		break;
	case 'f':
		archive_entry_set_filetype(ae, AE_IFREG);
		archive_entry_set_size(ae, (la_int64_t)strlen(e->data));
		break;
	case 'l':
		archive_entry_set_filetype(ae, AE_IFLNK);
		archive_entry_set_symlink(ae, e->data);
		break;
	case 'h':
		archive_entry_set_filetype(ae, AE_IFREG);
		archive_entry_set_hardlink(ae, e->data);
		break;
	case 'c':
	case 'b':
		archive_entry_set_filetype(ae, e->type == 'c' ? AE_IFCHR : AE_IFBLK);
		archive_entry_set_rdev(ae, makedev(1, 3));
		break;
	case 'p':
		archive_entry_set_filetype(ae, AE_IFIFO);
		break;
	}
}

/* A tar of the entries, compressed by mt's filter, stored as a blob. */
static void put_layer(const char *dir, const char *mt, const struct tent *e, size_t n,
		      struct layer *ret)
{
	struct archive *a = archive_write_new();
	struct archive_entry *ae = archive_entry_new();
	static char buf[8 << 20];
	size_t used = 0;

	if (!strcmp(mt, MT_GZIP))
		CHECK(archive_write_add_filter_gzip(a) == ARCHIVE_OK);
	else if (!strcmp(mt, MT_ZSTD))
		CHECK(archive_write_add_filter_zstd(a) == ARCHIVE_OK);
	archive_write_set_format_pax_restricted(a);
	CHECK(archive_write_open_memory(a, buf, sizeof(buf), &used) == ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		archive_entry_clear(ae);
		set_entry(ae, &e[i]);
		CHECK(archive_write_header(a, ae) == ARCHIVE_OK);
		if (e[i].type == 'f')
			CHECK(archive_write_data(a, e[i].data, strlen(e[i].data)) ==
			      (la_ssize_t)strlen(e[i].data));
	}
	CHECK(archive_write_close(a) == ARCHIVE_OK);
	archive_write_free(a);
	archive_entry_free(ae);
	fx_layout_put_blob(dir, buf, used, ret->digest);
	ret->size = used;
	ret->mt = mt;
}

/* An image manifest of the layers (and a config blob); ret its descriptor's digest,
 * *ret_size its size. */
static void put_manifest(const char *dir, const struct layer *l, size_t n, const char *arch,
			 char ret[SFS_DIGEST_SIZE], size_t *ret_size)
{
	struct strbuf sb = STRBUF_INIT;
	char cfg[SFS_DIGEST_SIZE], text[256];
	int len = snprintf(text, sizeof(text),
			   "{\"architecture\":\"%s\",\"os\":\"linux\",\"rootfs\":{\"type\":"
			   "\"layers\",\"diff_ids\":[]}}",
			   arch);

	fx_layout_put_blob(dir, text, (size_t)len, cfg);
	strbuf_addf(&sb,
		    "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":"
		    "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%d},"
		    "\"layers\":[",
		    IMAGE_MT_OCI_MANIFEST, cfg, len);
	for (size_t i = 0; i < n; i++)
		strbuf_addf(&sb, "%s{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}",
			    i ? "," : "", l[i].mt, l[i].digest, l[i].size);
	strbuf_addstr(&sb, "]}");
	fx_layout_put_blob(dir, sb.buf, sb.len, ret);
	*ret_size = sb.len;
	strbuf_release(&sb);
}

/* index.json: one entry, digest of media type mt, tagged tag. */
static void put_index(const char *dir, const char *mt, const char *digest, size_t size,
		      const char *tag)
{
	char path[4096], text[1024];
	int len = snprintf(text, sizeof(text),
			   "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"%s\",\"digest\":"
			   "\"%s\",\"size\":%zu,\"annotations\":{\"org.opencontainers.image.ref."
			   "name\":\"%s\"}}]}",
			   mt, digest, size, tag);

	snprintf(path, sizeof(path), "%s/index.json", dir);
	fx_write_file(path, text, (size_t)len);
}

/* A layout of one image of the layers, tagged "v1". */
static char *layout_of(const struct layer *l, size_t n, const char *dir)
{
	char m[SFS_DIGEST_SIZE];
	size_t size = 0;

	put_manifest(dir, l, n, "amd64", m, &size);
	put_index(dir, IMAGE_MT_OCI_MANIFEST, m, size, "v1");
	return strdup(dir);
}

static int open_source(const char *dir, const char *tag, struct image_source **ret, char **msg)
{
	struct imageref ref = {0};
	struct image_source_opts o = {.uid = getuid(), .gid = getgid()};
	char text[4200];
	int r;

	snprintf(text, sizeof(text), "oci:%s:%s", dir, tag);
	r = imageref_parse(text, &ref, msg);
	if (r == 0)
		r = image_source_open(&ref, &o, ret, msg);
	imageref_release(&ref);
	return r;
}

struct warnings {
	int n;
	char last[512];
};

static void count_warning(void *arg, const char *msg)
{
	struct warnings *w = arg;
	w->n++;
	snprintf(w->last, sizeof(w->last), "%s", msg);
}

/* Resolves dir:tag on linux/amd64 and unpacks it; *ret the tree (NULL on error). */
static int pull(struct sfs_cache *c, const char *dir, const char *tag, const char *platform,
		struct warnings *w, struct tree **ret, char **msg)
{
	struct image_unpack_opts uo = {
	    .layer_max = 1 << 30, .entries_max = 100000, .warn = count_warning, .arg = w};
	struct image_source *s = NULL;
	struct image_resolved res;
	char id[SFS_DIGEST_SIZE];
	int r = open_source(dir, tag, &s, msg);

	*ret = NULL;
	if (r == 0)
		r = image_resolve(s, platform, &res, msg);
	if (r == 0)
		r = image_unpack(s, c->cas, res.manifest, &uo, id, msg);
	if (r == 0)
		r = tree_load(c->cas, id, ret);
	image_source_free(s);
	return r;
}

static char *new_dir(const char *name)
{
	char *d = NULL;
	CHECK(asprintf(&d, "%s/%s", tap_tmpdir(), name) > 0);
	CHECK(mkdir(d, 0755) == 0);
	return d;
}

static const struct tree_entry *find(const struct tree *t, const char *path)
{
	return t ? tree_find(t, path) : NULL;
}

static void test_whiteouts_and_opaque_dirs(void)
{
	static const struct tent base[] = {
	    {'d', "etc", 0755, ""},	     {'f', "etc/a", 0644, "a"},
	    {'f', "etc/b", 0644, "b"},	     {'d', "var/cache", 0700, ""},
	    {'f', "var/cache/x", 0644, "x"}, {'f', "var/log", 0644, "log"},
	    {'d', "keep", 0755, ""},	     {'f', "keep/k", 0644, "k"},
	};
	static const struct tent top[] = {
	    {'f', "etc/.wh.a", 0644, ""},
	    {'f', "var/new", 0644, "new"},
	    {'f', "var/.wh..wh..opq", 0644, ""},
	    {'f', ".wh.keep", 0644, ""},
	};
	struct sfs_cache *c = fx_cache_open();
	char *dir = new_dir("wh"), *msg = NULL;
	struct layer l[2];
	struct warnings w = {0};
	struct tree *t = NULL;

	put_layer(dir, MT_GZIP, base, sizeof(base) / sizeof(base[0]), &l[0]);
	put_layer(dir, MT_TAR, top, sizeof(top) / sizeof(top[0]), &l[1]);
	free(layout_of(l, 2, dir));
	CHECK_EQ_INT(pull(c, dir, "v1", "linux/amd64", &w, &t, &msg), 0);
	CHECK(find(t, "etc/b") != NULL);
	CHECK(find(t, "etc/a") == NULL);     /* whited out */
	CHECK(find(t, "etc/.wh.a") == NULL); /* whiteouts are not files */
	CHECK(find(t, "var/new") != NULL);   /* the opaque dir's own layer stays */
	CHECK(find(t, "var/cache") == NULL);
	CHECK(find(t, "var/cache/x") == NULL);
	CHECK(find(t, "var/log") == NULL);
	CHECK(find(t, "keep") == NULL); /* a whited-out dir takes its subtree */
	CHECK(find(t, "keep/k") == NULL);
	CHECK_EQ_INT(w.n, 0);
	tree_free(t);
	free(msg);
	free(dir);
	sfs_cache_close(c);
}

static void test_hardlinks_are_copies_modes_kept(void)
{
	static const struct tent base[] = {
	    {'f', "bin/tool", 04755, "#!tool"},
	    {'h', "bin/alias", 04755, "bin/tool"},
	    {'f', "secret", 0600, "s"},
	    {'l', "link", 0777, "bin/tool"},
	};
	static const struct tent top[] = {{'f', "bin/tool", 0755, "#!new tool"}};
	struct sfs_cache *c = fx_cache_open();
	char *dir = new_dir("hl"), *msg = NULL;
	struct layer l[2];
	struct warnings w = {0};
	struct tree *t = NULL;
	const struct tree_entry *tool, *alias;

	put_layer(dir, MT_GZIP, base, sizeof(base) / sizeof(base[0]), &l[0]);
	put_layer(dir, MT_GZIP, top, 1, &l[1]);
	free(layout_of(l, 2, dir));
	CHECK_EQ_INT(pull(c, dir, "v1", "linux/amd64", &w, &t, &msg), 0);
	tool = find(t, "bin/tool");
	alias = find(t, "bin/alias");
	CHECK(tool && alias);
	if (tool && alias) {
		/* the link is a copy of what its target was: the upper layer's change
		 * of the target leaves it as it was */
		CHECK_EQ_INT(alias->type, 'f');
		CHECK_EQ_INT(alias->size, 6);
		CHECK(strcmp(tool->hex, alias->hex) != 0);
		CHECK_EQ_INT(alias->mode, 04755);
		CHECK_EQ_INT(tool->mode, 0755);
	}
	CHECK(find(t, "secret") && find(t, "secret")->mode == 0600);
	CHECK(find(t, "link") && find(t, "link")->type == 'l');
	CHECK(find(t, "bin") && find(t, "bin")->mode == 0755); /* an implied parent */
	tree_free(t);
	free(msg);
	free(dir);
	sfs_cache_close(c);
}

static void test_devices_dropped_with_a_warning(void)
{
	static const struct tent base[] = {
	    {'d', "dev", 0755, ""},	 {'c', "dev/null", 0666, ""},  {'b', "dev/sda", 0660, ""},
	    {'p', "dev/fifo", 0644, ""}, {'f', "dev/.keep", 0644, ""},
	};
	struct sfs_cache *c = fx_cache_open();
	char *dir = new_dir("dev"), *msg = NULL;
	struct layer l;
	struct warnings w = {0};
	struct tree *t = NULL;

	put_layer(dir, MT_GZIP, base, sizeof(base) / sizeof(base[0]), &l);
	free(layout_of(&l, 1, dir));
	CHECK_EQ_INT(pull(c, dir, "v1", "linux/amd64", &w, &t, &msg), 0);
	CHECK(find(t, "dev/.keep") != NULL);
	CHECK(find(t, "dev/null") == NULL);
	CHECK(find(t, "dev/sda") == NULL);
	CHECK(find(t, "dev/fifo") == NULL);
	CHECK_EQ_INT(w.n, 3);
	CHECK(strstr(w.last, "dev/fifo") != NULL);
	tree_free(t);
	free(msg);
	free(dir);
	sfs_cache_close(c);
}

static void test_zstd_and_plain_layers(void)
{
	static const struct tent a[] = {{'f', "a", 0644, "zstd"}};
	static const struct tent b[] = {{'f', "b", 0644, "plain"}};
	struct sfs_cache *c = fx_cache_open();
	char *dir = new_dir("zst"), *msg = NULL;
	struct layer l[2];
	struct warnings w = {0};
	struct tree *t = NULL;

	put_layer(dir, MT_ZSTD, a, 1, &l[0]);
	put_layer(dir, MT_TAR, b, 1, &l[1]);
	free(layout_of(l, 2, dir));
	CHECK_EQ_INT(pull(c, dir, "v1", "linux/amd64", &w, &t, &msg), 0);
	CHECK(find(t, "a") && find(t, "a")->size == 4);
	CHECK(find(t, "b") && find(t, "b")->size == 5);
	tree_free(t);
	free(msg);
	free(dir);
	sfs_cache_close(c);
}

/* An index of two platforms (and one inside a nested index). */
static void test_platforms_of_an_index(void)
{
	static const struct tent amd[] = {{'f', "arch", 0644, "amd64"}};
	static const struct tent arm[] = {{'f', "arch", 0644, "arm64"}};
	struct sfs_cache *c = fx_cache_open();
	char *dir = new_dir("plat"), *msg = NULL;
	char ma[SFS_DIGEST_SIZE], mr[SFS_DIGEST_SIZE], ix[SFS_DIGEST_SIZE], top[SFS_DIGEST_SIZE];
	size_t sa = 0, sr = 0;
	struct layer la, lr;
	struct strbuf sb = STRBUF_INIT;
	struct warnings w = {0};
	struct tree *t = NULL;

	put_layer(dir, MT_GZIP, amd, 1, &la);
	put_layer(dir, MT_GZIP, arm, 1, &lr);
	put_manifest(dir, &la, 1, "amd64", ma, &sa);
	put_manifest(dir, &lr, 1, "arm64", mr, &sr);
	strbuf_addf(&sb,
		    "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":["
		    "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,\"platform\":{"
		    "\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}},"
		    "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,\"platform\":{"
		    "\"architecture\":\"amd64\",\"os\":\"linux\"}}]}",
		    IMAGE_MT_OCI_INDEX, IMAGE_MT_OCI_MANIFEST, mr, sr, IMAGE_MT_OCI_MANIFEST, ma,
		    sa);
	fx_layout_put_blob(dir, sb.buf, sb.len, ix);
	size_t six = sb.len;
	strbuf_reset(&sb);
	/* the tag names an index whose one entry is the index above */
	strbuf_addf(&sb,
		    "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":["
		    "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,\"platform\":{"
		    "\"architecture\":\"amd64\",\"os\":\"linux\"}},"
		    "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,\"platform\":{"
		    "\"architecture\":\"arm64\",\"os\":\"linux\"}}]}",
		    IMAGE_MT_DOCKER_LIST, IMAGE_MT_OCI_INDEX, ix, six, IMAGE_MT_OCI_INDEX, ix, six);
	fx_layout_put_blob(dir, sb.buf, sb.len, top);
	put_index(dir, IMAGE_MT_DOCKER_LIST, top, sb.len, "multi");
	strbuf_release(&sb);

	CHECK_EQ_INT(pull(c, dir, "multi", "linux/amd64", &w, &t, &msg), 0);
	CHECK(find(t, "arch") && find(t, "arch")->size == 5);
	CHECK(find(t, "arch") && strcmp(find(t, "arch")->hex, "") != 0);
	char amd_hex[SFS_HEX_SIZE] = "";
	if (find(t, "arch"))
		snprintf(amd_hex, sizeof(amd_hex), "%s", find(t, "arch")->hex);
	t = tree_free(t);
	CHECK_EQ_INT(pull(c, dir, "multi", "linux/arm64/v8", &w, &t, &msg), 0);
	CHECK(find(t, "arch") && strcmp(find(t, "arch")->hex, amd_hex) != 0);
	t = tree_free(t);
	CHECK_EQ_INT(pull(c, dir, "multi", "linux/arm64", &w, &t, &msg), 0);
	t = tree_free(t);
	CHECK_EQ_INT(pull(c, dir, "multi", "linux/arm64/v7", &w, &t, &msg), -ENOENT);
	CHECK(msg && strstr(msg, "no image for platform linux/arm64/v7"));
	free(msg);
	msg = NULL;
	CHECK_EQ_INT(pull(c, dir, "multi", "linux/s390x", &w, &t, &msg), -ENOENT);
	free(msg);
	msg = NULL;

	struct image_source *s = NULL;
	struct image_resolved res;
	CHECK_EQ_INT(open_source(dir, "multi", &s, &msg), 0);
	CHECK_EQ_INT(image_resolve(s, "linux/amd64", &res, &msg), 0);
	CHECK_EQ_STR(res.top, top);
	CHECK_EQ_STR(res.manifest, ma);
	image_source_free(s);
	CHECK(image_platform_valid("linux/amd64") && image_platform_valid("linux/arm64/v8"));
	CHECK(!image_platform_valid("amd64") && !image_platform_valid("linux/") &&
	      !image_platform_valid("linux/amd64/v8/x") && !image_platform_valid("Linux/amd64"));
	free(msg);
	free(dir);
	sfs_cache_close(c);
}

static void test_unsupported_media_types(void)
{
	static const struct tent a[] = {{'f', "a", 0644, "a"}};
	struct sfs_cache *c = fx_cache_open();
	char *dir = new_dir("mt"), *msg = NULL;
	char d[SFS_DIGEST_SIZE];
	struct layer l;
	struct warnings w = {0};
	struct tree *t = NULL;
	static const char schema1[] = "{\"schemaVersion\":1,\"name\":\"x\",\"fsLayers\":[]}";

	put_layer(dir, MT_GZIP, a, 1, &l);
	l.mt = "application/vnd.oci.image.layer.v1.tar+encrypted";
	free(layout_of(&l, 1, dir));
	CHECK_EQ_INT(pull(c, dir, "v1", "linux/amd64", &w, &t, &msg), -EOPNOTSUPP);
	CHECK(msg && strstr(msg, "tar+encrypted\" is not supported"));
	free(msg);
	msg = NULL;

	fx_layout_put_blob(dir, schema1, strlen(schema1), d);
	put_index(dir, "application/vnd.docker.distribution.manifest.v1+json", d, strlen(schema1),
		  "v1");
	CHECK_EQ_INT(pull(c, dir, "v1", "linux/amd64", &w, &t, &msg), -EOPNOTSUPP);
	CHECK(msg && strstr(msg, "schema 1"));
	free(msg);
	free(dir);
	sfs_cache_close(c);
}

static void corrupt(const char *dir, const char *digest)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir, digest + 7);
	fd = open(path, O_WRONLY);
	CHECK(fd >= 0);
	CHECK(pwrite(fd, "X", 1, 20) == 1);
	close(fd);
}

static void test_bad_digests_and_missing_tags(void)
{
	static const struct tent a[] = {{'f', "a", 0644, "some content for the layer"}};
	struct sfs_cache *c = fx_cache_open();
	char *dir = new_dir("bad"), *msg = NULL;
	char m[SFS_DIGEST_SIZE];
	size_t size = 0;
	struct layer l;
	struct warnings w = {0};
	struct tree *t = NULL;

	put_layer(dir, MT_GZIP, a, 1, &l);
	put_manifest(dir, &l, 1, "amd64", m, &size);
	put_index(dir, IMAGE_MT_OCI_MANIFEST, m, size, "v1");

	CHECK_EQ_INT(pull(c, dir, "v2", "linux/amd64", &w, &t, &msg), -ENOENT);
	CHECK(msg && strstr(msg, "no image tagged \"v2\""));
	free(msg);
	msg = NULL;

	corrupt(dir, l.digest);
	CHECK_EQ_INT(pull(c, dir, "v1", "linux/amd64", &w, &t, &msg), -EBADMSG);
	CHECK(msg && strstr(msg, "does not match its digest") && strstr(msg, l.digest));
	free(msg);
	msg = NULL;

	corrupt(dir, m);
	CHECK_EQ_INT(pull(c, dir, "v1", "linux/amd64", &w, &t, &msg), -EBADMSG);
	CHECK(msg && strstr(msg, m));
	free(msg);
	free(dir);
	sfs_cache_close(c);
}

int main(void)
{
	RUN(test_whiteouts_and_opaque_dirs);
	RUN(test_hardlinks_are_copies_modes_kept);
	RUN(test_devices_dropped_with_a_warning);
	RUN(test_zstd_and_plain_layers);
	RUN(test_platforms_of_an_index);
	RUN(test_unsupported_media_types);
	RUN(test_bad_digests_and_missing_tags);
	return tap_done();
}
