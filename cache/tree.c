/*
 * tree.c — result trees: immutable file trees kept as a manifest blob in the store.
 *
 * Entry order: the root "." always comes first, every other entry follows in
 * bytewise (strcmp) order of its path.  (Pure bytewise order would put names
 * such as "-x" before "."; tree.h promises entries[0] is the root, so the root
 * is special-cased everywhere we compare.)  Because all paths under "a/" share
 * that prefix they form one contiguous run, which is what makes tree_find,
 * tree_next_child and subtree extraction binary searches rather than scans.
 *
 * A loaded tree is never modified, so it may be shared between threads without
 * locks; nothing in this file keeps global state.
 */
#include "tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array.h"
#include "clock.h"
#include "err.h"
#include "statcache.h"

/* ---- paths and ordering ---- */

static bool is_root(const char *path)
{
	return path[0] == '.' && path[1] == '\0';
}

/* Root first, then bytewise. */
static int path_cmp(const char *a, const char *b)
{
	bool ra = is_root(a), rb = is_root(b);

	if (ra || rb)
		return (int)rb - (int)ra;
	return strcmp(a, b);
}

static int entry_cmp(const void *a, const void *b)
{
	return path_cmp(((const struct tree_entry *)a)->path, ((const struct tree_entry *)b)->path);
}

