/*
 * options.c — the command line: `solverfs [-f] [-d] [-o OPT,...] STATE_DIR MOUNTPOINT`.
 *
 * Options go through fuse_opt_parse so they may come before or after the
 * operands (mount.fuse3 puts `-o ...` last).  solverfs's own options are
 * consumed here; everything else (allow_other, ...) is left in args for
 * fuse_session_new, and the options every mount needs are appended.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "array.h"
#include "err.h"
#include "import.h"
#include "fs.h"

#define FS_ALWAYS_OPTS "-odefault_permissions,nosuid,nodev,fsname=solverfs,subtype=solverfs"

/* What fuse_opt_parse fills: strings for the values we check ourselves. */
struct raw_opts {
	char *workers, *cache_max, *sandbox, *jobs_keep, *log_max, *spec_max, *output_max,
	     *status_max;
	char *max_vertices, *max_running, *max_pending, *max_parked, *pending_timeout;
	char *path_max, *name_max, *inline_max;
	char *import_layer_max, *import_entries_max, *import_config_max;
	char *registry_ca, *registry_timeout;
	char *gc, *gc_max_used, *gc_reserved, *gc_min_free, *gc_keep_duration;
};

/* fuse_opt_parse hands the same pointer to templates and to opt_proc. */
struct parse_ctx {
	struct raw_opts raw;
	struct fs_opts *o;
	char **ret_msg;
	int err;
	bool in_insecure; /* the last option was insecure_registries= (see opt_proc) */
};

enum { KEY_HELP, KEY_VERSION, KEY_FOREGROUND, KEY_DEBUG, KEY_SINGLE, KEY_INSECURE };

#define RAW(t, f)                                                                                  \
	{                                                                                          \
		t, offsetof(struct parse_ctx, raw.f), 0                                            \
	}
static const struct fuse_opt opt_spec[] = {
    RAW("workers=%s", workers),
    RAW("cache_max=%s", cache_max),
    RAW("sandbox=%s", sandbox),
    RAW("jobs_keep=%s", jobs_keep),
    RAW("log_max=%s", log_max),
    RAW("output_max=%s", output_max),
    RAW("spec_max=%s", spec_max),
    RAW("status_max=%s", status_max),
    RAW("max_vertices=%s", max_vertices),
    RAW("max_running=%s", max_running),
    RAW("max_pending=%s", max_pending),
    RAW("max_parked=%s", max_parked),
    RAW("path_max=%s", path_max),
    RAW("name_max=%s", name_max),
    RAW("inline_max=%s", inline_max),
    RAW("import_layer_max=%s", import_layer_max),
    RAW("import_entries_max=%s", import_entries_max),
    RAW("import_config_max=%s", import_config_max),
    RAW("pending_timeout=%s", pending_timeout),
    RAW("registry_ca=%s", registry_ca),
    RAW("registry_timeout=%s", registry_timeout),
    FUSE_OPT_KEY("insecure_registries=", KEY_INSECURE),
    RAW("gc=%s", gc),
    RAW("gc_max_used=%s", gc_max_used),
    RAW("gc_reserved=%s", gc_reserved),
    RAW("gc_min_free=%s", gc_min_free),
    RAW("gc_keep_duration=%s", gc_keep_duration),
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),
    FUSE_OPT_KEY("--version", KEY_VERSION),
    FUSE_OPT_KEY("-f", KEY_FOREGROUND),
    FUSE_OPT_KEY("-d", KEY_DEBUG),
    FUSE_OPT_KEY("debug", KEY_DEBUG),
    FUSE_OPT_KEY("-s", KEY_SINGLE),
    FUSE_OPT_END,
};

