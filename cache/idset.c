#include "idset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"

bool idset_has(const struct idset *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], id) == 0)
			return true;
	return false;
}

int idset_add(const char *id, void *arg)
{
	struct idset *s = arg;

	if (idset_has(s, id))
		return 0;
	if (sfs_grow((void **)&s->v, &s->cap, s->n + 1, sizeof(*s->v)) < 0)
		return -ENOMEM;
	sfs_copy_str(s->v[s->n++], CACHE_ID_SIZE, id);
	return 0;
}

void idset_intersect(struct idset *s, const struct idset *t)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		if (idset_has(t, s->v[i]))
			memmove(s->v[n++], s->v[i], CACHE_ID_SIZE);
	s->n = n;
}

void idset_release(struct idset *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}
