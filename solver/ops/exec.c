/*
 * exec.c — the `exec` op: run a process over a fresh work dir (docs/sandbox.md).
 *
 * One run: a dir under the store's tmp/ (cas_mkdtemp) holds work/, which gets
 * every mount at its relative dest, parents first (mounts sorted by dest), from
 * the input's tree (only the selected path when there is a selector) or empty
 * for an output without input.  Every path below work/ is resolved one
 * component at a time without following symlinks (workdir.h), so a symlink in
 * one mount's tree can never redirect where another mount or the cwd is made.
 * Materialised trees carry no set-uid or set-gid bit (tree_materialize).  When
 * the daemon is root and the job is not, the whole dir is then given to the
 * job's uid, so the process, and bwrap before it, act as the submitter.
 *
 * With the sandbox (sandbox.h) the child execs bwrap, which shows work/ as
 * /work with every read-only input mount bound read-only on top, and runs the
 * args there; HOME is /work unless env sets it.  Without it (sandbox=none) the
 * process runs in the host path of work/, and when the daemon is root the
 * child takes a private mount namespace where every mount is bound onto itself
 * nosuid,nodev, read-only for inputs; every exec's log says it ran unsandboxed.
 *
 * As root, the child first takes a mount namespace of its own without the
 * host's solverfs mounts, which it would otherwise hold open (hostmounts.h).
 * The child gets a new session (its pid is its process group, published in
 * ctx->sig->pgid so the solver can kill it), stdin /dev/null, stdout/stderr on pipes
 * that a poll loop copies into the vertex log, umask 022, exactly the spec's
 * env plus a default PATH, and the job's uid/gid when the job is not root.
 * The loop wakes every 100 ms for cancellation and the timeout.  When the main
 * process exits, its group is SIGKILLed (with the sandbox, the pid namespace
 * goes with it) before the outputs are ingested: each output is opened without
 * following a symlink, and read with the submitter's credentials.  The dir is
 * always removed.
 *
 * All state is in a struct exec_run owned by one worker thread.  The child
 * runs between fork and exec in a copy of a multi-threaded process, so it only
 * makes system calls on memory prepared before the fork.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <ftw.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "array.h"
#include "err.h"
#include "hostmounts.h"
#include "sandbox.h"
#include "strbuf.h"
#include "strv.h"
#include "specop.h"
#include "ops.h"
#include "workdir.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define TAIL_LINES 10
#define TAIL_KEEP (64 * 1024)
#define INFO_FD 3 /* bwrap's --info-fd in the child */

/* The fields of an exec vertex, read once by norm_exec (vertex params). */
struct exec_mount {
	char *dest;	/* relative; "" is the work dir itself */
	char *selector; /* "": the whole input */
	size_t input;	/* the vertex's input, SFS_NORM_NO_INPUT for none */
	bool readonly, output;
};

struct exec_params {
	char **args; /* NULL-terminated, at least one */
	size_t nenv;
	char **env_names, **env_values; /* sorted by name, as in the canonical op */
	char *cwd;			/* relative; "" is the work dir */
	bool network;
	size_t nmounts;
	struct exec_mount *mounts;
	size_t rootfs_input; /* SFS_NORM_NO_INPUT: the host's / */
};

struct mount_plan {
	const char *dest;     /* relative; "." is the work dir itself */
	const char *selector; /* NULL: the whole input */
	int input;	      /* index into the op's inputs, -1 for none */
	bool readonly;	      /* an input mount that is not an output, or `readonly` */
	bool output;
	char *host; /* <workdir>/<dest> */
};

struct exec_run {
	struct sfs_op_ctx *ctx;
	const struct sfs_spec_vertex *v;
	const struct exec_params *op; /* v's fields */
	char *dir;   /* the run's dir in tmp/ */
	char *work;  /* <dir>/work: the work dir as the host sees it */
	int workfd;  /* an O_PATH fd of work */
	size_t nm;
	struct mount_plan *m;
	struct mount_plan **sorted;   /* by dest: parents first */
	int rootfs_input;	      /* the input that is /, or -1 */
	char *rootfs;		      /* <dir>/rootfs, its materialised tree */
	char *cwd;		      /* host path */
	char *inner_cwd;	      /* the same inside the sandbox */
	char **argv, **envp, **cands; /* NULL-terminated; cands: execve candidates */
	char **bargv;		      /* the bwrap command line, or NULL: no sandbox */
	char **detach;		      /* solverfs mount points the child detaches */
	char *joined;		      /* args joined by spaces, for messages */
	bool drop_creds;
	struct strbuf tail; /* recent output, for the error message */
};

/* ---- planning ---- */

static char *host_path(const char *workdir, const char *rel)
{
	char *s = NULL;

	if (!*rel || strcmp(rel, ".") == 0)
		return strdup(workdir);
	return asprintf(&s, "%s/%s", workdir, rel) < 0 ? NULL : s;
}

static int cmp_dest(const void *a, const void *b)
{
	const struct mount_plan *x = *(struct mount_plan *const *)a;
	const struct mount_plan *y = *(struct mount_plan *const *)b;
	const char *dx = strcmp(x->dest, ".") ? x->dest : "";
	const char *dy = strcmp(y->dest, ".") ? y->dest : "";

	return strcmp(dx, dy);
}

