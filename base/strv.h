/*
 * strv.h — a growable vector of malloc'd strings: the snapshots the key
 * storages and the results index take under their lock, then walk without it
 * so callbacks may call back in.
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

#endif
