/*
 * vinfo.c — a job's vertices as they ended (sfs_vertex_info), kept with the
 * job's history in the database as JSON, so jobs/N/vertices/ survives a
 * remount:
 *
 *   [{"digest": "sha256:..", "name": "..", "op": "<hashed bytes>", "state": "done",
 *     "log": "/state/logs/..", "inputs": ["sha256:.."], "results": ["sha256:.." | ""],
 *     "why": "..", "keys": "<output> <key id>\n..."}, ...]
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static json_t *digests_json(const char (*d)[SFS_DIGEST_SIZE], size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(d[i]));
	return a;
}

char *sfs_vinfo_to_json(const struct sfs_vertex_info *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++) {
		json_t *o =
		    json_pack("{s:s, s:s, s:s%, s:s, s:s?, s:o, s:o, s:s, s:s}", "digest",
			      v[i].digest, "name", v[i].name, "op", v[i].op, v[i].op_len, "state",
			      sfs_vertex_state_name(v[i].state), "log", v[i].log_path, "inputs",
			      digests_json(v[i].inputs, v[i].ninputs), "results",
			      digests_json(v[i].results, v[i].noutputs), "why",
			      v[i].why ? v[i].why : "", "keys", v[i].keys ? v[i].keys : "");
		if (!o || json_array_append_new(a, o) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return s;
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
		snprintf((*ret)[i], SFS_DIGEST_SIZE, "%s", s ? s : "");
	}
	*ret_n = n;
	return 0;
}

static int one_from_json(json_t *o, struct sfs_vertex_info *vi)
{
	const char *digest = json_string_value(json_object_get(o, "digest"));
	const char *log = json_string_value(json_object_get(o, "log"));
	json_t *op = json_object_get(o, "op");
	snprintf(vi->digest, sizeof(vi->digest), "%s", digest ? digest : "");
	vi->name = strdup(json_string_value(json_object_get(o, "name")) ?: "");
	vi->op_len = json_string_length(op);
	vi->op = malloc(vi->op_len + 1);
	vi->why = strdup(json_string_value(json_object_get(o, "why")) ?: "");
	vi->keys = strdup(json_string_value(json_object_get(o, "keys")) ?: "");
	vi->jobs = calloc(1, sizeof(*vi->jobs));
	vi->log_path = log ? strdup(log) : NULL;
	vi->state = state_of(json_string_value(json_object_get(o, "state")));
	if (!vi->name || !vi->op || !vi->why || !vi->keys || !vi->jobs || (log && !vi->log_path))
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