static int plan_mounts(struct exec_run *er, size_t ninputs, char **ret_msg)
{
	const struct exec_params *ep = er->op;
	size_t nin = ep->rootfs_input != SFS_NORM_NO_INPUT;

	er->nm = ep->nmounts;
	er->m = calloc(er->nm + 1, sizeof(*er->m));
	er->sorted = calloc(er->nm + 1, sizeof(*er->sorted));
	if (!er->m || !er->sorted)
		return -ENOMEM;
	for (size_t i = 0; i < er->nm; i++) {
		const struct exec_mount *em = &ep->mounts[i];
		struct mount_plan *p = &er->m[i];
		const char *sel = em->selector;

		p->dest = em->dest;
		p->selector = *sel && strcmp(sel, ".") ? sel : NULL;
		p->output = em->output;
		p->input = em->input != SFS_NORM_NO_INPUT ? (int)em->input : -1;
		p->readonly = (p->input >= 0 && !p->output) || em->readonly;
		nin += p->input >= 0;
		if (!(p->host = host_path(er->work, p->dest)))
			return -ENOMEM;
		er->sorted[i] = p;
	}
	er->rootfs_input = ep->rootfs_input != SFS_NORM_NO_INPUT ? (int)ep->rootfs_input : -1;
	if (nin != ninputs)
		return sfs_errf(ret_msg, EINVAL, "%zu inputs for %zu input mounts", ninputs, nin);
	qsort(er->sorted, er->nm, sizeof(*er->sorted), cmp_dest);
	return 0;
}

/* Appends s (owned; NULL is out of memory) to the NULL-terminated *v. */
static int add_cand(char ***v, size_t *n, size_t *cap, char *s)
{
	if (!s || sfs_grow((void **)v, cap, *n + 2, sizeof(**v)) < 0) {
		free(s);
		return -ENOMEM;
	}
	(*v)[(*n)++] = s;
	(*v)[*n] = NULL;
	return 0;
}

/* execvpe over the spec's PATH, decided before the fork. */
static int plan_candidates(struct exec_run *er, const char *path)
{
	const char *a0 = er->argv[0];
	size_t n = 0, cap = 0;
	char *s;

	if (strchr(a0, '/'))
		return add_cand(&er->cands, &n, &cap, strdup(a0));
	for (const char *p = path;; p++) {
		const char *e = strchrnul(p, ':');
		int len = (int)(e - p);
		s = NULL;
		if (asprintf(&s, "%.*s%s%s", len, p, len ? "/" : "", a0) < 0)
			s = NULL;
		if (add_cand(&er->cands, &n, &cap, s) < 0)
			return -ENOMEM;
		if (!*e)
			break;
		p = e;
	}
	return 0;
}

static int plan_command(struct exec_run *er)
{
	const struct exec_params *ep = er->op;
	const char *path = DEFAULT_PATH;
	bool has_path = false, has_home = false;
	struct strbuf j = STRBUF_INIT;
	size_t nargs = 0, n = 0;

	while (ep->args[nargs])
		nargs++;
	er->argv = calloc(nargs + 1, sizeof(char *));
	er->envp = calloc(ep->nenv + 3, sizeof(char *));
	if (!er->argv || !er->envp)
		return -ENOMEM;
	if (nargs == 0)
		return -EINVAL;
	for (size_t i = 0; i < nargs; i++) {
		if (!(er->argv[i] = strdup(ep->args[i])))
			return -ENOMEM;
		strbuf_addstr(&j, i ? " " : "");
		strbuf_addstr(&j, er->argv[i]);
	}
	for (size_t i = 0; i < ep->nenv; i++) {
		const char *k = ep->env_names[i], *x = ep->env_values[i];
		if (asprintf(&er->envp[n], "%s=%s", k, x) < 0)
			return -ENOMEM;
		n++;
		if (strcmp(k, "PATH") == 0) {
			path = x;
			has_path = true;
		}
		has_home |= strcmp(k, "HOME") == 0;
	}
	if (!has_path && !(er->envp[n++] = strdup("PATH=" DEFAULT_PATH)))
		return -ENOMEM;
	if (er->ctx->sandbox == SFS_SANDBOX_BWRAP && !has_home &&
	    !(er->envp[n++] = strdup("HOME=/work")))
		return -ENOMEM;
	if (!(er->joined = strbuf_detach(&j, NULL)))
		return -ENOMEM;
	return plan_candidates(er, path);
}

/* ---- the work dir ---- */

static int mount_err(char **ret_msg, const char *what, const char *dest, int r)
{
	if (r == -ELOOP || r == -ENOTDIR)
		return sfs_errf(ret_msg, r,
				"%s \"%s\" passes through a symlink or a file of another mount",
				what, dest);
	return sfs_errf(ret_msg, r, "%s \"%s\": %s", what, dest, strerror(-r));
}

/* The dir that will hold dest's last component, and that component. */
static int open_parent(struct exec_run *er, const char *dest, int *ret_fd, const char **ret_name)
{
	const char *slash = strrchr(dest, '/');
	char *parent;
	int r;

	*ret_name = slash ? slash + 1 : dest;
	if (!slash)
		return sfs_wd_open_dir(er->workfd, "", false, ret_fd);
	if (!(parent = strndup(dest, (size_t)(slash - dest))))
		return -ENOMEM;
	r = sfs_wd_open_dir(er->workfd, parent, true, ret_fd);
	free(parent);
	return r;
}

/* The input's tree (or its selected path) at path, which must not exist. */
static int materialize_at(struct exec_run *er, struct mount_plan *p, const char *path,
			  const char *const *inputs, char **ret_msg)
{
	struct tree *t = NULL;
	int r;

	if ((r = sfs_op_load_tree(er->ctx, inputs[p->input], &t, ret_msg)) < 0)
		return r;
	r = tree_materialize(er->ctx->cache->cas, t, p->selector, path, p->readonly, ret_msg);
	tree_free(t);
	if (r < 0)
		return sfs_err_prefix(ret_msg, r, "mount \"%s\"", p->dest);
	return 0;
}

/* Fills the mount at dest, below the dir pfd, shadowing what an outer mount put there. */
static int fill_mount(struct exec_run *er, struct mount_plan *p, int pfd, const char *name,
		      const char *const *inputs, char **ret_msg)
{
	char path[PATH_MAX];
	int r;

	if ((r = sfs_wd_fd_path(pfd, name, path, sizeof(path))) < 0)
		return mount_err(ret_msg, "mount", p->dest, r);
	if ((r = cas_rmtree(path)) < 0)
		return mount_err(ret_msg, "mount", p->dest, r);
	if (p->input < 0)
		return mkdirat(pfd, name, 0755) < 0 ? mount_err(ret_msg, "mount", p->dest, -errno)
						    : 0;
	return materialize_at(er, p, path, inputs, ret_msg);
}