/* A relative path of non-empty components, none "." or "..". */
static bool path_valid(const char *p)
{
	if (!*p || *p == '/')
		return false;
	while (*p) {
		const char *e = strchrnul(p, '/');
		size_t l = (size_t)(e - p);
		if (l == 0 || (l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p = *e ? e + 1 : e;
		if (*e && !*p)
			return false; /* trailing slash */
	}
	return true;
}

/* Compares the first len+1 bytes of path with prefix + '/'. */
static int prefix_cmp(const char *path, const char *prefix, size_t len)
{
	int r = strncmp(path, prefix, len);

	if (r)
		return r;
	return (int)(unsigned char)path[len] - (int)'/';
}

/*
 * [*lo, *hi) = the entries strictly under dir (all of [1, n) for the root).
 * Entries with the prefix "dir/" are contiguous in our order.
 */
static void descendants(const struct tree *t, const char *dir, size_t *lo, size_t *hi)
{
	size_t len = strlen(dir), a = 1, b = t->n;

	if (is_root(dir)) {
		*lo = 1;
		*hi = t->n > 1 ? t->n : 1;
		return;
	}
	while (a < b) { /* first entry >= "dir/" */
		size_t m = a + (b - a) / 2;
		if (prefix_cmp(t->entries[m].path, dir, len) < 0)
			a = m + 1;
		else
			b = m;
	}
	*lo = a;
	b = t->n;
	while (a < b) { /* first entry past "dir/..." */
		size_t m = a + (b - a) / 2;
		if (prefix_cmp(t->entries[m].path, dir, len) <= 0)
			a = m + 1;
		else
			b = m;
	}
	*hi = a;
}

/* ---- growable arrays ---- */

struct buf {
	char *p;
	size_t len, cap;
};

static int buf_add(struct buf *b, const void *data, size_t len)
{
	if (sfs_grow((void **)&b->p, &b->cap, b->len + len + 1, 1) < 0)
		return -ENOMEM;
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
	return 0;
}

struct evec {
	struct tree_entry *v;
	size_t n, cap;
};

/* Appends a copy of e (path duplicated). */
static int evec_push(struct evec *ev, const struct tree_entry *e, const char *path)
{
	if (sfs_grow((void **)&ev->v, &ev->cap, ev->n + 1, sizeof(*ev->v)) < 0)
		return -ENOMEM;
	struct tree_entry *d = &ev->v[ev->n];
	*d = *e;
	d->path = strdup(path);
	if (!d->path)
		return -ENOMEM;
	ev->n++;
	return 0;
}

static void evec_release(struct evec *ev)
{
	for (size_t i = 0; i < ev->n; i++)
		free(ev->v[i].path);
	free(ev->v);
	ev->v = NULL;
	ev->n = ev->cap = 0;
}

/* ---- manifests and ids ---- */

static int manifest_add(struct buf *b, const struct tree_entry *e)
{
	char head[64];
	int n = snprintf(head, sizeof(head), "%c%c%04o%c%" PRIu64 "%c", e->type, 0, e->mode & 07777,
			 0, e->size, 0);
	int r;

	if ((r = buf_add(b, head, (size_t)n)) < 0 ||
	    (r = buf_add(b, e->hex, strlen(e->hex) + 1)) < 0)
		return r;
	return buf_add(b, e->path, strlen(e->path) + 1);
}

/* The manifest of sorted entries, or (with order != NULL) of e[order[i]]. */
static int manifest_build(const struct tree_entry *e, const size_t *order, size_t n,
			  struct buf *ret)
{
	struct buf b = {0};
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++)
		r = manifest_add(&b, &e[order ? order[i] : i]);
	if (r < 0) {
		free(b.p);
		return r;
	}
	*ret = b;
	return 0;
}

struct tree *tree_free(struct tree *t)
{
	if (!t)
		return NULL;
	for (size_t i = 0; i < t->n; i++)
		free(t->entries[i].path);
	free(t->entries);
	free(t);
	return NULL;
}

/* Wraps sorted, owned entries into a tree with the given manifest hex. */
static int tree_wrap(struct evec *ev, const char *hex, struct tree **ret)
{
	struct tree *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	snprintf(t->id, sizeof(t->id), "sha256:%s", hex);
	t->entries = ev->v;
	t->n = ev->n;
	for (size_t i = 0; i < t->n; i++)
		if (t->entries[i].type == 'f')
			t->total_size += t->entries[i].size;
	ev->v = NULL;
	ev->n = ev->cap = 0;
	*ret = t;
	return 0;
}

/* Stores the manifest of sorted entries and makes the tree (takes ev). */
static int tree_store(struct cas *c, struct evec *ev, struct tree **ret)
{
	char hex[SFS_HEX_SIZE];
	struct buf b;
	int r;

	if ((r = manifest_build(ev->v, NULL, ev->n, &b)) < 0)
		goto out;
	r = cas_put_buf(c, b.p ? b.p : "", b.len, hex);
	free(b.p);
	if (r == 0)
		r = tree_wrap(ev, hex, ret);
out:
	evec_release(ev);
	return r;
}

static int order_cmp(const void *a, const void *b, void *arg)
{
	const struct tree_entry *e = arg;
	return path_cmp(e[*(const size_t *)a].path, e[*(const size_t *)b].path);
}

void tree_compute_id(const struct tree_entry *e, size_t n, char ret_id[SFS_DIGEST_SIZE])
{
	size_t *order = NULL;
	struct buf b = {0};
	bool sorted = true;

	for (size_t i = 1; i < n && sorted; i++)
		sorted = path_cmp(e[i - 1].path, e[i].path) < 0;
	/* Callers should pass sorted entries; sort a permutation if they did not. */
	if (!sorted && (order = malloc(n * sizeof(*order)))) {
		for (size_t i = 0; i < n; i++)
			order[i] = i;
		qsort_r(order, n, sizeof(*order), order_cmp, (void *)e);
	}
	if (manifest_build(e, order, n, &b) < 0) {
		ret_id[0] = '\0'; /* out of memory: no id */
	} else {
		sfs_sha256_digest(b.p ? b.p : "", b.len, ret_id);
	}
	free(b.p);
	free(order);
}

/* ---- validation (shared by tree_from_entries and tree_load) ---- */

static bool entry_valid(const struct tree_entry *e, bool root)
{
	if (e->mode > 07777)
		return false;
	if (root ? !is_root(e->path) : !path_valid(e->path))
		return false;
	switch (e->type) {
	case 'd':
		return e->size == 0 && e->hex[0] == '\0';
	case 'f':
	case 'l':
		return sfs_is_hex(e->hex) != 0;
	default:
		return false;
	}
}

/* Sorted, unique, rooted at ".", and every parent is a dir of the tree. */
static bool entries_valid(const struct tree *t)
{
	if (t->n == 0 || !entry_valid(&t->entries[0], true))
		return false;
	if (t->entries[0].type != 'd')
		return t->n == 1; /* the subtree of a file or link */
	for (size_t i = 1; i < t->n; i++) {
		const char *p = t->entries[i].path;
		if (!entry_valid(&t->entries[i], false))
			return false;
		if (i > 1 && strcmp(t->entries[i - 1].path, p) >= 0)
			return false;
		const char *slash = strrchr(p, '/');
		if (!slash)
			continue;
		char *parent = strndup(p, (size_t)(slash - p));
		const struct tree_entry *pe = parent ? tree_find(t, parent) : NULL;
		free(parent);
		if (!pe || pe->type != 'd')
			return false;
	}
	return true;
}

int tree_from_entries(struct cas *c, const struct tree_entry *e, size_t n, struct tree **ret)
{
	return tree_from_entries_known(c, e, NULL, n, ret);
}

/* The promised blob of each entry not known to be there is there, with its size. */
static int blobs_promised(struct cas *c, const struct tree_entry *e, const bool *known, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (e[i].type == 'd' || (known && known[i]))
			continue;
		if (cas_size(c, e[i].hex) != (int64_t)e[i].size)
			return -ENOENT; /* the promised blob is missing (or not that blob) */
	}
	return 0;
}

