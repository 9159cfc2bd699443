/* test_fs_options.c — the solverfs command line (fs/options.c). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "fs.h"
#include "tap.h"

static int parse(int argc, char **argv, struct fs_opts *o, char **msg)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	int r = fs_opts_parse(&args, o, msg);

	fuse_opt_free_args(&args);
	return r;
}

/* A value a parser must give for text, or refuse it (REFUSED). */
struct parse_case {
	const char *text;
	long long want;
};
#define REFUSED (-1)

/* Every case of a table of n: parse gives its value, or refuses what it must. */
static void check_parses(int (*parse_fn)(const char *s, uint64_t *ret), const struct parse_case *c,
			 size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t v = 0;
		int r = parse_fn(c[i].text, &v);
		bool ok = c[i].want == REFUSED ? r < 0 : r == 0 && v == (uint64_t)c[i].want;
		if (!ok)
			fprintf(stderr, "  \"%s\": %d, %llu\n", c[i].text, r,
				(unsigned long long)v);
		CHECK(ok);
	}
}

static void test_sizes(void)
{
	static const struct parse_case sizes[] = {
	    {"0", 0},
	    {"512", 512},
	    {"4K", 4096},
	    {"16M", 16 << 20},
	    {"2G", 2ll << 30},
	    {"1T", 1ll << 40},
	    {"", REFUSED},
	    {"-1", REFUSED},
	    {"1X", REFUSED},
	    {"M", REFUSED},
	    {"99999999999T", REFUSED},
	};
	check_parses(fs_parse_size, sizes, ARRAY_SIZE(sizes));
}

static void test_durations(void)
{
	static const struct parse_case durations[] = {
	    {"0", 0},	     {"45", 45},     {"2s", 2},	       {"10m", 600},
	    {"1h", 3600},    {"2d", 172800}, {"", REFUSED},    {"-1s", REFUSED},
	    {"1w", REFUSED}, {"h", REFUSED}, {"1hs", REFUSED}, {"99999999999d", REFUSED},
	};
	check_parses(fs_parse_duration, durations, ARRAY_SIZE(durations));
}

/* `solverfs -o opts /s /m`: the error when it is refused with a message naming
 * word, 0 (saying why) when it is not. */
static int refusal(char *opts, const char *word)
{
	char *argv[] = {"solverfs", "-o", opts, "/s", "/m", NULL};
	struct fs_opts o;
	char *msg = NULL;
	int r = parse(5, argv, &o, &msg);

	if (r >= 0 || !msg || !strstr(msg, word)) {
		fprintf(stderr, "  -o %s: %d, %s\n", opts, r, msg ? msg : "(no message)");
		r = 0;
	}
	fs_opts_release(&o);
	free(msg);
	return r;
}

static void test_pending_timeout(void)
{
	char *argv[] = {"solverfs", "-o", "pending_timeout=2s", "st", "mnt", NULL};
	struct fs_opts o;
	char *msg = NULL;

	CHECK_EQ_INT(parse(5, argv, &o, &msg), 0);
	CHECK_EQ_INT(o.pending_timeout, 2);
	fs_opts_release(&o);
	CHECK(refusal("pending_timeout=0", "pending_timeout=0") < 0);
}

static void test_operands_and_options_anywhere(void)
{
	char *argv[] = {"solverfs", "/s", "/m", "-o", "workers=3,spec_max=1K,allow_other", "-f"};
	struct fs_opts o;
	char *msg = NULL;

	CHECK_EQ_INT(parse(6, argv, &o, &msg), 0);
	CHECK_EQ_STR(o.state_dir, "/s");
	CHECK_EQ_STR(o.mountpoint, "/m");
	CHECK_EQ_INT(o.workers, 3);
	CHECK_EQ_INT(o.spec_max, 1024);
	CHECK(o.foreground);
	CHECK_EQ_INT(o.jobs_keep, 1000);
	CHECK_EQ_INT(o.sandbox, FS_SANDBOX_AUTO);
	fs_opts_release(&o);
	free(msg);
}

