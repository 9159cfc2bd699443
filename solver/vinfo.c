/*
 * vinfo.c — a job's vertices as they ended (sfs_vertex_info), kept with the
 * job's history in the database, so jobs/N/vertices/ survives a remount.
 *
 * Written in a compact binary form, one vertex at a time straight from the
 * live vertex (nothing copied; the job's end writes every vertex of a
 * 100,000-vertex job, and most are never looked at), decoded only when
 * someone reads the list:
 *
 *   "\0SFV1"  then per vertex:
 *     digest  name  op  state(1 byte)  flags(1 byte)  [log]
 *     ninputs digest...  noutputs digest...  [why]  keys  [names]
 *
 * A number is an unsigned LEB128 varint; a string is its length, then its
 * bytes; a digest is 1 and its 32 bytes for "sha256:<hex>", 2 for "", else 0
 * and the string.  flags: VF_LOG (a log path follows), VF_NOT_NEEDED (why is
 * SFS_WHY_NOT_NEEDED, not written), VF_NAMES (spec keys follow).
 *
 * Rows written before this form hold a JSON array, still read:
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

#define VINFO_MAGIC "\0SFV1"
#define VINFO_MAGIC_LEN 5

enum { VF_LOG = 1, VF_NOT_NEEDED = 2, VF_NAMES = 4 };
enum { VD_STRING = 0, VD_SHA256 = 1, VD_EMPTY = 2 };

void sfs_vinfo_begin(struct strbuf *sb)
{
	strbuf_add(sb, VINFO_MAGIC, VINFO_MAGIC_LEN);
}

static void put_num(struct strbuf *sb, uint64_t v)
{
	unsigned char b[10];
	size_t n = 0;
	do {
		b[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	strbuf_add(sb, b, n);
}

static void put_str(struct strbuf *sb, const char *s, size_t len)
{
	put_num(sb, len);
	strbuf_add(sb, s, len);
}

static int hex_val(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c - 'a' + 10;
}

static void put_digest(struct strbuf *sb, const char *d)
{
	unsigned char raw[SFS_HEX_LEN / 2];

	if (!d[0]) {
		strbuf_addch(sb, VD_EMPTY);
	} else if (sfs_is_digest(d)) {
		for (size_t i = 0; i < sizeof(raw); i++)
			raw[i] = (unsigned char)(hex_val(d[7 + 2 * i]) << 4 | hex_val(d[8 + 2 * i]));
		strbuf_addch(sb, VD_SHA256);
		strbuf_add(sb, raw, sizeof(raw));
	} else {
		strbuf_addch(sb, VD_STRING);
		put_str(sb, d, strlen(d));
	}
}

void sfs_vinfo_write(struct strbuf *sb, const struct sfs_vinfo_view *v)
{
	bool not_needed = strcmp(v->why, SFS_WHY_NOT_NEEDED) == 0;
	unsigned flags = (v->log_path ? VF_LOG : 0) | (not_needed ? VF_NOT_NEEDED : 0) |
			 (v->names[0] ? VF_NAMES : 0);

	put_digest(sb, v->digest);
	put_str(sb, v->name, strlen(v->name));
	put_str(sb, v->op, v->op_len);
	strbuf_addch(sb, (char)v->state);
	strbuf_addch(sb, (char)flags);
	if (v->log_path)
		put_str(sb, v->log_path, strlen(v->log_path));
	put_num(sb, v->ninputs);
	for (size_t i = 0; i < v->ninputs; i++)
		put_digest(sb, v->inputs[i]);
	put_num(sb, v->noutputs);
	for (size_t o = 0; o < v->noutputs; o++)
		put_digest(sb, v->results[o]);
	if (!not_needed)
		put_str(sb, v->why, strlen(v->why));
	put_str(sb, v->keys, strlen(v->keys));
	if (v->names[0])
		put_str(sb, v->names, strlen(v->names));
}

/* A reading position in the binary form; bad once anything did not fit. */
struct cursor {
	const unsigned char *p, *end;
	bool bad;
};

static uint64_t get_num(struct cursor *c)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (c->p >= c->end)
			break;
		unsigned char b = *c->p++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	c->bad = true;
	return 0;
}

static unsigned char get_byte(struct cursor *c)
{
	if (c->p >= c->end) {
		c->bad = true;
		return 0;
	}
	return *c->p++;
}

