/*
 * fdio.h — whole reads and writes on a file descriptor: the loops around
 * read(2) and write(2) that retry a short transfer and EINTR.
 */
#ifndef SFS_FDIO_H
#define SFS_FDIO_H

#include <stddef.h>
#include <sys/types.h>

/* Writes all len bytes of buf.  Returns 0 or -errno (some may be written). */
int sfs_write_all(int fd, const void *buf, size_t len);

/* Reads until buf holds len bytes or the end of the file.  Returns the bytes
 * read (fewer than len only at the end), or -errno. */
ssize_t sfs_read_full(int fd, void *buf, size_t len);

#endif