static void opts_defaults(struct fs_opts *o)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	memset(o, 0, sizeof(*o));
	o->workers = n > 0 ? (unsigned)n : 1;
	o->cache_max = 0;
	o->sandbox = FS_SANDBOX_AUTO;
	o->jobs_keep = 1000;
	o->log_max = 64ull << 20;
	o->output_max = 16ull << 30;
	o->spec_max = 16ull << 20;
	o->status_max = 16ull << 20;
	o->max_vertices = 100000;
	o->max_running = 64;
	o->max_pending = 1024;
	o->max_parked = 4096;
	o->path_max = 4096;
	o->name_max = 1024;
	o->inline_max = 16ull << 20;
	o->import_layer_max = CACHE_IMPORT_LAYER_MAX;
	o->import_entries_max = CACHE_IMPORT_ENTRIES_MAX;
	o->import_config_max = CACHE_IMPORT_JSON_MAX;
	o->pending_timeout = 3600;
	o->registry_timeout = 30;
	gc_opts_default(&o->gc);
}

/* The decimal number that starts s, and where it ends.  A digit must come
 * first: strtoull alone would also take blanks and a sign. */
static int leading_number(const char *s, unsigned long long *ret, char **ret_end)
{
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*ret = strtoull(s, ret_end, 10);
	return errno ? -EINVAL : 0;
}

/* Which of the letters of units c is, from 1; 0 for none (and for NUL). */
static unsigned unit_of(const char *units, char c)
{
	const char *p = c ? strchr(units, c) : NULL;
	return p ? (unsigned)(p - units) + 1 : 0;
}

int fs_parse_size(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;
	unsigned u, shift = 0;

	if (leading_number(s, &v, &end) < 0)
		return -EINVAL;
	if ((u = unit_of("KMGT", (char)toupper((unsigned char)*end)))) {
		shift = 10 * u;
		end++;
		if (*end == 'i')
			end++; /* accept "KiB"-style "Ki" too */
		if (*end == 'B')
			end++;
	}
	if (*end || v > (UINT64_MAX >> shift))
		return -EINVAL;
	*ret = (uint64_t)v << shift;
	return 0;
}

int fs_parse_duration(const char *s, uint64_t *ret)
{
	static const uint64_t secs[] = {1, 60, 3600, 86400};
	char *end;
	unsigned long long v;
	uint64_t mul = 1;
	unsigned u;

	if (leading_number(s, &v, &end) < 0)
		return -EINVAL;
	if ((u = unit_of("smhd", *end))) {
		mul = secs[u - 1];
		end++;
	}
	/* at most ~292 years: the solver keeps it in signed ns */
	if (*end || v > (uint64_t)INT64_MAX / 1000000000ull / mul)
		return -EINVAL;
	*ret = (uint64_t)v * mul;
	return 0;
}

int fs_parse_gc_amount(const char *s, struct gc_amount *ret)
{
	size_t n = s ? strlen(s) : 0;
	struct gc_amount a = {.set = true};

	if (n > 1 && s[n - 1] == '%') {
		char digits[32], *end;
		unsigned long long v;
		if (n - 1 >= sizeof(digits))
			return -EINVAL;
		memcpy(digits, s, n - 1);
		digits[n - 1] = '\0';
		if (leading_number(digits, &v, &end) < 0 || *end || v > 100)
			return -EINVAL;
		a.percent = true;
		a.value = v;
	} else if (fs_parse_size(s, &a.value) < 0) {
		return -EINVAL;
	}
	*ret = a;
	return 0;
}

static int parse_uint(const char *s, unsigned min, unsigned *ret)
{
	char *end;
	unsigned long long v;

	if (leading_number(s, &v, &end) < 0 || *end || v > UINT32_MAX || v < min)
		return -EINVAL;
	*ret = (unsigned)v;
	return 0;
}