int tree_from_entries_known(struct cas *c, const struct tree_entry *e, const bool *known, size_t n,
			    struct tree **ret)
{
	struct evec ev = {0};
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++)
		r = evec_push(&ev, &e[i], e[i].path);
	if (r < 0)
		goto fail;
	qsort(ev.v, ev.n, sizeof(*ev.v), entry_cmp);
	struct tree view = {.n = ev.n, .entries = ev.v};
	if (!entries_valid(&view)) {
		r = -EINVAL;
		goto fail;
	}
	/* The caller's order: known[] goes with e[], not with the sorted copy. */
	if ((r = blobs_promised(c, e, known, n)) < 0)
		goto fail;
	return tree_store(c, &ev, ret);
fail:
	evec_release(&ev);
	return r;
}

/* ---- loading ---- */

/* Takes the next NUL-terminated field of [*p, end). */
static const char *next_field(const char **p, const char *end)
{
	const char *f = *p;
	const char *z = f < end ? memchr(f, '\0', (size_t)(end - f)) : NULL;

	if (!z)
		return NULL;
	*p = z + 1;
	return f;
}

static bool parse_u64(const char *s, uint64_t *ret)
{
	uint64_t v = 0;

	if (!*s || (s[0] == '0' && s[1]))
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*ret = v;
	return true;
}

static bool parse_mode(const char *s, unsigned *ret)
{
	unsigned v = 0;

	if (strlen(s) != 4)
		return false;
	for (int i = 0; i < 4; i++) {
		if (s[i] < '0' || s[i] > '7')
			return false;
		v = v * 8 + (unsigned)(s[i] - '0');
	}
	*ret = v;
	return true;
}

static int parse_entry(const char **p, const char *end, struct tree_entry *e, const char **path)
{
	const char *type = next_field(p, end), *mode = next_field(p, end);
	const char *size = next_field(p, end), *hex = next_field(p, end);

	*path = next_field(p, end);
	if (!*path || strlen(type) != 1 || !parse_mode(mode, &e->mode) ||
	    !parse_u64(size, &e->size) || strlen(hex) >= SFS_HEX_SIZE)
		return -EBADMSG;
	e->type = type[0];
	strcpy(e->hex, hex);
	return 0;
}

static int manifest_parse(const char *m, size_t len, struct evec *ev)
{
	const char *p = m, *end = m + len;
	int r;

	while (p < end) {
		struct tree_entry e = {0};
		const char *path;
		if ((r = parse_entry(&p, end, &e, &path)) < 0 || (r = evec_push(ev, &e, path)) < 0)
			return r;
	}
	return 0;
}

int tree_load(struct cas *c, const char *id, struct tree **ret)
{
	const char *hex = strncmp(id, "sha256:", 7) == 0 ? id + 7 : id;
	char check[SFS_HEX_SIZE];
	struct evec ev = {0};
	char *m = NULL;
	size_t len = 0;
	int r;

	if (!sfs_is_hex(hex))
		return -EINVAL;
	if ((r = cas_read_all(c, hex, &m, &len)) < 0)
		return r;
	sfs_sha256_hex(m, len, check);
	if (strcmp(check, hex) != 0) {
		r = -EIO; /* the blob was damaged on disk */
		goto out;
	}
	if ((r = manifest_parse(m, len, &ev)) < 0)
		goto out;
	struct tree view = {.n = ev.n, .entries = ev.v};
	if (!entries_valid(&view)) {
		r = -EBADMSG;
		goto out;
	}
	r = tree_wrap(&ev, hex, ret);
out:
	evec_release(&ev);
	free(m);
	return r;
}

/* ---- lookups ---- */

const struct tree_entry *tree_find(const struct tree *t, const char *path)
{
	size_t a = 1, b = t->n;

	if (t->n == 0)
		return NULL;
	if (is_root(path))
		return &t->entries[0];
	while (a < b) {
		size_t m = a + (b - a) / 2;
		int k = strcmp(t->entries[m].path, path);
		if (k == 0)
			return &t->entries[m];
		if (k < 0)
			a = m + 1;
		else
			b = m;
	}
	return NULL;
}

/*
 * *cursor is 0 before the first call, afterwards the index of the next entry to
 * look at.  A grandchild "dir/x/..." is skipped together with all its siblings
 * under "dir/x/" by one binary search, so a walk costs O(children · log n).
 */
const struct tree_entry *tree_next_child(const struct tree *t, const char *dir, size_t *cursor)
{
	const struct tree_entry *d = tree_find(t, dir);
	size_t lo, hi, plen = is_root(dir) ? 0 : strlen(dir) + 1;

	if (!d || d->type != 'd')
		return NULL;
	descendants(t, dir, &lo, &hi);
	size_t i = *cursor < lo ? lo : *cursor;
	while (i < hi) {
		const char *p = t->entries[i].path;
		const char *slash = strchr(p + plen, '/');
		if (!slash) {
			*cursor = i + 1;
			return &t->entries[i];
		}
		/* Jump past every path under "dir/x/". */
		size_t xl = (size_t)(slash - p), a = i + 1, b = hi;
		while (a < b) {
			size_t m = a + (b - a) / 2;
			if (prefix_cmp(t->entries[m].path, p, xl) <= 0)
				a = m + 1;
			else
				b = m;
		}
		i = a;
	}
	*cursor = hi;
	return NULL;
}

