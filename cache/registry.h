/*
 * registry.h — a client of the OCI distribution API (docs/export.md §11), on libcurl.
 *
 * One struct registry talks to one repository (HOST/REPO of an imageref) for
 * one thread at a time; it keeps its curl handle and the token of the last
 * Bearer challenge, so a sequence of calls authenticates once.  Everything the
 * remote end sends is bounded: manifests and configs by opts.json_max, a blob
 * by the size its descriptor gave (a longer body is an error as soon as it
 * goes past it), a stall by opts.timeout_ns, and redirects may not leave for
 * another scheme (an http:// redirect of an https registry is refused).
 *
 * Credentials (Basic, from the containers auth file: registry_auth_lookup) go
 * only into request headers: no error, log line or progress text carries them,
 * and URLs in messages never contain a query string.
 *
 * Errors: 0 or -errno with a sentence in *ret_msg that names the URL's
 * host/repo and what went wrong ("registry 127.0.0.1:5000/cache: manifest
 * latest: not found").  -ENOENT is "the registry says it has no such manifest
 * or blob", -EHOSTUNREACH/-ECONNREFUSED/-ETIMEDOUT are "could not reach",
 * -EACCES "authentication refused", -EBADMSG "content does not match its
 * digest", -EFBIG "longer than allowed".
 */
#ifndef SFS_REGISTRY_H
#define SFS_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "imageref.h"
#include "sha256.h"

struct cas;

/* Accept header for manifests: OCI image manifest and index, Docker v2
 * manifest and manifest list. */
#define REGISTRY_MANIFEST_MAX_DEFAULT (4u << 20)
#define REGISTRY_TIMEOUT_DEFAULT_NS (30LL * 1000000000LL)
/* Bytes of one PATCH of a chunked upload. */
#define REGISTRY_CHUNK_DEFAULT (8u << 20)

struct registry_opts {
	const char *ca_file;	/* extra CA bundle beside the system's; NULL: none */
	const char *insecure;	/* "HOST:PORT,HOST:PORT": plain http for those; NULL */
	int64_t timeout_ns;	/* no byte for this long fails a request; 0: the default */
	uint64_t json_max;	/* bytes of a manifest or config; 0: the default */
	uint64_t chunk;		/* upload chunk; 0: the default */
	uid_t owner;		/* whose ~/.docker/config.json is read (the mount owner) */
	/* Called while a blob moves, at most every 100 ms and at its end:
	 * what is "push sha256:..." or "pull sha256:...".  NULL: none. */
	void (*progress)(void *arg, const char *what, uint64_t done, uint64_t total);
	/* Polled while bytes move; true stops the request with -ECANCELED. */
	bool (*cancelled)(void *arg);
	void *arg;
};
void registry_opts_default(struct registry_opts *o);

struct registry;

/* A client for ref's host and repository (ref must be IMAGEREF_DOCKER; the
 * tag and digest are not used here).  o is copied (its strings too). */
int registry_open(const struct imageref *ref, const struct registry_opts *o,
		  struct registry **ret, char **ret_msg);
struct registry *registry_close(struct registry *r); /* accepts NULL, returns NULL */

/* ---- reading ---- */

/*
 * Fetches the manifest named by tag_or_digest (a tag, or "sha256:..." which the
 * body is then checked against).  *ret_buf (NUL-terminated, malloc'd) is the
 * body, *ret_mt its Content-Type (malloc'd; NULL when ret_mt is NULL),
 * ret_digest the SHA-256 of the body.  -ENOENT when the registry has none.
 */
int registry_get_manifest(struct registry *r, const char *tag_or_digest, char **ret_buf,
			  size_t *ret_len, char **ret_mt, char ret_digest[SFS_DIGEST_SIZE],
			  char **ret_msg);

/* Resolves a tag to the digest of its manifest (a GET, as HEAD's
 * Docker-Content-Digest is optional). */
int registry_resolve(struct registry *r, const char *tag, char ret_digest[SFS_DIGEST_SIZE],
		     char **ret_msg);

/* A small blob (a config) into memory: at most max bytes, checked against
 * digest.  *ret_buf NUL-terminated, malloc'd. */
int registry_get_blob_buf(struct registry *r, const char *digest, uint64_t max, char **ret_buf,
			  size_t *ret_len, char **ret_msg);

/*
 * Streams the blob into the content store, hashed as it arrives: more than
 * size bytes, fewer, or another digest is an error and nothing is stored.
 * Already in the store: 0 without a request.
 */
int registry_fetch_blob(struct registry *r, const char *digest, uint64_t size, struct cas *cas,
			char **ret_msg);

/* ---- writing ---- */

/* HEAD /blobs/<digest>: *ret_has true when the registry has it. */
int registry_has_blob(struct registry *r, const char *digest, bool *ret_has, char **ret_msg);

/*
 * Uploads size bytes of fd (from offset 0) as blob digest unless the registry
 * has it: HEAD first, then a cross-repository mount from mount_from (a repo
 * on the same host; NULL: none), then a chunked upload (POST, PATCHes,
 * PUT ?digest=) that, after a transient error (a 5xx, a reset), asks the
 * upload's Range and goes on from there, a few times.  *ret_sent (may be
 * NULL) is the number of bytes sent (0 when skipped).
 */
int registry_push_blob(struct registry *r, const char *digest, uint64_t size, int fd,
		       const char *mount_from, uint64_t *ret_sent, char **ret_msg);

/* PUT /manifests/<tag> of media type mt. */
int registry_push_manifest(struct registry *r, const char *tag, const char *mt, const void *buf,
			   size_t len, char **ret_msg);

/* ---- credentials ---- */

/*
 * The "user:password" for host from the containers auth files, in skopeo's
 * order: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
 * ~owner/.docker/config.json ("auths"."HOST".auth, base64).  *ret is malloc'd,
 * NULL when none names host (0 then).  Used by registry_open.
 */
int registry_auth_lookup(const char *host, uid_t owner, char **ret, char **ret_msg);

#endif
