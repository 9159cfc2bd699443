/*
 * fs.h — the FUSE front of solverfs: shared state, node descriptors, file
 * handles and the functions each subtree module (one file per subtree of
 * README.md "The mounted tree") offers to the low-level operations in ops.c.
 *
 * Every node of the mount is named by a descriptor (kind + job + hex + path).
 * What a kind is (name, place, module, mode, caching, writers, invalidation)
 * is its row in kinds.c's fs_kinds[]; what a node holds is its module's to say.
 * The inode table (node.c) maps descriptors to inode numbers and back; the
 * modules never keep state of their own about nodes: they answer lookups,
 * attributes, listings and contents from the solver and the cache every time,
 * so what the mount shows is always what the libraries say now.
 *
 * Module functions return 0 or -errno and never call fuse_reply_*: ops.c
 * answers every request, stream.c the reads it parks (answered later, from a
 * notify), and a flush whose spec went to the solver's parser is answered from
 * the parser thread through ops.c's fs_flush_reply.
 */
#ifndef SFS_FS_H
#define SFS_FS_H

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "cache.h"
#include "gcpolicy.h"
#include "strbuf.h"
#include "solver.h"

/* ---- options (options.c) ---- */

enum fs_sandbox_opt { FS_SANDBOX_AUTO, FS_SANDBOX_BWRAP, FS_SANDBOX_NONE };

struct fs_opts {
	unsigned workers;   /* default nproc */
	uint64_t cache_max; /* bytes; 0 = none given (then gc holds the policy) */
	struct gc_opts gc;  /* gc_*, gc=off, cache_max (cache/gcpolicy.h) */
	enum fs_sandbox_opt sandbox;
	unsigned jobs_keep;    /* default 1000 */
	uint64_t log_max;      /* default 64 MiB */
	uint64_t output_max;   /* bytes of one exec output tree; default 16 GiB */
	uint64_t spec_max;     /* default 16 MiB */
	uint64_t status_max;   /* per job text (status, status.json); default 16 MiB */
	unsigned path_max;     /* bytes of a path in a spec; default 4096 */
	unsigned name_max;     /* bytes of a vertex's display name; default 1024 */
	uint64_t inline_max;   /* mkfile data of one action, decoded; default 16 MiB */
	/* cache_from imports (cache/import.h) */
	uint64_t import_layer_max;   /* uncompressed bytes of one layer; default 16 GiB */
	unsigned import_entries_max; /* entries of one layer; default 1,000,000 */
	uint64_t import_config_max;  /* index.json, manifest, cache config; default 64 MiB */
	unsigned max_vertices; /* default 100000 */
	unsigned max_running;  /* default 64 */
	unsigned max_pending;  /* default 1024 */
	unsigned max_parked;   /* parked blocking readers; default 4096 */
	uint64_t pending_timeout; /* seconds a pending job waits for a spec; default 3600 */
	/* registries (cache/registry.h) */
	char *registry_ca;	   /* extra CA bundle, malloc'd, or NULL */
	char *insecure_registries; /* "HOST:PORT,..." in plain http, malloc'd, or NULL */
	uint64_t registry_timeout; /* seconds without progress; default 30 */
	bool foreground, debug, show_help, show_version;
	char *state_dir;  /* operand as given, malloc'd */
	char *mountpoint; /* operand as given, malloc'd */
};

/*
 * Parses argv into o and leaves in args only what fuse_session_new must see
 * (plus the options solverfs always adds).  Returns 0 or -EINVAL with a
 * message for the user in *ret_msg.
 */
int fs_opts_parse(struct fuse_args *args, struct fs_opts *o, char **ret_msg);
void fs_opts_release(struct fs_opts *o);
void fs_opts_help(const char *prog);
/* "64M" -> 67108864; K, M, G, T are powers of 1024.  -EINVAL on garbage/overflow. */
int fs_parse_size(const char *s, uint64_t *ret);
/* A duration: decimal seconds, or with one suffix s, m, h or d; *ret in seconds. */
int fs_parse_duration(const char *s, uint64_t *ret);
/* "10G" (a size as above) or "N%" (0..100 of the filesystem): gc_max_used & co. */
int fs_parse_gc_amount(const char *s, struct gc_amount *ret);