const char *tree_entry_name(const struct tree_entry *e)
{
	const char *s = strrchr(e->path, '/');
	return s ? s + 1 : e->path;
}

/* ---- subtrees ---- */

int tree_subtree(struct cas *c, const struct tree *t, const char *path, struct tree **ret)
{
	const struct tree_entry *e = tree_find(t, path);
	struct evec ev = {0};
	size_t lo, hi, plen;
	int r;

	if (!e)
		return -ENOENT;
	if ((r = evec_push(&ev, e, ".")) < 0)
		goto fail;
	if (e->type == 'd') {
		descendants(t, path, &lo, &hi);
		plen = is_root(path) ? 0 : strlen(path) + 1;
		for (size_t i = lo; i < hi && r == 0; i++)
			r = evec_push(&ev, &t->entries[i], t->entries[i].path + plen);
		if (r < 0)
			goto fail;
	}
	return tree_store(c, &ev, ret);
fail:
	evec_release(&ev);
	return r;
}

/* ---- materialize ---- */

static int write_link(struct cas *c, const struct tree_entry *e, const char *dest)
{
	char *target = NULL;
	size_t len = 0;
	int r;

	if ((r = cas_read_all(c, e->hex, &target, &len)) < 0)
		return r;
	if (len != e->size || strlen(target) != len)
		r = -EIO;
	else if (symlink(target, dest) < 0)
		r = -errno;
	free(target);
	return r;
}

/* Never set-uid or set-gid: a materialised tree is run, not trusted. */
static unsigned file_mode(const struct tree_entry *e, bool ro)
{
	unsigned m = e->mode & ~(unsigned)(S_ISUID | S_ISGID);

	return ro ? m & ~0222u : m;
}

/* Writes one entry at dest; dirs get 0700 until their content is in. */
static int write_entry(struct cas *c, const struct tree_entry *e, const char *dest, bool ro)
{
	switch (e->type) {
	case 'd':
		return mkdir(dest, 0700) < 0 ? -errno : 0;
	case 'f':
		return cas_copy_out(c, e->hex, dest, file_mode(e, ro));
	default:
		return write_link(c, e, dest);
	}
}

static int materialize_dir(struct cas *c, const struct tree *t, const struct tree_entry *d,
			   const char *dest, bool ro, char **ret_msg)
{
	size_t lo, hi, plen = is_root(d->path) ? 0 : strlen(d->path) + 1;
	char *p = NULL;
	int r = 0;

	descendants(t, d->path, &lo, &hi);
	for (size_t i = lo; i < hi && r == 0; i++) {
		if (asprintf(&p, "%s/%s", dest, t->entries[i].path + plen) < 0)
			return -ENOMEM;
		if ((r = write_entry(c, &t->entries[i], p, ro)) < 0)
			sfs_errf(ret_msg, r, "cannot write %s: %s", p, strerror(-r));
		free(p);
	}
	/* Modes last, deepest first, so a read-only dir is filled before it closes. */
	for (size_t i = hi; i-- > lo && r == 0;) {
		const struct tree_entry *e = &t->entries[i];
		if (e->type != 'd')
			continue;
		if (asprintf(&p, "%s/%s", dest, e->path + plen) < 0)
			return -ENOMEM;
		if (chmod(p, file_mode(e, ro)) < 0)
			r = sfs_errf(ret_msg, errno, "cannot chmod %s: %m", p);
		free(p);
	}
	if (r == 0 && chmod(dest, file_mode(d, ro)) < 0)
		r = sfs_errf(ret_msg, errno, "cannot chmod %s: %m", dest);
	return r;
}

int tree_materialize(struct cas *c, const struct tree *t, const char *path, const char *dest,
		     bool readonly, char **ret_msg)
{
	const struct tree_entry *e = tree_find(t, path ? path : ".");
	int r;

	if (!e)
		return sfs_errf(ret_msg, ENOENT, "%s: no such path in %s", path, t->id);
	if ((r = write_entry(c, e, dest, readonly)) < 0)
		return sfs_errf(ret_msg, r, "cannot write %s: %s", dest, strerror(-r));
	if (e->type != 'd')
		return 0;
	if ((r = materialize_dir(c, t, e, dest, readonly, ret_msg)) < 0)
		cas_rmtree(dest); /* dest did not exist before us */
	return r;
}

/* ---- verification ---- */

static int size_error(const struct tree_entry *e, int64_t size, char **ret_msg)
{
	return sfs_errf(ret_msg, EIO, "%s: blob %s has %" PRId64 " bytes, expected %" PRIu64,
			e->path, e->hex, size, e->size);
}

