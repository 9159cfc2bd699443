/*
 * progress.c — SolveStatus events and the plain printer of one job.
 *
 * Every vertex the job announced has a pvertex (its client.Vertex plus printer
 * state).  Events are rendered at once into two append-only buffers; nothing is
 * re-rendered, so readers can follow by offset.  Guarded by the job's lock.
 *
 * Each text is capped (limit, the status_max option): a vertex's log is bounded
 * by log_max, but a job's many loud vertices are not, and a reader of the status
 * of a job that printed a gigabyte got hundreds of megabytes.  Past the limit
 * log output is dropped and one log line says so, as BuildKit's
 * "[output clipped, log limit reached]" does for a step.
 */
#include "progress.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "array.h"
#include "dgstmap.h"

#define TAIL_LINES 10
#define TAIL_LINE_MAX 4096 /* bytes of a line kept for the failure summary */

/*
 * One block a vertex (a job announces 100,000s): the struct, then its inputs
 * array, then its name, NUL-terminated.  The digest is its 32 bytes, spelt
 * "sha256:<hex>" only in the texts.
 */
struct pvertex {
	int num;
	char last_terminal; /* 'D', 'C', 'E', 'X' or 0: the last terminal line printed */
	bool printed_since; /* log lines printed after that terminal line */
	bool cached;
	bool inputs_owned;
	struct sfs_dgst digest;
	const char *name; /* in the block */
	/* input digests (the array in the block): the announced inputs' own
	 * (inputs come first), copies only when one was not announced
	 * (inputs_owned) */
	const struct sfs_dgst **inputs;
	size_t ninputs;
	int64_t started, completed;
	char *error;
	struct plog *log; /* made by the first log line: most vertices never log */
};

/* The printer state of a vertex that logs. */
struct plog {
	struct strbuf partial[2]; /* unterminated line: [0] stdout, [1] stderr */
	char *tail[TAIL_LINES];	  /* last rendered log lines, ring */
	int tail_next, tail_n;
};

struct sfs_progress {
	struct dgstmap byd; /* digest -> pvertex (keys: the pvertices' digests) */
	struct pvertex **v;
	size_t n, cap;
	struct pvertex *cur;	    /* the vertex the plain printer shows */
	struct textlog plain, json; /* spilled to unlinked files as they grow */
	size_t limit;		    /* bytes of each text before log output is clipped; 0: none */
	bool clipped_plain, clipped_json;
	bool ended;
};

int sfs_progress_new(const char *spill_dir, size_t limit, struct sfs_progress **ret)
{
	struct sfs_progress *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->limit = limit;
	p->byd = (struct dgstmap)DGSTMAP_INIT;
	textlog_init(&p->plain, spill_dir);
	textlog_init(&p->json, spill_dir);
	*ret = p;
	return 0;
}

/* After an event: both texts may move their newest bytes to their files. */
static void commit(struct sfs_progress *p)
{
	textlog_commit(&p->plain);
	textlog_commit(&p->json);
}

static void pvertex_free(struct pvertex *v)
{
	for (size_t i = 0; v->inputs_owned && i < v->ninputs; i++)
		free((struct sfs_dgst *)v->inputs[i]);
	free(v->error);
	if (v->log) {
		for (int i = 0; i < 2; i++)
			strbuf_release(&v->log->partial[i]);
		for (int i = 0; i < TAIL_LINES; i++)
			free(v->log->tail[i]);
		free(v->log);
	}
	free(v);
}

struct sfs_progress *sfs_progress_free(struct sfs_progress *p)
{
	if (!p)
		return NULL;
	for (size_t i = 0; i < p->n; i++)
		pvertex_free(p->v[i]);
	free(p->v);
	dgstmap_release(&p->byd);
	textlog_release(&p->plain);
	textlog_release(&p->json);
	free(p);
	return NULL;
}

static void json_time(struct strbuf *sb, const char *field, int64_t t)
{
	char buf[40];
	sfs_format_time(t, buf);
	strbuf_addstr(sb, ",\"");
	strbuf_addstr(sb, field);
	strbuf_addstr(sb, "\":\"");
	strbuf_addstr(sb, buf);
	strbuf_addch(sb, '"');
}