/* ---- the mounted filesystem ---- */

struct sfs_fs {
	struct fs_opts *opts;
	struct sfs_cache *cache;
	struct sfs_solver *solver;
	struct cache_gc *gc; /* the automatic GC (cache/gc.h); NULL with gc=off */
	struct fuse_session *se;
	enum sfs_sandbox sandbox; /* picked before STATE_DIR is made (main.c) */
	uid_t uid;		  /* mount owner */
	gid_t gid;
	struct timespec mount_time;
	char *state_dir;  /* absolute */
	char *mountpoint; /* absolute, or NULL when given as /dev/fd/N */
	/* The front's own state, each private to the file named (whose top
	 * comment says what its lock guards).  Made before the solver opens (its
	 * notify callback reaches streams and inval), freed after it closed. */
	struct fs_nodes *nodes;	    /* node.c: the inode table */
	struct fs_files *files;	    /* ops.c: the open handles */
	struct fs_trees *trees;	    /* results.c: the loaded result trees */
	struct fs_streams *streams; /* stream.c: parked readers and pollers */
	struct fs_inval *inval;	    /* notify.c: the invalidation queue and thread */
	struct fs_cache_import *cache_import; /* cacheimport.c: the running import */
	struct fs_cachectl *cachectl; /* cachectl.c: cache/ctl's command and thread */
	struct fs_cache_snaps *cache_snaps; /* cachesnap.c: cache/stats, cache/du and metrics builds */
};

/* ---- node kinds (kinds.c) ----
 * One row of fs_kinds[] per kind holds what the kind is, whatever the data:
 * its name, parent, module, mode and flags.  kinds.c's top comment has the
 * rules; the enum's order means nothing (the rows are keyed by it).
 */

enum fs_kind {
	FS_ROOT = 0,
	FS_README,
	FS_METRICS,
	FS_JOBS_DIR,
	FS_JOBS_NEW,
	FS_JOBS_LATEST,
	FS_JOBS_LAST_REJECTED,
	FS_JOB_DIR,
	FS_JOB_SPEC,
	FS_JOB_STATE,
	FS_JOB_WAIT,
	FS_JOB_STATUS,
	FS_JOB_STATUS_JSON,
	FS_JOB_ERROR,
	FS_JOB_RESULT,
	FS_JOB_CTL,
	FS_JOB_WHY,
	FS_JOB_GRAPH,
	FS_JOB_OUTPUTS,
	FS_JOB_OUTPUT,
	FS_JOB_BY_NAME,
	FS_JOB_BY_NAME_LINK,
	FS_JOB_EXPORT,
	FS_VERTICES_DIR,
	FS_JOB_VERTICES,
	FS_VERTEX_DIR,
	FS_VERTEX_NAME,
	FS_VERTEX_OP,
	FS_VERTEX_STATE,
	FS_VERTEX_LOG,
	FS_VERTEX_KEYS,
	FS_VERTEX_JOBS,
	FS_VERTEX_WHY,
	FS_VERTEX_INPUTS,
	FS_VERTEX_INPUT,
	FS_VERTEX_RESULTS,
	FS_VERTEX_RESULT,
	FS_RESULTS_DIR,
	FS_RESULT_ENTRY,
	FS_CACHE_DIR,
	FS_CACHE_STATS,
	FS_CACHE_KEYS,
	FS_CACHE_KEY,
	FS_CACHE_KEY_DIGEST,
	FS_CACHE_KEY_OUTPUT,
	FS_CACHE_KEY_RESULTS,
	FS_CACHE_KEY_LINKS,
	FS_CACHE_KEY_BACKLINKS,
	FS_CACHE_RESULTS,
	FS_CACHE_RESULT,
	FS_CACHE_RESULT_SIZE,
	FS_CACHE_RESULT_CREATED,
	FS_CACHE_RESULT_LAST_USED,
	FS_CACHE_RESULT_RECORDS,
	FS_CACHE_RESULT_KEYS,
	/* whole-cache exports and import (exports.c, cacheimport.c) */
	FS_CACHE_EXPORTS,
	FS_CACHE_EXPORT_ENTRY,
	FS_CACHE_EXPORT_LINK,
	FS_CACHE_IMPORT,
	FS_CACHE_CTL,
	FS_CACHE_DU,
	FS_KIND_MAX
};