/* Appends HOST:PORT to the comma-separated insecure_registries. */
static int add_insecure(struct fs_opts *o, const char *host)
{
	char *n = NULL;
	if (!*host)
		return 0;
	if (asprintf(&n, "%s%s%s", o->insecure_registries ? o->insecure_registries : "",
		     o->insecure_registries ? "," : "", host) < 0)
		return -ENOMEM;
	free(o->insecure_registries);
	o->insecure_registries = n;
	return 0;
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct parse_ctx *c = data;
	struct fs_opts *o = c->o;
	bool was_insecure = c->in_insecure;

	c->in_insecure = false;
	switch (key) {
	case KEY_INSECURE:
		/* fuse splits "-o insecure_registries=A:1,B:2" at the comma: the
		 * options after it that are a bare HOST:PORT belong to it */
		c->in_insecure = true;
		return add_insecure(o, strchr(arg, '=') + 1) < 0 ? -1 : 0;
	case FUSE_OPT_KEY_OPT:
		if (was_insecure && !strchr(arg, '=') && strchr(arg, ':')) {
			c->in_insecure = true;
			return add_insecure(o, arg) < 0 ? -1 : 0;
		}
		return 1;
	case KEY_HELP:
		o->show_help = true;
		return 0;
	case KEY_VERSION:
		o->show_version = true;
		return 0;
	case KEY_FOREGROUND:
		o->foreground = true;
		return 0;
	case KEY_DEBUG:
		o->debug = o->foreground = true;
		return 1; /* fuse_session_new prints the requests */
	case KEY_SINGLE:
		c->err = sfs_errf(c->ret_msg, EINVAL,
				  "-s is not supported: solverfs needs the multi-threaded loop");
		return -1;
	case FUSE_OPT_KEY_NONOPT:
		if (!o->state_dir)
			o->state_dir = strdup(arg);
		else if (!o->mountpoint)
			o->mountpoint = strdup(arg);
		else {
			c->err = sfs_errf(c->ret_msg, EINVAL, "unexpected operand '%s'", arg);
			return -1;
		}
		return 0;
	default:
		return 1;
	}
}

struct num_opt {
	const char *name;
	const char *val;
	unsigned *dst;
	unsigned min;
};

static int apply_sizes(const struct raw_opts *r, struct fs_opts *o, char **ret_msg)
{
	const struct {
		const char *name, *val;
		uint64_t *dst;
	} sz[] = {{"cache_max", r->cache_max, &o->cache_max},
		  {"log_max", r->log_max, &o->log_max},
		  {"output_max", r->output_max, &o->output_max},
		  {"spec_max", r->spec_max, &o->spec_max},
		  {"import_layer_max", r->import_layer_max, &o->import_layer_max},
		  {"import_config_max", r->import_config_max, &o->import_config_max},
		  {"status_max", r->status_max, &o->status_max},
		  {"inline_max", r->inline_max, &o->inline_max}};

	for (size_t i = 0; i < ARRAY_SIZE(sz); i++)
		if (sz[i].val && fs_parse_size(sz[i].val, sz[i].dst) < 0)
			return sfs_errf(ret_msg, EINVAL,
					"invalid %s=%s (expected a size like 512M or 10G)",
					sz[i].name, sz[i].val);
	if (r->spec_max && o->spec_max == 0)
		return sfs_errf(ret_msg, EINVAL, "spec_max must be at least 1");
	if (r->import_config_max && o->import_config_max == 0)
		return sfs_errf(ret_msg, EINVAL, "import_config_max must be at least 1");
	if (r->inline_max && o->inline_max == 0)
		return sfs_errf(ret_msg, EINVAL, "inline_max must be at least 1");
	if (r->status_max && o->status_max < 4096)
		return sfs_errf(ret_msg, EINVAL, "status_max must be at least 4K");
	if (r->registry_timeout &&
	    (fs_parse_duration(r->registry_timeout, &o->registry_timeout) < 0 ||
	     o->registry_timeout == 0))
		return sfs_errf(ret_msg, EINVAL,
				"invalid registry_timeout=%s (expected a duration of at least 1s,"
				" like 30s or 5m)",
				r->registry_timeout);
	if (r->registry_ca && r->registry_ca[0] != '/')
		return sfs_errf(ret_msg, EINVAL, "registry_ca=%s must be an absolute path",
				r->registry_ca);
	if (r->registry_ca && access(r->registry_ca, R_OK) < 0)
		return sfs_errf(ret_msg, EINVAL, "registry_ca=%s: %s", r->registry_ca,
				strerror(errno));
	if (r->registry_ca && !(o->registry_ca = strdup(r->registry_ca)))
		return -ENOMEM;
	if (r->pending_timeout &&
	    (fs_parse_duration(r->pending_timeout, &o->pending_timeout) < 0 ||
	     o->pending_timeout == 0))
		return sfs_errf(ret_msg, EINVAL,
				"invalid pending_timeout=%s (expected a duration of at least 1s,"
				" like 30s, 10m, 1h or 2d)",
				r->pending_timeout);
	return 0;
}

