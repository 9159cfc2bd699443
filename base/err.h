/*
 * err.h — error conventions shared by every solverfs library.
 *
 * Library functions return 0 or a negative errno.  Where a user will read the
 * reason (a job's `error` file, the EINVAL of a bad spec) they also take a
 * `char **ret_msg` which, on failure, receives a malloc'd human sentence.  A
 * NULL ret_msg means the caller does not want the text.
 */
#ifndef SFS_ERR_H
#define SFS_ERR_H

#include <errno.h>
#include <stdarg.h>

/*
 * Sets *ret_msg (when ret_msg is not NULL and *ret_msg is still NULL) to the
 * formatted message and returns -abs(err).
 *
 * The sign of err: write the errno constant as errno.h spells it, positive
 * (`return sfs_errf(ret_msg, EINVAL, "...")`), and pass a callee's negative
 * return through as it is (`return sfs_errf(ret_msg, r, "...")`).  Because
 * the result is -abs(err) either way, a `-EINVAL` some callers write is the
 * same call; the sign carries no meaning and is normalised here, not at the
 * call sites.
 */
int sfs_errf(char **ret_msg, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int sfs_verrf(char **ret_msg, int err, const char *fmt, va_list ap);

/* Prefixes an existing message: "<prefix>: <old>".  Returns err unchanged, so
 * it is the negative errno the caller is returning. */
int sfs_err_prefix(char **ret_msg, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Log to stderr or syslog depending on how the daemon runs (fs/ sets it). */
enum sfs_log_level { SFS_LOG_ERR, SFS_LOG_WARN, SFS_LOG_INFO, SFS_LOG_DEBUG };
void sfs_log(enum sfs_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sfs_log_set_syslog(int on);
void sfs_log_set_debug(int on);

#endif
