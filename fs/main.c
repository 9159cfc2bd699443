/*
 * main.c — the solverfs program: parse the command line, take STATE_DIR's
 * lock, open the cache and the solver, mount, run the multi-threaded FUSE
 * loop, and on unmount or SIGTERM/SIGINT close everything cleanly.
 *
 * Order matters:
 *   - whatever can be refused (the paths, the FUSE -o options, which
 *     fuse_session_new parses, and sandbox=bwrap's trial run) is checked
 *     before STATE_DIR is created, so a bad command line leaves nothing on disk;
 *   - paths are made absolute and the lock taken before daemonizing, so a
 *     second mount of the same STATE_DIR fails on the terminal;
 *   - with the lock held, no other daemon owns STATE_DIR: the processes of
 *     execs a killed daemon left running are killed before tmp/ is emptied;
 *   - threads do not survive fork(), so in the background the solver (and the
 *     SQLite connection) are opened after fuse_daemonize; the cache is opened
 *     and closed once before it so that its errors still reach stderr;
 *   - the front's own state (inode table, handles, trees, streams, the
 *     invalidation queue) is made before the solver, whose notify callback
 *     uses it, and freed after the solver closed;
 *   - on the way out the solver is closed (jobs cancelled, processes killed,
 *     history saved) before the parked readers are answered and the session
 *     is unmounted.
 */
#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fdio.h"
#include "fs.h"
#include "gc.h"
#include "prune.h"
#include "ops/sandbox.h"

#define FS_MAX_THREADS 64

