/*
 * remote.h — a cache export in a registry (docs/export.md §11): pushing an
 * exported layout to a docker:// reference, and reading one back as a lazy
 * cache source.
 *
 * Push: the layout's manifest must be the image form (DESIGN §6's default;
 * registries take it).  Its config and layers go first, each skipped when the
 * registry has it (registry_push_blob), then the manifest under the tag: a
 * reader never sees the tag name a manifest whose blobs are missing, and of
 * two pushes to one tag the last manifest wins whole.
 *
 * Pull: the manifest (any of the three forms import.h reads) and the cache
 * config are fetched into a small layout directory the caller names, with
 * no layer in it; the import of that directory gets remote_fetch as its fetch
 * callback, so a layer is fetched (into the content store, verified as it
 * streams) only when a record that needs it is loaded.
 */
#ifndef SFS_REMOTE_H
#define SFS_REMOTE_H

#include <stdint.h>

#include "imageref.h"
#include "registry.h"

struct cas;

/* Pushes the layout at dir to ref (a tag; a digest-only ref pushes the
 * manifest by its digest).  mount_from (NULL: none) is a repository of the
 * same host whose blobs a missing one is mounted from first.  Progress
 * through o->progress. */
int remote_push_layout(const char *dir, const struct imageref *ref, const char *mount_from,
		       const struct registry_opts *o, char **ret_msg);

/* The digest of ref's manifest: ref's own digest, else its tag resolved
 * (one GET of the manifest). */
int remote_resolve(const struct imageref *ref, const struct registry_opts *o,
		   char ret_digest[SFS_DIGEST_SIZE], char **ret_msg);

/* A registry as a cache source: its client and the store layers go to. */
struct remote_source;

/*
 * Fetches ref's manifest and cache config into dir (created, must not exist)
 * as a layout whose index.json tags the manifest "latest".  *ret serves
 * remote_fetch; free it with remote_source_free.
 */
int remote_source_open(const struct imageref *ref, const struct registry_opts *o, struct cas *cas,
		       const char *dir, struct remote_source **ret, char **ret_msg);
void remote_source_free(void *src); /* a struct remote_source; accepts NULL */

/* The fetch callback of cache_import_opts (arg: a struct remote_source):
 * the blob into the store (unless there) and opened. */
int remote_fetch(void *src, const char *digest, uint64_t size, int *ret_fd, char **ret_msg);

#endif
