/*
 * jobs.c — the subcommands that read what the mount keeps of jobs and of the
 * cache: ls, status, logs, why, cancel, graph, export, du.
 *
 * Each is a few reads of files under MOUNT/jobs/N/ or MOUNT/cache/ (README
 * "The mounted tree"); a missing job is an error that names the mount.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "solverctl.h"

static bool is_number(const char *s)
{
	if (!*s || strlen(s) > 20)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

char *ctl_job_dir(const char *mount, const char *n)
{
	struct stat st;

	if (!is_number(n)) {
		ctl_err("'%s' is not a job number", n);
		return NULL;
	}
	char *jd = ctl_xasprintf("%s/jobs/%s", mount, n);
	if (stat(jd, &st) < 0) {
		if (errno == ENOENT)
			ctl_err("no job %s in %s (solverctl ls lists the jobs)", n, mount);
		else
			ctl_err("%s: %s", jd, strerror(errno));
		free(jd);
		return NULL;
	}
	return jd;
}

static char *job_file(const char *jd, const char *name)
{
	return ctl_xasprintf("%s/%s", jd, name);
}

/* Prints the tail of the buffer: its last NLINES lines, each after PREFIX. */
static void print_tail(const char *s, size_t len, int nlines, const char *prefix)
{
	size_t start = len;
	int seen = 0;

	while (len && s[len - 1] == '\n')
		len--;
	start = len;
	while (start > 0) {
		if (s[start - 1] == '\n' && ++seen == nlines)
			break;
		start--;
	}
	while (start < len) {
		const char *nl = memchr(s + start, '\n', len - start);
		size_t end = nl ? (size_t)(nl - s) : len;
		fprintf(stderr, "%s%.*s\n", prefix, (int)(end - start), s + start);
		start = end + 1;
	}
}

/* The vertex dir (under JD/vertices) whose state is failed and whose log is
 * not empty, else the first failed one; NULL when none. */
static char *failed_vertex(const char *jd)
{
	char *vd = job_file(jd, "vertices");
	DIR *d = opendir(vd);
	struct dirent *e;
	char *first = NULL, *best = NULL;

	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *p = ctl_xasprintf("%s/%s", vd, e->d_name);
		char *sp = job_file(p, "state");
		char *st = ctl_read_line(sp);
		free(sp);
		if (st && !strcmp(st, "failed")) {
			struct stat lst;
			char *lp = job_file(p, "log");
			bool has_log = stat(lp, &lst) == 0 && lst.st_size > 0;
			free(lp);
			if (has_log && !best) {
				best = p;
				p = NULL;
			} else if (!first) {
				first = p;
				p = NULL;
			}
		}
		free(st);
		free(p);
		if (best)
			break;
	}
	if (d)
		closedir(d);
	free(vd);
	if (best) {
		free(first);
		return best;
	}
	return first;
}

void ctl_job_print_failure(const char *jd, const char *n, int nlines)
{
	struct ctl_buf err = {0}, log = {0};
	char *ep = job_file(jd, "error");
	char *vd = failed_vertex(jd);

	ctl_read_file(ep, &err);
	free(ep);
	const char *msg = err.s && *err.s ? err.s : "(no error recorded)";
	const char *nl = strchr(msg, '\n');
	ctl_err("job %s failed: %.*s", n, nl ? (int)(nl - msg) : (int)strlen(msg), msg);
	if (vd) {
		char *lp = job_file(vd, "log"), *np = job_file(vd, "name");
		char *name = ctl_read_line(np);
		if (ctl_read_file(lp, &log) == 0 && log.len) {
			fprintf(stderr, " > [%s] last lines of its log:\n", name ? name : "?");
			print_tail(log.s, log.len, nlines, "   ");
		} else if (nl) {
			print_tail(nl + 1, strlen(nl + 1), nlines, "   ");
		}
		free(name);
		free(np);
		free(lp);
	} else if (nl) {
		print_tail(nl + 1, strlen(nl + 1), nlines, "   ");
	}
	free(vd);
	ctl_buf_release(&err);
	ctl_buf_release(&log);
}