static int mkdir_p(const char *path)
{
	char *p = strdup(path);
	int r = 0;

	if (!p)
		return -ENOMEM;
	for (char *s = p + 1; r == 0; s++) {
		char c = *s;
		if (c != '/' && c != '\0')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			r = -errno;
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return r;
}

/* True when a is b or lies below it. */
static bool path_within(const char *a, const char *b)
{
	size_t n = strlen(b);

	if (n == 1 && b[0] == '/')
		return true;
	return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/');
}

/*
 * A FUSE daemon that died without unmounting (kill -9, a crash) leaves its
 * mount behind, and every stat of it fails with ENOTCONN: say how to recover.
 */
static int stale_mount(const char *mountpoint, char **ret_msg)
{
	char cwd[PATH_MAX] = "";

	if (mountpoint[0] != '/' && !getcwd(cwd, sizeof(cwd)))
		cwd[0] = '\0';
	return sfs_errf(ret_msg, ENOTCONN,
			"MOUNTPOINT %s%s%s is a stale mount (%s): the solverfs that served it "
			"died without unmounting; unmount it with: fusermount3 -uz %s%s%s",
			cwd, cwd[0] ? "/" : "", mountpoint, strerror(ENOTCONN), cwd,
			cwd[0] ? "/" : "", mountpoint);
}

/*
 * The absolute path STATE_DIR will have, whether or not it exists yet: made
 * absolute and normalised lexically ("." and empty components dropped, ".."
 * taking one away), then its deepest existing ancestor resolved by realpath
 * and the rest appended.  malloc'd, or NULL with errno.
 */
static char *future_path(const char *path)
{
	char cwd[PATH_MAX], *abs = NULL, *base = NULL, *res = NULL;
	size_t n = 0, cut;

	if (path[0] != '/' && !getcwd(cwd, sizeof(cwd)))
		return NULL;
	if (asprintf(&abs, "%s/%s", path[0] == '/' ? "" : cwd, path) < 0)
		return NULL;
	for (char *tok, *save = NULL, *p = abs; (tok = strtok_r(p, "/", &save)); p = NULL) {
		size_t len = strlen(tok);
		if (!strcmp(tok, "."))
			continue;
		if (!strcmp(tok, "..")) {
			while (n > 0 && abs[--n] != '/')
				;
			continue;
		}
		abs[n++] = '/';
		memmove(abs + n, tok, len); /* tok lies at or after abs + n */
		n += len;
	}
	abs[n] = '\0';
	for (cut = n;;) {
		char c = abs[cut];
		abs[cut] = '\0';
		base = realpath(cut ? abs : "/", NULL);
		abs[cut] = c;
		if (base || errno != ENOENT || cut == 0)
			break;
		while (cut > 0 && abs[--cut] != '/')
			;
	}
	if (base && asprintf(&res, "%s%s", strcmp(base, "/") ? base : "", abs + cut) < 0)
		res = NULL;
	if (res && !res[0]) {
		free(res);
		res = strdup("/");
	}
	free(base);
	free(abs);
	return res;
}

/*
 * Checks both paths without creating anything (a bad operand leaves no
 * STATE_DIR behind); fs->state_dir is where STATE_DIR is or will be.
 */
static int check_paths(const struct fs_opts *o, struct sfs_fs *fs, char **ret_msg)
{
	struct stat st;

	fs->state_dir = future_path(o->state_dir);
	if (!fs->state_dir)
		return sfs_errf(ret_msg, errno, "bad STATE_DIR %s: %s", o->state_dir,
				strerror(errno));
	if (stat(fs->state_dir, &st) == 0 && !S_ISDIR(st.st_mode))
		return sfs_errf(ret_msg, ENOTDIR, "STATE_DIR %s is not a directory", o->state_dir);
	if (strncmp(o->mountpoint, "/dev/fd/", 8) == 0)
		return 0; /* mount.fuse3 opened the device for us; no path to check */
	fs->mountpoint = realpath(o->mountpoint, NULL);
	/* realpath need not stat the last component: stat does */
	if ((!fs->mountpoint && errno == ENOTCONN) ||
	    (fs->mountpoint && stat(fs->mountpoint, &st) < 0 && errno == ENOTCONN))
		return stale_mount(o->mountpoint, ret_msg);
	if (!fs->mountpoint)
		return sfs_errf(ret_msg, errno, "bad MOUNTPOINT %s: %s", o->mountpoint,
				strerror(errno));
	if (path_within(fs->state_dir, fs->mountpoint) ||
	    path_within(fs->mountpoint, fs->state_dir))
		return sfs_errf(ret_msg, EINVAL,
				"STATE_DIR %s must not be inside MOUNTPOINT %s or contain it",
				fs->state_dir, fs->mountpoint);
	return 0;
}

/* Creates STATE_DIR (where check_paths said) once everything else was checked,
 * and checks again where it really is (another process may have made a
 * symlink meanwhile). */
static int make_state_dir(const struct fs_opts *o, struct sfs_fs *fs, char **ret_msg)
{
	struct stat st;
	int r = mkdir_p(fs->state_dir);

	if (r < 0)
		return sfs_errf(ret_msg, r, "cannot create STATE_DIR %s: %s", o->state_dir,
				strerror(-r));
	char *real = realpath(fs->state_dir, NULL);
	free(fs->state_dir);
	fs->state_dir = real;
	if (!fs->state_dir || stat(fs->state_dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return sfs_errf(ret_msg, ENOTDIR, "STATE_DIR %s is not a directory", o->state_dir);
	if (fs->mountpoint && (path_within(fs->state_dir, fs->mountpoint) ||
			       path_within(fs->mountpoint, fs->state_dir)))
		return sfs_errf(ret_msg, EINVAL,
				"STATE_DIR %s must not be inside MOUNTPOINT %s or contain it",
				fs->state_dir, fs->mountpoint);
	return 0;
}

/* How long a mount waits for the lock of a daemon that is still exiting (an
 * unmount returns before the old daemon has closed its database). */
#define LOCK_WAIT_MS 30000

/* flock(STATE_DIR/lock), waiting up to LOCK_WAIT_MS for a holder to let go;
 * returns the fd or -errno with a message naming the holder's pid. */
static int take_lock(const char *state_dir, char **ret_msg)
{
	char path[PATH_MAX], buf[32] = "";
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/lock", state_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return sfs_errf(ret_msg, errno, "cannot open %s: %s", path, strerror(errno));
	for (int waited = 0; waited <= LOCK_WAIT_MS; waited += 50) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK)
			break;
		if (waited == 1000)
			sfs_log(SFS_LOG_WARN, "%s is in use: waiting up to %d s for its daemon to exit",
				state_dir, LOCK_WAIT_MS / 1000);
		usleep(50 * 1000);
	}
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	close(fd);
	return sfs_errf(ret_msg, EBUSY, "%s in use by pid %s", state_dir, buf[0] ? buf : "?");
}

/* Reads /proc/<pid>/<what> into buf (NUL-terminated); returns its length or -1. */
static ssize_t read_proc(const char *pid, const char *what, char *buf, size_t size)
{
	char path[300]; /* pid is a d_name of /proc: up to 255 bytes */
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%s/%s", pid, what);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = sfs_read_full(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/*
 * Whether process pid works for an exec below dir ("/x/tmp/"): its cwd is there
 * (sandbox=none), or one of its arguments names an exec's dir there (bwrap's
 * `--bind DIR/exec-XXX/work /work`: inside the sandbox the cwd reads "/work").
 */
static bool works_below(const char *pid, const char *dir)
{
	char args[1 << 16]; /* bwrap's arguments: a few KiB, more with many mounts */
	char path[64], cwd[PATH_MAX];
	size_t dl = strlen(dir);
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%s/cwd", pid);
	n = readlink(path, cwd, sizeof(cwd) - 1);
	if (n > 0 && (cwd[n] = '\0', strncmp(cwd, dir, dl) == 0))
		return true;
	if ((n = read_proc(pid, "cmdline", args, sizeof(args))) <= 0)
		return false;
	for (const char *a = args; a < args + n; a += strlen(a) + 1)
		if (strncmp(a, dir, dl) == 0 && strncmp(a + dl, "exec-", 5) == 0)
			return true;
	return false;
}

/* The session of process pid, when it works for an exec below dir; else 0. */
static pid_t orphan_session(const char *pid, const char *dir)
{
	char buf[512], *p;
	long sid = 0;

	if (!works_below(pid, dir) || read_proc(pid, "stat", buf, sizeof(buf)) <= 0)
		return 0;
	/* "pid (comm) S ppid pgrp session ...": comm may hold anything, so from the last ')' */
	if (!(p = strrchr(buf, ')')) || sscanf(p + 1, " %*c %*d %*d %ld", &sid) != 1)
		return 0;
	return (pid_t)sid;
}

/*
 * A daemon killed with SIGKILL cannot kill its execs: each runs in a session of
 * its own (setsid) with its work dir under STATE_DIR/tmp/, and would go on
 * running, and writing there, after the next mount empties it (bwrap's
 * --die-with-parent does not always take the sandbox down with the daemon: one
 * was seen left running under init).  With the lock held no live daemon owns
 * them, so every session with a process working below tmp/ is killed (a few
 * passes, for processes forked meanwhile; docs/durability.md §5).
 */
static void kill_orphans(const char *state_dir)
{
	char dir[PATH_MAX];
	pid_t self = getsid(0);
	unsigned killed = 0;

	snprintf(dir, sizeof(dir), "%s/tmp/", state_dir);
	for (int pass = 0; pass < 5; pass++) {
		DIR *d = opendir("/proc");
		struct dirent *de;
		unsigned found = 0;

		if (!d)
			return;
		while ((de = readdir(d))) {
			if (de->d_name[0] < '1' || de->d_name[0] > '9')
				continue;
			pid_t sid = orphan_session(de->d_name, dir);
			if (sid <= 1 || sid == self)
				continue;
			/* the exec's process group is its session (setsid) */
			kill(-sid, SIGKILL);
			kill((pid_t)atol(de->d_name), SIGKILL);
			found++;
		}
		closedir(d);
		killed += found;
		if (!found)
			break;
		usleep(20000);
	}
	if (killed)
		sfs_log(SFS_LOG_WARN, "killed %u process%s a previous solverfs left running in %s",
			killed, killed == 1 ? "" : "es", dir);
}

static void write_pid(int fd)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n)
		sfs_log(SFS_LOG_WARN, "cannot write pid into the lock file: %s", strerror(errno));
}

