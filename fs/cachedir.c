/*
 * cachedir.c — the cache/ subtree: keys/<id>/ (digest, output, results, links,
 * backlinks), results/<hex>/ (size, created, last_used, records, keys) and
 * stats.
 *
 * Everything is read from the key storage (cache/keystore.h, the main cache
 * manager's) and the results index (cache/results_index.h) at each call, so
 * the files are dynamic: direct_io, zero timeouts.  cache/stats and cache/du
 * are the slow ones: their content is made here but on cachesnap.c's thread
 * (fs_cache_snap_build), never in a FUSE request.  Key ids "sha256:<hex>"
 * (root keys) are named by their bare hex, other ids (25 chars of base36) as
 * they are.  Times in files are RFC 3339 UTC with nanoseconds, as in
 * status.json.
 *
 * cache/keys/ may hold hundreds of thousands of keys: its listing is one walk
 * of the key ids at opendir, and the entries are never stat'ed to list them.
 *
 * No state, no locks (the storage has its own).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blobrows.h"
#include "clock.h"
#include "exports.h"
#include "du.h"
#include "prune.h"
#include "results_index.h"
#include "strmap.h"
#include "fs.h"


static struct keystore *keystore_of(struct sfs_fs *fs)
{
	return cache_manager_keystore(fs->cache->main);
}

/* The key id a name stands for: bare hex is a "sha256:" root key. */
static int key_id_of(const char *name, char ret[CACHE_ID_SIZE])
{
	if (!name || !name[0] || strchr(name, ':') || strlen(name) >= CACHE_ID_SIZE - 8)
		return -ENOENT;
	if (sfs_is_hex(name))
		snprintf(ret, CACHE_ID_SIZE, "sha256:%s", name);
	else
		snprintf(ret, CACHE_ID_SIZE, "%s", name);
	return 0;
}

static const char *key_name_of(const char *id)
{
	return strncmp(id, "sha256:", 7) == 0 ? id + 7 : id;
}

static int stop_walk(const char *src, const struct cache_link *l, void *arg)
{
	*(bool *)arg = true;
	return 1;
}

/* A key is there while the storage holds a record, a link or facts about it. */
static bool key_known(struct sfs_fs *fs, const char *id)
{
	struct keystore *ks = keystore_of(fs);
	char digest[SFS_DIGEST_SIZE];
	bool found = false;
	int output;

	if (ks->ops->exists(ks, id))
		return true;
	if (ks->ops->get_info && ks->ops->get_info(ks, id, digest, &output) == 0)
		return true;
	ks->ops->walk_backlinks(ks, id, stop_walk, &found);
	return found;
}

static int cache_lookup(struct sfs_fs *fs, const struct fs_desc *d, const char *name,
			struct fs_desc *ret)
{
	char id[CACHE_ID_SIZE];
	struct results_index_entry e;
	int r;

	switch (d->kind) {
	case FS_CACHE_DIR:
		r = fs_kind_lookup(d, name, ret);
		if (r == 0 && ret->kind == FS_CACHE_EXPORT_LINK) {
			fs_desc_release(ret);
			return fs_cache_export_link(fs, ret); /* there while an export is */
		}
		return r;
	case FS_CACHE_KEY:
	case FS_CACHE_RESULT:
		return fs_kind_lookup(d, name, ret);
	case FS_CACHE_KEYS:
		if (key_id_of(name, id) < 0 || !key_known(fs, id))
			return -ENOENT;
		*ret = (struct fs_desc){.kind = FS_CACHE_KEY, .path = strdup(name)};
		return ret->path ? 0 : -ENOMEM;
	case FS_CACHE_RESULTS:
		if (!sfs_is_hex(name))
			return -ENOENT;
		r = results_index_get(fs->cache->db, name, &e);
		if (r < 0)
			return r;
		*ret = (struct fs_desc){.kind = FS_CACHE_RESULT};
		memcpy(ret->hex, name, SFS_HEX_SIZE);
		return 0;
	default:
		return -ENOTDIR;
	}
}

static int list_key(const char *id, void *arg)
{
	struct fs_dirlist *l = arg;
	struct fs_desc c = {.kind = FS_CACHE_KEY};

	c.path = (char *)key_name_of(id);
	if (!c.path[0] || strchr(c.path, ':') || strchr(c.path, '/'))
		return 0;
	return fs_dirlist_add(l, c.path, S_IFDIR, &c);
}

