/*
 * dgst.h — a SHA-256 digest held as its 32 bytes.
 *
 * The spelling users and the database see is "sha256:<hex>" (sha256.h), 72
 * bytes with its NUL; a structure kept a vertex holds struct sfs_dgst instead
 * and formats the text only where it leaves the solver.  Two digests are equal
 * when their bytes are (sfs_dgst_eq).
 */
#ifndef SFS_DGST_H
#define SFS_DGST_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "sha256.h"

struct sfs_dgst {
	unsigned char b[SFS_SHA256_LEN];
};

/* The digest "sha256:<hex>" spells: 0, or -EINVAL when text is not one. */
int sfs_dgst_from_text(const char *text, struct sfs_dgst *ret);
/* "sha256:<hex>" of d. */
void sfs_dgst_to_text(const struct sfs_dgst *d, char ret[SFS_DIGEST_SIZE]);
/* The SHA-256 of len bytes of data. */
void sfs_dgst_of(const void *data, size_t len, struct sfs_dgst *ret);

static inline bool sfs_dgst_eq(const struct sfs_dgst *a, const struct sfs_dgst *b)
{
	return memcmp(a->b, b->b, sizeof(a->b)) == 0;
}

#endif