static void test_kept_for_fuse(void)
{
	char *argv[] = {"solverfs", "-o", "sandbox=none,allow_other,cache_max=10G", "/s", "/m"};
	struct fuse_args args = FUSE_ARGS_INIT(5, argv);
	struct fs_opts o;
	char *msg = NULL;
	bool allow_other = false, always = false;

	CHECK_EQ_INT(fs_opts_parse(&args, &o, &msg), 0);
	CHECK_EQ_INT(o.sandbox, FS_SANDBOX_NONE);
	CHECK_EQ_INT(o.cache_max, 10ll << 30);
	for (int i = 0; i < args.argc; i++) {
		CHECK(!strstr(args.argv[i], "sandbox"));
		CHECK(!strstr(args.argv[i], "cache_max"));
		allow_other |= strstr(args.argv[i], "allow_other") != NULL;
		always |= strstr(args.argv[i], "default_permissions,nosuid,nodev") != NULL;
	}
	CHECK(allow_other);
	CHECK(always);
	fuse_opt_free_args(&args);
	fs_opts_release(&o);
	free(msg);
}

static void test_errors(void)
{
	char *single[] = {"solverfs", "-s", "/s", "/m"};
	char *three[] = {"solverfs", "/s", "/m", "/x"};
	char *none[] = {"solverfs"};
	struct fs_opts o;
	char *msg = NULL;

	CHECK(parse(4, single, &o, &msg) < 0);
	CHECK(msg && strstr(msg, "-s"));
	fs_opts_release(&o);
	free(msg), msg = NULL;
	CHECK(refusal("sandbox=maybe", "sandbox") < 0);
	CHECK(parse(4, three, &o, &msg) < 0);
	fs_opts_release(&o);
	free(msg), msg = NULL;
	CHECK(parse(1, none, &o, &msg) < 0);
	fs_opts_release(&o);
	free(msg);
}

static void test_import_limits(void)
{
	char *argv[] = {"solverfs", "-o",
			"import_layer_max=1M,import_entries_max=500,import_config_max=2K", "/s", "/m"};
	char *dflt[] = {"solverfs", "/s", "/m"};
	struct fs_opts o;
	char *msg = NULL;

	CHECK_EQ_INT(parse(3, dflt, &o, &msg), 0);
	CHECK_EQ_INT(o.import_layer_max, 16ll << 30);
	CHECK_EQ_INT(o.import_entries_max, 1000000);
	CHECK_EQ_INT(o.import_config_max, 64 << 20);
	fs_opts_release(&o);
	CHECK_EQ_INT(parse(5, argv, &o, &msg), 0);
	CHECK_EQ_INT(o.import_layer_max, 1 << 20);
	CHECK_EQ_INT(o.import_entries_max, 500);
	CHECK_EQ_INT(o.import_config_max, 2048);
	fs_opts_release(&o);
	CHECK_EQ_INT(refusal("import_entries_max=0", "import_entries_max"), -EINVAL);
}

static void test_status_max(void)
{
	char *set[] = {"solverfs", "-o", "status_max=64K", "/s", "/m"};
	char *dflt[] = {"solverfs", "/s", "/m"};
	struct fs_opts o;
	char *msg = NULL;

	CHECK_EQ_INT(parse(3, dflt, &o, &msg), 0);
	CHECK_EQ_INT(o.status_max, 16 << 20);
	fs_opts_release(&o);
	CHECK_EQ_INT(parse(5, set, &o, &msg), 0);
	CHECK_EQ_INT(o.status_max, 64 << 10);
	fs_opts_release(&o);
	CHECK(refusal("status_max=100", "status_max") < 0);
}

static void test_spec_limits(void)
{
	char *set[] = {"solverfs", "-o", "path_max=100,name_max=10,inline_max=2K", "/s", "/m"};
	char *dflt[] = {"solverfs", "/s", "/m"};
	struct fs_opts o;
	char *msg = NULL;

	CHECK_EQ_INT(parse(3, dflt, &o, &msg), 0);
	CHECK_EQ_INT(o.path_max, 4096);
	CHECK_EQ_INT(o.name_max, 1024);
	CHECK_EQ_INT(o.inline_max, 16 << 20);
	fs_opts_release(&o);
	CHECK_EQ_INT(parse(5, set, &o, &msg), 0);
	CHECK_EQ_INT(o.path_max, 100);
	CHECK_EQ_INT(o.name_max, 10);
	CHECK_EQ_INT(o.inline_max, 2048);
	fs_opts_release(&o);
	CHECK(refusal("inline_max=0", "inline_max") < 0);
}