/* sandbox=auto takes bwrap when its probe runs; sandbox=bwrap insists on it. */
static int pick_sandbox(enum fs_sandbox_opt opt, enum sfs_sandbox *ret, char **ret_msg)
{
	bool works = opt != FS_SANDBOX_NONE && sfs_sandbox_probe();

	if (opt == FS_SANDBOX_BWRAP && !works)
		return sfs_errf(ret_msg, ENOTSUP,
				"sandbox=bwrap: bubblewrap does not work here (a trial run of "
				"bwrap failed%s); install it (apt-get install bubblewrap) or "
				"mount with sandbox=none",
				geteuid() == 0 ? ", as root or as nobody" : "");
	if (opt == FS_SANDBOX_AUTO && !works)
		sfs_log(SFS_LOG_WARN, "warning: bubblewrap does not work here: execs run on the "
				      "host, unsandboxed (sandbox=none)");
	*ret = works ? SFS_SANDBOX_BWRAP : SFS_SANDBOX_NONE;
	return 0;
}

static void gc_kick(void *arg, uint64_t ended)
{
	struct sfs_fs *fs = arg;
	cache_gc_kick(fs->gc, ended);
}

static int open_libs(struct sfs_fs *fs, char **ret_msg)
{
	const struct fs_opts *o = fs->opts;
	struct sfs_solver_opts so;
	int r = sfs_cache_open(fs->state_dir, &fs->cache, ret_msg);

	if (r < 0)
		return sfs_err_prefix(ret_msg, r, "cannot open the cache in %s", fs->state_dir);
	/* A prune killed after its commit left blobs to remove, a job killed
	 * before its save left orphans (cache/prune.h): both go before any job
	 * runs, once every result's blobs are known to be referenced. */
	struct cache_prune_report pr = {0};
	uint64_t refs = 0;
	if (cache_prune_recover(fs->cache, &pr, &refs) < 0)
		sfs_log(SFS_LOG_WARN, "finishing an interrupted prune failed; it is retried at the next mount");
	else if (pr.blobs || refs)
		sfs_log(SFS_LOG_INFO,
			"mount: %llu blob references rebuilt; %llu unreferenced blobs removed (%llu bytes)",
			(unsigned long long)refs, (unsigned long long)pr.blobs,
			(unsigned long long)pr.bytes);
	/* before the solver, whose job_ended kicks it; stopped after it closed */
	r = cache_gc_start(fs->cache, &o->gc, GC_PERIOD_NS, fs_notify_collected, fs, &fs->gc);
	if (r < 0)
		return sfs_errf(ret_msg, r, "cannot start the garbage collector: %s", strerror(-r));
	sfs_solver_opts_default(&so);
	so.workers = (int)o->workers;
	so.sandbox = fs->sandbox;
	so.mountpoint = fs->mountpoint;
	so.owner = fs->uid;
	so.jobs_keep = o->jobs_keep;
	so.max_running = o->max_running;
	so.max_pending = o->max_pending;
	so.pending_timeout_ns = (int64_t)o->pending_timeout * 1000000000LL;
	so.log_limit = (size_t)o->log_max;
	so.output_limit = o->output_max;
	so.import_limits.layer_max = o->import_layer_max;
	so.import_limits.entries_max = o->import_entries_max;
	so.import_limits.json_max = o->import_config_max;
	so.registry_ca = o->registry_ca;
	so.insecure_registries = o->insecure_registries;
	so.registry_timeout_ns = (int64_t)o->registry_timeout * 1000000000LL;
	so.status_limit = (size_t)o->status_max;
	so.limits.max_bytes = (size_t)o->spec_max;
	so.limits.max_vertices = o->max_vertices;
	so.limits.max_path = o->path_max;
	so.limits.max_name = o->name_max;
	so.limits.max_inline = (size_t)o->inline_max;
	so.notify = fs_notify;
	so.notify_arg = fs;
	so.job_ended = gc_kick;
	so.job_ended_arg = fs;
	r = sfs_solver_open(fs->cache, &so, &fs->solver, ret_msg);
	if (r < 0)
		return sfs_err_prefix(ret_msg, r, "cannot start the solver");
	sfs_log(SFS_LOG_INFO, "solverfs %s on %s: state %s, %u workers, sandbox %s", SFS_VERSION,
		fs->mountpoint ? fs->mountpoint : o->mountpoint, fs->state_dir, o->workers,
		so.sandbox == SFS_SANDBOX_BWRAP ? sfs_sandbox_bwrap() : "none");
	return 0;
}

