/*
 * strv.h — a growable vector of malloc'd strings: the snapshots the key
 * storages and the results index take under their lock, then walk without it
 * so callbacks may call back in.  And the free of the other form of a string
 * vector, the NULL-terminated char ** that exec and the glob lists use.
 */
#ifndef SFS_STRV_H
#define SFS_STRV_H

#include <stddef.h>

struct strv {
	size_t n, cap;
	char **v;
};

/* Appends a copy of s; 0 or -ENOMEM. */
int strv_push(struct strv *sv, const char *s);
/* Calls fn on each string in order until it returns non-zero; returns that. */
int strv_call(const struct strv *sv, int (*fn)(const char *s, void *arg), void *arg);
void strv_release(struct strv *sv);

/* Frees a NULL-terminated array of malloc'd strings (an argv, an envp, a glob
 * list) and its strings; accepts NULL, returns NULL. */
char **strv_free_argv(char **argv);

#endif