static int list_result(const char *id, void *arg)
{
	struct fs_dirlist *l = arg;
	struct fs_desc c = {.kind = FS_CACHE_RESULT};
	const char *hex = key_name_of(id);

	if (!sfs_is_hex(hex))
		return 0;
	memcpy(c.hex, hex, SFS_HEX_SIZE);
	return fs_dirlist_add(l, hex, S_IFDIR, &c);
}

static int cache_readdir(struct sfs_fs *fs, const struct fs_desc *d, struct fs_dirlist *l)
{
	struct keystore *ks = keystore_of(fs);

	struct fs_desc link;
	int r;

	switch (d->kind) {
	case FS_CACHE_DIR:
		r = fs_kind_list(d, l);
		if (r == 0 && fs_cache_export_link(fs, &link) == 0)
			r = fs_dirlist_add_kind(l, &link);
		return r;
	case FS_CACHE_KEY:
	case FS_CACHE_RESULT:
		return fs_kind_list(d, l);
	case FS_CACHE_KEYS:
		return ks->ops->walk(ks, list_key, l);
	case FS_CACHE_RESULTS:
		return results_index_walk(fs->cache->db, list_result, l);
	default:
		return -ENOTDIR;
	}
}

/* ---- file contents ---- */

static void add_field(struct strbuf *out, const char *s, char sep)
{
	strbuf_addstr(out, s && s[0] ? s : "-");
	strbuf_addch(out, sep);
}

static void add_link(struct strbuf *out, const struct cache_link *l, const char *key)
{
	strbuf_addf(out, "%d\t%d\t", l->input, l->output);
	add_field(out, l->digest, '\t');
	add_field(out, l->selector, '\t');
	add_field(out, key_name_of(key), '\n');
}

static int link_line(const struct cache_link *l, const char *target, void *arg)
{
	add_link(arg, l, target);
	return 0;
}

static int backlink_line(const char *src, const struct cache_link *l, void *arg)
{
	add_link(arg, l, src);
	return 0;
}

static int result_line(const struct cache_result *res, void *arg)
{
	char t[40];

	sfs_format_time(res->created_at, t);
	strbuf_addf(arg, "%s %s %s\n", res->id, res->result, t);
	return 0;
}

static int id_line(const char *id, void *arg)
{
	strbuf_addf(arg, "%s\n", id);
	return 0;
}

static int key_content(struct sfs_fs *fs, const struct fs_desc *d, struct strbuf *out)
{
	struct keystore *ks = keystore_of(fs);
	char id[CACHE_ID_SIZE], digest[SFS_DIGEST_SIZE];
	int output, r = key_id_of(d->path, id);

	if (r < 0)
		return r;
	switch (d->kind) {
	case FS_CACHE_KEY_DIGEST:
	case FS_CACHE_KEY_OUTPUT:
		if (!ks->ops->get_info || ks->ops->get_info(ks, id, digest, &output) < 0)
			return 0; /* not recorded (a key from before the keys table) */
		if (d->kind == FS_CACHE_KEY_DIGEST)
			strbuf_addf(out, "%s\n", digest);
		else
			strbuf_addf(out, "%d\n", output);
		return 0;
	case FS_CACHE_KEY_RESULTS:
		return ks->ops->walk_results(ks, id, result_line, out);
	case FS_CACHE_KEY_LINKS:
		r = keystore_walk_all_links(ks, id, link_line, out);
		return r == -EOPNOTSUPP ? 0 : r;
	default: /* FS_CACHE_KEY_BACKLINKS */
		return ks->ops->walk_backlinks(ks, id, backlink_line, out);
	}
}

static int result_content(struct sfs_fs *fs, const struct fs_desc *d, struct strbuf *out)
{
	struct results_index_entry e;
	char t[40];
	int r = results_index_get(fs->cache->db, d->hex, &e);

	if (r < 0)
		return r;
	switch (d->kind) {
	case FS_CACHE_RESULT_SIZE:
		strbuf_addf(out, "%" PRIu64 "\n", e.size);
		return 0;
	case FS_CACHE_RESULT_CREATED:
	case FS_CACHE_RESULT_LAST_USED:
		sfs_format_time(d->kind == FS_CACHE_RESULT_CREATED ? e.created : e.last_used, t);
		strbuf_addf(out, "%s\n", t);
		return 0;
	case FS_CACHE_RESULT_RECORDS:
		return results_index_walk_records(fs->cache->db, d->hex, id_line, out);
	default: /* FS_CACHE_RESULT_KEYS */
		return results_index_walk_keys(fs->cache->db, keystore_of(fs), d->hex, id_line,
					       out);
	}
}