static void close_libs(struct sfs_fs *fs)
{
	fs_cachectl_stop(fs); /* its prune uses the cache */
	fs->solver = sfs_solver_close(fs->solver);
	fs->gc = cache_gc_stop(fs->gc);
	fs->cache = sfs_cache_close(fs->cache);
}

/* Opens the cache once in the parent so its errors reach the terminal. */
static int preflight(struct sfs_fs *fs, char **ret_msg)
{
	struct sfs_cache *c = NULL;
	int r = sfs_cache_open(fs->state_dir, &c, ret_msg);

	if (r < 0)
		return sfs_err_prefix(ret_msg, r, "cannot open the cache in %s", fs->state_dir);
	sfs_cache_close(c);
	return 0;
}

static int run_loop(struct fuse_session *se)
{
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	int r;

	if (!cfg)
		return -ENOMEM;
	fuse_loop_cfg_set_max_threads(cfg, FS_MAX_THREADS);
	r = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return r;
}

/* The session of fs->se (made by setup) mounts and serves until unmounted. */
static int serve(struct sfs_fs *fs, int lock_fd, char **ret_msg)
{
	const struct fs_opts *o = fs->opts;
	struct fuse_session *se = fs->se;
	int r = 0;

	if (fuse_set_signal_handlers(se) != 0) {
		r = sfs_errf(ret_msg, EIO, "cannot set signal handlers");
		goto out_destroy;
	}
	if (fuse_session_mount(se, o->mountpoint) != 0) {
		r = sfs_errf(ret_msg, EIO, "cannot mount on %s", o->mountpoint);
		goto out;
	}
	if (!o->foreground) {
		fuse_daemonize(0);
		sfs_log_set_syslog(1);
		write_pid(lock_fd);
		r = open_libs(fs, ret_msg);
		if (r < 0)
			sfs_log(SFS_LOG_ERR, "%s", *ret_msg ? *ret_msg : strerror(-r));
	}
	if (r == 0) {
		fs_notify_set_session(fs, se);
		r = run_loop(se);
	}
	/* From here on notify does nothing: the solver is being torn down. */
	fs_notify_set_session(fs, NULL);
	fs_stream_closing(fs);
	fs_cache_import_stop(fs);
	fs_cachectl_stop(fs);
	fs_cache_snaps_stop(fs); /* its builds read the cache */
	fs->solver = sfs_solver_close(fs->solver); /* cancel jobs, kill, save history */
	fs->gc = cache_gc_stop(fs->gc);
	fs_stream_shutdown(fs);
	fuse_session_unmount(se);
out:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
	fs->se = NULL;
	return r;
}

