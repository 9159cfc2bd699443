/*
 * textlog.h — an append-only byte log that lives in an unlinked file.
 *
 * A job's status and status.json grow by a few hundred bytes a vertex; kept in
 * memory they were the largest per-vertex cost of a solve.  A textlog keeps
 * only its newest bytes in memory (tail, a strbuf callers append to directly)
 * and moves them to an unlinked temporary file once they pass
 * TEXTLOG_SPILL bytes (textlog_commit), so the kernel's page cache holds the
 * rest.  Readers follow it by offset.  If the file cannot be made or written,
 * the bytes stay in memory: a textlog never loses what was appended.
 *
 * Not thread-safe: the owner's lock guards it.
 */
#ifndef SFS_TEXTLOG_H
#define SFS_TEXTLOG_H

#include <stdint.h>
#include <stddef.h>

#include "strbuf.h"

#define TEXTLOG_SPILL (64 * 1024)

struct textlog {
	struct strbuf tail; /* bytes [spilled, spilled + tail.len); append here */
	uint64_t spilled;   /* bytes in the file */
	int fd;		    /* -1 until the first spill */
	const char *dir;    /* where the file is made; NULL: memory only */
	int err;	    /* the last spill error (then the tail keeps growing) */
};

/* dir must outlive the log (NULL keeps everything in memory). */
void textlog_init(struct textlog *t, const char *dir);
void textlog_release(struct textlog *t);
/* After appending to t->tail: spills it to the file once it is large. */
void textlog_commit(struct textlog *t);
uint64_t textlog_len(const struct textlog *t);
/* Copies up to n bytes from off into buf; *ret_n is what was copied. */
int textlog_read(const struct textlog *t, uint64_t off, void *buf, size_t n, size_t *ret_n);
/* The whole log in one malloc'd, NUL-terminated buffer. */
int textlog_read_all(const struct textlog *t, char **ret, size_t *ret_len);

#endif