/* "sha256:<hex>" as a JSON string (nothing in it to escape). */
static void json_digest(struct strbuf *sb, const struct sfs_dgst *d)
{
	char text[SFS_DIGEST_SIZE];
	sfs_dgst_to_text(d, text);
	strbuf_addch(sb, '"');
	strbuf_add(sb, text, SFS_DIGEST_LEN);
	strbuf_addch(sb, '"');
}

/* The pvertex of a digest text; NULL when none (or not a digest). */
static struct pvertex *vertex_of(const struct sfs_progress *p, const char *digest)
{
	struct sfs_dgst d;
	if (!p || sfs_dgst_from_text(digest, &d) < 0)
		return NULL;
	return dgstmap_get(&p->byd, &d);
}

/* One {"vertexes":[...]} line for v as it is now. */
static void emit_json_vertex(struct sfs_progress *p, const struct pvertex *v)
{
	struct strbuf *sb = &p->json.tail;
	strbuf_addstr(sb, "{\"vertexes\":[{\"digest\":");
	json_digest(sb, &v->digest);
	if (v->ninputs) {
		strbuf_addstr(sb, ",\"inputs\":[");
		for (size_t i = 0; i < v->ninputs; i++) {
			if (i)
				strbuf_addch(sb, ',');
			json_digest(sb, v->inputs[i]);
		}
		strbuf_addch(sb, ']');
	}
	strbuf_addstr(sb, ",\"name\":");
	strbuf_add_json_str(sb, v->name);
	if (v->started)
		json_time(sb, "started", v->started);
	if (v->completed)
		json_time(sb, "completed", v->completed);
	if (v->cached)
		strbuf_addstr(sb, ",\"cached\":true");
	if (v->error) {
		strbuf_addstr(sb, ",\"error\":");
		strbuf_add_json_str(sb, v->error);
	}
	strbuf_addstr(sb, "}]}\n");
}

/* "#<num> <text>\n", the plain printer's line (built without printf: every
 * vertex of a job prints two or three). */
static void plain_line(struct strbuf *sb, int num, const char *text)
{
	strbuf_addch(sb, '#');
	strbuf_addi(sb, num);
	strbuf_addch(sb, ' ');
	strbuf_addstr(sb, text);
	strbuf_addch(sb, '\n');
}

/* Makes v the vertex the plain printer shows, printing its header if needed. */
static void plain_switch(struct sfs_progress *p, struct pvertex *v)
{
	if (p->cur == v)
		return;
	if (p->cur && !p->cur->completed)
		plain_line(&p->plain.tail, p->cur->num, "...");
	if (textlog_len(&p->plain))
		strbuf_addch(&p->plain.tail, '\n');
	plain_line(&p->plain.tail, v->num, v->name);
	p->cur = v;
}

static bool is_cancel(const char *err)
{
	size_t n = strlen(err), m = strlen("context canceled");
	return n >= m && strcmp(err + n - m, "context canceled") == 0;
}

static void plain_terminal(struct sfs_progress *p, struct pvertex *v)
{
	char kind = v->error ? (is_cancel(v->error) ? 'X' : 'E') : v->cached ? 'C' : 'D';
	/* a root's CacheMap and its exec both complete it: print that once (the
	 * plain printer collapses them the same way) */
	if (kind == v->last_terminal && p->cur == v && !v->printed_since)
		return;
	v->printed_since = false;
	v->last_terminal = kind;
	plain_switch(p, v);
	if (v->error && is_cancel(v->error))
		strbuf_addf(&p->plain.tail, "#%d CANCELED\n", v->num);
	else if (v->error)
		strbuf_addf(&p->plain.tail, "#%d ERROR: %s\n", v->num, v->error);
	else if (v->cached)
		plain_line(&p->plain.tail, v->num, "CACHED");
	else
		strbuf_addf(&p->plain.tail, "#%d DONE %.1fs\n", v->num,
			    (double)(v->completed - v->started) / 1e9);
}

