/*
 * sha256.h — SHA-256 over libcrypto, with the digest spellings solverfs uses.
 *
 * A "hex" is 64 lowercase hex chars; a "digest" is "sha256:" + hex (71 chars).
 * Buffers are sized SFS_HEX_SIZE / SFS_DIGEST_SIZE including the NUL.
 */
#ifndef SFS_SHA256_H
#define SFS_SHA256_H

#include <stddef.h>

#define SFS_HEX_LEN 64
#define SFS_HEX_SIZE 65
#define SFS_DIGEST_LEN 71
#define SFS_DIGEST_SIZE 72
#define SFS_SHA256_LEN 32 /* the digest's bytes */

struct sfs_sha256 {
	void *ctx; /* EVP_MD_CTX */
};

int sfs_sha256_init(struct sfs_sha256 *h);
void sfs_sha256_update(struct sfs_sha256 *h, const void *data, size_t len);
/* Finishes and releases the context. */
void sfs_sha256_final_hex(struct sfs_sha256 *h, char ret_hex[SFS_HEX_SIZE]);
/* Releases an unfinished context (error paths). */
void sfs_sha256_abort(struct sfs_sha256 *h);

void sfs_sha256_hex(const void *data, size_t len, char ret_hex[SFS_HEX_SIZE]);
/* The 32 bytes of the SHA-256 of data. */
void sfs_sha256_bytes(const void *data, size_t len, unsigned char ret[SFS_SHA256_LEN]);
/* "sha256:<hex>" of data. */
void sfs_sha256_digest(const void *data, size_t len, char ret_digest[SFS_DIGEST_SIZE]);

/* True when s is "sha256:" followed by 64 lowercase hex chars; false for NULL
 * (callers test what json_string_value gave, NULL for an absent field). */
int sfs_is_digest(const char *s);
/* True when s is 64 lowercase hex chars; false for NULL. */
int sfs_is_hex(const char *s);
/* The 32 bytes a hex spells: 0, or -EINVAL when s is not a hex (sfs_is_hex). */
int sfs_hex_to_bytes(const char *s, unsigned char ret[SFS_SHA256_LEN]);
/* The hex of 32 bytes. */
void sfs_bytes_to_hex(const unsigned char md[SFS_SHA256_LEN], char ret_hex[SFS_HEX_SIZE]);

#endif
