/*
 * solverctl.h — the solverctl command: a client of a solverfs mount.
 *
 * solverctl talks to solverfs only through the mounted tree (README.md, "The
 * mounted tree"): it takes a job number from jobs/new and writes the spec to
 * jobs/N/spec, follows jobs/N/status or
 * status.json, reads jobs/N/error, result, vertices/ and cache/stats, and writes
 * "cancel" to jobs/N/ctl.  It never reaches the daemon any other way.
 *
 * Files, one per concept:
 *   main.c      the command line and the subcommand table
 *   mount.c     finding the mount (-m, $SOLVERFS_MOUNT, /proc/self/mounts)
 *   spec.c      reading a spec and rewriting it before submit (relative local
 *               paths, --no-cache, -o, --export)
 *   build.c     the build subcommand: submit, follow, report
 *   follow.c    following a job's progress file without blocking signals
 *   display.c   the status.json model and the tty display
 *   jobs.c      ls, status, logs, why, cancel, graph, export, du
 *   util.c      buffers, whole-file reads, tree copies, messages
 *
 * Exit codes (solverctl(1)): 0 success (a done job), 1 a failed or cancelled
 * job or any other error, 2 a rejected spec or a bad command line, 130 when
 * interrupted (a build cancels its job first).
 *
 * Library-style functions return 0 or -errno and print their own message with
 * ctl_err() where the user needs one; only main() and the subcommands decide
 * the exit code.
 */
#ifndef SOLVERCTL_H
#define SOLVERCTL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "fdio.h" /* base/, compiled into solverctl: sfs_write_all */

enum {
	CTL_EXIT_OK = 0,
	CTL_EXIT_FAIL = 1,
	CTL_EXIT_USAGE = 2, /* also a rejected spec */
	CTL_EXIT_INTR = 130,
};

/* ---- util.c ---- */

/* A growable byte buffer, always NUL-terminated once anything was added. */
struct ctl_buf {
	char *s;
	size_t len, cap;
};

void ctl_buf_add(struct ctl_buf *b, const void *p, size_t n);
void ctl_buf_addstr(struct ctl_buf *b, const char *s);
void ctl_buf_addf(struct ctl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ctl_buf_reset(struct ctl_buf *b);
void ctl_buf_release(struct ctl_buf *b);

/* Prints "solverctl: MSG\n" to stderr. */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* malloc/strdup that exit on out-of-memory (the only exit below main: there is
 * nothing a command-line client can do without memory). */
void *ctl_xmalloc(size_t n);
char *ctl_xstrdup(const char *s);
char *ctl_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reads all of PATH (or fd) into *ret (NUL-terminated).  0 or -errno. */
int ctl_read_file(const char *path, struct ctl_buf *ret);
int ctl_read_fd(int fd, struct ctl_buf *ret);
/* ctl_read_file with the trailing newlines removed; NULL with errno set. */
char *ctl_read_line(const char *path);
/* Copies the tree at SRC into DST (created if missing): dirs, regular files
 * (mode kept) and symlinks.  0 or -errno, with a message printed. */
int ctl_copy_tree(const char *src, const char *dst);
/* Seconds since the epoch of an RFC 3339 UTC time with nanoseconds ("...Z"),
 * or -1 when it does not parse. */
double ctl_parse_time(const char *s);
double ctl_now(void);
/* "1.2s", "3m04s", "1h02m": short human durations. */
void ctl_fmt_duration(char *out, size_t n, double secs);

/* ---- mount.c ---- */

/* The mount to use: OPTION (-m) if set, else $SOLVERFS_MOUNT, else the one
 * fuse.solverfs entry of /proc/self/mounts.  A malloc'd absolute path, or NULL
 * after a message saying why (none, several: which to choose, not a solverfs
 * mount). */
char *ctl_mount_find(const char *option);

/* ---- spec.c ---- */

struct ctl_spec_opts {
	bool no_cache;		/* ignore_cache on every vertex */
	const char *export_dir; /* ask for an export when the spec has none */
	char **sets;		/* -o key=value, NULL-terminated */
};

/* Reads the spec at PATH ("-": stdin), resolves relative `local` paths and
 * cache_from paths against its directory (the cwd for stdin), applies OPTS, and
 * returns the JSON to submit (malloc'd) or NULL after a message.  *ret_usage is
 * set when the failure is the user's spec or option (exit 2), not the system. */
char *ctl_spec_prepare(const char *path, const struct ctl_spec_opts *opts, bool *ret_usage);
/* The -o keys solverctl knows, for the help text and the completion. */
extern const char *const ctl_spec_option_keys[];

/* ---- follow.c ---- */

/* Set by the SIGINT/SIGTERM handler; the followers stop when it is set. */
extern volatile sig_atomic_t ctl_interrupted;
/* Installs the handlers (without SA_RESTART, so a blocked call returns). */
void ctl_signals_install(void);

/* Calls ON_DATA for every chunk of PATH until EOF (the job ended), and ON_TICK
 * (may be NULL) at most every TICK_MS while waiting.  Returns 0 at EOF, -EINTR
 * when interrupted, -errno on an error. */
int ctl_follow(const char *path, int tick_ms, void (*on_data)(void *, const char *, size_t),
	       void (*on_tick)(void *), void *arg);

/* ---- display.c ---- */

struct ctl_display;
/* TTY: draw in place on stderr (colour unless NO_COLOR or TERM=dumb). */
struct ctl_display *ctl_display_new(bool tty);
struct ctl_display *ctl_display_free(struct ctl_display *d);
/* Feeds status.json bytes (any cut); parses whole lines. */
void ctl_display_feed(struct ctl_display *d, const char *p, size_t n);
/* Redraws if 100 ms passed since the last draw (tty only). */
void ctl_display_tick(struct ctl_display *d);
/* The final draw and the FINISHED / ERROR summary line. */
void ctl_display_finish(struct ctl_display *d, const char *state);
/* Adapters for ctl_follow. */
void ctl_display_on_data(void *d, const char *p, size_t n);
void ctl_display_on_tick(void *d);

/* ---- jobs.c: the subcommands other than build ---- */

struct ctl_cmd {
	const char *mount; /* -m */
	int argc;
	char **argv; /* after the subcommand's name */
};

int ctl_cmd_build(struct ctl_cmd *c);
int ctl_cmd_ls(struct ctl_cmd *c);
int ctl_cmd_status(struct ctl_cmd *c);
int ctl_cmd_logs(struct ctl_cmd *c);
int ctl_cmd_why(struct ctl_cmd *c);
int ctl_cmd_cancel(struct ctl_cmd *c);
int ctl_cmd_graph(struct ctl_cmd *c);
int ctl_cmd_export(struct ctl_cmd *c);
int ctl_cmd_du(struct ctl_cmd *c);

/* Shared by build and the job commands. */
/* MOUNT/jobs/N (malloc'd) when the job exists, else NULL after a message. */
char *ctl_job_dir(const char *mount, const char *n);
/* Prints the failure of job dir JD to stderr: its error's first line, then the
 * last NLINES lines of the failing vertex's log. */
void ctl_job_print_failure(const char *jd, const char *n, int nlines);
/* Prints one path a line on stdout for each output in JD/result. */
int ctl_job_print_outputs(const char *mount, const char *jd);

#endif