int ctl_job_print_outputs(const char *mount, const char *jd)
{
	struct ctl_buf res = {0};
	char *rp = job_file(jd, "result");
	int r = ctl_read_file(rp, &res);
	char *save = NULL;

	if (r < 0) {
		ctl_err("%s: %s", rp, strerror(-r));
		free(rp);
		return r;
	}
	free(rp);
	for (char *l = strtok_r(res.s, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		const char *hex = strstr(l, " sha256:");
		if (hex)
			printf("%s/results/%s\n", mount, hex + 8);
	}
	fflush(stdout);
	ctl_buf_release(&res);
	return 0;
}

/* Copies PATH to stdout (following it while it grows, for status). */
static int cat_file(const char *path)
{
	char buf[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0) {
		r = -errno;
		ctl_err("%s: %s", path, strerror(-r));
		return r;
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			ctl_err("reading %s: %s", path, strerror(-r));
			break;
		}
		if (n == 0)
			break;
		if ((r = sfs_write_all(1, buf, (size_t)n)) < 0)
			break;
	}
	close(fd);
	return r;
}

/* Sets up MOUNT and JD for a command taking N; NULL on error. */
static char *job_arg(struct ctl_cmd *c, int want, const char *usage, char **ret_mount)
{
	if (c->argc != want) {
		fprintf(stderr, "usage: solverctl [-m MOUNT] %s\n", usage);
		return NULL;
	}
	if (!(*ret_mount = ctl_mount_find(c->mount)))
		return NULL;
	return ctl_job_dir(*ret_mount, c->argv[1]);
}

/* A command on job N that just shows one of its files. */
static int show_job_file(struct ctl_cmd *c, const char *file, const char *usage)
{
	char *mount = NULL, *jd = job_arg(c, 2, usage, &mount);
	int rc = CTL_EXIT_FAIL;

	if (jd) {
		char *p = job_file(jd, file);
		rc = cat_file(p) < 0 ? CTL_EXIT_FAIL : CTL_EXIT_OK;
		free(p);
	} else if (c->argc != 2) {
		rc = CTL_EXIT_USAGE;
	}
	free(jd);
	free(mount);
	return rc;
}

int ctl_cmd_why(struct ctl_cmd *c)
{
	return show_job_file(c, "why", "why N");
}

int ctl_cmd_graph(struct ctl_cmd *c)
{
	return show_job_file(c, "graph.dot", "graph N");
}

/* status N [--json]: the job's progress (following it while it runs), then
 * exit 0 for done, 1 for failed or cancelled. */
int ctl_cmd_status(struct ctl_cmd *c)
{
	bool json = c->argc == 3 && !strcmp(c->argv[2], "--json");
	char *mount = NULL, *jd;
	int rc = CTL_EXIT_FAIL;

	if (json)
		c->argc--;
	jd = job_arg(c, 2, "status N [--json]", &mount);
	if (!jd) {
		free(mount);
		return c->argc != 2 ? CTL_EXIT_USAGE : CTL_EXIT_FAIL;
	}
	char *p = job_file(jd, json ? "status.json" : "status");
	if (cat_file(p) == 0) {
		char *sp = job_file(jd, "state");
		char *st = ctl_read_line(sp);
		rc = st && (!strcmp(st, "done") || !strcmp(st, "pending")) ? CTL_EXIT_OK
									   : CTL_EXIT_FAIL;
		free(st);
		free(sp);
	}
	free(p);
	free(jd);
	free(mount);
	return rc;
}

int ctl_cmd_cancel(struct ctl_cmd *c)
{
	char *mount = NULL, *jd = job_arg(c, 2, "cancel N", &mount);
	int rc = CTL_EXIT_FAIL;

	if (!jd) {
		free(mount);
		return c->argc != 2 ? CTL_EXIT_USAGE : CTL_EXIT_FAIL;
	}
	const char *n = c->argv[1];
	char *cp = job_file(jd, "ctl");
	int fd = open(cp, O_WRONLY | O_CLOEXEC);
	int r = fd < 0 ? -errno : sfs_write_all(fd, "cancel\n", 7);
	if (fd >= 0 && close(fd) < 0 && r == 0)
		r = -errno;
	if (r == -EACCES || r == -EPERM) {
		ctl_err("job %s: cancel: %s (only its submitter or root may)", n, strerror(-r));
	} else if (r < 0) {
		/* the mount's reason, "error: cancel: job N is already done", read back */
		char *why = ctl_read_line(cp);
		const char *w = why && !strncmp(why, "error: ", 7) ? why + 7 : NULL;
		if (w)
			ctl_err("job %s: %s", n, w);
		else
			ctl_err("job %s: cancel: %s", n, strerror(-r));
		free(why);
	} else {
		rc = CTL_EXIT_OK;
	}
	free(cp);
	free(jd);
	free(mount);
	return rc;
}