static int apply_raw(const struct raw_opts *r, struct fs_opts *o, char **ret_msg)
{
	const struct num_opt nums[] = {
	    {"workers", r->workers, &o->workers, 1},
	    {"jobs_keep", r->jobs_keep, &o->jobs_keep, 0},
	    {"max_vertices", r->max_vertices, &o->max_vertices, 1},
	    {"max_running", r->max_running, &o->max_running, 1},
	    {"max_pending", r->max_pending, &o->max_pending, 1},
	    {"max_parked", r->max_parked, &o->max_parked, 0},
	    {"path_max", r->path_max, &o->path_max, 1},
	    {"name_max", r->name_max, &o->name_max, 1},
	    {"import_entries_max", r->import_entries_max, &o->import_entries_max, 1},
	};

	for (size_t i = 0; i < ARRAY_SIZE(nums); i++)
		if (nums[i].val && parse_uint(nums[i].val, nums[i].min, nums[i].dst) < 0)
			return sfs_errf(ret_msg, EINVAL,
					"invalid %s=%s (expected an integer >= %u)", nums[i].name,
					nums[i].val, nums[i].min);
	if (r->sandbox) {
		if (!strcmp(r->sandbox, "auto"))
			o->sandbox = FS_SANDBOX_AUTO;
		else if (!strcmp(r->sandbox, "bwrap"))
			o->sandbox = FS_SANDBOX_BWRAP;
		else if (!strcmp(r->sandbox, "none"))
			o->sandbox = FS_SANDBOX_NONE;
		else
			return sfs_errf(ret_msg, EINVAL, "invalid sandbox=%s (auto, bwrap or none)",
					r->sandbox);
	}
	return apply_sizes(r, o, ret_msg);
}

/* gc, gc_max_used, gc_reserved, gc_min_free, gc_keep_duration and cache_max
 * (docs/gc.md): o->cache_max is parsed already. */
static int apply_gc(const struct raw_opts *r, struct fs_opts *o, char **ret_msg)
{
	const struct {
		const char *name, *val;
		struct gc_amount *dst;
	} am[] = {{"gc_max_used", r->gc_max_used, &o->gc.max_used},
		  {"gc_reserved", r->gc_reserved, &o->gc.reserved},
		  {"gc_min_free", r->gc_min_free, &o->gc.min_free}};
	struct gc_opts *g = &o->gc;
	uint64_t secs;

	for (size_t i = 0; i < ARRAY_SIZE(am); i++)
		if (am[i].val && fs_parse_gc_amount(am[i].val, am[i].dst) < 0)
			return sfs_errf(ret_msg, EINVAL,
					"invalid %s=%s (expected a size like 10G, or N%% of the"
					" filesystem, 0 to 100)",
					am[i].name, am[i].val);
	if (r->gc) {
		if (strcmp(r->gc, "off") && strcmp(r->gc, "on"))
			return sfs_errf(ret_msg, EINVAL, "invalid gc=%s (on or off)", r->gc);
		g->off = !strcmp(r->gc, "off");
	}
	if (r->gc_keep_duration) {
		if (fs_parse_duration(r->gc_keep_duration, &secs) < 0)
			return sfs_errf(ret_msg, EINVAL,
					"invalid gc_keep_duration=%s (expected a duration like"
					" 30s, 10m, 48h or 7d; 0 keeps nothing for its age)",
					r->gc_keep_duration);
		g->keep_ns = (int64_t)secs * 1000000000LL;
	}
	if (o->cache_max) { /* the simple form: a hard target, nothing reserved */
		if (r->gc_max_used || r->gc_reserved)
			return sfs_errf(ret_msg, EINVAL,
					"cache_max=SIZE means gc_max_used=SIZE,gc_reserved=0:"
					" give one form, not both");
		g->max_used = (struct gc_amount){.set = true, .value = o->cache_max};
		g->reserved = (struct gc_amount){.set = true, .value = 0};
		if (!r->gc_min_free)
			g->min_free = (struct gc_amount){.set = true, .value = 0};
	}
	/* two given amounts of one kind compare now; a default or a mixed pair is
	 * clamped when the filesystem's size is known (gcpolicy.c) */
	if (g->max_used.set && g->reserved.set && r->gc_reserved &&
	    g->max_used.percent == g->reserved.percent && g->reserved.value > g->max_used.value)
		return sfs_errf(ret_msg, EINVAL, "gc_reserved=%s is more than gc_max_used=%s",
				r->gc_reserved, r->gc_max_used);
	return 0;
}