enum fs_kind_flag {
	/* Never changes: a day of kernel attribute and entry timeout, keep_cache
	 * and cached listings (ops.c).  Other files are read with direct_io. */
	FS_KIND_IMMUTABLE = 1 << 0,
	/* Names that never change, attributes that notify.c invalidates: one
	 * second of kernel timeout instead of zero (ops.c). */
	FS_KIND_FIXED_DIR = 1 << 1,
	/* May be opened for writing (jobs.c checks who); others refuse it. */
	FS_KIND_WRITABLE = 1 << 2,
	/* Reads block until there is data or the job ends (stream.c), or until
	 * the handle's snapshot is built (cache/stats, cache/du: cachesnap.c). */
	FS_KIND_STREAM = 1 << 3,
	/* Invalidated (notify.c) when its job changes: descriptor {kind, job}. */
	FS_KIND_INVAL_JOB = 1 << 4,
	/* Invalidated when any job changes: descriptor {kind}. */
	FS_KIND_INVAL_GLOBAL = 1 << 5,
	/* Named, but there only while the module says so (jobs/latest,
	 * jobs/last-rejected, jobs/N/export):
	 * fs_kind_lookup finds it, fs_kind_list leaves it to the module. */
	FS_KIND_OPTIONAL = 1 << 6,
};

struct fs_module;

struct fs_kind_info {
	const char *name; /* in the parent; NULL when the data names it (number, hex, path) */
	enum fs_kind parent;
	const struct fs_module *module; /* the file that answers for it */
	mode_t mode;			/* type and permissions; 0: taken from the data */
	unsigned flags;			/* enum fs_kind_flag */
};

extern const struct fs_kind_info fs_kinds[FS_KIND_MAX];

static inline bool fs_kind_is(enum fs_kind k, unsigned flag)
{
	return (fs_kinds[k].flags & flag) != 0;
}

/* The kind named name under parent (FS_KIND_OPTIONAL ones too); FS_KIND_MAX if none. */
enum fs_kind fs_kind_child(enum fs_kind parent, const char *name);
/* 0 when every kind has a well-formed row; else -EINVAL and the first bad kind. */
int fs_kinds_check(enum fs_kind *ret_bad);

/* ---- node descriptors and the inode table (node.c) ---- */

struct fs_desc {
	enum fs_kind kind;
	uint64_t job;
	char hex[SFS_HEX_SIZE]; /* vertex or result hex, "" when unused */
	char *path;		/* malloc'd or NULL */
};

void fs_desc_release(struct fs_desc *d);
int fs_desc_copy(struct fs_desc *dst, const struct fs_desc *src);

/* Makes fs->nodes holding the root; fs_nodes_release frees it (NULL is fine). */
int fs_nodes_init(struct sfs_fs *fs);
void fs_nodes_release(struct sfs_fs *fs);
/* The inode of d, created when new; its lookup count is incremented. */
int fs_node_ref(struct sfs_fs *fs, const struct fs_desc *d, fuse_ino_t *ret_ino);
/* The inode of d if it has one (no count change), else FUSE_UNKNOWN_INO. */
fuse_ino_t fs_node_peek(struct sfs_fs *fs, const struct fs_desc *d);
/* A copy of the descriptor of ino; -ESTALE when unknown. */
int fs_node_get(struct sfs_fs *fs, fuse_ino_t ino, struct fs_desc *ret);
void fs_node_forget(struct sfs_fs *fs, fuse_ino_t ino, uint64_t nlookup);
size_t fs_nodes_count(struct sfs_fs *fs);

