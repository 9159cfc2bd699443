#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

static int log_syslog;
static int log_debug;

int sfs_verrf(char **ret_msg, int err, const char *fmt, va_list ap)
{
	if (err > 0)
		err = -err;
	if (ret_msg && !*ret_msg) {
		char *m = NULL;
		if (vasprintf(&m, fmt, ap) < 0)
			m = NULL;
		*ret_msg = m;
	}
	return err;
}

int sfs_errf(char **ret_msg, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err = sfs_verrf(ret_msg, err, fmt, ap);
	va_end(ap);
	return err;
}

int sfs_err_prefix(char **ret_msg, int err, const char *fmt, ...)
{
	char *pre = NULL, *m = NULL;
	va_list ap;

	if (!ret_msg)
		return err;
	va_start(ap, fmt);
	if (vasprintf(&pre, fmt, ap) < 0)
		pre = NULL;
	va_end(ap);
	if (!pre)
		return err;
	if (asprintf(&m, "%s: %s", pre, *ret_msg ? *ret_msg : strerror(err < 0 ? -err : err)) < 0)
		m = NULL;
	free(pre);
	if (m) {
		free(*ret_msg);
		*ret_msg = m;
	}
	return err;
}

void sfs_log_set_syslog(int on)
{
	log_syslog = on;
	if (on)
		openlog("solverfs", LOG_PID, LOG_DAEMON);
}

void sfs_log_set_debug(int on)
{
	log_debug = on;
}

void sfs_log(enum sfs_log_level lvl, const char *fmt, ...)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	static const char *const name[] = {"error", "warning", "info", "debug"};
	va_list ap;

	if (lvl == SFS_LOG_DEBUG && !log_debug)
		return;
	va_start(ap, fmt);
	if (log_syslog) {
		vsyslog(prio[lvl], fmt, ap);
	} else {
		fprintf(stderr, "solverfs: %s: ", name[lvl]);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}
