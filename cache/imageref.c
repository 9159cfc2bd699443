/*
 * imageref.c — parsing docker:// and oci: references (imageref.h).
 */
#include "imageref.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "err.h"

#define DOCKER_PREFIX "docker://"
#define OCI_PREFIX "oci:"

bool imageref_is_ref(const char *s)
{
	return s && (strncmp(s, DOCKER_PREFIX, strlen(DOCKER_PREFIX)) == 0 ||
		     strncmp(s, OCI_PREFIX, strlen(OCI_PREFIX)) == 0);
}

void imageref_release(struct imageref *r)
{
	if (!r)
		return;
	free(r->path);
	r->path = NULL;
}

static bool host_ok(const char *h, size_t n)
{
	if (n == 0 || n >= IMAGEREF_HOST_MAX)
		return false;
	bool dot = false, colon = false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h[i];
		if (c == '.')
			dot = true;
		else if (c == ':')
			colon = true;
		else if (!isalnum(c) && c != '-' && c != '[' && c != ']')
			return false;
	}
	return dot || colon || (n == 9 && strncmp(h, "localhost", 9) == 0);
}

static bool is_sep_run(const char *s, size_t n)
{
	if (n == 1)
		return s[0] == '.' || s[0] == '_' || s[0] == '-';
	if (n == 2 && s[0] == '_' && s[1] == '_')
		return true;
	for (size_t i = 0; i < n; i++)
		if (s[i] != '-')
			return false;
	return true;
}

/* A path component: [a-z0-9]+ ((sep) [a-z0-9]+)*. */
static bool component_ok(const char *s, size_t n)
{
	size_t i = 0;
	if (n == 0)
		return false;
	while (i < n) {
		size_t a = i;
		while (i < n && (islower((unsigned char)s[i]) || isdigit((unsigned char)s[i])))
			i++;
		if (i == a)
			return false;
		if (i == n)
			return true;
		size_t b = i;
		while (i < n && !(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i])))
			i++;
		if (i == n || !is_sep_run(s + b, i - b))
			return false;
	}
	return true;
}

static bool repo_ok(const char *s, size_t n)
{
	if (n == 0 || n >= IMAGEREF_REPO_MAX)
		return false;
	size_t a = 0;
	for (size_t i = 0; i <= n; i++)
		if (i == n || s[i] == '/') {
			if (!component_ok(s + a, i - a))
				return false;
			a = i + 1;
		}
	return true;
}

static bool tag_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > IMAGEREF_TAG_MAX)
		return false;
	if (!isalnum((unsigned char)s[0]) && s[0] != '_')
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
			return false;
	return true;
}

static int parse_docker(const char *s, const char *orig, struct imageref *r, char **ret_msg)
{
	const char *slash = strchr(s, '/');
	if (!slash || !host_ok(s, (size_t)(slash - s)))
		return sfs_errf(ret_msg, EINVAL,
				"reference \"%s\": expected docker://HOST[:PORT]/REPO[:TAG|@sha256:HEX] "
				"with a registry host (containing '.' or ':', or localhost)",
				orig);
	memcpy(r->host, s, (size_t)(slash - s));
	r->host[slash - s] = '\0';
	const char *name = slash + 1;
	const char *at = strchr(name, '@');
	size_t name_len = at ? (size_t)(at - name) : strlen(name);
	if (at) {
		if (!sfs_is_digest(at + 1))
			return sfs_errf(ret_msg, EINVAL,
					"reference \"%s\": the digest must be sha256: and 64 "
					"lowercase hex digits",
					orig);
		sfs_copy_str(r->digest, sizeof(r->digest), at + 1);
	}
	/* A tag follows the last ':' after the last '/'. */
	const char *last_slash = memrchr(name, '/', name_len);
	const char *from = last_slash ? last_slash + 1 : name;
	const char *colon = memchr(from, ':', name_len - (size_t)(from - name));
	size_t repo_len = colon ? (size_t)(colon - name) : name_len;
	if (!repo_ok(name, repo_len))
		return sfs_errf(ret_msg, EINVAL,
				"reference \"%s\": repository name must be lowercase letters, "
				"digits and separators (. _ __ -) in /-separated parts",
				orig);
	memcpy(r->repo, name, repo_len);
	r->repo[repo_len] = '\0';
	if (colon) {
		size_t tl = name_len - repo_len - 1;
		if (tl > IMAGEREF_TAG_MAX)
			return sfs_errf(ret_msg, EINVAL, "reference \"%s\": tag too long", orig);
		memcpy(r->tag, colon + 1, tl);
		r->tag[tl] = '\0';
		if (!tag_ok(r->tag))
			return sfs_errf(ret_msg, EINVAL,
					"reference \"%s\": a tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}",
					orig);
	} else if (!at) {
		snprintf(r->tag, sizeof(r->tag), "latest");
	}
	return 0;
}

static int parse_oci(const char *p, const char *orig, struct imageref *r, char **ret_msg)
{
	if (p[0] != '/')
		return sfs_errf(ret_msg, EINVAL, "reference \"%s\": oci: takes an absolute path",
				orig);
	/* A tag follows a ':' after the last '/'. */
	const char *last_slash = strrchr(p, '/');
	const char *colon = strchr(last_slash, ':');
	size_t pl = colon ? (size_t)(colon - p) : strlen(p);
	if (colon) {
		if (strlen(colon + 1) > IMAGEREF_TAG_MAX || !tag_ok(colon + 1))
			return sfs_errf(ret_msg, EINVAL,
					"reference \"%s\": a tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}",
					orig);
		sfs_copy_str(r->tag, sizeof(r->tag), colon + 1);
	}
	if (!(r->path = strndup(p, pl)))
		return -ENOMEM;
	return 0;
}

int imageref_parse(const char *s, struct imageref *ret, char **ret_msg)
{
	struct imageref r = {0};
	int rc;

	if (!s)
		return -EINVAL;
	if (strncmp(s, DOCKER_PREFIX, strlen(DOCKER_PREFIX)) == 0) {
		r.kind = IMAGEREF_DOCKER;
		rc = parse_docker(s + strlen(DOCKER_PREFIX), s, &r, ret_msg);
	} else if (strncmp(s, OCI_PREFIX, strlen(OCI_PREFIX)) == 0) {
		r.kind = IMAGEREF_OCI;
		rc = parse_oci(s + strlen(OCI_PREFIX), s, &r, ret_msg);
	} else if (s[0] == '/') {
		r.kind = IMAGEREF_OCI;
		rc = (r.path = strdup(s)) ? 0 : -ENOMEM;
	} else {
		rc = sfs_errf(ret_msg, EINVAL,
			      "reference \"%s\": expected docker://HOST/REPO[:TAG|@DIGEST], "
			      "oci:/PATH[:TAG] or an absolute path",
			      s);
	}
	if (rc < 0) {
		imageref_release(&r);
		return rc;
	}
	*ret = r;
	return 0;
}

char *imageref_format(const struct imageref *r, bool prefer_digest)
{
	char *s = NULL;
	int n;

	if (r->kind == IMAGEREF_OCI)
		n = asprintf(&s, "oci:%s%s%s", r->path, r->tag[0] ? ":" : "", r->tag);
	else if ((prefer_digest && r->digest[0]) || !r->tag[0])
		n = asprintf(&s, "docker://%s/%s@%s", r->host, r->repo, r->digest);
	else
		n = asprintf(&s, "docker://%s/%s:%s", r->host, r->repo, r->tag);
	return n < 0 ? NULL : s;
}
