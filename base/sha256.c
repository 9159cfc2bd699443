#include "sha256.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* The SHA-256 implementation, fetched once: EVP_sha256() given to a digest call
 * makes OpenSSL 3 look the algorithm up in its provider tables on every call,
 * which cost more than hashing a vertex's few hundred bytes (a warm solve hashes
 * every vertex of the spec). */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256(void)
{
	pthread_once(&sha256_once, fetch_sha256);
	return sha256_md ? sha256_md : EVP_sha256();
}

int sfs_sha256_init(struct sfs_sha256 *h)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c)
		return -12; /* ENOMEM */
	if (EVP_DigestInit_ex(c, sha256(), NULL) != 1) {
		EVP_MD_CTX_free(c);
		return -5; /* EIO */
	}
	h->ctx = c;
	return 0;
}

void sfs_sha256_update(struct sfs_sha256 *h, const void *data, size_t len)
{
	if (len) /* nothing to hash, and data may be NULL */
		EVP_DigestUpdate(h->ctx, data, len);
}

static void to_hex(const unsigned char *md, char *out)
{
	static const char x[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		out[2 * i] = x[md[i] >> 4];
		out[2 * i + 1] = x[md[i] & 15];
	}
	out[64] = '\0';
}

void sfs_sha256_final_hex(struct sfs_sha256 *h, char ret_hex[SFS_HEX_SIZE])
{
	unsigned char md[32];
	unsigned int n = 0;
	EVP_DigestFinal_ex(h->ctx, md, &n);
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
	to_hex(md, ret_hex);
}

void sfs_sha256_abort(struct sfs_sha256 *h)
{
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}

/* One digest context a thread for the one-shot digests: EVP_Digest makes and
 * frees a context (two allocations and a cleanse) each call, and a warm solve
 * makes five a vertex.  Freed at the thread's exit (the key's destructor). */
static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static int ctx_key_ok;

static void free_ctx(void *c)
{
	EVP_MD_CTX_free(c);
}

static void make_ctx_key(void)
{
	ctx_key_ok = pthread_key_create(&ctx_key, free_ctx) == 0;
}

static EVP_MD_CTX *thread_ctx(void)
{
	pthread_once(&ctx_once, make_ctx_key);
	if (!ctx_key_ok)
		return NULL;
	EVP_MD_CTX *c = pthread_getspecific(ctx_key);
	if (c)
		return c;
	c = EVP_MD_CTX_new();
	if (c && pthread_setspecific(ctx_key, c) != 0) {
		EVP_MD_CTX_free(c);
		c = NULL;
	}
	return c;
}

void sfs_sha256_bytes(const void *data, size_t len, unsigned char ret[SFS_SHA256_LEN])
{
	unsigned int n = 0;
	EVP_MD_CTX *c = thread_ctx();
	if (!c || EVP_DigestInit_ex(c, sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(c, len ? data : "", len) != 1 || EVP_DigestFinal_ex(c, ret, &n) != 1)
		EVP_Digest(len ? data : "", len, ret, &n, sha256(), NULL);
}

void sfs_sha256_hex(const void *data, size_t len, char ret_hex[SFS_HEX_SIZE])
{
	unsigned char md[32];
	sfs_sha256_bytes(data, len, md);
	to_hex(md, ret_hex);
}

void sfs_sha256_digest(const void *data, size_t len, char ret_digest[SFS_DIGEST_SIZE])
{
	memcpy(ret_digest, "sha256:", 7);
	sfs_sha256_hex(data, len, ret_digest + 7);
}

int sfs_is_hex(const char *s)
{
	if (!s)
		return 0;
	/* one table look-up a byte, not four compares: every digest a record, a
	 * result or a vertex list holds is checked (several a vertex of a warm
	 * solve); a NUL is not hex, so nothing past the string's end is read */
	static const unsigned char lower_hex[256] = {
	    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
	    ['8'] = 1, ['9'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
	};
	const unsigned char *u = (const unsigned char *)s;
	for (int i = 0; i < SFS_HEX_LEN; i++)
		if (!lower_hex[u[i]])
			return 0;
	return s[SFS_HEX_LEN] == '\0';
}

static int nibble(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int sfs_hex_to_bytes(const char *s, unsigned char ret[SFS_SHA256_LEN])
{
	if (!sfs_is_hex(s))
		return -EINVAL;
	for (int i = 0; i < SFS_SHA256_LEN; i++)
		ret[i] = (unsigned char)(nibble(s[2 * i]) << 4 | nibble(s[2 * i + 1]));
	return 0;
}

void sfs_bytes_to_hex(const unsigned char md[SFS_SHA256_LEN], char ret_hex[SFS_HEX_SIZE])
{
	to_hex(md, ret_hex);
}

int sfs_is_digest(const char *s)
{
	return s && strncmp(s, "sha256:", 7) == 0 && sfs_is_hex(s + 7);
}
