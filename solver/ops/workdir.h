/*
 * workdir.h — building an exec's work dir without following a symlink.
 *
 * An exec's work dir is assembled as root from several trees: one mount's tree
 * may hold a symlink that another mount's dest, or the cwd, passes through
 * (`l -> /tmp/victim` and a dest "a/l/planted").  Every path below the work
 * dir is therefore resolved one component at a time from a directory fd with
 * O_NOFOLLOW: a component that is a symlink or not a directory is refused
 * (-ELOOP, -ENOTDIR), never followed (docs/security.md).
 *
 * Paths are relative and "/"-separated; "" and "." name the base itself.
 * Returned fds are O_CLOEXEC and owned by the caller.
 */
#ifndef SFS_WORKDIR_H
#define SFS_WORKDIR_H

#include <stdbool.h>
#include <stddef.h>

/* The directory rel below base (an fd of a directory); with create, missing
 * components are made (mode 0755). */
int sfs_wd_open_dir(int base, const char *rel, bool create, int *ret_fd);
/* rel itself, opened with flags | O_NOFOLLOW | O_CLOEXEC; its parents must be
 * directories (not created). */
int sfs_wd_open(int base, const char *rel, int flags, int *ret_fd);
/* "/proc/self/fd/<dirfd>/<name>": a path that reaches name in the directory
 * dirfd without resolving anything above it; for APIs that take paths. */
int sfs_wd_fd_path(int dirfd, const char *name, char *buf, size_t size);

#endif
