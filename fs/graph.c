/*
 * graph.c — jobs/N/why and jobs/N/graph.dot: a job's vertices explained.
 *
 * `why` is the solver's text (one line per vertex).  graph.dot is made here
 * from the job's vertex list: one node per vertex (named by its digest hex,
 * labelled with its name, filled with the colour of its state) and one edge
 * per input, from the input to its user, so `dot -Tsvg` draws the build
 * bottom-up as `buildctl` users read it.  Both are snapshots made at open.
 *
 * No state, no locks.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

int fs_job_why(struct sfs_fs *fs, uint64_t job, struct strbuf *out)
{
	char *text = NULL;
	size_t len = 0;
	int r = sfs_solver_job_why(fs->solver, job, &text, &len);

	if (r < 0)
		return r;
	strbuf_add(out, text, len);
	if (len > 0 && text[len - 1] != '\n')
		strbuf_addch(out, '\n');
	free(text);
	return out->oom ? -ENOMEM : 0;
}

static const char *state_colour(enum sfs_vertex_state s)
{
	switch (s) {
	case SFS_VERTEX_CACHED:
		return "lightblue";
	case SFS_VERTEX_DONE:
		return "palegreen";
	case SFS_VERTEX_FAILED:
		return "salmon";
	case SFS_VERTEX_RUNNING:
		return "gold";
	case SFS_VERTEX_CANCELLED:
		return "grey";
	default:
		return "white";
	}
}

/* A DOT double-quoted string: backslash and quote escaped, newlines as \n. */
static void add_dot_str(struct strbuf *out, const char *s)
{
	strbuf_addch(out, '"');
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			strbuf_addch(out, '\\');
		if (*s == '\n')
			strbuf_addstr(out, "\\n");
		else if ((unsigned char)*s >= 0x20)
			strbuf_addch(out, *s);
	}
	strbuf_addch(out, '"');
}

static const char *hex_of(const char *digest)
{
	return strncmp(digest, "sha256:", 7) == 0 ? digest + 7 : digest;
}

static void add_node(struct strbuf *out, const struct sfs_vertex_info *v)
{
	strbuf_addf(out, "  \"%s\" [label=", hex_of(v->digest));
	add_dot_str(out, v->name && v->name[0] ? v->name : hex_of(v->digest));
	strbuf_addf(out, ", fillcolor=%s, tooltip=\"%s %s\"];\n", state_colour(v->state),
		    sfs_vertex_state_name(v->state), v->digest);
}

int fs_job_graph(struct sfs_fs *fs, uint64_t job, struct strbuf *out)
{
	struct sfs_vertex_info *v = NULL;
	size_t n = 0;
	int r = sfs_solver_job_vertices(fs->solver, job, &v, &n);

	if (r < 0)
		return r;
	strbuf_addf(out, "digraph \"job %" PRIu64 "\" {\n", job);
	strbuf_addstr(out, "  rankdir=BT;\n  node [shape=box, style=\"rounded,filled\"];\n");
	for (size_t i = 0; i < n; i++)
		add_node(out, &v[i]);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < v[i].ninputs; j++)
			strbuf_addf(out, "  \"%s\" -> \"%s\";\n", hex_of(v[i].inputs[j]),
				    hex_of(v[i].digest));
	strbuf_addstr(out, "}\n");
	sfs_vertex_infos_free(v, n);
	return out->oom ? -ENOMEM : 0;
}
