/*
 * textlog.c — an append-only byte log spilled to an unlinked file (textlog.h).
 */
#include "textlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void textlog_init(struct textlog *t, const char *dir)
{
	*t = (struct textlog){.tail = STRBUF_INIT, .fd = -1, .dir = dir};
}

void textlog_release(struct textlog *t)
{
	strbuf_release(&t->tail);
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	t->spilled = 0;
}

/* An unlinked file in dir: O_TMPFILE, or a named one removed at once. */
static int open_unlinked(const char *dir)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR))
		return fd < 0 ? -errno : fd;
	char path[4096];
	if (snprintf(path, sizeof(path), "%s/textlog-XXXXXX", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	return fd;
}

static int write_all(int fd, const char *p, size_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

void textlog_commit(struct textlog *t)
{
	if (!t->dir || t->tail.len < TEXTLOG_SPILL || t->tail.oom)
		return;
	if (t->fd < 0) {
		int fd = open_unlinked(t->dir);
		if (fd < 0) {
			t->err = fd;
			t->dir = NULL; /* memory only from now on */
			return;
		}
		t->fd = fd;
	}
	int r = write_all(t->fd, t->tail.buf, t->tail.len, t->spilled);
	if (r < 0) {
		/* the file may hold part of it: the tail stays the truth */
		t->err = r;
		t->dir = NULL;
		return;
	}
	t->spilled += t->tail.len;
	/* a tail grown by ordinary events (to about twice the spill size) is kept
	 * for the next: releasing it made every spill grow a fresh one from 4 bytes,
	 * its last doublings mmap'd and faulted in anew; one grown by a huge event
	 * gives its memory back */
	if (t->tail.cap <= 4 * TEXTLOG_SPILL)
		strbuf_reset(&t->tail);
	else
		strbuf_release(&t->tail);
}

uint64_t textlog_len(const struct textlog *t)
{
	return t->spilled + t->tail.len;
}

int textlog_read(const struct textlog *t, uint64_t off, void *buf, size_t n, size_t *ret_n)
{
	char *out = buf;
	size_t done = 0;

	*ret_n = 0;
	while (done < n && off < t->spilled) {
		size_t want = n - done;
		if ((uint64_t)want > t->spilled - off)
			want = (size_t)(t->spilled - off);
		ssize_t r = pread(t->fd, out + done, want, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		done += (size_t)r;
		off += (uint64_t)r;
	}
	if (done < n && off < textlog_len(t)) {
		size_t at = (size_t)(off - t->spilled), m = t->tail.len - at;
		if (m > n - done)
			m = n - done;
		memcpy(out + done, t->tail.buf + at, m);
		done += m;
	}
	*ret_n = done;
	return 0;
}

int textlog_read_all(const struct textlog *t, char **ret, size_t *ret_len)
{
	uint64_t len = textlog_len(t);
	if (len >= SIZE_MAX)
		return -EFBIG;
	char *b = malloc((size_t)len + 1);
	size_t n = 0;
	if (!b)
		return -ENOMEM;
	int r = textlog_read(t, 0, b, (size_t)len, &n);
	if (r == 0 && n != len)
		r = -EIO;
	if (r < 0) {
		free(b);
		return r;
	}
	b[n] = '\0';
	*ret = b;
	*ret_len = n;
	return 0;
}
