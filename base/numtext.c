/* numtext.c — see numtext.h. */
#include "numtext.h"

/* v in base into ret (room for 20 digits and the NUL); its length. */
static size_t utext(char *ret, uint64_t v, unsigned base)
{
	char tmp[SFS_NUM_SIZE];
	size_t n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	for (size_t i = 0; i < n; i++)
		ret[i] = tmp[n - 1 - i];
	ret[n] = '\0';
	return n;
}

size_t sfs_u64_text(char ret[SFS_NUM_SIZE], uint64_t v, unsigned base)
{
	return utext(ret, v, base == 16 ? 16 : 10);
}

size_t sfs_i64_text(char ret[SFS_NUM_SIZE], int64_t v)
{
	if (v >= 0)
		return utext(ret, (uint64_t)v, 10);
	ret[0] = '-';
	/* the magnitude without overflow, INT64_MIN included */
	return 1 + utext(ret + 1, (uint64_t)0 - (uint64_t)v, 10);
}