static void du_line(struct strbuf *out, const struct cache_du_entry *e)
{
	char used[40], created[40];

	sfs_format_time(e->last_used, used);
	sfs_format_time(e->created, created);
	strbuf_addf(out, "%" PRIu64 "\t%" PRIu64 "\t%s\t%s\t%s\t%s\t", e->size, e->reclaimable,
		    e->reclaimable < e->size ? "shared" : "-", used, created,
		    e->pinned ? "pinned" : e->held ? "held" : "-");
	add_field(out, e->op, '\t');
	add_field(out, key_name_of(e->id), '\t');
	add_field(out, e->name, '\n');
}

/* docs/tree.md §6.2: a header, one line per result (largest first), the totals. */
static int du_content(struct sfs_fs *fs, struct strbuf *out)
{
	struct cache_du du;
	int r = cache_du_get(fs->cache, &du);

	if (r < 0)
		return r;
	strbuf_addstr(out, "# size\treclaimable\tshared\tlast_used\tcreated\tpinned\top"
			   "\tresult\tname\n");
	for (size_t i = 0; i < du.n; i++)
		du_line(out, &du.v[i]);
	strbuf_addf(out,
		    "# total %zu results, %" PRIu64 " bytes, %" PRIu64
		    " reclaimable by a full prune\n",
		    du.n, du.total_size, du.total_reclaimable);
	cache_du_release(&du);
	return 0;
}

static int stats_content(struct sfs_fs *fs, struct strbuf *out)
{
	struct fs_cache_stats s;
	int r = fs_cache_stats_get(fs, true, &s);

	if (r < 0)
		return r;
	strbuf_addf(out,
		    "disk_bytes %" PRIu64 "\nblobs %" PRIu64 "\nblob_bytes %" PRIu64
		    "\ndb_bytes %" PRIu64 "\nlogs %" PRIu64 "\nlog_bytes %" PRIu64
		    "\nother_bytes %" PRIu64 "\nreferenced_blobs %" PRIu64
		    "\nreferenced_bytes %" PRIu64 "\n",
		    s.disk_bytes, s.blobs, s.blob_bytes, s.db_bytes, s.logs, s.log_bytes,
		    s.other_bytes, s.referenced_blobs, s.referenced_bytes);
	/* information only: exports are already in disk_bytes (other_bytes) */
	strbuf_addf(out, "exports %" PRIu64 "\nexport_bytes %" PRIu64 "\n", s.exports,
		    s.export_bytes);
	strbuf_addf(out,
		    "keys %" PRIu64 "\nrecords %" PRIu64 "\nresults %" PRIu64
		    "\nresult_bytes %" PRIu64 "\nlinks %" PRIu64 "\nhits %" PRIu64
		    "\nmisses %" PRIu64 "\n",
		    s.keys, s.records, s.results, s.result_bytes, s.links, s.hits, s.misses);
	return 0;
}

static int cache_content(struct sfs_fs *fs, const struct fs_desc *d, struct strbuf *out)
{
	int r;

	if (d->kind == FS_CACHE_IMPORT)
		r = fs_cache_import_content(fs, out);
	else if (d->kind == FS_CACHE_CTL)
		r = fs_cachectl_content(fs, out);
	else if (fs_kinds[d->kind].parent == FS_CACHE_KEY)
		r = key_content(fs, d, out);
	else if (fs_kinds[d->kind].parent == FS_CACHE_RESULT)
		r = result_content(fs, d, out);
	else
		return -EISDIR;
	return r < 0 ? r : out->oom ? -ENOMEM : 0;
}

int fs_cache_snap_build(struct sfs_fs *fs, enum fs_kind kind, struct strbuf *out)
{
	int r = kind == FS_CACHE_DU	 ? du_content(fs, out)
		: kind == FS_METRICS ? fs_metrics_content(fs, out)
				     : stats_content(fs, out);

	return r < 0 ? r : out->oom ? -ENOMEM : 0;
}