static int setup_mount(struct exec_run *er, struct mount_plan *p, const char *const *inputs,
		       char **ret_msg)
{
	const char *name;
	int pfd, r;

	if (strcmp(p->dest, ".") == 0) { /* the work dir itself: sorted first, still empty */
		close(er->workfd);
		er->workfd = -1;
		if (rmdir(er->work) < 0)
			return sfs_errf(ret_msg, errno, "work dir: %m");
		if (p->input < 0)
			r = mkdir(er->work, 0755) < 0 ? -errno : 0;
		else
			r = materialize_at(er, p, er->work, inputs, ret_msg);
		if (r == 0 && (er->workfd = open(er->work, O_PATH | O_DIRECTORY | O_NOFOLLOW |
							       O_CLOEXEC)) < 0)
			r = -errno;
		return r < 0 && !*ret_msg ? sfs_errf(ret_msg, -r, "work dir: %s", strerror(-r)) : r;
	}
	if ((r = open_parent(er, p->dest, &pfd, &name)) < 0)
		return mount_err(ret_msg, "mount", p->dest, r);
	r = fill_mount(er, p, pfd, name, inputs, ret_msg);
	close(pfd);
	return r;
}

static int setup_rootfs(struct exec_run *er, const char *const *inputs, char **ret_msg);

/* Per-thread state of the nftw callback below (nftw passes no argument). */
static _Thread_local struct exec_run *chown_run;

static int chown_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	struct exec_run *er = chown_run;

	if (lchown(path, er->ctx->uid, er->ctx->gid) < 0)
		return FTW_STOP;
	return FTW_CONTINUE;
}

/* The whole run dir becomes the submitter's (nothing runs in it yet). */
static int give_to_submitter(struct exec_run *er, char **ret_msg)
{
	int r;

	chown_run = er;
	r = nftw(er->dir, chown_one, 64, FTW_PHYS | FTW_ACTIONRETVAL);
	chown_run = NULL;
	if (r != 0)
		return sfs_errf(ret_msg, EPERM, "cannot give the work dir to uid %u",
				(unsigned)er->ctx->uid);
	return 0;
}

static int setup_workdir(struct exec_run *er, const char *const *inputs, char **ret_msg)
{
	const char *cwd = er->op->cwd;
	int r, fd;

	for (size_t i = 0; i < er->nm; i++)
		if ((r = setup_mount(er, er->sorted[i], inputs, ret_msg)) < 0)
			return r;
	if ((r = sfs_wd_open_dir(er->workfd, cwd, true, &fd)) < 0)
		return mount_err(ret_msg, "cwd", cwd, r);
	close(fd);
	if (!(er->cwd = host_path(er->work, cwd)) || !(er->inner_cwd = host_path("/work", cwd)))
		return -ENOMEM;
	if (er->rootfs_input >= 0 && (r = setup_rootfs(er, inputs, ret_msg)) < 0)
		return r;
	if (er->drop_creds)
		return give_to_submitter(er, ret_msg);
	return 0;
}

/* ---- the child ---- */

static void child_write(const char *s)
{
	ssize_t n = write(2, s, strlen(s));
	(void)n;
}

/*
 * As root: a mount namespace of the child's own, without the solverfs mounts
 * (hostmounts.h) that bwrap's recursive binds or the copy of the namespace
 * would hold.  False when it has none (not root, or unshare failed): the exec
 * then runs in the daemon's namespace, as an unprivileged daemon's always do.
 */
static bool child_private_ns(struct exec_run *er)
{
	if (geteuid() != 0 || unshare(CLONE_NEWNS) < 0)
		return false;
	/* the type is ignored for these; "none" rather than NULL keeps valgrind quiet */
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0)
		return false;
	/* one that fails stays held: an unmount then waits for the exec to end */
	for (char **p = er->detach; p && *p; p++)
		umount2(*p, MNT_DETACH);
	return true;
}

/* Without the sandbox, as root: inputs read-only, nothing set-uid (see the top comment). */
static void child_bind_mounts(struct exec_run *er)
{
	if (!child_private_ns(er))
		return;
	for (size_t i = 0; i < er->nm; i++) {
		struct mount_plan *p = er->sorted[i];
		if (mount(p->host, p->host, "none", MS_BIND | MS_REC, NULL) < 0)
			continue;
		mount("none", p->host, "none",
		      MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | (p->readonly ? MS_RDONLY : 0),
		      NULL);
	}
}

static bool child_drop_creds(struct exec_run *er)
{
	return syscall(SYS_setgroups, 0, NULL) == 0 && syscall(SYS_setgid, er->ctx->gid) == 0 &&
	       syscall(SYS_setuid, er->ctx->uid) == 0;
}