/* Reads blob hex, which should have e->size bytes, and hashes it: its presence, its
 * size and its bytes in one read (a row's size is its data's length); -EIO with a
 * message when its size or bytes changed. */
static int verify_hash(struct cas *c, const struct tree_entry *e, char **ret_msg)
{
	char *buf = NULL, hex[SFS_HEX_SIZE];
	size_t len = 0;
	int r = cas_read_max(c, e->hex, (size_t)e->size, &buf, &len);
	if (r == -EFBIG || (r == 0 && len != e->size)) {
		free(buf);
		return size_error(e, (int64_t)len, ret_msg);
	}
	if (r < 0)
		return sfs_errf(ret_msg, r, "%s: blob %s: %s", e->path, e->hex, strerror(-r));
	sfs_sha256_hex(buf, len, hex);
	free(buf);
	if (strcmp(hex, e->hex) == 0)
		return 0;
	/* the next put of these bytes writes the blob again (it trusts a name
	 * with the right size) */
	cas_remove(c, e->hex);
	return sfs_errf(ret_msg, EIO, "%s: blob %s is corrupt (its bytes hash to %s): removed",
			e->path, e->hex, hex);
}

/*
 * Every blob must be there with its size; the small ones are hashed too, as
 * long as that stays cheap (TREE_VERIFY_HASH_FILE bytes a blob, at most
 * TREE_VERIFY_HASH_BUDGET for the tree): a flipped byte in a config file is
 * caught, a tree of large files costs one stat a file.
 */
int tree_verify(struct cas *c, const struct tree *t, char **ret_msg)
{
	uint64_t budget = TREE_VERIFY_HASH_BUDGET;

	for (size_t i = 0; i < t->n; i++) {
		const struct tree_entry *e = &t->entries[i];
		if (e->type == 'd')
			continue;
		if (e->type == 'f' && e->size <= TREE_VERIFY_HASH_FILE && e->size <= budget) {
			int r = verify_hash(c, e, ret_msg);
			if (r < 0)
				return r;
			budget -= e->size;
			continue;
		}
		int64_t s = cas_size(c, e->hex);
		if (s < 0)
			return sfs_errf(ret_msg, (int)s, "%s: blob %s: %s", e->path, e->hex,
					strerror((int)-s));
		if ((uint64_t)s != e->size)
			return size_error(e, s, ret_msg);
	}
	return 0;
}

/* ---- globs ---- */

/* Splits s in place on '/', dropping empty components; returns the count. */
static size_t split_path(char *s, char **seg)
{
	char *save = NULL;
	size_t n = 0;

	for (char *tok = strtok_r(s, "/", &save); tok; tok = strtok_r(NULL, "/", &save))
		seg[n++] = tok;
	return n;
}

static size_t count_parts(const char *s)
{
	size_t n = 1;
	for (; *s; s++)
		n += *s == '/';
	return n;
}

/*
 * Dynamic programming over components, from the end: row[j] says whether the
 * pattern components from i on match the path components from j on.  "**"
 * matches zero or more components; others are fnmatch'd one component each.
 */
static bool glob_segments(char **ps, size_t np, char **ss, size_t ns, bool *row, bool *next)
{
	for (size_t j = 0; j <= ns; j++)
		next[j] = j == ns;
	for (size_t i = np; i-- > 0;) {
		bool star = strcmp(ps[i], "**") == 0;
		for (size_t j = ns + 1; j-- > 0;) {
			if (star)
				row[j] = next[j] || (j < ns && row[j + 1]);
			else
				row[j] = j < ns && next[j + 1] && fnmatch(ps[i], ss[j], 0) == 0;
		}
		memcpy(next, row, (ns + 1) * sizeof(*row));
	}
	return next[0];
}

bool tree_glob_match(const char *pattern, const char *path)
{
	size_t np = count_parts(pattern), ns = count_parts(path);
	char *pc = strdup(pattern), *sc = strdup(path);
	char **ps = malloc(np * sizeof(*ps)), **ss = malloc(ns * sizeof(*ss));
	bool *row = malloc((ns + 1) * sizeof(*row)), *next = malloc((ns + 1) * sizeof(*next));
	bool m = false;

	if (pc && sc && ps && ss && row && next) {
		np = split_path(pc, ps);
		ns = split_path(sc, ss);
		m = glob_segments(ps, np, ss, ns, row, next);
	}
	free(pc), free(sc), free(ps), free(ss), free(row), free(next);
	return m;
}

static bool match_any(const char *const *globs, const char *path)
{
	for (; globs && *globs; globs++)
		if (tree_glob_match(*globs, path))
			return true;
	return false;
}

/* ---- ingest ---- */

