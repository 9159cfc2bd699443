/*
 * specgraph.c — passes 2 and 3 of sfs_spec_parse (spec.c): the topological
 * order of the vertices (Kahn's algorithm, ready vertices taken in bytewise key
 * order, a cycle reported by its vertices), then for each vertex in that order
 * its Inputs(), the selector of each input, its canonical op bytes and the two
 * digests of README "Identity and digests" (spec.h states the rules), filled
 * into the templates pass 1 wrote of its op tree (sfs_spec_write_templates).
 *
 * Runs on one thread inside sfs_spec_parse; no state outside struct parse.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numtext.h"
#include "strbuf.h"
#include "op.h"
#include "specint.h"

/* ---- pass 2: topological order ---- */

static void heap_push(size_t *h, size_t *n, size_t x)
{
	size_t i = (*n)++;
	for (; i > 0 && h[(i - 1) / 2] > x; i = (i - 1) / 2)
		h[i] = h[(i - 1) / 2];
	h[i] = x;
}

static size_t heap_pop(size_t *h, size_t *n)
{
	size_t top = h[0], x = h[--*n], i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= *n)
			break;
		if (c + 1 < *n && h[c + 1] < h[c])
			c++;
		if (h[c] >= x)
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = x;
	return top;
}

/* The first use of vertex i that points at a vertex not yet ordered. */
static const struct use *pending_use(struct parse *p, size_t i, const size_t *indeg)
{
	for (size_t k = 0; k < p->pv[i].nuses; k++)
		if (indeg[p->pv[i].uses[k].vertex])
			return &p->pv[i].uses[k];
	return NULL;
}

/* Some vertices were left over by Kahn: every one waits on another left over, so
 * following those edges from any of them must come back to a vertex on a cycle. */
static int report_cycle(struct parse *p, const size_t *indeg)
{
	size_t start = 0, w;
	struct strbuf sb = STRBUF_INIT;
	struct sfs_norm c = {p, NULL, NULL};
	unsigned char *seen = calloc(p->n, 1);

	if (!seen)
		return -ENOMEM;
	while (!indeg[start])
		start++;
	for (w = start; !seen[w]; w = pending_use(p, w, indeg)->vertex)
		seen[w] = 1;
	free(seen);
	c.key = p->keys[w];
	const char *field = pending_use(p, w, indeg)->field;
	size_t x = w, hops = 0;
	do {
		strbuf_addf(&sb, "%s -> ", p->keys[x]);
		x = pending_use(p, x, indeg)->vertex;
	} while (x != w && ++hops < 8);
	strbuf_addstr(&sb, x == w ? p->keys[w] : "...");
	int r = sb.oom ? -ENOMEM : sfs_norm_err(&c, "", field, "dependency cycle: %s", sb.buf);
	strbuf_release(&sb);
	return r;
}

/* Fills order[] with old indexes so inputs come first; ties by key. */
int sfs_spec_topo_sort(struct parse *p, size_t *order)
{
	size_t n = p->n, nheap = 0, done = 0, nedges = 0;
	size_t *indeg = calloc(n + 1, sizeof(size_t)), *start = calloc(n + 2, sizeof(size_t));
	size_t *heap = malloc((n + 1) * sizeof(size_t)), *users = NULL;
	int r = -ENOMEM;

	if (!indeg || !start || !heap)
		goto out;
	for (size_t i = 0; i < n; i++) {
		indeg[i] = p->pv[i].nuses;
		nedges += p->pv[i].nuses;
		for (size_t k = 0; k < p->pv[i].nuses; k++)
			start[p->pv[i].uses[k].vertex + 1]++;
	}
	for (size_t i = 0; i < n; i++)
		start[i + 1] += start[i];
	users = malloc((nedges + 1) * sizeof(size_t));
	if (!users)
		goto out;
	size_t *fill = heap; /* reuse as a cursor before the heap is needed */
	memcpy(fill, start, n * sizeof(size_t));
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < p->pv[i].nuses; k++)
			users[fill[p->pv[i].uses[k].vertex]++] = i;
	for (size_t i = 0; i < n; i++)
		if (!indeg[i])
			heap_push(heap, &nheap, i);
	while (nheap) {
		size_t u = heap_pop(heap, &nheap);
		order[done++] = u;
		for (size_t e = start[u]; e < start[u + 1]; e++)
			if (--indeg[users[e]] == 0)
				heap_push(heap, &nheap, users[e]);
	}
	r = done == n ? 0 : report_cycle(p, indeg);
out:
	free(indeg);
	free(start);
	free(heap);
	free(users);
	return r;
}

/* ---- pass 3: inputs, selectors, digests ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The selector of every whole input: nothing to free (selector_len 0). */
static char whole_selector[1];

