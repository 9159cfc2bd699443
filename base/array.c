/* array.c — see array.h.  No state, no locks. */
#include "array.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sfs_grow_from(void **p, size_t *cap, size_t need, size_t elem, size_t first)
{
	size_t ncap = *cap;
	void *old, *nv;

	if (need <= ncap)
		return 0;
	ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	if (ncap < need)
		ncap = need;
	if (ncap < first)
		ncap = first;
	if (elem && ncap > SIZE_MAX / elem)
		return -ENOMEM;
	/* *p is the caller's typed pointer: read and write its bytes, not
	 * through a void * lvalue. */
	memcpy(&old, p, sizeof(old));
	nv = realloc(old, ncap * elem);
	if (!nv)
		return -ENOMEM;
	memcpy(p, &nv, sizeof(nv));
	*cap = ncap;
	return 0;
}

int sfs_grow(void **p, size_t *cap, size_t need, size_t elem)
{
	return sfs_grow_from(p, cap, need, elem, 4);
}

void sfs_copy_str(char *dst, size_t size, const char *s)
{
	if (!size)
		return;
	size_t n = s ? strnlen(s, size - 1) : 0;
	memcpy(dst, s ? s : "", n);
	dst[n] = '\0';
}