static void __attribute__((noreturn)) child_main(struct exec_run *er, int nullfd, int out, int err,
						 int info)
{
	sigset_t none;
	int e = ENOENT;

	setsid();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	if (dup2(nullfd, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		_exit(127);
	/* dup2 onto itself would keep O_CLOEXEC */
	if (info >= 0 && (info == INFO_FD ? fcntl(info, F_SETFD, 0) : dup2(info, INFO_FD)) < 0)
		_exit(127);
	close_range(info >= 0 ? INFO_FD + 1 : 3, ~0U, 0);
	umask(022);
	if (!er->bargv)
		child_bind_mounts(er);
	else
		child_private_ns(er); /* bwrap makes its namespace from this one */
	if (chdir(er->bargv ? "/" : er->cwd) < 0) {
		child_write("solverfs: cannot enter the work dir\n");
		_exit(127);
	}
	if (er->drop_creds && !child_drop_creds(er)) {
		child_write("solverfs: cannot drop privileges\n");
		_exit(127);
	}
	if (er->bargv) {
		execve(er->bargv[0], er->bargv, er->envp);
		e = errno;
	}
	for (char **c = er->cands; !er->bargv && *c; c++) {
		execve(*c, er->argv, er->envp);
		if (errno != ENOENT && errno != ENOTDIR)
			e = errno; /* like execvp: report EACCES over a later ENOENT */
	}
	child_write("solverfs: cannot run \"");
	child_write(er->bargv ? er->bargv[0] : er->argv[0]);
	child_write("\": ");
	child_write(strerrordesc_np(e));
	child_write("\n");
	_exit(127);
}

/* ---- the parent's loop ---- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void keep_tail(struct exec_run *er, const char *data, size_t n)
{
	strbuf_add(&er->tail, data, n);
	if (er->tail.len > 2 * TAIL_KEEP) {
		memmove(er->tail.buf, er->tail.buf + er->tail.len - TAIL_KEEP, TAIL_KEEP);
		er->tail.len = TAIL_KEEP;
		er->tail.buf[TAIL_KEEP] = '\0';
	}
}

/* Reads what is there; false at EOF or error. */
static bool drain(struct exec_run *er, int fd, int stream)
{
	char buf[16384];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0)
		return false;
	if (er->ctx->log)
		er->ctx->log(er->ctx->log_arg, stream, buf, (size_t)n);
	keep_tail(er, buf, (size_t)n);
	return true;
}

static void kill_group(pid_t pid)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
}

enum run_end { RUN_EXITED, RUN_TIMEOUT, RUN_CANCELLED };

/*
 * Whether a process of group pgid is still running (not a zombie).  kill(-pgid,
 * 0) is not enough: killed members stay zombies until init reaps them.
 */
static bool group_running(pid_t pgid)
{
	DIR *d;
	struct dirent *de;
	bool running = false;

	if (kill(-pgid, 0) < 0)
		return false;
	if (!(d = opendir("/proc")))
		return false;
	while (!running && (de = readdir(d))) {
		char path[300], buf[512], *p, state;
		long pgrp;
		ssize_t n;
		int fd;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		/* "pid (comm) S ppid pgrp ...": comm may hold anything, so from the last ')'. */
		if ((p = strrchr(buf, ')')) && sscanf(p + 1, " %c %*d %ld", &state, &pgrp) == 2 &&
		    pgrp == pgid && state != 'Z' && state != 'X')
			running = true;
	}
	closedir(d);
	return running;
}

/* A pollable fd that becomes readable when pid exits, or -1 (then we poll every 100 ms). */
static int pid_fd(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	return -1;
#endif
}

/*
 * bwrap's --info-fd: what it wrote so far is in buf (len bytes).  Reads what is
 * there; once the JSON names "child-pid", returns a pidfd of that process (the
 * sandbox's init, opened while bwrap, its parent, still holds it), else -1.
 * *ret_open says whether to keep reading.
 */
static int read_info(int fd, char *buf, size_t cap, size_t *len, bool *ret_open)
{
	ssize_t n = read(fd, buf + *len, cap - 1 - *len);
	const char *at;
	long child;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return -1;
	*ret_open = n > 0 && *len + (size_t)n < cap - 1;
	if (n <= 0)
		return -1;
	*len += (size_t)n;
	buf[*len] = '\0';
	if (!(at = strstr(buf, "\"child-pid\":")) || !strchr(at, '}') ||
	    sscanf(at + strlen("\"child-pid\":"), "%ld", &child) != 1 || child <= 1)
		return -1;
	*ret_open = false;
	return pid_fd((pid_t)child);
}

/*
 * Waits until no process of the exec can still write to the work dir: a member
 * of the main process's group that is not a zombie.  With bwrap, the sandbox's
 * init (nsfd) ends only after every process of its pid namespace has been
 * reaped (the kernel kills them when the init dies), and every member of the
 * group outside the namespace is bwrap itself, already reaped: so the init's
 * end is the answer, without looking at /proc.  Otherwise /proc is scanned.
 */
static void wait_group(pid_t pid, int nsfd)
{
	if (nsfd >= 0) {
		struct pollfd p = {.fd = nsfd, .events = POLLIN};
		int n;
		while ((n = poll(&p, 1, 2000)) < 0 && errno == EINTR)
			;
		if (n > 0)
			return;
	}
	for (int i = 0; i < 2000 && group_running(pid); i++)
		usleep(1000);
}

/* Waits for the main process, copying output; kills the group when it ends.
 * info is bwrap's --info-fd pipe, or -1. */
static enum run_end supervise(struct exec_run *er, pid_t pid, int fds[2], int info,
			      int *ret_status)
{
	uint64_t start = now_ms(), deadline = 0;
	struct pollfd pfd[4] = {{.fd = fds[0], .events = POLLIN},
				{.fd = fds[1], .events = POLLIN},
				{.fd = pid_fd(pid), .events = POLLIN},
				{.fd = info, .events = POLLIN}};
	enum run_end end = RUN_EXITED;
	bool exited = false, info_open;
	char infobuf[256];
	size_t infolen = 0;
	int nsfd = -1;
	siginfo_t si;

	for (;;) {
		if (!exited) {
			si.si_pid = 0;
			/* WNOWAIT: the group is killed while its leader's pid is still held. */
			if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
			    si.si_pid == pid) {
				exited = true;
				kill_group(pid);
				if (pfd[2].fd >= 0)
					close(pfd[2].fd);
				pfd[2].fd = -1;
				deadline = now_ms() + 2000; /* for the pipes to close */
			} else if (sfs_op_cancelled(er->ctx) && end == RUN_EXITED) {
				end = RUN_CANCELLED;
				kill_group(pid);
			} else if (er->v->timeout > 0 && end == RUN_EXITED &&
				   now_ms() - start >= (uint64_t)er->v->timeout * 1000) {
				end = RUN_TIMEOUT;
				kill_group(pid);
			}
		}
		if (exited && ((pfd[0].fd < 0 && pfd[1].fd < 0) || now_ms() > deadline))
			break;
		if (poll(pfd, 4, 100) <= 0)
			continue;
		for (int i = 0; i < 2; i++)
			if (pfd[i].fd >= 0 && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
			    !drain(er, pfd[i].fd, i + 1))
				pfd[i].fd = -1;
		if (pfd[3].fd >= 0 && (pfd[3].revents & (POLLIN | POLLHUP | POLLERR))) {
			info_open = true;
			if (nsfd < 0)
				nsfd = read_info(pfd[3].fd, infobuf, sizeof(infobuf), &infolen,
						 &info_open);
			if (!info_open)
				pfd[3].fd = -1;
		}
	}
	while (waitpid(pid, ret_status, 0) < 0 && errno == EINTR)
		;
	if (nsfd < 0 && pfd[3].fd >= 0) /* bwrap wrote it before the loop saw it */
		nsfd = read_info(pfd[3].fd, infobuf, sizeof(infobuf), &infolen, &info_open);
	/* The killed members must be gone before the outputs are read. */
	wait_group(pid, nsfd);
	if (nsfd >= 0)
		close(nsfd);
	return end;
}