int sfs_progress_add_vertex(struct sfs_progress *p, const char *digest, const char *name,
			    const char *const *inputs, size_t ninputs)
{
	struct sfs_dgst d;
	if (!p || vertex_of(p, digest))
		return 0;
	if (sfs_dgst_from_text(digest, &d) < 0)
		return -EINVAL;
	if (sfs_grow((void **)&p->v, &p->cap, p->n + 1, sizeof(*p->v)) < 0)
		return -ENOMEM;
	size_t nlen = strlen(name) + 1;
	struct pvertex *v = calloc(1, sizeof(*v) + ninputs * sizeof(*v->inputs) + nlen);
	if (!v)
		return -ENOMEM;
	v->digest = d;
	v->inputs = (const struct sfs_dgst **)(v + 1);
	v->name = memcpy((char *)(v->inputs + ninputs), name, nlen);
	for (size_t i = 0; i < ninputs && !v->inputs_owned; i++) {
		struct pvertex *in = vertex_of(p, inputs[i]);
		v->inputs_owned = !in;
		v->inputs[i] = in ? &in->digest : NULL;
	}
	for (size_t i = 0; i < ninputs; i++) {
		struct sfs_dgst *own = v->inputs_owned ? malloc(sizeof(*own)) : NULL;
		if (v->inputs_owned && (!own || sfs_dgst_from_text(inputs[i], own) < 0)) {
			free(own);
			goto oom;
		}
		if (own)
			v->inputs[i] = own;
		v->ninputs++;
	}
	/* the map borrows its key: v's own digest */
	if (dgstmap_put(&p->byd, &v->digest, v, NULL) < 0)
		goto oom;
	v->num = (int)p->n + 1;
	p->v[p->n++] = v;
	emit_json_vertex(p, v);
	commit(p);
	return 0;
oom:
	pvertex_free(v);
	return -ENOMEM;
}

bool sfs_progress_has_vertex(const struct sfs_progress *p, const char *digest)
{
	return vertex_of(p, digest) != NULL;
}

/*
 * BuildKit's implicit CACHED: inputs of a started vertex that never ran are
 * reported cached, inputs first.  Iterative: a cached 100,000-vertex chain must
 * not recurse once per level.
 */
static void mark_inputs_cached(struct sfs_progress *p, struct pvertex *v, int64_t t)
{
	struct pvertex **todo = NULL, **order = NULL;
	size_t ntodo = 0, norder = 0, cap_todo = 0, cap_order = 0;

	for (struct pvertex *cur = v; cur; cur = ntodo ? todo[--ntodo] : NULL) {
		for (size_t i = 0; i < cur->ninputs; i++) {
			struct pvertex *in = dgstmap_get(&p->byd, cur->inputs[i]);
			if (!in || in->cached || in->started || in->completed)
				continue;
			if (sfs_grow((void **)&todo, &cap_todo, ntodo + 1, sizeof(*todo)) < 0 ||
			    sfs_grow((void **)&order, &cap_order, norder + 1, sizeof(*order)) < 0)
				break;
			in->cached = true; /* claimed: visited once */
			todo[ntodo++] = in;
			order[norder++] = in;
		}
	}
	for (size_t k = norder; k-- > 0;) {
		struct pvertex *in = order[k];
		in->started = in->completed = t;
		emit_json_vertex(p, in);
		plain_terminal(p, in);
		commit(p); /* a cached chain of 100,000 reports them all here */
	}
	free(todo);
	free(order);
}

void sfs_progress_started(struct sfs_progress *p, const char *digest, int64_t t, bool cached)
{
	struct pvertex *v = vertex_of(p, digest);
	if (!v || p->ended)
		return;
	mark_inputs_cached(p, v, t);
	v->started = t;
	v->completed = 0;
	v->cached = cached;
	emit_json_vertex(p, v);
	plain_switch(p, v);
	commit(p);
}

static void completed(struct sfs_progress *p, struct pvertex *v, int64_t t, bool cached,
		      const char *error);