static void raw_release(struct raw_opts *r)
{
	free(r->workers);
	free(r->cache_max);
	free(r->sandbox);
	free(r->jobs_keep);
	free(r->log_max);
	free(r->output_max);
	free(r->spec_max);
	free(r->status_max);
	free(r->max_vertices);
	free(r->max_running);
	free(r->max_pending);
	free(r->max_parked);
	free(r->path_max);
	free(r->name_max);
	free(r->inline_max);
	free(r->import_layer_max);
	free(r->import_entries_max);
	free(r->import_config_max);
	free(r->pending_timeout);
	free(r->registry_ca);
	free(r->registry_timeout);
	free(r->gc);
	free(r->gc_max_used);
	free(r->gc_reserved);
	free(r->gc_min_free);
	free(r->gc_keep_duration);
}

int fs_opts_parse(struct fuse_args *args, struct fs_opts *o, char **ret_msg)
{
	struct parse_ctx c = {.o = o, .ret_msg = ret_msg};
	int r;

	opts_defaults(o);
	if (fuse_opt_parse(args, &c, opt_spec, opt_proc) < 0) {
		raw_release(&c.raw);
		return c.err ? c.err : sfs_errf(ret_msg, EINVAL, "invalid options");
	}
	r = apply_raw(&c.raw, o, ret_msg);
	if (r == 0)
		r = apply_gc(&c.raw, o, ret_msg);
	raw_release(&c.raw);
	if (r < 0 || o->show_help || o->show_version)
		return r;
	if (!o->state_dir || !o->mountpoint)
		return sfs_errf(ret_msg, EINVAL, "expected STATE_DIR and MOUNTPOINT (see --help)");
	if (fuse_opt_add_arg(args, FS_ALWAYS_OPTS) < 0)
		return -ENOMEM;
	return 0;
}

void fs_opts_release(struct fs_opts *o)
{
	free(o->state_dir);
	free(o->mountpoint);
	free(o->registry_ca);
	free(o->insecure_registries);
	o->state_dir = o->mountpoint = o->registry_ca = o->insecure_registries = NULL;
}

