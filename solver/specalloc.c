/*
 * specalloc.c — where jansson allocates while a spec is parsed: a bump arena of
 * the parse's own, dropped whole at its end (spec.c).
 *
 * A spec's trees (the document json_loadb builds, each vertex's normalised op)
 * are made of many small blocks (a hashtable, its pairs, a key, a string: some
 * 30 a vertex each); built with malloc and freed with json_decref they were a
 * fifth of a warm solve's CPU, most of it in glibc's consolidation of freed
 * chunks.  Here they are carved out of big chunks and nothing is freed one by
 * one: the op tree of a vertex is released back to a mark once its canonical
 * bytes are written (specgraph.c), the rest when the parse ends.  Nothing
 * allocated in the arena may outlive the parse (a vertex's description is
 * deep-copied out of it).
 *
 * A release back to a mark keeps the bump chunk it drops as the arena's
 * reserve, taken before a new chunk is made: a parse that loads, uses and
 * releases one vertex after another (spec.c) crosses the same chunk's end
 * again and again, and would otherwise make and free a chunk each time (and
 * double the size of the next).
 *
 * Nothing is freed one by one but small blocks jansson frees right after it
 * made them, which a bump arena would leave dead: the lexer's copy of each
 * object key (the object's pair keeps its own), some 7 of a vertex.  The
 * arena knows the size of its last SFS_JARENA_RECENT blocks only; a block
 * freed among those goes to a spare list of its size and is handed out again
 * (an arena has no headers, so an older block stays where it is).  Blocks are
 * 8-byte aligned: jansson's values hold pointers, sizes, doubles and long
 * longs, nothing wider (malloc's 16 rounded a third of the blocks up).
 *
 * jansson takes one pair of allocation functions for the whole process
 * (json_set_alloc_funcs), set here once.  They use the arena of the calling
 * thread if it has one in use and malloc/free otherwise, so every other
 * jansson user (other threads, this one outside a parse) is unaffected; a free
 * is a no-op for a block inside the thread's arena and free() for any other.
 * Setting them is a write that other threads' jansson calls may race with at
 * the first parse: either pair gives those threads malloc and free.
 */
#include <pthread.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "specint.h"

#define CHUNK_MIN ((size_t)64 << 10)
#define CHUNK_MAX ((size_t)16 << 20)
#define ALIGN ((size_t)8)
_Static_assert(alignof(void *) <= 8 && alignof(double) <= 8 && alignof(long long) <= 8,
	       "jansson's values need no more than 8-byte alignment");
#define SMALL ((size_t)8 * SFS_JARENA_CLASSES) /* the largest spare block */
#define HUGE ((size_t)2 << 20)

struct sfs_jchunk {
	struct sfs_jchunk *next; /* older */
	char *end;
	alignas(max_align_t) char data[];
};

static _Thread_local struct sfs_jarena *cur;

static bool owns(const struct sfs_jarena *a, const void *p)
{
	for (const struct sfs_jchunk *c = a->chunks; c; c = c->next)
		if ((const char *)p >= c->data && (const char *)p < c->end)
			return true;
	return false;
}

/* Chunks from HUGE up are made of transparent huge pages where the kernel
 * gives them on request: a tree is written once from start to end, and on a
 * virtual machine a fault a 4 KiB page cost as much as the parse itself. */
static struct sfs_jchunk *new_chunk(struct sfs_jarena *a, size_t size)
{
	size_t total = sizeof(struct sfs_jchunk) + size;
	struct sfs_jchunk *c = NULL;

	if (total >= HUGE) {
		total = (total + HUGE - 1) & ~(HUGE - 1);
		if (posix_memalign((void **)&c, HUGE, total) != 0)
			return NULL;
		(void)madvise(c, total, MADV_HUGEPAGE); /* a hint: no huge pages is fine */
	} else if (!(c = malloc(total))) {
		return NULL;
	}
	c->end = (char *)c + total;
	c->next = a->chunks;
	a->chunks = c;
	return c;
}

static void remember(struct sfs_jarena *a, void *p, size_t n)
{
	a->recent[a->recent_next] = (struct sfs_jrecent){p, n};
	a->recent_next = (a->recent_next + 1) % SFS_JARENA_RECENT;
}

