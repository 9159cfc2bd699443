/*
 * array.h — the size of a fixed array, growing a malloc'd one, and copying a
 * string into a fixed char array.
 *
 * A growable array is three things its owner keeps together: the pointer, the
 * number of elements in use and the number allocated (cap).  sfs_grow makes
 * room for `need` elements by doubling cap, so n appends cost O(n) copies, not
 * O(n^2); it never shrinks and never touches the elements in use.
 */
#ifndef SFS_ARRAY_H
#define SFS_ARRAY_H

#include <stddef.h>

/* Elements of a true array (not a pointer: the compiler cannot tell). */
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Makes *p (an array of *cap elements of elem bytes) hold at least need: when
 * need > *cap, reallocates to the larger of need, twice *cap and 4, and sets
 * *cap.  p is the address of the caller's typed pointer, e.g.
 *     if (sfs_grow((void **)&x->v, &x->cap, x->n + 1, sizeof(*x->v)) < 0)
 *             return -ENOMEM;
 * Returns 0, or -ENOMEM (also on size overflow) with *p and *cap unchanged.
 */
int sfs_grow(void **p, size_t *cap, size_t need, size_t elem);

/* The same with first (not 4) as the smallest allocation: for arrays held by
 * 100,000s of owners, most of them with one or two elements. */
int sfs_grow_from(void **p, size_t *cap, size_t need, size_t elem, size_t first);

/* Copies s (NULL: "") into dst of size bytes, cut to fit, always terminated. */
void sfs_copy_str(char *dst, size_t size, const char *s);

#endif