#ifndef FUSE_UNKNOWN_INO
#define FUSE_UNKNOWN_INO 0xffffffff
#endif

/* ---- directory listings (node.c) ---- */

struct fs_dirent {
	char *name;
	mode_t type; /* S_IFDIR, S_IFREG, S_IFLNK */
	struct fs_desc d;
};
struct fs_dirlist {
	size_t n, cap;
	struct fs_dirent *e;
};
/* Takes ownership of nothing: name and d are copied. */
int fs_dirlist_add(struct fs_dirlist *l, const char *name, mode_t type, const struct fs_desc *d);
void fs_dirlist_release(struct fs_dirlist *l);

/* kinds.c: named children from the table.  The child of d named name: d's
 * descriptor (job, hex and path name the parent's object) with the child's kind;
 * -ENOENT when the table has no such child. */
int fs_kind_lookup(const struct fs_desc *d, const char *name, struct fs_desc *ret);
/* Adds the children of d's kind (not FS_KIND_OPTIONAL ones) in name order. */
int fs_kind_list(const struct fs_desc *d, struct fs_dirlist *l);
/* Adds c under its kind's name, typed by its kind's mode. */
int fs_dirlist_add_kind(struct fs_dirlist *l, const struct fs_desc *c);

/* ---- open files (made and freed by ops.c) ---- */

struct fs_file {
	struct fs_desc d;
	struct strbuf data;	/* snapshot to read, or bytes written */
	struct fs_dirlist list; /* a directory handle's listing, made at opendir */
	fuse_ino_t ino;		/* a directory handle's inode */
	int fd;			/* log or blob, -1 when none */
	uint64_t new_job;	/* jobs/new: the job this handle allocated */
	uid_t uid;		/* the opener (submit, ctl) */
	gid_t gid;		/* the opener's group (cache/import) */
	bool writable;
	bool nonblock;
	/* A spec file: FUSE threads may write and flush one open file at once
	 * (through dup'd fds), and the parser answers a flush; spec_lock guards
	 * data, wrote_spec and the flags.  While the spec is with the parser (a
	 * flush waits) or went in, writes get EBUSY rather than being lost. */
	pthread_mutex_t spec_lock;
	bool wrote_spec; /* data holds spec bytes not yet submitted */
	bool submitting, submitted;
	bool too_large; /* a write passed spec_max: refused until the flush says so */
	uint64_t pos;		    /* end of the last read (poll readiness) */
	struct fuse_pollhandle *ph; /* guarded by the stream lock */
	struct fs_file *poll_next;  /* in the job's poller list, stream lock */
	struct fs_file **poll_pprev;
	/* ops.c's files_lock: requests using the handle, release seen, every open file */
	unsigned refs;
	bool released;
	struct fs_file *open_next;
	struct fs_file **open_pprev;
};

/* ---- subtree modules ----
 * lookup: the child `name` of dir d.  getattr: fills st (not st_ino).
 * readdir: fills l (without "." and "..").  content: the bytes of a small file
 * as they are now (snapshot files).
 */
struct fs_module {
	int (*lookup)(struct sfs_fs *fs, const struct fs_desc *d, const char *name,
		      struct fs_desc *ret);
	int (*getattr)(struct sfs_fs *fs, const struct fs_desc *d, struct stat *st);
	int (*readdir)(struct sfs_fs *fs, const struct fs_desc *d, struct fs_dirlist *l);
	int (*content)(struct sfs_fs *fs, const struct fs_desc *d, struct strbuf *out);
	int (*readlink)(struct sfs_fs *fs, const struct fs_desc *d, char **ret);
};

/* ---- root.c: the top of the mount and the attribute helpers ---- */

