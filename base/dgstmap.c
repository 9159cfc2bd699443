#include "dgstmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const struct sfs_dgst tomb;
#define DGSTMAP_TOMB (&tomb)

static uint64_t hash(const struct sfs_dgst *k)
{
	uint64_t h;
	memcpy(&h, k->b, sizeof(h));
	return h;
}

static struct dgstmap_slot *find(const struct dgstmap *m, const struct sfs_dgst *key)
{
	if (!m->cap)
		return NULL;
	size_t mask = m->cap - 1;
	for (size_t i = hash(key) & mask;; i = (i + 1) & mask) {
		struct dgstmap_slot *s = &m->slots[i];
		if (!s->key)
			return NULL;
		if (s->key != DGSTMAP_TOMB && sfs_dgst_eq(s->key, key))
			return s;
	}
}

void *dgstmap_get(const struct dgstmap *m, const struct sfs_dgst *key)
{
	struct dgstmap_slot *s = find(m, key);
	return s ? s->value : NULL;
}

static int grow(struct dgstmap *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 16;
	if (m->len * 10 < m->cap * 3)
		ncap = m->cap; /* mostly tombstones: rehash at the same size */
	struct dgstmap_slot *ns = calloc(ncap, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		struct dgstmap_slot *s = &m->slots[i];
		if (!s->key || s->key == DGSTMAP_TOMB)
			continue;
		size_t j = hash(s->key) & (ncap - 1);
		while (ns[j].key)
			j = (j + 1) & (ncap - 1);
		ns[j] = *s;
	}
	free(m->slots);
	m->slots = ns;
	m->cap = ncap;
	m->used = m->len;
	return 0;
}

int dgstmap_put(struct dgstmap *m, const struct sfs_dgst *key, void *value, void **ret_old)
{
	struct dgstmap_slot *s = find(m, key);
	if (s) {
		if (ret_old)
			*ret_old = s->value;
		s->value = value;
		s->key = key; /* the old owner's digest may go */
		return 0;
	}
	if ((m->used + 1) * 10 >= m->cap * 7) {
		int r = grow(m);
		if (r < 0)
			return r;
	}
	size_t mask = m->cap - 1;
	size_t i = hash(key) & mask;
	while (m->slots[i].key && m->slots[i].key != DGSTMAP_TOMB)
		i = (i + 1) & mask;
	if (!m->slots[i].key)
		m->used++;
	m->slots[i].key = key;
	m->slots[i].value = value;
	m->len++;
	if (ret_old)
		*ret_old = NULL;
	return 0;
}

void *dgstmap_del(struct dgstmap *m, const struct sfs_dgst *key)
{
	struct dgstmap_slot *s = find(m, key);
	if (!s)
		return NULL;
	void *v = s->value;
	s->key = DGSTMAP_TOMB;
	s->value = NULL;
	m->len--;
	return v;
}

void dgstmap_release(struct dgstmap *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}