int ctl_cmd_export(struct ctl_cmd *c)
{
	char *mount = NULL, *jd = job_arg(c, 3, "export N DIR", &mount);
	int rc = CTL_EXIT_FAIL;
	struct stat st;

	if (!jd) {
		free(mount);
		return c->argc != 3 ? CTL_EXIT_USAGE : CTL_EXIT_FAIL;
	}
	char *ep = job_file(jd, "export");
	if (stat(ep, &st) < 0) {
		char *sp = job_file(jd, "state");
		char *s = ctl_read_line(sp);
		if (s && strcmp(s, "done"))
			ctl_err("job %s has no cache export: it is %s", c->argv[1], s);
		else
			ctl_err("job %s has no cache export (its spec has no \"export\"; "
				"solverctl build --export DIR asks for one)",
				c->argv[1]);
		free(s);
		free(sp);
	} else if (ctl_copy_tree(ep, c->argv[2]) == 0) {
		rc = CTL_EXIT_OK;
	}
	free(ep);
	free(jd);
	free(mount);
	return rc;
}

/* ---- logs ---- */

/* The label a spec key shows as: its vertex's "name", else the key. */
static char *label_of_key(const char *jd, const char *key)
{
	struct ctl_buf spec = {0};
	char *sp = job_file(jd, "spec"), *ret = NULL;

	if (ctl_read_file(sp, &spec) == 0 && spec.len) {
		json_t *root = json_loadb(spec.s, spec.len, JSON_ALLOW_NUL, NULL);
		json_t *v = json_object_get(json_object_get(root, "vertices"), key);
		if (json_is_object(v)) {
			const char *name = json_string_value(json_object_get(v, "name"));
			ret = ctl_xstrdup(name ? name : key);
		}
		json_decref(root);
	}
	ctl_buf_release(&spec);
	free(sp);
	return ret;
}

int ctl_cmd_logs(struct ctl_cmd *c)
{
	char *mount = NULL, *jd = job_arg(c, 3, "logs N VERTEX", &mount);
	const char *want = c->argc == 3 ? c->argv[2] : "";
	struct stat st;
	int rc = CTL_EXIT_FAIL;

	if (!jd) {
		free(mount);
		return c->argc != 3 ? CTL_EXIT_USAGE : CTL_EXIT_FAIL;
	}
	/* a spec key: the mount's own map (README "The mounted tree": jobs/N/by-name/) */
	char *bn = ctl_xasprintf("%s/by-name/%s/log", jd, want);
	if (!strchr(want, '/') && stat(bn, &st) == 0) {
		rc = cat_file(bn) < 0 ? CTL_EXIT_FAIL : CTL_EXIT_OK;
		goto out;
	}
	char *label = label_of_key(jd, want);
	char *vd = job_file(jd, "vertices");
	DIR *d = opendir(vd);
	struct dirent *e;
	struct ctl_buf names = {0}, match = {0};
	size_t nmatch = 0;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *np = ctl_xasprintf("%s/%s/name", vd, e->d_name);
		char *name = ctl_read_line(np);
		free(np);
		bool hit = name && (!strcmp(name, label ? label : want) || !strcmp(name, want));
		/* a digest, or a prefix of one of at least 8 hex digits */
		hit = hit || (strlen(want) >= 8 && !strncmp(e->d_name, want, strlen(want)));
		if (hit) {
			if (!nmatch++)
				ctl_buf_addstr(&match, e->d_name);
			else
				ctl_buf_addf(&match, " %s", e->d_name);
		}
		ctl_buf_addf(&names, "%s%s", names.len ? ", " : "", name ? name : e->d_name);
		free(name);
	}
	if (d)
		closedir(d);
	if (nmatch == 1) {
		char *lp = ctl_xasprintf("%s/%s/log", vd, match.s);
		rc = cat_file(lp) < 0 ? CTL_EXIT_FAIL : CTL_EXIT_OK;
		free(lp);
	} else if (nmatch > 1) {
		ctl_err("job %s: %zu vertices are named '%s'; name one by its digest: %s",
			c->argv[1], nmatch, want, match.s);
	} else {
		ctl_err("job %s has no vertex '%s' (its vertices: %s)", c->argv[1], want,
			names.len ? names.s : "none");
	}
	ctl_buf_release(&names);
	ctl_buf_release(&match);
	free(vd);
	free(label);