void sfs_progress_completed(struct sfs_progress *p, const char *digest, int64_t t, bool cached,
			    const char *error)
{
	struct pvertex *v = vertex_of(p, digest);
	if (!v || p->ended)
		return;
	completed(p, v, t, cached, error);
}

static void completed(struct sfs_progress *p, struct pvertex *v, int64_t t, bool cached,
		      const char *error)
{
	if (!v->started) {
		mark_inputs_cached(p, v, t);
		v->started = t;
	}
	v->completed = t;
	v->cached = cached;
	if (error) {
		free(v->error);
		v->error = strdup(error);
	}
	emit_json_vertex(p, v);
	plain_terminal(p, v);
	commit(p);
}

static void remember_line(struct plog *l, const char *line)
{
	free(l->tail[l->tail_next]);
	l->tail[l->tail_next] = strndup(line, TAIL_LINE_MAX);
	l->tail_next = (l->tail_next + 1) % TAIL_LINES;
	if (l->tail_n < TAIL_LINES)
		l->tail_n++;
}

/* The last lines of l, oldest first, each ending in a newline. */
static void add_tail(struct strbuf *sb, const struct plog *l)
{
	for (int k = 0; l && k < l->tail_n; k++) {
		int idx = (l->tail_next - l->tail_n + k + TAIL_LINES) % TAIL_LINES;
		strbuf_addf(sb, "%s\n", l->tail[idx]);
	}
}

/* Would n more bytes of log take text t past the limit? */
static bool over_limit(const struct sfs_progress *p, const struct textlog *t, size_t n)
{
	return p->limit && textlog_len(t) + n > p->limit;
}

static void clip_notice(const struct sfs_progress *p, char *buf, size_t size)
{
	snprintf(buf, size, "[output clipped, status limit of %zu bytes reached (status_max)]",
		 p->limit);
}

/* BuildKit's %#.4g cut to 5 characters; past 1000 s that would print the
 * mantissa of 1.000e+04, so whole seconds instead */
static void log_seconds(const struct pvertex *v, int64_t t, char ts[32])
{
	double secs = v->started && t > v->started ? (double)(t - v->started) / 1e9 : 0;

	if (secs < 1000) {
		snprintf(ts, 32, "%#.4g", secs);
		ts[5] = '\0';
	} else {
		snprintf(ts, 32, "%.0f", secs);
	}
}

static void plain_log_line(struct sfs_progress *p, struct pvertex *v, const char *line, int64_t t)
{
	char ts[32], notice[96];

	remember_line(v->log, line); /* the failure summary's tail, clipped or not */
	if (p->clipped_plain)
		return;
	log_seconds(v, t, ts);
	/* the line, and the header a switch to v may print */
	if (over_limit(p, &p->plain, strlen(line) + strlen(v->name) + 64)) {
		p->clipped_plain = true;
		clip_notice(p, notice, sizeof(notice));
		line = notice;
	}
	plain_switch(p, v);
	strbuf_addf(&p->plain.tail, "#%d %s %s\n", v->num, ts, line);
	v->printed_since = true;
}

/* One {"logs":[...]} line: the data, or the notice when it would not fit. */
static void json_log(struct sfs_progress *p, const struct pvertex *v, int stream, const void *data,
		     size_t len, int64_t t)
{
	char ts[40], notice[96];

	if (p->clipped_json)
		return;
	if (over_limit(p, &p->json, (len + 2) / 3 * 4 + SFS_DIGEST_LEN + 128)) {
		p->clipped_json = true;
		clip_notice(p, notice, sizeof(notice) - 1);
		strcat(notice, "\n");
		data = notice;
		len = strlen(notice);
		stream = 2;
	}
	sfs_format_time(t, ts);
	strbuf_addstr(&p->json.tail, "{\"logs\":[{\"vertex\":");
	json_digest(&p->json.tail, &v->digest);
	strbuf_addf(&p->json.tail, ",\"stream\":%d,\"data\":\"", stream);
	strbuf_add_base64(&p->json.tail, data, len);
	strbuf_addf(&p->json.tail, "\",\"timestamp\":\"%s\"}]}\n", ts);
}

