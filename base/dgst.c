#include "dgst.h"

#include <errno.h>
#include <string.h>

int sfs_dgst_from_text(const char *text, struct sfs_dgst *ret)
{
	if (!text || strncmp(text, "sha256:", 7) != 0)
		return -EINVAL;
	return sfs_hex_to_bytes(text + 7, ret->b);
}

void sfs_dgst_to_text(const struct sfs_dgst *d, char ret[SFS_DIGEST_SIZE])
{
	memcpy(ret, "sha256:", 7);
	sfs_bytes_to_hex(d->b, ret + 7);
}

void sfs_dgst_of(const void *data, size_t len, struct sfs_dgst *ret)
{
	sfs_sha256_bytes(data, len, ret->b);
}