/* The sorted, NUL-joined set of paths; "" when a use is whole. */
static int make_selector(struct sfs_spec_input *in, const char **paths, size_t n, bool whole)
{
	struct strbuf sb = STRBUF_INIT;
	char digest[SFS_DIGEST_SIZE];
	size_t len;

	if (whole) {
		in->selector = whole_selector;
		in->selector_digest = whole_selector;
		in->selector_len = 0;
		return 0;
	}
	qsort(paths, n, sizeof(*paths), cmp_str);
	for (size_t k = 0; k < n; k++) {
		if (k && strcmp(paths[k], paths[k - 1]) == 0)
			continue;
		if (sb.len)
			strbuf_addch(&sb, '\0');
		strbuf_addstr(&sb, paths[k]);
	}
	if (sb.oom) {
		strbuf_release(&sb);
		return -ENOMEM;
	}
	/* the digest goes in the same block, after the paths and a NUL */
	len = sb.len;
	sfs_sha256_digest(sb.buf, len, digest);
	strbuf_add(&sb, "", 1);
	strbuf_addstr(&sb, digest);
	if (sb.oom) {
		strbuf_release(&sb);
		return -ENOMEM;
	}
	in->selector = strbuf_detach(&sb, NULL);
	in->selector_len = len;
	in->selector_digest = in->selector + len + 1;
	return 0;
}

/* Gives each use its input index (uidx), creating the inputs. */
static int assign_inputs(struct parse *p, struct pv *pv, size_t *uidx)
{
	struct strmap seen = STRMAP_INIT;
	char ref[SFS_DIGEST_SIZE + 16];
	int r = 0;

	for (size_t k = 0; k < pv->nuses && r == 0; k++) {
		struct use *u = &pv->uses[k];
		void *old = NULL;
		if (pv->dedup) {
			char num[SFS_NUM_SIZE];
			const char *d = p->pv[u->vertex].v.digest;
			size_t dlen = strlen(d), nlen = sfs_i64_text(num, u->output);
			memcpy(ref, d, dlen); /* "<digest>:<output>" (a digest: it fits) */
			ref[dlen] = ':';
			memcpy(ref + dlen + 1, num, nlen + 1);
			old = strmap_get(&seen, ref);
		}
		uidx[k] = old ? (size_t)(uintptr_t)old - 1 : pv->v.ninputs++;
		if (u->input)
			*u->input = uidx[k];
		if (!old) {
			struct sfs_spec_input *in = &pv->v.inputs[uidx[k]];
			in->ref = (struct sfs_ref){u->vertex, u->output};
			in->content_func = u->content_func;
			if (pv->dedup && k + 1 < pv->nuses) /* no lookups after the last */
				r = strmap_put(&seen, ref, (void *)(uintptr_t)(pv->v.ninputs),
					       NULL);
		}
	}
	strmap_release(&seen);
	return r;
}

static int make_selectors(struct pv *pv, const size_t *uidx)
{
	size_t ni = pv->v.ninputs, nu = pv->nuses;
	size_t *start = calloc(ni + 2, sizeof(size_t));
	const char **paths = malloc((nu + 1) * sizeof(*paths));
	bool *whole = calloc(ni + 1, sizeof(bool));
	int r = -ENOMEM;

	if (!start || !paths || !whole)
		goto out;
	for (size_t k = 0; k < nu; k++) {
		start[uidx[k] + 2]++;
		whole[uidx[k]] |= !pv->uses[k].path;
	}
	for (size_t i = 0; i < ni; i++)
		start[i + 2] += start[i + 1];
	for (size_t k = 0; k < nu; k++) /* start[i + 1] is the fill cursor of input i */
		paths[start[uidx[k] + 1]++] = pv->uses[k].path ? pv->uses[k].path : "";
	r = 0;
	for (size_t i = 0; i < ni && r == 0; i++)
		r = make_selector(&pv->v.inputs[i], paths + start[i], start[i + 1] - start[i],
				  whole[i]);
out:
	free(start);
	free(paths);
	free(whole);
	return r;
}

/* ---- templates (end of pass 1) and their filling (pass 3) ----
 * The op tree is written twice as soon as it is normalised: as is (the op
 * bytes) and as its cache map (without the mounts' "selector" and local's
 * "session"), each with a hole where a ref goes.  Key order does not depend on
 * what fills a hole, so pass 3 only copies the bytes around the holes and
 * writes each ref as "sha256:<hex>:<N>" (op) or its input index (cache map). */

struct tpl_writer {
	struct pv *pv;
	struct map_ref {
		const json_t *node;
		size_t use;
	} * refs; /* sorted by node */
	bool map; /* writing the cache map */
	size_t base; /* where this template starts in the buffer */
	size_t nholes;
};

static int cmp_map_ref(const void *a, const void *b)
{
	const json_t *x = ((const struct map_ref *)a)->node, *y = ((const struct map_ref *)b)->node;
	return x < y ? -1 : x > y;
}

static bool tpl_hole(void *arg, const json_t *value, size_t at)
{
	struct tpl_writer *w = arg;
	struct map_ref key = {value, 0}, *hit;

	if (!w->pv->nuses || !json_is_string(value))
		return false;
	hit = bsearch(&key, w->refs, w->pv->nuses, sizeof(key), cmp_map_ref);
	if (!hit)
		return false;
	struct use *u = &w->pv->uses[hit->use];
	if (w->map)
		u->map_at = at - w->base;
	else
		u->op_at = at - w->base;
	w->nholes++;
	return true;
}