static int cache_getattr(struct sfs_fs *fs, const struct fs_desc *d, struct stat *st)
{
	char id[CACHE_ID_SIZE];
	struct results_index_entry e;
	int r = 0;

	if ((d->kind == FS_CACHE_KEY || fs_kinds[d->kind].parent == FS_CACHE_KEY) &&
	    (key_id_of(d->path, id) < 0 || !key_known(fs, id)))
		return -ENOENT;
	if (d->kind == FS_CACHE_RESULT || fs_kinds[d->kind].parent == FS_CACHE_RESULT) {
		r = results_index_get(fs->cache->db, d->hex, &e);
		if (r < 0)
			return r;
	}
	fs_stat_init(fs, st, fs_kinds[d->kind].mode, fs->uid, fs->gid);
	if (S_ISDIR(st->st_mode)) {
		if (d->kind == FS_CACHE_RESULT)
			fs_stat_time_ns(st, e.created);
		return 0;
	}
	if (fs_cache_snap_kind(d->kind)) /* never built here: the last one's size */
		st->st_size = (off_t)fs_cache_snap_size(fs, d->kind);
	else
		r = fs_content_size(fs, d, &st->st_size);
	clock_gettime(CLOCK_REALTIME, &st->st_mtim);
	st->st_ctim = st->st_mtim;
	return r;
}

const struct fs_module fs_cache_module = {
    .lookup = cache_lookup,
    .getattr = cache_getattr,
    .readdir = cache_readdir,
    .content = cache_content,
};

/* ---- what solverfs holds on disk ----
 *
 * One walk of STATE_DIR, without any lock, sums what `du -sb` sums and sorts
 * the bytes it meets as it goes (blobs/sha256, logs, exports/<hex>, the
 * database files), so disk_bytes is what du says; the database's numbers
 * are read in one locked step of their own, before it.  The content store's
 * small blobs live in database rows: they are counted in blob_bytes and taken
 * out of db_bytes, so the parts still sum to disk_bytes.
 */

struct usage {
	struct strmap links; /* "dev:ino" of files with more than one link seen */
	uint64_t disk;
	uint64_t blob_files, blob_file_bytes;
	uint64_t logs, log_bytes;
	uint64_t exports, export_bytes;
	uint64_t db_bytes;
};

/* Files with more than one link, counted once (as du does). */
static bool seen_before(struct strmap *links, const struct stat *st)
{
	char key[48];

	if (st->st_nlink < 2 || S_ISDIR(st->st_mode))
		return false;
	snprintf(key, sizeof(key), "%llx:%llx", (unsigned long long)st->st_dev,
		 (unsigned long long)st->st_ino);
	if (strmap_get(links, key))
		return true;
	strmap_put(links, key, (void *)1, NULL); /* out of memory: counted twice, no worse */
	return false;
}

/* What the entries of a directory are counted as besides disk bytes. */
enum dir_class {
	DIR_PLAIN,
	DIR_TOP,     /* STATE_DIR: its subdirectories sorted by name */
	DIR_BLOBS,   /* blobs/: sha256/ is the content store */
	DIR_STORE,   /* blobs/sha256/<hex>: the content store's files (cache/cas.h) */
	DIR_LOGS,    /* logs/: exec logs */
	DIR_EXPORTS, /* exports/<hex>: whole-cache exports */
};

static uint64_t dir_bytes(int dfd, struct usage *u, unsigned depth, enum dir_class cls);

/* The class of the directory entry name of a directory of class parent. */
static enum dir_class class_of(enum dir_class parent, const char *name)
{
	if (parent == DIR_TOP)
		return !strcmp(name, "blobs")	? DIR_BLOBS
		       : !strcmp(name, "logs")	? DIR_LOGS
		       : !strcmp(name, "exports") ? DIR_EXPORTS
						  : DIR_PLAIN;
	return parent == DIR_BLOBS && !strcmp(name, "sha256") ? DIR_STORE : DIR_PLAIN;
}

/* The apparent size of entry name of directory dfd (of class parent) and, for a
 * directory, of everything under it; 0 for what vanished meanwhile (a prune, a
 * temp file renamed) or was counted already. */