out:
	free(bn);
	free(jd);
	free(mount);
	return rc;
}

/* ---- ls ---- */

static int cmp_num(const void *a, const void *b)
{
	unsigned long long x = strtoull(*(char *const *)a, NULL, 10);
	unsigned long long y = strtoull(*(char *const *)b, NULL, 10);
	return x < y ? -1 : x > y;
}

/* The first "started" time in the first MiB of status.json, or -1. */
static double first_started(const char *jd)
{
	char *p = job_file(jd, "status.json");
	int fd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	struct ctl_buf b = {0};
	char buf[65536];
	double t = -1;

	free(p);
	if (fd < 0)
		return -1;
	while (b.len < (1u << 20)) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		ctl_buf_add(&b, buf, (size_t)n);
		const char *s = strstr(b.s, "\"started\":\"");
		if (s) {
			char ts[64];
			snprintf(ts, sizeof(ts), "%.*s", 40, s + 11);
			char *q = strchr(ts, '"');
			if (q)
				*q = '\0';
			t = ctl_parse_time(ts);
			break;
		}
	}
	close(fd);
	ctl_buf_release(&b);
	return t;
}

static char *outputs_of(const char *jd)
{
	struct ctl_buf res = {0}, out = {0};
	char *rp = job_file(jd, "result"), *save = NULL;

	ctl_read_file(rp, &res);
	free(rp);
	for (char *l = res.s ? strtok_r(res.s, "\n", &save) : NULL; l;
	     l = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(l, ' ');
		if (sp)
			*sp = '\0';
		ctl_buf_addf(&out, "%s%s", out.len ? "," : "", l);
	}
	ctl_buf_release(&res);
	if (!out.len)
		ctl_buf_addstr(&out, "-");
	return out.s;
}

int ctl_cmd_ls(struct ctl_cmd *c)
{
	char *mount, *jobs;
	DIR *d;
	struct dirent *e;
	char **ns = NULL;
	size_t n = 0, cap = 0;

	if (c->argc != 1) {
		fputs("usage: solverctl [-m MOUNT] ls\n", stderr);
		return CTL_EXIT_USAGE;
	}
	if (!(mount = ctl_mount_find(c->mount)))
		return CTL_EXIT_FAIL;
	jobs = ctl_xasprintf("%s/jobs", mount);
	if (!(d = opendir(jobs))) {
		ctl_err("%s: %s", jobs, strerror(errno));
		free(jobs);
		free(mount);
		return CTL_EXIT_FAIL;
	}
	while ((e = readdir(d))) {
		if (!is_number(e->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **nn = realloc(ns, cap * sizeof(*nn));
			if (!nn)
				break;
			ns = nn;
		}
		ns[n++] = ctl_xstrdup(e->d_name);
	}
	closedir(d);
	if (n)
		qsort(ns, n, sizeof(*ns), cmp_num);
	printf("%-6s %-10s %-19s %9s %-10s %s\n", "JOB", "STATE", "STARTED", "DURATION",
	       "SUBMITTER", "OUTPUTS");
	for (size_t i = 0; i < n; i++) {
		char *jd = ctl_xasprintf("%s/%s", jobs, ns[i]);
		char *sp = job_file(jd, "state");
		char *state = ctl_read_line(sp);
		struct stat st;
		char started[32] = "-", dur[32] = "-", user[32] = "-";
		if (state && stat(jd, &st) == 0) {
			struct passwd *pw = getpwuid(st.st_uid);
			if (pw)
				snprintf(user, sizeof(user), "%s", pw->pw_name);
			else
				snprintf(user, sizeof(user), "%u", (unsigned)st.st_uid);
			double t = strcmp(state, "pending") ? first_started(jd) : -1;
			if (t > 0) {
				time_t tt = (time_t)t;
				struct tm tm;
				strftime(started, sizeof(started), "%Y-%m-%d %H:%M:%S",
					 localtime_r(&tt, &tm));
				bool live = !strcmp(state, "running");
				double end =
				    live ? ctl_now() : st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9;
				ctl_fmt_duration(dur, sizeof(dur), end - t);
			}
		}
		char *outs = state ? outputs_of(jd) : ctl_xstrdup("-");
		if (state)
			printf("%-6s %-10s %-19s %9s %-10s %s\n", ns[i], state, started, dur, user,
			       outs);
		free(outs);
		free(state);
		free(sp);
		free(jd);
		free(ns[i]);
	}
	free(ns);
	free(jobs);
	free(mount);
	return CTL_EXIT_OK;
}

/* ---- du ---- */

static void human(char *out, size_t n, unsigned long long b)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)b;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, n, "%llu B", b);
	else
		snprintf(out, n, "%.1f %s", v, unit[u]);
}

