/*
 * follow.c — reading a job's status or status.json until the job ends.
 *
 * The file blocks until there is more (README "The mounted tree"), which would
 * leave Ctrl-C to the kernel's interrupt path and give a display no chance to
 * redraw.  So it is opened O_NONBLOCK (EAGAIN instead of waiting) and waited
 * on with ppoll(), which the mount supports on these files; SIGINT and SIGTERM
 * are blocked except inside ppoll, so a signal is never lost between the check
 * of ctl_interrupted and the wait (and one that arrives while data keeps
 * coming is seen by sigpending()).  A poll timeout of at most a second guards
 * against a missed wake-up: the read after it just gets EAGAIN again.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "solverctl.h"

volatile sig_atomic_t ctl_interrupted;

static sigset_t orig_mask;

static void on_signal(int sig)
{
	ctl_interrupted = sig;
}

void ctl_signals_install(void)
{
	struct sigaction sa = {0};
	sigset_t block;

	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &orig_mask);
}

int ctl_follow(const char *path, int tick_ms, void (*on_data)(void *, const char *, size_t),
	       void (*on_tick)(void *), void *arg)
{
	char buf[65536];
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	int r = 0;

	if (fd < 0) {
		r = -errno;
		ctl_err("%s: %s", path, strerror(-r));
		return r;
	}
	if (tick_ms <= 0 || tick_ms > 1000)
		tick_ms = 1000;
	for (;;) {
		/* a job that never stops writing never lets ppoll run: look for a
		 * blocked signal here too */
		sigset_t pend;
		if (sigpending(&pend) == 0 &&
		    (sigismember(&pend, SIGINT) == 1 || sigismember(&pend, SIGTERM) == 1))
			ctl_interrupted = 1;
		if (ctl_interrupted) {
			r = -EINTR;
			break;
		}
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n > 0) {
			on_data(arg, buf, (size_t)n);
			continue;
		}
		if (n == 0)
			break; /* the job ended */
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			r = -errno;
			ctl_err("reading %s: %s", path, strerror(-r));
			break;
		}
		struct pollfd p = {.fd = fd, .events = POLLIN};
		struct timespec ts = {tick_ms / 1000, (long)(tick_ms % 1000) * 1000000L};
		int pr = ppoll(&p, 1, &ts, &orig_mask);
		if (pr < 0 && errno != EINTR) {
			r = -errno;
			ctl_err("poll %s: %s", path, strerror(-r));
			break;
		}
		if (on_tick)
			on_tick(arg);
	}
	close(fd);
	return r;
}
