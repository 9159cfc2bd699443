/*
 * sandbox.c — bubblewrap: the probe run at mount and the command line of one
 * exec (sandbox.h, docs/sandbox.md).
 *
 * The probe runs a real sandbox of the shape execs get (`bwrap ... true`):
 * binaries exist in many places where user namespaces or mounts are refused
 * (containers, hardened kernels), so only a run says whether it works.  When
 * the daemon is root it also runs it as nobody, because execs of other users'
 * jobs run bwrap unprivileged (in a user namespace).
 *
 * The host's / is bound one top-level entry at a time (symlinks such as
 * /bin -> usr/bin recreated), so that /work, /tmp and /run can be made on the
 * sandbox's own root instead of in the read-only host tree.
 */
#include "sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "array.h"
#include "op.h"
#include "strv.h"

#define PROBE_UID 65534 /* nobody */

static const char *const bwrap_paths[] = {"/usr/bin/bwrap", "/bin/bwrap", "/usr/local/bin/bwrap",
					  NULL};
static const char *bwrap_found; /* set once, by the probe at mount */

/* Capabilities a root job keeps (of bwrap's full set): what package builds use. */
static const char *const root_caps[] = {"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER",
					"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", NULL};

/* Host top-level entries that the sandbox makes its own. */
static const char *const own_dirs[] = {"proc", "dev", "tmp", "run", "work", NULL};

const char *sfs_sandbox_bwrap(void)
{
	return bwrap_found;
}

/* ---- building the vector ---- */

struct argv {
	char **v;
	size_t n, cap;
	int err;
};

static void add(struct argv *a, const char *s)
{
	if (a->err)
		return;
	if ((a->err = sfs_grow((void **)&a->v, &a->cap, a->n + 2, sizeof(*a->v))) < 0)
		return;
	if (!(a->v[a->n] = strdup(s))) {
		a->err = -ENOMEM;
		return;
	}
	a->v[++a->n] = NULL;
}

static void add3(struct argv *a, const char *x, const char *y, const char *z)
{
	add(a, x);
	add(a, y);
	if (z)
		add(a, z);
}

static bool in_list(const char *const *l, const char *s)
{
	for (; *l; l++)
		if (strcmp(*l, s) == 0)
			return true;
	return false;
}

/* The host's / read-only, entry by entry. */
static void add_host_root(struct argv *a)
{
	DIR *d = opendir("/");
	struct dirent *de;

	if (!d) {
		a->err = -errno;
		return;
	}
	while ((de = readdir(d))) {
		char path[NAME_MAX + 2], target[PATH_MAX];
		struct stat st;
		ssize_t n;

		if (de->d_name[0] == '.' || in_list(own_dirs, de->d_name))
			continue;
		snprintf(path, sizeof(path), "/%s", de->d_name);
		if (lstat(path, &st) < 0)
			continue;
		if (S_ISLNK(st.st_mode)) {
			if ((n = readlink(path, target, sizeof(target) - 1)) < 0)
				continue;
			target[n] = '\0';
			add3(a, "--symlink", target, path);
		} else if (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)) {
			add3(a, "--ro-bind", path, path);
		}
	}
	closedir(d);
}

/* Is path at or below dir? */
static bool below(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* An empty tmpfs over path, unless a private dir already replaced it. */
static void add_hidden(struct argv *a, const char *path)
{
	if (!path || !*path || below(path, "/tmp") || below(path, "/run") ||
	    below(path, "/proc") || below(path, "/dev"))
		return;
	add3(a, "--tmpfs", path, NULL);
}

int sfs_sandbox_argv(const struct sfs_sandbox_cmd *c, char ***ret)
{
	struct argv a = {0};

	add(&a, bwrap_found ? bwrap_found : "bwrap");
	add3(&a, "--die-with-parent", "--unshare-all", NULL);
	if (c->network)
		add(&a, "--share-net");
	add3(&a, "--hostname", "solverfs", NULL);
	if (c->info_fd > 2) {
		char fd[16];
		snprintf(fd, sizeof(fd), "%d", c->info_fd);
		add3(&a, "--info-fd", fd, NULL);
	}
	if (c->as_root) {
		add3(&a, "--cap-drop", "ALL", NULL);
		for (const char *const *k = root_caps; *k; k++)
			add3(&a, "--cap-add", *k, NULL);
	}
	if (c->rootfs) {
		add3(&a, "--ro-bind", c->rootfs, "/");
	} else {
		add_host_root(&a);
		add_hidden(&a, c->state_dir);
		add_hidden(&a, c->mountpoint);
		add3(&a, "--tmpfs", "/run", NULL);
	}
	add3(&a, "--dev", "/dev", NULL);
	add3(&a, "--proc", "/proc", NULL);
	add3(&a, "--tmpfs", "/tmp", NULL);
	add3(&a, c->work_ro ? "--ro-bind" : "--bind", c->work, "/work");
	for (size_t i = 0; i < c->nbinds; i++)
		add3(&a, c->binds[i].ro ? "--ro-bind" : "--bind", c->binds[i].src,
		     c->binds[i].dest);
	if (!c->rootfs)
		add3(&a, "--remount-ro", "/", NULL); /* the sandbox's own root, where /work is */
	add3(&a, "--chdir", c->cwd, "--");
	for (char *const *p = c->argv; *p; p++)
		add(&a, *p);
	if (a.err) {
		strv_free_argv(a.v);
		return a.err;
	}
	*ret = a.v;
	return 0;
}

/* ---- the probe ---- */

/* Runs a trivial sandbox, as uid (when root) or as the daemon (uid < 0). */
static bool probe_as(const char *bwrap, long uid)
{
	char *argv[] = {(char *)bwrap, "--die-with-parent", "--unshare-all", "--ro-bind", "/", "/",
			"--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "true", NULL};
	char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return false;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
			_exit(127);
		if (uid >= 0 && (syscall(SYS_setgroups, 0, NULL) < 0 ||
				 syscall(SYS_setgid, (gid_t)uid) < 0 ||
				 syscall(SYS_setuid, (uid_t)uid) < 0))
			_exit(127);
		execve(bwrap, argv, envp);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return false;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

bool sfs_sandbox_probe(void)
{
	for (const char *const *p = bwrap_paths; *p; p++) {
		if (access(*p, X_OK) != 0)
			continue;
		if (!probe_as(*p, -1) || (geteuid() == 0 && !probe_as(*p, PROBE_UID)))
			return false;
		bwrap_found = *p;
		return true;
	}
	return false;
}
