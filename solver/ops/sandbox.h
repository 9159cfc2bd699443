/*
 * sandbox.h — bubblewrap: whether it works here, and the command line that
 * runs one exec in it (docs/sandbox.md).
 *
 * Inside: the host's / read-only (or an input's tree, `rootfs`) with STATE_DIR
 * and MOUNTPOINT hidden under empty tmpfs; a private /tmp and /run, a minimal
 * /dev, a fresh /proc in new pid, ipc, uts and user namespaces (hostname
 * "solverfs"), no network unless asked; the work dir at /work and the mounts
 * bound on top of it in order.  bwrap's --die-with-parent and the pid
 * namespace end every process of the exec when its main process, bwrap or
 * the daemon ends.  bwrap itself always runs with the submitter's uid (the
 * caller drops privileges before it execs bwrap), so whatever it resolves, it
 * resolves as that user; a root job keeps only the capabilities a build needs
 * (no CAP_SYS_ADMIN: nothing can be remounted writable).
 */
#ifndef SFS_SANDBOX_H
#define SFS_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

struct sfs_sandbox_bind {
	const char *src;  /* host path */
	const char *dest; /* inside, absolute */
	bool ro;
};

struct sfs_sandbox_cmd {
	const char *state_dir, *mountpoint; /* hidden; mountpoint may be NULL */
	const char *rootfs;		    /* host dir that becomes /, or NULL: the host's */
	const char *work;		    /* host dir that becomes /work */
	bool work_ro;
	const struct sfs_sandbox_bind *binds; /* on top of /work, in order */
	size_t nbinds;
	const char *cwd; /* inside, absolute */
	bool network;
	bool as_root; /* the job is root's: drop the dangerous capabilities */
	/* > 2: bwrap writes {"child-pid": N} to this fd of its own (--info-fd); N is
	 * the sandbox's init, whose end means every process of it is gone.  0: no */
	int info_fd;
	char *const *argv;
};

/* The path of the bwrap binary the probe found, or NULL before a probe succeeded. */
const char *sfs_sandbox_bwrap(void);
/* The whole bwrap command line: a NULL-terminated vector of malloc'd
 * strings, freed by strv_free_argv (strv.h); -errno on failure. */
int sfs_sandbox_argv(const struct sfs_sandbox_cmd *c, char ***ret);

#endif