/* The last TAIL_LINES lines of the output. */
static const char *tail_lines(struct exec_run *er)
{
	size_t len = er->tail.len;
	int lines = 0;

	if (!er->tail.buf || len == 0)
		return "";
	while (len > 0 && er->tail.buf[len - 1] == '\n')
		er->tail.buf[--len] = '\0';
	for (size_t i = len; i-- > 0;)
		if (er->tail.buf[i] == '\n' && ++lines == TAIL_LINES)
			return er->tail.buf + i + 1;
	return er->tail.buf;
}

static int run_failed(struct exec_run *er, enum run_end end, int status, char **ret_msg)
{
	const char *tail = tail_lines(er), *sep = *tail ? "\n" : "";
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);

	if (end == RUN_CANCELLED)
		return sfs_errf(ret_msg, ECANCELED, "cancelled");
	if (end == RUN_TIMEOUT)
		return sfs_errf(
		    ret_msg, ETIMEDOUT,
		    "process \"%s\" did not complete successfully: timeout after %ds%s%s",
		    er->joined, er->v->timeout, sep, tail);
	return sfs_errf(ret_msg, EIO,
			"process \"%s\" did not complete successfully: exit code: %d%s%s",
			er->joined, code, sep, tail);
}

static int run_process(struct exec_run *er, char **ret_msg)
{
	int out[2] = {-1, -1}, err[2] = {-1, -1}, info[2] = {-1, -1}, nullfd, status = 0, r = 0;
	enum run_end end;
	pid_t pid;

	/* without the list the exec still runs, holding the mounts (hostmounts.h) */
	if (geteuid() == 0 && (r = sfs_hostmounts_read(er->ctx->mountpoint, &er->detach)) < 0) {
		sfs_log(SFS_LOG_WARN, "exec: cannot read /proc/self/mountinfo: %s: its"
			" namespace keeps the solverfs mounts", strerror(-r));
		r = 0;
	}
	nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (nullfd < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 ||
	    (er->bargv && pipe2(info, O_CLOEXEC | O_NONBLOCK) < 0)) {
		r = sfs_errf(ret_msg, errno, "cannot start the process: %m");
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		r = sfs_errf(ret_msg, errno, "fork: %m");
		goto out;
	}
	if (pid == 0)
		child_main(er, nullfd, out[1], err[1], info[1]);
	sfs_op_set_pgid(er->ctx, pid);
	close(out[1]);
	close(err[1]);
	if (info[1] >= 0)
		close(info[1]);
	out[1] = err[1] = info[1] = -1;
	end = supervise(er, pid, (int[2]){out[0], err[0]}, info[0], &status);
	sfs_op_set_pgid(er->ctx, 0);
	if (end != RUN_EXITED || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		r = run_failed(er, end, status, ret_msg);
out:
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
		if (info[i] >= 0)
			close(info[i]);
	}
	if (nullfd >= 0)
		close(nullfd);
	return r;
}

/* ---- outputs ---- */

/* An error naming paths as the process saw them, not by the run's dir. */
static int output_err(struct exec_run *er, struct mount_plan *p, int r, char *m, char **ret_msg)
{
	const char *s = m ? m : strerror(-r);
	size_t wl = strlen(er->work);
	const char *at = strstr(s, er->work);

	if (at && at[wl] == '/')
		sfs_errf(ret_msg, r, "output \"%s\": %.*s%s", p->dest, (int)(at - s), s,
			 at + wl + 1);
	else
		sfs_errf(ret_msg, r, "output \"%s\": %s", p->dest, s);
	free(m);
	return r;
}

/* Opened without following a link anywhere below work/, read as the submitter. */
static int collect_output(struct exec_run *er, struct mount_plan *p, char ret[SFS_DIGEST_SIZE],
			  char **ret_msg)
{
	struct sfs_creds cr;
	struct tree_ingest_opts o = {
	    .special = TREE_SPECIAL_FAIL, .creds = &cr, .max_bytes = er->ctx->output_limit};
	const char *name = strrchr(p->dest, '/');
	struct tree *t = NULL;
	char *m = NULL;
	int fd, r;

	if ((r = sfs_creds_enter(&cr, er->ctx->uid, er->ctx->gid)) < 0)
		return sfs_errf(ret_msg, r, "cannot take the credentials of uid %u",
				(unsigned)er->ctx->uid);
	r = sfs_wd_open(er->workfd, strcmp(p->dest, ".") ? p->dest : "", O_RDONLY | O_NONBLOCK,
			&fd);
	if (r < 0) {
		sfs_creds_leave(&cr);
		return sfs_errf(ret_msg, ENOTDIR, "output \"%s\" is not a directory anymore",
				p->dest);
	}
	r = tree_ingest_fd(er->ctx->cache->cas, fd, p->host, name ? name + 1 : p->dest, &o, &t,
			   &m);
	close(fd);
	sfs_creds_leave(&cr);
	if (r == -EFBIG) {
		free(m);
		return sfs_errf(ret_msg, EFBIG, "output \"%s\" holds more than output_max (%" PRIu64
				" bytes)", p->dest, er->ctx->output_limit);
	}
	if (r < 0)
		return output_err(er, p, r, m, ret_msg);
	memcpy(ret, t->id, SFS_DIGEST_SIZE);
	tree_free(t);
	return 0;
}