/* The front's own state (struct sfs_fs in fs.h): before the solver, whose
 * notify callback uses it, is opened. */
static int state_open(struct sfs_fs *fs)
{
	int r = fs_nodes_init(fs);

	if (r == 0)
		r = fs_files_init(fs);
	if (r == 0)
		r = fs_results_init(fs);
	if (r == 0)
		r = fs_stream_init(fs);
	if (r == 0)
		r = fs_notify_init(fs);
	if (r == 0)
		r = fs_cache_import_init(fs);
	if (r == 0)
		r = fs_cachectl_init(fs);
	if (r == 0)
		r = fs_cache_snaps_init(fs);
	return r;
}

/* After the solver closed: the invalidation thread first (it reads the inode
 * table), the handles before the streams they may poll. */
static void state_close(struct sfs_fs *fs)
{
	fs_notify_release(fs);
	fs_cache_import_release(fs);
	fs_cachectl_release(fs);
	fs_files_release(fs);
	fs_cache_snaps_release(fs); /* after the handles bound to snapshots */
	fs_results_release(fs);
	fs_stream_release(fs);
	fs_nodes_release(fs);
}

static int setup(struct fs_opts *o, struct fuse_args *args, struct sfs_fs *fs, int *ret_lock,
		 char **ret_msg)
{
	enum fs_kind bad;
	int r;

	if (fs_kinds_check(&bad) < 0) /* a kind added to fs.h without its row */
		return sfs_errf(ret_msg, EINVAL, "fs/kinds.c: node kind %d has no valid row",
				(int)bad);
	/* Everything that can be refused is refused before STATE_DIR is made: the
	 * paths, the FUSE options (fuse_session_new parses them) and the sandbox. */
	r = check_paths(o, fs, ret_msg);
	if (r < 0)
		return r;
	fs->se = fuse_session_new(args, &fs_ops, sizeof(fs_ops), fs);
	if (!fs->se)
		return sfs_errf(ret_msg, EINVAL, "cannot create the FUSE session (bad -o option?)");
	r = pick_sandbox(o->sandbox, &fs->sandbox, ret_msg);
	if (r == 0)
		r = make_state_dir(o, fs, ret_msg);
	if (r < 0)
		return r;
	r = take_lock(fs->state_dir, ret_msg);
	if (r < 0)
		return r;
	*ret_lock = r;
	/* the pid is this process's until a daemon child writes its own */
	write_pid(*ret_lock);
	kill_orphans(fs->state_dir);
	r = state_open(fs);
	if (r < 0)
		return r;
	if (o->foreground)
		return open_libs(fs, ret_msg);
	return preflight(fs, ret_msg);
}

