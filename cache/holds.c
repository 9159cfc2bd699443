/*
 * holds.c — counted holds on results (holds.h).
 *
 * A strmap from the bare hex to the count (as a pointer-sized integer).
 * Locking: lock guards map.
 */
#include "holds.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"

struct cache_holds {
	pthread_mutex_t lock;
	struct strmap map;
};

int cache_holds_new(struct cache_holds **ret)
{
	struct cache_holds *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	pthread_mutex_init(&h->lock, NULL);
	h->map = (struct strmap)STRMAP_INIT;
	*ret = h;
	return 0;
}

struct cache_holds *cache_holds_free(struct cache_holds *h)
{
	if (!h)
		return NULL;
	strmap_release(&h->map);
	pthread_mutex_destroy(&h->lock);
	free(h);
	return NULL;
}

static const char *bare(const char *id)
{
	return strncmp(id, "sha256:", 7) == 0 ? id + 7 : id;
}

int cache_hold(struct cache_holds *h, const char *result_id)
{
	int r = 0;

	if (!h || !result_id || !result_id[0])
		return 0;
	const char *k = bare(result_id);
	pthread_mutex_lock(&h->lock);
	uintptr_t n = (uintptr_t)strmap_get(&h->map, k);
	r = strmap_put(&h->map, k, (void *)(n + 1), NULL);
	pthread_mutex_unlock(&h->lock);
	return r;
}

void cache_unhold(struct cache_holds *h, const char *result_id)
{
	if (!h || !result_id || !result_id[0])
		return;
	const char *k = bare(result_id);
	pthread_mutex_lock(&h->lock);
	uintptr_t n = (uintptr_t)strmap_get(&h->map, k);
	if (n > 1)
		strmap_put(&h->map, k, (void *)(n - 1), NULL); /* replaces: no allocation */
	else if (n == 1)
		strmap_del(&h->map, k);
	pthread_mutex_unlock(&h->lock);
}

bool cache_held(struct cache_holds *h, const char *result_id)
{
	if (!h || !result_id || !result_id[0])
		return false;
	pthread_mutex_lock(&h->lock);
	bool yes = strmap_get(&h->map, bare(result_id)) != NULL;
	pthread_mutex_unlock(&h->lock);
	return yes;
}

size_t cache_holds_count(struct cache_holds *h)
{
	if (!h)
		return 0;
	pthread_mutex_lock(&h->lock);
	size_t n = h->map.len;
	pthread_mutex_unlock(&h->lock);
	return n;
}