extern const struct fs_module fs_root_module;
void fs_stat_init(struct sfs_fs *fs, struct stat *st, mode_t mode, uid_t uid, gid_t gid);
void fs_stat_time_ns(struct stat *st, int64_t ns);
/* *ret_size: the length of d's content as its module makes it now; returns
 * that content's 0 or -errno (the size is of what was made either way). */
int fs_content_size(struct sfs_fs *fs, const struct fs_desc *d, off_t *ret_size);

/* ---- jobs.c: jobs/, jobs/new, jobs/latest, jobs/last-rejected, jobs/N/ ---- */

extern const struct fs_module fs_jobs_module;
/* open/write/flush/setattr of the writable job files. */
int fs_jobs_open(struct sfs_fs *fs, fuse_req_t req, struct fs_file *f, int flags);
int fs_jobs_write(struct sfs_fs *fs, fuse_req_t req, struct fs_file *f, const char *buf,
		  size_t size);
/* A flush of a written spec: FS_REPLY_LATER when the spec went to the solver's
 * parser, whose answer goes to req through fs_flush_reply; else 0 or -errno to
 * answer now. */
#define FS_REPLY_LATER 1
int fs_jobs_flush(struct sfs_fs *fs, fuse_req_t req, struct fs_file *f);
int fs_jobs_truncate(struct sfs_fs *fs, fuse_req_t req, const struct fs_desc *d);
/* Parses a decimal job number without leading zeros; -ENOENT otherwise. */
int fs_parse_job(const char *s, uint64_t *ret);

/* ---- vertices.c: vertices/<hex>/ and jobs/N/vertices/<hex>/ ---- */

extern const struct fs_module fs_vertices_module;
/* The vertex hex of job (0: the shared graph), *ret released by the caller. */
int fs_vertex_find(struct sfs_fs *fs, uint64_t job, const char *hex, struct sfs_vertex_info *ret);
/* Opens the vertex log of f->d into f->fd (-1: no log yet, an empty file). */
int fs_vertex_log_open(struct sfs_fs *fs, struct fs_file *f);

/* ---- results.c: results/<hex>/... ---- */

extern const struct fs_module fs_results_module;
/* Opens a result's file for reading into f->fd. */
int fs_results_open(struct sfs_fs *fs, struct fs_file *f);
/* fs->trees, the cache of loaded trees; release frees them (NULL is fine). */
int fs_results_init(struct sfs_fs *fs);
void fs_results_release(struct sfs_fs *fs);
/* The GC deleted result hex: drop its loaded tree (at its last user). */
void fs_results_forget(struct sfs_fs *fs, const char *hex);

/* ---- exports.c: jobs/N/export/ ---- */

extern const struct fs_module fs_exports_module;
/* The descriptor of jobs/N/export; -ENOENT when the job has no export. */
int fs_export_root(struct sfs_fs *fs, uint64_t job, struct fs_desc *ret);
/* Opens a layout file for reading into f->fd. */
int fs_exports_open(struct sfs_fs *fs, struct fs_file *f);
/* cache/export, the symlink to the newest whole-cache export; -ENOENT when
 * there is none. */
int fs_cache_export_link(struct sfs_fs *fs, struct fs_desc *ret);

/* ---- cachectl_export.c: `export [mode=max|min] [form=image|manifest-list]` of cache/ctl ---- */

/* Parses args only (cache/ctl's check, on the FUSE thread): 0, or -EINVAL
 * with *ret_msg naming the bad word. */
int fs_cachectl_export_check(const char *args, char **ret_msg);
/* Parses args, exports the whole cache, appends the outcome line to out,
 * without newline (cache/ctl's run: slow, on the ctl thread); -ECANCELED
 * once stop is set (the unmount). */
int fs_cachectl_export(struct sfs_fs *fs, const char *args, const atomic_bool *stop,
		       struct strbuf *out, char **ret_msg);

/* ---- cacheimport.c: cache/import ---- */

/* Made with the front's state; stopped (a running import is stopped and
 * joined) once the loop has ended, before the cache closes; released last. */