static unsigned long long stat_value(const char *stats, const char *name)
{
	size_t k = strlen(name);

	for (const char *l = stats; l && *l;) {
		if (!strncmp(l, name, k) && l[k] == ' ')
			return strtoull(l + k + 1, NULL, 10);
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	return 0;
}

/* du -v: every result with its size and last use, largest first. */
struct res_row {
	char *hex, *last_used;
	unsigned long long size;
};

static int cmp_size(const void *a, const void *b)
{
	const struct res_row *x = a, *y = b;
	return x->size < y->size ? 1 : x->size > y->size ? -1 : strcmp(x->hex, y->hex);
}

static void du_results(const char *mount)
{
	char *rd = ctl_xasprintf("%s/cache/results", mount);
	DIR *d = opendir(rd);
	struct dirent *e;
	struct res_row *rows = NULL;
	size_t n = 0, cap = 0;

	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			struct res_row *nr = realloc(rows, cap * sizeof(*nr));
			if (!nr)
				break;
			rows = nr;
		}
		char *sp = ctl_xasprintf("%s/%s/size", rd, e->d_name);
		char *lp = ctl_xasprintf("%s/%s/last_used", rd, e->d_name);
		char *size = ctl_read_line(sp), *lu = ctl_read_line(lp);
		rows[n++] = (struct res_row){ctl_xstrdup(e->d_name), lu ? lu : ctl_xstrdup("-"),
					     size ? strtoull(size, NULL, 10) : 0};
		free(size);
		free(sp);
		free(lp);
	}
	if (d)
		closedir(d);
	if (n)
		qsort(rows, n, sizeof(*rows), cmp_size);
	printf("\n%-12s %-30s %s\n", "SIZE", "LAST USED", "RESULT");
	for (size_t i = 0; i < n; i++) {
		char h[32];
		human(h, sizeof(h), rows[i].size);
		printf("%-12s %-30s %s\n", h, rows[i].last_used, rows[i].hex);
		free(rows[i].hex);
		free(rows[i].last_used);
	}
	free(rows);
	free(rd);
}

int ctl_cmd_du(struct ctl_cmd *c)
{
	bool verbose = c->argc == 2 && !strcmp(c->argv[1], "-v");
	struct ctl_buf stats = {0};
	char *mount, *sp;
	int r;

	if (c->argc > 2 || (c->argc == 2 && !verbose)) {
		fputs("usage: solverctl [-m MOUNT] du [-v]\n", stderr);
		return CTL_EXIT_USAGE;
	}
	if (!(mount = ctl_mount_find(c->mount)))
		return CTL_EXIT_FAIL;
	sp = ctl_xasprintf("%s/cache/stats", mount);
	r = ctl_read_file(sp, &stats);
	if (r < 0) {
		ctl_err("%s: %s", sp, strerror(-r));
		free(sp);
		free(mount);
		return CTL_EXIT_FAIL;
	}
	/* the names are those of README "The mounted tree", cache/stats */
	static const struct {
		const char *label, *bytes, *count;
	} rows[] = {
	    {"on disk", "disk_bytes", NULL},	    {"blobs", "blob_bytes", "blobs"},
	    {"database", "db_bytes", NULL},	    {"logs", "log_bytes", "logs"},
	    {"results", "result_bytes", "results"},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char h[32];
		human(h, sizeof(h), stat_value(stats.s, rows[i].bytes));
		if (rows[i].count)
			printf("%-10s %12s  %llu\n", rows[i].label, h,
			       stat_value(stats.s, rows[i].count));
		else
			printf("%-10s %12s\n", rows[i].label, h);
	}
	printf("%-10s %12llu\n%-10s %12llu\n", "keys", stat_value(stats.s, "keys"), "records",
	       stat_value(stats.s, "records"));
	if (verbose) {
		printf("\n%s", stats.s);
		if (stats.len && stats.s[stats.len - 1] != '\n')
			putchar('\n');
		du_results(mount);
	}
	ctl_buf_release(&stats);
	free(sp);
	free(mount);
	return CTL_EXIT_OK;
}
