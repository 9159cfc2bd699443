/*
 * test_strbuf.c — the growable string: JSON string literals (every byte
 * value, escaped or copied as RFC 8259 allows) and formatting that fits and
 * that has to grow the buffer.
 */
#include <stdio.h>
#include <string.h>

#include "strbuf.h"
#include "tap.h"

/* The literal of s as the rule says, one byte at a time. */
static void reference(char *out, const unsigned char *s)
{
	char *o = out;
	*o++ = '"';
	for (; *s; s++) {
		switch (*s) {
		case '"':
			o += sprintf(o, "\\\"");
			break;
		case '\\':
			o += sprintf(o, "\\\\");
			break;
		case '\n':
			o += sprintf(o, "\\n");
			break;
		case '\r':
			o += sprintf(o, "\\r");
			break;
		case '\t':
			o += sprintf(o, "\\t");
			break;
		case '\b':
			o += sprintf(o, "\\b");
			break;
		case '\f':
			o += sprintf(o, "\\f");
			break;
		default:
			if (*s < 0x20)
				o += sprintf(o, "\\u%04x", *s);
			else
				*o++ = (char)*s;
		}
	}
	*o++ = '"';
	*o = '\0';
}

/* Each byte 1..255 alone, between plain runs, and all of them in one string. */
static void test_json_str_bytes(void)
{
	unsigned char all[256];
	char want[256 * 6 + 3];
	struct strbuf sb = STRBUF_INIT;
	for (int c = 1; c < 256; c++) {
		unsigned char s[8] = {'a', 'b', (unsigned char)c, 'c', 'd', 0};
		reference(want, s);
		strbuf_reset(&sb);
		strbuf_add_json_str(&sb, (const char *)s);
		CHECK_EQ_STR(sb.buf, want);
		all[c - 1] = (unsigned char)c;
	}
	all[255] = 0;
	reference(want, all);
	strbuf_reset(&sb);
	strbuf_add_json_str(&sb, (const char *)all);
	CHECK_EQ_STR(sb.buf, want);
	strbuf_reset(&sb);
	strbuf_add_json_str(&sb, "");
	CHECK_EQ_STR(sb.buf, "\"\"");
	strbuf_release(&sb);
}

/* strbuf_addf: short pieces formatted in the room there is, long ones after
 * growing; the text is the same as snprintf's either way. */
static void test_addf(void)
{
	struct strbuf sb = STRBUF_INIT;
	char want[4096], big[3000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	strbuf_addf(&sb, "#%d %s", 7, "short");
	strbuf_addf(&sb, "|%s|", big);
	strbuf_addf(&sb, "%.1fs", 0.25);
	snprintf(want, sizeof(want), "#%d %s|%s|%.1fs", 7, "short", big, 0.25);
	CHECK_EQ_STR(sb.buf, want);
	CHECK_EQ_INT(sb.len, strlen(want));
	strbuf_release(&sb);
}

int main(void)
{
	RUN(test_json_str_bytes);
	RUN(test_addf);
	return tap_done();
}
