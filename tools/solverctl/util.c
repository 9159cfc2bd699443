/*
 * util.c — what every subcommand needs: buffers, whole-file reads, messages,
 * times, and the tree copy of `export`.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "solverctl.h"

static void oom(void)
{
	fputs("solverctl: out of memory\n", stderr);
	exit(CTL_EXIT_FAIL);
}

void *ctl_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *ctl_xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		oom();
	return p;
}

char *ctl_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	if (vasprintf(&p, fmt, ap) < 0)
		oom();
	va_end(ap);
	return p;
}

void ctl_buf_add(struct ctl_buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *s = realloc(b->s, cap);
		if (!s)
			oom();
		b->s = s;
		b->cap = cap;
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void ctl_buf_addstr(struct ctl_buf *b, const char *s)
{
	ctl_buf_add(b, s, strlen(s));
}

void ctl_buf_addf(struct ctl_buf *b, const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom();
	ctl_buf_add(b, p, (size_t)n);
	free(p);
}

void ctl_buf_reset(struct ctl_buf *b)
{
	b->len = 0;
	if (b->s)
		b->s[0] = '\0';
}

void ctl_buf_release(struct ctl_buf *b)
{
	free(b->s);
	*b = (struct ctl_buf){0};
}

void ctl_err(const char *fmt, ...)
{
	va_list ap;

	fputs("solverctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int ctl_read_fd(int fd, struct ctl_buf *ret)
{
	char buf[65536];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		ctl_buf_add(ret, buf, (size_t)n);
	}
	if (!ret->s)
		ctl_buf_add(ret, "", 0);
	return 0;
}

int ctl_read_file(const char *path, struct ctl_buf *ret)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -errno;
	r = ctl_read_fd(fd, ret);
	close(fd);
	return r;
}

char *ctl_read_line(const char *path)
{
	struct ctl_buf b = {0};
	int r = ctl_read_file(path, &b);

	if (r < 0) {
		ctl_buf_release(&b);
		errno = -r;
		return NULL;
	}
	while (b.len && (b.s[b.len - 1] == '\n' || b.s[b.len - 1] == '\r'))
		b.s[--b.len] = '\0';
	return b.s;
}

static int copy_file(int sfd, const char *name, int dfd, mode_t mode, const char *what)
{
	int in = openat(sfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int out, r = 0;
	char buf[65536];

	if (in < 0) {
		r = -errno;
		ctl_err("%s: %s", what, strerror(-r));
		return r;
	}
	/* a read-only file of an earlier copy is replaced, not opened for writing */
	if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT) {
		r = -errno;
		ctl_err("cannot replace %s: %s", what, strerror(-r));
		close(in);
		return r;
	}
	out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode & 07777);
	if (out < 0) {
		r = -errno;
		ctl_err("cannot create %s: %s", what, strerror(-r));
		close(in);
		return r;
	}
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0)
				r = -errno;
			break;
		}
		r = sfs_write_all(out, buf, (size_t)n);
		if (r < 0)
			break;
	}
	if (close(out) < 0 && r == 0)
		r = -errno;
	close(in);
	if (r < 0)
		ctl_err("copying %s: %s", what, strerror(-r));
	return r;
}

/* Copies the entries of directory SFD into DFD; PATH names SFD in messages.
 * Depth is bounded by the tree's own depth (a result is at most 256 levels,
 * README "Limits"), so the recursion is. */
static int copy_dir(int sfd, int dfd, const char *path, int depth)
{
	DIR *d;
	struct dirent *e;
	int r = 0;

	if (depth > 512) {
		ctl_err("%s: too deep", path);
		return -ELOOP;
	}
	int fd = dup(sfd);
	if (fd < 0 || !(d = fdopendir(fd))) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		ctl_err("%s: %s", path, strerror(-r));
		return r;
	}
	while (r == 0 && (errno = 0, e = readdir(d))) {
		struct stat st;
		char *what;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		what = ctl_xasprintf("%s/%s", path, e->d_name);
		if (fstatat(sfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = -errno;
			ctl_err("%s: %s", what, strerror(-r));
		} else if (S_ISDIR(st.st_mode)) {
			int s2, d2;
			if (mkdirat(dfd, e->d_name, 0700) < 0 && errno != EEXIST) {
				r = -errno;
				ctl_err("cannot create %s: %s", what, strerror(-r));
			} else if ((s2 = openat(sfd, e->d_name,
						O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
				r = -errno;
				ctl_err("%s: %s", what, strerror(-r));
			} else {
				d2 = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
				if (d2 < 0) {
					r = -errno;
					ctl_err("%s: %s", what, strerror(-r));
				} else {
					r = copy_dir(s2, d2, what, depth + 1);
					if (r == 0 && fchmod(d2, st.st_mode & 07777) < 0)
						r = -errno;
					close(d2);
				}
				close(s2);
			}
		} else if (S_ISREG(st.st_mode)) {
			r = copy_file(sfd, e->d_name, dfd, st.st_mode, what);
		} else if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t n = readlinkat(sfd, e->d_name, target, sizeof(target) - 1);
			if (n < 0) {
				r = -errno;
				ctl_err("%s: %s", what, strerror(-r));
			} else {
				target[n] = '\0';
				unlinkat(dfd, e->d_name, 0); /* an earlier copy's */
				if (symlinkat(target, dfd, e->d_name) < 0) {
					r = -errno;
					ctl_err("cannot create %s: %s", what, strerror(-r));
				}
			}
		}
		/* a result holds only dirs, files and symlinks: nothing else to copy */
		free(what);
	}
	if (r == 0 && errno) {
		r = -errno;
		ctl_err("%s: %s", path, strerror(-r));
	}
	closedir(d);
	return r;
}

int ctl_copy_tree(const char *src, const char *dst)
{
	int sfd, dfd, r;

	sfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0) {
		r = -errno;
		ctl_err("%s: %s", src, strerror(-r));
		return r;
	}
	if (mkdir(dst, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		ctl_err("cannot create %s: %s", dst, strerror(-r));
		close(sfd);
		return r;
	}
	dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		r = -errno;
		ctl_err("%s: %s", dst, strerror(-r));
		close(sfd);
		return r;
	}
	r = copy_dir(sfd, dfd, src, 0);
	close(dfd);
	close(sfd);
	return r;
}

double ctl_parse_time(const char *s)
{
	struct tm tm = {0};
	const char *p;
	double frac = 0, scale = 0.1;

	if (!s)
		return -1;
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -1;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
			frac += (*p - '0') * scale;
	}
	if (*p != 'Z')
		return -1;
	return (double)timegm(&tm) + frac;
}

double ctl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void ctl_fmt_duration(char *out, size_t n, double secs)
{
	if (secs < 0)
		secs = 0;
	if (secs < 60)
		snprintf(out, n, "%.1fs", secs);
	else if (secs < 3600)
		snprintf(out, n, "%dm%02ds", (int)secs / 60, (int)secs % 60);
	else
		snprintf(out, n, "%dh%02dm", (int)(secs / 3600), (int)secs % 3600 / 60);
}