/* A malloc'd NUL-terminated copy of the next string (*ret_len its length). */
static char *get_str(struct cursor *c, size_t *ret_len)
{
	uint64_t n = get_num(c);
	if (c->bad || n > (uint64_t)(c->end - c->p)) {
		c->bad = true;
		return NULL;
	}
	char *s = malloc((size_t)n + 1);
	if (s) {
		memcpy(s, c->p, (size_t)n);
		s[n] = '\0';
	}
	c->p += n;
	if (ret_len)
		*ret_len = (size_t)n;
	return s;
}

static void get_digest(struct cursor *c, char d[SFS_DIGEST_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char kind = get_byte(c);
	char *s;

	d[0] = '\0';
	if (kind == VD_SHA256 && c->end - c->p >= SFS_HEX_LEN / 2) {
		memcpy(d, "sha256:", 7);
		for (size_t i = 0; i < SFS_HEX_LEN / 2; i++) {
			d[7 + 2 * i] = hex[c->p[i] >> 4];
			d[8 + 2 * i] = hex[c->p[i] & 15];
		}
		d[SFS_DIGEST_LEN] = '\0';
		c->p += SFS_HEX_LEN / 2;
	} else if (kind == VD_STRING && (s = get_str(c, NULL))) {
		sfs_copy_str(d, SFS_DIGEST_SIZE, s);
		free(s);
	} else if (kind != VD_EMPTY) {
		c->bad = true;
	}
}

static int get_digests(struct cursor *c, char (**ret)[SFS_DIGEST_SIZE], size_t *ret_n)
{
	uint64_t n = get_num(c);
	if (c->bad || n > (uint64_t)(c->end - c->p)) /* a digest takes a byte at least */
		return -EINVAL;
	*ret = calloc((size_t)n + 1, SFS_DIGEST_SIZE);
	if (!*ret)
		return -ENOMEM;
	for (size_t i = 0; i < n && !c->bad; i++)
		get_digest(c, (*ret)[i]);
	*ret_n = (size_t)n;
	return c->bad ? -EINVAL : 0;
}

static int one_from_bin(struct cursor *c, struct sfs_vertex_info *vi)
{
	get_digest(c, vi->digest);
	vi->name = get_str(c, NULL);
	vi->op = get_str(c, &vi->op_len);
	unsigned char state = get_byte(c), flags = get_byte(c);
	if (c->bad || state > SFS_VERTEX_CANCELLED)
		return -EINVAL;
	vi->state = (enum sfs_vertex_state)state;
	if (flags & VF_LOG)
		vi->log_path = get_str(c, NULL);
	int r = get_digests(c, &vi->inputs, &vi->ninputs);
	if (r == 0)
		r = get_digests(c, &vi->results, &vi->noutputs);
	if (r < 0)
		return r;
	vi->why = flags & VF_NOT_NEEDED ? strdup(SFS_WHY_NOT_NEEDED) : get_str(c, NULL);
	vi->keys = get_str(c, NULL);
	vi->names = flags & VF_NAMES ? get_str(c, NULL) : strdup("");
	vi->jobs = calloc(1, sizeof(*vi->jobs));
	if (c->bad)
		return -EINVAL;
	if (!vi->name || !vi->op || !vi->why || !vi->keys || !vi->names || !vi->jobs ||
	    ((flags & VF_LOG) && !vi->log_path))
		return -ENOMEM;
	return 0;
}

static int from_bin(const char *data, size_t len, struct sfs_vertex_info **ret, size_t *ret_n)
{
	struct cursor c = {(const unsigned char *)data + VINFO_MAGIC_LEN,
			   (const unsigned char *)data + len, false};
	struct sfs_vertex_info *v = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	while (r == 0 && c.p < c.end) {
		if ((r = sfs_grow((void **)&v, &cap, n + 1, sizeof(*v))) < 0)
			break;
		memset(&v[n], 0, sizeof(v[n]));
		r = one_from_bin(&c, &v[n++]);
	}
	if (r == 0 && !v && !(v = calloc(1, sizeof(*v))))
		r = -ENOMEM;
	if (r < 0) {
		sfs_vertex_infos_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
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

static int from_json(const char *text, size_t len, struct sfs_vertex_info **ret, size_t *ret_n)
{
	json_t *a = json_loadb(text, len, 0, NULL);
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

int sfs_vinfo_decode(const char *data, size_t len, struct sfs_vertex_info **ret, size_t *ret_n)
{
	if (len >= VINFO_MAGIC_LEN && memcmp(data, VINFO_MAGIC, VINFO_MAGIC_LEN) == 0)
		return from_bin(data, len, ret, ret_n);
	return from_json(data, len, ret, ret_n);
}