/* A spare block of exactly n bytes (a multiple of ALIGN up to SMALL), or NULL. */
static void *take_spare(struct sfs_jarena *a, size_t n)
{
	void **list = &a->spare[n / ALIGN - 1];
	void *p = *list;
	if (p)
		memcpy(list, p, sizeof(void *)); /* the next one, stored in the block */
	return p;
}

/* p, owned by a, was freed: kept for reuse when it is a recent small block. */
static void give_back(struct sfs_jarena *a, void *p)
{
	for (unsigned k = 0; k < SFS_JARENA_RECENT; k++) {
		struct sfs_jrecent *r =
		    &a->recent[(a->recent_next + SFS_JARENA_RECENT - 1 - k) % SFS_JARENA_RECENT];
		if (r->p != p)
			continue;
		if (r->n <= SMALL) {
			void **list = &a->spare[r->n / ALIGN - 1];
			memcpy(p, list, sizeof(void *));
			*list = p;
		}
		r->p = NULL;
		return;
	}
}

static void *arena_alloc(struct sfs_jarena *a, size_t n)
{
	char *p;

	n = n ? (n + ALIGN - 1) & ~(ALIGN - 1) : ALIGN;
	if (n <= SMALL && (p = take_spare(a, n))) {
		remember(a, p, n);
		return p;
	}
	if (n > (size_t)(a->lim - a->pos)) {
		if (n > a->next / 4) { /* a block of its own; the bump chunk stays */
			struct sfs_jchunk *c = new_chunk(a, n);
			return c ? c->data : NULL;
		}
		struct sfs_jchunk *c = a->reserve;
		if (c && (size_t)(c->end - c->data) >= n) {
			a->reserve = NULL;
			c->next = a->chunks;
			a->chunks = c;
		} else if ((c = new_chunk(a, a->next))) {
			if (a->next < CHUNK_MAX)
				a->next *= 2;
		} else {
			return NULL;
		}
		a->pos = c->data;
		a->lim = c->end;
	}
	p = a->pos;
	a->pos += n;
	remember(a, p, n);
	return p;
}

static void *jmalloc(size_t n)
{
	return cur ? arena_alloc(cur, n) : malloc(n);
}

static void jfree(void *p)
{
	if (!p)
		return;
	if (cur && owns(cur, p))
		give_back(cur, p);
	else
		free(p);
}

static void set_funcs(void)
{
	json_set_alloc_funcs(jmalloc, jfree);
}

void sfs_jarena_begin(struct sfs_jarena *a)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, set_funcs);
	*a = (struct sfs_jarena){.next = CHUNK_MIN, .outer = cur};
	cur = a;
}

void sfs_jarena_end(struct sfs_jarena *a)
{
	sfs_jarena_release(a, (struct sfs_jarena_mark){0});
	free(a->reserve);
	a->reserve = NULL;
	cur = a->outer;
}

struct sfs_jarena_mark sfs_jarena_mark(const struct sfs_jarena *a)
{
	return (struct sfs_jarena_mark){a->chunks, a->pos, a->lim};
}

void sfs_jarena_release(struct sfs_jarena *a, struct sfs_jarena_mark m)
{
	while (a->chunks != m.chunks) {
		struct sfs_jchunk *c = a->chunks;
		a->chunks = c->next;
		if (m.chunks && !a->reserve && c->end == a->lim)
			a->reserve = c; /* the bump chunk: the next crossing takes it */
		else
			free(c);
	}
	a->pos = m.pos;
	a->lim = m.lim;
	/* spare blocks may lie past the mark, and recent ones are gone */
	memset(a->spare, 0, sizeof(a->spare));
	memset(a->recent, 0, sizeof(a->recent));
}

/* Outside any arena, whatever the thread: for what must outlive the parse. */
json_t *sfs_jarena_copy_out(const json_t *v)
{
	struct sfs_jarena *saved = cur;
	json_t *copy;

	cur = NULL;
	copy = json_deep_copy(v);
	cur = saved;
	return copy;
}
