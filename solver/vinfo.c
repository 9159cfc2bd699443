/*
 * vinfo.c — a job's vertices as they ended (sfs_vertex_info), kept with the
 * job's history in the database as JSON, so jobs/N/vertices/ survives a
 * remount:
 *
 *   [{"digest": "sha256:..", "name": "..", "op": "<hashed bytes>", "state": "done",
 *     "log": "/state/logs/..", "inputs": ["sha256:.."], "results": ["sha256:.." | ""],
 *     "why": "..", "keys": "<output> <key id>\n...", "names": "<spec key>\n..."}, ...]
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "internal.h"
#include "strbuf.h"

static void add_digests(struct strbuf *sb, const char (*d)[SFS_DIGEST_SIZE], size_t n)
{
	strbuf_addch(sb, '[');
	for (size_t i = 0; i < n; i++) {
		if (i)
			strbuf_addch(sb, ',');
		strbuf_add_json_str(sb, d[i]);
	}
	strbuf_addch(sb, ']');
}

static void add_field(struct strbuf *sb, const char *name, const char *value)
{
	strbuf_addf(sb, ",\"%s\":", name);
	strbuf_add_json_str(sb, value ? value : "");
}

/* Written one vertex at a time by the job's end (into a log that spills to a
 * file): neither a jansson tree nor a buffer of a 100,000-vertex job is held. */
void sfs_vinfo_write_one(struct strbuf *sb, const struct sfs_vertex_info *v, bool first)
{
	strbuf_addstr(sb, first ? "{\"digest\":" : ",{\"digest\":");
	strbuf_add_json_str(sb, v->digest);
	add_field(sb, "name", v->name);
	add_field(sb, "op", v->op);
	add_field(sb, "state", sfs_vertex_state_name(v->state));
	if (v->log_path)
		add_field(sb, "log", v->log_path);
	strbuf_addstr(sb, ",\"inputs\":");
	add_digests(sb, v->inputs, v->ninputs);
	strbuf_addstr(sb, ",\"results\":");
	add_digests(sb, v->results, v->noutputs);
	add_field(sb, "why", v->why);
	add_field(sb, "keys", v->keys);
	if (v->names && v->names[0])
		add_field(sb, "names", v->names);
	strbuf_addch(sb, '}');
}

static enum sfs_vertex_state state_of(const char *name)
{
	for (int st = SFS_VERTEX_PENDING; st <= SFS_VERTEX_CANCELLED; st++)
		if (name && strcmp(name, sfs_vertex_state_name(st)) == 0)
			return st;
	return SFS_VERTEX_PENDING;
}

static int digests_from(json_t *a, char (**ret)[SFS_DIGEST_SIZE], size_t *ret_n)
{
	size_t n = json_array_size(a);
	*ret = calloc(n + 1, SFS_DIGEST_SIZE);
	if (!*ret)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *s = json_string_value(json_array_get(a, i));
		sfs_copy_str((*ret)[i], SFS_DIGEST_SIZE, s);
	}
	*ret_n = n;
	return 0;
}

static int one_from_json(json_t *o, struct sfs_vertex_info *vi)
{
	const char *digest = json_string_value(json_object_get(o, "digest"));
	const char *log = json_string_value(json_object_get(o, "log"));
	json_t *op = json_object_get(o, "op");
	sfs_copy_str(vi->digest, sizeof(vi->digest), digest);
	vi->name = strdup(json_string_value(json_object_get(o, "name")) ?: "");
	vi->op_len = json_string_length(op);
	vi->op = malloc(vi->op_len + 1);
	vi->why = strdup(json_string_value(json_object_get(o, "why")) ?: "");
	vi->keys = strdup(json_string_value(json_object_get(o, "keys")) ?: "");
	vi->names = strdup(json_string_value(json_object_get(o, "names")) ?: "");
	vi->jobs = calloc(1, sizeof(*vi->jobs));
	vi->log_path = log ? strdup(log) : NULL;
	vi->state = state_of(json_string_value(json_object_get(o, "state")));
	if (!vi->name || !vi->op || !vi->why || !vi->keys || !vi->names || !vi->jobs ||
	    (log && !vi->log_path))
		return -ENOMEM;
	if (vi->op_len)
		memcpy(vi->op, json_string_value(op), vi->op_len);
	vi->op[vi->op_len] = '\0';
	int r = digests_from(json_object_get(o, "inputs"), &vi->inputs, &vi->ninputs);
	if (r == 0)
		r = digests_from(json_object_get(o, "results"), &vi->results, &vi->noutputs);
	return r;
}

int sfs_vinfo_from_json(const char *text, struct sfs_vertex_info **ret, size_t *ret_n)
{
	json_t *a = json_loads(text, 0, NULL);
	size_t n = json_array_size(a);
	struct sfs_vertex_info *v = calloc(n + 1, sizeof(*v));
	int r = v ? 0 : -ENOMEM;
	if (!json_is_array(a))
		r = -EINVAL;
	for (size_t i = 0; r == 0 && i < n; i++)
		r = one_from_json(json_array_get(a, i), &v[i]);
	json_decref(a);
	if (r < 0) {
		sfs_vertex_infos_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}
