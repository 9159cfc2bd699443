/*
 * keystore.c — what both key storages share: the destructor, the optional
 * ops' fallbacks, key ids, rootKey and the record form of a link.
 *
 * Random ids follow BuildKit's identity.NewID: 25 base36 chars drawn from the
 * kernel's random pool (getrandom), about 129 bits, so ids of keys with deps
 * never collide across saves, managers or imports.  No locks: stateless.
 */
#include "keystore.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "array.h"
#include "err.h"
#include "numtext.h"

struct keystore *keystore_free(struct keystore *ks)
{
	if (ks)
		ks->ops->free(ks);
	return NULL;
}

int keystore_walk_all_links(struct keystore *ks, const char *id, keystore_link_fn fn, void *arg)
{
	if (!ks->ops->walk_all_links)
		return -EOPNOTSUPP;
	return ks->ops->walk_all_links(ks, id, fn, arg);
}

/* The thread's last rootKey: a root's KEYS task makes the same one for its
 * query and then for its merge signature (solver/edgeindex.c), right after. */
static _Thread_local char last_in[256];
static _Thread_local size_t last_in_len;
static _Thread_local char last_out[SFS_DIGEST_SIZE];

void sfs_root_key(const char *digest, int output, char ret_digest[SFS_DIGEST_SIZE])
{
	char buf[256], num[SFS_NUM_SIZE];
	/* "<digest>@<output>"; a digest longer than any algorithm's (sha512: 135)
	 * is cut to leave room for the rest */
	size_t dlen = strnlen(digest, sizeof(buf) - SFS_NUM_SIZE - 1);
	size_t nlen = sfs_i64_text(num, output), len = dlen + 1 + nlen;
	memcpy(buf, digest, dlen);
	buf[dlen] = '@';
	memcpy(buf + dlen + 1, num, nlen);
	if (len == last_in_len && memcmp(buf, last_in, len) == 0) {
		memcpy(ret_digest, last_out, SFS_DIGEST_SIZE);
		return;
	}
	sfs_sha256_digest(buf, len, ret_digest);
	memcpy(last_in, buf, len);
	last_in_len = len;
	memcpy(last_out, ret_digest, SFS_DIGEST_SIZE);
}

bool keystore_record_link_form(void)
{
	return true;
}

void keystore_record_link(int input, int output, const char *dgst, const char *selector,
			  struct cache_link *l)
{
	memset(l, 0, sizeof(*l));
	l->input = input;
	l->output = KEYSTORE_RECORD_LINK_OUTPUT;
	sfs_root_key(dgst, output, l->digest);
	sfs_copy_str(l->selector, sizeof(l->selector), selector);
}

#define KEYSTORE_ID_LEN 25

/* getrandom on a small buffer only fails before the pool is ready or on a
 * signal; retry, then as a last resort mix in the clock so an id is still
 * produced (ids need uniqueness, not secrecy). */
static void fill_random(uint8_t *buf, size_t len)
{
	static uint64_t counter;
	size_t got = 0;
	struct timespec ts;

	for (int tries = 0; got < len && tries < 100; tries++) {
		ssize_t n = getrandom(buf + got, len - got, 0);
		if (n > 0)
			got += (size_t)n;
	}
	if (got == len)
		return;
	sfs_log(SFS_LOG_WARN, "getrandom failed; key id from the clock");
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
		     __atomic_add_fetch(&counter, 0x9e3779b97f4a7c15ull, __ATOMIC_RELAXED);
	for (size_t j = got; j < len; j++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
		buf[j] = (uint8_t)x;
	}
}

void keystore_new_id(char ret[CACHE_ID_SIZE])
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
	uint8_t buf[KEYSTORE_ID_LEN * 2];
	size_t j = sizeof(buf);
	int i = 0;

	/* Rejection sampling keeps the digits uniform: 252 = 7 * 36. */
	while (i < KEYSTORE_ID_LEN) {
		if (j == sizeof(buf)) {
			fill_random(buf, sizeof(buf));
			j = 0;
		}
		if (buf[j] < 252)
			ret[i++] = digits[buf[j] % 36];
		j++;
	}
	ret[KEYSTORE_ID_LEN] = '\0';
}
