/*
 * test_imageref.c — the reference parser (cache/imageref.h) and the auth file
 * lookup of cache/registry.h: what is accepted, what is refused and why, and
 * the round trip through imageref_format.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imageref.h"
#include "registry.h"
#include "tap.h"

#define HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_docker(void)
{
	struct imageref r = {0};
	CHECK_EQ_INT(imageref_parse("docker://127.0.0.1:5000/ci/cache:main", &r, NULL), 0);
	CHECK_EQ_INT(r.kind, IMAGEREF_DOCKER);
	CHECK_EQ_STR(r.host, "127.0.0.1:5000");
	CHECK_EQ_STR(r.repo, "ci/cache");
	CHECK_EQ_STR(r.tag, "main");
	CHECK_EQ_STR(r.digest, "");
	imageref_release(&r);

	CHECK_EQ_INT(imageref_parse("docker://localhost/a", &r, NULL), 0);
	CHECK_EQ_STR(r.tag, "latest"); /* the default tag */
	imageref_release(&r);

	CHECK_EQ_INT(imageref_parse("docker://reg.example.com/a/b-c__d.e@sha256:" HEX, &r, NULL), 0);
	CHECK_EQ_STR(r.repo, "a/b-c__d.e");
	CHECK_EQ_STR(r.tag, "");
	CHECK_EQ_STR(r.digest, "sha256:" HEX);
	char *s = imageref_format(&r, true);
	CHECK_EQ_STR(s, "docker://reg.example.com/a/b-c__d.e@sha256:" HEX);
	free(s);
	imageref_release(&r);

	CHECK_EQ_INT(imageref_parse("docker://h.io:443/x:v1.2@sha256:" HEX, &r, NULL), 0);
	CHECK_EQ_STR(r.tag, "v1.2");
	CHECK_EQ_STR(r.digest, "sha256:" HEX);
	s = imageref_format(&r, false);
	CHECK_EQ_STR(s, "docker://h.io:443/x:v1.2");
	free(s);
	imageref_release(&r);
}

static void refused(const char *ref, const char *why)
{
	struct imageref r = {0};
	char *msg = NULL;
	CHECK_EQ_INT(imageref_parse(ref, &r, &msg), -EINVAL);
	CHECK(msg && strstr(msg, why));
	if (msg && !strstr(msg, why))
		printf("# %s: %s\n", ref, msg);
	free(msg);
	imageref_release(&r);
}

static void test_refused(void)
{
	refused("docker://ubuntu", "registry host");	  /* no host: not guessed */
	refused("docker://ubuntu/x", "registry host");	  /* "ubuntu" is not a host */
	refused("docker://h.io/Upper", "lowercase");	  /* repository case */
	refused("docker://h.io/a//b", "lowercase");	  /* empty component */
	refused("docker://h.io/a-/b", "lowercase");	  /* separator at the end */
	refused("docker://h.io/a:", "a tag is");	  /* empty tag */
	refused("docker://h.io/a:-x", "a tag is");	  /* tag's first character */
	refused("docker://h.io/a@sha256:abc", "digest"); /* short digest */
	refused("docker://h.io/a@md5:" HEX, "digest");
	refused("oci:relative/dir", "absolute path");
	refused("relative/dir", "expected docker://");
	refused("http://h.io/a", "expected docker://");
}

static void test_oci(void)
{
	struct imageref r = {0};
	CHECK_EQ_INT(imageref_parse("oci:/srv/layout:v1", &r, NULL), 0);
	CHECK_EQ_INT(r.kind, IMAGEREF_OCI);
	CHECK_EQ_STR(r.path, "/srv/layout");
	CHECK_EQ_STR(r.tag, "v1");
	imageref_release(&r);
	CHECK_EQ_INT(imageref_parse("oci:/srv/a:b/layout", &r, NULL), 0); /* ':' before a '/' */
	CHECK_EQ_STR(r.path, "/srv/a:b/layout");
	CHECK_EQ_STR(r.tag, "");
	imageref_release(&r);
	CHECK_EQ_INT(imageref_parse("/srv/layout", &r, NULL), 0); /* a bare path */
	CHECK_EQ_INT(r.kind, IMAGEREF_OCI);
	CHECK_EQ_STR(r.path, "/srv/layout");
	CHECK(!imageref_is_ref("/srv/layout"));
	CHECK(imageref_is_ref("oci:/srv/layout"));
	CHECK(imageref_is_ref("docker://h.io/a"));
	imageref_release(&r);
}

static void test_auth_file(void)
{
	char *dir = tap_tmpdir() /* tap_done removes and frees it */, path[4096], *cred = NULL, *msg = NULL;
	snprintf(path, sizeof(path), "%s/auth.json", dir);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	/* "alice:pa:ss" — a password may hold ':' */
	fputs("{\"auths\": {\"h.io:5000\": {\"auth\": \"YWxpY2U6cGE6c3M=\"},"
	      " \"bad.io\": {\"auth\": \"bm9jb2xvbg==\"}}}",
	      f);
	fclose(f);
	setenv("REGISTRY_AUTH_FILE", path, 1);
	CHECK_EQ_INT(registry_auth_lookup("h.io:5000", getuid(), &cred, NULL), 0);
	CHECK_EQ_STR(cred, "alice:pa:ss");
	free(cred);
	cred = NULL;
	CHECK_EQ_INT(registry_auth_lookup("other.io", getuid(), &cred, NULL), 0);
	CHECK(cred == NULL);
	/* "nocolon": refused, and the message names the host, not the secret */
	CHECK_EQ_INT(registry_auth_lookup("bad.io", getuid(), &cred, &msg), -EINVAL);
	CHECK(msg && strstr(msg, "bad.io") && !strstr(msg, "nocolon") && !strstr(msg, "bm9jb2xvbg"));
	free(msg);
	unsetenv("REGISTRY_AUTH_FILE");

}

int main(void)
{
	RUN(test_docker);
	RUN(test_refused);
	RUN(test_oci);
	RUN(test_auth_file);
	return tap_done();
}