/* ---- the sandbox ---- */

/* The input's tree as the sandbox's /, with the dirs it mounts over made. */
static int setup_rootfs(struct exec_run *er, const char *const *inputs, char **ret_msg)
{
	static const char *const dirs[] = {"work", "tmp", "dev", "proc", NULL};
	struct mount_plan p = {.dest = "rootfs", .input = er->rootfs_input, .readonly = false};
	int r;

	if (er->ctx->sandbox != SFS_SANDBOX_BWRAP)
		return sfs_errf(ret_msg, ENOTSUP, "rootfs needs the sandbox (mount with sandbox=bwrap)");
	if (asprintf(&er->rootfs, "%s/rootfs", er->dir) < 0) {
		er->rootfs = NULL;
		return -ENOMEM;
	}
	if ((r = materialize_at(er, &p, er->rootfs, inputs, ret_msg)) < 0)
		return r;
	for (const char *const *d = dirs; *d; d++) {
		char *path = host_path(er->rootfs, *d);
		struct stat st;
		if (!path)
			return -ENOMEM;
		/* a dir of the tree may be read-only: root makes its mount points anyway */
		r = lstat(path, &st) == 0 ? (S_ISDIR(st.st_mode) ? 0 : -ENOTDIR)
					  : (mkdir(path, 0755) < 0 ? -errno : 0);
		free(path);
		if (r < 0)
			return sfs_errf(ret_msg, r, "rootfs: /%s: %s", *d, strerror(-r));
	}
	return 0;
}

/* bwrap's command line: read-only input mounts are bound read-only on top of /work. */
static int plan_sandbox(struct exec_run *er)
{
	struct sfs_sandbox_bind *b = calloc(er->nm + 1, sizeof(*b));
	struct sfs_sandbox_cmd c = {.state_dir = er->ctx->cache->state_dir,
				    .mountpoint = er->ctx->mountpoint,
				    .rootfs = er->rootfs,
				    .work = er->work,
				    .binds = b,
				    .cwd = er->inner_cwd,
				    .network = er->op->network,
				    .as_root = geteuid() == 0 && er->ctx->uid == 0,
				    .info_fd = INFO_FD,
				    .argv = er->argv};
	char **dests = calloc(er->nm + 1, sizeof(*dests));
	int r = b && dests ? 0 : -ENOMEM;

	for (size_t i = 0; i < er->nm && r == 0; i++) {
		struct mount_plan *p = er->sorted[i];
		if (strcmp(p->dest, ".") == 0) {
			c.work_ro = p->readonly;
			continue;
		}
		if (!p->readonly)
			continue;
		if (!(dests[c.nbinds] = host_path("/work", p->dest))) {
			r = -ENOMEM;
			break;
		}
		b[c.nbinds] = (struct sfs_sandbox_bind){p->host, dests[c.nbinds], true};
		c.nbinds++;
	}
	if (r == 0)
		r = sfs_sandbox_argv(&c, &er->bargv);
	for (size_t i = 0; dests && dests[i]; i++)
		free(dests[i]);
	free(dests);
	free(b);
	return r;
}

/* ---- the op ---- */

static void exec_run_release(struct exec_run *er)
{
	if (er->workfd >= 0)
		close(er->workfd);
	if (er->dir)
		cas_rmtree(er->dir);
	free(er->dir);
	free(er->work);
	free(er->rootfs);
	for (size_t i = 0; er->m && i < er->nm; i++)
		free(er->m[i].host);
	free(er->m);
	free(er->sorted);
	free(er->cwd);
	free(er->inner_cwd);
	strv_free_argv(er->argv);
	strv_free_argv(er->envp);
	strv_free_argv(er->cands);
	strv_free_argv(er->bargv);
	strv_free_argv(er->detach);
	free(er->joined);
	strbuf_release(&er->tail);
}