void sfs_progress_log(struct sfs_progress *p, const char *digest, int stream, const void *data,
		      size_t len, int64_t t)
{
	struct pvertex *v = vertex_of(p, digest);
	if (!v || p->ended || len == 0)
		return;
	json_log(p, v, stream, data, len, t);
	if (!v->log && !(v->log = calloc(1, sizeof(*v->log))))
		return; /* out of memory: the line is still in status.json */
	struct strbuf *part = &v->log->partial[stream == 2];
	const char *d = data, *end = d + len;
	while (d < end) {
		const char *nl = memchr(d, '\n', (size_t)(end - d));
		if (!nl) {
			strbuf_add(part, d, (size_t)(end - d));
			break;
		}
		strbuf_add(part, d, (size_t)(nl - d));
		plain_log_line(p, v, part->buf ? part->buf : "", t);
		strbuf_reset(part);
		d = nl + 1;
	}
	commit(p);
}

/*
 * A {"statuses":[...]} line (BuildKit's VertexStatus: a transfer's bytes) and,
 * in the plain text, "#N <id> <current> / <total> bytes", "done" at the end.
 * Subject to the limit as log lines are.
 */
void sfs_progress_status(struct sfs_progress *p, const char *digest, const char *id,
			 uint64_t current, uint64_t total, int64_t t, bool done)
{
	struct pvertex *v = vertex_of(p, digest);
	char ts[40], line[256];
	if (!v || p->ended)
		return;
	if (!p->clipped_json && !over_limit(p, &p->json, strlen(id) + 256)) {
		sfs_format_time(t, ts);
		struct strbuf *sb = &p->json.tail;
		strbuf_addstr(sb, "{\"statuses\":[{\"id\":");
		strbuf_add_json_str(sb, id);
		strbuf_addstr(sb, ",\"vertex\":");
		json_digest(sb, &v->digest);
		strbuf_addstr(sb, ",\"name\":");
		strbuf_add_json_str(sb, id);
		strbuf_addf(sb, ",\"current\":%llu,\"total\":%llu,\"timestamp\":\"%s\"",
			    (unsigned long long)current, (unsigned long long)total, ts);
		if (done)
			json_time(sb, "completed", t);
		strbuf_addstr(sb, "}]}\n");
	}
	snprintf(line, sizeof(line), "%s %llu / %llu bytes%s", id, (unsigned long long)current,
		 (unsigned long long)total, done ? " done" : "");
	if (!v->log && !(v->log = calloc(1, sizeof(*v->log))))
		return;
	plain_log_line(p, v, line, t);
	commit(p);
}

static void flush_partials(struct sfs_progress *p, struct pvertex *v, int64_t t)
{
	for (int s = 0; v->log && s < 2; s++) {
		if (v->log->partial[s].len) {
			plain_log_line(p, v, v->log->partial[s].buf, t);
			strbuf_reset(&v->log->partial[s]);
		}
	}
}

void sfs_progress_end(struct sfs_progress *p, int64_t t)
{
	if (p->ended)
		return;
	for (size_t i = 0; i < p->n; i++) {
		struct pvertex *v = p->v[i];
		flush_partials(p, v, t);
		if (v->started && !v->completed)
			completed(p, v, t, false, "context canceled");
	}
	for (size_t i = 0; i < p->n; i++) {
		struct pvertex *v = p->v[i];
		if (!v->error || is_cancel(v->error))
			continue;
		strbuf_addf(&p->plain.tail, "------\n > %s:\n", v->name);
		add_tail(&p->plain.tail, v->log);
		strbuf_addstr(&p->plain.tail, "------\n");
	}
	p->ended = true;
	commit(p);
}

const struct textlog *sfs_progress_plain(const struct sfs_progress *p)
{
	return &p->plain;
}

const struct textlog *sfs_progress_json(const struct sfs_progress *p)
{
	return &p->json;
}