struct walk {
	struct cas *c;
	struct cas_batch *batch; /* blobs are named after one syncfs at the end */
	const struct tree_ingest_opts *o;
	const char *host;
	struct evec ev;
	struct buf rel; /* the current path relative to the root */
	char **ret_msg;
	int depth;
	uint64_t bytes; /* file bytes stored so far */
};

static const char *type_name(mode_t m)
{
	if (S_ISFIFO(m))
		return "fifo";
	if (S_ISSOCK(m))
		return "socket";
	if (S_ISCHR(m))
		return "character device";
	if (S_ISBLK(m))
		return "block device";
	return "unknown file type";
}

static int walk_special(struct walk *w, mode_t m)
{
	char *msg = NULL;

	if (w->o && w->o->special == TREE_SPECIAL_SKIP) {
		if (w->o->warn && asprintf(&msg, "skipping %s/%s: %s is not supported in a tree",
					   w->host, w->rel.p, type_name(m)) >= 0) {
			w->o->warn(w->o->arg, msg);
			free(msg);
		}
		return 0;
	}
	return sfs_errf(w->ret_msg, EINVAL, "%s/%s: %s is not supported in a tree", w->host,
			w->rel.p, type_name(m));
}

/* Blobs are written as the daemon, whoever the files are read as. */
static struct sfs_creds *walk_creds(struct walk *w)
{
	return w->o ? w->o->creds : NULL;
}

static int walk_put_fd(struct walk *w, int fd, char hex[SFS_HEX_SIZE], uint64_t *size)
{
	sfs_creds_pause(walk_creds(w));
	int r = cas_batch_put_fd(w->batch, fd, hex, size);
	sfs_creds_resume(walk_creds(w));
	return r;
}

static int walk_put_buf(struct walk *w, const void *buf, size_t len, char hex[SFS_HEX_SIZE])
{
	sfs_creds_pause(walk_creds(w));
	int r = cas_batch_put_buf(w->batch, buf, len, hex);
	sfs_creds_resume(walk_creds(w));
	return r;
}

/* Counts a file against o->max_bytes before its bytes are stored. */
static int walk_count(struct walk *w, const struct stat *st)
{
	uint64_t max = w->o ? w->o->max_bytes : 0;

	w->bytes += (uint64_t)st->st_size;
	if (max && w->bytes > max)
		return sfs_errf(w->ret_msg, EFBIG, "%s: more than %" PRIu64 " bytes", w->host, max);
	return 0;
}

/*
 * A file the stat cache remembers with the metadata lst shows: its blob, if still
 * in the store and the file readable by whom the walk reads as (nothing is opened,
 * so access is checked: faccessat uses the entered fsuid).
 */
static bool walk_remembered(struct walk *w, int dfd, const char *name, const struct stat *lst,
			    struct tree_entry *e)
{
	struct sfs_statcache *sc = w->o ? w->o->statcache : NULL;
	bool have;

	if (!sfs_statcache_get(sc, lst, e->hex) ||
	    faccessat(dfd, name, R_OK, AT_EACCESS | AT_SYMLINK_NOFOLLOW) < 0)
		return false;
	sfs_creds_pause(walk_creds(w));
	have = cas_has(w->c, e->hex);
	sfs_creds_resume(walk_creds(w));
	e->size = (uint64_t)lst->st_size;
	e->mode = lst->st_mode & 07777;
	return have;
}

static int walk_file(struct walk *w, int dfd, const char *name, const struct stat *lst)
{
	struct sfs_statcache *sc = w->o ? w->o->statcache : NULL;
	struct tree_entry e = {.type = 'f'};
	int64_t start = sfs_now_ns();
	bool remembered = walk_remembered(w, dfd, name, lst, &e);
	struct stat st;
	int fd, r;

	sfs_statcache_count(sc, remembered);
	if (remembered) {
		if ((r = walk_count(w, lst)) < 0)
			return r;
		return evec_push(&w->ev, &e, w->rel.p);
	}
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return sfs_errf(w->ret_msg, errno, "cannot read %s/%s: %m", w->host, w->rel.p);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return sfs_errf(w->ret_msg, EAGAIN, "%s/%s changed while being read", w->host,
				w->rel.p);
	}
	if ((r = walk_count(w, &st)) == 0)
		r = walk_put_fd(w, fd, e.hex, &e.size);
	close(fd);
	if (r == -EFBIG)
		return r;
	if (r < 0)
		return sfs_errf(w->ret_msg, r, "cannot store %s/%s: %s", w->host, w->rel.p,
				strerror(-r));
	if (e.size == (uint64_t)st.st_size)
		sfs_statcache_put(sc, &st, e.hex, start);
	e.mode = st.st_mode & 07777;
	return evec_push(&w->ev, &e, w->rel.p);
}