/* The run's dir in tmp/ and its work/, open for the *at calls. */
static int make_run_dir(struct exec_run *er, char **ret_msg)
{
	int r = cas_mkdtemp(er->ctx->cache->cas, "exec-", &er->dir);

	if (r < 0)
		return sfs_errf(ret_msg, r, "cannot create the work dir: %s", strerror(-r));
	if (!(er->work = host_path(er->dir, "work")))
		return -ENOMEM;
	if (mkdir(er->work, 0755) < 0 ||
	    (er->workfd = open(er->work, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return sfs_errf(ret_msg, errno, "cannot create the work dir: %m");
	return 0;
}

static int exec_prepare(struct exec_run *er, const char *const *inputs, size_t ninputs,
			char **ret_msg)
{
	int r;

	if ((r = make_run_dir(er, ret_msg)) < 0 || (r = plan_mounts(er, ninputs, ret_msg)) < 0)
		return r;
	if ((r = plan_command(er)) == -EINVAL)
		return sfs_errf(ret_msg, r, "args must be a non-empty array of strings");
	if (r < 0 || (r = setup_workdir(er, inputs, ret_msg)) < 0)
		return r;
	if (er->ctx->sandbox == SFS_SANDBOX_BWRAP)
		return plan_sandbox(er);
	sfs_op_logf(er->ctx, "solverfs: warning: no sandbox (sandbox=none): this process runs "
			     "on the host, in %s",
		    er->cwd);
	return 0;
}

static int exec_exec(struct sfs_op *op, struct sfs_op_ctx *ctx, const char *const *inputs,
		     size_t ninputs, char (*outputs)[SFS_DIGEST_SIZE], char **ret_msg)
{
	struct exec_run er = {.ctx = ctx, .v = op->v, .workfd = -1, .tail = STRBUF_INIT};
	size_t k = 0;
	int r;

	er.drop_creds = geteuid() == 0 && ctx->uid != 0;
	er.op = op->v->params;
	if ((r = exec_prepare(&er, inputs, ninputs, ret_msg)) < 0)
		goto out;
	if (sfs_op_cancelled(ctx)) {
		r = sfs_errf(ret_msg, ECANCELED, "cancelled");
		goto out;
	}
	if ((r = run_process(&er, ret_msg)) < 0)
		goto out;
	for (size_t i = 0; i < er.nm && r == 0; i++)
		if (er.m[i].output)
			r = collect_output(&er, &er.m[i], outputs[k++], ret_msg);
out:
	if (r == -ENOMEM)
		sfs_errf(ret_msg, r, "out of memory");
	exec_run_release(&er);
	return r;
}

/* ---- the spec side: fields and normaliser (specop.h) ---- */

static const char *const exec_fields[] = {"args",    "env",	"cwd",	  "mounts",
					  "timeout", "network", "rootfs", NULL};

static int norm_args(struct sfs_norm *c, json_t *raw, json_t *op, struct strbuf *sum)
{
	json_t *args = json_object_get(raw, "args"), *out, *a;
	size_t i;

	if (!args)
		return sfs_norm_err(c, "", "args", "is required");
	if (!json_is_array(args) || json_array_size(args) == 0)
		return sfs_norm_err(c, "", "args", "must be a non-empty array of strings");
	out = json_array();
	if (!out)
		return -ENOMEM;
	json_array_foreach(args, i, a)
	{
		if (!json_is_string(a) || (i == 0 && json_string_length(a) == 0)) {
			json_decref(out);
			return sfs_norm_err(c, "", "args", "must be a non-empty array of strings");
		}
		sfs_norm_check(c, json_array_append(out, a));
		strbuf_addf(sum, "%s%s", i ? " " : "", json_string_value(a));
	}
	sfs_norm_set(c, op, "args", out);
	return 0;
}

static int norm_env(struct sfs_norm *c, json_t *raw, json_t *op)
{
	json_t *env = json_object_get(raw, "env"), *out, *val;
	const char *k;
	char e[128];

	if (env && !json_is_object(env))
		return sfs_norm_err(c, "", "env", "must be an object of strings");
	out = json_object();
	if (!out)
		return -ENOMEM;
	json_object_foreach(env, k, val)
	{
		if (!*k || strchr(k, '=') || !json_is_string(val)) {
			json_decref(out);
			return sfs_norm_err(c, "env", sfs_norm_esc(e, sizeof(e), k),
					    "must be a string, named without '='");
		}
		sfs_norm_check(c, json_object_set(out, k, val));
	}
	sfs_norm_set(c, op, "env", out);
	return 0;
}

static int norm_mount(struct sfs_norm *c, size_t i, json_t *m, json_t *list, struct strmap *dests,
		      struct exec_mount *em, size_t *noutputs)
{
	static const char *const f[] = {"dest", "input", "selector", "readonly", "output", NULL};
	char fp[32];
	const char *dest, *sel;
	bool ro = false, out = false;
	json_t *in;
	json_t *ph = json_null();
	int r;

	snprintf(fp, sizeof(fp), "mounts[%zu]", i);
	if (!json_is_object(m))
		return sfs_norm_err(c, fp, "", "must be an object");
	in = json_object_get(m, "input");
	r = sfs_norm_unknown_fields(c, fp, m, f, NULL);
	if (r == 0)
		r = sfs_norm_path(c, m, fp, "dest", true, true, NULL, &dest);
	if (r == 0)
		r = sfs_norm_path(c, m, fp, "selector", false, true, "", &sel);
	if (r == 0)
		r = sfs_norm_bool(c, m, fp, "readonly", &ro);
	if (r == 0)
		r = sfs_norm_bool(c, m, fp, "output", &out);
	if (r == 0 && ro && out)
		r = sfs_norm_err(c, fp, "readonly", "an output mount cannot be read-only");
	if (r == 0 && *sel && (!in || json_is_null(in)))
		r = sfs_norm_err(c, fp, "selector", "needs an input");
	if (r == 0 && strmap_get(dests, dest))
		r = sfs_norm_err(c, fp, "dest", "another mount has the same dest");
	if (r == 0)
		r = strmap_put(dests, dest, (void *)1, NULL);
	if (r == 0 && in && !json_is_null(in)) {
		ph = NULL;
		r = sfs_norm_ref(c, in, fp, "input", "mounts", sel, !out, &em->input, &ph);
	}
	if (r < 0)
		return r;
	em->readonly = ro;
	em->output = out;
	if (!(em->dest = strdup(dest)) || !(em->selector = strdup(sel))) {
		json_decref(ph);
		return -ENOMEM;
	}
	json_t *o = json_object();
	if (!sfs_norm_ok(c, o)) {
		json_decref(ph);
		return -ENOMEM;
	}
	sfs_norm_put(c, o, "input", ph);
	sfs_norm_set(c, o, "dest", json_string(dest));
	sfs_norm_set(c, o, "selector", json_string(sel));
	sfs_norm_set(c, o, "readonly", json_boolean(ro));
	sfs_norm_set(c, o, "output", json_boolean(out));
	sfs_norm_put(c, list, NULL, o);
	*noutputs += out;
	return 0;
}

/*
 * `rootfs`: the last input of the exec, a whole tree.  Written only when given,
 * so that the digests of execs without it stay what they were before the
 * field existed.
 */
static int norm_rootfs(struct sfs_norm *c, json_t *raw, json_t *op, size_t *input)
{
	json_t *rf = json_object_get(raw, "rootfs"), *ph;
	int r;

	if (!rf || json_is_null(rf))
		return 0;
	if ((r = sfs_norm_ref(c, rf, "", "rootfs", "rootfs", NULL, true, input, &ph)) < 0)
		return r;
	sfs_norm_put(c, op, "rootfs", ph);
	return sfs_norm_oom(c) ? -ENOMEM : 0;
}

static void exec_params_free(void *params)
{
	struct exec_params *ep = params;

	strv_free_argv(ep->args);
	for (size_t i = 0; i < ep->nenv; i++) {
		free(ep->env_names[i]);
		free(ep->env_values[i]);
	}
	free(ep->env_names);
	free(ep->env_values);
	free(ep->cwd);
	for (size_t i = 0; i < ep->nmounts; i++) {
		free(ep->mounts[i].dest);
		free(ep->mounts[i].selector);
	}
	free(ep->mounts);
	free(ep);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* args and env of the normalised op into ep; env sorted by name, the order of
 * the canonical op (and so of an exec's environment, as before). */
static int exec_params_command(struct exec_params *ep, const json_t *op)
{
	const json_t *args = json_object_get(op, "args"), *env = json_object_get(op, "env");
	size_t n = json_array_size(args), i, k = 0;
	const char *name;
	json_t *x;

	ep->args = calloc(n + 1, sizeof(*ep->args));
	ep->nenv = json_object_size(env);
	ep->env_names = calloc(ep->nenv + 1, sizeof(*ep->env_names));
	ep->env_values = calloc(ep->nenv + 1, sizeof(*ep->env_values));
	if (!ep->args || !ep->env_names || !ep->env_values)
		return -ENOMEM;
	json_array_foreach(args, i,
			   x) if (!(ep->args[i] = strdup(json_string_value(x)))) return -ENOMEM;
	json_object_foreach((json_t *)env, name,
			    x) if (!(ep->env_names[k++] = strdup(name))) return -ENOMEM;
	qsort(ep->env_names, ep->nenv, sizeof(*ep->env_names), cmp_name);
	for (k = 0; k < ep->nenv; k++)
		if (!(ep->env_values[k] =
			  strdup(json_string_value(json_object_get(env, ep->env_names[k])))))
			return -ENOMEM;
	return 0;
}

static int norm_exec(struct sfs_norm *c, json_t *raw, json_t *op, struct strbuf *sum)
{
	json_t *mounts = json_object_get(raw, "mounts"), *m, *t = json_object_get(raw, "timeout");
	struct strmap dests = STRMAP_INIT;
	struct exec_params *ep;
	const char *cwd;
	bool net = false;
	size_t i;
	int r = norm_args(c, raw, op, sum);

	if (r == 0)
		r = norm_env(c, raw, op);
	if (r == 0)
		r = sfs_norm_path(c, raw, "", "cwd", false, true, "", &cwd);
	if (r == 0)
		r = sfs_norm_bool(c, raw, "", "network", &net);
	if (r == 0 && net && !sfs_norm_ctx(c)->allow_network)
		r = sfs_norm_err(c, "", "network", "network access is not allowed here");
	if (r == 0 && t &&
	    (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > INT_MAX))
		r = sfs_norm_err(c, "", "timeout", "must be a whole number of seconds (0: none)");
	if (r == 0 && mounts && !json_is_array(mounts))
		r = sfs_norm_err(c, "", "mounts", "must be an array of mounts");
	if (r < 0)
		return r;
	if (!(ep = sfs_norm_vertex(c)->params = calloc(1, sizeof(*ep))))
		return -ENOMEM;
	ep->rootfs_input = SFS_NORM_NO_INPUT;
	ep->network = net;
	ep->mounts = calloc(json_array_size(mounts) + 1, sizeof(*ep->mounts));
	if (!ep->mounts || !(ep->cwd = strdup(cwd)) || exec_params_command(ep, op) < 0)
		return -ENOMEM;
	sfs_norm_vertex(c)->timeout = t ? (int)json_integer_value(t) : 0;
	sfs_norm_set(c, op, "cwd", json_string(cwd));
	sfs_norm_set(c, op, "network", json_boolean(net));
	json_t *list = json_array();
	if (!sfs_norm_ok(c, list))
		return -ENOMEM;
	sfs_norm_put(c, op, "mounts", list);
	if (sfs_norm_oom(c))
		return -ENOMEM;
	sfs_norm_vertex(c)->noutputs = 0;
	json_array_foreach(mounts, i, m)
	{
		ep->mounts[i].input = SFS_NORM_NO_INPUT;
		ep->nmounts = i + 1;
		r = norm_mount(c, i, m, list, &dests, &ep->mounts[i],
			       &sfs_norm_vertex(c)->noutputs);
		if (r < 0)
			break;
	}
	strmap_release(&dests);
	return r == 0 ? norm_rootfs(c, raw, op, &ep->rootfs_input) : r;
}

/* One output per mount with output true, counted before anything is checked. */
static size_t exec_noutputs(json_t *raw)
{
	json_t *m;
	size_t i, n = 0;

	json_array_foreach(json_object_get(raw, "mounts"), i, m) n +=
	    json_is_true(json_object_get(m, "output"));
	return n;
}

/* A mount's selector is in its input's cache map dep, not in the op's map.
 * Structural, not by name alone: an env variable may be called "selector". */
static bool exec_map_skip(const json_t *op, const json_t *obj, const char *key)
{
	/* mounts are the only other objects but env */
	return obj != op && obj != json_object_get(op, "env") && strcmp(key, "selector") == 0;
}

const struct sfs_op_type sfs_op_exec = {
    .name = "exec",
    .fields = exec_fields,
    .normalise = norm_exec,
    .noutputs = exec_noutputs,
    .map_skip = exec_map_skip,
    .params_free = exec_params_free,
    .exec = exec_exec,
};
