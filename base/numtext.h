/*
 * numtext.h — integers as text without printf: the solver writes a number or
 * two into every vertex's op bytes, cache map and keys, and vsnprintf's
 * machinery costs more than the rest of such a string.
 */
#ifndef SFS_NUMTEXT_H
#define SFS_NUMTEXT_H

#include <stddef.h>
#include <stdint.h>

/* Room for any uint64_t or int64_t in decimal, a sign and the NUL. */
#define SFS_NUM_SIZE 24

/* v in base (10 or 16, lower case) into ret, terminated; returns its length. */
size_t sfs_u64_text(char ret[SFS_NUM_SIZE], uint64_t v, unsigned base);
/* v in decimal with a '-' when negative, as "%lld" writes it; its length. */
size_t sfs_i64_text(char ret[SFS_NUM_SIZE], int64_t v);

#endif