static int walk_link(struct walk *w, int dfd, const char *name, const struct stat *st)
{
	struct tree_entry e = {.type = 'l', .mode = 0777};
	size_t cap = 0, need = (size_t)st->st_size + 1;
	char *target = NULL;
	ssize_t n;
	int r;

	for (;;) { /* the link may grow between lstat and readlink */
		if (sfs_grow((void **)&target, &cap, need, 1) < 0) {
			free(target);
			return -ENOMEM;
		}
		n = readlinkat(dfd, name, target, cap);
		if (n < 0 || (size_t)n < cap)
			break;
		need = cap + 1;
	}
	if (n < 0)
		r = sfs_errf(w->ret_msg, errno, "cannot read link %s/%s: %m", w->host, w->rel.p);
	else if ((r = walk_put_buf(w, target, (size_t)n, e.hex)) < 0)
		sfs_errf(w->ret_msg, r, "cannot store %s/%s: %s", w->host, w->rel.p, strerror(-r));
	free(target);
	if (r < 0)
		return r;
	e.size = (uint64_t)n;
	return evec_push(&w->ev, &e, w->rel.p);
}

static int walk_dir(struct walk *w, int dfd, bool taken);

static int walk_subdir(struct walk *w, int dfd, const char *name, bool taken)
{
	struct tree_entry e = {.type = 'd'};
	size_t before = w->ev.n;
	struct stat st;
	int fd, r;

	if (w->depth >= TREE_MAX_DEPTH)
		return sfs_errf(w->ret_msg, ELOOP, "%s/%s: more than %d levels of directories",
				w->host, w->rel.p, TREE_MAX_DEPTH);
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return sfs_errf(w->ret_msg, errno, "cannot open %s/%s: %m", w->host, w->rel.p);
	if (fstat(fd, &st) < 0) {
		r = sfs_errf(w->ret_msg, errno, "cannot stat %s/%s: %m", w->host, w->rel.p);
		close(fd);
		return r;
	}
	w->depth++;
	r = walk_dir(w, fd, taken); /* closes fd */
	w->depth--;
	if (r < 0 || (!taken && w->ev.n == before))
		return r; /* neither matched nor the parent of anything matched */
	e.mode = st.st_mode & 07777;
	return evec_push(&w->ev, &e, w->rel.p);
}

/* One directory entry; w->rel already names it. */
static int walk_one(struct walk *w, int dfd, const char *name, bool parent_taken)
{
	const char *const *inc = w->o ? w->o->include : NULL;
	const char *const *exc = w->o ? w->o->exclude : NULL;
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0; /* removed while we walk: it was never there */
		return sfs_errf(w->ret_msg, errno, "cannot stat %s/%s: %m", w->host, w->rel.p);
	}
	if (match_any(exc, w->rel.p))
		return 0; /* excluded dirs are not descended */
	bool taken = parent_taken || !inc || !*inc || match_any(inc, w->rel.p);
	if (S_ISDIR(st.st_mode))
		return walk_subdir(w, dfd, name, taken);
	if (!taken)
		return 0;
	if (S_ISREG(st.st_mode))
		return walk_file(w, dfd, name, &st);
	if (S_ISLNK(st.st_mode))
		return walk_link(w, dfd, name, &st);
	return walk_special(w, st.st_mode);
}

static int walk_dir(struct walk *w, int dfd, bool taken)
{
	DIR *d = fdopendir(dfd);
	size_t base = w->rel.len;
	struct dirent *de;
	int r = 0;

	if (!d) {
		close(dfd);
		return -ENOMEM;
	}
	while (r == 0 && (errno = 0, de = readdir(d))) {
		const char *n = de->d_name;
		if (!strcmp(n, ".") || !strcmp(n, ".."))
			continue;
		w->rel.len = base;
		if ((base && (r = buf_add(&w->rel, "/", 1)) < 0) ||
		    (r = buf_add(&w->rel, n, strlen(n))) < 0)
			break;
		r = walk_one(w, dirfd(d), n, taken);
	}
	int err = errno;
	w->rel.len = base;
	if (w->rel.p)
		w->rel.p[base] = '\0';
	if (r == 0 && err != 0)
		r = sfs_errf(w->ret_msg, err, "cannot list %s/%s: %s", w->host,
			     base ? w->rel.p : ".", strerror(err));
	closedir(d);
	return r;
}

/* The dir open at fd (taken over and closed) is the tree's root. */
static int ingest_dirfd(struct walk *w, int fd)
{
	struct tree_entry root = {.type = 'd'};
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
		close(fd);
		return sfs_errf(w->ret_msg, ENOTDIR, "%s changed while being read", w->host);
	}
	root.mode = st.st_mode & 07777;
	if ((r = evec_push(&w->ev, &root, ".")) < 0) {
		close(fd);
		return r;
	}
	return walk_dir(w, fd, false);
}

