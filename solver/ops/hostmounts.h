/*
 * hostmounts.h — the solverfs mounts an exec's mount namespace must not keep
 * (docs/sandbox.md, "Mounts an exec does not hold").
 *
 * A new mount namespace starts as a copy of the daemon's, and bwrap's --ro-bind
 * of a host dir is recursive: either way a solverfs mount below a bound dir
 * (ours, or another daemon's) is copied into the exec's namespace.  The copy
 * keeps that mount's FUSE connection alive, so an unmount on the host would
 * not end its daemon until the exec ended, and the exec could read the other
 * mount.  The exec's child therefore detaches every one of them first.
 */
#ifndef SFS_HOSTMOUNTS_H
#define SFS_HOSTMOUNTS_H

#include <stdio.h>

/*
 * The mount points, as this process sees them in /proc/self/mountinfo, of
 * every mount of type fuse.solverfs and of `also` (the daemon's own mount
 * point, whatever type it shows; may be NULL), in the reverse of the order
 * they were mounted (a mount nested in another comes first).  *ret is a
 * NULL-terminated vector freed by strv_free_argv (strv.h).  0 or -errno.
 */
int sfs_hostmounts_read(const char *also, char ***ret);
/* The same from an open mountinfo text (tests). */
int sfs_hostmounts_parse(FILE *f, const char *also, char ***ret);

#endif
