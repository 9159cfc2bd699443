/*
 * why.c — why a vertex was cached or executed, in one line a user can act on
 * (moby/buildkit#2567).
 *
 *   cached: key <id>, record <rec> saved 3m12s ago
 *   executed: ignore_cache is set
 *   executed: no record for this op digest sha256:...      (the op itself changed)
 *   executed: no record for this content sha256:...         (a local source changed)
 *   executed: input 0 "src" changed: now content sha256:aa..., the closest record used content
 * sha256:bb... executed: each input matches records, but none matches all of them together
 *
 * The miss explanation compares this vertex's inputs with the records the
 * cache holds for the same op digest: the first input that leads to none of
 * them is named, with what it is now and what the closest record was built
 * from.  It reads the key storage (the `keys` table and backlinks) on the exec
 * task, before the op runs; the vertex's maps, matches and content keys are
 * stable by then, so no lock is needed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "strbuf.h"
#include "internal.h"

static void add_age(struct strbuf *sb, int64_t ns)
{
	int64_t s = ns / 1000000000;
	if (s < 0)
		s = 0;
	if (s < 60)
		strbuf_addf(sb, "%llds", (long long)s);
	else if (s < 3600)
		strbuf_addf(sb, "%lldm%llds", (long long)(s / 60), (long long)(s % 60));
	else if (s < 86400)
		strbuf_addf(sb, "%lldh%lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
	else
		strbuf_addf(sb, "%lldd%lldh", (long long)(s / 86400),
			    (long long)(s % 86400 / 3600));
}

char *sfs_why_cached(const struct cache_record *rec, int64_t now)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "cached: key %s, record %s saved ", rec->key_id, rec->id);
	add_age(&sb, now - rec->created_at);
	strbuf_addstr(&sb, " ago");
	return strbuf_detach(&sb, NULL);
}

static int first_id(const char *id, void *arg)
{
	sfs_copy_str(arg, CACHE_ID_SIZE, id);
	return 1; /* stop */
}

/* "content <digest>" for a content key, else "key <id>". */
static void describe_key(struct keystore *ks, const char *id, struct strbuf *sb)
{
	char d[SFS_DIGEST_SIZE];
	int out = 0;
	if (ks->ops->get_info && ks->ops->get_info(ks, id, d, &out) == 0 && out == -1)
		strbuf_addf(sb, "content %s", d);
	else
		strbuf_addf(sb, "key %s", id);
}

static void describe_input_now(struct cache_manager *cm, struct vstate *vs, size_t i,
			       struct strbuf *sb)
{
	struct edge *ie = &vs->inputs[i]->edges[vs->v->inputs[i].ref.output];
	const char *id = ie->nkeys ? cache_key_id(ie->keys[0], cm) : NULL;
	if (vs->slow && vs->slow[i])
		strbuf_addf(sb, "content %s", vs->slow[i]->digest);
	else if (id)
		strbuf_addf(sb, "key %s", id);
	else
		strbuf_addstr(sb, "no cache key (it was executed, or ignores the cache)");
}

struct prev {
	struct keystore *ks;
	size_t input;
	char src[CACHE_ID_SIZE];     /* any key the record was built from at that input */
	char content[CACHE_ID_SIZE]; /* a content key among them, if any */
};

static int prev_src(const char *src, const struct cache_link *l, void *arg)
{
	struct prev *p = arg;
	char d[SFS_DIGEST_SIZE];
	int out = 0;
	if ((size_t)l->input != p->input)
		return 0;
	if (!p->src[0])
		sfs_copy_str(p->src, sizeof(p->src), src);
	if (!p->content[0] && p->ks->ops->get_info &&
	    p->ks->ops->get_info(p->ks, src, d, &out) == 0 && out == -1)
		sfs_copy_str(p->content, sizeof(p->content), src);
	return 0;
}

/* A record of this op to compare with: one the other inputs lead to, else any. */
static void closest_record(struct cache_manager *cm, struct keystore *ks, const struct edge *e,
			   size_t ninputs, size_t culprit, const struct sfs_cache_map *m,
			   char ret[CACHE_ID_SIZE])
{
	ret[0] = '\0';
	for (size_t j = 0; j < ninputs && !ret[0]; j++) {
		const char *id =
		    j != culprit && e->matches[j].n ? cache_key_id(e->matches[j].k[0], cm) : NULL;
		if (id)
			sfs_copy_str(ret, CACHE_ID_SIZE, id);
	}
	if (!ret[0])
		ks->ops->walk_by_digest(ks, m->digest, e->output, first_id, ret);
}

char *sfs_why_executed(struct sfs_solver *s, struct vstate *vs)
{
	struct cache_manager *cm = s->cache->main;
	struct keystore *ks = cache_manager_keystore(cm);
	const struct sfs_cache_map *m = vs->nmaps ? &vs->maps[vs->nmaps - 1] : NULL;
	struct strbuf sb = STRBUF_INIT;
	const struct edge *e = NULL;
	char rec[CACHE_ID_SIZE] = "";

	for (size_t o = 0; o < vs->nedges && !e; o++)
		if (vs->edges[o].phase == EDGE_WAIT_EXEC || vs->edges[o].phase == EDGE_IDLE)
			e = &vs->edges[o];
	if (!e)
		e = &vs->edges[0];
	if (vs->ignore_cache || !m) {
		strbuf_addstr(&sb, "executed: ignore_cache is set");
		return strbuf_detach(&sb, NULL);
	}
	if (vs->v->ninputs == 0) {
		strbuf_addf(&sb, "executed: no record for this %s %s",
			    vs->v->kind == SFS_OP_LOCAL	  ? "content"
			    : vs->v->kind == SFS_OP_IMAGE ? "image (its manifest's key)"
							  : "op digest",
			    m->digest);
		return strbuf_detach(&sb, NULL);
	}
	if (ks->ops->walk_by_digest)
		ks->ops->walk_by_digest(ks, m->digest, e->output, first_id, rec);
	if (!rec[0]) {
		strbuf_addf(&sb, "executed: no record for this op digest %s", m->digest);
		return strbuf_detach(&sb, NULL);
	}
	size_t culprit = vs->v->ninputs;
	for (size_t i = 0; i < vs->v->ninputs && e->matches; i++) {
		if (e->matches[i].n == 0) {
			culprit = i;
			break;
		}
	}
	if (culprit == vs->v->ninputs || !e->matches) {
		strbuf_addstr(&sb, "executed: each input matches records of this op, but none "
				   "matches all of them together");
		return strbuf_detach(&sb, NULL);
	}
	closest_record(cm, ks, e, vs->v->ninputs, culprit, m, rec);
	struct prev p = {ks, culprit, "", ""};
	if (rec[0])
		ks->ops->walk_backlinks(ks, rec, prev_src, &p);
	strbuf_addf(&sb, "executed: input %zu \"%s\" changed: now ", culprit,
		    vs->inputs[culprit]->v->name);
	describe_input_now(cm, vs, culprit, &sb);
	if (p.src[0]) {
		/* compare like with like: content with content when both have one */
		bool now_content = vs->slow && vs->slow[culprit];
		strbuf_addstr(&sb, ", the closest record used ");
		describe_key(ks, now_content && p.content[0] ? p.content : p.src, &sb);
	}
	return strbuf_detach(&sb, NULL);
}