static int ingest_dir(struct walk *w)
{
	int fd = open(w->host, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return sfs_errf(w->ret_msg, errno, "cannot open %s: %m", w->host);
	return ingest_dirfd(w, fd);
}

/*
 * A single file becomes {".", "<basename>"}; filters apply to the base name.
 * The walk then runs in the file's directory with w->host set to that dir.
 */
static int ingest_file(struct walk *w)
{
	struct tree_entry root = {.type = 'd', .mode = 0755};
	const char *host = w->host, *base = strrchr(host, '/');
	size_t dlen = base ? (size_t)(base - host) : 0; /* the dir, without its slash */
	char *dir;
	int fd, r;

	base = base ? base + 1 : host;
	if ((r = evec_push(&w->ev, &root, ".")) < 0 ||
	    (r = buf_add(&w->rel, base, strlen(base))) < 0)
		return r;
	if (!(dir = strndup(host, dlen)))
		return -ENOMEM;
	fd = open(base == host ? "." : dlen ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = sfs_errf(w->ret_msg, errno, "cannot open the directory of %s: %m", host);
	} else {
		w->host = dir;
		r = walk_one(w, fd, base, false);
		w->host = host;
		close(fd);
	}
	free(dir);
	return r;
}

static int ingest_finish(struct walk *w, int r, struct tree **ret);

int tree_ingest(struct cas *c, const char *host_path, const struct tree_ingest_opts *o,
		struct tree **ret, char **ret_msg)
{
	struct walk w = {.c = c, .o = o, .host = host_path, .ret_msg = ret_msg};
	struct stat st;
	int r;

	if (lstat(host_path, &st) < 0)
		return sfs_errf(ret_msg, errno, "cannot stat %s: %m", host_path);
	if ((r = cas_batch_new(c, &w.batch)) < 0)
		return r;
	if (S_ISDIR(st.st_mode))
		r = ingest_dir(&w);
	else if (S_ISREG(st.st_mode))
		r = ingest_file(&w);
	else if (S_ISLNK(st.st_mode))
		r = sfs_errf(ret_msg, ELOOP, "%s: is a symbolic link (not followed)", host_path);
	else
		r = sfs_errf(ret_msg, EINVAL, "%s: not a directory or regular file", host_path);
	return ingest_finish(&w, r, ret);
}

/* Names the walk's blobs and stores its manifest (as the daemon), or undoes it. */
static int ingest_finish(struct walk *w, int r, struct tree **ret)
{
	struct sfs_creds *cr = walk_creds(w);

	sfs_creds_pause(cr);
	if (r == 0 && (r = cas_batch_commit(w->batch)) < 0)
		sfs_errf(w->ret_msg, r, "cannot store the files of %s: %s", w->host, strerror(-r));
	cas_batch_free(w->batch);
	free(w->rel.p);
	if (r < 0) {
		evec_release(&w->ev);
	} else {
		qsort(w->ev.v, w->ev.n, sizeof(*w->ev.v), entry_cmp);
		r = tree_store(w->c, &w->ev, ret);
	}
	sfs_creds_resume(cr);
	return r;
}

/* A regular file open at fd becomes {".", name}. */
static int ingest_filefd(struct walk *w, int fd, const char *name)
{
	struct tree_entry root = {.type = 'd', .mode = 0755}, e = {.type = 'f'};
	struct stat st;
	int r;

	if (!*name || strchr(name, '/'))
		return sfs_errf(w->ret_msg, EINVAL, "%s: bad file name \"%s\"", w->host, name);
	if (fstat(fd, &st) < 0)
		return sfs_errf(w->ret_msg, errno, "cannot stat %s: %m", w->host);
	if ((r = evec_push(&w->ev, &root, ".")) < 0 || (r = walk_count(w, &st)) < 0)
		return r;
	if ((r = walk_put_fd(w, fd, e.hex, &e.size)) < 0)
		return sfs_errf(w->ret_msg, r, "cannot store %s: %s", w->host, strerror(-r));
	e.mode = st.st_mode & 07777;
	return evec_push(&w->ev, &e, name);
}

int tree_ingest_fd(struct cas *c, int fd, const char *display, const char *name,
		   const struct tree_ingest_opts *o, struct tree **ret, char **ret_msg)
{
	struct walk w = {.c = c, .o = o, .host = display, .ret_msg = ret_msg};
	struct stat st;
	int r, dfd;

	if (fstat(fd, &st) < 0)
		return sfs_errf(ret_msg, errno, "cannot stat %s: %m", display);
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
		return sfs_errf(ret_msg, EINVAL, "%s: not a directory or regular file", display);
	if ((r = cas_batch_new(c, &w.batch)) < 0)
		return r;
	if (S_ISREG(st.st_mode)) {
		r = ingest_filefd(&w, fd, name);
	} else if ((dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		r = sfs_errf(ret_msg, errno, "cannot open %s: %m", display);
	} else {
		r = ingest_dirfd(&w, dfd); /* its own open file, read from the start */
	}
	return ingest_finish(&w, r, ret);
}
