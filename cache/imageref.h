/*
 * imageref.h — the one parser of image and cache references (docs/spec.md §refs),
 * shared by cache_from, export.to and the image source op.
 *
 * Syntax, skopeo's transports:
 *   docker://HOST[:PORT]/REPO[:TAG|@sha256:HEX]   a registry (tag "latest" when absent)
 *   oci:/ABS/PATH[:TAG]                           an OCI layout directory
 *   /ABS/PATH                                     a layout directory, as before
 * HOST must contain a '.' or ':' or be "localhost" (docker's rule, so a bare
 * "docker://ubuntu" is refused rather than guessed to be Docker Hub).  REPO is
 * lowercase [a-z0-9] components separated by '/', with '.', '_', '__' or '-'
 * runs inside a component (the distribution spec's grammar); TAG is
 * [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.  A reference with both a tag and a digest
 * keeps both; the digest wins when fetching.
 */
#ifndef SFS_IMAGEREF_H
#define SFS_IMAGEREF_H

#include <stdbool.h>

#include "sha256.h"

enum imageref_kind {
	IMAGEREF_DOCKER, /* docker:// */
	IMAGEREF_OCI,	 /* oci: or a bare absolute path */
};

#define IMAGEREF_HOST_MAX 256
#define IMAGEREF_REPO_MAX 256
#define IMAGEREF_TAG_MAX 128

struct imageref {
	enum imageref_kind kind;
	/* IMAGEREF_DOCKER */
	char host[IMAGEREF_HOST_MAX]; /* "HOST" or "HOST:PORT", as written */
	char repo[IMAGEREF_REPO_MAX];
	char tag[IMAGEREF_TAG_MAX + 1];	   /* "" when only a digest was given */
	char digest[SFS_DIGEST_SIZE];	   /* "" when only a tag was given */
	/* IMAGEREF_OCI: path is malloc'd (absolute), tag "" when absent */
	char *path;
};

/* Parses s into *ret (released with imageref_release); -EINVAL with a
 * message saying what is wrong. */
int imageref_parse(const char *s, struct imageref *ret, char **ret_msg);
void imageref_release(struct imageref *r); /* accepts a zeroed or released one */

/* True when s starts with a transport name this parser knows ("docker://",
 * "oci:"), so callers can tell a reference from a plain path. */
bool imageref_is_ref(const char *s);

/* "docker://HOST/REPO:TAG" or "...@sha256:..." (digest preferred when
 * prefer_digest and one is set), or "oci:PATH[:TAG]"; malloc'd. */
char *imageref_format(const struct imageref *r, bool prefer_digest);

#endif
