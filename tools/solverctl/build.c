/*
 * build.c — `solverctl build SPEC`: submit, follow, report.
 *
 * Submitting (README "The mounted tree"): an open of jobs/new allocates job N
 * and reading it gives "N\n", so the job number is known before the spec is
 * written, even when the spec is then rejected (jobs/latest points only at
 * accepted jobs).  The spec is written to jobs/N/spec and its close answers:
 * EINVAL (or EFBIG) is a rejection whose reason is in jobs/N/error.
 *
 * Then the job's status (plain, the text of `buildctl --progress=plain`) or
 * status.json (rawjson, or drawn by display.c for tty) is followed to its end.
 * Ctrl-C writes `cancel` to jobs/N/ctl, waits a little for the job to say it
 * is cancelled, and exits 130.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "solverctl.h"

enum progress { PROGRESS_AUTO, PROGRESS_TTY, PROGRESS_PLAIN, PROGRESS_RAWJSON };

static void copy_out(void *arg, const char *p, size_t n)
{
	sfs_write_all(*(int *)arg, p, n);
}

/* Submits SPEC as a new job; *ret_n gets its number.  0, -EINVAL for a
 * rejected spec (reason printed), other -errno after a message.
 *
 * The number is read from a jobs/new handle, which is then closed, and the
 * spec goes to jobs/N/spec (README "The mounted tree": the same parse and the
 * same EINVAL at the close as through jobs/new).  Writing the spec through the
 * handle that was read races in the daemon: a write reallocates the buffer the
 * read's reply was made from, which ASan reports (fs/jobs.c, spec_append and
 * op_read's reply_slice without spec_lock). */
static int submit(const char *mount, const char *spec, char *ret_n, size_t nsize)
{
	char *path = ctl_xasprintf("%s/jobs/new", mount);
	char buf[32];
	ssize_t n;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		ctl_err("%s: %s", path, strerror(-r));
		free(path);
		return r;
	}
	free(path);
	do
		n = read(fd, buf, sizeof(buf) - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0 || buf[n - 1] != '\n') {
		ctl_err("jobs/new did not give a job number");
		return -EIO;
	}
	buf[n - 1] = '\0';
	snprintf(ret_n, nsize, "%s", buf);
	fprintf(stderr, "solverctl: job %s\n", ret_n);
	path = ctl_xasprintf("%s/jobs/%s/spec", mount, ret_n);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	free(path);
	if (fd < 0) {
		r = -errno;
		ctl_err("job %s: opening its spec: %s", ret_n, strerror(-r));
		return r;
	}
	r = sfs_write_all(fd, spec, strlen(spec));
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == -EINVAL || r == -EFBIG || r == -EAGAIN) {
		/* the mount's error names the job: "job N: spec rejected: why" */
		char *ep = ctl_xasprintf("%s/jobs/%s/error", mount, ret_n);
		char *msg = ctl_read_line(ep);
		if (msg && !strncmp(msg, "job ", 4))
			ctl_err("%s", msg);
		else
			ctl_err("job %s: spec rejected: %s", ret_n,
				msg && *msg ? msg : strerror(-r));
		free(msg);
		free(ep);
		return r == -EAGAIN ? r : -EINVAL;
	}
	if (r < 0)
		ctl_err("job %s: submitting the spec: %s", ret_n, strerror(-r));
	return r;
}

/* Ctrl-C: cancel, then give the job a few seconds to end so that its state
 * says cancelled when solverctl exits. */
