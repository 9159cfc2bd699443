/*
 * test_strmap.c — the string-keyed hash map, with copied and with borrowed
 * keys: puts, replaces, deletes through growth and tombstones, iteration.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"
#include "tap.h"

enum { N = 5000 };

static void exercise(struct strmap *m, char (*keys)[16])
{
	for (uintptr_t i = 0; i < N; i++) {
		snprintf(keys[i], sizeof(keys[i]), "key-%lu", (unsigned long)i);
		CHECK_EQ_INT(strmap_put(m, keys[i], (void *)(i + 1), NULL), 0);
	}
	CHECK_EQ_INT(m->len, N);
	for (uintptr_t i = 0; i < N; i += 2) /* every other one goes */
		CHECK(strmap_del(m, keys[i]) == (void *)(i + 1));
	CHECK_EQ_INT(m->len, N / 2);
	for (uintptr_t i = 0; i < N; i++)
		CHECK(strmap_get(m, keys[i]) == (i % 2 ? (void *)(i + 1) : NULL));
	size_t seen = 0;
	const char *k;
	void *v;
	for (size_t it = 0; strmap_next(m, &it, &k, &v);) {
		CHECK_EQ_INT((uintptr_t)v, strtoul(k + 4, NULL, 10) + 1);
		seen++;
	}
	CHECK_EQ_INT(seen, N / 2);
}

static void test_copied_keys(void)
{
	static char keys[N][16];
	struct strmap m = STRMAP_INIT;
	exercise(&m, keys);
	/* a copy: changing the caller's string does not change the map */
	memset(keys[1], 'x', 5);
	CHECK(strmap_get(&m, "key-1") == (void *)2);
	CHECK(strmap_get(&m, keys[1]) == NULL);
	strmap_release(&m);
	CHECK(!m.borrowed);
}

static void test_borrowed_keys(void)
{
	static char keys[N][16];
	struct strmap m = STRMAP_INIT_BORROWED;
	exercise(&m, keys);
	const char *k = NULL;
	for (size_t it = 0; strmap_next(&m, &it, &k, NULL);)
		CHECK(k >= keys[0] && k < keys[N]); /* the caller's pointers */
	/* a replacing put takes the new owner's string */
	char other[] = "key-1";
	void *old = NULL;
	CHECK_EQ_INT(strmap_put(&m, other, (void *)7, &old), 0);
	CHECK(old == (void *)2);
	memset(keys[1], 0, sizeof(keys[1])); /* the first owner's string goes */
	CHECK(strmap_get(&m, "key-1") == (void *)7);
	strmap_release(&m);
	CHECK(m.borrowed); /* still borrowing when used again */
	CHECK_EQ_INT(strmap_put(&m, other, (void *)1, NULL), 0);
	CHECK(strmap_get(&m, "key-1") == (void *)1);
	strmap_release(&m);
}

/* Keys of every length from 0 to 80 bytes (the hash takes 8 bytes a step and
 * the rest in one word) and keys alike but for one byte or their length: each
 * found, none mistaken for another. */
static void test_key_lengths(void)
{
	static char keys[81 * 8][96];
	struct strmap m = STRMAP_INIT;
	size_t n = 0;
	for (int len = 0; len <= 80; len++)
		for (int v = 0; v < 8; v++, n++) {
			memset(keys[n], 'a', (size_t)len);
			keys[n][len] = '\0';
			if (len)
				keys[n][(size_t)(v * 7) % (size_t)len] = (char)('b' + v);
			else if (v)
				continue; /* one empty key */
			void *old = (void *)1;
			CHECK_EQ_INT(strmap_put(&m, keys[n], (void *)(n + 1), &old), 0);
			/* a key that repeats an earlier one replaces it */
			if (old)
				CHECK(strcmp(keys[(uintptr_t)old - 1], keys[n]) == 0);
		}
	for (size_t i = 0; i < n; i++) {
		uintptr_t got = (uintptr_t)strmap_get(&m, keys[i]);
		if (keys[i][0] || i % 8 == 0)
			CHECK(got && strcmp(keys[got - 1], keys[i]) == 0);
	}
	CHECK(strmap_get(&m, "sha256:") == NULL);
	char digest[72];
	memcpy(digest, "sha256:", 7);
	memset(digest + 7, '0', 64);
	digest[71] = '\0';
	CHECK_EQ_INT(strmap_put(&m, digest, (void *)9, NULL), 0);
	digest[70] = '1';
	CHECK(strmap_get(&m, digest) == NULL); /* the last byte counts */
	digest[70] = '0';
	CHECK(strmap_get(&m, digest) == (void *)9);
	strmap_release(&m);
}

int main(void)
{
	RUN(test_key_lengths);
	RUN(test_copied_keys);
	RUN(test_borrowed_keys);
	return tap_done();
}
