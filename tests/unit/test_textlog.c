/*
 * test_textlog.c — the append-only log behind a job's status texts: bytes
 * spilled to an unlinked file read back at every offset, the memory tail given
 * back, and no loss when the file cannot be made.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "textlog.h"

/* Appends line after line (as progress does, committing after each) until the
 * log holds at least n bytes; the same bytes go to ref. */
static void fill(struct textlog *t, struct strbuf *ref, size_t n)
{
	for (int i = 0; textlog_len(t) < n; i++) {
		strbuf_addf(&t->tail, "{\"line\":%d}\n", i);
		strbuf_addf(ref, "{\"line\":%d}\n", i);
		textlog_commit(t);
	}
}

static void check_reads(const struct textlog *t, const struct strbuf *ref)
{
	char buf[5000];
	size_t got = 0;
	CHECK_EQ_INT(textlog_len(t), ref->len);
	/* windows across the file/tail boundary and odd sizes */
	for (size_t off = 0; off < ref->len; off += 4093) {
		CHECK_EQ_INT(textlog_read(t, off, buf, sizeof(buf), &got), 0);
		size_t want = ref->len - off < sizeof(buf) ? ref->len - off : sizeof(buf);
		CHECK_EQ_INT(got, want);
		CHECK(memcmp(buf, ref->buf + off, got) == 0);
	}
	CHECK_EQ_INT(textlog_read(t, ref->len + 10, buf, 10, &got), 0);
	CHECK_EQ_INT(got, 0);
	char *all = NULL;
	size_t n = 0;
	CHECK_EQ_INT(textlog_read_all(t, &all, &n), 0);
	CHECK_EQ_INT(n, ref->len);
	CHECK(all && memcmp(all, ref->buf, n) == 0 && all[n] == '\0');
	free(all);
}

/* A log spilling into dir (NULL: a scratch dir) filled to n bytes, ref the same. */
static void open_filled(struct textlog *t, struct strbuf *ref, const char *dir, size_t n)
{
	*ref = (struct strbuf)STRBUF_INIT;
	textlog_init(t, dir ? dir : tap_tmpdir());
	fill(t, ref, n);
}

/* Every byte of ref reads back (check_reads), then both are released. */
static void reads_back(struct textlog *t, struct strbuf *ref)
{
	check_reads(t, ref);
	textlog_release(t);
	strbuf_release(ref);
}

static void test_spills_and_reads_back(void)
{
	struct textlog t;
	struct strbuf ref;
	open_filled(&t, &ref, NULL, 5 * TEXTLOG_SPILL + 123);
	CHECK(t.fd >= 0);
	CHECK(t.spilled >= 5 * TEXTLOG_SPILL);
	CHECK(t.tail.len < TEXTLOG_SPILL); /* only the newest bytes in memory */
	CHECK_EQ_INT(t.err, 0);
	reads_back(&t, &ref);
}

static void test_small_log_stays_in_memory(void)
{
	struct textlog t;
	struct strbuf ref;
	open_filled(&t, &ref, NULL, 1000);
	CHECK_EQ_INT(t.fd, -1); /* no file for a small job */
	reads_back(&t, &ref);
}

static void test_no_loss_without_a_file(void)
{
	struct textlog t;
	struct strbuf ref;
	open_filled(&t, &ref, "/nonexistent/solverfs-textlog", 3 * TEXTLOG_SPILL);
	CHECK(t.err < 0); /* the spill failed ... */
	CHECK_EQ_INT(t.spilled, 0);
	reads_back(&t, &ref); /* ... and every byte is still there */
}

/* A spill keeps the tail's buffer for the next events (no regrowth from
 * nothing each time) unless one huge event grew it; strbuf_addf's output
 * longer than the room it first tries is whole. */
static void test_spill_keeps_an_ordinary_tail(void)
{
	struct textlog t;
	struct strbuf ref;
	open_filled(&t, &ref, NULL, TEXTLOG_SPILL + 10);
	CHECK(t.spilled > 0);
	CHECK(t.tail.cap > 0 && t.tail.cap <= 4 * TEXTLOG_SPILL);
	size_t big = 5 * TEXTLOG_SPILL;
	char *s = malloc(big + 1);
	CHECK(s != NULL);
	memset(s, 'x', big);
	s[big] = '\0';
	strbuf_addf(&t.tail, "<%s>", s);
	strbuf_addf(&ref, "<%s>", s);
	CHECK_EQ_INT(t.tail.len, ref.len - t.spilled);
	textlog_commit(&t);
	CHECK(t.tail.buf == NULL); /* the huge one's memory went back */
	free(s);
	reads_back(&t, &ref);
}

int main(void)
{
	RUN(test_spill_keeps_an_ordinary_tail);
	RUN(test_spills_and_reads_back);
	RUN(test_small_log_stays_in_memory);
	RUN(test_no_loss_without_a_file);
	return tap_done();
}
