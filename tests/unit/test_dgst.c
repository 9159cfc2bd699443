/*
 * test_dgst.c — digests as 32 bytes: the text round trip, hashing, and the
 * digest-keyed map through growth, replaces, deletes and tombstones.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dgst.h"
#include "dgstmap.h"
#include "sha256.h"
#include "tap.h"

enum { N = 5000 };

static void test_text_round_trip(void)
{
	char text[SFS_DIGEST_SIZE], back[SFS_DIGEST_SIZE];
	struct sfs_dgst d, e;

	sfs_sha256_digest("abc", 3, text);
	CHECK_EQ_INT(sfs_dgst_from_text(text, &d), 0);
	sfs_dgst_to_text(&d, back);
	CHECK_EQ_STR(back, text);
	sfs_dgst_of("abc", 3, &e);
	CHECK(sfs_dgst_eq(&d, &e));
	CHECK_EQ_STR(back,
		     "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sfs_dgst_of("abd", 3, &e);
	CHECK(!sfs_dgst_eq(&d, &e));
	CHECK_EQ_INT(sfs_dgst_from_text(text + 7, &e), -EINVAL); /* no "sha256:" */
	CHECK_EQ_INT(sfs_dgst_from_text("sha256:xyz", &e), -EINVAL);
	CHECK_EQ_INT(sfs_dgst_from_text(NULL, &e), -EINVAL);
}

static void test_map(void)
{
	static struct sfs_dgst keys[N], again[N];
	struct dgstmap m = DGSTMAP_INIT;
	void *old = (void *)1;

	for (uintptr_t i = 0; i < N; i++) {
		char s[16];
		int n = snprintf(s, sizeof(s), "key-%lu", (unsigned long)i);
		sfs_dgst_of(s, (size_t)n, &keys[i]);
		again[i] = keys[i];
		CHECK_EQ_INT(dgstmap_put(&m, &keys[i], (void *)(i + 1), &old), 0);
		CHECK(old == NULL);
	}
	CHECK_EQ_INT(m.len, N);
	for (uintptr_t i = 0; i < N; i += 2) /* every other one goes */
		CHECK(dgstmap_del(&m, &again[i]) == (void *)(i + 1));
	CHECK_EQ_INT(m.len, N / 2);
	for (uintptr_t i = 0; i < N; i++) /* looked up by equal bytes elsewhere */
		CHECK(dgstmap_get(&m, &again[i]) == (i % 2 ? (void *)(i + 1) : NULL));
	/* a replace takes the new key pointer: the old one may go */
	CHECK_EQ_INT(dgstmap_put(&m, &again[1], (void *)7, &old), 0);
	CHECK(old == (void *)2);
	memset(&keys[1], 0, sizeof(keys[1]));
	CHECK(dgstmap_get(&m, &again[1]) == (void *)7);
	CHECK_EQ_INT(m.len, N / 2);
	/* put back into tombstones, then all gone */
	for (uintptr_t i = 0; i < N; i += 2)
		CHECK_EQ_INT(dgstmap_put(&m, &keys[i], (void *)(i + 1), NULL), 0);
	CHECK_EQ_INT(m.len, N);
	for (uintptr_t i = 0; i < N; i++)
		CHECK(dgstmap_del(&m, &again[i]) != NULL);
	CHECK_EQ_INT(m.len, 0);
	CHECK(dgstmap_get(&m, &again[3]) == NULL);
	dgstmap_release(&m);
	CHECK(dgstmap_get(&m, &again[3]) == NULL); /* an empty map after release */
}

int main(void)
{
	RUN(test_text_round_trip);
	RUN(test_map);
	return tap_done();
}