static void cancel_job(const char *jd, const char *n)
{
	char *ctl = ctl_xasprintf("%s/ctl", jd);
	int fd = open(ctl, O_WRONLY | O_CLOEXEC);

	if (fd < 0 || sfs_write_all(fd, "cancel\n", 7) < 0 || close(fd) < 0)
		ctl_err("job %s: cancel: %s", n, strerror(errno));
	else
		fprintf(stderr, "solverctl: job %s: cancelled\n", n);
	free(ctl);
	char *wait = ctl_xasprintf("%s/wait", jd);
	fd = open(wait, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	for (int i = 0; fd >= 0 && i < 50; i++) {
		char b[32];
		if (read(fd, b, sizeof(b)) >= 0 || errno != EAGAIN)
			break;
		poll(NULL, 0, 100);
	}
	if (fd >= 0)
		close(fd);
	free(wait);
}

/* The final state: jobs/N/wait, which blocks only if the progress file ended
 * before the state did. */
static char *read_state(const char *jd)
{
	char *sp = ctl_xasprintf("%s/wait", jd);
	char *st = ctl_read_line(sp);
	free(sp);
	return st;
}

static void usage_build(void)
{
	fputs("usage: solverctl [-m MOUNT] build SPEC [--progress=auto|tty|plain|rawjson]\n"
	      "                 [--no-cache] [--export DIR] [-o key=value]...\n",
	      stderr);
}

int ctl_cmd_build(struct ctl_cmd *c)
{
	static const struct option longopts[] = {
	    {"progress", required_argument, NULL, 'p'}, {"no-cache", no_argument, NULL, 'n'},
	    {"export", required_argument, NULL, 'e'},	{"opt", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},		{NULL, 0, NULL, 0},
	};
	enum progress progress = PROGRESS_AUTO;
	struct ctl_spec_opts so = {0};
	char **sets = calloc((size_t)c->argc + 1, sizeof(*sets));
	size_t nsets = 0;
	const char *spec_path = NULL;
	char *mount = NULL, *spec = NULL, *jd = NULL, *state = NULL;
	char n[32];
	int opt, rc = CTL_EXIT_FAIL, r;
	bool usage_err;

	if (!sets)
		return CTL_EXIT_FAIL;
	optind = 0;
	/* "+" is not used: options may follow SPEC, as in the examples */
	while ((opt = getopt_long(c->argc, c->argv, "o:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (!strcmp(optarg, "auto"))
				progress = PROGRESS_AUTO;
			else if (!strcmp(optarg, "tty"))
				progress = PROGRESS_TTY;
			else if (!strcmp(optarg, "plain"))
				progress = PROGRESS_PLAIN;
			else if (!strcmp(optarg, "rawjson"))
				progress = PROGRESS_RAWJSON;
			else {
				ctl_err("--progress=%s: expected auto, tty, plain or rawjson",
					optarg);
				rc = CTL_EXIT_USAGE;
				goto out;
			}
			break;
		case 'n':
			so.no_cache = true;
			break;
		case 'e':
			so.export_dir = optarg;
			break;
		case 'o':
			sets[nsets++] = optarg;
			break;
		case 'h':
			usage_build();
			rc = CTL_EXIT_OK;
			goto out;
		default:
			usage_build();
			rc = CTL_EXIT_USAGE;
			goto out;
		}
	}
	if (optind != c->argc - 1) {
		usage_build();
		rc = CTL_EXIT_USAGE;
		goto out;
	}
	spec_path = c->argv[optind];
	so.sets = sets;
	if (progress == PROGRESS_AUTO) {
		const char *term = getenv("TERM");
		progress =
		    isatty(2) && !(term && !strcmp(term, "dumb")) ? PROGRESS_TTY : PROGRESS_PLAIN;
	}
	if (!(mount = ctl_mount_find(c->mount)))
		goto out;
	if (!(spec = ctl_spec_prepare(spec_path, &so, &usage_err))) {
		rc = usage_err ? CTL_EXIT_USAGE : CTL_EXIT_FAIL;
		goto out;
	}
	ctl_signals_install();
	r = submit(mount, spec, n, sizeof(n));
	if (r == -EINVAL) {
		rc = CTL_EXIT_USAGE;
		goto out;
	}
	if (r < 0)
		goto out;
	jd = ctl_xasprintf("%s/jobs/%s", mount, n);

	char *follow;
	if (progress == PROGRESS_TTY) {
		struct ctl_display *d = ctl_display_new(true);
		follow = ctl_xasprintf("%s/status.json", jd);
		r = ctl_follow(follow, 100, ctl_display_on_data, ctl_display_on_tick, d);
		free(follow);
		if (r == 0)
			state = read_state(jd);
		ctl_display_finish(d, r == -EINTR ? "cancelled" : state);
		ctl_display_free(d);
	} else {
		int fd = 2;
		follow = ctl_xasprintf("%s/%s", jd,
				       progress == PROGRESS_RAWJSON ? "status.json" : "status");
		r = ctl_follow(follow, 1000, copy_out, NULL, &fd);
		free(follow);
	}
	if (r == -EINTR) {
		cancel_job(jd, n);
		rc = CTL_EXIT_INTR;
		goto out;
	}
	if (r < 0)
		goto out;
	if (!state)
		state = read_state(jd);
	if (!state) {
		ctl_err("job %s: cannot read its state: %s", n, strerror(errno));
		goto out;
	}
	if (!strcmp(state, "done")) {
		if (ctl_job_print_outputs(mount, jd) < 0)
			goto out;
		if (so.export_dir) {
			char *src = ctl_xasprintf("%s/export", jd);
			r = ctl_copy_tree(src, so.export_dir);
			free(src);
			if (r < 0)
				goto out;
			fprintf(stderr, "solverctl: job %s: cache export copied to %s\n", n,
				so.export_dir);
		}
		rc = CTL_EXIT_OK;
	} else if (!strcmp(state, "cancelled")) {
		ctl_err("job %s was cancelled", n);
	} else {
		ctl_job_print_failure(jd, n, 10);
	}
out:
	free(state);
	free(jd);
	free(spec);
	free(mount);
	free(sets);
	return rc;
}