void fs_opts_help(const char *prog)
{
	struct fs_opts d;

	opts_defaults(&d);
	printf("usage: %s [-f] [-d] [-o OPT[,OPT...]] STATE_DIR MOUNTPOINT\n"
	       "\n"
	       "A content-addressed build solver (BuildKit's model) presented as a filesystem.\n"
	       "Write a graph spec into MOUNTPOINT/jobs/new, cat jobs/N/status, ls results/.\n"
	       "\n"
	       "general options:\n"
	       "    -f                     stay in the foreground, log to stderr\n"
	       "    -d, -o debug           debug output (implies -f)\n"
	       "    -h, --help             print this help\n"
	       "    -V, --version          print the version\n"
	       "\n"
	       "solverfs options (SIZE takes K, M, G, T suffixes, powers of 1024;\n"
	       "DUR takes s, m, h, d):\n",
	       prog);
	printf(
	    "    -o workers=N           ops run at once (default: %u, the number of CPUs)\n"
	    "    -o cache_max=SIZE      hard cache size target, after each job whatever the\n"
	    "                           age (gc_max_used=SIZE,gc_reserved=0,gc_min_free=0)\n"
	    "    -o gc_max_used=SIZE|N%%  the store's most, young results included\n"
	    "                           (default: 80%% of the filesystem, at most 100G)\n"
	    "    -o gc_reserved=SIZE|N%%  never collected below this (default: 10%%, at\n"
	    "                           most 10G; at most gc_max_used)\n"
	    "    -o gc_min_free=SIZE|N%%  free space GC keeps on the filesystem by deleting\n"
	    "                           results older than gc_keep_duration (default: 20%%)\n"
	    "    -o gc_keep_duration=DUR\n"
	    "                           results used within DUR are kept unless over\n"
	    "                           gc_max_used (default: 48h)\n"
	    "    -o gc=off              no automatic GC (default: on)\n"
	    "    -o sandbox=MODE        bwrap: every exec in bubblewrap (refuse to mount if it\n"
	    "                           fails); none: execs run on the host; auto (default):\n"
	    "                           bwrap when a trial run works, else none\n"
	    "    -o jobs_keep=N         finished jobs kept (default: %u)\n"
	    "    -o log_max=SIZE        log kept per vertex (default: 64M)\n"
	    "    -o output_max=SIZE     largest output of one exec (default: 16G)\n"
	    "    -o spec_max=SIZE       largest spec accepted (default: 16M)\n"
	    "    -o status_max=SIZE     status kept per job, logs past it clipped (default: 16M)\n"
	    "    -o max_vertices=N      vertices per job (default: %u)\n"
	    "    -o max_running=N       running jobs at once (default: %u)\n"
	    "    -o max_pending=N       pending jobs at once (default: %u)\n"
	    "    -o pending_timeout=DUR a pending job without a spec is deleted after DUR\n"
	    "                           (default: 1h; and at every mount)\n"
	    "    -o max_parked=N        blocked status/wait readers (default: %u)\n"
	    "    -o path_max=N          bytes of a path in a spec (default: %u)\n"
	    "    -o name_max=N          bytes of a vertex's name in a spec (default: %u)\n"
	    "    -o inline_max=SIZE     mkfile data of one action (default: 16M)\n"
	    "    -o import_layer_max=SIZE\n"
	    "                           uncompressed bytes of one cache_from layer (default: 16G)\n"
	    "    -o import_entries_max=N\n"
	    "                           entries of one cache_from layer, and of the tree its\n"
	    "                           layer chain makes (default: %u)\n"
	    "    -o import_config_max=SIZE\n"
	    "                           largest cache_from index.json, manifest or cache config\n"
	    "                           (default: 64M)\n"
	    "    -o registry_ca=FILE    CA certificates (PEM) trusted for registries, beside\n"
	    "                           the system's\n"
	    "    -o insecure_registries=HOST:PORT,...\n"
	    "                           registries spoken to in plain http\n"
	    "    -o registry_timeout=DUR\n"
	    "                           a registry request fails after DUR without progress\n"
	    "                           (default: 30s)\n"
	    "\n"
	    "Always added: -o default_permissions,nosuid,nodev,fsname=solverfs,subtype=solverfs\n"
	    "\n"
	    "FUSE options:\n",
	    d.workers, d.jobs_keep, d.max_vertices, d.max_running, d.max_pending, d.max_parked,
	    d.path_max, d.name_max,
	    d.import_entries_max);
	fflush(stdout);
	fuse_lowlevel_help();
}
