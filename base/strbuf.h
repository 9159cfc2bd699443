/*
 * strbuf.h — a growable byte buffer (git's strbuf, reduced).
 *
 * The buffer is always NUL-terminated beyond len.  _release frees the
 * contents; _detach hands the storage to the caller.  Allocation failures are
 * sticky: sb->oom is set and later appends are ignored, so call sites may
 * append freely and check once.
 */
#ifndef SFS_STRBUF_H
#define SFS_STRBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strbuf {
	char *buf;
	size_t len;
	size_t cap;
	bool oom;
};

#define STRBUF_INIT                                                                                \
	{                                                                                          \
		NULL, 0, 0, false                                                                  \
	}

void strbuf_add(struct strbuf *sb, const void *data, size_t len);
void strbuf_addstr(struct strbuf *sb, const char *s);
void strbuf_addch(struct strbuf *sb, char c);
/* v in decimal, as %llu and %lld write it, without printf (base/numtext.h). */
void strbuf_addu(struct strbuf *sb, uint64_t v);
void strbuf_addi(struct strbuf *sb, int64_t v);
void strbuf_addf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap);
/* JSON string literal with quotes (RFC 8259 escapes). */
void strbuf_add_json_str(struct strbuf *sb, const char *s);
void strbuf_add_base64(struct strbuf *sb, const void *data, size_t len);
void strbuf_reset(struct strbuf *sb);
void strbuf_release(struct strbuf *sb);
/* Returns the buffer (never NULL unless oom), shrunk to fit, and resets sb. */
char *strbuf_detach(struct strbuf *sb, size_t *ret_len);

#endif