static uint64_t entry_bytes(int dfd, const char *name, struct usage *u, unsigned depth,
			    enum dir_class parent)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || seen_before(&u->links, &st))
		return 0;
	uint64_t n = (uint64_t)st.st_size;
	if (S_ISDIR(st.st_mode) && depth < 64) {
		int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			n += dir_bytes(fd, u, depth + 1, class_of(parent, name));
	}
	if (S_ISREG(st.st_mode) && parent == DIR_STORE && sfs_is_hex(name)) {
		u->blob_files++;
		u->blob_file_bytes += n;
	} else if (S_ISREG(st.st_mode) && parent == DIR_LOGS) {
		u->logs++;
		u->log_bytes += n;
	} else if (S_ISDIR(st.st_mode) && parent == DIR_EXPORTS && sfs_is_hex(name)) {
		u->exports++;
		u->export_bytes += n;
	} else if (parent == DIR_TOP &&
		   (!strcmp(name, "solverfs.db") || !strcmp(name, "solverfs.db-wal") ||
		    !strcmp(name, "solverfs.db-shm"))) {
		u->db_bytes += n;
	}
	return n;
}

/* Everything under directory dfd (consumed), as `du -sb` sums it: files,
 * symlinks and the directories themselves. */
static uint64_t dir_bytes(int dfd, struct usage *u, unsigned depth, enum dir_class cls)
{
	DIR *dir = fdopendir(dfd);
	struct dirent *de;
	uint64_t n = 0;

	if (!dir) {
		close(dfd);
		return 0;
	}
	while ((de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n += entry_bytes(dirfd(dir), de->d_name, u, depth, cls);
	closedir(dir);
	return n;
}

static void state_usage(const char *state_dir, struct usage *u)
{
	struct stat st;
	int dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0)
		return;
	if (fstat(dfd, &st) == 0)
		u->disk = (uint64_t)st.st_size;
	u->disk += dir_bytes(dfd, u, 0, DIR_TOP);
}

/* The database's numbers, in one locked step (the lock is recursive): a
 * prune's unit is waited for once, and no walk runs under the lock.  With
 * referenced, also the blobs results reference: a scan of every blob_refs row. */
static int db_numbers(struct sfs_fs *fs, bool referenced, uint64_t *ret_row_blobs,
		      uint64_t *ret_row_bytes, struct fs_cache_stats *ret)
{
	struct sfs_db *db = fs->cache->db;
	struct results_index_counts c;
	int r;

	sfs_db_lock(db);
	r = blobrows_usage(db, ret_row_blobs, ret_row_bytes);
	if (r == 0 && referenced)
		r = cache_referenced(db, &ret->referenced_blobs, &ret->referenced_bytes);
	if (r == 0)
		r = results_index_counts(db, &c);
	sfs_db_unlock(db);
	if (r < 0)
		return r;
	ret->keys = c.keys;
	ret->records = c.records;
	ret->results = c.results;
	ret->result_bytes = c.result_bytes;
	ret->links = c.links;
	return 0;
}

int fs_cache_stats_get(struct sfs_fs *fs, bool referenced, struct fs_cache_stats *ret)
{
	struct usage u = {.links = STRMAP_INIT};
	struct sfs_solver_stats ss;
	uint64_t row_blobs = 0, row_bytes = 0;
	int r;

	*ret = (struct fs_cache_stats){0};
	r = db_numbers(fs, referenced, &row_blobs, &row_bytes, ret);
	if (r < 0)
		return r;
	state_usage(fs->cache->state_dir, &u);
	strmap_release(&u.links);
	ret->blobs = row_blobs + u.blob_files;
	ret->blob_bytes = row_bytes + u.blob_file_bytes;
	/* the small blobs of database rows are blob_bytes, not db_bytes */
	ret->db_bytes = u.db_bytes > row_bytes ? u.db_bytes - row_bytes : 0;
	ret->logs = u.logs;
	ret->log_bytes = u.log_bytes;
	ret->exports = u.exports;
	ret->export_bytes = u.export_bytes;
	ret->disk_bytes = u.disk;
	uint64_t known = ret->blob_bytes + ret->db_bytes + ret->log_bytes;
	ret->other_bytes = u.disk > known ? u.disk - known : 0;
	sfs_solver_get_stats(fs->solver, &ss);
	ret->hits = ss.loads - ss.load_failures;
	ret->misses = ss.execs;
	ret->db_commits = sfs_db_commits(fs->cache->db);
	return 0;
}
