/*
 * canon.c — canonical JSON: the bytes every digest of docs/spec.md §4 is taken over.
 *
 * Output is compact (no whitespace), object keys sorted bytewise, and strings
 * escaped as RFC 8785 (JCS) does: `"` and `\` escaped, the control characters
 * \b \t \n \f \r by their short escapes and the others as \u00xx with lowercase
 * hex, everything else (DEL, non-ASCII UTF-8, U+2028) written as is.
 *
 * We do not use json_dumps(JSON_COMPACT | JSON_SORT_KEYS): jansson writes the
 * long control escapes with uppercase hex (\u001F), which RFC 8785 spells
 * \u001f, and a hash must not depend on a library's choice of case.  For every
 * string without such a control character the bytes are identical to jansson's.
 *
 * Numbers: the hashed fields only hold integers, written in decimal.  A real is
 * written as an integer when it is integral and exactly representable (as
 * RFC 8785 does), else with %.17g, which matches RFC 8785 for most values but
 * not all; nothing hashed depends on it.
 *
 * sfs_canonical_json_add() writes the same form onto a buffer, with some values
 * left as holes (written as nothing, their offsets told to the caller) or some
 * members left out: the spec parser writes a vertex's op bytes and cache map
 * this way, once, as templates whose holes are its refs (specgraph.c).
 *
 * Cost: linear in the output plus a sort of each object's keys.  No state, no locks.
 */
#include "spec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "strbuf.h"

static void add_str(struct strbuf *sb, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0; /* start of the pending unescaped run */

	strbuf_addch(sb, '"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[7] = "\\u00";
		const char *e = NULL;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		switch (c) {
		case '"':
			e = "\\\"";
			break;
		case '\\':
			e = "\\\\";
			break;
		case '\b':
			e = "\\b";
			break;
		case '\t':
			e = "\\t";
			break;
		case '\n':
			e = "\\n";
			break;
		case '\f':
			e = "\\f";
			break;
		case '\r':
			e = "\\r";
			break;
		default:
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			esc[6] = '\0';
			e = esc;
		}
		strbuf_add(sb, s + run, i - run);
		strbuf_addstr(sb, e);
		run = i + 1;
	}
	strbuf_add(sb, s + run, len - run);
	strbuf_addch(sb, '"');
}

struct okey {
	const char *key;
	size_t len;
	json_t *value;
};

static int okey_cmp(const void *a, const void *b)
{
	const struct okey *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->key, y->key, n);
	if (c)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

/* keys in okey_cmp's order; an object's keys are distinct, so any sort gives
 * the same order: insertion for the few fields of an op (qsort's merge sort
 * cost more than the rest of the object), qsort beyond */
static void sort_keys(struct okey *keys, size_t n)
{
	if (n > 16) {
		qsort(keys, n, sizeof(*keys), okey_cmp);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		struct okey k = keys[i];
		size_t j = i;
		for (; j > 0 && okey_cmp(&keys[j - 1], &k) > 0; j--)
			keys[j] = keys[j - 1];
		keys[j] = k;
	}
}

static void add_value(struct strbuf *sb, const json_t *v, const struct sfs_canon_hooks *h);

static void add_object(struct strbuf *sb, const json_t *v, const struct sfs_canon_hooks *h)
{
	size_t n = json_object_size(v), i = 0;
	struct okey small[16], *keys = small; /* ops have few fields: no malloc */
	void *it;

	if (n == 0) {
		strbuf_addstr(sb, "{}");
		return;
	}
	if (n > ARRAY_SIZE(small) && !(keys = malloc(n * sizeof(*keys)))) {
		sb->oom = true;
		return;
	}
	for (it = json_object_iter((json_t *)v); it && i < n;
	     it = json_object_iter_next((json_t *)v, it)) {
		keys[i].key = json_object_iter_key(it);
		keys[i].len = json_object_iter_key_len(it);
		keys[i].value = json_object_iter_value(it);
		if (!h || !h->skip || !h->skip(h->arg, v, keys[i].key))
			i++;
	}
	sort_keys(keys, i);
	strbuf_addch(sb, '{');
	for (size_t k = 0; k < i; k++) {
		if (k)
			strbuf_addch(sb, ',');
		add_str(sb, keys[k].key, keys[k].len);
		strbuf_addch(sb, ':');
		add_value(sb, keys[k].value, h);
	}
	strbuf_addch(sb, '}');
	if (keys != small)
		free(keys);
}

static void add_real(struct strbuf *sb, double d)
{
	if (d == 0) /* RFC 8785: -0 is written 0 */
		strbuf_addch(sb, '0');
	else if (d == floor(d) && fabs(d) < 9007199254740992.0)
		strbuf_addf(sb, "%.0f", d);
	else
		strbuf_addf(sb, "%.17g", d);
}

static void add_int(struct strbuf *sb, json_int_t x)
{
	char buf[24], *p = buf + sizeof(buf);
	unsigned long long u = x < 0 ? 0ULL - (unsigned long long)x : (unsigned long long)x;

	do
		*--p = (char)('0' + u % 10);
	while (u /= 10);
	if (x < 0)
		*--p = '-';
	strbuf_add(sb, p, (size_t)(buf + sizeof(buf) - p));
}

static void add_value(struct strbuf *sb, const json_t *v, const struct sfs_canon_hooks *h)
{
	if (h && h->hole && h->hole(h->arg, v, sb->len))
		return;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		add_object(sb, v, h);
		break;
	case JSON_ARRAY:
		strbuf_addch(sb, '[');
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				strbuf_addch(sb, ',');
			add_value(sb, json_array_get(v, i), h);
		}
		strbuf_addch(sb, ']');
		break;
	case JSON_STRING:
		add_str(sb, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		add_int(sb, json_integer_value(v));
		break;
	case JSON_REAL:
		add_real(sb, json_real_value(v));
		break;
	case JSON_TRUE:
		strbuf_addstr(sb, "true");
		break;
	case JSON_FALSE:
		strbuf_addstr(sb, "false");
		break;
	case JSON_NULL:
		strbuf_addstr(sb, "null");
		break;
	}
}

char *sfs_canonical_json(const json_t *v, size_t *ret_len)
{
	struct strbuf sb = STRBUF_INIT;

	if (!v)
		return NULL;
	add_value(&sb, v, NULL);
	if (sb.oom) {
		strbuf_release(&sb);
		return NULL;
	}
	return strbuf_detach(&sb, ret_len);
}

void sfs_canonical_json_add(struct strbuf *sb, const json_t *v, const struct sfs_canon_hooks *h)
{
	add_value(sb, v, h);
}