/* Parses "-o opts /s /m": 0 or the error; o is released. */
static int parse_o(const char *opts, struct fs_opts *o)
{
	char *argv[] = {"solverfs", "-o", (char *)opts, "/s", "/m"};
	char *msg = NULL;
	int r = parse(5, argv, o, &msg);
	if (r < 0 && !msg)
		fprintf(stderr, "  %s: refused without a message\n", opts);
	free(msg);
	fs_opts_release(o);
	return r;
}

static void test_gc_options(void)
{
	struct fs_opts o;

	CHECK_EQ_INT(parse_o("workers=1", &o), 0);
	CHECK(!o.gc.off);
	CHECK(!o.gc.max_used.set && !o.gc.reserved.set && !o.gc.min_free.set);
	CHECK_EQ_INT(o.gc.keep_ns, 48LL * 3600 * 1000000000LL);

	CHECK_EQ_INT(parse_o("gc_max_used=50%,gc_reserved=1G,gc_min_free=5G,gc_keep_duration=1h",
			     &o),
		     0);
	CHECK(o.gc.max_used.set && o.gc.max_used.percent);
	CHECK_EQ_INT(o.gc.max_used.value, 50);
	CHECK(o.gc.reserved.set && !o.gc.reserved.percent);
	CHECK_EQ_INT(o.gc.reserved.value, 1ll << 30);
	CHECK_EQ_INT(o.gc.min_free.value, 5ll << 30);
	CHECK_EQ_INT(o.gc.keep_ns, 3600LL * 1000000000LL);

	CHECK_EQ_INT(parse_o("gc=off", &o), 0);
	CHECK(o.gc.off);
	CHECK_EQ_INT(parse_o("gc=on,gc_keep_duration=0", &o), 0);
	CHECK(!o.gc.off);
	CHECK_EQ_INT(o.gc.keep_ns, 0);

	/* the simple form: a hard target, nothing reserved, no free-space rule */
	CHECK_EQ_INT(parse_o("cache_max=10M", &o), 0);
	CHECK(o.gc.max_used.set && !o.gc.max_used.percent);
	CHECK_EQ_INT(o.gc.max_used.value, 10 << 20);
	CHECK(o.gc.reserved.set);
	CHECK_EQ_INT(o.gc.reserved.value, 0);
	CHECK(o.gc.min_free.set);
	CHECK_EQ_INT(o.gc.min_free.value, 0);
	CHECK_EQ_INT(parse_o("cache_max=10M,gc_min_free=10%", &o), 0);
	CHECK(o.gc.min_free.percent);
	CHECK_EQ_INT(parse_o("cache_max=0", &o), 0); /* 0: no cache_max, the defaults */
	CHECK(!o.gc.max_used.set);

	/* a mixed pair is clamped when the filesystem's size is known */
	CHECK_EQ_INT(parse_o("gc_max_used=10%,gc_reserved=2G", &o), 0);
	CHECK_EQ_INT(parse_o("gc_max_used=1G,gc_reserved=1G", &o), 0);

	static const char *const refused[] = {
	    "cache_max=10M,gc_max_used=1G", "cache_max=10M,gc_reserved=0",
	    "gc_max_used=1G,gc_reserved=2G", "gc_max_used=50%,gc_reserved=60%",
	    "gc_max_used=101%", "gc_max_used=%", "gc_max_used=x", "gc_min_free=-1%",
	    "gc_reserved=1Y", "gc=maybe", "gc_keep_duration=1y", "gc_keep_duration=",
	};
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
		int r = parse_o(refused[i], &o);
		if (r != -EINVAL)
			fprintf(stderr, "  %s: %d\n", refused[i], r);
		CHECK_EQ_INT(r, -EINVAL);
	}
}

int main(void)
{
	RUN(test_sizes);
	RUN(test_durations);
	RUN(test_pending_timeout);
	RUN(test_operands_and_options_anywhere);
	RUN(test_kept_for_fuse);
	RUN(test_errors);
	RUN(test_import_limits);
	RUN(test_status_max);
	RUN(test_spec_limits);
	RUN(test_gc_options);
	return tap_done();
}