/* What the op's type leaves out of its cache map (local's session, exec's
 * mount selectors). */
static bool map_skip(void *arg, const json_t *obj, const char *key)
{
	const struct tpl_writer *w = arg;
	const struct sfs_op_type *t = sfs_op_type_of(w->pv->v.kind);

	return w->map && t->map_skip && t->map_skip(w->pv->v.op, obj, key);
}

int sfs_spec_write_templates(struct parse *p, struct pv *pv)
{
	struct map_ref small[8];
	struct tpl_writer w = {pv, small, false, 0, 0};
	struct sfs_canon_hooks h = {tpl_hole, map_skip, &w};
	struct strbuf *sb = &p->scratch;

	if (pv->nuses > 8 && !(w.refs = malloc(pv->nuses * sizeof(*w.refs))))
		return -ENOMEM;
	for (size_t k = 0; k < pv->nuses; k++)
		w.refs[k] = (struct map_ref){pv->uses[k].op_node, k};
	qsort(w.refs, pv->nuses, sizeof(*w.refs), cmp_map_ref);
	strbuf_reset(sb);
	sfs_canonical_json_add(sb, pv->v.op, &h);
	pv->tpl_op = w.base = sb->len;
	w.map = true;
	sfs_canonical_json_add(sb, pv->v.op, &h);
	if (w.refs != small)
		free(w.refs);
	/* every ref is one node, written once in each */
	if (sb->oom || w.nholes != 2 * pv->nuses || !(pv->tpl = malloc(sb->len + 1)))
		return -ENOMEM;
	memcpy(pv->tpl, sb->buf, sb->len);
	pv->tpl_len = sb->len;
	for (size_t k = 0; k < pv->nuses; k++)
		pv->uses[k].op_node = NULL; /* the tree is dropped now */
	return 0;
}

struct hole {
	size_t at, use;
};

static int cmp_hole(const void *a, const void *b)
{
	const struct hole *x = a, *y = b;
	return x->at < y->at ? -1 : x->at > y->at;
}

/* Writes template t (len bytes) onto sb with its holes filled, in the op's form
 * or the cache map's; holes is scratch for nuses. */
static void fill(struct parse *p, struct pv *pv, const size_t *uidx, struct hole *holes, bool map,
		 const char *t, size_t len, struct strbuf *sb)
{
	size_t done = 0;
	char num[SFS_NUM_SIZE];

	for (size_t k = 0; k < pv->nuses; k++)
		holes[k] = (struct hole){map ? pv->uses[k].map_at : pv->uses[k].op_at, k};
	if (pv->nuses > 1)
		qsort(holes, pv->nuses, sizeof(*holes), cmp_hole);
	for (size_t k = 0; k < pv->nuses; k++) {
		const struct use *u = &pv->uses[holes[k].use];
		strbuf_add(sb, t + done, holes[k].at - done);
		done = holes[k].at;
		if (map) {
			strbuf_add(sb, num, sfs_u64_text(num, uidx[holes[k].use], 10));
		} else {
			strbuf_addch(sb, '"');
			strbuf_addstr(sb, p->pv[u->vertex].v.digest);
			strbuf_addch(sb, ':');
			strbuf_add(sb, num, sfs_i64_text(num, u->output));
			strbuf_addch(sb, '"');
		}
	}
	strbuf_add(sb, t + done, len - done);
}

int sfs_spec_finish_vertex(struct parse *p, struct pv *pv)
{
	size_t *uidx = malloc((pv->nuses + 1) * sizeof(size_t));
	struct hole *holes = malloc((pv->nuses + 1) * sizeof(*holes));
	struct strbuf *sb = &p->scratch;
	int r = -ENOMEM;

	pv->v.inputs = calloc(pv->nuses ? pv->nuses : 1, sizeof(*pv->v.inputs));
	if (!uidx || !holes || !pv->v.inputs)
		goto out;
	r = assign_inputs(p, pv, uidx);
	if (r == 0)
		r = make_selectors(pv, uidx);
	if (r < 0)
		goto out;
	strbuf_reset(sb);
	fill(p, pv, uidx, holes, false, pv->tpl, pv->tpl_op, sb);
	if (sb->oom || !(pv->v.op_bytes = malloc(sb->len + 1))) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(pv->v.op_bytes, sb->buf, sb->len + 1);
	pv->v.op_len = sb->len;
	sfs_sha256_digest(pv->v.op_bytes, pv->v.op_len, pv->v.digest);
	strbuf_reset(sb);
	fill(p, pv, uidx, holes, true, pv->tpl + pv->tpl_op, pv->tpl_len - pv->tpl_op, sb);
	if (sb->oom) {
		r = -ENOMEM;
		goto out;
	}
	sfs_dgst_of(sb->buf, sb->len, &pv->v.cache_map_digest);
	free(pv->tpl);
	pv->tpl = NULL;
out:
	free(uidx);
	free(holes);
	return r;
}