int fs_cache_import_init(struct sfs_fs *fs);
void fs_cache_import_stop(struct sfs_fs *fs);
void fs_cache_import_release(struct sfs_fs *fs);
/* open/write/truncate of cache/import (mount owner and root), and its content:
 * the last import's outcome. */
int fs_cache_import_open(struct sfs_fs *fs, fuse_req_t req, struct fs_file *f, int flags);
int fs_cache_import_write(struct sfs_fs *fs, struct fs_file *f, const char *buf, size_t size);
int fs_cache_import_truncate(struct sfs_fs *fs, fuse_req_t req);
int fs_cache_import_content(struct sfs_fs *fs, struct strbuf *out);

/* ---- cachedir.c: cache/, and what solverfs holds on disk (cache/stats, metrics) ---- */

extern const struct fs_module fs_cache_module;
struct fs_cache_stats {
	uint64_t disk_bytes;	    /* everything under STATE_DIR, as `du -sb` counts it */
	uint64_t blobs, blob_bytes; /* the content store */
	uint64_t db_bytes;	    /* solverfs.db with its -wal and -shm */
	uint64_t logs, log_bytes;   /* STATE_DIR/logs */
	uint64_t exports, export_bytes; /* STATE_DIR/exports/<hex>: whole-cache exports */
	uint64_t other_bytes;	    /* the rest: exports, temp files, directories */
	uint64_t referenced_blobs, referenced_bytes; /* the blobs results name (blob_refs) */
	uint64_t keys, records, results, result_bytes, links;
	uint64_t hits, misses; /* record loads, executions (since the mount) */
	uint64_t db_commits;   /* database transactions committed (since the mount) */
};
/* With referenced, also referenced_blobs/bytes (a scan of every blob_refs row). */
int fs_cache_stats_get(struct sfs_fs *fs, bool referenced, struct fs_cache_stats *ret);
/* The content of cache/stats or cache/du as it is now (slow: cachesnap.c's thread). */
int fs_cache_snap_build(struct sfs_fs *fs, enum fs_kind kind, struct strbuf *out);

/* ---- cachesnap.c: cache/stats, cache/du and metrics, built off the FUSE threads ---- */

/* Snapshot ids, above every job number (stream.c keys both by number). */
#define FS_CACHE_SNAP_ID_BASE (UINT64_C(1) << 62)
/* Made with the front's state; stopped (a build in progress ends and is
 * joined) once the loop has ended, before the cache closes; released last. */
int fs_cache_snaps_init(struct sfs_fs *fs);
void fs_cache_snaps_stop(struct sfs_fs *fs);
void fs_cache_snaps_release(struct sfs_fs *fs); /* accepts a never-made one */
/* Whether kind's content is a snapshot built by cachesnap.c (stats, du). */
bool fs_cache_snap_kind(enum fs_kind k);
/* A reference to a snapshot of kind that starts building after now (shared
 * with the handles that asked meanwhile): *ret_id, for reads and the put. */
int fs_cache_snap_want(struct sfs_fs *fs, enum fs_kind kind, uint64_t *ret_id);
void fs_cache_snap_put(struct sfs_fs *fs, uint64_t id);
/* Bytes [off, off+size) of snapshot id; *ret_ready false while it is built. */
int fs_cache_snap_read(struct sfs_fs *fs, uint64_t id, off_t off, size_t size, char **ret_buf,
		       size_t *ret_len, bool *ret_ready);
/* The length of the last snapshot of kind built (getattr; 0 before any). */
uint64_t fs_cache_snap_size(struct sfs_fs *fs, enum fs_kind kind);

/* ---- cachectl.c: cache/ctl (commands on the whole cache, on a thread of its own) ---- */

/* Made with the front's state; stopped (a running prune ends after its unit
 * and is joined) once the loop has ended, before the cache closes. */
