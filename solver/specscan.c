/*
 * specscan.c — the members of a JSON object found by their byte spans, nothing
 * built: how spec.c walks a spec's top level and its "vertices" object so that
 * jansson loads one vertex at a time (the document whole was ~2 KB a vertex).
 *
 * The scanner does not judge JSON: jansson does, on each span it is given.  It
 * only reads what lies between the spans (braces, keys, colons, commas and
 * blanks), and accepts it in one plain form only: keys of printable ASCII
 * without escapes, blanks as jansson skips them, no trailing comma.  Anything
 * else (an escape or a byte >= 0x7f in a key, a truncated document, a value it
 * cannot delimit, nesting deeper than SFS_JSCAN_MAX_DEPTH) is "not plain" and
 * the caller loads the document whole instead, so every error message stays
 * jansson's own.  A value's span is found by counting brackets outside strings
 * (in a string, a backslash skips the next byte); whether it is a value is
 * jansson's to say when it loads the span.
 *
 * Linear in the bytes scanned; no allocation.
 */
#include "specint.h"

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_blanks(const struct sfs_jobj *o, size_t at)
{
	while (at < o->len && blank(o->buf[at]))
		at++;
	return at;
}

/* The closing quote of the string opening at `at`, or len. */
static size_t string_end(const char *buf, size_t len, size_t at)
{
	for (at++; at < len; at++) {
		if (buf[at] == '"')
			return at;
		if (buf[at] == '\\')
			at++;
	}
	return len;
}

/* A scalar's bytes: a number's or a literal's (jansson says which, if any). */
static bool scalar_byte(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c == '+' || c == '-' || c == '.';
}

/* The end of the value starting at `at` (the object is at depth o->depth), or 0
 * when it cannot be delimited plainly. */
static size_t value_end(struct sfs_jobj *o, size_t at)
{
	const char *b = o->buf;
	unsigned depth = o->depth, top = o->depth;

	if (at >= o->len)
		return 0;
	if (b[at] == '"') {
		at = string_end(b, o->len, at);
		return at < o->len ? at + 1 : 0;
	}
	if (b[at] != '{' && b[at] != '[') {
		size_t s = at;
		while (at < o->len && scalar_byte(b[at]))
			at++;
		return at > s ? at : 0;
	}
	for (; at < o->len; at++) {
		char c = b[at];
		if (c == '"') {
			at = string_end(b, o->len, at);
			if (at == o->len)
				return 0;
		} else if (c == '{' || c == '[') {
			if (++depth > SFS_JSCAN_MAX_DEPTH)
				return 0;
		} else if (c == '}' || c == ']') {
			if (--depth == top)
				return at + 1;
		}
	}
	return 0;
}

int sfs_jobj_open(struct sfs_jobj *o, const char *buf, size_t len, size_t at, unsigned depth)
{
	*o = (struct sfs_jobj){buf, len, 0, true, depth};
	at = skip_blanks(o, at);
	if (at >= len || buf[at] != '{' || depth > SFS_JSCAN_MAX_DEPTH)
		return -1;
	o->pos = at + 1;
	return 0;
}

int sfs_jobj_next(struct sfs_jobj *o, struct sfs_jmember *m)
{
	const char *b = o->buf;
	size_t at = skip_blanks(o, o->pos), k;

	if (at < o->len && b[at] == '}' && o->first) {
		o->pos = at + 1;
		return 0;
	}
	if (!o->first) {
		if (at < o->len && b[at] == '}') {
			o->pos = at + 1;
			return 0;
		}
		if (at >= o->len || b[at] != ',')
			return -1;
		at = skip_blanks(o, at + 1);
	}
	o->first = false;
	if (at >= o->len || b[at] != '"')
		return -1;
	for (k = at + 1; k < o->len && b[k] != '"'; k++)
		if ((unsigned char)b[k] < 0x20 || (unsigned char)b[k] >= 0x7f || b[k] == '\\')
			return -1;
	if (k >= o->len)
		return -1;
	m->key = b + at + 1;
	m->klen = k - at - 1;
	at = skip_blanks(o, k + 1);
	if (at >= o->len || b[at] != ':')
		return -1;
	m->at = skip_blanks(o, at + 1);
	size_t end = value_end(o, m->at);
	if (!end)
		return -1;
	m->len = end - m->at;
	o->pos = end;
	return 1;
}

bool sfs_jscan_rest_blank(const struct sfs_jobj *o)
{
	return skip_blanks(o, o->pos) == o->len;
}
