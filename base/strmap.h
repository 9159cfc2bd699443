/*
 * strmap.h — a string-keyed hash map (open addressing, linear probing).
 *
 * Keys are copied; values are opaque pointers owned by the caller.  A map with
 * borrowed keys (STRMAP_INIT_BORROWED, or .borrowed set while empty) stores the
 * caller's key pointers instead: each must stay valid and unchanged while its
 * entry exists (a digest inside the value, say); a replacing put takes the new
 * pointer.  That saves a copy and an allocation an entry in the solver's maps.  Lookups,
 * inserts and deletes are O(1) on average; the table doubles at 70 % load.
 * Not thread-safe: the owner's lock guards it.
 */
#ifndef SFS_STRMAP_H
#define SFS_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

struct strmap_slot {
	char *key; /* NULL: empty; STRMAP_TOMB: deleted */
	void *value;
};

struct strmap {
	size_t cap; /* power of two, 0 when empty */
	size_t len;
	size_t used; /* len + tombstones */
	struct strmap_slot *slots;
	bool borrowed; /* keys are the caller's, not copies */
};

#define STRMAP_INIT                                                                                \
	{                                                                                          \
		0, 0, 0, NULL, false                                                               \
	}
#define STRMAP_INIT_BORROWED                                                                       \
	{                                                                                          \
		0, 0, 0, NULL, true                                                                \
	}

void *strmap_get(const struct strmap *m, const char *key);
/* Inserts or replaces; returns 0 or -ENOMEM.  *ret_old (may be NULL) gets the
 * replaced value or NULL. */
int strmap_put(struct strmap *m, const char *key, void *value, void **ret_old);
/* Removes key; returns its value or NULL. */
void *strmap_del(struct strmap *m, const char *key);
/* Frees the table and keys (not the values). */
void strmap_release(struct strmap *m);

/* Iteration: for (size_t i = 0; strmap_next(m, &i, &k, &v);) ... (no inserts meanwhile). */
int strmap_next(const struct strmap *m, size_t *iter, const char **ret_key, void **ret_value);

#endif