int fs_cachectl_init(struct sfs_fs *fs);
void fs_cachectl_stop(struct sfs_fs *fs);
void fs_cachectl_release(struct sfs_fs *fs); /* accepts a never-made one */
/* Open: writers must be the mount owner or root (-EACCES). */
int fs_cachectl_open(struct sfs_fs *fs, fuse_req_t req, struct fs_file *f, int flags);
int fs_cachectl_truncate(struct sfs_fs *fs, fuse_req_t req);
/* One write is one command: -EINVAL (reason read back), -EBUSY while one runs. */
int fs_cachectl_write(struct sfs_fs *fs, struct fs_file *f, const char *buf, size_t size);
/* The last command's outcome. */
int fs_cachectl_content(struct sfs_fs *fs, struct strbuf *out);

/* ---- graph.c: jobs/N/why and jobs/N/graph.dot as they are now ---- */

int fs_job_why(struct sfs_fs *fs, uint64_t job, struct strbuf *out);
int fs_job_graph(struct sfs_fs *fs, uint64_t job, struct strbuf *out);

/* ---- metrics.c: the Prometheus text exposition of the root's `metrics` ---- */

int fs_metrics_content(struct sfs_fs *fs, struct strbuf *out);

/* ---- stream.c: the blocking reads of wait, status, status.json, and of
 * cache/stats, cache/du and metrics until their snapshot is built (cachesnap.c) ---- */

/* fs->streams; release frees it after the solver closed (NULL is fine). */
int fs_stream_init(struct sfs_fs *fs);
void fs_stream_release(struct sfs_fs *fs);
/* Replies to req: data, EOF, an error, or later (parked). */
void fs_stream_read(struct sfs_fs *fs, fuse_req_t req, struct fs_file *f, size_t size, off_t off);
void fs_stream_poll(struct sfs_fs *fs, fuse_req_t req, struct fs_file *f,
		    struct fuse_pollhandle *ph);
void fs_stream_file_release(struct sfs_fs *fs, struct fs_file *f);
/* Something of job changed: wakes its pollers and marks its parked readers for a
 * retry (from fs_notify); fs_stream_kick then retries them. */
void fs_stream_notify(void *arg, uint64_t job);
void fs_stream_kick(struct sfs_fs *fs, uint64_t job);
/* Makes notify a no-op (before sfs_solver_close). */
void fs_stream_closing(struct sfs_fs *fs);
/* Answers every parked reader (ENOTCONN) and drops poll handles. */
void fs_stream_shutdown(struct sfs_fs *fs);
size_t fs_stream_parked(struct sfs_fs *fs);
/* Current size of a stream file (for getattr). */
uint64_t fs_stream_size(const struct sfs_job_info *info, enum fs_kind k);

/* ---- notify.c: the solver's notify callback ---- */

/* Wakes stream readers and drops what the kernel caches of the job's dynamic
 * files (arg is the struct sfs_fs). */
void fs_notify(void *arg, uint64_t job);
/* fs->inval; release stops the thread and frees it (NULL is fine). */
int fs_notify_init(struct sfs_fs *fs);
void fs_notify_release(struct sfs_fs *fs);
/* Invalidations go to se from now on; NULL stops them (and joins the thread). */
void fs_notify_set_session(struct sfs_fs *fs, struct fuse_session *se);
/* The GC deleted result_id: forget its tree, and tell the kernel to drop
 * results/<hex> (called on the GC's thread, never a FUSE worker's). */
void fs_notify_collected(void *arg, const char *result_id);

/* ---- ops.c: the low-level operations ---- */

extern const struct fuse_lowlevel_ops fs_ops;
/* Answers a flush that fs_jobs_flush left to the parser (err 0 or an errno)
 * and drops the flush's hold on f. */
void fs_flush_reply(fuse_req_t req, struct fs_file *f, int err);
/* fs->files; release frees the files the kernel never released (the mount
 * went away first) and fs->files (NULL is fine). */
int fs_files_init(struct sfs_fs *fs);
void fs_files_release(struct sfs_fs *fs);

#endif
