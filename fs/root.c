/*
 * root.c — the top of the mount: README, metrics (metrics.c) and the
 * attribute helpers every module uses.  Its children are the named rows of
 * kinds.c under FS_ROOT.
 *
 * No state of its own.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

static const char readme_text[] =
    "solverfs - a build solver (BuildKit's model) you drive with files.\n"
    "\n"
    "Start a build: write a graph spec (JSON, see solverfs(8)) into jobs/new.\n"
    "\n"
    "    cat spec.json > jobs/new          # submits it; jobs/latest points at it\n"
    "                                      # (a rejected one: jobs/last-rejected)\n"
    "    exec 3<>jobs/new; read N <&3      # or: take a job number first,\n"
    "    cat spec.json >&3; exec 3>&-      #     then write the spec and close\n"
    "    echo \"$SPEC\" > jobs/N/spec        # same, for a pending job N\n"
    "\n"
    "Follow it:\n"
    "\n"
    "    cat jobs/N/status                 # progress as buildctl prints it; ends with the job\n"
    "    cat jobs/N/status.json            # the same as BuildKit SolveStatus JSON lines\n"
    "    cat jobs/N/wait                   # blocks until the job ends, prints its state\n"
    "    cat jobs/N/state jobs/N/error     # pending|running|done|failed|cancelled, why\n"
    "    echo cancel > jobs/N/ctl          # cancel; \"discard\" deletes a finished job\n"
    "    cat jobs/N/ctl                    # what the last command did, or why not\n"
    "\n"
    "Use what it built:\n"
    "\n"
    "    cat jobs/N/result                 # \"<ref> sha256:<hex>\" per output\n"
    "    ls -l jobs/N/outputs/             # a symlink per output into results/\n"
    "    cp -a jobs/N/outputs/pkg/. dest/  # results/<hex>/ are read-only trees\n"
    "\n"
    "Look inside:\n"
    "\n"
    "    jobs/N/why                                  why each vertex was cached or executed\n"
    "    jobs/N/graph.dot                            the graph for Graphviz (dot -Tsvg)\n"
    "    jobs/N/vertices/<hex>/                      the job's vertices: name, op, state,\n"
    "                                                log, keys, why, inputs/, results/\n"
    "    jobs/N/by-name/<key>/                       the same, by the spec's vertex keys\n"
    "    vertices/<hex>/...                          every vertex of running jobs\n"
    "    cache/keys/<id>/, cache/results/<hex>/      the cache's keys and results\n"
    "    cache/stats                                 what solverfs holds on disk\n"
    "    metrics                                     Prometheus text format\n"
    "\n"
    "Names never contain ':': digests appear as bare hex, a ref \"key:N\" as \"key@N\".\n";

void fs_stat_time_ns(struct stat *st, int64_t ns)
{
	if (ns <= 0)
		return;
	st->st_mtim.tv_sec = ns / 1000000000;
	st->st_mtim.tv_nsec = ns % 1000000000;
	st->st_ctim = st->st_mtim;
	st->st_atim = st->st_mtim;
}

int fs_content_size(struct sfs_fs *fs, const struct fs_desc *d, off_t *ret_size)
{
	struct strbuf sb = STRBUF_INIT;
	int r = fs_kinds[d->kind].module->content(fs, d, &sb);

	*ret_size = (off_t)sb.len;
	strbuf_release(&sb);
	return r;
}

void fs_stat_init(struct sfs_fs *fs, struct stat *st, mode_t mode, uid_t uid, gid_t gid)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = mode;
	st->st_nlink = S_ISDIR(mode) ? 2 : 1;
	st->st_uid = uid;
	st->st_gid = gid;
	st->st_blksize = 4096;
	st->st_mtim = st->st_ctim = st->st_atim = fs->mount_time;
}

static int root_lookup(struct sfs_fs *fs, const struct fs_desc *d, const char *name,
		       struct fs_desc *ret)
{
	if (d->kind != FS_ROOT)
		return -ENOTDIR;
	return fs_kind_lookup(d, name, ret);
}

static int root_readdir(struct sfs_fs *fs, const struct fs_desc *d, struct fs_dirlist *l)
{
	if (d->kind != FS_ROOT)
		return 0;
	return fs_kind_list(d, l);
}

static int root_content(struct sfs_fs *fs, const struct fs_desc *d, struct strbuf *out)
{
	if (d->kind == FS_README) {
		strbuf_add(out, readme_text, sizeof(readme_text) - 1);
		return out->oom ? -ENOMEM : 0;
	}
	return -EISDIR; /* metrics: built by cachesnap.c, never here */
}

static int root_getattr(struct sfs_fs *fs, const struct fs_desc *d, struct stat *st)
{
	fs_stat_init(fs, st, fs_kinds[d->kind].mode, fs->uid, fs->gid);
	switch (d->kind) {
	case FS_ROOT:
		st->st_nlink = 6;
		return 0;
	case FS_METRICS: /* never built here: the last one's size */
		st->st_size = (off_t)fs_cache_snap_size(fs, d->kind);
		clock_gettime(CLOCK_REALTIME, &st->st_mtim);
		return 0;
	default:
		return fs_content_size(fs, d, &st->st_size);
	}
}

const struct fs_module fs_root_module = {
    .lookup = root_lookup,
    .getattr = root_getattr,
    .readdir = root_readdir,
    .content = root_content,
};
