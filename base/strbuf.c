#include "strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "numtext.h"

static bool grow(struct strbuf *sb, size_t extra)
{
	if (sb->oom)
		return false;
	if (sb->len + extra + 1 <= sb->cap)
		return true;
	if (sfs_grow((void **)&sb->buf, &sb->cap, sb->len + extra + 1, 1) < 0) {
		sb->oom = true;
		return false;
	}
	return true;
}

void strbuf_add(struct strbuf *sb, const void *data, size_t len)
{
	if (!grow(sb, len))
		return;
	if (len)
		memcpy(sb->buf + sb->len, data, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
}

void strbuf_addstr(struct strbuf *sb, const char *s)
{
	strbuf_add(sb, s, strlen(s));
}

void strbuf_addch(struct strbuf *sb, char c)
{
	if (!grow(sb, 1))
		return;
	sb->buf[sb->len++] = c;
	sb->buf[sb->len] = '\0';
}

void strbuf_addu(struct strbuf *sb, uint64_t v)
{
	char num[SFS_NUM_SIZE];
	strbuf_add(sb, num, sfs_u64_text(num, v, 10));
}

void strbuf_addi(struct strbuf *sb, int64_t v)
{
	char num[SFS_NUM_SIZE];
	strbuf_add(sb, num, sfs_i64_text(num, v));
}

/* Formats into the room the buffer has first, and only when that was too
 * short grows it and formats again: one vsnprintf a call, not two, for the
 * short pieces (numbers, names) the status texts are made of. */
void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap)
{
	if (sb->oom || !grow(sb, 64))
		return;
	size_t room = sb->cap - sb->len;
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(sb->buf + sb->len, room, fmt, cp);
	va_end(cp);
	if (n < 0) {
		sb->buf[sb->len] = '\0';
		return;
	}
	if ((size_t)n >= room) {
		if (!grow(sb, (size_t)n)) {
			sb->buf[sb->len] = '\0';
			return;
		}
		vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	}
	sb->len += (size_t)n;
}

void strbuf_addf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	strbuf_vaddf(sb, fmt, ap);
	va_end(ap);
}

/* The escape of a byte JSON strings cannot hold as is, or NULL. */
static const char *json_escape(unsigned char c)
{
	switch (c) {
	case '"':
		return "\\\"";
	case '\\':
		return "\\\\";
	case '\n':
		return "\\n";
	case '\r':
		return "\\r";
	case '\t':
		return "\\t";
	case '\b':
		return "\\b";
	case '\f':
		return "\\f";
	}
	return NULL;
}

/* Runs of bytes that need no escape are copied at once: digests, names and
 * paths are all such runs, and the vertex lists of large jobs are mostly them. */
void strbuf_add_json_str(struct strbuf *sb, const char *s)
{
	const unsigned char *p = (const unsigned char *)s, *run = p;

	/* 1: the byte needs an escape (controls, '"', '\\'); NUL ends the string */
	static const unsigned char esc[256] = {
	    [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1, [0x07] = 1,
	    [0x08] = 1, [0x09] = 1, [0x0a] = 1, [0x0b] = 1, [0x0c] = 1, [0x0d] = 1, [0x0e] = 1,
	    [0x0f] = 1, [0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1, [0x15] = 1,
	    [0x16] = 1, [0x17] = 1, [0x18] = 1, [0x19] = 1, [0x1a] = 1, [0x1b] = 1, [0x1c] = 1,
	    [0x1d] = 1, [0x1e] = 1, [0x1f] = 1, ['"'] = 1,  ['\\'] = 1,
	};

	strbuf_addch(sb, '"');
	for (; *p; p++) {
		if (!esc[*p])
			continue;
		strbuf_add(sb, run, (size_t)(p - run));
		const char *e = json_escape(*p);
		if (e)
			strbuf_addstr(sb, e);
		else
			strbuf_addf(sb, "\\u%04x", *p);
		run = p + 1;
	}
	strbuf_add(sb, run, (size_t)(p - run));
	strbuf_addch(sb, '"');
}

void strbuf_add_base64(struct strbuf *sb, const void *data, size_t len)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *d = data;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)d[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)d[i + 1] << 8;
		if (i + 2 < len)
			v |= d[i + 2];
		char o[4] = {t[(v >> 18) & 63], t[(v >> 12) & 63],
			     i + 1 < len ? t[(v >> 6) & 63] : '=', i + 2 < len ? t[v & 63] : '='};
		strbuf_add(sb, o, 4);
	}
}

void strbuf_reset(struct strbuf *sb)
{
	sb->len = 0;
	if (sb->buf)
		sb->buf[0] = '\0';
}

void strbuf_release(struct strbuf *sb)
{
	free(sb->buf);
	memset(sb, 0, sizeof(*sb));
}

char *strbuf_detach(struct strbuf *sb, size_t *ret_len)
{
	if (!sb->buf && grow(sb, 0))
		sb->buf[0] = '\0';
	char *b = sb->buf;
	/* a detached string usually lives on (an op's bytes, a why line): give
	 * back what doubling reserved beyond it */
	if (b && sb->cap > sb->len + 1 + 16) {
		char *fit = realloc(b, sb->len + 1);
		if (fit)
			b = fit;
	}
	if (ret_len)
		*ret_len = sb->len;
	memset(sb, 0, sizeof(*sb));
	return b;
}