/*
 * glibc gives each thread that allocates its own arena (up to 8 a core), and
 * memory freed in one is not reused by the others: a solve's short-lived
 * buffers, made on FUSE threads and workers alike, left the daemon's RSS 30 %
 * above its heap.  Two arenas measured no slower (a 10,000-vertex chain on
 * tmpfs: 6.0 s against 6.6 s) with a peak RSS of 55 MB instead of 73 MB.
 * MALLOC_ARENA_MAX in the environment still decides.
 */
static void limit_malloc_arenas(void)
{
	if (!getenv("MALLOC_ARENA_MAX"))
		mallopt(M_ARENA_MAX, 2);
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fs_opts o;
	struct sfs_fs fs = {.opts = &o, .uid = getuid(), .gid = getgid()};
	char *msg = NULL;
	int lock_fd = -1, r;

	limit_malloc_arenas();
	clock_gettime(CLOCK_REALTIME, &fs.mount_time);
	r = fs_opts_parse(&args, &o, &msg);
	if (r == 0 && o.show_help)
		fs_opts_help(argv[0]);
	else if (r == 0 && o.show_version)
		printf("solverfs version %s\nFUSE library version %s\n", SFS_VERSION,
		       fuse_pkgversion());
	if (r < 0 || o.show_help || o.show_version)
		goto out;
	sfs_log_set_debug(o.debug);
	r = setup(&o, &args, &fs, &lock_fd, &msg);
	if (r == 0)
		r = serve(&fs, lock_fd, &msg);
out:
	if (r < 0) /* after daemonizing stderr is /dev/null and syslog has it */
		fprintf(stderr, "solverfs: %s\n", msg ? msg : strerror(-r));
	close_libs(&fs);
	if (fs.se) /* setup failed after making it */
		fuse_session_destroy(fs.se);
	state_close(&fs);
	if (lock_fd >= 0)
		close(lock_fd);
	free(fs.state_dir);
	free(fs.mountpoint);
	free(msg);
	fs_opts_release(&o);
	fuse_opt_free_args(&args);
	return r < 0 ? 1 : 0;
}
