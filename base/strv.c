#include "strv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"

int strv_push(struct strv *sv, const char *s)
{
	if (sfs_grow((void **)&sv->v, &sv->cap, sv->n + 1, sizeof(*sv->v)) < 0)
		return -ENOMEM;
	if (!(sv->v[sv->n] = strdup(s)))
		return -ENOMEM;
	sv->n++;
	return 0;
}

int strv_call(const struct strv *sv, int (*fn)(const char *s, void *arg), void *arg)
{
	for (size_t i = 0; i < sv->n; i++) {
		int r = fn(sv->v[i], arg);
		if (r)
			return r;
	}
	return 0;
}

void strv_release(struct strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	memset(sv, 0, sizeof(*sv));
}

char **strv_free_argv(char **argv)
{
	for (char **p = argv; p && *p; p++)
		free(*p);
	free(argv);
	return NULL;
}
