#include "strmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static char tomb;
#define STRMAP_TOMB (&tomb)

/* Eight bytes a step: the solver's keys are 71-byte digests, which a byte at a
 * time (FNV-1a, as this was) took a multiply's latency 71 times over, on every
 * lookup of a warm solve's ~20 a vertex.  The mix is a multiply and a fold of the
 * high half into the low (the index is the low bits); the length goes in last. */
static uint64_t hash(const char *s)
{
	size_t len = strlen(s);
	uint64_t h = 0x9e3779b97f4a7c15ULL;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	if (i < len) {
		uint64_t w = 0;
		memcpy(&w, s + i, len - i);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	h = (h ^ len) * 0xc4ceb9fe1a85ec53ULL;
	return h ^ (h >> 29);
}

static struct strmap_slot *find_h(const struct strmap *m, const char *key, uint64_t h)
{
	if (!m->cap)
		return NULL;
	size_t mask = m->cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct strmap_slot *s = &m->slots[i];
		if (!s->key)
			return NULL;
		if (s->key != STRMAP_TOMB && strcmp(s->key, key) == 0)
			return s;
	}
}

static struct strmap_slot *find(const struct strmap *m, const char *key)
{
	return m->cap ? find_h(m, key, hash(key)) : NULL;
}

void *strmap_get(const struct strmap *m, const char *key)
{
	struct strmap_slot *s = find(m, key);
	return s ? s->value : NULL;
}

static int grow(struct strmap *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 16;
	if (m->len * 10 < m->cap * 3)
		ncap = m->cap; /* mostly tombstones: rehash in place size */
	struct strmap_slot *ns = calloc(ncap, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		struct strmap_slot *s = &m->slots[i];
		if (!s->key || s->key == STRMAP_TOMB)
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

int strmap_put(struct strmap *m, const char *key, void *value, void **ret_old)
{
	uint64_t h = hash(key);
	struct strmap_slot *s = find_h(m, key, h);
	if (s) {
		if (ret_old)
			*ret_old = s->value;
		s->value = value;
		if (m->borrowed)
			s->key = (char *)key; /* the old owner's string may go */
		return 0;
	}
	if ((m->used + 1) * 10 >= m->cap * 7) {
		int r = grow(m);
		if (r < 0)
			return r;
	}
	char *k = m->borrowed ? (char *)key : strdup(key);
	if (!k)
		return -ENOMEM;
	size_t mask = m->cap - 1;
	size_t i = h & mask;
	while (m->slots[i].key && m->slots[i].key != STRMAP_TOMB)
		i = (i + 1) & mask;
	if (!m->slots[i].key)
		m->used++;
	m->slots[i].key = k;
	m->slots[i].value = value;
	m->len++;
	if (ret_old)
		*ret_old = NULL;
	return 0;
}

void *strmap_del(struct strmap *m, const char *key)
{
	struct strmap_slot *s = find(m, key);
	if (!s)
		return NULL;
	void *v = s->value;
	if (!m->borrowed)
		free(s->key);
	s->key = STRMAP_TOMB;
	s->value = NULL;
	m->len--;
	return v;
}

void strmap_release(struct strmap *m)
{
	bool borrowed = m->borrowed;
	for (size_t i = 0; !borrowed && i < m->cap; i++)
		if (m->slots[i].key && m->slots[i].key != STRMAP_TOMB)
			free(m->slots[i].key);
	free(m->slots);
	memset(m, 0, sizeof(*m));
	m->borrowed = borrowed;
}

int strmap_next(const struct strmap *m, size_t *iter, const char **ret_key, void **ret_value)
{
	for (; *iter < m->cap; (*iter)++) {
		struct strmap_slot *s = &m->slots[*iter];
		if (s->key && s->key != STRMAP_TOMB) {
			if (ret_key)
				*ret_key = s->key;
			if (ret_value)
				*ret_value = s->value;
			(*iter)++;
			return 1;
		}
	}
	return 0;
}
